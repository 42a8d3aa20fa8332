"""BART .cfl/.hdr k-space input: header parsing, Fortran order, detection by base name / .cfl / .hdr, sampling
detection, and `mrdiff reconstruct` / `mrdiff info` on a BART pair against the same k-space as a fastMRI file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.errors import InputError
from mrdiff_cli.io.bart import BartReader, bart_pair, parse_header, write_bart
from mrdiff_cli.io.detect import detect_format, open_input
from mrdiff_cli.io.fastmri import open_scan as open_fastmri
from mrdiff_cli.io.nifti import read_nifti

runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(cli_env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def _hand_written(tmp_path: Path, name: str = "hand", header: str | None = None) -> Path:
    """A pair written without numpy's order='F': dims (H=4, W=3, 1, C=2, 1 x 9, S=2, 1, 1); the value of sample
    (read r, phase p, coil c, slice s) is its column-major linear index r + 4 p + 12 c + 24 s (imaginary: minus it)."""
    dims = [4, 3, 1, 2] + [1] * 9 + [2, 1, 1]
    n = int(np.prod(dims))
    vals = np.arange(n, dtype=np.float32)
    inter = np.empty(2 * n, dtype="<f4")
    inter[0::2], inter[1::2] = vals, -vals
    (tmp_path / f"{name}.cfl").write_bytes(inter.tobytes())
    text = header if header is not None else (
        "# Dimensions\n" + " ".join(map(str, dims)) + " \n# Command\nbart fake\n# Files\n >hand\n# Creator\nBART 0.9\n")
    (tmp_path / f"{name}.hdr").write_text(text)
    return tmp_path / name


def test_reader_column_major_layout(tmp_path):
    base = _hand_written(tmp_path)
    with BartReader(base) as r:
        assert r.info.format == "bart" and r.shape == (2, 2, 4, 3)
        k = r.read_slices()
        assert k.dtype == np.complex64 and k.flags.c_contiguous
        s, c, h, w = np.meshgrid(*[np.arange(n) for n in k.shape], indexing="ij")
        expect = (h + 4 * w + 12 * c + 24 * s).astype(np.float32)
        np.testing.assert_array_equal(k.real, expect)
        np.testing.assert_array_equal(k.imag, -expect)
        np.testing.assert_array_equal(r.read_slices(1, 2), k[1:2])  # a slice range reads the same samples
        assert r.mask is None  # sampling is judged on the middle slice (1), which has no zero sample
        assert r.info.geometry.voxel_size == (1.0, 1.0, 1.0) and not r.info.geometry.known
        assert any("no geometry" in n for n in r.info.notes)


def test_header_parsing_rules():
    assert parse_header("# Dimensions\n64 32\n") == (64, 32) + (1,) * 14  # missing dims are 1
    assert parse_header("#   Dimensions  \n8 4 1 2 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n")[:4] == (8, 4, 1, 2)  # extra 1s ok
    assert parse_header("junk line\n# Command\nbart x\n# Dimensions\n5\n6 7\n# Creator\nBART\n")[:3] == (5, 6, 7)
    for bad, needle in (("# Command\nx\n", "no '# Dimensions'"), ("# Dimensions\n4 x 2\n", "not an integer"),
                        ("# Dimensions\n4\n# Dimensions\n4\n", "more than one"),
                        ("# Dimensions\n" + "1 " * 16 + "2\n", "extra ones must be 1"),
                        ("# Dimensions\n\n# Creator\n", "no dimensions")):
        with pytest.raises(InputError, match=needle):
            parse_header(bad)


def test_detection_by_any_name(tmp_path):
    base = _hand_written(tmp_path)
    for name in (base, base.with_name("hand.cfl"), base.with_name("hand.hdr")):
        assert detect_format(name) == "bart"
        with open_input(name) as r:
            assert r.shape == (2, 2, 4, 3)
    assert bart_pair(tmp_path / "hand.cfl") == (tmp_path / "hand.hdr", tmp_path / "hand.cfl")
    (tmp_path / "analyze.hdr").write_bytes(b"\x5c\x01\x00\x00" + bytes(344))  # an Analyze header is not BART
    with pytest.raises(InputError, match="not a BART file pair"):
        detect_format(tmp_path / "analyze.hdr")


@pytest.mark.parametrize("dims,needle", [
    ([4, 3, 2, 2], "dimension 2 (PHS2) has size 2"),  # 3D k-space: refused with the hint
    ([4, 3, 1, 2, 2], "dimension 4 (MAPS)"),
    ([4, 0, 1, 2], "zero-size dimension"),
])
def test_unsupported_layouts(tmp_path, dims, needle):
    write_bart(tmp_path / "x", np.ones(dims, dtype=np.complex64))
    with pytest.raises(InputError) as exc:
        BartReader(tmp_path / "x")
    assert needle in str(exc.value)
    if dims[2] > 1:
        assert "bart transpose 2 13" in str(exc.value)


def test_size_mismatch_and_missing_pair(tmp_path):
    base = _hand_written(tmp_path)
    data = (tmp_path / "hand.cfl").read_bytes()
    (tmp_path / "hand.cfl").write_bytes(data[:-8])
    with pytest.raises(InputError, match="holds 376 bytes"):
        BartReader(base)
    (tmp_path / "hand.cfl").unlink()
    with pytest.raises(InputError, match="incomplete"):
        BartReader(base)


def test_sampling_from_the_nearest_non_empty_slice(tmp_path):
    k = np.zeros((8, 6, 1, 2) + (1,) * 9 + (3,), dtype=np.complex64)
    k[:, ::2, 0, :, ..., 0] = 1  # slice 0: every other line; slices 1 (the middle) and 2: empty
    write_bart(tmp_path / "e", k)
    with BartReader(tmp_path / "e") as r:
        assert r.undersampled and r.mask[:, 1].sum() == 0 and r.mask[:, 0].all()
    write_bart(tmp_path / "z", np.zeros((4, 4, 1, 1), dtype=np.complex64))
    with pytest.raises(InputError, match="all zeros"):
        BartReader(tmp_path / "z")


def test_nan_is_refused(tmp_path):
    k = np.ones((4, 3, 1, 1), dtype=np.complex64)
    k[1, 1] = np.nan
    write_bart(tmp_path / "nan", k)
    with BartReader(tmp_path / "nan") as r, pytest.raises(InputError, match="NaN or Inf"):
        r.read_slices()


# ---------------------------------------------------------------------------------------------------- end to end


def _as_bart(fastmri_file: Path, base: Path) -> Path:
    """The k-space a fastMRI reader returns, (S, C, H, W), written as BART (H, W, 1, C, 1 ..., S)."""
    with open_fastmri(fastmri_file) as r:
        k = r.read_slices()
    arr = np.zeros(k.shape[2:] + (1, k.shape[1]) + (1,) * 9 + (k.shape[0],), dtype=np.complex64)
    arr[:, :, 0, :, 0, 0, 0, 0, 0, 0, 0, 0, 0, :] = np.transpose(k, (2, 3, 1, 0))
    write_bart(base, arr)
    return base


def _recon(src, out, *extra):
    res = runner.invoke(app, ["reconstruct", str(src), "-o", str(out), "-q", *map(str, extra)])
    assert res.exit_code == 0, f"exit {res.exit_code}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    return read_nifti(out)[0]


@pytest.mark.parametrize("method", ["sense", "zero-filled"])
def test_reconstruct_matches_fastmri_input(tmp_path, tiny_fastmri_file, method):
    base = _as_bart(tiny_fastmri_file, tmp_path / "scan")
    args = ("--method", method, "--mask", "equispaced", "--accel", "2", "--seed", "3")
    ref = _recon(tiny_fastmri_file, tmp_path / "from_h5.nii.gz", *args)
    got = _recon(tmp_path / "scan.cfl", tmp_path / "from_cfl.nii.gz", *args)
    assert got.shape == ref.shape == (2, 32, 32)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * float(ref.max()))
    summary = json.loads((tmp_path / "from_cfl_metrics.json").read_text())["metrics"]["mean"]
    assert summary["psnr"] > 20  # fully sampled BART file: the reference is its own RSS
    # the base name works too
    np.testing.assert_allclose(_recon(base, tmp_path / "base.nii.gz", *args), ref, rtol=1e-5,
                               atol=1e-6 * float(ref.max()))


def test_already_undersampled_bart_uses_its_own_zeros(tmp_path, tiny_fastmri_undersampled_file):
    base = _as_bart(tiny_fastmri_undersampled_file, tmp_path / "us")
    with open_input(base) as r, open_fastmri(tiny_fastmri_undersampled_file) as f:
        assert r.undersampled and r.info.sampling.source == "zero lines in k-space"
        np.testing.assert_array_equal(r.mask, f.mask)
    ref = _recon(tiny_fastmri_undersampled_file, tmp_path / "h5.nii.gz", "--method", "sense")
    got = _recon(tmp_path / "us.hdr", tmp_path / "cfl.nii.gz", "--method", "sense")
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * float(ref.max()))


def test_info_shows_bart_and_the_geometry_note(tmp_path, tiny_fastmri_undersampled_file):
    base = _as_bart(tiny_fastmri_undersampled_file, tmp_path / "us")
    res = runner.invoke(app, ["info", str(base) + ".cfl", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["format"] == "bart" and d["shape"] == [2, 4, 32, 32] and d["sampling"]["undersampled"]
    assert any("no geometry" in n for n in d["notes"])
    res = runner.invoke(app, ["info", str(base)])
    assert res.exit_code == 0 and "bart" in res.stdout and "no geometry" in res.stdout
    res = runner.invoke(app, ["info", str(base) + ".hdr", "--input-format", "cfl", "--json"])  # alias of bart
    assert res.exit_code == 0 and json.loads(res.stdout)["format"] == "bart"
    got = _recon(base, tmp_path / "forced.nii.gz", "--input-format", "bart", "--method", "zero-filled")
    assert got.shape == (2, 32, 32)


def test_bad_bart_is_one_line_exit_2(tmp_path):
    write_bart(tmp_path / "vol3d", np.ones((4, 4, 2, 1), dtype=np.complex64))
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "vol3d.cfl"), "-o", str(tmp_path / "o.nii.gz"),
                              "--method", "zero-filled"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "PHS2" in lines[0]
    assert not list(tmp_path.glob("o*"))
