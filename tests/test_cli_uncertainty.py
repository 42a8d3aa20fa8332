"""`mrdiff uncertainty` (K posterior samples -> mean / variance / std + calibration) through the real Typer app,
the calibration report itself, and the zero-spread limit of fully sampled data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.nifti import read_nifti
from mrdiff_cli.io.calibration_png import write_calibration_png
from mrdiff_cli.tasks.calibration import calibration_report, rankdata, spearman

runner = CliRunner()
MASK = ["--mask", "equispaced", "--accel", "4"]


@pytest.fixture(autouse=True)
def _offline(cli_env):
    """Offline, no SLURM / progress / thread settings from the caller (conftest.cli_env)."""


def unc(*args):
    return runner.invoke(app, ["uncertainty", *[str(a) for a in args]])


def ok(res):
    assert res.exit_code == 0, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return res


# ------------------------------------------------------------------------------------------------------
# CLI


def test_uncertainty_k4_writes_mean_variance_std_and_calibration(tiny_fastmri_file, model_dir, tmp_path):
    out = tmp_path / "u.nii.gz"
    res = ok(unc(tiny_fastmri_file, "-o", out, "--model", model_dir, *MASK, "--steps", 3, "-K", 4, "--json"))
    r = json.loads(res.stdout)["results"][0]
    mean, _ = read_nifti(out)
    var, _ = read_nifti(tmp_path / "u_variance.nii.gz")
    std, _ = read_nifti(tmp_path / "u_std.nii.gz")
    assert mean.shape == var.shape == std.shape == (2, 32, 32)
    assert (var >= 0).all() and var.max() > 0 and np.isfinite(mean).all()
    np.testing.assert_allclose(std, np.sqrt(var), rtol=1e-5, atol=1e-7)
    assert r["samples"] == 4 and r["output"]["variance"] and r["output"]["std"]
    m = json.loads((tmp_path / "u_metrics.json").read_text())
    cal = m["calibration"]
    ov = cal["overall"]
    assert ov["support_pixels"] > 0 and -1 <= ov["spearman"] <= 1 and 0 <= ov["coverage_1.96"] <= 1
    assert len(cal["per_slice"]) == 2 and len(cal["curve"]["rmse"]) == 10
    assert sum(cal["curve"]["count"]) == ov["support_pixels"]
    assert (tmp_path / "u_calibration.png").exists() and r["output"]["calibration_png"].endswith("u_calibration.png")


def test_uncertainty_default_k_is_8(tiny_fastmri_file, model_dir, tmp_path):
    out = tmp_path / "d.nii.gz"
    ok(unc(tiny_fastmri_file, "-o", out, "--model", model_dir, *MASK, "--steps", 2, "-q", "--slices", "0:1"))
    assert json.loads((tmp_path / "d_metrics.json").read_text())["samples"] == 8


def test_uncertainty_k1_refused(tiny_fastmri_file, model_dir, tmp_path):
    out = tmp_path / "u.nii.gz"
    res = unc(tiny_fastmri_file, "-o", out, "--model", model_dir, *MASK, "-K", 1)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrdiff: error:") and "K >= 2" in lines[0]
    assert "Traceback" not in res.output and not out.exists()


def test_uncertainty_seed_reproducible(tiny_fastmri_undersampled_file, model_dir, tmp_path):
    def var_for(seed, name):
        out = tmp_path / f"{name}.nii.gz"
        ok(unc(tiny_fastmri_undersampled_file, "-o", out, "--model", model_dir, "--steps", 3, "-K", 3, "-q", "--seed", seed))
        return read_nifti(tmp_path / f"{name}_variance.nii.gz")[0], read_nifti(out)[0]

    a, b, c = var_for(5, "a"), var_for(5, "b"), var_for(6, "c")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


# ------------------------------------------------------------------------------------------------------
# fully sampled data: the posterior is a point mass, the spread must vanish
# (--mask needs --accel > 1, and a fully sampled file without --mask is refused, so this goes through the
# Reconstructor with an all-ones mask, the same object the command drives)


@pytest.mark.parametrize("mode,sampler", [("ssos", "fast"), ("ssos", "pc"), ("sense", "fast"), ("sense", "pc")])
def test_variance_vanishes_when_fully_sampled(tiny_sim, model_dir, mode, sampler):
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    prior, _ = load_prior(str(model_dir), "score", offline=True)
    full = np.ones((32, 32), np.float32)
    # noise_dc="none" (the default): the data are taken as exact (with "perturb" they spread, see the next test)
    opts = ReconOptions(sampler=sampler, steps=3, samples=4, seed=1)
    res = Reconstructor(prior, opts).reconstruct(tiny_sim.kspace, full, mode)
    ref = tiny_sim.reference
    scale = float(ref.max()) ** 2
    if mode == "sense":
        # SENSE pins down every pixel where the coil maps are non-zero (ESPIRiT zeroes them outside the object)
        supp = ref > 0.05 * ref.max()
        assert res.variance[supp].max() < 1e-8 * scale
    else:
        assert res.variance.max() < 1e-8 * scale  # hard DC per coil: every k-space value is the measured one
        np.testing.assert_allclose(res.images, ref, rtol=1e-4, atol=1e-4 * float(ref.max()))


def test_fully_sampled_noisy_data_spread_is_the_noise(tiny_sim, model_dir):
    """Fully sampled, single coil, hard DC: the posterior of each pixel is the measurement plus its noise; the
    samples must spread by the noise (complex std sigma_n -> magnitude std sigma_n / sqrt(2) where the signal
    dominates), not collapse to zero as exact-data consistency does."""
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    prior, _ = load_prior(str(model_dir), "score", offline=True)
    k = tiny_sim.kspace[:, :1] / np.abs(tiny_sim.kspace[:, :1]).max()  # one coil, unit scale
    sigma_n = 0.02
    full = np.ones((32, 32), np.float32)
    res = Reconstructor(prior, ReconOptions(steps=2, samples=24, seed=3, noise=sigma_n, noise_dc="perturb",
                                            support=False, batch_size=64)).reconstruct(k, full, "single")
    from mrdiff_cli.ops.fft import ifft2c
    import torch

    img = ifft2c(torch.as_tensor(k)).abs()[:, 0].numpy()
    bright = img > 8 * sigma_n
    ratio = np.sqrt(res.raw_variance[bright].mean()) / (sigma_n / np.sqrt(2))
    assert 0.85 < ratio < 1.15, ratio  # 24 samples x hundreds of pixels: a few % sampling error
    np.testing.assert_array_equal(res.noise_sigma, np.full(2, sigma_n, np.float32))
    # the same run with exact-data consistency has no spread at all
    exact = Reconstructor(prior, ReconOptions(steps=2, samples=4, seed=3, support=False)).reconstruct(k, full, "single")
    assert exact.raw_variance.max() < 1e-10


def test_variance_positive_when_undersampled(tiny_sim, model_dir):
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    prior, _ = load_prior(str(model_dir), "score", offline=True)
    mask = make_mask("equispaced", (32, 32), 4.0, acs=4).mask
    res = Reconstructor(prior, ReconOptions(steps=3, samples=4, seed=1)).reconstruct(tiny_sim.kspace, mask, "ssos")
    assert res.variance.mean() > 1e-6 * float(tiny_sim.reference.max()) ** 2


def test_single_coil_scans_use_the_single_coil_calibration(tiny_sim, model_dir):
    """A calibration with a single-coil block scales one-coil spreads by that block's factor, not the main one."""
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    prior, _ = load_prior(str(model_dir), "score", offline=True)
    mask = make_mask("equispaced", (32, 32), 4.0, acs=4).mask
    cal = {"method": "factor", "params": {"factor": 2.0, "pool": 1},
           "single_coil": {"method": "factor", "params": {"factor": 5.0, "pool": 1}}}
    k1 = tiny_sim.kspace[:, :1]  # one coil
    res = Reconstructor(prior, ReconOptions(steps=3, samples=3, seed=1, calibration=cal)).reconstruct(k1, mask, "single")
    np.testing.assert_allclose(res.variance, 25.0 * res.raw_variance, rtol=1e-5, atol=1e-12)
    res8 = Reconstructor(prior, ReconOptions(steps=3, samples=3, seed=1, calibration=cal)).reconstruct(
        tiny_sim.kspace, mask, "ssos")
    np.testing.assert_allclose(res8.variance, 4.0 * res8.raw_variance, rtol=1e-5, atol=1e-12)


def test_k_samples_default_to_fresh_renoise_and_ancestral_keeps_more_spread(tiny_sim, model_dir):
    """K > 1 samples use zeta = 1 by default (the better mean); zeta='ancestral' still runs and, keeping more of
    the posterior spread, gives the larger raw variance on the same data and seed."""
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    prior, _ = load_prior(str(model_dir), "score", offline=True)
    mask = make_mask("equispaced", (32, 32), 4.0, acs=4).mask
    base = dict(steps=6, samples=6, seed=2, calibration=None)
    default = Reconstructor(prior, ReconOptions(**base))
    assert default._zeta() == 1.0
    v1 = default.reconstruct(tiny_sim.kspace, mask, "ssos").variance.mean()
    va = Reconstructor(prior, ReconOptions(zeta="ancestral", **base)).reconstruct(tiny_sim.kspace, mask, "ssos").variance.mean()
    assert va > v1 > 0


# ------------------------------------------------------------------------------------------------------
# calibration_report on synthetic data with known answers


def test_rankdata_and_spearman_match_definitions():
    np.testing.assert_array_equal(rankdata(np.array([10.0, 30.0, 20.0, 20.0])), [1.0, 4.0, 2.5, 2.5])
    x = np.arange(50.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x / 10)) == pytest.approx(-1.0)
    assert spearman(x, np.ones(50)) is None
    # against the textbook formula 1 - 6 sum d^2 / (n (n^2 - 1)) (no ties)
    rng = np.random.default_rng(0)
    a, b = rng.permutation(40).astype(float), rng.permutation(40).astype(float)
    d = rankdata(a) - rankdata(b)
    assert spearman(a, b) == pytest.approx(1 - 6 * np.sum(d**2) / (40 * (40**2 - 1)))


def _synthetic(calibrated: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    S, H, W = 3, 32, 32
    yy, xx = np.mgrid[:H, :W]
    obj = ((yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 12**2).astype(np.float64)
    ref = np.stack([obj * (1 + 0.2 * s) for s in range(S)])
    std = 0.02 + 0.1 * rng.random((S, H, W))
    noise = rng.standard_normal((S, H, W)) * (std if calibrated else 0.05)
    return ref + noise, std, ref


def test_calibration_report_calibrated_gaussian_errors():
    mean, std, ref = _synthetic(calibrated=True)
    rep = calibration_report(mean, std, ref, np.ones((32, 32)))
    ov = rep["overall"]
    # |N(0, std^2)| <= 1.96 std with probability 0.95; ~1350 support pixels -> sampling std ~0.006
    assert ov["coverage_1.96"] == pytest.approx(0.95, abs=0.03)
    assert ov["spearman"] > 0.3  # |err| grows with std
    assert ov["rmse_over_rms_std"] == pytest.approx(1.0, abs=0.1)
    assert ov["ence"] < 0.2
    c = rep["curve"]
    assert c["std_mean"] == sorted(c["std_mean"]) and len(c["rmse"]) == 10
    assert np.allclose(c["rmse"], c["std_mean"], rtol=0.3)  # on the identity line
    assert len(rep["per_slice"]) == 3 and all(p["support_pixels"] > 0 for p in rep["per_slice"])
    assert ov["support_pixels"] == sum(p["support_pixels"] for p in rep["per_slice"])
    assert rep["sampled_fraction"] == 1.0
    json.dumps(rep)  # plain JSON types


def test_calibration_report_uninformative_std():
    mean, std, ref = _synthetic(calibrated=False, seed=1)
    ov = calibration_report(mean, std, ref, None)["overall"]
    assert abs(ov["spearman"]) < 0.1  # the std knows nothing about where errors are
    assert ov["std_mean_background"] == pytest.approx(np.mean(std[ref <= 0.05 * ref.max()]))
    # support excludes background: only ref > 5 % of the maximum counts
    assert ov["support_pixels"] == int(np.sum(ref > 0.05 * ref.max()))


def test_calibration_report_edge_cases(tmp_path):
    z = np.zeros((1, 8, 8))
    rep = calibration_report(z, z, z, np.ones((8, 8)))  # no support at all
    assert rep["overall"]["support_pixels"] == 0 and rep["overall"]["spearman"] is None and rep["curve"]["rmse"] == []
    p = write_calibration_png(tmp_path / "empty.png", rep)
    assert p.exists()
    with pytest.raises(ValueError):
        calibration_report(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)), np.zeros((1, 4, 4)))


def test_calibration_png(tmp_path):
    from PIL import Image

    mean, std, ref = _synthetic(calibrated=True)
    rep = calibration_report(mean, std, ref)
    p = write_calibration_png(tmp_path / "cal.png", rep)
    img = Image.open(p)
    assert img.format == "PNG" and img.size[0] >= 200
    a = np.asarray(img.convert("RGB")).astype(int)
    red = (a[..., 0] > 150) & (a[..., 1] < 80) & (a[..., 2] < 80)
    assert red.sum() > 50  # the curve is drawn
    from mrdiff_cli.errors import OutputError

    with pytest.raises(OutputError):
        write_calibration_png(p, rep)  # exists, no overwrite
    write_calibration_png(p, rep, overwrite=True)


# ------------------------------------------------------------------------------------------------------
# the calibration shipped with the model: applied by default, --calibration none = raw spread, intervals


def _model_with_calibration(model_dir, tmp_path, block):
    import shutil

    dst = tmp_path / "calibrated-model"
    shutil.copytree(model_dir, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["calibration"] = block
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_calibration_none_differs_from_default_by_the_stored_factor(tiny_fastmri_file, model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no folding of the summary tables
    factor = 2.5
    mdir = _model_with_calibration(model_dir, tmp_path, {"method": "factor", "params": {"factor": factor, "pool": 1},
                                                        "fitted_on": ["test"]})
    common = [tiny_fastmri_file, "--model", mdir, *MASK, "--steps", 3, "-K", 3, "--seed", 4]
    res = ok(unc(*common, "-o", tmp_path / "cal.nii.gz"))
    ok(unc(*common, "-o", tmp_path / "raw.nii.gz", "--calibration", "none", "-q"))
    std_cal, std_raw = (read_nifti(tmp_path / f"{n}_std.nii.gz")[0] for n in ("cal", "raw"))
    var_cal, var_raw = (read_nifti(tmp_path / f"{n}_variance.nii.gz")[0] for n in ("cal", "raw"))
    assert std_raw.max() > 0
    np.testing.assert_allclose(std_cal, factor * std_raw, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(var_cal, factor**2 * var_raw, rtol=1e-5, atol=1e-12)
    np.testing.assert_array_equal(read_nifti(tmp_path / "cal.nii.gz")[0], read_nifti(tmp_path / "raw.nii.gz")[0])
    # intervals: [max(0, mean - 1.96 std), mean + 1.96 std] of the calibrated std
    mean = read_nifti(tmp_path / "cal.nii.gz")[0]
    lo, hi = (read_nifti(tmp_path / f"cal_{b}95.nii.gz")[0] for b in ("lower", "upper"))
    np.testing.assert_allclose(hi, mean + 1.96 * std_cal, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lo, np.maximum(mean - 1.96 * std_cal, 0), rtol=1e-5, atol=1e-6)
    m_cal = json.loads((tmp_path / "cal_metrics.json").read_text())
    m_raw = json.loads((tmp_path / "raw_metrics.json").read_text())
    assert m_cal["uncertainty"]["calibration"]["params"]["factor"] == factor
    assert m_raw["uncertainty"]["calibration"].startswith("none")
    assert set(m_cal["calibration"]["overall"]["coverage"]) == {"68", "90", "95"}
    # terminal: the right title, the calibration table with the three coverage levels and the curve file
    out = " ".join((res.stdout + res.stderr).split())  # the summary tables go to the console (stderr)
    assert "mrdiff uncertainty" in out and "mrdiff reconstruct" not in out
    assert "cov 68%" in out and "cov 95%" in out and "calibration.png" in out and "factor" in out


def test_loglinear_calibration_applied_in_the_reconstructor(tiny_sim, model_dir):
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.calibration import Calibration
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    prior, _ = load_prior(str(model_dir), "score", offline=True)
    mask = make_mask("equispaced", (32, 32), 4.0, acs=4).mask
    cal = Calibration("loglinear", {"factor": 1.7, "pool": 3, "log_c": -1.0, "a": 0.6, "b": 0.3})
    res = Reconstructor(prior, ReconOptions(steps=2, samples=3, seed=2, calibration=cal.to_dict())).reconstruct(
        tiny_sim.kspace, mask, "ssos")
    np.testing.assert_allclose(np.sqrt(res.variance), cal.std(res.images, res.raw_variance), rtol=1e-5)
    raw = Reconstructor(prior, ReconOptions(steps=2, samples=3, seed=2, calibration=None)).reconstruct(
        tiny_sim.kspace, mask, "ssos")
    np.testing.assert_array_equal(raw.variance, res.raw_variance)


def test_invalid_calibration_block_is_one_line_exit_2(tiny_fastmri_file, model_dir, tmp_path):
    mdir = _model_with_calibration(model_dir, tmp_path, {"method": "isotonic", "params": {}})
    res = unc(tiny_fastmri_file, "--model", mdir, *MASK, "--steps", 2, "-K", 2, "-o", tmp_path / "x.nii.gz")
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "calibration" in lines[0] and "Traceback" not in res.output


def test_uncertainty_offers_no_method_option(tiny_fastmri_file, model_dir, tmp_path):
    res = unc(tiny_fastmri_file, "--model", model_dir, *MASK, "--method", "sense", "-o", tmp_path / "x.nii.gz")
    assert res.exit_code == 2 and "--method" in res.output
    assert "--method" not in " ".join(runner.invoke(app, ["uncertainty", "--help"]).stdout.split())


def test_dicom_series_for_every_map(tiny_fastmri_file, model_dir, tmp_path):
    out = tmp_path / "u"
    ok(unc(tiny_fastmri_file, "-o", out, "--format", "dicom", "--model", model_dir, *MASK, "--steps", 2, "-K", 2,
           "-q", "--slices", "0:1"))
    for suffix in ("", "_variance", "_std", "_lower95", "_upper95"):
        folder = tmp_path / f"u{suffix}"
        assert folder.is_dir() and any(folder.glob("*.dcm")), suffix
    assert (out / "calibration.png").exists() and (out / "metrics.json").exists()


# ------------------------------------------------------------------------------------------------------
# the calibration table and the declared options


def test_calibration_table_columns(capsys):
    from mrdiff_cli.cli.uncertainty import print_calibration_table

    mean, std, ref = _synthetic(calibrated=True)
    rep = calibration_report(mean, std, ref)
    print_calibration_table({"results": [
        {"input": "/data/a.h5", "slices": [0, 1, 2],
         "uncertainty": {"calibration": {"method": "factor"}, "calibration_applied": "main"},
         "calibration": rep, "output": {"calibration_png": "a_calibration.png"}},
        {"input": "/data/b.h5", "slices": [0], "uncertainty": {"calibration": "none (--calibration none)"}},
    ]})
    err = capsys.readouterr().err  # the console is stderr; not a terminal here: plain columns, one line per row
    lines = err.splitlines()
    header = next(line for line in lines if line.startswith("input"))
    assert header.split("  ")[0] == "input" and [c.strip() for c in header.split("  ") if c.strip()] == [
        "input", "calibration", "Spearman |err|", "Spearman local 5x5", "cov 68%", "cov 90%", "cov 95%", "AUSE"]
    row = next(line for line in lines if line.startswith("a.h5")).split()
    local = np.mean([p["spearman_local"] for p in rep["per_slice"]])
    assert row[1:3] == ["fixed", "factor"] and row[4] == f"{local:.3f}" and row[-1] == f"{rep['overall']['ause']:.3f}"
    assert next(line for line in lines if line.startswith("b.h5")).split()[1:3] == ["none", "no"]
    assert "ceiling" not in err.lower()
    text = " ".join(err.split())
    assert "Spearman local 5x5: the same against the RMS of that error over each pixel's 5x5 window" in text
    assert "AUSE:" in text and "a_calibration.png" in text


# every option of `mrdiff uncertainty` before its signature was written out (it was built from reconstruct's)
UNCERTAINTY_OPTIONS = [
    "--output", "-o", "--mask", "--accel", "-R", "--acs", "--sampler", "--steps", "--coil-mode", "--complex-mode",
    "--phase-resid", "--phase-ref", "--count-pilot", "--coil-maps", "--maps-support", "--sense-every", "--snr", "--sigma-max",
    "--zeta", "--cg-iters", "--samples", "-K", "--model",
    "-m", "--offline", "--format", "--input-format", "--save-zero-filled", "--no-save-zero-filled", "--save-samples",
    "--no-save-samples", "--preview", "--no-preview", "--metrics", "--no-metrics", "--overwrite", "--no-overwrite",
    "--seed", "--device", "--batch-size", "--coils", "--threads", "--precision", "--shard", "--slices",
    "--keep-going", "--quiet", "-q", "--json", "--task", "--from", "--to", "--guidance", "--noise-consistency",
    "--calibration",
]


def _uncertainty_command():
    import typer.main

    return typer.main.get_command(app).commands["uncertainty"]


def test_uncertainty_help_lists_the_same_options(monkeypatch):
    cmd = _uncertainty_command()
    declared = [o for p in cmd.params if p.param_type_name == "option" for o in p.opts + p.secondary_opts]
    assert declared == UNCERTAINTY_OPTIONS
    assert [p.name for p in cmd.params if p.param_type_name == "argument"] == ["inputs"]
    defaults = {p.name: p.default for p in cmd.params}
    assert defaults["samples"] == 8 and defaults["sense_every"] == 10 and defaults["snr"] == 0.16
    assert defaults["guidance"] == 1.0 and defaults["metrics"] is True and defaults["precision"] == "auto"
    monkeypatch.setenv("COLUMNS", "250")
    help_text = runner.invoke(app, ["uncertainty", "--help"]).stdout
    flags = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text))
    assert set(UNCERTAINTY_OPTIONS) <= flags and "--method" not in flags
    for panel in ("Output", "Undersampling", "Sampler", "Model", "Execution", "Task"):
        assert f"─ {panel} ─" in help_text


def test_recon_only_defaults_match_the_declared_ones():
    """--task superres refuses recon-only options set away from their defaults: those defaults are the declared ones."""
    from mrdiff_cli.cli.uncertainty import RECON_ONLY

    declared = {p.name: p.default for p in _uncertainty_command().params}
    assert {name: declared[name] for name in RECON_ONLY} == RECON_ONLY


def test_per_scan_holdout_calibration_and_fixed_fallback_choice(tiny_fastmri_file, model_dir, tmp_path, monkeypatch):
    """A bundle with a 'holdout' block: the default scales the std per scan (the JSON says so and carries the
    hold-out evidence, the table says 'per scan'); --calibration fixed applies only the fixed map."""
    monkeypatch.setenv("COLUMNS", "400")
    mdir = _model_with_calibration(model_dir, tmp_path, {
        "method": "factor", "params": {"factor": 2.0, "pool": 1}, "fitted_on": ["test"],
        "holdout": {"factor": 1.5, "pool": 3, "noise_weight": 1.0, "remove_noise": False}})
    common = [tiny_fastmri_file, "--model", mdir, "--mask", "poisson", "--accel", "2", "--steps", 3, "-K", 3,
              "--seed", 4, "--cg-iters", 2, "--phase-resid", 0.005]
    res = ok(unc(*common, "-o", tmp_path / "scan.nii.gz", "--json"))
    u = json.loads(res.stdout)["results"][0]["uncertainty"]
    assert u["calibration_applied"] == "holdout", u
    assert u["holdout"]["samples"] == 3 and u["holdout"]["ratio"] > 0 and u["holdout"]["hidden_values"] > 0
    # the samples' maps are adaptive (auto), the hold-out spread is measured on the pilots' espirit maps
    assert json.loads(res.stdout)["results"][0]["consistency"]["coil_maps"] == "adaptive"
    assert u["holdout"]["holdout"]["coil_maps"] == "espirit"
    assert "per scan" in " ".join(ok(unc(*common, "-o", tmp_path / "scan2.nii.gz")).output.split())
    res_fixed = ok(unc(*common, "-o", tmp_path / "fixed.nii.gz", "--calibration", "fixed", "--json"))
    uf = json.loads(res_fixed.stdout)["results"][0]["uncertainty"]
    assert uf["calibration_applied"] == "main" and "holdout" not in uf and "holdout" not in uf["calibration"]
    ok(unc(*common, "-o", tmp_path / "raw.nii.gz", "--calibration", "none", "-q"))
    std_scan, std_fixed, std_raw = (read_nifti(tmp_path / f"{n}_std.nii.gz")[0] for n in ("scan", "fixed", "raw"))
    np.testing.assert_allclose(std_fixed, 2.0 * std_raw, rtol=1e-5, atol=1e-9)
    assert not np.allclose(std_scan, std_fixed)
    # the mean image does not depend on the calibration
    np.testing.assert_array_equal(read_nifti(tmp_path / "scan.nii.gz")[0], read_nifti(tmp_path / "fixed.nii.gz")[0])
