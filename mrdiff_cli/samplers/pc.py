"""Paper-exact predictor-corrector sampler (seed 000, Song et al. VE-SDE), ``--sampler pc``.

VE-SDE  dx = sqrt(d[sigma^2]/dt) dw,  discretised on geometric sigmas sigma_0 = sigma_max > ... > sigma_{N-1}.
Per step i (sigma = sigma_i, sigma' = sigma_{i+1}, 0 after the last):
    predictor (reverse diffusion):  x_mean = x + (sigma^2 - sigma'^2) s(x, sigma);  x = x_mean + sqrt(sigma^2 - sigma'^2) z
    data consistency                 (dc_fn)
    corrector (Langevin, snr r):    g = s(x, sigma'); eps = 2 (r ||z|| / ||g||)^2;  x = x + eps g + sqrt(2 eps) z
    data consistency                 (dc_fn)
with the score s(x, sigma) = (D(x; sigma) - x) / sigma^2. NFE = 2 N (N predictor + N corrector evaluations).
Returns the last noise-free mean, data-consistent.
"""

from __future__ import annotations

from typing import Callable

import torch

from .fast import _randn_like


def _norm(v: torch.Tensor) -> torch.Tensor:
    """Per-batch-element L2 norm, broadcastable against v."""
    n = torch.sqrt(torch.sum(torch.abs(v.reshape(v.shape[0], -1)) ** 2, dim=1))
    return n.reshape(-1, *([1] * (v.dim() - 1)))


def pc_sample(
    denoise_fn: Callable[[torch.Tensor, float], torch.Tensor],
    dc_fn: Callable[[torch.Tensor], torch.Tensor],
    sigmas: torch.Tensor,
    shape_like: torch.Tensor,
    *,
    snr: float = 0.16,
    n_corrector: int = 1,
    generator: torch.Generator | None = None,
    callback: Callable[[int, int], None] | None = None,
    every: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Predictor-corrector posterior sampling. ``every(i, x)`` is an optional hook (hybrid SENSE sweeps)."""
    sig = [float(s) for s in sigmas] + [0.0]
    x = sig[0] * _randn_like(shape_like, generator)
    x_mean = x
    n = len(sig) - 1
    for i in range(n):
        s, s_next = sig[i], sig[i + 1]
        # predictor: reverse diffusion
        score = (denoise_fn(x, s) - x) / s**2
        g2 = s**2 - s_next**2
        x_mean = x + g2 * score
        x = x_mean + (g2**0.5) * _randn_like(x, generator) if s_next > 0 else x_mean
        x, x_mean = dc_fn(x), dc_fn(x_mean)
        # corrector: Langevin dynamics at the next noise level
        if s_next > 0:
            for _ in range(n_corrector):
                grad = (denoise_fn(x, s_next) - x) / s_next**2
                z = _randn_like(x, generator)
                step = 2 * (snr * _norm(z) / _norm(grad).clamp_min(1e-12)) ** 2
                x_mean = x + step * grad
                x = dc_fn(x_mean + torch.sqrt(2 * step) * z)
                x_mean = dc_fn(x_mean)
        if every is not None:
            x = every(i, x)
            x_mean = every(i, x_mean) if i == n - 1 else x_mean
        if callback is not None:
            callback(i + 1, n)
    return x_mean
