"""Seeded Gaussian noise for the samplers (one generator, or one generator per batch element), the per-(sample,
slice) generators, and the running mean / variance of posterior samples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import numpy as np
import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def randn_like(x: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Standard (complex: real and imaginary parts each N(0, 1)) normal noise shaped like ``x``.

    ``generator`` may also be a sequence of generators, one per batch element (first axis), as in
    diffusers: element ``b`` is then drawn from ``generator[b]`` only, so its noise does not depend on
    what else is in the batch (per-slice seeding, batched through the network all the same).
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != x.shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {x.shape[0]}")
        return torch.stack([randn_like(x[b], g) for b, g in enumerate(generator)])
    gen = cast(torch.Generator | None, generator)  # one generator (or None) from here on
    gen_dev = gen.device if gen is not None else x.device
    if x.is_complex():
        re = torch.randn(x.shape, generator=gen, device=gen_dev)
        im = torch.randn(x.shape, generator=gen, device=gen_dev)
        return torch.complex(re, im).to(x.device)
    return torch.randn(x.shape, generator=gen, device=gen_dev).to(x.device)


def sample_generator(seed: int, sample: int, slice_index: int) -> torch.Generator:
    """CPU generator for one (sample, slice) pair: an independent stream per pair, same seed -> same stream."""
    state = np.random.SeedSequence([int(seed) % 2**64, int(sample), int(slice_index)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state))


def running_mean_var(samples_iter: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Running mean / variance (Welford); memory does not grow with the number of samples."""
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    n = 0
    for s in samples_iter:
        n += 1
        if mean is None:
            mean, m2 = s.clone(), torch.zeros_like(s)
        else:
            assert m2 is not None
            d = s - mean
            mean += d / n
            m2 += d * (s - mean)
    if mean is None or m2 is None:
        raise ValueError("running_mean_var needs at least one sample")
    var = m2 / (n - 1) if n > 1 else torch.zeros_like(mean)
    return mean, var, n
