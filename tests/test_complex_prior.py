"""Complex-valued (two-channel) score prior: phase augmentation for training, seeding it from a magnitude prior,
and reconstruction with it (``complex`` mode chosen automatically, no phase estimate)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_priors_edm import tiny_prior
from test_tasks_train import TINY, heads  # noqa: F401  (module fixture)

from mrdiff_cli.errors import UsageError
from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.priors.bundle import load_bundle, save_bundle
from mrdiff_cli.priors.edm import EDMPrior
from mrdiff_cli.priors.unet import UNetConfig
from mrdiff_cli.samplers.adapters import is_complex_prior, make_denoiser
from mrdiff_cli.samplers.modes import ComplexMode
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
from mrdiff_cli.tasks.simulate import analytic_phantom, simulate_kspace
from mrdiff_cli.tasks.train import TrainConfig, _embed_channels, _init_from_bundle, build_model_and_config, train
from mrdiff_cli.tasks.train_data import PhaseAugment, complexify, random_phase_fields


def tiny_complex_prior(seed: int = 0) -> EDMPrior:
    torch.manual_seed(seed)
    model = EDMPrior(UNetConfig(in_channels=2, out_channels=2, base_channels=8, channel_mults=[1, 2],
                                attn_resolutions=[], resolution=32))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def test_phase_fields_are_seeded_and_vary():
    a = random_phase_fields(4, 32, 32, PhaseAugment(), torch.Generator().manual_seed(3))
    b = random_phase_fields(4, 32, 32, PhaseAugment(), torch.Generator().manual_seed(3))
    c = random_phase_fields(4, 32, 32, PhaseAugment(), torch.Generator().manual_seed(4))
    assert a.shape == (4, 1, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    # every slice has its own phase; with the fields off only the global offset is left (a constant)
    assert float((a[0] - a[1]).abs().max()) > 0.1
    flat = random_phase_fields(3, 32, 32, PhaseAugment(poly_p=0.0, field_p=0.0), torch.Generator().manual_seed(0))
    assert float(flat.amax(dim=(-2, -1)).sub(flat.amin(dim=(-2, -1))).max()) < 1e-5
    assert float(flat.abs().max()) <= math.pi + 1e-6
    # a random field of the requested std: the spread over the image follows std_rad
    rough = random_phase_fields(8, 64, 64, PhaseAugment(poly_p=0.0, field_p=1.0, std_rad=(1.5, 1.5)),
                                torch.Generator().manual_seed(1))
    assert abs(float(rough.std(dim=(-2, -1)).mean()) - 1.5) < 0.1


def test_complexify_keeps_the_magnitude():
    mag = torch.rand(3, 1, 16, 16)
    z = complexify(mag, PhaseAugment(), torch.Generator().manual_seed(0))
    assert z.shape == (3, 2, 16, 16)
    assert torch.allclose(z.square().sum(dim=1, keepdim=True).sqrt(), mag, atol=1e-6)
    assert float(z[:, 1].abs().max()) > 0.01  # a phase really was applied


def test_embed_channels_rules():
    w = torch.randn(8, 1, 3, 3)
    out = _embed_channels(w, torch.empty(8, 2, 3, 3))
    assert out is not None and torch.equal(out[:, :1], w) and not out[:, 1:].any()
    b = torch.randn(1)
    out = _embed_channels(b, torch.empty(2))
    assert out is not None and out[0] == b[0] and out[1] == 0
    assert _embed_channels(torch.randn(8, 3, 3, 3), torch.empty(8, 2, 3, 3)) is None  # not a single channel
    assert _embed_channels(torch.randn(4, 1, 3, 3), torch.empty(8, 2, 3, 3)) is None  # two axes differ
    assert _embed_channels(torch.randn(2, 2, 1, 3), torch.empty(2, 2, 2, 3)) is None  # a spatial axis


def test_magnitude_prior_seeds_a_complex_one(tmp_path):
    """A magnitude bundle copied into a complex prior: on a real image (zero phase) the real channel is the
    magnitude prior's output and the imaginary channel stays zero."""
    mag = tiny_prior(seed=2)
    save_bundle(tmp_path / "mag", mag, {"mrdiff_bundle_version": 1, "task": "score", "resolution": [32, 32],
                                        "architecture": {"type": "edm-unet", "unet": mag.unet_cfg.to_dict(),
                                                         "edm": mag.edm.to_dict()}})
    cfg = TrainConfig(complex=True, matrix=32, base_channels=8, channel_mults=[1, 2], attn_resolutions=[16])
    model, config = build_model_and_config(cfg)
    assert config["image"] == "complex" and config["tasks"] == ["score"]
    info = _init_from_bundle(model, str(tmp_path / "mag"))
    assert info["copied"] == info["total"]
    model.eval()
    x = torch.rand(2, 1, 32, 32)
    sigma = torch.tensor([0.3, 0.05])
    stored, _ = load_bundle(tmp_path / "mag")  # the bundle's weights (as stored: float16)
    with torch.no_grad():
        d = model.denoise(torch.cat([x, torch.zeros_like(x)], dim=1), sigma)
        ref = stored.denoise(x, sigma)
    assert torch.allclose(d[:, :1], ref, atol=1e-5)
    assert float(d[:, 1:].abs().max()) < 1e-6


def test_complex_training_runs_and_loads(heads, tmp_path):  # noqa: F811
    cfg = TrainConfig(task="score", inputs=[str(heads)], out=str(tmp_path / "run"), steps=3, complex=True,
                      checkpoint_every=3, val_every=3, **TINY)
    summary = train(cfg)
    prior, config = load_bundle(summary["bundle"])
    assert config["image"] == "complex" and is_complex_prior(prior)
    assert prior.unet_cfg.in_channels == 2 and prior.unet_cfg.out_channels == 2
    with pytest.raises(UsageError):
        build_model_and_config(replace(cfg, task="vdm"))


def test_denoiser_modes_for_a_complex_prior():
    prior = tiny_complex_prior()
    x = torch.randn(3, 32, 32, dtype=torch.complex64)
    d = make_denoiser(prior, "phase", batch_size=2)(x, 0.2)  # any magnitude-prior mode runs it jointly
    with torch.no_grad():
        ref = prior.denoise(torch.stack([x.real, x.imag], dim=1), torch.full((3,), 0.2))
    assert torch.allclose(torch.view_as_real(d), torch.stack([ref[:, 0], ref[:, 1]], dim=-1), atol=1e-5)
    assert torch.allclose(make_denoiser(prior, "complex", batch_size=5)(x, 0.2), d, atol=1e-6)  # chunking
    real = make_denoiser(prior, "real")(x, 0.2)
    assert float(real.imag.abs().max()) == 0.0
    with pytest.raises(ValueError):
        make_denoiser(prior, "realimag")
    with pytest.raises(ValueError):
        make_denoiser(tiny_prior(), "complex")


def test_reconstructor_picks_complex_mode_and_refuses_the_others():
    img = analytic_phantom(32)[None]
    k = simulate_kspace(img, coils=4, snr_db=30, seed=0)[0]
    mask = make_mask("poisson", (32, 32), 3, seed=1).mask
    rec = Reconstructor(tiny_complex_prior(), ReconOptions(seed=0, steps=4, pilot_steps=3))
    assert rec.opts.complex_mode == ComplexMode.complex
    res = rec.reconstruct(k, mask, "sense")
    assert res.images.shape == (1, 32, 32) and np.isfinite(res.images).all()
    rep = rec.consistency_report("sense")
    assert rep is not None and rep["phase_reference"].startswith("none")
    assert "phase_resid" not in rep and "phase_resid" not in rep["evidence"]  # no phase prior to choose
    again = Reconstructor(tiny_complex_prior(), ReconOptions(seed=0, steps=4, pilot_steps=3)).reconstruct(k, mask, "sense")
    assert np.array_equal(res.images, again.images)  # deterministic given the seed
    with pytest.raises(UsageError):
        Reconstructor(tiny_complex_prior(), ReconOptions(complex_mode="realimag"))
    for magnitude_only in ({"phase_resid": 0.05}, {"phase_cs_lambda": 1e-3}):  # no phase prior / phase estimate
        with pytest.raises(UsageError, match="magnitude prior"):
            Reconstructor(tiny_complex_prior(), ReconOptions(**magnitude_only))
    with pytest.raises(UsageError):
        Reconstructor(tiny_prior(), ReconOptions(complex_mode="complex"))


@pytest.mark.parametrize("args,messages", [
    (["--complex-mode", "complex", "--model", "bundled:score-brain-128"], ("complex-valued model",)),
    (["--phase-resid", "0.05"], ("--phase-resid", "magnitude prior")),
    (["--phase-ref", "l1"], ("--phase-ref", "magnitude prior")),
])
def test_cli_prior_kind_mismatch_is_a_usage_error(args, messages, tiny_fastmri_file, tmp_path, cli_env):
    """--complex-mode complex with a magnitude model (the bundled score-brain-128), and the magnitude-only
    --phase-resid / --phase-ref with the default complex-valued model (no phase prior or phase estimate: not
    silently ignored): exit 2 with one line, and nothing is written."""
    from typer.testing import CliRunner

    from mrdiff_cli.cli.main import app

    out = tmp_path / "x.nii.gz"
    res = CliRunner().invoke(app, ["reconstruct", str(tiny_fastmri_file), "--output", str(out), *args,
                                   "--steps", "2", "--mask", "poisson", "--accel", "4"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and all(m in lines[0] for m in messages), res.stderr
    assert not out.exists()


def test_demodulated_complex_prior_sees_the_residual_phase(tmp_path):
    from mrdiff_cli.samplers.adapters import prior_demod_frac
    from mrdiff_cli.tasks.train_data import demodulate_channels

    # a smooth phase is removed (the residual imaginary part is small), the magnitude is kept
    mag = torch.rand(2, 1, 32, 32) + 0.5
    z = complexify(mag, PhaseAugment(field_p=0.0), torch.Generator().manual_seed(0))
    d = demodulate_channels(z, 0.5)
    assert torch.allclose(d.square().sum(dim=1).sqrt(), z.square().sum(dim=1).sqrt(), atol=1e-5)
    assert float(d[:, 1].abs().mean()) < 0.2 * float(z[:, 1].abs().mean())
    # the denoiser of a demodulating prior rotates by the given phase, denoises, rotates back
    prior = tiny_complex_prior()
    prior.unet_cfg.demod_frac = 0.25
    assert prior_demod_frac(prior) == 0.25 and prior_demod_frac(tiny_prior()) == 0.0
    x = torch.randn(2, 32, 32, dtype=torch.complex64)
    ph = torch.rand(2, 32, 32) * 6.0
    out = make_denoiser(prior, "complex", phase=ph)(x, 0.3)
    rot = torch.exp(-1j * ph)
    ref = make_denoiser(prior, "complex")(x * rot, 0.3) * rot.conj()
    assert torch.allclose(out, ref, atol=1e-5)
    # training options and the reconstruction's report
    with pytest.raises(UsageError):
        build_model_and_config(TrainConfig(complex_demod=0.2))
    model, config = build_model_and_config(TrainConfig(complex=True, complex_demod=0.1875, matrix=32, base_channels=8,
                                                       channel_mults=[1, 2], attn_resolutions=[]))
    assert config["architecture"]["unet"]["demod_frac"] == 0.1875
    img = analytic_phantom(32)[None]
    k = simulate_kspace(img, coils=4, snr_db=30, seed=0)[0]
    mask = make_mask("poisson", (32, 32), 3, seed=1).mask
    rec = Reconstructor(prior, ReconOptions(seed=0, steps=3, pilot_steps=2))
    res = rec.reconstruct(k, mask, "sense")
    assert np.isfinite(res.images).all()
    rep = rec.consistency_report("sense")
    assert rep is not None and "demodulated" in rep["phase_reference"]
