"""DICOM MR Image Storage series (one file per slice) writer and reader.

Pixel layout: slice k of a (slices, H, W) volume is one image with Rows = H and Columns = W, so
DICOM's row index is our i (H) and the column index our j (W). From the RAS affine of (i, j, k):

* ImageOrientationPatient = (direction of increasing column index j, direction of increasing row index i)
  in LPS, i.e. (LPS(affine[:, 1]), LPS(affine[:, 0])) normalised;
* PixelSpacing = (spacing between rows = |affine[:, 0]|, spacing between columns = |affine[:, 1]|);
* ImagePositionPatient = LPS position of voxel (0, 0, k); SpacingBetweenSlices = |affine[:, 2]|,
  SliceThickness = geometry.voxel_size[2].

Values are stored as uint16 (0..65535 over the float range of the whole volume) with
RescaleSlope/RescaleIntercept mapping back to the input floats (``float = stored * slope + intercept``).
Window Center/Width are per slice, in those rescaled units, width >= 1. A volume whose whole value range is below 1
(fastMRI intensities are ~1e-4) is first multiplied by a power of ten (:func:`display_scale`) so its largest
magnitude lies in [1000, 10000); ImageComments records the factor and :func:`read_dicom_series` divides it back.
Every file gets new SOP Instance UIDs; the series shares Study/Series/Frame of Reference UIDs.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, OutputError
from ..types import Geometry
from .atomic import atomic_dir, atomic_path
from .base import as_real_volume

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_LPS = np.diag([-1.0, -1.0, 1.0])


def _ds_str(x: float) -> str:
    """A DICOM DS value (≤ 16 characters)."""
    for digits in (10, 9, 8, 7, 6):
        s = format(float(x), f".{digits}g")
        if len(s) <= 16:
            return s
    return format(float(x), ".5g")  # pragma: no cover


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else fallback


def _plane_geometry(geometry: Geometry, shape_hws: tuple[int, int, int]) -> dict[str, Any]:
    aff = geometry.affine_for(shape_hws)
    lps = _LPS @ aff[:3, :4]
    col_i, col_j, col_k, origin = lps[:, 0], lps[:, 1], lps[:, 2], lps[:, 3]
    row_dir = _unit(col_j, np.array([1.0, 0.0, 0.0]))  # along a row = increasing column index = j
    col_dir = _unit(col_i, np.array([0.0, 1.0, 0.0]))  # down a column = increasing row index = i
    dk = float(np.linalg.norm(col_k)) or float(geometry.voxel_size[2])
    return {
        "iop": [*row_dir.tolist(), *col_dir.tolist()],
        "spacing": (float(np.linalg.norm(col_i)) or 1.0, float(np.linalg.norm(col_j)) or 1.0),
        "step": col_k,
        "origin": origin,
        "normal": _unit(np.cross(row_dir, col_dir), np.array([0.0, 0.0, 1.0])),
        "spacing_between": dk,
    }


def display_scale(volume: np.ndarray) -> float:
    """Power of ten the values are multiplied by before storing: 1 when the value range is at least 1, else the
    one that brings the largest magnitude into [1000, 10000). Window Width must be >= 1 in the rescaled units
    (dciodvfy), so a volume spanning 0..1e-4 (fastMRI's raw scale) cannot keep its own units."""
    vmin, vmax = float(np.min(volume)), float(np.max(volume))
    amp = max(abs(vmin), abs(vmax))
    if vmax - vmin >= 1.0 or amp == 0.0:
        return 1.0
    return float(10.0 ** math.ceil(math.log10(1000.0 / amp)))


def _rescale(volume: np.ndarray) -> tuple[np.ndarray, float, float]:
    vmin, vmax = float(np.min(volume)), float(np.max(volume))
    slope = (vmax - vmin) / 65535.0 if vmax > vmin else 1.0
    slope = float(_ds_str(slope))
    intercept = float(_ds_str(vmin))
    if slope <= 0:
        slope = 1.0
    stored = np.clip(np.rint((volume - intercept) / slope), 0, 65535).astype(np.uint16)
    return stored, slope, intercept


SCALE_NOTE = "mrdiff: stored values = reconstruction x "


def _scale_from_comment(ds: Any) -> float:
    text = str(getattr(ds, "ImageComments", "") or "")
    if text.startswith(SCALE_NOTE):
        try:
            return float(text[len(SCALE_NOTE):].strip())
        except ValueError:
            return 1.0
    return 1.0


SIDECAR_NAMES = ("metrics.json", "mask.png", "preview.png", "calibration.png")  # what mrdiff writes into a series


def _check_dicom_folder_for_overwrite(folder: Path) -> None:
    if folder.is_dir():
        for f in folder.iterdir():
            if f.is_dir() or (f.suffix.lower() != ".dcm" and f.name not in SIDECAR_NAMES):
                raise OutputError(
                    f"{folder}: refusing to overwrite, the folder holds '{f.name}' which is not a DICOM file"
                )


def write_dicom_series(folder: str | os.PathLike, volume: np.ndarray, geometry: Geometry | None = None,
                       description: str = "mrdiff", series_number: int = 1001, overwrite: bool = False,
                       study_uid: str | None = None, *, patient_name: str = "Anonymous^",
                       patient_id: str = "MRDIFF", derivation: str | None = None) -> Path:
    """Write a (slices, H, W) volume as an MR Image Storage series (one ``IMG0001.dcm`` per slice).

    The whole folder is written to a temporary sibling and renamed into place when complete.
    """
    v = as_real_volume(volume, "write_dicom_series", np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("volume contains NaN or Inf")
    geometry = geometry or Geometry()
    folder = Path(folder)
    if overwrite:
        _check_dicom_folder_for_overwrite(folder)
    with atomic_dir(folder, overwrite) as tmp:
        _write_series(tmp, v, geometry, description, series_number, study_uid, patient_name, patient_id,
                      derivation)
    return folder


def write_dicom_file(path: str | os.PathLike, image: np.ndarray, geometry: Geometry | None = None,
                     description: str = "mrdiff", series_number: int = 1001, overwrite: bool = False,
                     study_uid: str | None = None) -> Path:
    """Write a single slice (H, W) or (1, H, W) as one DICOM file, atomically."""
    v = np.asarray(image, dtype=np.float64)
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[0] != 1:
        raise ValueError(f"write_dicom_file takes one slice, got shape {v.shape}")
    geometry = geometry or Geometry()
    with atomic_path(path, overwrite) as tmp:
        ds_list = _build_datasets(v, geometry, description, series_number, study_uid, "Anonymous^", "MRDIFF",
                                  None)
        _save(ds_list[0], tmp)
    return Path(path)


def _write_series(folder: Path, v: np.ndarray, geometry: Geometry, description: str, series_number: int,
                  study_uid: str | None, patient_name: str, patient_id: str, derivation: str | None) -> None:
    for k, ds in enumerate(_build_datasets(v, geometry, description, series_number, study_uid, patient_name,
                                           patient_id, derivation)):
        _save(ds, folder / f"IMG{k + 1:04d}.dcm")


def _save(ds: Any, path: Path) -> None:
    try:  # pydicom >= 3
        ds.save_as(str(path), enforce_file_format=True)
    except TypeError:  # pragma: no cover - pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)


def _build_datasets(v: np.ndarray, geometry: Geometry, description: str, series_number: int,
                    study_uid: str | None, patient_name: str, patient_id: str, derivation: str | None) -> list:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

    from .. import __version__

    n_sl, h, w = v.shape
    g = _plane_geometry(geometry, (h, w, n_sl))
    scale = display_scale(v)
    v = v * scale
    stored, slope, intercept = _rescale(v)
    now = _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    for_uid = generate_uid()
    desc = (description or "mrdiff")[:64]
    out = []
    for k in range(n_sl):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(MR_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = f"MRDIFF_{__version__}"[:16]

        ds = Dataset()
        ds.file_meta = meta
        ds.preamble = b"\0" * 128
        # SOP Common
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = MR_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_uid
        ds.InstanceCreationDate = date
        ds.InstanceCreationTime = time
        # Patient
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        # General Study
        ds.StudyInstanceUID = study_uid
        ds.StudyDate = date
        ds.StudyTime = time
        ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.StudyDescription = "mrdiff reconstruction"
        # General Series
        ds.Modality = "MR"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = int(series_number)
        ds.SeriesDescription = desc
        ds.SeriesDate = date
        ds.SeriesTime = time
        ds.PatientPosition = "HFS"
        ds.Laterality = ""  # type 2C that dciodvfy requires present; empty = unknown (a warning, not an error)
        # Frame of Reference
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ""
        # General Equipment
        ds.Manufacturer = "mrdiff"
        ds.SoftwareVersions = str(__version__)
        # General Image
        ds.InstanceNumber = k + 1
        ds.ContentDate = date
        ds.ContentTime = time
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        ds.DerivationDescription = (derivation or f"mrdiff: {desc}")[:1024]
        ds.BurnedInAnnotation = "NO"
        _image_modules(ds, k, g, geometry, stored[k], v[k], slope, intercept, scale)
        out.append(ds)
    return out


def _image_modules(ds: Any, k: int, g: dict[str, Any], geometry: Geometry, sl: np.ndarray, real: np.ndarray,
                   slope: float, intercept: float, scale: float) -> None:
    """Image Plane, Image Pixel and MR Image modules of slice k (``sl`` stored uint16, ``real`` rescaled values)."""
    # Image Plane
    pos = g["origin"] + g["step"] * k
    ds.ImagePositionPatient = [_ds_str(x) for x in pos]
    ds.ImageOrientationPatient = [_ds_str(x) for x in g["iop"]]
    ds.PixelSpacing = [_ds_str(g["spacing"][0]), _ds_str(g["spacing"][1])]
    ds.SliceThickness = _ds_str(geometry.voxel_size[2])
    ds.SpacingBetweenSlices = _ds_str(g["spacing_between"])
    ds.SliceLocation = _ds_str(float(np.dot(pos, g["normal"])))
    # Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = (int(n) for n in sl.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = _ds_str(intercept)
    ds.RescaleSlope = _ds_str(slope)
    ds.SmallestImagePixelValue = int(sl.min())
    ds.LargestImagePixelValue = int(sl.max())
    lo, hi = float(real.min()), float(real.max())  # window in the rescaled units, width >= 1
    ds.WindowCenter = _ds_str((hi + lo) / 2.0)
    ds.WindowWidth = _ds_str(max(hi - lo, 1.0))
    if scale != 1.0:
        ds.ImageComments = f"{SCALE_NOTE}{scale:g}"
    ds.PixelData = np.ascontiguousarray(sl).astype("<u2").tobytes()
    # MR Image
    ds.ScanningSequence = "RM"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = ""
    ds.EchoTime = ""
    ds.EchoTrainLength = ""
    ds.ImagedNucleus = "1H"
    ds.AcquisitionNumber = 1


# ---------------------------------------------------------------------------------------------------
# reader
# ---------------------------------------------------------------------------------------------------


def _is_dicom_file(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            head = fh.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False


def dicom_files(path: str | os.PathLike) -> list[Path]:
    """DICOM files (by the 'DICM' preamble) of a folder, or [path] for a single file."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.is_file() and _is_dicom_file(f))
    return [p] if _is_dicom_file(p) else []


def read_dicom_series(path: str | os.PathLike) -> tuple[np.ndarray, Geometry]:
    """Read a single-series DICOM folder (or one file) as ((slices, H, W) float32, Geometry).

    Slices are sorted along the slice normal; values are ``stored * RescaleSlope + RescaleIntercept``.
    The affine is the inverse of the writer's mapping (see module docstring), in RAS.
    """
    import pydicom

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    files = dicom_files(p)
    if not files:
        raise InputError(f"{p}: no DICOM files found")
    items = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f))
            arr = ds.pixel_array.astype(np.float64)
        except Exception as exc:
            raise InputError(f"{f}: cannot read DICOM image ({exc.__class__.__name__})") from None
        if arr.ndim != 2:
            raise InputError(f"{f}: multi-frame or colour DICOM images are not supported (shape {arr.shape})")
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        items.append((ds, (arr * slope + intercept) / _scale_from_comment(ds)))
    series = {str(getattr(ds, "SeriesInstanceUID", "")) for ds, _ in items}
    if len(series) > 1:
        raise InputError(f"{p}: folder holds {len(series)} DICOM series; give one series folder")
    shapes = {a.shape for _, a in items}
    if len(shapes) > 1:
        raise InputError(f"{p}: DICOM images of different sizes {sorted(shapes)}")

    ds0 = items[0][0]
    iop = np.asarray([float(x) for x in getattr(ds0, "ImageOrientationPatient", [1, 0, 0, 0, 1, 0])])
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    # instance order when positions run monotonically along the normal in that order (keeps a round trip
    # exact), else sorted along the normal
    items.sort(key=lambda it: int(getattr(it[0], "InstanceNumber", 0) or 0))
    if all("ImagePositionPatient" in d for d, _ in items):
        proj = np.array([float(np.dot([float(x) for x in d.ImagePositionPatient], normal)) for d, _ in items])
        d = np.diff(proj)
        if not (np.all(d > 0) or np.all(d < 0)):
            order = np.argsort(proj, kind="stable")
            items = [items[i] for i in order]
    ps = [float(x) for x in getattr(ds0, "PixelSpacing", [1.0, 1.0])]
    thick = float(getattr(ds0, "SliceThickness", 0) or 0) or None
    positions = [np.asarray([float(x) for x in getattr(d, "ImagePositionPatient", [0, 0, 0])]) for d, _ in items]
    if len(positions) > 1:
        step = (positions[-1] - positions[0]) / (len(positions) - 1)
        dz = float(np.linalg.norm(step))
    else:
        dz = float(getattr(ds0, "SpacingBetweenSlices", 0) or 0) or thick or 1.0
        step = normal * dz
    lps = np.eye(4)
    lps[:3, 0] = col_dir * ps[0]  # i = row index
    lps[:3, 1] = row_dir * ps[1]  # j = column index
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    has_geom = "ImagePositionPatient" in ds0 and "ImageOrientationPatient" in ds0
    geom = Geometry(voxel_size=(ps[0], ps[1], thick or dz), affine=ras, known=has_geom, source=f"dicom {p.name}")
    vol = np.stack([a for _, a in items]).astype(np.float32)
    return vol, geom
