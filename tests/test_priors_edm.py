"""EDM score prior (priors/edm.py) and model bundles (priors/bundle.py): preconditioning, score/eps identities,
the training noise distribution, save/load round trips and clear errors for bundles that do not fit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mrdiff_cli.errors import ModelError
from mrdiff_cli.priors.bundle import load_bundle, save_bundle
from mrdiff_cli.priors.edm import EDMConfig, EDMPrior, dsm_loss, sample_sigmas
from mrdiff_cli.priors.unet import UNetConfig

BUNDLED_SCORE = Path(__file__).resolve().parents[1] / "mrdiff_cli" / "weights" / "score-brain-128"


def tiny_prior(seed: int = 0, perturb: float = 0.05) -> EDMPrior:
    """Tiny EDM prior whose zero-initialised output layers are perturbed, so F_theta is not identically 0."""
    torch.manual_seed(seed)
    model = EDMPrior(UNetConfig(base_channels=8, channel_mults=[1, 2], attn_resolutions=[16], resolution=32))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(perturb * torch.randn(p.shape, generator=g))
    return model.eval()


def images(n: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 32, 32, generator=g)


class StubNet(torch.nn.Module):
    """F(x, c) = 0.5 + 0 * x; records what the preconditioning hands to the network."""

    def forward(self, x, c_noise):
        self.seen_x, self.seen_c = x.clone(), c_noise.clone()
        return torch.full_like(x, 0.5)


# ---------------------------------------------------------------------------------------------------------------
# preconditioning, score, eps
# ---------------------------------------------------------------------------------------------------------------


def test_preconditioning_coefficients_match_karras():
    model = tiny_prior()
    model.net = StubNet()
    x = images(4)
    sigma = torch.tensor([0.01, 0.3, 2.0, 50.0])
    d = model.denoise(x, sigma)
    sd = model.edm.sigma_data
    s = sigma.reshape(-1, 1, 1, 1)
    c_skip = sd**2 / (s**2 + sd**2)
    c_out = s * sd / torch.sqrt(s**2 + sd**2)
    c_in = 1 / torch.sqrt(s**2 + sd**2)
    torch.testing.assert_close(d, c_skip * x + c_out * 0.5, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.net.seen_x, c_in * x, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(model.net.seen_c, torch.log(sigma) / 4, rtol=1e-6, atol=1e-7)


def test_denoiser_is_identity_as_sigma_goes_to_zero():
    model = tiny_prior()
    x = images()
    with torch.no_grad():
        d_small = model.denoise(x, 1e-5)
        d_one = model.denoise(x, 1.0)
    assert torch.allclose(d_small, x, atol=1e-3)
    # ... and the network matters at larger sigma (otherwise the line above would be vacuous)
    assert float((d_one - x).abs().max()) > 1e-2


def test_eps_is_consistent_with_the_denoiser():
    model = tiny_prior()
    x = images(3) + 0.2 * torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for sigma in (0.2, torch.tensor([0.05, 0.5, 5.0])):
            s = torch.as_tensor(sigma).reshape(-1, 1, 1, 1)
            d = model.denoise(x, sigma)
            eps = model.eps(x, sigma)
            # eps_hat = (x - D) / sigma (= -sigma * the Tweedie score (D - x) / sigma^2), per sample's sigma
            torch.testing.assert_close(eps, (x - d) / s, rtol=1e-5, atol=1e-5)
            # and x - sigma * eps_hat is the denoised estimate again
            torch.testing.assert_close(x - s * eps, d, rtol=1e-5, atol=1e-5)


def test_sample_sigmas_is_log_normal():
    cfg = EDMConfig(p_mean=-1.2, p_std=1.2)
    sig = sample_sigmas(200_000, cfg, generator=torch.Generator().manual_seed(0))
    ln = sig.log()
    assert abs(float(ln.mean()) - cfg.p_mean) < 0.02
    assert abs(float(ln.std()) - cfg.p_std) < 0.02
    assert float(sig.min()) >= cfg.sigma_min and float(sig.max()) <= cfg.sigma_max
    # median of a log-normal is exp(P_mean)
    assert abs(float(sig.median()) - math.exp(cfg.p_mean)) < 0.01
    a, b = (sample_sigmas(64, cfg, generator=torch.Generator().manual_seed(7)) for _ in range(2))
    assert torch.equal(a, b)  # seeded


def test_dsm_loss_matches_its_formula():
    model = tiny_prior()
    x0 = images(3)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    noise = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        per = dsm_loss(model, x0, sigma, noise, per_sample=True)
        s = sigma.reshape(-1, 1, 1, 1)
        sd = model.edm.sigma_data
        expected = ((s**2 + sd**2) / (s * sd) ** 2 * (model.denoise(x0 + s * noise, sigma) - x0) ** 2).mean(dim=(1, 2, 3))
    assert per.shape == (3,)
    torch.testing.assert_close(per, expected)
    torch.testing.assert_close(dsm_loss(model, x0, sigma, noise), expected.mean())


# ---------------------------------------------------------------------------------------------------------------
# bundles
# ---------------------------------------------------------------------------------------------------------------


def bundle_config(model: EDMPrior) -> dict:
    return {
        "mrdiff_bundle_version": 1,
        "task": "score",
        "tasks": ["score"],
        "resolution": [32, 32],
        "architecture": {"type": "edm-unet", "unet": model.unet_cfg.to_dict(), "edm": model.edm.to_dict()},
    }


def test_bundle_round_trip_float32_is_exact(tmp_path):
    model = tiny_prior()
    save_bundle(tmp_path / "b", model, bundle_config(model), dtype=torch.float32)
    loaded, config = load_bundle(tmp_path / "b")
    assert config["weights_dtype"] == "float32"
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = images()
    with torch.no_grad():
        for s in (0.01, 0.5, 20.0):
            assert torch.equal(loaded.denoise(x, s), model.denoise(x, s))


def test_bundle_round_trip_default_float16_equals_rounded_model(tmp_path):
    model = tiny_prior()
    save_bundle(tmp_path / "b", model, bundle_config(model))  # default: fp16 storage
    loaded, config = load_bundle(tmp_path / "b")
    assert config["weights_dtype"] == "float16"
    rounded = tiny_prior()
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.half().float())
    x = images()
    with torch.no_grad():
        assert torch.equal(loaded.denoise(x, 0.3), rounded.denoise(x, 0.3))


def _edit(folder: Path, fn) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    fn(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["architecture"]["unet"].update(base_channels=16), "weights do not match config.json"),
        (lambda c: c["architecture"]["unet"].update(channel_mults=[1, 2, 2]), "weights do not match config.json"),
        (lambda c: c["architecture"].update(type="transformer"), "unknown model architecture type 'transformer'"),
        (lambda c: c.pop("architecture"), "unknown model architecture type None"),
        (lambda c: c["architecture"]["unet"].update(wings=2), "model config is invalid.*wings"),
        (lambda c: c["architecture"]["edm"].update(rho=7), "model config is invalid"),
        (lambda c: c.update(mrdiff_bundle_version=2), "unsupported bundle version 2"),
    ],
)
def test_bundle_config_mismatch_is_a_clear_model_error(tmp_path, edit, message):
    model = tiny_prior()
    folder = save_bundle(tmp_path / "b", model, bundle_config(model))
    _edit(folder, edit)
    with pytest.raises(ModelError, match=message):
        load_bundle(folder)


def test_bundle_without_weights_or_config(tmp_path):
    model = tiny_prior()
    folder = save_bundle(tmp_path / "b", model, bundle_config(model))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no model.safetensors"):
        load_bundle(folder)
    with pytest.raises(ModelError, match="no config.json"):
        load_bundle(tmp_path / "empty")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="invalid JSON"):
        load_bundle(folder)


@pytest.mark.skipif(not (BUNDLED_SCORE / "model.safetensors").exists(), reason="bundled score-brain-128 not present yet")
def test_bundled_default_score_model_is_finite_at_every_sigma():
    model, config = load_bundle(BUNDLED_SCORE)
    assert isinstance(model, EDMPrior)
    h, w = config.get("resolution", [128, 128])
    # a smooth "head": an ellipse with a darker core, normalised like the training data (99th pct ~ 1)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    r = (xx / 0.7) ** 2 + (yy / 0.85) ** 2
    x0 = ((r < 1).float() * (1.0 - 0.4 * (r < 0.4).float()))[None, None]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for sigma in torch.logspace(math.log10(0.002), math.log10(80.0), 7).tolist():
            x = x0 + sigma * torch.randn(x0.shape, generator=g)
            d = model.denoise(x, sigma)
            assert d.shape == x.shape
            assert torch.isfinite(d).all(), f"non-finite denoiser output at sigma={sigma:g}"
            assert torch.isfinite(model.eps(x, sigma)).all()
        # the smallest noise level leaves the image (almost) untouched
        assert float((model.denoise(x0, 0.002) - x0).abs().max()) < 0.05
