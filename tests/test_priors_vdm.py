"""priors/vdm.py: the learned monotone gamma, the VE <-> VP mapping, the VLB terms (continuous and discrete T),
the variance-minimisation gradient, bundles, and `train(TrainConfig(task="vdm"))` with init_from / freeze_net."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mrdiff_cli.errors import UsageError
from mrdiff_cli.priors.bundle import load_bundle, save_bundle
from mrdiff_cli.priors.edm import EDMConfig, EDMPrior
from mrdiff_cli.priors.unet import UNetConfig
from mrdiff_cli.priors.vdm import (
    VDM,
    MonotoneGamma,
    VDMConfig,
    low_discrepancy_times,
    quantise,
    vdm_bundle_config,
    vdm_from_score,
    vlb_loss,
    vlb_terms,
)


def tiny_unet(res: int = 32) -> UNetConfig:
    return UNetConfig(base_channels=8, channel_mults=[1, 2], attn_resolutions=[], resolution=res, emb_dim=32)


def tiny_vdm(res: int = 32, **vdm_kw) -> VDM:
    torch.manual_seed(0)
    return VDM(tiny_unet(res), VDMConfig(**vdm_kw))


def phantom_batch(n: int = 4, res: int = 32) -> torch.Tensor:
    """(n, 1, res, res) normalised (99th percentile = 1) ellipse phantoms."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    out = []
    for i in range(n):
        a, b = 0.7 + 0.05 * i, 0.85 - 0.04 * i
        head = ((xx / a) ** 2 + (yy / b) ** 2 < 1).float()
        blob = (((xx - 0.2 + 0.05 * i) / 0.25) ** 2 + ((yy + 0.1) / 0.35) ** 2 < 1).float()
        out.append(0.6 * head + 0.5 * blob)
    x = torch.stack(out)[:, None]
    return x / torch.quantile(x.flatten(1), 0.99, dim=1).reshape(-1, 1, 1, 1)


# --------------------------------------------------------------------------------------------- gamma


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gamma_is_monotone_with_its_end_points_for_random_weights(seed):
    g = torch.Generator().manual_seed(seed)
    gam = MonotoneGamma(n_features=64)
    with torch.no_grad():
        for p in gam.parameters():
            p.copy_(3.0 * torch.randn(p.shape, generator=g))
        lo, hi = sorted((10 * torch.randn(2, generator=g)).tolist())
        gam.gamma_min.fill_(lo)
        gam.gamma_max.fill_(hi)
        t = torch.linspace(0, 1, 2001)
        y = gam(t)
    assert torch.all(y[1:] >= y[:-1] - 1e-5 * max(1.0, hi - lo))  # gamma(t1) <= gamma(t2) for t1 < t2
    assert y[0].item() == pytest.approx(lo, abs=1e-4 * max(1.0, abs(lo)))
    assert y[-1].item() == pytest.approx(hi, abs=1e-4 * max(1.0, abs(hi)))
    # random time points, not just a grid
    t1, t2 = torch.rand(500, generator=g), torch.rand(500, generator=g)
    a, b = torch.minimum(t1, t2), torch.maximum(t1, t2)
    with torch.no_grad():
        assert torch.all(gam(a) <= gam(b) + 1e-5 * max(1.0, hi - lo))


def test_gamma_stays_monotone_when_end_points_cross():
    gam = MonotoneGamma(gamma_min=2.0, gamma_max=-3.0, n_features=8)
    with torch.no_grad():
        y = gam(torch.linspace(0, 1, 11))
    assert torch.all(y[1:] >= y[:-1])


def test_fresh_gamma_is_linear_and_deterministic():
    cfg = VDMConfig()
    a, b = MonotoneGamma(cfg.gamma_min, cfg.gamma_max), MonotoneGamma(cfg.gamma_min, cfg.gamma_max)
    t = torch.linspace(0, 1, 101)
    with torch.no_grad():
        ya, yb = a(t), b(t)
    assert torch.equal(ya, yb)
    lin = cfg.gamma_min + (cfg.gamma_max - cfg.gamma_min) * t
    assert (ya - lin).abs().max() < 0.05  # sigma_ve within 2.5 % of the geometric VE schedule


def test_alpha_sigma_is_variance_preserving_and_snr_is_exp_minus_gamma():
    m = tiny_vdm()
    t = torch.tensor([0.0, 0.3, 1.0])
    with torch.no_grad():
        a, s = m.alpha_sigma(t)
        g = m.gamma(t)
    assert torch.allclose(a**2 + s**2, torch.ones(3), atol=1e-6)
    assert torch.allclose(a**2 / s**2, torch.exp(-g), rtol=1e-4)


def test_eps_is_the_ve_noise_prediction_of_the_score_prior():
    m = tiny_vdm()
    with torch.no_grad():
        for p in m.score.net.out.parameters():
            p.normal_(0, 0.1)
        z = torch.randn(3, 1, 32, 32)
        t = torch.tensor([0.05, 0.5, 0.95])
        g = m.gamma(t)
        alpha = torch.sigmoid(-g).sqrt().reshape(-1, 1, 1, 1)
        ref = m.score.eps(z / alpha, torch.exp(g / 2))  # (x_ve - D(x_ve; sigma_ve)) / sigma_ve
        assert torch.allclose(m.eps(z, t), ref, atol=1e-3, rtol=1e-3)
        # denoise / edm / unet_cfg forward to the inner score prior
        assert torch.equal(m.denoise(z, 0.5), m.score.denoise(z, 0.5))
        assert m.edm is m.score.edm and m.unet_cfg is m.score.unet_cfg


# --------------------------------------------------------------------------------------------- VLB


def test_low_discrepancy_times_are_evenly_spread():
    t = low_discrepancy_times(8, torch.Generator().manual_seed(3))
    d = torch.sort(t).values.diff()
    assert torch.allclose(d, torch.full_like(d, 1 / 8), atol=1e-6) and t.min() >= 0 and t.max() < 1


@pytest.mark.parametrize("T", [0, 10])
def test_vlb_terms_are_finite_positive_and_reproducible(T):
    m = tiny_vdm(n_timesteps_train=T)
    x = phantom_batch()
    terms = vlb_terms(m, x, torch.Generator().manual_seed(0))
    for k in ("prior", "recon", "diffusion", "total"):
        assert terms[k].shape == (4,) and torch.isfinite(terms[k]).all(), k
        assert (terms[k] >= 0).all(), k
    assert torch.allclose(terms["total"], terms["prior"] + terms["recon"] + terms["diffusion"])
    # prior term: closed form for x = 0 is 1/2 (sigma_1^2 - 1 - log sigma_1^2) nats per dim
    z = vlb_terms(m, torch.zeros(1, 1, 32, 32), torch.Generator().manual_seed(0))["prior"]
    v1 = torch.sigmoid(torch.tensor(5.0))
    assert z.item() == pytest.approx(float(0.5 * (v1 - 1 - torch.log(v1)) / math.log(2)), rel=1e-3)
    with torch.no_grad():  # validation path: gamma'(t) still available
        again = vlb_loss(m, x, torch.Generator().manual_seed(0))
    assert torch.allclose(again, terms["total"].detach())


def test_quantisation_grid():
    cfg = VDMConfig()
    q = quantise(torch.tensor([-1.0, 0.0, 0.004, 1.0, 5.0]), cfg)
    delta = 2.0 / 255
    assert q[0] == 0 and q[1] == 0 and q[2] == pytest.approx(delta) and q[4] == pytest.approx(2.0)
    assert abs(q[3] - 1.0) <= delta / 2


def test_variance_minimisation_gradient():
    """Shape parameters get grad mean(L_diff^2); end points and network the plain VLB gradient."""
    x = phantom_batch()
    t = torch.tensor([0.1, 0.35, 0.6, 0.85])
    m = tiny_vdm()
    with torch.no_grad():
        for p in m.score.net.out.parameters():
            p.normal_(0, 0.05)
    vlb_loss(m, x, torch.Generator().manual_seed(0), t=t).mean().backward()
    trick = {n: p.grad.clone() for n, p in m.named_parameters()}

    m.zero_grad()
    m.vdm_cfg.variance_minimisation = False
    vlb_loss(m, x, torch.Generator().manual_seed(0), t=t).mean().backward()
    plain = {n: p.grad.clone() for n, p in m.named_parameters()}

    m.zero_grad()
    d = vlb_terms(m, x, torch.Generator().manual_seed(0), t=t)["diffusion"]
    (d**2).mean().backward()
    squared = {n: p.grad.clone() for n, p in m.named_parameters()}

    for n in trick:
        if n.startswith("gamma.l"):
            assert torch.allclose(trick[n], squared[n], rtol=1e-3, atol=1e-6), n
        else:
            assert torch.allclose(trick[n], plain[n], rtol=1e-4, atol=1e-7), n
    assert trick["gamma.l3.weight"].abs().sum() > 0 and trick["gamma.gamma_min"] != 0


def test_vlb_decreases_on_a_tiny_dataset():
    m = tiny_vdm()
    x = phantom_batch()

    def held_out() -> float:
        with torch.no_grad():
            return float(torch.stack([vlb_loss(m, x, torch.Generator().manual_seed(100 + s)).mean() for s in range(3)]).mean())

    before = held_out()
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        loss = vlb_loss(m, x, g).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.score.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(m.gamma.parameters(), 1.0)
        opt.step()
    after = held_out()
    assert after < 0.85 * before, (before, after)
    with torch.no_grad():
        y = m.gamma(torch.linspace(0, 1, 101))
    assert torch.all(y[1:] >= y[:-1])


# --------------------------------------------------------------------------------------------- bundles


def test_vdm_bundle_round_trip(tmp_path):
    m = VDM(tiny_unet(), VDMConfig(gamma_max=6.0), EDMConfig(sigma_data=0.7))
    with torch.no_grad():
        m.gamma.gamma_min.fill_(-12.0)
    cfg = vdm_bundle_config(m, description="test")
    assert cfg["architecture"]["type"] == "vdm-unet" and set(cfg["architecture"]) == {"type", "unet", "edm", "vdm"}
    save_bundle(tmp_path / "b", m, cfg, dtype=torch.float32)
    from safetensors.torch import load_file

    keys = load_file(str(tmp_path / "b" / "model.safetensors")).keys()
    assert keys and all(k.startswith(("score.", "gamma.")) for k in keys)
    loaded, config = load_bundle(tmp_path / "b")
    assert isinstance(loaded, VDM) and loaded.edm.sigma_data == 0.7 and loaded.vdm_cfg.gamma_max == 6.0
    t = torch.linspace(0, 1, 9)
    with torch.no_grad():
        assert torch.allclose(loaded.gamma(t), m.gamma(t))
    assert config["tasks"] == ["vdm", "score"]


def test_vdm_from_score_shares_the_network():
    score = EDMPrior(tiny_unet()).eval().requires_grad_(False)
    v = vdm_from_score(score)
    assert v.score is score and not v.training and not any(p.requires_grad for p in v.parameters())
    assert vdm_from_score(v) is v
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(v.denoise(x, 0.3), score.denoise(x, 0.3))


# --------------------------------------------------------------------------------------------- training


def _write_head(path: Path) -> Path:
    import nibabel as nib

    x = phantom_batch(4)[:, 0].permute(1, 2, 0).numpy().astype(np.float32)
    nib.save(nib.Nifti1Image(x, np.diag([2.0, 2.0, 2.0, 1.0])), str(path))
    return path


def test_train_vdm_from_a_score_bundle_with_frozen_network(tmp_path):
    from mrdiff_cli.tasks.train import TrainConfig, train

    vol = _write_head(tmp_path / "head.nii.gz")
    tiny = dict(inputs=[str(vol)], matrix=32, voxel=2.0, axes="axial", batch_size=2, base_channels=8,
                channel_mults=[1, 2], attn_resolutions=[], bf16=False, sample_grid=False, warmup=1, lr=1e-3)
    train(TrainConfig(task="score", out=str(tmp_path / "score"), steps=2, **tiny))
    with pytest.raises(UsageError):
        train(TrainConfig(task="vdm", out=str(tmp_path / "bad"), steps=1, freeze_net=True, **tiny))
    summary = train(TrainConfig(task="vdm", out=str(tmp_path / "vdm"), steps=3, val_inputs=[str(vol)],
                                init_from=str(tmp_path / "score" / "bundle"), freeze_net=True, **tiny))
    assert math.isfinite(summary["validation"]["vlb_bpd"])
    assert set(summary["validation"]["vlb_terms_bpd"]) == {"prior", "recon", "diffusion"}
    config = json.loads((tmp_path / "vdm" / "bundle" / "config.json").read_text())
    assert config["task"] == "vdm" and config["tasks"] == ["vdm", "score"]
    assert config["architecture"]["unet"]["fourier_features"] is False  # the score bundle's architecture
    vdm, _ = load_bundle(tmp_path / "vdm" / "bundle")
    src, _ = load_bundle(tmp_path / "score" / "bundle")
    assert isinstance(vdm, VDM)
    for (k, a), b in zip(vdm.score.state_dict().items(), src.state_dict().values()):
        assert torch.equal(a, b), k  # frozen: the network is the score bundle's
    fresh = MonotoneGamma()
    assert (vdm.gamma.l3.weight - fresh.l3.weight).abs().max() > 1e-4  # gamma was trained
