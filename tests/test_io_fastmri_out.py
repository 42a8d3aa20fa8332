"""fastMRI submission layout output (`-o out.h5` / `--format h5`): one `reconstruction` dataset (slices, H, W)
float32 in the input's slice order, the attributes fastMRI-style tools read, atomic writing; the same values as the
NIfTI output of the same run."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.fastmri_out import read_reconstruction_h5, write_reconstruction_h5
from mrdiff_cli.io.nifti import read_nifti
from mrdiff_cli.io.writers import derived_path, infer_format

runner = CliRunner()
SENSE = ["--method", "sense", "--mask", "equispaced", "--accel", "2", "-q"]


@pytest.fixture(autouse=True)
def _offline(cli_env):
    """Offline, no SLURM / progress / thread settings from the caller (conftest.cli_env)."""


def ok(res):
    assert res.exit_code == 0, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return res


def recon(*args):
    return runner.invoke(app, ["reconstruct", *[str(a) for a in args]])


def test_h5_matches_the_nifti_output_of_the_same_run(tiny_fastmri_file, tmp_path):
    ok(recon(tiny_fastmri_file, "-o", tmp_path / "n.nii.gz", *SENSE))
    ok(recon(tiny_fastmri_file, "-o", tmp_path / "h.h5", *SENSE))
    nii, _ = read_nifti(tmp_path / "n.nii.gz")
    with h5py.File(tmp_path / "h.h5", "r") as f:
        assert list(f.keys()) == ["reconstruction"]  # exactly what fastMRI's evaluation reads
        ds = f["reconstruction"]
        assert ds.dtype == np.float32 and ds.shape == (2, 32, 32)
        data = ds[()]
        attrs = dict(f.attrs)
    np.testing.assert_array_equal(data, nii)
    assert attrs["max"] == pytest.approx(float(nii.max())) and attrs["norm"] == pytest.approx(
        float(np.linalg.norm(nii.astype(np.float64))), rel=1e-6)
    assert attrs["acquisition"] == "SIMULATED"  # copied from the input file's attributes
    _, a = read_reconstruction_h5(tmp_path / "h.h5")
    assert a["mrdiff_input"] == tiny_fastmri_file.name and list(a["mrdiff_slices"]) == [0, 1]
    assert a["mrdiff_volume"] == "image" and a["mrdiff_version"]
    assert a["mrdiff_options"]["method"] == "sense" and a["mrdiff_options"]["mask"]["kind"] == "equispaced"
    assert (tmp_path / "h_metrics.json").exists() and not (tmp_path / "h.json").exists()  # no BIDS sidecar for .h5


def test_format_h5_and_slice_order(tiny_fastmri_file, tmp_path):
    ok(recon(tiny_fastmri_file, "-o", tmp_path / "all.h5", *SENSE))
    ok(recon(tiny_fastmri_file, "-o", tmp_path / "one.h5", "--format", "h5", "--slices", "1", *SENSE))
    full, _ = read_reconstruction_h5(tmp_path / "all.h5")
    one, a = read_reconstruction_h5(tmp_path / "one.h5")
    assert one.shape == (1, 32, 32) and list(a["mrdiff_slices"]) == [1]
    np.testing.assert_allclose(one[0], full[1], rtol=1e-5, atol=1e-6 * float(full.max()))
    assert full[0].max() > 1.5 * full[1].max()  # the fixture's slice 1 is slice 0 x 0.5: order kept


def test_several_inputs_keep_their_file_names(tiny_fastmri_file, tiny_ismrmrd_file, tmp_path):
    """fastMRI's evaluation pairs each reconstruction with the target file of the same name."""
    out = tmp_path / "sub"
    ok(recon(tiny_fastmri_file, tiny_ismrmrd_file, "-o", str(out) + "/", "--format", "h5", "--no-metrics", *SENSE))
    assert sorted(p.name for p in out.iterdir()) == sorted([tiny_fastmri_file.name, tiny_ismrmrd_file.name])
    a, _ = read_reconstruction_h5(out / tiny_fastmri_file.name)
    b, _ = read_reconstruction_h5(out / tiny_ismrmrd_file.name)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.max()))  # same simulated k-space


def test_uncertainty_writes_mean_and_spread_as_h5(tiny_fastmri_file, model_dir, tmp_path):
    out = tmp_path / "u.h5"
    ok(runner.invoke(app, ["uncertainty", str(tiny_fastmri_file), "-o", str(out), "--model", str(model_dir),
                           "--mask", "equispaced", "--accel", "4", "--steps", "2", "-K", "2", "-q"]))
    mean, a = read_reconstruction_h5(out)
    var, av = read_reconstruction_h5(tmp_path / "u_variance.h5")
    std, _ = read_reconstruction_h5(tmp_path / "u_std.h5")
    assert mean.shape == var.shape == (2, 32, 32) and a["mrdiff_volume"] == "image"
    assert av["mrdiff_volume"] == "variance" and a["mrdiff_options"]["samples"] == 2
    np.testing.assert_allclose(std, np.sqrt(var), rtol=1e-5, atol=1e-7)


def test_writer_is_atomic_and_honours_overwrite(tmp_path):
    p = tmp_path / "r.h5"
    write_reconstruction_h5(p, np.ones((2, 3, 4)), {"mrdiff_volume": "image", "mrdiff_slices": [0, 1],
                                                    "mrdiff_options": {"a": None}, "skip": None})
    data, a = read_reconstruction_h5(p)
    assert data.shape == (2, 3, 4) and data.dtype == np.float32 and "skip" not in a
    assert a["mrdiff_options"] == {"a": None} and a["max"] == 1.0 and a["norm"] == pytest.approx(np.sqrt(24))
    from mrdiff_cli.errors import OutputError

    with pytest.raises(OutputError, match="output exists"):
        write_reconstruction_h5(p, np.zeros((1, 2, 2)))
    with pytest.raises(ValueError):
        write_reconstruction_h5(tmp_path / "c.h5", np.ones((1, 2, 2), dtype=np.complex64))
    assert sorted(q.name for q in tmp_path.iterdir()) == ["r.h5"]  # no temporary or partial file left
    write_reconstruction_h5(p, np.zeros((1, 2, 2)), overwrite=True)
    assert read_reconstruction_h5(p)[0].shape == (1, 2, 2)


def test_output_names():
    assert infer_format("x/recon.h5") == "h5"
    assert derived_path("x/recon.h5", "_variance").name == "recon_variance.h5"
