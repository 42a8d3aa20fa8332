"""Score prior with EDM preconditioning on the VE-SDE.

Forward process (VE-SDE, seed 000):  x_sigma = x_0 + sigma * n,  n ~ N(0, I),  sigma in [sigma_min, sigma_max].
Denoiser (Karras et al. 2022 preconditioning):
    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F_theta(c_in(sigma) x, c_noise(sigma))
    c_skip = s_d^2 / (sigma^2 + s_d^2),  c_out = sigma s_d / sqrt(sigma^2 + s_d^2),
    c_in = 1 / sqrt(sigma^2 + s_d^2),  c_noise = ln(sigma) / 4.
Score (Tweedie):  grad_x log p_sigma(x) = (D(x; sigma) - x) / sigma^2            -> inline in the samplers'
                  predictor / corrector (:func:`mrdiff_cli.samplers.pc.pc_sample`)
VP / VDM view:    x_VP = alpha x_0 + sigma_VP n with sigma_VE = sigma_VP / alpha = exp(gamma / 2),
                  eps_hat = (x_VE - D(x_VE; sigma_VE)) / sigma_VE                  -> :meth:`EDMPrior.eps`
                  (the samplers use the cancellation-free :meth:`mrdiff_cli.priors.vdm.VDM.eps_from_gamma`)
Training loss (denoising score matching, EDM weighting):
    E_{sigma, n} lambda(sigma) || D(x_0 + sigma n; sigma) - x_0 ||^2,  lambda = (sigma^2 + s_d^2) / (sigma s_d)^2,
    ln sigma ~ N(P_mean, P_std^2).                                                  -> :func:`dsm_loss`
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from torch import nn

from .unet import UNet, UNetConfig


@dataclass
class EDMConfig:
    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    p_mean: float = -1.2
    p_std: float = 1.2

    def to_dict(self) -> dict:
        return asdict(self)


class EDMPrior(nn.Module):
    """Magnitude-image prior: batched denoiser D(x; sigma) and eps_hat over real images (B, 1, H, W)."""

    def __init__(self, unet_cfg: UNetConfig, edm_cfg: EDMConfig | None = None):
        super().__init__()
        self.unet_cfg = unet_cfg
        self.edm = edm_cfg or EDMConfig()
        self.net = UNet(unet_cfg)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.denoise(x, sigma)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """D(x; sigma): the MMSE estimate of the clean image."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.dim() == 0:
            sigma = sigma.expand(x.shape[0])
        s = sigma.reshape(-1, 1, 1, 1)
        sd = self.edm.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / torch.sqrt(s**2 + sd**2)
        c_in = 1.0 / torch.sqrt(s**2 + sd**2)
        c_noise = torch.log(sigma) / 4.0
        out = self.net((c_in * x).to(x.dtype), c_noise)
        return c_skip * x + c_out * out.float()

    def eps(self, x_ve: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Noise prediction for the VP/VDM parametrisation (x_ve = x_vp / alpha)."""
        sigma_t = torch.as_tensor(sigma, dtype=torch.float32, device=x_ve.device)
        s = sigma_t.reshape(-1, 1, 1, 1) if sigma_t.dim() else sigma_t
        return (x_ve - self.denoise(x_ve, sigma)) / s


def sample_sigmas(n: int, cfg: EDMConfig, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    ln = torch.randn(n, generator=generator, device=device) * cfg.p_std + cfg.p_mean
    return ln.exp().clamp(cfg.sigma_min, cfg.sigma_max)


class EDMLike(Protocol):
    """What :func:`dsm_loss` needs: the EDM constants and a denoiser (an EDMPrior, or a wrapper that runs one
    through its ``forward`` under DistributedDataParallel)."""

    edm: EDMConfig

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, /) -> torch.Tensor: ...


def dsm_loss(
    model: EDMLike, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, per_sample: bool = False
) -> torch.Tensor:
    """EDM-weighted denoising score matching loss (see module docstring)."""
    sd = model.edm.sigma_data
    s = sigma.reshape(-1, 1, 1, 1)
    weight = (s**2 + sd**2) / (s * sd) ** 2
    d = model.denoise(x0 + s * noise, sigma)
    per = (weight * (d - x0) ** 2).mean(dim=(1, 2, 3))
    return per if per_sample else per.mean()
