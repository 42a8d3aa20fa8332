"""Noise-level schedules (sigma on the VE scale, decreasing)."""

from __future__ import annotations

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
