"""NIfTI writer/reader round trip, atomic output, writers dispatch, PNG preview and JSON output."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from mrdiff_cli.errors import OutputError, UsageError
from mrdiff_cli.io.atomic import atomic_path
from mrdiff_cli.io.detect import detect_format, load_image
from mrdiff_cli.io.metrics_json import write_json
from mrdiff_cli.io.nifti import read_nifti, write_nifti
from mrdiff_cli.io.png import write_preview
from mrdiff_cli.io.writers import derived_path, infer_format, write_volume
from mrdiff_cli.types import Geometry, centered_affine


def _vol(s=3, h=10, w=12):
    return np.random.default_rng(0).random((s, h, w)).astype(np.float32)


def test_roundtrip_keeps_data_affine_and_header(tmp_path):
    v = _vol()
    aff = np.array([[0.0, 0.0, 3.0, -10.0], [-2.0, 0.0, 0.0, 5.0], [0.0, -1.5, 0.0, 20.0], [0, 0, 0, 1.0]])
    p = write_nifti(tmp_path / "a.nii.gz", v, Geometry((2.0, 1.5, 3.0), aff, known=True), "x" * 120)
    img = nib.load(str(p))
    assert img.shape == (10, 12, 3)  # (H, W, slices) on disk
    np.testing.assert_array_equal(np.asarray(img.dataobj)[:, :, 1], v[1])
    assert img.get_data_dtype() == np.float32
    assert img.header.get_xyzt_units()[0] == "mm"
    assert len(img.header["descrip"].item()) <= 80
    assert int(img.header["sform_code"]) == 1
    back, geom = read_nifti(p)
    np.testing.assert_array_equal(back, v)
    np.testing.assert_allclose(geom.affine, aff, atol=1e-5)
    assert geom.voxel_size == pytest.approx((2.0, 1.5, 3.0)) and geom.known
    assert detect_format(p) == "nifti"
    vol2, _ = load_image(p)
    assert vol2.shape == v.shape


def test_default_affine_is_centred(tmp_path):
    v = _vol(4, 8, 6)
    p = write_nifti(tmp_path / "d.nii", v, Geometry(voxel_size=(2.0, 3.0, 4.0)))
    img = nib.load(str(p))
    np.testing.assert_allclose(img.affine, centered_affine((2.0, 3.0, 4.0), (8, 6, 4)))
    centre = img.affine @ np.array([3.5, 2.5, 1.5, 1.0])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)
    assert int(img.header["sform_code"]) == 2
    _, geom = read_nifti(p)
    assert not geom.known
    # the Geometry extensions keep the existing methods working (scaled keeps the source)
    g = Geometry(voxel_size=(2.0, 2.0, 3.0), source="header FOV/matrix").scaled(2, 2)
    assert g.voxel_size == (1.0, 1.0, 3.0) and g.source == "header FOV/matrix"


def test_overwrite_and_atomic_failure(tmp_path):
    p = tmp_path / "o.nii.gz"
    write_nifti(p, _vol(), None)
    with pytest.raises(OutputError, match="exists"):
        write_nifti(p, _vol(), None)
    write_nifti(p, 2 * _vol(), None, overwrite=True)
    np.testing.assert_allclose(read_nifti(p)[0], 2 * _vol())
    target = tmp_path / "fail.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["o.nii.gz"]


def test_unwritable_directory(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file.txt"):
        write_nifti(blocker / "out.nii.gz", _vol())
    with pytest.raises(OutputError, match="does not exist"):
        write_nifti(tmp_path / "missing" / "out.nii.gz", _vol())


def test_write_volume_dispatch_and_derived_path(tmp_path):
    assert infer_format("a.nii.gz") == "nifti" and infer_format("a.nii") == "nifti"
    assert infer_format("a.dcm") == "dicom" and infer_format(tmp_path) == "dicom"
    assert infer_format("series_out") == "dicom"
    with pytest.raises(UsageError):
        infer_format("a.mha")
    assert derived_path("out.nii.gz", "_variance").name == "out_variance.nii.gz"
    assert derived_path(tmp_path / "recon", "_variance") == tmp_path / "recon_variance"
    assert derived_path("x/out.nii", "_std").as_posix() == "x/out_std.nii"
    p = write_volume(tmp_path / "v.nii.gz", _vol(), Geometry(), None, "desc")
    assert p.exists() and read_nifti(p)[0].shape == (3, 10, 12)


def test_png_preview_and_json(tmp_path):
    from PIL import Image

    a = np.outer(np.arange(20), np.ones(30)).astype(np.float32)
    p = write_preview(tmp_path / "p.png", [("zero-filled", a), ("recon", np.exp(1j * a)), ("tall", np.ones((40, 10)))])
    im = Image.open(p)
    assert im.mode == "L" and im.size == (30 + 30 + 10 + 2 * 4, 40 + 14)
    with pytest.raises(OutputError):
        write_preview(p, [("a", a)])
    j = write_json(tmp_path / "m.json", {"psnr": np.float32(31.5), "per_slice": np.arange(3), "bad": float("nan"),
                                         "n": np.int64(4), "ok": np.bool_(True)})
    d = json.loads(j.read_text())
    assert d == {"psnr": 31.5, "per_slice": [0, 1, 2], "bad": None, "n": 4, "ok": True}
