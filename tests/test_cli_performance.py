"""`mrdiff reconstruct --coils / --threads / --batch-size auto` through the real Typer app (CG-SENSE: no model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(cli_env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: assertions see whole cells (offline etc.: conftest.cli_env)


@pytest.fixture(scope="module")
def many_coil_file(tmp_path_factory):
    """Fully sampled 14-coil fastMRI-style file (2 slices, 32x32, 40 dB)."""
    from mrdiff_cli.tasks.simulate import analytic_phantom, simulate_volume, write_simulated

    p = analytic_phantom(32)
    sim = simulate_volume(np.stack([p, 0.7 * p]), matrix=None, coils=14, snr_db=40.0, seed=3)
    return write_simulated(sim, tmp_path_factory.mktemp("cc") / "coils14.h5", "fastmri")


def _run(path, out, *extra):
    args = ["reconstruct", str(path), "-o", str(out), "--method", "sense", "--mask", "poisson", "--accel", "3",
            "--json", "--quiet", *extra]
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("extra", [[], ["--coils", "0"], ["--coils", "6"], ["--batch-size", "auto", "--threads", "1"],
                                   ["--batch-size", "1"]])
def test_coil_compression_and_batch_options_reconstruct(many_coil_file, tmp_path, extra):
    import torch

    n0 = torch.get_num_threads()
    res = _run(many_coil_file, tmp_path / "out.nii.gz", *extra)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)["results"][0]
    assert (tmp_path / "out.nii.gz").exists()
    # CG-SENSE at R = 3 with 14 coils, compressed or not, is far better than zero-filling
    assert summary["metrics"]["mean"]["psnr"] > summary["metrics_zero_filled"]["psnr"] + 3
    assert torch.get_num_threads() <= max(n0, 1)  # the CLI never raises the caller's thread count unasked


def test_compression_costs_little_psnr(many_coil_file, tmp_path):
    off = json.loads(_run(many_coil_file, tmp_path / "a.nii.gz", "--coils", "0").stdout)["results"][0]
    auto = json.loads(_run(many_coil_file, tmp_path / "b.nii.gz").stdout)["results"][0]
    assert abs(auto["metrics"]["mean"]["psnr"] - off["metrics"]["mean"]["psnr"]) < 1.0


@pytest.mark.parametrize("extra", [["--coils", "1"], ["--coils", "-2"], ["--batch-size", "many"], ["--threads", "0"],
                                   ["--batch-size", "0"], ["--cg-iters", "0"], ["--phase-resid", "-0.1"]])
def test_bad_performance_options_exit_2(many_coil_file, tmp_path, extra):
    res = _run(many_coil_file, tmp_path / "out.nii.gz", *extra)
    assert res.exit_code == 2, res.output
