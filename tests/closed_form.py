"""Test-only priors whose posterior is known in closed form (the samplers are checked against them)."""

from __future__ import annotations

import torch


class GaussianPrior:
    """x ~ N(mean, std^2 I) per real channel: D(x; sigma) = (std^2 x + sigma^2 mean) / (std^2 + sigma^2)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        self.mean, self.std = mean, std

    def denoise(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        s = s.reshape(-1, *([1] * (x.dim() - 1))) if s.dim() else s
        v = self.std**2
        return (v * x + s**2 * self.mean) / (v + s**2)
