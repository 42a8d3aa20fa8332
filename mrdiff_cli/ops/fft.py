"""Centered orthonormal 2D FFTs over the last two axes (torch, complex64, batched, any device)."""

from __future__ import annotations

import torch


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D DFT: F x = fftshift(fft2(ifftshift(x))) / sqrt(H W)."""
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    x = torch.fft.fft2(x, dim=(-2, -1), norm="ortho")
    return torch.fft.fftshift(x, dim=(-2, -1))


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal inverse 2D DFT, F^H = F^{-1}."""
    k = torch.fft.ifftshift(k, dim=(-2, -1))
    k = torch.fft.ifft2(k, dim=(-2, -1), norm="ortho")
    return torch.fft.fftshift(k, dim=(-2, -1))


def rss(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root sum of squares over the coil axis."""
    return torch.sqrt(torch.sum(torch.abs(x) ** 2, dim=dim))
