"""DICOM series writer: dciodvfy-clean, values and geometry round trip, UIDs, dcm2niix, atomic folder."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from mrdiff_cli.errors import OutputError
from mrdiff_cli.io.detect import detect_format, load_image
from mrdiff_cli.io.dicom import read_dicom_series, write_dicom_series
from mrdiff_cli.io.writers import write_volume
from mrdiff_cli.types import Geometry


def _oblique():
    c, s = np.cos(0.4), np.sin(0.4)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.array([[0, 0, 1.0], [-1.0, 0, 0], [0, -1.0, 0]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([1.25, 1.5, 3.0])
    aff[:3, 3] = [-40.0, 12.5, 7.0]
    return aff


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    v = (np.random.default_rng(1).random((3, 24, 20)) * 250.0 - 20.0).astype(np.float32)
    geom = Geometry(voxel_size=(1.25, 1.5, 3.0), affine=_oblique(), known=True)
    folder = tmp_path_factory.mktemp("dcm") / "series"
    write_dicom_series(folder, v, geom, "mrdiff test recon", series_number=7)
    return folder, v, geom


def test_values_and_geometry_roundtrip(series):
    folder, v, geom = series
    files = sorted(folder.glob("*.dcm"))
    assert len(files) == 3
    ds = pydicom.dcmread(str(files[0]))
    slope = float(ds.RescaleSlope)
    stored = ds.pixel_array
    assert stored.dtype == np.uint16 and stored.shape == (24, 20)
    np.testing.assert_allclose(stored * slope + float(ds.RescaleIntercept), v[0], atol=slope * 0.51 + 1e-4)
    back, g = read_dicom_series(folder)
    np.testing.assert_allclose(back, v, atol=slope * 0.51 + 1e-4)
    np.testing.assert_allclose(g.affine, geom.affine, atol=1e-4)
    assert g.voxel_size == pytest.approx((1.25, 1.5, 3.0))
    assert detect_format(folder) == "dicom" and detect_format(files[0]) == "dicom"
    assert load_image(folder)[0].shape == (3, 24, 20)


def test_attributes_and_uids(series):
    folder, _, _ = series
    dss = [pydicom.dcmread(str(f)) for f in sorted(folder.glob("*.dcm"))]
    assert all(d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" for d in dss)
    assert len({d.SOPInstanceUID for d in dss}) == 3
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({getattr(d, key) for d in dss}) == 1
    d = dss[0]
    assert list(d.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert d.SeriesDescription == "mrdiff test recon" and int(d.SeriesNumber) == 7
    assert d.Modality == "MR" and d.BitsAllocated == 16 and d.PixelRepresentation == 0
    assert [float(x) for x in d.PixelSpacing] == pytest.approx([1.25, 1.5])
    assert float(d.SliceThickness) == pytest.approx(3.0) and float(d.SpacingBetweenSlices) == pytest.approx(3.0)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_reports_no_errors(series):
    folder, _, _ = series
    for f in sorted(folder.glob("*.dcm")):
        res = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True)
        text = res.stdout + res.stderr
        errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
        assert errors == [], text
        assert res.returncode == 0, text


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
def test_dcm2niix_converts(series, tmp_path):
    import nibabel as nib

    folder, _, _ = series
    subprocess.run(["dcm2niix", "-o", str(tmp_path), "-f", "conv", str(folder)], check=True, capture_output=True)
    img = nib.load(str(tmp_path / "conv.nii"))
    assert sorted(img.shape) == sorted((24, 20, 3)) and img.shape[2] == 3


def test_study_uid_overwrite_and_atomic(tmp_path):
    v = np.ones((2, 8, 8), np.float32)
    out = tmp_path / "s"
    write_dicom_series(out, v, None, "a", study_uid="1.2.3.4")
    assert pydicom.dcmread(str(next(out.glob("*.dcm")))).StudyInstanceUID == "1.2.3.4"
    with pytest.raises(OutputError, match="exists"):
        write_dicom_series(out, v, None, "a")
    write_dicom_series(out, 3 * v, None, "b", overwrite=True)
    assert read_dicom_series(out)[0].max() == pytest.approx(3.0)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        write_dicom_series(out, v, None, "c", overwrite=True)
    with pytest.raises(ValueError):
        write_dicom_series(tmp_path / "bad", np.full((1, 4, 4), np.nan), None, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temp folders left behind


def test_write_volume_dicom_single_file(tmp_path):
    p = write_volume(tmp_path / "one.dcm", np.ones((1, 6, 5), np.float32), None, None, "single")
    assert p.is_file() and read_dicom_series(p)[0].shape == (1, 6, 5)
    q = write_volume(tmp_path / "multi.dcm", np.ones((2, 6, 5), np.float32), None, None, "multi")
    assert q.is_dir() and q.name == "multi"


@pytest.mark.parametrize("peak", [3e-4, 0.5, 7.0e4])
def test_any_intensity_range_gives_valid_windows_and_round_trips(tmp_path, peak):
    """fastMRI-scale (~1e-4) images used to get WindowWidth < 1 (a dciodvfy error); window values are in rescaled
    units and >= 1 for any range, and the reader undoes the display scaling."""
    v = (np.random.default_rng(2).random((2, 16, 12)) * peak).astype(np.float32)
    v[1] = 0.0  # an all-zero slice too
    folder = write_dicom_series(tmp_path / f"s{peak:g}", v, Geometry(voxel_size=(0.7, 0.7, 5.0)), "low")
    for f in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(str(f))
        assert float(ds.WindowWidth) >= 1.0
        real = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert real.min() - 1e-6 <= float(ds.WindowCenter) <= real.max() + 1e-6 or real.max() == real.min()
    back, _ = read_dicom_series(folder)
    np.testing.assert_allclose(back, v, atol=peak * 1e-4)
    if peak < 1:
        assert "reconstruction x " in str(pydicom.dcmread(str(next(folder.glob("*.dcm")))).ImageComments)
    if shutil.which("dciodvfy"):
        for f in sorted(folder.glob("*.dcm")):
            res = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True)
            errors = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("Error")]
            assert errors == [], errors
