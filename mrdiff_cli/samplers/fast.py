"""Few-step posterior sampler (mrdiff's default, ``--sampler fast``).

DDS / DiffPIR-style decoupled scheme on a short decreasing sigma schedule sigma_0 > ... > sigma_{N-1}:

    x      <- x_init + sigma_0 z                                   (start near the data, SDEdit-style)
    repeat for i = 0 .. N-1:
        x0  = D(x; sigma_i)                                        (prior: one network evaluation)
        x0  = argmin_x ||A x - y||^2 + mu ||x - x0||^2             (k-space consistency: n_cg CG iterations)
        eps = (x - x0) / sigma_i                                   (implied noise direction)
        x   = x0 + sigma_{i+1} (sqrt(1 - zeta) eps + sqrt(zeta) z) (renoise; zeta=1: fresh noise)
    return x0 of the last step

One network evaluation per step (NFE = N). Works for any linear operator A with __call__/adjoint/normal
(single-coil, SSOS coil-wise, SENSE) and any complex denoise_fn (see adapters.py). Batched; seeded by
``generator``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .dc import cg_dc


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    gen_dev = generator.device if generator is not None else x.device
    if x.is_complex():
        re = torch.randn(x.shape, generator=generator, device=gen_dev)
        im = torch.randn(x.shape, generator=generator, device=gen_dev)
        return torch.complex(re, im).to(x.device)
    return torch.randn(x.shape, generator=generator, device=gen_dev).to(x.device)


def fast_sample(
    denoise_fn: Callable[[torch.Tensor, float], torch.Tensor],
    y: torch.Tensor,
    A,
    sigmas: torch.Tensor,
    x_init: torch.Tensor,
    *,
    n_cg: int = 5,
    mu: float = 0.0,
    zeta: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callable[[int, int], None] | None = None,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run the fast posterior sampler; returns the final data-consistent estimate x0 (same shape as x_init)."""
    sig = [float(s) for s in sigmas]
    x = x_init + sig[0] * _randn_like(x_init, generator)
    x0 = x_init
    for i, s in enumerate(sig):
        d = denoise_fn(x, s)
        x0 = cg_dc(d, y, A, mu, n_cg) if n_cg > 0 else d
        if project is not None:
            x0 = project(x0)
        if callback is not None:
            callback(i + 1, len(sig))
        if i + 1 < len(sig):
            s_next = sig[i + 1]
            eps = (x - x0) / s
            z = _randn_like(x, generator) if zeta > 0 else torch.zeros_like(x)
            x = x0 + s_next * (math.sqrt(max(0.0, 1 - zeta)) * eps + math.sqrt(zeta) * z)
    return x0
