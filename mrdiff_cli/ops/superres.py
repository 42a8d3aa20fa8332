"""The super-resolution forward model: a low-resolution acquisition is the centre block of k-space.

    y = P^{-1}(Lambda) F x + n        (seed 001: Jiang, Gao & Sun, ISMRM 2023)

x is the (H, W) high-resolution image, F the centred orthonormal 2D FFT, Lambda the centre (h, w) block and
P^{-1}(Lambda) the crop of that block. :class:`SuperResOp` is this operator with its adjoint (zero-pad back,
inverse FFT) and normal operator (F^H Lambda F, an orthogonal projection since A A^H = I).

Units: A works in the high-resolution k-space's orthonormal scale. The orthonormal k-space of an (h, w)
*image* of the same intensity is smaller by sqrt(hw / HW) (fewer pixels, same field of view), so a
low-resolution image x_low gives ``y = A.from_lowres(fft2c(x_low))`` and ``A.to_lowres(A(x))`` is the k-space
of the low-resolution image of x (see :func:`measure_lowres`).

Magnitude images are real, but the measured block of an even-sized matrix holds the Nyquist row/column
-h/2 whose Hermitian partner +h/2 lies *outside* Lambda. :func:`hermitian_fill` writes the conjugate of
every measured value into its partner, so projecting onto real images keeps all the data
(:func:`real_kspace_replace`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .fft import fft2c, ifft2c
from .operators import crop_kspace, pad_kspace


def centre_mask(out_hw: tuple[int, int], lowres_hw: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
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


class SuperResOp:
    """A = P^{-1}(Lambda) F for real or complex images x (..., H, W) → y (..., h, w) complex64.

    ``A(x)`` crops the centre (h, w) block of ``fft2c(x)``; ``A.adjoint(y)`` zero-pads it back and inverse
    transforms; ``A.normal(x) = F^H Lambda F x``. ``kmask`` is Lambda on the (H, W) grid (bool).
    """

    def __init__(self, out_hw: Sequence[int], lowres_hw: Sequence[int], device: torch.device | str | None = None):
        H, W = (int(v) for v in out_hw)
        h, w = (int(v) for v in lowres_hw)
        if h > H or w > W or h < 1 or w < 1:
            raise ValueError(f"low-resolution matrix {h}x{w} must be within the output {H}x{W}")
        self.out_hw, self.lowres_hw = (H, W), (h, w)
        self.kmask = centre_mask((H, W), (h, w), device)
        self.scale = math.sqrt((H * W) / (h * w))  # high-res / low-res orthonormal k-space scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return crop_kspace(fft2c(_complex(x)), self.lowres_hw)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return ifft2c(self.pad(y))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        k = fft2c(_complex(x))
        return ifft2c(torch.where(self.kmask.to(k.device), k, torch.zeros_like(k)))

    def pad(self, y: torch.Tensor) -> torch.Tensor:
        """P(Lambda) y: the measured block zero-padded into the (H, W) k-space grid."""
        return pad_kspace(y.to(torch.complex64), self.out_hw)

    def from_lowres(self, k_low: torch.Tensor) -> torch.Tensor:
        """Orthonormal k-space of a low-resolution image (same FOV, same intensity) → y in A's units."""
        return k_low.to(torch.complex64) * self.scale

    def to_lowres(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`from_lowres`."""
        return y / self.scale


def _complex(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_complex() else x.to(torch.complex64)


def measure_lowres(x_high: torch.Tensor, lowres_hw: tuple[int, int]) -> torch.Tensor:
    """The (h, w) k-space of the low-resolution image of ``x_high`` (same FOV, same intensity):
    ``P^{-1}(Lambda) F x * sqrt(hw / HW)`` (a retrospective low-resolution acquisition)."""
    A = SuperResOp(tuple(x_high.shape[-2:]), lowres_hw, x_high.device)
    return A.to_lowres(A(x_high))


def real_kspace_replace(x: torch.Tensor, y_pad: torch.Tensor, kmask: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
    """x' = Re F^{-1} herm[ lam P y + (1 - lam) Lambda F x + (I - Lambda) F x ] — the seed's k-space guidance,
    Hermitian-completed so the real part keeps the measured data (lam = 1: exact projection onto the real
    images whose Lambda block is y). ``lam``: float or per-batch tensor broadcastable to x."""
    k = fft2c(_complex(x))
    if not (isinstance(lam, (int, float)) and lam == 0.0):
        k = torch.where(kmask, k + lam * (y_pad - k), k)
    return ifft2c(hermitian_fill(k, kmask)).real


def zero_pad_upsample(y_low: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """The sinc (k-space zero-padding) baseline: the real image whose Lambda block is the low-resolution k-space
    ``y_low`` (N, h, w) (low-resolution image units) and whose outer k-space is zero → (N, H, W)."""
    A = SuperResOp(out_hw, tuple(y_low.shape[-2:]), y_low.device)
    y_pad = realisable(A.pad(A.from_lowres(y_low)), A.kmask)
    return ifft2c(hermitian_fill(y_pad, A.kmask)).real


def estimate_image_noise(img: torch.Tensor) -> torch.Tensor:
    """Per-slice noise std of real images (N, H, W) from the finest diagonal Haar detail (Donoho's MAD:
    median |HH| / 0.6745); robust to edges, which occupy few pixels. → (N,)."""
    x = img.float()
    H, W = x.shape[-2:]
    x = x[..., : H - H % 2, : W - W % 2]
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2.0
    return hh.reshape(hh.shape[0], -1).abs().median(dim=1).values / 0.6745
