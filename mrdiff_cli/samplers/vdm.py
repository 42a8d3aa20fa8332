"""k-space-guided VDM sampling for super-resolution (seed 001: Jiang, Gao & Sun, ISMRM 2023).

Images are real magnitude images (N, 1, H, W) in the prior's normalised scale. F is the centred orthonormal
2D FFT (:func:`mrdiff_cli.ops.fft.fft2c`); Lambda is the centre (h, w) block of the (H, W) k-space; P^{-1}(Lambda)
crops it out and P(Lambda) zero-pads it back, with the intensity scaling of
:class:`mrdiff_cli.ops.superres.SuperResOp` (y = P^{-1}(Lambda) F x in the high-resolution k-space's units; a
low-resolution image x_low gives y = ``A.from_lowres(fft2c(x_low))``).

Seed equation -> code (our VP parametrisation: alpha_t^2 = sigmoid(-gamma(t)), sigma_t^2 = sigmoid(gamma(t));
the seed's sqrt(1 - beta_t) and sqrt(beta_t) are our alpha_t and sigma_t):

    y_t  = alpha_t y_0 + sigma_t P^{-1}(Lambda) F eps                    (fresh eps each step)
    x'_t = F^{-1}[ lambda P(Lambda) y_t + (1 - lambda) Lambda F x_t + (I - Lambda) F x_t ]
                                                                        -> :func:`mrdiff_cli.ops.superres.real_kspace_replace`
    x_{t-1} = a (x_t - b eps_theta(x_t; t)) + c eps   (VDM ancestral step p(z_s | z_t), s = t - 1/T):
        z_s = alpha_s / alpha_t (z_t - sigma_t c eps_hat) + sigma_s sqrt(c) eps',  c = -expm1(gamma_s - gamma_t)
                                                                        -> :func:`vdm_step`
    final: x_0 = D(z_0 / alpha_0; exp(gamma_0 / 2)) (the denoised estimate, the mean of p(x | z_0)), followed
    by one more guidance step with y_0 itself (lambda = 1: exact low-k consistency).

Sampler contract (as the other samplers): ``vdm_sample(denoise, y, A, sigmas, x_init, ...)`` with A the
super-resolution operator (:class:`mrdiff_cli.ops.superres.SuperResOp`, y in its units: P(Lambda) y is
``A.pad(y)``), and the VE noise levels sigma_i = exp(gamma(t_i) / 2) at t_i = 1, (T-1)/T, ..., 0 (so gamma =
2 ln sigma). ``denoise`` is the VE denoiser D(x; sigma); when it has an ``eps(z, gamma)`` method (the VDM's
cancellation-free eps-prediction, :class:`~mrdiff_cli.samplers.adapters.VDMDenoiser`) that is used for eps_hat.

Keeping the image real: the seed takes the real part after the guidance. On an even-sized block the Nyquist
row/column -h/2 has its Hermitian partner +h/2 *outside* Lambda, so a plain real part would halve the data
there. :func:`~mrdiff_cli.ops.superres.real_kspace_replace` instead writes the conjugate of every guided value to its partner outside
Lambda (:func:`~mrdiff_cli.ops.superres.hermitian_fill`), i.e. it is the exact projection onto real images whose Lambda block is the
mixture; with lambda = 1 the output's centre block equals the data (to float32 round-off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch

from ..ops.fft import fft2c
from ..ops.superres import SuperResOp, real_kspace_replace, realisable
from .noise import Generators
from .protocols import DCStep, Denoiser


def vdm_step(z_t: torch.Tensor, eps_hat: torch.Tensor, g_t: torch.Tensor, g_s: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """One ancestral step z_t -> z_s of VDM's p(z_s | z_t) (s < t, gamma_s < gamma_t); ``noise`` None = the mean."""
    a_t, s_t = torch.sigmoid(-g_t).sqrt(), torch.sigmoid(g_t).sqrt()
    a_s, s_s = torch.sigmoid(-g_s).sqrt(), torch.sigmoid(g_s).sqrt()
    c = -torch.expm1(g_s - g_t)
    mean = (a_s / a_t) * (z_t - s_t * c * eps_hat)
    return mean if noise is None else mean + s_s * c.sqrt() * noise


def _eps(denoise: Denoiser, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    if hasattr(denoise, "eps"):
        return denoise.eps(z, g)
    alpha, s = torch.sigmoid(-g).sqrt(), torch.exp(0.5 * g)
    x = z / alpha
    return (x - denoise(x, float(s))) / s


@torch.no_grad()
def vdm_sample(
    denoise: Denoiser,
    y: torch.Tensor,
    A: SuperResOp,
    sigmas: torch.Tensor,
    x_init: torch.Tensor,
    *,
    lam: float = 1.0,
    generator: Generators = None,
    callback: Callable[[int, int], None] | None = None,
    dc: DCStep | None = None,
) -> torch.Tensor:
    """Super-resolve by ancestral VDM sampling with the seed's k-space guidance (see the module docstring).

    y: (B, h, w) or (B, 1, h, w) complex measurement in A's units; x_init: (N, 1, H, W) real, N a multiple of
    B (N / B samples per measurement, sample-major: index k * B + b belongs to y[b]); only its shape is used
    (z_1 ~ N(0, I)). sigmas: T + 1 VE levels from t = 1 down to t = 0. lam: the guidance weight lambda in
    [0, 1] (1 = hard replacement of the centre block, 0 = unconditional sampling). generator: one CPU
    generator for every draw (z_1, the ancestral noise, the measurement noise). ``dc`` is not used (the
    guidance is the seed's, inside the step); callback(i, T) after each step. Returns (N, 1, H, W) float32.
    """
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError(f"guidance must be in [0, 1], got {lam}")
    if len(sigmas) < 2:
        raise ValueError("vdm_sample needs at least 2 noise levels (steps >= 1)")
    if isinstance(generator, (list, tuple)):
        raise ValueError("vdm_sample takes one generator")
    gen = cast(torch.Generator | None, generator)  # one generator (checked above)
    lam = float(lam)
    shape = tuple(x_init.shape)
    yy = torch.as_tensor(y)
    yy = yy[:, 0] if yy.dim() == 4 else (yy[None] if yy.dim() == 2 else yy)
    B, N = yy.shape[0], shape[0]
    if tuple(yy.shape[-2:]) != tuple(A.lowres_hw):
        raise ValueError(f"y has shape {tuple(yy.shape)}, expected (..., {A.lowres_hw[0]}, {A.lowres_hw[1]})")
    if len(shape) != 4 or shape[1] != 1 or tuple(shape[-2:]) != tuple(A.out_hw) or N % B:
        raise ValueError(f"x_init shape {shape} must be (k * {B}, 1, {A.out_hw[0]}, {A.out_hw[1]})")
    dev = x_init.device
    mask = A.kmask.to(dev)
    y_pad = realisable(A.pad(yy.to(dev)), mask).repeat(N // B, 1, 1)[:, None]  # P(Lambda) y_0
    gam = 2.0 * torch.log(torch.as_tensor(sigmas, dtype=torch.float32)).to(dev)  # gamma at t = 1 .. 0
    steps = len(gam) - 1

    def randn() -> torch.Tensor:
        return torch.randn(shape, generator=gen).to(dev)

    z = randn()  # z_1 ~ N(0, I)
    for j in range(steps):
        g_t, g_s = gam[j], gam[j + 1]
        a_t, s_t = torch.sigmoid(-g_t).sqrt(), torch.sigmoid(g_t).sqrt()
        eps_y = randn()  # drawn for every lambda so the random stream does not depend on it
        if lam > 0.0:
            y_t = a_t * y_pad + s_t * torch.where(mask, fft2c(eps_y.to(torch.complex64)), 0)  # P y_t
            z = real_kspace_replace(z, y_t, mask, lam)
        z = vdm_step(z, _eps(denoise, z, g_t), g_t, g_s, randn())
        if callback is not None:
            callback(j + 1, steps)
    g0 = gam[-1]
    x = denoise(z / torch.sigmoid(-g0).sqrt(), float(torch.exp(0.5 * g0)))
    return real_kspace_replace(x, y_pad, mask, lam).float()
