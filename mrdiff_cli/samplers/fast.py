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

One network evaluation per step (NFE = N, or N + 1 with the final noise-free step). The consistency step
is the ``dc`` object (samplers/dc.py; default: ProximalDC(n_cg=5, mu=0)), so the same function serves
single-coil, SSOS coil-wise, SENSE and super-resolution operators, real or complex images. Batched; seeded
by ``generator`` (one, or one per batch element).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .dc import ProximalDC
from .noise import Generators, randn_like
from .protocols import DCStep, Denoiser, LinearOperator


def fast_sample(
    denoise: Denoiser,
    y: torch.Tensor,
    A: LinearOperator,
    sigmas: torch.Tensor,
    x_init: torch.Tensor,
    *,
    dc: DCStep | None = None,
    zeta: float | str = 1.0,
    generator: Generators = None,
    callback: Callable[[int, int], None] | None = None,
    final_step: bool = True,
) -> torch.Tensor:
    """Run the fast posterior sampler; returns the final data-consistent estimate x0 (same shape as x_init)."""
    dc_step: DCStep = dc if dc is not None else ProximalDC()
    sig = [float(s) for s in sigmas]
    n = len(sig)
    x = x_init + sig[0] * randn_like(x_init, generator)
    x0 = x_init
    for i, s in enumerate(sig):
        x0 = dc_step(denoise(x, s), y, A, step=i, n_steps=n, sigma=s)
        if callback is not None:
            callback(i + 1, n)
        if i + 1 < n:
            s_next = sig[i + 1]
            eps = (x - x0) / s
            zt = 1.0 - (s_next / s) ** 2 if zeta == "ancestral" else float(zeta)
            z = randn_like(x, generator) if zt > 0 else torch.zeros_like(x)
            x = x0 + s_next * (math.sqrt(max(0.0, 1 - zt)) * eps + math.sqrt(zt) * z)
    if final_step:
        x0 = dc_step(denoise(x0, sig[-1]), y, A, step=n - 1, n_steps=n, sigma=sig[-1])
    return x0
