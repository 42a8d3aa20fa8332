"""Super-resolution std calibration by the extrapolation ring (tasks.superres_calibration): the ratio estimator on
cases with a known answer, the calibrated std against the ring error and the noise, determinism, the CLI JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mrdiff_cli.tasks.superres as sr
from mrdiff_cli.cli.main import app
from mrdiff_cli.errors import ModelError
from mrdiff_cli.io.nifti import read_nifti, write_nifti
from mrdiff_cli.ops.superres import measure_lowres
from mrdiff_cli.priors.bundle import NORMALIZATION, save_bundle
from mrdiff_cli.priors.edm import EDMConfig, EDMPrior
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.priors.unet import UNetConfig
from mrdiff_cli.priors.vdm import vdm_from_score
from mrdiff_cli.tasks.superres import SuperresOptions, superres_slices
from mrdiff_cli.tasks.superres_calibration import (
    BUNDLE_KEY,
    RingCalibration,
    calibration_from_bundle,
    calibration_slices,
    inner_block,
    measure_ring_spread,
)
from mrdiff_cli.types import Geometry

runner = CliRunner()


def _unet() -> UNetConfig:
    return UNetConfig(base_channels=8, channel_mults=[1, 2], attn_resolutions=[], resolution=32, emb_dim=32)


@pytest.fixture(scope="module")
def score32(tmp_path_factory) -> Path:
    """A tiny score bundle at 32 that also serves 'vdm' (wrapped), no superres calibration block."""
    torch.manual_seed(0)
    m = EDMPrior(_unet())
    with torch.no_grad():
        for p in m.net.out.parameters():
            p.normal_(0, 0.05)
    cfg = {"task": "score", "tasks": ["score", "vdm"], "resolution": [32, 32], "normalization": NORMALIZATION,
           "architecture": {"type": "edm-unet", "unet": _unet().to_dict(), "edm": EDMConfig().to_dict()}}
    return save_bundle(tmp_path_factory.mktemp("srcal") / "score32", m, cfg)


def _head(n: int, hw: int) -> np.ndarray:
    yy, xx = np.meshgrid(np.linspace(-1, 1, hw), np.linspace(-1, 1, hw), indexing="ij")
    head = (((xx / 0.8) ** 2 + (yy / 0.9) ** 2) < 1).astype(np.float32)
    blob = ((((xx - 0.2) / 0.3) ** 2 + ((yy + 0.1) / 0.4) ** 2) < 1).astype(np.float32)
    return np.stack([300.0 * (0.6 * head + 0.4 * blob) * (1 + 0.1 * k) for k in range(n)]).astype(np.float32)


def test_inner_block_and_calibration_slices():
    assert inner_block((64, 64)) == (54, 54)  # 0.85 x 64 = 54.4 -> even 54
    assert inner_block((32, 16)) == (28, 14)
    assert inner_block((7, 4)) == (6, 2)  # at least one row / column of ring, at least 2 inside
    assert inner_block((3, 64)) is None
    assert calibration_slices(1) == [0] and calibration_slices(4) == [2]
    assert calibration_slices(8) == [2, 4] and calibration_slices(10) == [2, 5]


def _fake_sampler(truth: torch.Tensor, narrow: float, miss: float, seed: int = 0):
    """A stand-in for superres.sample_chunks: the truth is one more draw around the samples' centre m (white
    Gaussian image noise of std s), the samples are m + d_k / ``narrow``; ``miss`` scales the truth's draw (a
    mean that misses the ring by ``miss`` times what a calibrated posterior would)."""
    g = torch.Generator().manual_seed(seed)
    s = 5.0
    centre = truth - miss * s * torch.randn(truth.shape, generator=g)

    def chunks(model, y, to_hw, opts, K, noise, gens_for, progress=None):
        d = s * torch.randn((K, *truth.shape), generator=g)
        yield 0, centre[None] + d / narrow

    return chunks


@pytest.mark.parametrize("narrow", [1.0, 3.0])
def test_ratio_recovers_artificial_narrowing(monkeypatch, narrow):
    """Samples narrowed by c around their centre, the truth a calibrated posterior's draw: ratio^2 = c^2 + 1/K_final
    (closed form of HoldoutSpread) — the ring estimate recovers c within the sampling error of ~1200 ring values."""
    truth = torch.from_numpy(_head(2, 128))
    y = measure_lowres(truth, (64, 64))
    monkeypatch.setattr(sr, "sample_chunks", _fake_sampler(truth, narrow, 1.0))
    opts = SuperresOptions(samples=8, noise="none")
    spread = measure_ring_spread(None, y, (128, 128), opts, [0, 1], samples=8)
    assert spread is not None and spread.usable() and spread.total.samples == 8
    assert spread.ring == {"measured": [64, 64], "inner": [54, 54], "inner_fraction": 0.85}
    assert spread.total.n_values == 2 * (64 * 64 - 54 * 54)  # summed over the two slices
    expect = math.sqrt(narrow**2 + 1 / 8)
    assert math.sqrt(spread.ratio2(8)) == pytest.approx(expect, rel=0.12)


def test_calibrated_std_grows_with_the_ring_error_and_the_noise(monkeypatch):
    truth = torch.from_numpy(_head(1, 128))
    y = measure_lowres(truth, (64, 64))
    opts = SuperresOptions(samples=4, noise="none")
    ratios = []
    for miss in (1.0, 3.0):
        monkeypatch.setattr(sr, "sample_chunks", _fake_sampler(truth, 1.0, miss))
        spread = measure_ring_spread(None, y, (128, 128), opts, [0])
        assert spread is not None
        ratios.append(math.sqrt(spread.ratio2(4)))
    assert ratios[1] / ratios[0] == pytest.approx(3.0, rel=0.15)  # ratio^2 = miss^2 + 1/K_final
    var = np.full((1, 16, 16), 4.0, np.float32)
    cal = RingCalibration(factor=1.5, pool=3, noise_weight=1.0)
    std_small = cal.std(var, spread, 4, np.array([0.0]))
    std_noisy = cal.std(var, spread, 4, np.array([3.0]))
    assert np.allclose(std_small, 1.5 * 2.0 * math.sqrt(spread.ratio2(4)), rtol=1e-5)  # factor x ratio x sqrt(v)
    assert (std_noisy > std_small).all()
    assert np.allclose(std_noisy, 1.5 * np.sqrt(spread.ratio2(4) * 4.0 + 9.0), rtol=1e-5)


def test_ring_run_is_seeded_and_leaves_the_output_samples_alone(score32):
    model = vdm_from_score(load_prior(str(score32), "score")[0])
    y = measure_lowres(torch.from_numpy(_head(3, 32)), (16, 16))
    opts = SuperresOptions(samples=3, steps=2, seed=4)
    a = measure_ring_spread(model, y, (32, 32), opts, [1])
    b = measure_ring_spread(model, y, (32, 32), opts, [1])
    c = measure_ring_spread(model, y, (32, 32), SuperresOptions(samples=3, steps=2, seed=5), [1])
    assert a is not None and b is not None and c is not None
    assert a.total == b.total and a.total.samples == 3  # K_cal = min(4, K)
    assert a.total.spread2 != c.total.spread2
    # the streams follow the slice number, not the position in the selection
    d = measure_ring_spread(model, y[1:2], (32, 32), opts, [0], slice_ids=[1])
    assert d is not None and d.total == a.total
    assert measure_ring_spread(model, y, (32, 32), SuperresOptions(samples=1), [1]) is None  # no spread with K = 1


def test_bundle_constants_and_defaults(tmp_path, score32):
    cal, source = calibration_from_bundle(score32)
    assert cal == RingCalibration() and source.startswith("default")
    assert calibration_from_bundle(None)[0] == RingCalibration()
    cfg = json.loads((score32 / "config.json").read_text())
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({**cfg, BUNDLE_KEY: {"factor": 2.5, "pool": 3, "noise_weight": 0.5}}))
    cal, source = calibration_from_bundle(bundle)
    assert (cal.factor, cal.pool, cal.noise_weight, cal.remove_noise) == (2.5, 3, 0.5, True) and "bundle" in source
    assert RingCalibration.from_dict(cal.to_dict()) == cal
    (bundle / "config.json").write_text(json.dumps({**cfg, BUNDLE_KEY: {"factor": -1}}))
    with pytest.raises(ModelError, match="superres_calibration"):
        calibration_from_bundle(bundle)


def _run(tmp_path: Path, src: Path, name: str, bundle: Path, *extra: str) -> dict:
    out = tmp_path / f"{name}.nii.gz"
    r = runner.invoke(app, ["superres", str(src), "--from", "16", "--to", "32", "-o", str(out), "--model", str(bundle),
                            "--steps", "2", "-K", "3", "--seed", "2", "-q", *extra])
    assert r.exit_code == 0, r.output
    return json.loads((tmp_path / f"{name}_metrics.json").read_text())


def test_cli_records_the_calibration_and_none_keeps_the_raw_spread(tmp_path, score32, cli_env):
    src = write_nifti(tmp_path / "hi.nii.gz", _head(2, 32), Geometry(voxel_size=(2.0, 2.0, 5.0)))
    m = _run(tmp_path, src, "cal", score32)
    unc = m["uncertainty"]
    assert unc["calibration_applied"] == "ring"
    assert unc["calibration"]["factor"] == 1.0 and unc["calibration"]["source"].startswith("default")
    ho = unc["holdout"]
    assert ho["ring"] == {"measured": [16, 16], "inner": [14, 14], "inner_fraction": 0.85}
    assert ho["samples"] == 3 and ho["slices"] == [1] and ho["ratio"] > 0
    raw = _run(tmp_path, src, "raw", score32, "--calibration", "none")
    assert raw["uncertainty"]["calibration_applied"].startswith("none") and "holdout" not in raw["uncertainty"]
    # the ring run has its own streams: the image is the same, the std is the raw one scaled
    assert np.array_equal(read_nifti(tmp_path / "cal.nii.gz")[0], read_nifti(tmp_path / "raw.nii.gz")[0])
    std_c, std_r = read_nifti(tmp_path / "cal_std.nii.gz")[0], read_nifti(tmp_path / "raw_std.nii.gz")[0]
    assert not np.array_equal(std_c, std_r)
    # the same again with the constants in the bundle
    bundle = tmp_path / "withcal"
    bundle.mkdir()
    for f in score32.iterdir():
        (bundle / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((bundle / "config.json").read_text())
    (bundle / "config.json").write_text(json.dumps({**cfg, BUNDLE_KEY: {"factor": 2.0, "pool": 1}}))
    m2 = _run(tmp_path, src, "cal2", bundle)
    assert m2["uncertainty"]["calibration"]["factor"] == 2.0 and "bundle" in m2["uncertainty"]["calibration"]["source"]
    assert m2["uncertainty"]["holdout"]["ratio"] == pytest.approx(ho["ratio"])  # same seed: same ring run
    r = runner.invoke(app, ["superres", str(src), "--from", "16", "--to", "32", "-o", str(tmp_path / "x.nii.gz"),
                            "--calibration", "ring"])
    assert r.exit_code == 2


def test_uncertainty_task_superres_is_calibrated(tmp_path, score32, cli_env):
    src = write_nifti(tmp_path / "hi.nii.gz", _head(1, 32), Geometry(voxel_size=(2.0, 2.0, 5.0)))
    r = runner.invoke(app, ["uncertainty", str(src), "--task", "superres", "--from", "16", "--to", "32", "-o",
                            str(tmp_path / "u.nii.gz"), "--model", str(score32), "--steps", "2", "-K", "2", "-q"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "u_metrics.json").read_text())
    assert m["uncertainty"]["calibration_applied"] == "ring" and m["uncertainty"]["holdout"]["samples"] == 2
    assert "coverage" in m["calibration"]["overall"]


def test_library_superres_slices_is_unchanged_by_the_refactor(score32):
    """superres_slices draws through sample_chunks: the batch size does not change the mean / variance."""
    model = vdm_from_score(load_prior(str(score32), "score")[0])
    y = measure_lowres(torch.from_numpy(_head(2, 32)), (16, 16))
    o = SuperresOptions(samples=2, steps=2, seed=1, batch_size=2)
    a = superres_slices(model, y, (32, 32), o)
    b = superres_slices(model, y, (32, 32), SuperresOptions(samples=2, steps=2, seed=1, batch_size=4))
    assert torch.equal(a[0], b[0]) and a[1] is not None and b[1] is not None and torch.equal(a[1], b[1])


def test_ring_run_with_the_vdm_sampler(score32):
    model = vdm_from_score(load_prior(str(score32), "score")[0])
    y = measure_lowres(torch.from_numpy(_head(1, 32)), (16, 16))
    opts = SuperresOptions(sampler="vdm", samples=2, steps=2, seed=0)
    a = measure_ring_spread(model, y, (32, 32), opts, [0])
    b = measure_ring_spread(model, y, (32, 32), opts, [0])
    assert a is not None and b is not None and a.total == b.total and a.usable()
