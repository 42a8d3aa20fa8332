"""k-space-guided VDM sampling for super-resolution (seed 001: Jiang, Gao & Sun, ISMRM 2023).

Images are real magnitude images (N, 1, H, W) in the prior's normalised scale. F is the centred orthonormal
2D FFT (:func:`mrdiff_cli.ops.fft.fft2c`); Lambda is the centre (h, w) block of the (H, W) k-space; P^{-1}(Lambda)
crops it out and P(Lambda) zero-pads it back, with the intensity scaling of
:func:`mrdiff_cli.ops.operators.resize_image` so that a low-resolution image of the same intensity maps correctly:

    P^{-1}(Lambda) K = crop(K) * sqrt(hw / HW)         -> :func:`measure_lowres` (on F x)
    P(Lambda) y      = pad(y)  * sqrt(HW / hw)         -> :func:`pad_lowres`

The measurement y_0 (the seed's y-hat_0) is the low-resolution k-space in its own orthonormal scale, i.e.
``fft2c(x_low)`` of an (h, w) image, or ``measure_lowres(x_high)`` for a retrospective degradation.

Seed equation -> code (our VP parametrisation: alpha_t^2 = sigmoid(-gamma(t)), sigma_t^2 = sigmoid(gamma(t));
the seed's sqrt(1 - beta_t) and sqrt(beta_t) are our alpha_t and sigma_t):

    y_t  = alpha_t y_0 + sigma_t P^{-1}(Lambda) F eps                    (fresh eps each step)
    x'_t = F^{-1}[ lambda P(Lambda) y_t + (1 - lambda) Lambda F x_t + (I - Lambda) F x_t ]
                                                                        -> :func:`kspace_guidance`
    x_{t-1} = a (x_t - b eps_theta(x_t; t)) + c eps   (VDM ancestral step p(z_s | z_t), s = t - 1/T):
        z_s = alpha_s / alpha_t (z_t - sigma_t c eps_hat) + sigma_s sqrt(c) eps',  c = -expm1(gamma_s - gamma_t)
                                                                        -> :func:`vdm_step`
    final: x_0 = D(z_0 / alpha_0; exp(gamma_0 / 2)) (the denoised estimate, the mean of p(x | z_0)), followed
    by one more guidance step with y_0 itself (lambda = 1: exact low-k consistency).

Keeping the image real: the seed takes the real part after the guidance. On an even-sized block the Nyquist
row/column -h/2 has its Hermitian partner +h/2 *outside* Lambda, so a plain real part would halve the data
there. :func:`kspace_guidance` instead writes the conjugate of every guided value to its partner outside
Lambda (:func:`hermitian_fill`), i.e. it is the exact projection onto real images whose Lambda block is the
mixture; with lambda = 1 the output's centre block equals the data (to float32 round-off).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..ops.fft import fft2c, ifft2c
from ..ops.operators import crop_kspace, pad_kspace


# ------------------------------------------------------------------------------------------------ k-space helpers


def centre_mask(out_hw: tuple[int, int], lowres_hw: tuple[int, int], device=None) -> torch.Tensor:
    """Lambda: boolean (H, W) mask of the centre (h, w) block (the same block as crop_kspace / pad_kspace)."""
    H, W = out_hw
    h, w = lowres_hw
    m = torch.zeros(H, W, dtype=torch.bool, device=device)
    y0, x0 = H // 2 - h // 2, W // 2 - w // 2
    m[y0 : y0 + h, x0 : x0 + w] = True
    return m


def hermitian_partner(k: torch.Tensor) -> torch.Tensor:
    """K[-f] for centred k-space over the last two axes (index i <-> (2 (N // 2) - i) mod N)."""
    H, W = k.shape[-2:]
    iy = (2 * (H // 2) - torch.arange(H, device=k.device)) % H
    ix = (2 * (W // 2) - torch.arange(W, device=k.device)) % W
    return k.index_select(-2, iy).index_select(-1, ix)


def hermitian_fill(k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set every entry outside ``mask`` whose partner -f lies inside it to conj(K[-f])."""
    outside = hermitian_partner(mask) & ~mask
    return torch.where(outside, hermitian_partner(k).conj(), k)


def realisable(k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hermitian-symmetrise the pairs (f, -f) that both lie inside ``mask`` ((K[f] + conj K[-f]) / 2)."""
    both = hermitian_partner(mask) & mask
    return torch.where(both, 0.5 * (k + hermitian_partner(k).conj()), k)


def measure_lowres(x_high: torch.Tensor, lowres_hw: tuple[int, int]) -> torch.Tensor:
    """y_0 = P^{-1}(Lambda) F x: the (h, w) low-resolution k-space of a high-resolution image (same FOV)."""
    H, W = x_high.shape[-2:]
    h, w = lowres_hw
    k = fft2c(x_high.to(torch.complex64) if not x_high.is_complex() else x_high)
    return crop_kspace(k, (h, w)) * math.sqrt((h * w) / (H * W))


def pad_lowres(y_low: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """P(Lambda) y: zero-pad the low-resolution k-space into the (H, W) grid, intensity-scaled."""
    h, w = y_low.shape[-2:]
    H, W = out_hw
    return pad_kspace(y_low.to(torch.complex64), (H, W)) * math.sqrt((H * W) / (h * w))


def kspace_guidance(x: torch.Tensor, y_pad: torch.Tensor, mask: torch.Tensor, lam: float) -> torch.Tensor:
    """x' = Re F^{-1}[ lam P y + (1 - lam) Lambda F x + (I - Lambda) F x ] (Hermitian-completed, see module doc).

    x: real (..., H, W); y_pad: P(Lambda) y_t, complex, broadcastable to x; mask: Lambda (H, W) bool.
    """
    k = fft2c(x.to(torch.complex64))
    if lam != 0.0:
        k = torch.where(mask, k + lam * (y_pad - k), k)
    k = hermitian_fill(k, mask)
    return ifft2c(k).real


def zero_pad_upsample(y_low: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """The sinc (k-space zero-padding) baseline: the real image whose Lambda block is y and whose outer k-space
    is zero (= ``kspace_guidance`` of a zero image with lambda = 1). (N, h, w) -> (N, H, W)."""
    h, w = y_low.shape[-2:]
    mask = centre_mask(out_hw, (h, w), y_low.device)
    y_pad = realisable(pad_lowres(y_low, out_hw), mask)
    return ifft2c(hermitian_fill(y_pad, mask)).real


# ------------------------------------------------------------------------------------------------ sampler


def vdm_step(z_t: torch.Tensor, eps_hat: torch.Tensor, g_t: torch.Tensor, g_s: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """One ancestral step z_t -> z_s of VDM's p(z_s | z_t) (s < t, gamma_s < gamma_t); ``noise`` None = the mean."""
    a_t, s_t = torch.sigmoid(-g_t).sqrt(), torch.sigmoid(g_t).sqrt()
    a_s, s_s = torch.sigmoid(-g_s).sqrt(), torch.sigmoid(g_s).sqrt()
    c = -torch.expm1(g_s - g_t)
    mean = (a_s / a_t) * (z_t - s_t * c * eps_hat)
    return mean if noise is None else mean + s_s * c.sqrt() * noise


def _eps_batched(model, z: torch.Tensor, g: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    n = z.shape[0]
    bs = n if not batch_size else max(1, int(batch_size))
    gg = g.reshape(1).expand(n) if g.dim() == 0 else g
    out = [model.eps_from_gamma(z[i : i + bs], gg[i : i + bs]) for i in range(0, n, bs)]
    return torch.cat(out)


def _denoise_batched(model, x: torch.Tensor, sigma: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    n = x.shape[0]
    bs = n if not batch_size else max(1, int(batch_size))
    out = [model.denoise(x[i : i + bs], sigma.reshape(1).expand(min(bs, n - i))) for i in range(0, n, bs)]
    return torch.cat(out)


@torch.no_grad()
def vdm_guided_sample(
    model,
    y_low: torch.Tensor,
    lowres_hw: tuple[int, int],
    out_hw: tuple[int, int],
    steps: int,
    guidance: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callable[[int, int], None] | None = None,
    x_shape: tuple[int, ...] | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Super-resolve by ancestral VDM sampling over t_i = i / T (T = ``steps``, from 1 to 0) with k-space guidance.

    model: a :class:`~mrdiff_cli.priors.vdm.VDM` (``gamma(t)``, ``eps_from_gamma(z, gamma)``, ``denoise``).
    y_low: (B, h, w) or (B, 1, h, w) complex low-resolution k-space y_0 (see the module docstring), in the
        prior's normalised intensity scale.
    guidance: lambda in [0, 1] (1 = hard replacement of the centre block, 0 = unconditional sampling).
    x_shape: (N, 1, H, W) with N a multiple of B to draw N / B samples per measurement (sample-major:
        output index k * B + b belongs to y_low[b]); default (B, 1, H, W).
    generator: CPU generator for every random draw (z_1, the ancestral noise, the measurement noise), so the
        same seed gives the same output; ``batch_size`` only chunks the network calls (no effect on the result).
    callback(i, steps) after each step. Returns (N, 1, H, W) float32 real images.
    """
    lam = float(guidance)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"guidance must be in [0, 1], got {guidance}")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    H, W = (int(v) for v in out_hw)
    h, w = (int(v) for v in lowres_hw)
    if h > H or w > W:
        raise ValueError(f"low-resolution matrix {h}x{w} is larger than the output {H}x{W}")
    y = torch.as_tensor(y_low)
    if y.dim() == 4:
        y = y[:, 0]
    if y.dim() == 2:
        y = y[None]
    if tuple(y.shape[-2:]) != (h, w):
        raise ValueError(f"y_low has shape {tuple(y.shape)}, expected (..., {h}, {w})")
    B = y.shape[0]
    shape = tuple(x_shape) if x_shape is not None else (B, 1, H, W)
    N = shape[0]
    if tuple(shape[1:]) != (1, H, W) or N % B:
        raise ValueError(f"x_shape {shape} must be (k * {B}, 1, {H}, {W})")
    dev = next(model.parameters()).device
    mask = centre_mask((H, W), (h, w), dev)
    y_pad = realisable(pad_lowres(y.to(dev), (H, W)), mask).repeat(N // B, 1, 1)[:, None]  # P(Lambda) y_0

    gam = model.gamma(torch.arange(steps + 1, dtype=torch.float32) / steps).detach().float().to(dev)

    def randn() -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(dev)

    z = randn()  # z_1 ~ N(0, I)
    for i in range(steps, 0, -1):
        g_t, g_s = gam[i], gam[i - 1]
        a_t, s_t = torch.sigmoid(-g_t).sqrt(), torch.sigmoid(g_t).sqrt()
        eps_y = randn()  # drawn for every lambda so the random stream does not depend on it
        if lam > 0.0:
            y_t = a_t * y_pad + s_t * torch.where(mask, fft2c(eps_y.to(torch.complex64)), 0)  # P y_t
            z = kspace_guidance(z, y_t, mask, lam)
        eps_hat = _eps_batched(model, z, g_t, batch_size)
        z = vdm_step(z, eps_hat, g_t, g_s, randn())
        if callback is not None:
            callback(steps - i + 1, steps)
    g0 = gam[0]
    x = _denoise_batched(model, z / torch.sigmoid(-g0).sqrt(), torch.exp(0.5 * g0), batch_size)
    return kspace_guidance(x, y_pad, mask, lam).float()
