"""Unconditional prior samples with the EDM Heun sampler (Karras et al. 2022, Alg. 1, deterministic)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .schedules import karras_sigmas

if TYPE_CHECKING:
    from ..priors.edm import EDMPrior
    from ..priors.vdm import VDM


@torch.no_grad()
def unconditional_sample(model: EDMPrior | VDM, shape: tuple[int, ...], steps: int = 32, seed: int = 0, sigma_max: float | None = None) -> torch.Tensor:
    edm = model.edm
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    sig = karras_sigmas(steps, edm.sigma_min, sigma_max or edm.sigma_max).tolist() + [0.0]
    x = torch.randn(shape, generator=g).to(device) * sig[0]
    for i in range(steps):
        s, sn = sig[i], sig[i + 1]
        d = (x - model.denoise(x, s)) / s
        x_next = x + (sn - s) * d
        if sn > 0:
            d2 = (x_next - model.denoise(x_next, sn)) / sn
            x_next = x + (sn - s) * 0.5 * (d + d2)
        x = x_next
    return x
