"""Pick the image writer from the output path: NIfTI (``.nii``/``.nii.gz``), a DICOM series, or a fastMRI-style
``.h5`` (``reconstruction`` dataset, :mod:`~mrdiff_cli.io.fastmri_out`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..types import Geometry

FORMATS = ("nifti", "dicom", "h5")


def split_ext(name: str) -> tuple[str, str]:
    """(stem, extension) with the extensions mrdiff writes (``.nii.gz`` counts as one)."""
    low = name.lower()
    for ext in (".nii.gz", ".nii", ".dcm", ".h5", ".png", ".json", ".npy"):
        if low.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], name[-len(ext):]
    return name, ""


def infer_format(out_path: str | os.PathLike) -> str:
    """'nifti' for .nii/.nii.gz, 'h5' for .h5, 'dicom' for .dcm, an existing folder or a name without extension."""
    p = Path(out_path)
    _, ext = split_ext(p.name)
    if ext.lower() in (".nii", ".nii.gz"):
        return "nifti"
    if ext.lower() == ".h5":
        return "h5"
    if ext.lower() == ".dcm" or p.is_dir() or str(out_path).endswith(os.sep) or ext == "" and "." not in p.name:
        return "dicom"
    raise UsageError(
        f"{out_path}: cannot tell the output format from the name; use .nii/.nii.gz, .h5, a folder for DICOM, "
        "or pass `fmt`"
    )


def derived_path(out: str | os.PathLike, suffix: str) -> Path:
    """out.nii.gz + '_variance' → out_variance.nii.gz; folder 'recon' → 'recon_variance'."""
    p = Path(out)
    stem, ext = split_ext(p.name.rstrip(os.sep))
    return p.with_name(f"{stem}{suffix}{ext}")


def write_volume(out_path: str | os.PathLike, volume: np.ndarray, geometry: Geometry | None = None,
                 fmt: str | None = None, description: str = "", overwrite: bool = False,
                 attrs: dict | None = None, **dicom_kwargs) -> Path:
    """Write a (slices, H, W) volume; returns the path written.

    fmt None → inferred by :func:`infer_format`. DICOM: a series folder at ``out_path``; a ``.dcm`` path
    with one slice is written as a single file, with several slices as the folder named without ``.dcm``.
    h5: the ``reconstruction`` dataset with file attributes ``attrs`` (plus ``max``, ``norm``, ``description``).
    """
    fmt = (fmt or infer_format(out_path)).lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format '{fmt}' (choose from {', '.join(FORMATS)})")
    v = np.asarray(volume)
    if fmt == "nifti":
        from .nifti import write_nifti

        return write_nifti(out_path, v, geometry, description, overwrite=overwrite)
    if fmt == "h5":
        from .fastmri_out import write_reconstruction_h5

        return write_reconstruction_h5(out_path, v, {**(attrs or {}), "description": description or None},
                                       overwrite=overwrite)
    from .dicom import write_dicom_file, write_dicom_series

    p = Path(out_path)
    if p.suffix.lower() == ".dcm":
        if v.ndim == 2 or v.shape[0] == 1:
            return write_dicom_file(p, v, geometry, description, overwrite=overwrite,
                                    **{k: dicom_kwargs[k] for k in ("series_number", "study_uid") if k in dicom_kwargs})
        p = p.with_suffix("")
    return write_dicom_series(p, v, geometry, description, overwrite=overwrite, **dicom_kwargs)
