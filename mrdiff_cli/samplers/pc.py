"""Paper-exact predictor-corrector sampler (seed 000: Chung & Ye; Song et al.'s VE-SDE), ``--sampler pc``.

VE-SDE  dx = sqrt(d[sigma^2]/dt) dw,  discretised on geometric sigmas sigma_0 = sigma_max > ... > sigma_{N-1}.
Per step i (sigma = sigma_i, sigma' = sigma_{i+1}, 0 after the last):
    predictor (reverse diffusion):  x_mean = x + (sigma^2 - sigma'^2) s(x, sigma);  x = x_mean + sqrt(sigma^2 - sigma'^2) z
    data consistency                 x = dc(x), x_mean = dc(x_mean)
    corrector (Langevin, snr r):    g = s(x, sigma'); eps = 2 (r ||z|| / ||g||)^2;  x = x + eps g + sqrt(2 eps) z
    data consistency                 x = dc(x), x_mean = dc(x_mean)
with the score s(x, sigma) = (D(x; sigma) - x) / sigma^2. NFE = 2 N - 1 (N predictor + N - 1 corrector
evaluations). Returns the last noise-free mean, data-consistent. The whole algorithm is :func:`pc_sample`;
the consistency step (hard projection, soft lambda, the hybrid SENSE sweep every m steps) is the ``dc``
object of samplers/dc.py, called with the step index.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .dc import SoftDC
from .noise import Generators, randn_like
from .protocols import DCStep, Denoiser, LinearOperator


def _norm(v: torch.Tensor) -> torch.Tensor:
    """Per-batch-element L2 norm, broadcastable against v."""
    n = torch.sqrt(torch.sum(torch.abs(v.reshape(v.shape[0], -1)) ** 2, dim=1))
    return n.reshape(-1, *([1] * (v.dim() - 1)))


def pc_sample(
    denoise: Denoiser,
    y: torch.Tensor,
    A: LinearOperator,
    sigmas: torch.Tensor,
    x_init: torch.Tensor,
    *,
    dc: DCStep | None = None,
    snr: float = 0.16,
    n_corrector: int = 1,
    generator: Generators = None,
    callback: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Predictor-corrector posterior sampling from x_T = sigma_0 z (``x_init`` gives shape, dtype and device:
    at sigma_0 = sigma_max the start does not depend on it). ``dc`` default: SoftDC(1.0)."""
    dc_step: DCStep = dc if dc is not None else SoftDC(1.0)
    sig = [float(s) for s in sigmas] + [0.0]
    n = len(sig) - 1
    x = sig[0] * randn_like(x_init, generator)
    x_mean = x
    for i in range(n):
        s, s_next = sig[i], sig[i + 1]

        def consistent(v: torch.Tensor, i_: int = i, sigma_: float = s_next if s_next > 0 else s) -> torch.Tensor:
            return dc_step(v, y, A, step=i_, n_steps=n, sigma=sigma_)

        # predictor: reverse diffusion
        score = (denoise(x, s) - x) / s**2
        g2 = s**2 - s_next**2
        x_mean = x + g2 * score
        x = x_mean + (g2**0.5) * randn_like(x, generator) if s_next > 0 else x_mean
        x, x_mean = consistent(x), consistent(x_mean)
        # corrector: Langevin dynamics at the next noise level
        if s_next > 0:
            for _ in range(n_corrector):
                grad = (denoise(x, s_next) - x) / s_next**2
                z = randn_like(x, generator)
                step = 2 * (snr * _norm(z) / _norm(grad).clamp_min(1e-12)) ** 2
                x_mean = consistent(x + step * grad)
                x = consistent(x + step * grad + torch.sqrt(2 * step) * z)
        if callback is not None:
            callback(i + 1, n)
    return x_mean
