"""Variational diffusion model (Kingma et al. 2021, "VDM"; seed 001: Jiang, Gao & Sun, ISMRM 2023) on top of
the EDM score prior: one trained network serves reconstruction (VE denoiser) and super-resolution (VDM).

Notation (VP / VDM, t in [0, 1]):
    z_t = alpha_t x + sigma_t eps,   alpha_t^2 = sigmoid(-gamma(t)),  sigma_t^2 = sigmoid(gamma(t)),
    SNR(t) = alpha_t^2 / sigma_t^2 = exp(-gamma(t))                      -> :meth:`VDM.alpha_sigma`
    (the seed writes alpha_t = sqrt(1 - beta_t^2) and SNR = alpha_t^2 / beta_t^2: its beta_t is our sigma_t)
Learned monotone schedule gamma_phi(t) (VDM paper, App. "monotonic neural net"):
    gt(t) = l1(t) + l3(sigmoid(l2(l1(t)))),  l1, l2, l3 with non-negative weights (|W|)
    gamma(t) = gamma_min + (gamma_max - gamma_min) (gt(t) - gt(0)) / (gt(1) - gt(0))   -> :class:`MonotoneGamma`
VE view of the same latent (what the EDM network was trained on):
    x_ve = z_t / alpha_t,  sigma_ve = sigma_t / alpha_t = exp(gamma / 2)
    eps_hat(z_t; t) = (x_ve - D(x_ve; sigma_ve)) / sigma_ve                             -> :meth:`VDM.eps`
Variational lower bound, -log p(x) <= L_prior + L_recon + L_diffusion (per image, in nats; reported in bits/dim):
    L_prior     = KL(q(z_1|x) || N(0, I)) = 1/2 sum(sigma_1^2 + alpha_1^2 x^2 - 1 - log sigma_1^2)  -> :func:`prior_kl`
    L_recon     = -log p(x | z_0), discretised Gaussian decoder centred at z_0/alpha_0, std exp(gamma_0/2)
                                                                   -> :func:`recon_nll`, :func:`log_discretised_gaussian`
    L_inf       = 1/2 E_{t~U(0,1), eps} [gamma'(t) || eps - eps_hat(z_t; t) ||^2]        (continuous time)
    L_T         = T/2 E_{i~U{1..T}, eps} [(exp(gamma(t) - gamma(s)) - 1) || eps - eps_hat(z_t; t) ||^2],
                  t = i/T, s = (i-1)/T  (the seed's "diffusion loss", finite T)           -> :func:`diffusion_loss`
    the sum, one Monte-Carlo draw per image, in bits/dim                                -> :func:`vlb_terms`

Data model for the likelihood (``VDMConfig``): images are in the prior's normalised scale (each slice divided
by its 99th percentile, tissue near 1). For the bound they are quantised to ``vocab_size`` levels on
[``data_min``, ``data_max``] (default 256 levels on [0, 2], bin width 2/255 ~ 0.0078, values outside are clipped),
so the bits/dim are those of an 8-bit image whose full scale is twice the 99th-percentile intensity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .edm import EDMConfig, EDMPrior
from .format import BUNDLE_VERSION, NORMALIZATION
from .unet import UNetConfig


@dataclass
class VDMConfig:
    """Noise schedule and likelihood settings of a VDM (stored under ``architecture.vdm`` in config.json).

    gamma_min / gamma_max: initial end points of gamma (learned). sigma_ve = exp(gamma / 2):
        gamma_min = -13.3 -> sigma_ve ~ 0.0013 (below the EDM prior's sigma_min 0.002, the denoiser is ~identity there);
        gamma_max = 5.0   -> sigma_ve ~ 12.2 (the EDM prior is trained with ln sigma ~ N(-1.2, 1.2^2), so
        sigma = 12 is already its +3 std edge; sigma = 80 (gamma 8.8) is a 4.6-std event it has practically never seen).
    n_timesteps_train: 0 = continuous-time loss L_inf (with gamma'(t) by autograd); T > 0 = the discrete L_T.
    vocab_size, data_min, data_max: the quantisation of the data for the likelihood (see the module docstring).
    n_features: width of the gamma network's hidden layer (1024 in the VDM paper).
    variance_minimisation: the VDM trick for the schedule's *shape* (continuous time only, see :func:`vlb_terms`).
    """

    gamma_min: float = -13.3
    gamma_max: float = 5.0
    n_timesteps_train: int = 0
    vocab_size: int = 256
    data_min: float = 0.0
    data_max: float = 2.0
    n_features: int = 1024
    variance_minimisation: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ schedule


class PositiveLinear(nn.Module):
    """y = x |W|^T + b: non-negative effective weights, so y is non-decreasing in every input."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.abs(), self.bias)


class MonotoneGamma(nn.Module):
    """gamma_phi(t): the VDM paper's learned monotone noise schedule, rescaled to learnable end points.

    Monotone for *any* parameter values: l1, l2, l3 have non-negative weights and sigmoid is increasing, so
    gt(t) is non-decreasing; gt(1) - gt(0) >= |w1| > 0; the gap gamma_max - gamma_min is clamped at 0.
    gamma(0) = gamma_min and gamma(1) = gamma_max exactly (the end points are the parameters).

    Initialisation (deterministic, independent of the global RNG): l1(t) = t; 1024 sigmoid units with centres
    spread over [0, 1] and slopes 1..10; l3 weights ~1e-6, so a fresh schedule is linear in t to within 1e-3
    of its range (sigma_ve geometric from exp(gamma_min/2) to exp(gamma_max/2), the VE-SDE schedule). The
    weights are |W| (not softplus) so that tiny initial weights still get O(1) Adam steps.
    """

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0, n_features: int = 1024, seed: int = 0):
        super().__init__()
        self.l1 = PositiveLinear(1, 1)
        self.l2 = PositiveLinear(1, n_features)
        self.l3 = PositiveLinear(n_features, 1, bias=False)
        self.gamma_min = nn.Parameter(torch.tensor(float(gamma_min)))
        self.gamma_max = nn.Parameter(torch.tensor(float(gamma_max)))
        self.reset_shape(seed)

    @torch.no_grad()
    def reset_shape(self, seed: int = 0) -> None:
        """Re-initialise l1, l2, l3 (near-linear schedule); the end points are left alone."""
        g = torch.Generator().manual_seed(seed)
        n = self.l2.weight.shape[0]
        assert self.l1.bias is not None and self.l2.bias is not None  # built with bias=True
        self.l1.weight.fill_(1.0)
        self.l1.bias.zero_()
        slope = 1.0 + 9.0 * torch.rand(n, 1, generator=g)
        centre = torch.rand(n, generator=g)
        self.l2.weight.copy_(slope)
        self.l2.bias.copy_(-slope[:, 0] * centre)
        self.l3.weight.copy_(1e-6 * (0.5 + torch.rand(1, n, generator=g)))

    def _raw(self, t: torch.Tensor) -> torch.Tensor:
        h = self.l1(t)
        return h + self.l3(torch.sigmoid(self.l2(h)))

    def shape(self, t: torch.Tensor) -> torch.Tensor:
        """Normalised schedule n(t) = (gt(t) - gt(0)) / (gt(1) - gt(0)): n(0) = 0, n(1) = 1, non-decreasing."""
        dev = self.gamma_min.device
        with torch.autocast(dev.type, enabled=False):
            tt = t.to(dev, torch.float32).reshape(-1, 1)
            ends = torch.tensor([[0.0], [1.0]], device=dev)
            raw = self._raw(torch.cat([ends, tt]))[:, 0]
            g0, g1, gt = raw[0], raw[1], raw[2:]
            return ((gt - g0) / (g1 - g0).clamp_min(1e-12)).reshape(t.shape)

    def gap(self) -> torch.Tensor:
        """gamma_max - gamma_min, clamped at 0 so the schedule stays monotone whatever an optimiser does."""
        return F.relu(self.gamma_max - self.gamma_min)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32, device=self.gamma_min.device)
        return self.gamma_min + self.gap() * self.shape(t)


# ------------------------------------------------------------------------------------------------ model


class VDM(nn.Module):
    """A VDM whose noise model is an EDM (VE) score prior: ``self.score`` (EDMPrior) + ``self.gamma`` (MonotoneGamma).

    ``denoise`` / ``edm`` / ``unet_cfg`` forward to the inner prior, so a VDM bundle also serves
    ``mrdiff reconstruct``. Pass ``score=`` to wrap an existing (trained) EDMPrior without copying its weights.
    """

    def __init__(
        self,
        unet_cfg: UNetConfig | None = None,
        vdm_cfg: VDMConfig | None = None,
        edm_cfg: EDMConfig | None = None,
        *,
        score: EDMPrior | None = None,
    ):
        super().__init__()
        self.vdm_cfg = vdm_cfg or VDMConfig()
        if score is None:
            if unet_cfg is None:
                raise ValueError("VDM needs a UNetConfig or an existing score prior")
            score = EDMPrior(unet_cfg, edm_cfg)
        self.score = score
        c = self.vdm_cfg
        self.gamma = MonotoneGamma(c.gamma_min, c.gamma_max, c.n_features)

    # forwarding to the inner EDM prior
    @property
    def unet_cfg(self) -> UNetConfig:
        return self.score.unet_cfg

    @property
    def edm(self) -> EDMConfig:
        return self.score.edm

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        return self.score.denoise(x, sigma)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """D(x; sigma) on the VE scale (the inner EDM prior)."""
        return self.score.denoise(x, sigma)

    # VP / VDM view
    def alpha_sigma(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t) with alpha_t^2 = sigmoid(-gamma(t)), sigma_t^2 = sigmoid(gamma(t))."""
        g = self.gamma(torch.as_tensor(t, dtype=torch.float32))
        return torch.sigmoid(-g).sqrt(), torch.sigmoid(g).sqrt()

    def eps(self, z_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """eps_hat(z_t; t) for latents z_t (B, 1, H, W) at times t (scalar or (B,))."""
        g = self.gamma(torch.as_tensor(t, dtype=torch.float32))
        if g.dim() == 0:
            g = g.expand(z_t.shape[0])
        return self.eps_from_gamma(z_t, g)

    def eps_from_gamma(self, z_t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """eps_hat given gamma (B,): x_ve = z_t / alpha, sigma_ve = exp(gamma / 2), eps = (x_ve - D(x_ve)) / sigma_ve.

        Evaluated in the algebraically equal, cancellation-free form of the EDM preconditioning:
        (x - D(x; s)) / s = s / (s^2 + sd^2) x - sd / sqrt(s^2 + sd^2) F_theta(c_in x, ln(s) / 4).
        """
        g = g.to(z_t.device, torch.float32)
        alpha = torch.sigmoid(-g).sqrt().reshape(-1, 1, 1, 1)
        s_flat = torch.exp(0.5 * g)
        s = s_flat.reshape(-1, 1, 1, 1)
        x = z_t / alpha
        sd = self.score.edm.sigma_data
        norm = torch.sqrt(s**2 + sd**2)
        out = self.score.net((x / norm).to(z_t.dtype), torch.log(s_flat) / 4.0)
        return s / norm**2 * x - sd / norm * out.float()


def vdm_from_score(score_prior: EDMPrior, vdm_cfg: VDMConfig | None = None) -> VDM:
    """Wrap a trained score prior as a VDM with a freshly initialised (near-linear) gamma; weights are shared.

    The result is on the score prior's device, in its train/eval mode, with gamma's requires_grad following
    the prior's (a loaded bundle is frozen, so the wrapper is too).
    """
    if isinstance(score_prior, VDM):
        return score_prior
    vdm = VDM(vdm_cfg=vdm_cfg, score=score_prior)
    p = next(score_prior.parameters(), None)
    if p is not None:
        vdm.gamma.to(p.device)
        vdm.gamma.requires_grad_(p.requires_grad)
    vdm.train(score_prior.training)
    return vdm


def vdm_architecture(unet_cfg: UNetConfig, edm_cfg: EDMConfig | None = None, vdm_cfg: VDMConfig | None = None) -> dict[str, Any]:
    """``config.json['architecture']`` of a VDM bundle (type "vdm-unet" with "unet", "edm", "vdm")."""
    return {
        "type": "vdm-unet",
        "unet": unet_cfg.to_dict(),
        "edm": (edm_cfg or EDMConfig()).to_dict(),
        "vdm": (vdm_cfg or VDMConfig()).to_dict(),
    }


def vdm_bundle_config(model: VDM, *, tasks: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A complete config.json for ``save_bundle(folder, model, config)``; weights are ``score.*`` + ``gamma.*``.

    ``tasks`` defaults to ["vdm", "score"]: the inner network is a VE denoiser, so the bundle also serves
    ``mrdiff reconstruct``. ``extra`` (training, validation, description, ...) is merged in.
    """
    res = model.unet_cfg.resolution
    cfg: dict[str, Any] = {
        "mrdiff_bundle_version": BUNDLE_VERSION,
        "task": "vdm",
        "tasks": list(tasks) if tasks is not None else ["vdm", "score"],
        "resolution": [res, res],
        "architecture": vdm_architecture(model.unet_cfg, model.edm, model.vdm_cfg),
        "normalization": NORMALIZATION,
    }
    cfg.update(extra)
    return cfg


# ------------------------------------------------------------------------------------------------ VLB


def low_discrepancy_times(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """t_i = (u + i / n) mod 1, u ~ U(0, 1): one uniform draw, n evenly spread times (VDM's variance reduction)."""
    u = torch.rand(1, generator=generator)
    return torch.remainder(u + torch.arange(n, dtype=torch.float32) / n, 1.0)


def quantise(x: torch.Tensor, cfg: VDMConfig) -> torch.Tensor:
    """Snap to the ``vocab_size``-level grid on [data_min, data_max] (clipping outside values)."""
    delta = (cfg.data_max - cfg.data_min) / (cfg.vocab_size - 1)
    k = torch.round((x.float() - cfg.data_min) / delta).clamp(0, cfg.vocab_size - 1)
    return cfg.data_min + k * delta


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate at both ends."""
    x = x.clamp_max(-1e-12)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_discretised_gaussian(x_q: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, cfg: VDMConfig) -> torch.Tensor:
    """log P(x_q) per pixel for N(mean, scale^2) integrated over x_q's bin (width Delta; the outermost bins
    extend to -inf / +inf), i.e. log(Phi(b) - Phi(a)) with a, b the standardised bin edges."""
    delta = (cfg.data_max - cfg.data_min) / (cfg.vocab_size - 1)
    lo_edge = x_q <= cfg.data_min + 0.5 * delta
    hi_edge = x_q >= cfg.data_max - 0.5 * delta
    a = ((x_q - 0.5 * delta - mean) / scale).clamp(-40.0, 40.0)
    b = ((x_q + 0.5 * delta - mean) / scale).clamp(-40.0, 40.0)
    a = torch.where(lo_edge, torch.full_like(a, -40.0), a)
    b = torch.where(hi_edge, torch.full_like(b, 40.0), b)
    flip = a > 0  # use the upper tail where both edges are positive: Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    lhi = torch.special.log_ndtr(hi)
    llo = torch.special.log_ndtr(lo)
    return lhi + _log1mexp(llo - lhi)


def _vlb_times(t: torch.Tensor | None, batch: int, n_steps: int, generator: torch.Generator | None) -> torch.Tensor:
    """The batch's times t (B,): low-discrepancy unless given; for T > 0 snapped up to the grid {1/T, ..., 1}."""
    if t is None:
        t = low_discrepancy_times(batch, generator)
    t = t.detach().float().reshape(batch)
    if n_steps > 0:
        t = (torch.ceil(t * n_steps) / n_steps).clamp(1.0 / n_steps, 1.0)
    return t


def _diffusion_schedule(
    gam: MonotoneGamma,
    t: torch.Tensor,
    dev: torch.device,
    gap: torch.Tensor,
    n_steps: int,
    outer_grad: bool,
    scale_hook: Callable[[torch.Tensor], torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(gamma(t), r): T = 0: r = gamma'(t) = gap * n'(t) by autograd (kept in the graph when ``outer_grad``);
    T > 0: r = gamma(s), s = t - 1/T. ``scale_hook`` (variance minimisation, T = 0 only) is registered on n(t)
    and n'(t)."""
    gmin = gam.gamma_min
    if n_steps == 0:
        with torch.enable_grad():
            tt = t.clone().to(dev).requires_grad_(True)
            n_t = gam.shape(tt)
            dn_dt = torch.autograd.grad(n_t.sum(), tt, create_graph=outer_grad)[0]
        if not outer_grad:
            n_t, dn_dt = n_t.detach(), dn_dt.detach()
        if scale_hook is not None:
            n_t.register_hook(scale_hook)
            dn_dt.register_hook(scale_hook)
        return gmin + gap * n_t, gap * dn_dt
    n_t = gam.shape(t.to(dev))
    n_s = gam.shape((t - 1.0 / n_steps).to(dev))
    return gmin + gap * n_t, gmin + gap * n_s


def _diffusion_mse(model: VDM, wrapper: nn.Module | None, x: torch.Tensor, g_t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """||eps - eps_hat(z_t; t)||^2 per sample, z_t = alpha_t x + sigma_t eps. With ``wrapper`` (DDP) eps_hat =
    (x_ve - D(x_ve; s)) / s goes through the wrapper's forward (VDM.forward = denoise) so gradients are all-reduced."""
    gt4 = g_t.reshape(-1, 1, 1, 1)
    z_t = torch.sigmoid(-gt4).sqrt() * x + torch.sigmoid(gt4).sqrt() * eps
    if wrapper is None:
        eps_hat = model.eps_from_gamma(z_t, g_t)
    else:
        s_ve = torch.exp(0.5 * g_t)
        x_ve = z_t / torch.sigmoid(-gt4).sqrt()
        eps_hat = (x_ve - wrapper(x_ve, s_ve)) / s_ve.reshape(-1, 1, 1, 1)
    return ((eps - eps_hat) ** 2).sum(dim=(1, 2, 3))


def diffusion_loss(mse: torch.Tensor, g_t: torch.Tensor, r: torch.Tensor, n_steps: int) -> torch.Tensor:
    """L_diff per sample (nats) from ||eps - eps_hat||^2: T = 0: 1/2 gamma'(t) mse (``r`` = gamma'(t));
    T > 0: T/2 (exp(gamma(t) - gamma(s)) - 1) mse (``r`` = gamma(s))."""
    if n_steps == 0:
        return 0.5 * r * mse
    return 0.5 * n_steps * torch.expm1(g_t - r) * mse


def prior_kl(x: torch.Tensor, g1: torch.Tensor) -> torch.Tensor:
    """L_prior = KL(q(z_1 | x) || N(0, I)) per sample (nats), gamma(1) = ``g1``.

    Per dim 1/2 (alpha_1^2 x^2 + sigma_1^2 - 1 - log sigma_1^2), with sigma_1^2 - 1 = -alpha_1^2 and
    -log sigma_1^2 = softplus(-gamma_1) written out to avoid the float32 cancellation near sigma_1 = 1.
    """
    a1sq = torch.sigmoid(-g1)
    return 0.5 * (a1sq * x**2 + (F.softplus(-g1) - a1sq)).sum(dim=(1, 2, 3))


def recon_nll(x: torch.Tensor, eps0: torch.Tensor, g0: torch.Tensor, cfg: VDMConfig) -> torch.Tensor:
    """L_recon = -log p(x | z_0) per sample (nats): z_0 / alpha_0 = x + exp(gamma_0 / 2) eps0, gamma(0) = ``g0``."""
    scale0 = torch.exp(0.5 * g0)
    x_hat = x + scale0 * eps0
    return -log_discretised_gaussian(x, x_hat, scale0, cfg).sum(dim=(1, 2, 3))


def vlb_terms(
    model: VDM | nn.Module,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    t: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-sample VLB terms in bits per dim: {"prior", "recon", "diffusion", "total"}, each (B,).

    x0: (B, 1, H, W) normalised images (quantised here, see :func:`quantise`). One Monte-Carlo draw of t
    (low-discrepancy over the batch unless ``t`` is given), eps and the reconstruction noise, all from
    ``generator`` (CPU) so the estimate is reproducible. Works under ``torch.no_grad()`` (gamma'(t) is
    computed in a local ``enable_grad`` block). Pieces: :func:`_diffusion_schedule` (gamma(t) and gamma'(t) or
    gamma(s)), :func:`_diffusion_mse`, :func:`diffusion_loss`, :func:`prior_kl`, :func:`recon_nll`.

    Variance minimisation (continuous time, ``cfg.variance_minimisation``, when gradients are on): the
    continuous-time VLB depends on gamma only through its end points, so the *shape* parameters of gamma
    (l1, l2, l3) are trained to minimise the variance of the diffusion-loss estimator instead, as in VDM.
    Implementation: the gradient reaching n(t) and n'(t) (the normalised schedule at the sampled times and its
    derivative, which only the shape parameters feed) is multiplied per sample by 2 L_diff,i (bits/dim, detached).
    For ``loss = total.mean()`` the shape parameters therefore receive grad mean_i(L_diff,i^2) = grad E[L_diff^2]
    (= grad Var, since E[L_diff] does not depend on the shape), while gamma_min / gamma_max and the network
    receive the plain VLB gradient, in one backward pass. (Same effect as the paper's custom backward.)
    """
    wrapper: nn.Module | None = None
    inner = getattr(model, "module", None)
    if not isinstance(model, VDM) and isinstance(inner, VDM):
        wrapper, model = model, inner  # DistributedDataParallel: the network runs through its forward
    assert isinstance(model, VDM), "vlb_terms needs a VDM (or a DistributedDataParallel wrapping one)"
    cfg: VDMConfig = model.vdm_cfg
    gam: MonotoneGamma = model.gamma
    dev = x0.device
    x = quantise(x0, cfg).to(dev)
    outer_grad = torch.is_grad_enabled()
    T = int(cfg.n_timesteps_train)
    t = _vlb_times(t, x0.shape[0], T, generator)

    gap = gam.gap()
    hooks_w: dict[str, torch.Tensor] = {}
    use_var = outer_grad and T == 0 and cfg.variance_minimisation and gam.l1.weight.requires_grad

    def _scale_hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * hooks_w["w"].to(grad.dtype)

    g_t, r = _diffusion_schedule(gam, t, dev, gap, T, outer_grad, _scale_hook if use_var else None)
    eps = torch.randn(x.shape, generator=generator).to(dev)
    eps0 = torch.randn(x.shape, generator=generator).to(dev)

    l_diff = diffusion_loss(_diffusion_mse(model, wrapper, x, g_t, eps), g_t, r, T)
    l_prior = prior_kl(x, gam.gamma_min + gap)
    l_recon = recon_nll(x, eps0, gam.gamma_min, cfg)

    to_bpd = 1.0 / (x0[0].numel() * math.log(2.0))
    terms = {"prior": l_prior * to_bpd, "recon": l_recon * to_bpd, "diffusion": l_diff * to_bpd}
    terms["total"] = terms["prior"] + terms["recon"] + terms["diffusion"]
    if use_var:
        hooks_w["w"] = 2.0 * terms["diffusion"].detach()
    return terms


def vlb_loss(model: VDM | nn.Module, x0: torch.Tensor, generator: torch.Generator | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample VLB (prior + reconstruction + diffusion) in bits per dim, shape (B,). See :func:`vlb_terms`."""
    return vlb_terms(model, x0, generator, t)["total"]
