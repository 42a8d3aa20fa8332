"""Bad input → one-line error naming the file, exit code 2, no traceback, no partial output."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.errors import InputError, OutputError, UsageError
from mrdiff_cli.io.detect import detect_format, load_input, open_input
from mrdiff_cli.io.fastmri import load_scan, open_scan
from mrdiff_cli.io.ismrmrd_io import open_scan as open_mrd

runner = CliRunner()


def _err_text(result) -> str:
    try:
        err = result.stderr
    except (ValueError, AttributeError):  # older click: stderr mixed into output
        err = ""
    return err or result.output


def assert_cli_error(args, *needles):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    text = _err_text(result).strip()
    assert "Traceback" not in result.output and "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("mrdiff: error:"), text
    for n in needles:
        assert n in lines[0], text
    return lines[0]


def _h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
    return path


def _k(shape=(2, 3, 8, 8)):
    rng = np.random.default_rng(0)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.h5"
    for fn in (open_input, load_input, load_scan, detect_format, open_mrd):
        with pytest.raises(InputError, match="not found"):
            fn(p)
    assert_cli_error(["info", p], "nope.h5", "not found")


def test_not_hdf5_unknown_format(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("this is not HDF5 at all\n" * 20)
    with pytest.raises(InputError, match="unknown file format"):
        open_input(p)
    with pytest.raises(InputError, match="not an HDF5 file"):
        open_scan(p)
    with pytest.raises(InputError, match="not an HDF5 file"):
        open_input(p, "ismrmrd")
    assert_cli_error(["info", p], "notes.h5", "unknown file format")
    assert_cli_error(["info", p, "--input-format", "fastmri"], "notes.h5", "not an HDF5 file")
    e = tmp_path / "empty.nii"
    e.write_bytes(b"")
    assert_cli_error(["info", e], "empty.nii", "empty")


def test_unknown_input_format_option(tmp_path):
    p = _h5(tmp_path / "k.h5", kspace=_k())
    with pytest.raises(UsageError):
        open_input(p, "analyze")
    assert_cli_error(["info", p, "--input-format", "analyze"], "analyze")


def test_hdf5_without_kspace(tmp_path):
    p = _h5(tmp_path / "other.h5", images=np.zeros((2, 4, 4), np.float32))
    with pytest.raises(InputError, match="no k-space"):
        open_input(p)
    with pytest.raises(InputError, match="no 'kspace' dataset"):
        open_scan(p)
    with pytest.raises(InputError, match="no ISMRMRD acquisitions"):
        open_mrd(p)
    assert_cli_error(["info", p], "other.h5", "no k-space")
    assert_cli_error(["info", p, "--input-format", "fastmri"], "other.h5", "kspace")


@pytest.mark.parametrize("attrs", [{"acceleration": "fast"}, {"num_low_frequency": "x"},
                                   {"acceleration": np.array([4.0, 8.0])}])
def test_fastmri_attributes_that_are_not_numbers(tmp_path, attrs):
    p = _h5(tmp_path / "attrs.h5", kspace=_k())
    with h5py.File(p, "a") as f:
        f.attrs.update(attrs)
    with pytest.raises(InputError, match="attrs.h5"):
        with open_scan(p) as r:
            r.info  # noqa: B018
    assert_cli_error(["info", p], "attrs.h5", "attribute")


def test_real_valued_kspace(tmp_path):
    p = _h5(tmp_path / "real.h5", kspace=np.ones((2, 3, 8, 8), np.float32))
    with pytest.raises(InputError, match="real-valued"):
        open_scan(p)
    assert_cli_error(["info", p], "real.h5", "real-valued")


def test_wrong_rank(tmp_path):
    p = _h5(tmp_path / "rank.h5", kspace=_k((8, 8)))
    with pytest.raises(InputError, match="rank 2"):
        open_input(p)
    q = _h5(tmp_path / "rank5.h5", kspace=_k((1, 2, 3, 4, 4)))
    with pytest.raises(InputError, match="rank 5"):
        open_input(q)
    assert_cli_error(["info", p], "rank.h5", "rank 2")


def test_nan_inf_in_kspace(tmp_path):
    k = _k()
    k[1, 0, 3, 3] = np.nan
    p = _h5(tmp_path / "nan.h5", kspace=k)
    with open_input(p) as r:  # opening is cheap and fine (slice 1 not read yet)
        r.read_slices(0, 1)
        with pytest.raises(InputError, match=r"NaN or Inf.*slice 1"):
            r.read_slices(0, 2)
    k2 = _k()
    k2[0, 1, 0, 0] = np.inf
    q = _h5(tmp_path / "inf.h5", kspace=k2)
    with pytest.raises(InputError, match="NaN or Inf"):
        load_scan(q)
    # `mrdiff info` reports them (count and slices) instead of refusing the file (reconstruct refuses it:
    # tests/test_cli_polish.py)
    res = runner.invoke(app, ["info", str(p), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["values_finite"] is False and d["non_finite_values"] == 1 and d["non_finite_slices"] == [1]


def test_mask_shape_mismatch(tmp_path):
    p = _h5(tmp_path / "mask.h5", kspace=_k(), mask=np.ones(9, np.float32))
    with pytest.raises(InputError, match="mask length 9 does not match"):
        open_scan(p)
    q = _h5(tmp_path / "mask2d.h5", kspace=_k(), mask=np.ones((8, 7), np.float32))
    with pytest.raises(InputError, match="mask shape"):
        open_scan(q)
    assert_cli_error(["info", p], "mask.h5", "mask length")


def test_zero_size_dims(tmp_path):
    p = _h5(tmp_path / "zero.h5", kspace=np.zeros((2, 0, 8, 8), np.complex64))
    with pytest.raises(InputError, match="zero-size"):
        open_input(p)
    assert_cli_error(["info", p], "zero.h5", "zero-size")


def test_ismrmrd_group_without_acquisitions(tmp_path):
    p = tmp_path / "mrd.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("dataset")
        g.create_dataset("xml", data=np.array([b"<ismrmrdHeader/>"], dtype=object), dtype=h5py.special_dtype(vlen=bytes))
    with pytest.raises(InputError, match="no ISMRMRD acquisitions"):
        open_input(p)
    assert_cli_error(["info", p], "mrd.h5", "no ISMRMRD acquisitions")


def test_image_given_where_raw_expected(tiny_nifti_file):
    with pytest.raises(InputError, match="not raw k-space"):
        open_input(tiny_nifti_file)


def test_unwritable_output_path(tmp_path, tiny_nifti_file):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = blocker / "sim.h5"
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--matrix", "16", "--coils", "2"], "sim.h5")
    missing = tmp_path / "no_such_dir" / "deeper" / "sim.h5"  # missing folders are created, but not on failure
    assert_cli_error(["simulate", tiny_nifti_file, "-o", missing, "--matrix", "16", "--coils", "0"], "--coils")
    assert not (tmp_path / "no_such_dir").exists()
    assert runner.invoke(app, ["simulate", str(tiny_nifti_file), "-o", str(missing), "--matrix", "16",
                               "--coils", "2"]).exit_code == 0
    assert missing.is_file()
    from mrdiff_cli.io.fastmri import write_fastmri

    with pytest.raises(OutputError, match="afile"):
        write_fastmri(out, _k())


def test_output_exists_without_overwrite(tmp_path, tiny_nifti_file):
    out = tmp_path / "sim.h5"
    out.write_bytes(b"keep me")
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--matrix", "16"], "sim.h5", "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]  # no temp files left


def test_simulate_bad_options(tmp_path, tiny_nifti_file):
    out = tmp_path / "s.h5"
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--mask", "spiral"], "spiral")
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--accel", "4"], "--mask")
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--slices", "9:12"], "--slices")
    assert_cli_error(["simulate", tmp_path / "missing.nii", "-o", out], "missing.nii", "not found")
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--format", "ismrmrd", "--mask", "poisson"], "1D mask")
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--format", "nrrd"], "nrrd")
    assert_cli_error(["simulate", tiny_nifti_file, "-o", out, "--coils", "0"], "--coils")
    assert not out.exists()
