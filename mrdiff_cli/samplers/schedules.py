"""Noise-level schedules (sigma on the VE scale, decreasing)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def geometric_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """VE-SDE discretisation of the seed: sigma_i = sigma_max (sigma_min / sigma_max)^(i / (n - 1))."""
    if n == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    i = torch.arange(n, dtype=torch.float64)
    return sigma_max * (sigma_min / sigma_max) ** (i / (n - 1))


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """EDM schedule: (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho."""
    if n == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    i = torch.arange(n, dtype=torch.float64)
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (a + i / (n - 1) * (b - a)) ** rho


def vdm_sigmas(gamma_fn: Callable[[torch.Tensor], torch.Tensor], steps: int) -> torch.Tensor:
    """VE noise levels sigma_i = exp(gamma(t_i) / 2) at t_i = 1, (T-1)/T, ..., 0 (T = ``steps``) of a VDM noise
    schedule ``gamma_fn(t)`` (learned, or the linear view of a score prior) → (T + 1,) float32, decreasing."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    t = torch.arange(steps, -1, -1, dtype=torch.float32) / steps
    with torch.no_grad():
        g = gamma_fn(t).detach().float().cpu()
    return torch.exp(0.5 * g)
