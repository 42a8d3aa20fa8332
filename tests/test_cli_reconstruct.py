"""`mrdiff reconstruct` end to end through the real Typer app on tiny simulated fastMRI files (32x32, 2 slices)
with a tiny untrained model bundle (--model DIR) and 3 sampler steps: files on disk, metrics JSON, exit codes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.nifti import read_nifti

runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(cli_env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: assertions see whole cells (offline etc.: conftest.cli_env)


@pytest.fixture(scope="module")
def single_coil_file(tmp_path_factory) -> Path:
    """Fully sampled, noise-free single-coil fastMRI-style file (2 slices, 32x32)."""
    from mrdiff_cli.tasks.simulate import analytic_phantom, simulate_volume, write_simulated

    p = analytic_phantom(32)
    sim = simulate_volume(np.stack([p, 0.5 * p]), matrix=None, coils=1, snr_db=None, seed=4)
    return write_simulated(sim, tmp_path_factory.mktemp("sc") / "single.h5", "fastmri")


@pytest.fixture
def files(tiny_fastmri_file, single_coil_file):
    return {"multi": tiny_fastmri_file, "single": single_coil_file}


def run(*args, env=None):
    return runner.invoke(app, ["reconstruct", *[str(a) for a in args]], env=env)


def ok(res):
    assert res.exit_code == 0, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return res


def metrics(out: Path) -> dict:
    return json.loads(Path(str(out).replace(".nii.gz", "_metrics.json")).read_text())


def one_line_error(res, needle: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrdiff: error:"), res.stderr
    assert needle in lines[0], lines[0]
    assert "Traceback" not in res.output


MASK = ["--mask", "equispaced", "--accel", "4"]


# ------------------------------------------------------------------------------------------------------
# diffusion: every coil mode, both samplers


@pytest.mark.parametrize("sampler", ["fast", "pc"])
@pytest.mark.parametrize(
    "data,mode,extra",
    [("single", "single", []), ("single", "real", []), ("multi", "sense", []), ("multi", "ssos", []),
     ("multi", "hybrid", ["--sense-every", "1"])],
)
def test_coil_modes_write_nifti_and_metrics(files, model_dir, tmp_path, data, mode, extra, sampler):
    out = tmp_path / "recon.nii.gz"
    ok(run(files[data], "-o", out, "--model", model_dir, *MASK, "--steps", 3, "--sampler", sampler,
           "--coil-mode", mode, "--device", "cpu", "-q", *extra))
    vol, _ = read_nifti(out)
    assert vol.shape == (2, 32, 32) and np.isfinite(vol).all() and vol.max() > 0
    m = metrics(out)
    r = m["coil_mode"], m["sampler"], m["method"], m["nfe"]
    assert r == (mode, sampler, "diffusion", 4 if sampler == "fast" else 5)  # fast: steps + final noise-free step
    assert all(math.isfinite(s["psnr"]) for s in m["metrics"]["per_slice"])
    assert math.isfinite(m["metrics"]["mean"]["psnr"]) and m["mask"]["kind"] == "equispaced"
    assert (tmp_path / "recon_mask.png").exists()
    assert not (tmp_path / "recon_variance.nii.gz").exists()  # one sample: no spread maps


def test_coil_mode_mismatch_is_usage_error(files, model_dir, tmp_path):
    res = run(files["single"], "-o", tmp_path / "r.nii.gz", "--model", model_dir, *MASK, "--coil-mode", "sense", "-q")
    one_line_error(res, "multi-coil")


# ------------------------------------------------------------------------------------------------------
# baselines need no model


@pytest.mark.parametrize("method", ["zero-filled", "sense"])
def test_baselines_without_model(files, tmp_path, method):
    out = tmp_path / f"{method}.nii.gz"
    ok(run(files["multi"], "-o", out, "--method", method, *MASK, "-q"))
    m = metrics(out)
    assert m["method"] == method and m["model"] == {"name": None} and m["nfe"] == 0
    assert math.isfinite(m["metrics"]["mean"]["psnr"])
    assert read_nifti(out)[0].shape == (2, 32, 32)


def test_auto_coil_mode(files, tmp_path):
    for data, expect in (("multi", "sense"), ("single", "single")):
        out = tmp_path / f"{data}.nii.gz"
        ok(run(files[data], "-o", out, "--method", "zero-filled", *MASK, "-q"))
        assert metrics(out)["coil_mode"] == expect


def test_sense_beats_zero_filled(files, tmp_path):
    outs = {}
    for method in ("zero-filled", "sense"):
        outs[method] = tmp_path / f"{method}.nii.gz"
        ok(run(files["multi"], "-o", outs[method], "--method", method, "--mask", "equispaced", "--accel", "2", "-q"))
    assert metrics(outs["sense"])["metrics"]["mean"]["psnr"] > metrics(outs["zero-filled"])["metrics"]["mean"]["psnr"] + 3


# ------------------------------------------------------------------------------------------------------
# sampling patterns


def test_undersampled_file_uses_its_own_pattern(tiny_fastmri_undersampled_file, model_dir, tmp_path):
    out = tmp_path / "us.nii.gz"
    ok(run(tiny_fastmri_undersampled_file, "-o", out, "--model", model_dir, "--steps", 3, "-q"))
    m = metrics(out)
    assert m["mask"]["kind"] == "from-file"
    assert m["mask"]["achieved_accel"] == pytest.approx(4.0)
    assert m["reference"]["source"] == "file dataset 'reconstruction_rss'" and m["reference"]["noisy"] is False
    assert "noise-free" in m["reference"]["description"] and math.isfinite(m["metrics"]["mean"]["psnr"])


def test_fully_sampled_without_mask_exit_2(files, model_dir, tmp_path):
    out = tmp_path / "r.nii.gz"
    res = run(files["multi"], "-o", out, "--model", model_dir, "-q")
    one_line_error(res, "fully sampled")
    assert "--mask" in res.stderr and not out.exists()


# ------------------------------------------------------------------------------------------------------
# sharding


def test_shards_split_slices_disjointly_and_match_full_run(files, model_dir, tmp_path, monkeypatch):
    common = ["--model", model_dir, *MASK, "--steps", 3, "-q", "--seed", 3]
    full = tmp_path / "full.nii.gz"
    ok(run(files["multi"], "-o", full, *common))
    full_vol, full_geom = read_nifti(full)
    full_aff = full_geom.resolved_affine()
    seen = []
    for i in range(2):
        out = tmp_path / f"shard{i}.nii.gz"
        ok(run(files["multi"], "-o", out, *common, "--shard", f"{i}/2"))
        m = metrics(out)
        assert m["shard"] == f"{i}/2"
        vol = read_nifti(out)[0]
        assert vol.shape[0] == len(m["slices"]) == 1
        # per-slice seeding: a slice comes out the same whichever shard (batch) reconstructs it
        np.testing.assert_allclose(vol[0], full_vol[m["slices"][0]], rtol=1e-4, atol=1e-5 * float(full_vol.max()))
        # each shard is a contiguous sub-volume whose affine starts at its first slice
        aff = read_nifti(out)[1].resolved_affine()
        np.testing.assert_allclose(aff[:3, 3], full_aff[:3, 3] + full_aff[:3, 2] * m["slices"][0], atol=1e-4)
        np.testing.assert_allclose(aff[:3, :3], full_aff[:3, :3], atol=1e-5)
        seen += m["slices"]
    assert sorted(seen) == [0, 1] and len(set(seen)) == 2
    # SLURM array variables pick the shard when --shard is absent
    out = tmp_path / "slurm.nii.gz"
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    ok(run(files["multi"], "-o", out, "--method", "zero-filled", *MASK, "-q"))
    assert metrics(out)["slices"] == [1] and metrics(out)["shard"] == "1/2"


def test_bad_shard_exit_2(files, tmp_path):
    one_line_error(run(files["multi"], "-o", tmp_path / "r.nii.gz", "--method", "zero-filled", *MASK, "--shard", "2/2"), "--shard")


# ------------------------------------------------------------------------------------------------------
# outputs


def test_existing_output_is_untouched_without_overwrite(files, tmp_path):
    out = tmp_path / "exists.nii.gz"
    out.write_bytes(b"precious")
    res = run(files["multi"], "-o", out, "--method", "zero-filled", *MASK, "-q")
    one_line_error(res, "--overwrite")
    assert out.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mrdiff-tmp-")]  # no temporary left over
    ok(run(files["multi"], "-o", out, "--method", "zero-filled", *MASK, "-q", "--overwrite"))
    assert read_nifti(out)[0].shape == (2, 32, 32)


def test_dicom_series_folder(files, tmp_path):
    out = tmp_path / "series"
    ok(run(files["multi"], "-o", out, "--format", "dicom", "--method", "sense", *MASK, "-q"))
    assert out.is_dir()
    dcm = sorted(out.glob("*.dcm"))
    assert len(dcm) == 2
    import pydicom

    ds = pydicom.dcmread(dcm[0])
    assert ds.Rows == 32 and ds.Columns == 32
    # sidecars of a DICOM series live inside its folder
    assert (out / "metrics.json").exists() and (out / "mask.png").exists() and not (tmp_path / "series_metrics.json").exists()
    assert len(pydicom.dcmread(dcm[1]).pixel_array.shape) == 2
    ok(run(files["multi"], "-o", out, "--format", "dicom", "--method", "sense", *MASK, "-q", "--overwrite"))
    assert sorted(p.name for p in out.iterdir()) == ["IMG0001.dcm", "IMG0002.dcm", "mask.png", "metrics.json"]


def test_json_summary_on_stdout(files, model_dir, tmp_path):
    out = tmp_path / "j.nii.gz"
    res = ok(run(files["multi"], "-o", out, "--model", model_dir, *MASK, "--steps", 3, "--json"))
    summary = json.loads(res.stdout)
    r = summary["results"][0]
    assert r["output"]["image"] == str(out) and Path(r["output"]["metrics"]).exists()
    assert r["slices"] == [0, 1] and math.isfinite(r["metrics"]["mean"]["psnr"])
    assert "mrdiff_version" in summary


def test_samples_write_variance_and_std(files, model_dir, tmp_path):
    out = tmp_path / "k3.nii.gz"
    ok(run(files["multi"], "-o", out, "--model", model_dir, *MASK, "--steps", 3, "--samples", 3, "-q",
           "--save-zero-filled", "--preview"))
    var, _ = read_nifti(tmp_path / "k3_variance.nii.gz")
    std, _ = read_nifti(tmp_path / "k3_std.nii.gz")
    assert var.shape == std.shape == (2, 32, 32)
    np.testing.assert_allclose(std, np.sqrt(var), rtol=1e-5, atol=1e-7)
    assert (var >= 0).all() and var.max() > 0
    for name in ("k3_zero_filled.nii.gz", "k3_preview.png", "k3_mask.png", "k3_calibration.png"):
        assert (tmp_path / name).exists(), name
    m = metrics(out)
    assert m["samples"] == 3 and "calibration" in m


def test_samples_with_baseline_is_usage_error(files, tmp_path):
    one_line_error(run(files["multi"], "-o", tmp_path / "r.nii.gz", "--method", "sense", *MASK, "--samples", 2), "--samples")


# ------------------------------------------------------------------------------------------------------
# usage errors


def test_missing_input_exit_2(tmp_path):
    res = run(tmp_path / "absent.h5", "-o", tmp_path / "r.nii.gz", "--method", "zero-filled", *MASK)
    one_line_error(res, "not found")


def test_unknown_option_exit_2(files, tmp_path):
    res = run(files["multi"], "-o", tmp_path / "r.nii.gz", "--no-such-option")
    assert res.exit_code == 2
    assert "No such option" in res.output and "Traceback" not in res.output


def test_help_lists_commands_without_importing_torch():
    code = (
        "import sys\n"
        "from mrdiff_cli.cli.main import app\n"
        "try:\n    app(['--help'], prog_name='mrdiff')\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print('TORCH_LOADED', 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    for cmd in ("reconstruct", "superres", "uncertainty", "train"):
        assert cmd in res.stdout
    assert "TORCH_LOADED False" in res.stdout
    # the real entry point too (its wall time is measured in benchmarks/wallclock.py)
    r = subprocess.run([sys.executable, "-m", "mrdiff_cli.cli.main", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "reconstruct" in r.stdout


def test_ismrmrd_with_readout_oversampling_is_reconstructed_at_the_recon_matrix(shepp_logan_file, tmp_path):
    """The ISMRMRD reader removes the 2x readout oversampling itself; reconstruct must not remove it again."""
    src = shepp_logan_file("-n", "0")
    out = tmp_path / "sl.nii.gz"
    ok(run(src, "-o", out, "--method", "sense", *MASK, "-q"))
    vol = read_nifti(out)[0]
    from mrdiff_cli.io.detect import open_input

    with open_input(src) as r:
        assert r.info.readout_oversampling == 2
        assert vol.shape[1:] == r.shape[2:]
    m = metrics(out)
    assert m["metrics"]["mean"]["psnr"] > m["metrics_zero_filled"]["psnr"] - 3.0  # sane, not a half-FOV image


def test_consistency_is_self_tuned_by_default_and_fixed_by_cg_iters(files, model_dir, tmp_path):
    """Default: the CG count is chosen per file by the hold-out pilot (the same choice in every shard of the file,
    recorded with its evidence); --cg-iters N forces N."""
    common = ["--model", model_dir, *MASK, "--steps", 3, "-q", "--seed", 2]
    auto = []
    for i in range(2):
        out = tmp_path / f"auto{i}.nii.gz"
        ok(run(files["multi"], "-o", out, *common, "--shard", f"{i}/2"))
        c = metrics(out)["consistency"]
        assert c["chosen_by"] == "k-space hold-out cross-validation"
        ev = c["evidence"]
        assert str(c["cg_iters"]) in ev["holdout_error"] and len(ev["holdout_error"]) >= 2
        errs = {int(n): e for n, e in ev["holdout_error"].items()}
        within = [n for n, e in errs.items() if e <= min(errs.values()) * (1 + ev["tolerance"])]
        assert c["cg_iters"] == min(within)  # the fewest iterations the validation cannot tell from the best
        assert ev["pilot_slices"] == [1] and ev["holdout"]["hidden"] > 0
        auto.append((c["cg_iters"], c["coil_map_support"]))
    assert auto[0] == auto[1]  # the count and the maps' support: one choice per file, whatever the shard
    out = tmp_path / "fixed.nii.gz"
    ok(run(files["multi"], "-o", out, *common, "--cg-iters", 2, "--phase-resid", 0.02))
    c = metrics(out)["consistency"]
    assert (c["cg_iters"], c["chosen_by"], c["phase_resid"], c["phase_resid_chosen_by"]) == (
        2, "fixed (--cg-iters)", 0.02, "fixed (--phase-resid)") and "evidence" not in c
    assert c["phase_reference"].startswith("centre")
    from mrdiff_cli.cli.jobs import cg_label

    assert cg_label({"consistency": {"cg_iters": 5, "chosen_by": "k-space hold-out cross-validation"}}) == "5 auto"
    assert cg_label({"consistency": {"cg_iters": 5, "chosen_by": "fixed (--cg-iters)", "evidence": {}}}) == "5"
    assert cg_label({"consistency": {"cg_iters": 2, "chosen_by": "fixed (--cg-iters)"}}) == "2"
    assert cg_label({"method": "sense"}) == "-"


def test_phase_ref_l1_is_recorded_and_changes_the_image(files, model_dir, tmp_path):
    """--phase-ref l1: the L1-wavelet phase reference (recorded in the metrics JSON); another image than the default
    centre phase with the same seed and settings; an unknown value is a usage error (exit 2)."""
    common = ["--model", model_dir, *MASK, "--steps", 3, "-q", "--seed", 2, "--cg-iters", 2, "--phase-resid", 0.005]
    imgs = {}
    for ref in ("centre", "l1"):
        out = tmp_path / f"{ref}.nii.gz"
        ok(run(files["multi"], "-o", out, *common, "--phase-ref", ref))
        assert metrics(out)["consistency"]["phase_reference"].startswith("centre" if ref == "centre" else "l1-wavelet")
        imgs[ref] = read_nifti(out)[0]
    assert imgs["centre"].shape == imgs["l1"].shape and not np.array_equal(imgs["centre"], imgs["l1"])
    r = run(files["multi"], "-o", tmp_path / "bad.nii.gz", *common, "--phase-ref", "fine")
    assert r.exit_code == 2 and not (tmp_path / "bad.nii.gz").exists()


def test_count_pilot_bootstrap_is_recorded_and_bad_values_are_usage_errors(files, model_dir, tmp_path):
    """--count-pilot bootstrap: the count is scored by the parametric bootstrap, its evidence (error per count, the
    reference count) is in the metrics JSON and the chosen count is the least-error one it tried; an unknown value
    is a usage error (exit 2, no output)."""
    common = ["--model", model_dir, *MASK, "--steps", 3, "-q", "--seed", 2]
    out = tmp_path / "boot.nii.gz"
    ok(run(files["multi"], "-o", out, *common, "--count-pilot", "bootstrap"))
    c = metrics(out)["consistency"]
    assert c["chosen_by"] == "parametric bootstrap"
    boot = {int(n): e for n, e in c["evidence"]["bootstrap_error"].items()}
    chosen = min(boot, key=boot.get)
    up = c["evidence"].get("seven_up")  # a choice of 7 (the reference's count) moves to 10 (recorded)
    if up is not None:
        assert chosen == 7 and up == {"from": 7, "to": 10}
        chosen = 10
    top = c["evidence"].get("top_check")  # the second reference's check of the step to 15 (recorded where it ran)
    if top is not None:
        assert top["from"] == chosen and top["reference_cg"] == 15 and top["to"] in (chosen, 15)
        chosen = top["to"]
    assert len(boot) >= 2 and c["evidence"]["cg_iters"] == chosen
    # the run's count: the bootstrap's, unless the own-support count re-check moved it (recorded)
    recheck = (c.get("coil_map_support") or {}).get("count_recheck")
    assert c["cg_iters"] == (recheck["cg_iters"] if recheck else c["evidence"]["cg_iters"])
    from mrdiff_cli.samplers.selftune import BOOTSTRAP_REF_CG

    assert c["evidence"]["bootstrap_reference_cg"] == BOOTSTRAP_REF_CG and "phase_resid_holdout_error" in c["evidence"]
    r = run(files["multi"], "-o", tmp_path / "bad.nii.gz", *common, "--count-pilot", "sure")
    assert r.exit_code == 2 and not (tmp_path / "bad.nii.gz").exists()


def test_default_steps_one_sample_and_per_sample():
    """The fast sampler's default steps: 40 for one sample, 20 for each of K > 1 samples (the setting the per-scan
    uncertainty calibration was fitted with); --steps always wins; pc keeps its own defaults."""
    from mrdiff_cli.tasks.reconstruct import ReconOptions, default_steps, nfe

    assert default_steps(ReconOptions(), "sense") == 40 and nfe(ReconOptions(), "sense") == 41
    assert default_steps(ReconOptions(samples=4), "sense") == 20
    assert default_steps(ReconOptions(samples=4, steps=7), "sense") == 7
    assert default_steps(ReconOptions(steps=12), "single") == 12
    assert default_steps(ReconOptions(sampler="pc"), "sense") == 500
    assert default_steps(ReconOptions(sampler="pc"), "single") == 2000


def test_bootstrap_pilot_steps_follow_the_full_run():
    """The bootstrap count pilot runs half the full run's steps (20 with the default 40, 10 with --steps 20, never
    fewer than pilot_steps); bootstrap_steps forces a number."""
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    def steps(**kw) -> int:
        return Reconstructor(None, ReconOptions(**kw)).bootstrap_steps("sense")

    assert steps() == 20 and steps(steps=20) == 10 and steps(steps=8, pilot_steps=6) == 6
    assert steps(bootstrap_steps=7) == 7 and steps(samples=4) == 10


def _eight_coil_disc():
    """(k-space (1, 8, 64, 64) of a disc seen by 8 Gaussian coils plus 1e-3 noise, an equispaced x2 mask (64, 64))."""
    import torch

    from mrdiff_cli.ops.fft import fft2c

    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 8, 64, 64, dtype=torch.complex64, generator=g)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    obj = ((yy**2 + xx**2) < 0.6).to(torch.complex64)
    coils = torch.stack([torch.exp(-((yy - 0.8 * torch.cos(torch.tensor(c * 0.785))) ** 2
                                     + (xx - 0.8 * torch.sin(torch.tensor(c * 0.785))) ** 2)) for c in range(8)])
    m = torch.zeros(64, 64)
    m[:, 26:38] = 1
    m[:, ::2] = 1
    return fft2c(coils * obj)[None] + 1e-3 * noise, m


def test_pilot_maps_preset_is_what_the_pilots_use():
    """The self-tuning pilots of an adaptive-maps run estimate the release (espirit) maps; pilot_maps forces a preset
    (an explicit preset ignores the espirit_* options, which shape the run's own maps only); auto is adaptive for
    diffusion runs (one sample or K > 1) and espirit for the SENSE baseline; a bad value is a usage error."""
    import pytest
    import torch

    from mrdiff_cli.errors import UsageError
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    k, m = _eight_coil_disc()
    mm = m.numpy()

    def own(**o):
        return Reconstructor(None, ReconOptions(**o)).estimate_maps(k * m, m)

    def pilots(**o):
        return Reconstructor(None, ReconOptions(**o))._measured(k, mm, "sense", None, compressed=True)[1]

    release, adaptive = own(coil_maps="espirit"), own(coil_maps="adaptive")
    assert not torch.equal(release, adaptive)
    assert torch.equal(own(), adaptive) and torch.equal(own(samples=4), adaptive)  # auto
    assert torch.equal(own(method="sense"), release)
    assert torch.equal(pilots(), release) and torch.equal(pilots(coil_maps="adaptive"), release)
    assert torch.equal(pilots(coil_maps="adaptive", pilot_maps="adaptive"), adaptive)
    assert torch.equal(pilots(coil_maps="espirit"), release)
    # own_maps: the run's maps, not the pilots' preset (ReconOptions.spread_maps "own")
    spread = Reconstructor(None, ReconOptions(coil_maps="adaptive"))._measured(k, mm, "sense", None, compressed=True,
                                                                            own_maps=True)[1]
    assert torch.equal(spread, adaptive)
    tweaked = {"coil_maps": "espirit", "espirit_sigma": 0.005}
    assert not torch.equal(own(**tweaked), release)
    assert torch.equal(pilots(**tweaked), own(**tweaked))  # pilots on the run's own maps
    assert torch.equal(pilots(**tweaked, pilot_maps="espirit"), release)  # the preset
    with pytest.raises(UsageError):
        ReconOptions(pilot_maps="bart")


def test_coil_maps_adaptive_is_recorded_and_changes_the_maps(files, model_dir, tmp_path):
    """--coil-maps adaptive: recorded in the metrics JSON's consistency block, the maps are ESPIRiT's with the
    subspace cut at the scan's noise level and the release support (ADAPTIVE_MAPS); the default (auto) is adaptive,
    with one sample and with --samples K > 1; a bad value is a usage error."""
    import torch

    from mrdiff_cli.ops.coils import estimate_maps
    from mrdiff_cli.tasks.calibration import estimate_kspace_noise
    from mrdiff_cli.tasks.reconstruct import ADAPTIVE_MAPS, ReconOptions, Reconstructor

    common = ["--model", model_dir, *MASK, "--steps", 3, "-q", "--seed", 2, "--cg-iters", 2]
    ok(run(files["multi"], "-o", tmp_path / "a.nii.gz", *common, "--coil-maps", "adaptive"))
    ok(run(files["multi"], "-o", tmp_path / "e.nii.gz", *common, "--coil-maps", "espirit"))
    ok(run(files["multi"], "-o", tmp_path / "d.nii.gz", *common))
    ok(run(files["multi"], "-o", tmp_path / "k2.nii.gz", *common, "--samples", 2))
    assert metrics(tmp_path / "k2.nii.gz")["consistency"]["coil_maps"] == "adaptive"
    assert metrics(tmp_path / "a.nii.gz")["consistency"]["coil_maps"] == "adaptive"
    assert metrics(tmp_path / "e.nii.gz")["consistency"]["coil_maps"] == "espirit"
    assert metrics(tmp_path / "d.nii.gz")["consistency"]["coil_maps"] == "adaptive"
    r = run(files["multi"], "-o", tmp_path / "bad.nii.gz", *common, "--coil-maps", "bart")
    assert r.exit_code == 2 and not (tmp_path / "bad.nii.gz").exists()
    k, m = _eight_coil_disc()
    ours = Reconstructor(None, ReconOptions(coil_maps="adaptive")).estimate_maps(k * m, m)
    want = estimate_maps(k * m, m, sigma_thresh=ADAPTIVE_MAPS["espirit_sigma"], eig_thresh=ADAPTIVE_MAPS["espirit_eig"],
                         noise_std=estimate_kspace_noise(k * m, m), noise_factor=ADAPTIVE_MAPS["espirit_noise"],
                         support_sigma=ADAPTIVE_MAPS["espirit_support_sigma"])
    assert torch.equal(ours, want)
    assert not torch.equal(ours, Reconstructor(None, ReconOptions(coil_maps="espirit")).estimate_maps(k * m, m))
    # the release support: where the espirit maps are zero, so are the adaptive ones
    release = Reconstructor(None, ReconOptions(coil_maps="espirit")).estimate_maps(k * m, m)
    assert torch.equal(ours.abs().sum(1) > 0, release.abs().sum(1) > 0)


def test_maps_support_is_recorded_and_forced_by_the_flag(files, model_dir, tmp_path):
    """--maps-support: auto (default) records the per-scan choice and its evidence in the metrics JSON; release /
    own force it (no pilot); K > 1 samples choose it the same way, --coil-maps espirit has no support to choose; a
    bad value is a usage error."""
    common = ["--model", model_dir, *MASK, "--steps", 3, "-q", "--seed", 2, "--cg-iters", 2]
    ok(run(files["multi"], "-o", tmp_path / "auto.nii.gz", *common))
    ok(run(files["multi"], "-o", tmp_path / "own.nii.gz", *common, "--maps-support", "own"))
    ok(run(files["multi"], "-o", tmp_path / "k2.nii.gz", *common, "--samples", 2))
    ok(run(files["multi"], "-o", tmp_path / "esp.nii.gz", *common, "--samples", 2, "--coil-maps", "espirit"))
    auto = metrics(tmp_path / "auto.nii.gz")["consistency"]["coil_map_support"]
    assert auto["support"] in ("release", "own") and set(auto["support_fraction"]) == {"release", "own"}
    assert auto["chosen_by"] == "k-space hold-out cross-validation" or "agree" in auto["chosen_by"]
    assert metrics(tmp_path / "own.nii.gz")["consistency"]["coil_map_support"] == {
        "support": "own", "chosen_by": "fixed (--maps-support)"}
    assert metrics(tmp_path / "k2.nii.gz")["consistency"]["coil_map_support"]["support"] in ("release", "own")
    assert "coil_map_support" not in metrics(tmp_path / "esp.nii.gz")["consistency"]
    r = run(files["multi"], "-o", tmp_path / "bad.nii.gz", *common, "--maps-support", "wider")
    assert r.exit_code == 2 and not (tmp_path / "bad.nii.gz").exists()


def test_summary_prints_the_coil_maps_line(files, model_dir, tmp_path):
    """Without --quiet the summary names the maps and their support below the table."""
    res = run(files["multi"], "-o", tmp_path / "s.nii.gz", "--model", model_dir, *MASK, "--steps", 3, "--seed", 2,
              "--cg-iters", 2)
    ok(res)
    assert "coil maps adaptive, " in res.output and " support" in res.output
