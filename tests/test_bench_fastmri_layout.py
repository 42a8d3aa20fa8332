"""benchmarks/fastmri_test_layout.py: the file it writes is fastMRI's multicoil test layout, as the CLI reads it
(tiny: 1 slice, 2 coils, 32 x 16 k-space = 16 x 16 recon with 2x readout oversampling)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.nifti import read_nifti

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(cli_env):
    """Offline, no SLURM / progress / thread settings from the caller (conftest.cli_env)."""


def _load():
    path = ROOT / "benchmarks" / "fastmri_test_layout.py"
    spec = importlib.util.spec_from_file_location("bench_fastmri_test_layout", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from mrdiff_cli.tasks.simulate import analytic_phantom

    bench = _load()
    sim = bench.simulate_test_layout(analytic_phantom(16)[None], coils=2, snr_db=None, accel=2, acs=4)
    path = tmp_path_factory.mktemp("bench_fastmri") / "tiny_test_layout.h5"
    bench.write_test_layout(path, sim["kspace"], sim["mask"], accel=2, acs=4, recon=(16, 16), scale=1e-4)
    return path, sim


def test_written_file_is_the_fastmri_test_layout(tiny):
    path, sim = tiny
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["ismrmrd_header", "kspace", "mask"]  # no reference
        assert f["kspace"].shape == (1, 2, 32, 16) and f["kspace"].dtype == np.complex64
        assert f["mask"].shape == (16,) and f["mask"].dtype == bool
        assert f.attrs["acceleration"] == 2 and f.attrs["num_low_frequency"] == 4
        k, m = f["kspace"][()], f["mask"][()]
    assert np.all(k[..., ~m] == 0) and np.all(np.abs(k[..., m]).sum(axis=(0, 1, 2)) > 0)  # already undersampled
    assert m[6:10].all() and sim["achieved_accel"] == 2.0  # the 4 centre columns; R 2


def test_info_reports_the_test_layout(tiny):
    res = runner.invoke(app, ["info", str(tiny[0]), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["stored_shape"] == [1, 2, 32, 16] and d["readout_oversampling"] == 2
    assert d["image_matrix"] == [16, 16] and d["header"]["recon_matrix"][:2] == [16, 16]
    assert d["header"]["encoded_matrix"][:2] == [32, 16] and d["header"]["parsed_by"] == "schema"
    s = d["sampling"]
    assert s["mask_source"] == "mask dataset" and s["stated_acceleration"] == 2 and s["stated_acs"] == 4
    assert d["reference"] is None


def test_zero_filled_gives_the_recon_matrix(tiny, tmp_path):
    path, sim = tiny
    out = tmp_path / "zf.nii.gz"
    res = runner.invoke(app, ["reconstruct", str(path), "-o", str(out), "--method", "zero-filled", "--json", "-q"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)["results"][0]
    assert r["mask"]["kind"] == "from-file" and r["matrix"]["readout_oversampling_removed"] == 2
    vol = read_nifti(out)[0]
    assert vol.shape == (1, 16, 16)
    # the oversampling removal recovers the simulated image grid: zero-filled is close to, not equal to, the truth
    err = np.linalg.norm(vol / 1e-4 - sim["truth"]) / np.linalg.norm(sim["truth"])
    assert 0.01 < err < 0.6, err
