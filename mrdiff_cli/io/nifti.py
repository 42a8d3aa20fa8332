"""NIfTI-1 output (and input) for image volumes.

Layout: our volumes are (slices, H, W); on disk the data array is (H, W, slices), i.e. NIfTI voxel index
i = H (readout), j = W (phase encode), k = slice. The affine maps (i, j, k) to RAS+ millimetres; when the
geometry has none, the documented default is used (diagonal voxel sizes, volume centre at the origin, see
``Geometry.affine_for``). Written as float32 with ``xyzt_units`` = mm, qform and sform both set (code 1
"scanner" when the geometry came from the file, 2 "aligned" otherwise; reading maps codes 1/3/4/5 back to
``known=True``), and ``descrip`` ≤ 80 characters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..types import Geometry, vox3
from .atomic import atomic_path
from .base import as_real_volume


def to_nifti_layout(volume: np.ndarray) -> np.ndarray:
    """(slices, H, W) → (H, W, slices)."""
    return np.transpose(np.asarray(volume), (1, 2, 0))


def from_nifti_layout(data: np.ndarray) -> np.ndarray:
    """(H, W, slices) → (slices, H, W)."""
    return np.transpose(np.asarray(data), (2, 0, 1))


def write_nifti(path: str | os.PathLike, volume: np.ndarray, geometry: Geometry | None = None,
                description: str = "", overwrite: bool = False) -> Path:
    """Write a (slices, H, W) float volume as NIfTI-1 (``.nii`` or ``.nii.gz``), atomically."""
    import nibabel as nib

    v = as_real_volume(volume, "write_nifti")
    geometry = geometry or Geometry()
    data = np.ascontiguousarray(to_nifti_layout(v))
    aff = geometry.affine_for(data.shape)
    img = nib.Nifti1Image(data, aff)
    hdr = img.header
    code = 1 if geometry.known else 2
    img.set_qform(aff, code=code)
    img.set_sform(aff, code=code)
    hdr.set_data_dtype(np.float32)
    hdr.set_xyzt_units(xyz="mm", t="sec")
    desc = (description or "mrdiff").encode("ascii", errors="replace")[:79]
    hdr["descrip"] = desc
    with atomic_path(path, overwrite) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, Geometry]:
    """Read a NIfTI image as ((slices, H, W) float32, Geometry); inverse of :func:`write_nifti`."""
    import nibabel as nib

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    try:
        img: Any = nib.load(str(p))  # a Nifti1/2Image (FileBasedImage in nibabel's stubs)
        data = np.asarray(img.dataobj)
    except Exception as exc:
        raise InputError(f"{p}: cannot read NIfTI image ({exc.__class__.__name__})") from None
    if np.iscomplexobj(data):
        data = np.abs(data)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputError(f"{p}: NIfTI image has shape {data.shape}; expected a 2D or 3D volume")
    if 0 in data.shape:
        raise InputError(f"{p}: NIfTI image has a zero-size dimension, shape {data.shape}")
    zooms: tuple[float, ...] = tuple(float(z) for z in img.header.get_zooms()[:3])
    zooms = vox3(zooms + (1.0,) * (3 - len(zooms)))
    _, scode = img.header.get_sform(coded=True)
    _, qcode = img.header.get_qform(coded=True)
    geom = Geometry(voxel_size=zooms, affine=np.asarray(img.affine, dtype=np.float64),
                    known=bool({int(scode or 0), int(qcode or 0)} & {1, 3, 4, 5}), source=f"nifti {p.name}")
    return from_nifti_layout(data).astype(np.float32), geom
