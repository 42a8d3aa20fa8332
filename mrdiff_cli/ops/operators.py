"""Linear MRI forward operators with adjoint and normal operator — every A of mrdiff follows
:class:`LinearOperator`.

=================================  ======================  ==========================  ==============================
operator                           x (image)               y (measurement)             A
=================================  ======================  ==========================  ==============================
``CoilwiseOp`` (1 coil = single)   (batch, coils, H, W)    (batch, coils, H, W)        M F, per coil
``SenseOp``                        (batch, H, W)           (batch, coils, H, W)        M F S
``ops.superres.SuperResOp``        (..., H, W)             (..., h, w)                 P^{-1}(Lambda) F (centre crop)
=================================  ======================  ==========================  ==============================

All complex64 (real images are promoted). The mask broadcasts against k-space: (H, W), (1, W) or
(batch, 1, H, W). Tests check <A x, y> = <x, A^H y> for each (tests/test_ops_operators.py).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from .fft import fft2c, ifft2c


@runtime_checkable
class LinearOperator(Protocol):
    """A forward model: ``A(x)``, its adjoint ``A.adjoint(y)`` and the normal operator ``A.normal(x) = A^H A x``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def adjoint(self, y: torch.Tensor) -> torch.Tensor: ...

    def normal(self, x: torch.Tensor) -> torch.Tensor: ...


def _as_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    m = mask.to(device=like.device, dtype=torch.float32)
    while m.dim() < like.dim():
        m = m.unsqueeze(0)
    return m


class CoilwiseOp:
    """A = M F applied to every coil image independently (single-coil when coils == 1; SSOS mode)."""

    def __init__(self, mask: torch.Tensor):
        self.mask = mask

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _as_mask(self.mask, x) * fft2c(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return ifft2c(_as_mask(self.mask, y) * y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return ifft2c(_as_mask(self.mask, x) * fft2c(x))


class SenseOp:
    """Multi-coil SENSE operator A x = M F (S x); x (batch, H, W), S (batch, coils, H, W)."""

    def __init__(self, mask: torch.Tensor, maps: torch.Tensor):
        self.mask = mask
        self.maps = maps

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        k = fft2c(self.maps * x.unsqueeze(-3))
        return _as_mask(self.mask, k) * k

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sum(self.maps.conj() * ifft2c(_as_mask(self.mask, y) * y), dim=-3)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.adjoint(self(x))


def normalize_maps(maps: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Scale sensitivities so that sum_c |S_c|^2 = 1 wherever any coil has signal (seed Prop. 1)."""
    norm = torch.sqrt(torch.sum(torch.abs(maps) ** 2, dim=-3, keepdim=True))
    scale = torch.where(norm > eps, 1.0 / norm.clamp_min(eps), torch.zeros_like(norm))
    return (maps * scale).to(maps.dtype)


def sense_combine(coil_images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Optimal coil combination sum_c conj(S_c) x_c (with normalised maps: the SENSE least-squares image)."""
    return torch.sum(maps.conj() * coil_images, dim=-3)


def crop_kspace(k: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Keep the centre (h, w) block of centred k-space (a lower-resolution acquisition)."""
    H, W = k.shape[-2:]
    h, w = out_hw
    if h > H or w > W:
        raise ValueError(f"cannot crop {H}x{W} k-space to larger {h}x{w}")
    y0, x0 = H // 2 - h // 2, W // 2 - w // 2
    return k[..., y0 : y0 + h, x0 : x0 + w]


def pad_kspace(k: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Zero-pad centred k-space to (H, W); inverse of :func:`crop_kspace` on the kept block."""
    h, w = k.shape[-2:]
    H, W = out_hw
    if h > H or w > W:
        raise ValueError(f"cannot pad {h}x{w} k-space to smaller {H}x{W}")
    out = torch.zeros(*k.shape[:-2], H, W, dtype=k.dtype, device=k.device)
    y0, x0 = H // 2 - h // 2, W // 2 - w // 2
    out[..., y0 : y0 + h, x0 : x0 + w] = k
    return out


def resize_image(x: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Change an image's matrix at fixed field of view by k-space crop or zero-pad (sinc interpolation).

    Intensities are kept on the same scale: with orthonormal FFTs the k-space values are scaled by
    sqrt(out_pixels / in_pixels), so a crop followed by a pad back gives the low-pass image at the
    original intensity (round trip).
    """
    H, W = x.shape[-2:]
    h, w = out_hw
    k = fft2c(x.to(torch.complex64) if not x.is_complex() else x)
    scale = ((h * w) / (H * W)) ** 0.5
    if h <= H and w <= W:
        k2 = crop_kspace(k, (h, w))
    elif h >= H and w >= W:
        k2 = pad_kspace(k, (h, w))
    else:
        k2 = pad_kspace(crop_kspace(k, (min(h, H), min(w, W))), (h, w))
    return ifft2c(k2 * scale)

