"""Format detection from file content (not the extension) and the dispatch to readers.

* HDF5 (signature ``\\x89HDF\\r\\n\\x1a\\n`` at offset 0/512/1024/...): a ``kspace`` dataset → 'fastmri';
  a ``/dataset`` group (or any top-level group) holding ``data`` acquisitions or an ``xml`` header → 'ismrmrd'.
* NIfTI-1/2: magic ``n+1``/``ni1`` at byte 344 (``n+2`` at byte 4 for NIfTI-2), also inside gzip.
* DICOM: ``DICM`` at byte 128, or a folder holding such files.
* BART: a text ``NAME.hdr`` with a ``# Dimensions`` line next to ``NAME.cfl`` (given as ``NAME``, ``NAME.cfl`` or
  ``NAME.hdr``; the raw ``.cfl`` has no signature of its own).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UsageError
from ..types import Geometry, ScanInfo
from .base import NonFiniteError, ScanReader, sampling_summary

RAW_FORMATS = ("fastmri", "ismrmrd", "bart")
IMAGE_FORMATS = ("nifti", "dicom")
FORMATS = RAW_FORMATS + IMAGE_FORMATS

_HDF5_SIG = b"\x89HDF\r\n\x1a\n"


def _head(p: Path, n: int = 1024) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputError(f"{p}: cannot read file ({exc.strerror or exc})") from None


def _is_hdf5(p: Path) -> bool:
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            off = 0
            while off + 8 <= size and off <= 1 << 20:
                fh.seek(off)
                if fh.read(8) == _HDF5_SIG:
                    return True
                off = 512 if off == 0 else off * 2
    except OSError:
        return False
    return False


def _nifti_magic(head: bytes) -> bool:
    if len(head) >= 348 and head[344:348] in (b"n+1\0", b"ni1\0"):
        return True
    return len(head) >= 8 and head[4:8] in (b"n+2\0", b"ni2\0")


def _is_nifti(p: Path, head: bytes) -> bool:
    if _nifti_magic(head):
        return True
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(p, "rb") as fh:
                return _nifti_magic(fh.read(352))
        except (OSError, EOFError):
            return False
    return False


def _open_hdf5(path: str | os.PathLike, why: str):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError:
        raise InputError(f"{path}: {why}") from None


def _find_ismrmrd_group(f) -> str | None:
    """Name of the group holding ISMRMRD data ('dataset' first, then any group with 'data' or 'xml')."""
    import h5py

    for name in ("dataset", *f.keys()):
        g = f.get(name)
        if isinstance(g, h5py.Group) and ("data" in g or "xml" in g):
            return name
    return None


def _hdf5_kind(p: Path) -> str:
    with _open_hdf5(p, "not a readable HDF5 file") as f:
        if "kspace" in f:
            return "fastmri"
        if _find_ismrmrd_group(f) is not None:
            return "ismrmrd"
    raise InputError(f"{p}: HDF5 file holds no k-space (neither a fastMRI 'kspace' dataset nor an ISMRMRD '/dataset')")


def ismrmrd_group(path: str | os.PathLike) -> str:
    """Name of the ISMRMRD group of a file ('dataset' unless the file uses another top-level group)."""
    with _open_hdf5(path, "not an HDF5 file (cannot open)") as f:
        if "dataset" in f:
            return "dataset"
        return _find_ismrmrd_group(f) or "dataset"


def input_exists(path: str | os.PathLike) -> bool:
    """True when ``path`` exists, or names a BART pair by its base name (``scan`` for ``scan.cfl``/``scan.hdr``)."""
    from .bart import is_bart

    p = Path(path)
    return p.exists() or (p.suffix.lower() not in (".cfl", ".hdr") and is_bart(p))


def detect_format(path: str | os.PathLike) -> str:
    """'fastmri' | 'ismrmrd' | 'bart' | 'nifti' | 'dicom' from the file content; InputError otherwise."""
    from .bart import is_bart

    p = Path(path)
    if not input_exists(p):
        raise InputError(f"{p}: file not found")
    if is_bart(p):
        return "bart"
    if p.is_dir():
        from .dicom import dicom_files

        if dicom_files(p):
            return "dicom"
        raise InputError(f"{p}: is a directory without DICOM files")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty")
    head = _head(p)
    if _is_hdf5(p):
        return _hdf5_kind(p)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if _is_nifti(p, head):
        return "nifti"
    if p.suffix.lower() in (".cfl", ".hdr"):
        raise InputError(f"{p}: not a BART file pair (needs {p.stem}.hdr with a '# Dimensions' line and {p.stem}.cfl)")
    raise InputError(f"{p}: unknown file format (not HDF5 k-space, BART .cfl/.hdr, NIfTI or DICOM)")


def _check_format_name(input_format: str | None) -> str | None:
    if input_format is None:
        return None
    f = input_format.lower().strip()
    aliases = {"h5": "fastmri", "mrd": "ismrmrd", "nii": "nifti", "dcm": "dicom", "cfl": "bart"}
    f = aliases.get(f, f)
    if f not in FORMATS:
        raise UsageError(f"unknown input format '{input_format}' (choose from {', '.join(FORMATS)})")
    return f


def open_input(path: str | os.PathLike, input_format: str | None = None, **kwargs: Any) -> ScanReader:
    """Open raw k-space lazily with the reader of its (detected or given) format.

    kwargs go to the reader (ISMRMRD: ``repetition``). Image formats raise InputError: they hold no k-space.
    """
    p = Path(path)
    fmt = _check_format_name(input_format)
    if not input_exists(p):
        raise InputError(f"{p}: file not found")
    fmt = fmt or detect_format(p)
    if fmt == "bart":
        from .bart import open_scan as open_bart

        return open_bart(p)
    if fmt == "fastmri":
        from .fastmri import open_scan

        return open_scan(p)
    if fmt == "ismrmrd":
        from .ismrmrd_io import open_scan as open_mrd

        return open_mrd(p, dataset=kwargs.pop("dataset", None) or ismrmrd_group(p), **kwargs)
    raise InputError(f"{p}: is a {fmt.upper() if fmt == 'dicom' else 'NIfTI'} image, not raw k-space")


def load_image(path: str | os.PathLike, input_format: str | None = None) -> tuple[np.ndarray, Geometry]:
    """Magnitude image input (NIfTI, DICOM file/folder, or a ``.npy`` array) → ((slices, H, W) float32, Geometry).

    ``.npy``: a 2D array is one slice; a 3D array is taken as (slices, H, W); complex → magnitude.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_file() and _head(p, 6) == b"\x93NUMPY":
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"{p}: cannot read numpy array ({exc.__class__.__name__})") from None
        if a.dtype.kind not in "biufc":
            raise InputError(f"{p}: numpy array has dtype {a.dtype}; expected numbers")
        a = np.abs(a) if np.iscomplexobj(a) else a
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise InputError(f"{p}: numpy array has shape {a.shape}; expected (H, W) or (slices, H, W)")
        if 0 in a.shape:
            raise InputError(f"{p}: numpy array has a zero-size dimension, shape {a.shape}")
        return a.astype(np.float32), Geometry(source="default (npy, 1 mm)")
    fmt = _check_format_name(input_format) or detect_format(p)
    if fmt == "nifti":
        from .nifti import read_nifti

        return read_nifti(p)
    if fmt == "dicom":
        from .dicom import read_dicom_series

        return read_dicom_series(p)
    raise InputError(f"{p}: is raw k-space ({fmt}), not an image; expected NIfTI, DICOM or .npy")


# ---------------------------------------------------------------------------------------------------
# summary for `mrdiff info`
# ---------------------------------------------------------------------------------------------------


def _geometry_dict(g: Geometry) -> dict[str, Any]:
    return {
        "voxel_size_mm": [round(float(v), 6) for v in g.voxel_size],
        "affine_known": bool(g.known),
        "source": g.source,
        "affine": None if g.affine is None else np.round(np.asarray(g.affine, float), 6).tolist(),
    }


def describe_input(path: str | os.PathLike, input_format: str | None = None, check_values: bool = True,
                   batch: int = 4) -> dict[str, Any]:
    """A JSON-able summary of an input file: format, shape, sampling, ACS, geometry, reference.

    ``check_values`` reads every slice (``batch`` at a time) and reports NaN/Inf values (``values_finite``,
    ``non_finite_values``, ``non_finite_slices``) instead of failing on them.
    """
    p = Path(path)
    fmt = _check_format_name(input_format)
    if not input_exists(p):
        raise InputError(f"{p}: file not found")
    fmt = fmt or detect_format(p)
    if fmt in IMAGE_FORMATS:
        vol, geom = load_image(p, fmt)
        bad = ~np.isfinite(vol)
        finite = vol[~bad]
        return {
            "file": str(p),
            "format": fmt,
            "kind": "image",
            "shape": list(vol.shape),
            "slices": int(vol.shape[0]),
            "matrix": [int(vol.shape[1]), int(vol.shape[2])],
            "value_range": [float(finite.min()), float(finite.max())] if finite.size else [None, None],
            "values_finite": not bad.any(),
            "non_finite_values": int(bad.sum()),
            "non_finite_slices": [int(i) for i in np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))],
            "geometry": _geometry_dict(geom),
        }
    with open_input(p, fmt) as r:
        count, slices = 0, list[int]()
        if check_values:
            for s in range(0, r.n_slices, batch):
                try:
                    r.read_slices(s, min(s + batch, r.n_slices))
                except NonFiniteError as exc:
                    count, slices = count + exc.count, slices + exc.slices
        out = describe_scan(r.info)
        if check_values:
            out.update(values_finite=count == 0, non_finite_values=count, non_finite_slices=slices)
        return out


def describe_scan(info: ScanInfo) -> dict[str, Any]:
    """JSON-able summary of a raw file's :class:`ScanInfo` (what ``mrdiff info`` prints)."""
    samp = info.sampling
    s, c, h, w = info.shape
    out: dict[str, Any] = {
        "file": info.path,
        "format": info.format,
        "kind": "raw k-space",
        "shape": list(info.shape),
        "stored_shape": list(info.stored_shape),
        "slices": s,
        "coils": c,
        "single_coil": info.single_coil,
        "matrix": [h, w],
        "image_matrix": list(info.image_shape),
        "sampling": {
            "undersampled": bool(samp.undersampled),
            "mask_source": samp.source,
            "stated_acceleration": samp.stated_acceleration,
            "stated_acs": samp.stated_acs,
            **sampling_summary(samp.mask, w),
        },
        "readout_oversampling": _number(info.readout_oversampling),
        "geometry": _geometry_dict(info.geometry),
        "reference": None if info.reference is None else {
            "name": info.reference.name, "shape": list(info.reference.shape),
            "description": info.reference.description, "noisy": info.reference.noisy},
        "header": info.header.as_dict(),
        "notes": list(info.notes),
    }
    for k in ("calibration_lines", "repetitions", "averages", "skipped_acquisitions", "noise_scan"):
        if k in info.facts:
            out[k] = info.facts[k]
    attrs = info.facts.get("attributes") or {}
    if attrs.get("acquisition"):
        out["acquisition"] = attrs["acquisition"]
    return out


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def load_input(path: str | os.PathLike, input_format: str | None = None, **kwargs: Any):
    """Read a whole raw k-space file (any raw format) into a Scan."""
    with open_input(path, input_format, **kwargs) as r:
        return r.load()
