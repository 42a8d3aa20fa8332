"""Seeded Gaussian noise for the samplers (one generator, or one generator per batch element)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

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
