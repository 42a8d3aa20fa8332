"""Few-step posterior sampler (mrdiff's default, ``--sampler fast``).

DDS / DiffPIR-style decoupled scheme on a short decreasing sigma schedule sigma_0 > ... > sigma_{N-1}:

    x      <- x_init + sigma_0 z                                   (start near the data, SDEdit-style)
    repeat for i = 0 .. N-1:
        x0  = D(x; sigma_i)                                        (prior: one network evaluation)
        x0  = argmin_x ||A x - y||^2 + mu ||x - x0||^2             (k-space consistency: n_cg CG iterations)
                                                                   (mu may depend on sigma_i: DiffPIR's
                                                                    mu_i = lam sigma_n^2 / sigma_i^2 with the
                                                                    measurement noise sigma_n)
        eps = (x - x0) / sigma_i                                   (implied noise direction)
        x   = x0 + sigma_{i+1} (sqrt(1 - zeta) eps + sqrt(zeta) z) (renoise; zeta=1: fresh noise)

zeta = "ancestral" uses zeta_i = 1 - sigma_{i+1}^2 / sigma_i^2 (DDPM ancestral step on the VE scale): the
posterior spread is then right (checked against a closed-form Gaussian posterior, see tests), whereas a
constant zeta = 1 returns only about half the posterior variance (each fresh renoise forgets the part of the
spread the denoiser shrank). Point estimates favour zeta = 1; uncertainty maps use "ancestral".
    return x0 of the last step
    (final_step=True: one more noise-free step x0 <- DC(D(x0; sigma_{N-1})), which removes the residual noise
     that the last DC injected; NFE = N + 1)

One network evaluation per step (NFE = N, or N + 1 with the final noise-free step). Works for any linear operator A with __call__/adjoint/normal
(single-coil, SSOS coil-wise, SENSE) and any complex denoise_fn (see adapters.py). Batched; seeded by
``generator``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from .dc import cg_dc


def _randn_like(x: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor:
    """Standard (complex: real and imaginary parts each N(0, 1)) normal noise shaped like ``x``.

    ``generator`` may also be a sequence of generators, one per batch element (first axis), as in
    diffusers: element ``b`` is then drawn from ``generator[b]`` only, so its noise does not depend on
    what else is in the batch (per-slice seeding, batched through the network all the same).
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != x.shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {x.shape[0]}")
        return torch.stack([_randn_like(x[b], g) for b, g in enumerate(generator)])
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
    mu: float | Callable[[float], float] = 0.0,
    zeta: float | str = 1.0,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    callback: Callable[[int, int], None] | None = None,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
    final_step: bool = True,
) -> torch.Tensor:
    """Run the fast posterior sampler; returns the final data-consistent estimate x0 (same shape as x_init)."""
    sig = [float(s) for s in sigmas]
    x = x_init + sig[0] * _randn_like(x_init, generator)
    x0 = x_init
    for i, s in enumerate(sig):
        d = denoise_fn(x, s)
        mu_i = mu(s) if callable(mu) else mu
        x0 = cg_dc(d, y, A, mu_i, n_cg) if n_cg > 0 else d
        if project is not None:
            x0 = project(x0)
        if callback is not None:
            callback(i + 1, len(sig))
        if i + 1 < len(sig):
            s_next = sig[i + 1]
            eps = (x - x0) / s
            zt = 1.0 - (s_next / s) ** 2 if zeta == "ancestral" else float(zeta)
            z = _randn_like(x, generator) if zt > 0 else torch.zeros_like(x)
            x = x0 + s_next * (math.sqrt(max(0.0, 1 - zt)) * eps + math.sqrt(zt) * z)
    if final_step:
        d = denoise_fn(x0, sig[-1])
        x0 = cg_dc(d, y, A, mu(sig[-1]) if callable(mu) else mu, n_cg) if n_cg > 0 else d
        if project is not None:
            x0 = project(x0)
    return x0
