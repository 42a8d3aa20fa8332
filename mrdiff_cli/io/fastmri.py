"""fastMRI HDF5 files: reader (lazy, slice by slice) and a writer for simulated data.

Layout read:
  kspace                (slices, H, W) single-coil or (slices, coils, H, W) multi-coil, complex;
                        H = readout (frequency encode), W = phase encode (fastMRI's own convention)
  mask                  optional: (W,) column mask or (H, W)
  reconstruction_rss / reconstruction_esc   optional reference magnitudes (slices, H', W')
  ismrmrd_header        optional ISMRMRD XML (encoded/recon matrix and FOV)
  attrs                 acquisition, max, norm, patient_id, ... copied to metadata

Readout oversampling: fastMRI stores the oversampled readout (e.g. encoded x = 640, recon x = 320).
The reader keeps k-space as stored and records ``metadata['readout_oversampling'] = 2``; use
:func:`remove_readout_oversampling` (k-space → k-space) or :func:`crop_to_recon` (image → image, fastMRI's
centre crop) when you want the recon field of view.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..types import Scan
from .atomic import atomic_path
from .base import (
    ScanReader,
    check_dims,
    check_finite,
    column_mask,
    crop_image,
    crop_readout,
    default_geometry,
    mask_from_kspace,
    parse_ismrmrd_header,
    sampling_summary,
    voxel_size_from_header,
)

REFERENCE_KEYS = ("reconstruction_rss", "reconstruction_esc")
_ATTR_KEYS = ("acquisition", "max", "norm", "patient_id", "simulated", "seed", "snr_db", "coils", "source")


def _open_h5(path: Path):
    import h5py

    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError:
        raise InputError(f"{path}: not an HDF5 file (cannot open)") from None


class FastMRIReader(ScanReader):
    """Lazy reader of a fastMRI HDF5 file (see module docstring)."""

    format = "fastmri"

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._f = _open_h5(self.path)
        try:
            self._setup()
        except BaseException:
            self._f.close()
            raise

    # ----------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        import h5py

        f, p = self._f, self.path
        if "kspace" not in f or not isinstance(f["kspace"], h5py.Dataset):
            raise InputError(f"{p}: HDF5 file has no 'kspace' dataset")
        ds = f["kspace"]
        if ds.dtype.kind != "c":
            raise InputError(f"{p}: k-space is real-valued ({ds.dtype}); expected complex data")
        if ds.ndim not in (3, 4):
            raise InputError(
                f"{p}: k-space has rank {ds.ndim}, shape {ds.shape}; expected (slices, H, W) or (slices, coils, H, W)"
            )
        check_dims(ds.shape, p)
        self._ds = ds
        self._single = ds.ndim == 3
        s, h, w = int(ds.shape[0]), int(ds.shape[-2]), int(ds.shape[-1])
        c = 1 if self._single else int(ds.shape[1])
        self.shape = (s, c, h, w)

        md: dict[str, Any] = {"format": "fastmri", "single_coil": self._single, "dtype": str(ds.dtype)}
        for k in _ATTR_KEYS:
            if k in f.attrs:
                v = f.attrs[k]
                md[k] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)

        # header ----------------------------------------------------------------------------------
        hdr: dict[str, Any] = {}
        if "ismrmrd_header" in f:
            raw = f["ismrmrd_header"][()]
            hdr = parse_ismrmrd_header(raw, p)
            md["header"] = hdr or "unparseable"
        os_factor = 1
        if hdr.get("encoded_matrix") and hdr.get("recon_matrix"):
            ex, rx = hdr["encoded_matrix"][0], hdr["recon_matrix"][0]
            if rx > 0 and ex == 2 * rx and h == ex:
                os_factor = 2
        md["readout_oversampling"] = os_factor
        if hdr.get("recon_matrix"):
            md["recon_shape"] = [int(hdr["recon_matrix"][0]), int(hdr["recon_matrix"][1])]

        # geometry: fastMRI stores no orientation → documented default affine, voxel from encoded FOV/matrix
        vs = voxel_size_from_header(hdr, "encoded") if hdr else None
        src = "header FOV/matrix" if vs else "default (1 mm)"
        self.geometry = default_geometry(vs, (h, w, s), source=src)

        # mask ----------------------------------------------------------------------------------------
        self.mask, md["mask_source"] = self._read_mask(h, w)
        md["undersampled_in_file"] = bool(self.mask is not None and float(self.mask.mean()) < 1.0)
        md.update({f"sampling_{k}": v for k, v in sampling_summary(self.mask, w).items()})

        # reference -------------------------------------------------------------------------------
        self._ref_key = next((k for k in REFERENCE_KEYS if k in f and isinstance(f[k], h5py.Dataset)), None)
        self.has_reference = self._ref_key is not None
        if self._ref_key is not None:
            r = f[self._ref_key]
            md["reference"] = {"name": self._ref_key, "shape": [int(x) for x in r.shape]}
            if r.ndim != 3 or int(r.shape[0]) != s:
                raise InputError(f"{p}: '{self._ref_key}' has shape {r.shape}; expected ({s}, H, W)")
        self.metadata = md

    def _read_mask(self, h: int, w: int) -> tuple[np.ndarray | None, str | None]:
        f, p = self._f, self.path
        if "mask" in f:
            m = np.asarray(f["mask"][()])
            if m.dtype.kind == "c" or m.dtype.kind not in "biuf":
                raise InputError(f"{p}: 'mask' has dtype {m.dtype}; expected real or boolean values")
            if m.ndim == 1:
                if m.shape[0] != w:
                    raise InputError(f"{p}: mask length {m.shape[0]} does not match k-space width {w} (shape {self.shape})")
                m2 = np.broadcast_to(m[None, :] > 0, (h, w))
            elif m.ndim == 2:
                if m.shape != (h, w):
                    raise InputError(f"{p}: mask shape {m.shape} does not match k-space (H, W) = ({h}, {w})")
                m2 = m > 0
            else:
                raise InputError(f"{p}: mask has rank {m.ndim}; expected (W,) or (H, W)")
            if not np.all(np.isfinite(m)):
                raise InputError(f"{p}: mask contains NaN or Inf")
            return np.ascontiguousarray(m2, dtype=np.float32), "dataset"
        # no mask dataset: zero phase-encode lines in the k-space itself mark unsampled lines
        mid = self.n_slices // 2
        block = self._read_raw(mid, mid + 1)
        m = mask_from_kspace(block)
        if float(m.mean()) >= 1.0:
            return None, None
        if float(m.mean()) == 0.0:
            raise InputError(f"{p}: k-space of slice {mid} is all zeros")
        return m, "kspace"

    # ----------------------------------------------------------------------------------------------
    def _read_raw(self, start: int, stop: int) -> np.ndarray:
        blk = np.asarray(self._ds[start:stop])
        if self._single:
            blk = blk[:, None]
        return blk.astype(np.complex64, copy=False)

    def read_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        start, stop = self._check_range(start, stop)
        blk = self._read_raw(start, stop)
        check_finite(blk, self.path, start)
        return blk

    def reference_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        if self._ref_key is None:
            return None
        start, stop = self._check_range(start, stop)
        return np.asarray(self._f[self._ref_key][start:stop], dtype=np.float32)

    def close(self) -> None:
        try:
            self._f.close()
        except Exception:  # pragma: no cover
            pass


def open_scan(path: str | os.PathLike) -> FastMRIReader:
    """Open a fastMRI HDF5 file lazily (context manager)."""
    return FastMRIReader(path)


def load_scan(path: str | os.PathLike) -> Scan:
    """Read a whole fastMRI file into a Scan."""
    with open_scan(path) as r:
        return r.load()


def remove_readout_oversampling(kspace: np.ndarray, factor: int = 2) -> np.ndarray:
    """k-space (…, H, W) → (…, H/factor, W): IFFT along the readout, centre crop, FFT back."""
    h = kspace.shape[-2]
    return crop_readout(kspace, h // int(factor), axis=-2)


def crop_to_recon(image: np.ndarray, recon_shape: tuple[int, int]) -> np.ndarray:
    """fastMRI's reconstruction crop: centre crop the last two image axes to ``recon_shape``."""
    return crop_image(image, recon_shape)


# ---------------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------------


def minimal_ismrmrd_header(matrix: tuple[int, int], voxel_size: tuple[float, float, float], coils: int,
                           n_slices: int = 1, encoded_x: int | None = None) -> str:
    """A small ISMRMRD XML header: encoded/recon matrix and FOV (cartesian), limits, receiver channels."""
    import ismrmrd.xsd as x

    h, w = int(matrix[0]), int(matrix[1])
    ex = int(encoded_x or h)
    dx, dy, dz = (float(v) for v in voxel_size)
    enc = x.encodingType(
        encodedSpace=x.encodingSpaceType(
            matrixSize=x.matrixSizeType(x=ex, y=w, z=1),
            fieldOfView_mm=x.fieldOfViewMm(x=dx * ex, y=dy * w, z=dz),
        ),
        reconSpace=x.encodingSpaceType(
            matrixSize=x.matrixSizeType(x=h, y=w, z=1),
            fieldOfView_mm=x.fieldOfViewMm(x=dx * h, y=dy * w, z=dz),
        ),
        encodingLimits=x.encodingLimitsType(
            kspace_encoding_step_1=x.limitType(minimum=0, maximum=w - 1, center=w // 2),
            kspace_encoding_step_2=x.limitType(minimum=0, maximum=0, center=0),
            slice=x.limitType(minimum=0, maximum=max(0, n_slices - 1), center=0),
        ),
        trajectory=x.trajectoryType.CARTESIAN,
    )
    hdr = x.ismrmrdHeader(
        acquisitionSystemInformation=x.acquisitionSystemInformationType(
            receiverChannels=int(coils), institutionName="mrdiff simulation"
        ),
        experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=63500000),
        encoding=[enc],
    )
    out = x.ToXML(hdr)
    return out.decode() if isinstance(out, bytes) else str(out)


def write_fastmri(path: str | os.PathLike, kspace: np.ndarray, *, mask: np.ndarray | None = None,
                  reference: np.ndarray | None = None, header_xml: str | None = None,
                  attrs: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write a fastMRI-style HDF5 file atomically.

    kspace: (slices, coils, H, W) complex; stored as (slices, H, W) when coils == 1 (fastMRI single-coil).
    mask: (H, W) or (W,); stored as (W,) when it is a column mask. reference → ``reconstruction_rss``.
    """
    import h5py

    k = np.asarray(kspace, dtype=np.complex64)
    if k.ndim != 4:
        raise ValueError(f"kspace must be (slices, coils, H, W), got {k.shape}")
    if k.shape[1] == 1:
        k = k[:, 0]
    with atomic_path(path, overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("kspace", data=k)
            if mask is not None:
                m = np.asarray(mask, dtype=np.float32)
                cols = column_mask(m) if m.ndim == 2 else m
                f.create_dataset("mask", data=(cols if cols is not None else m).astype(np.float32))
            if reference is not None:
                f.create_dataset("reconstruction_rss", data=np.asarray(reference, dtype=np.float32))
            if header_xml is not None:
                f.create_dataset("ismrmrd_header", data=np.bytes_(header_xml.encode()))
            for key, val in (attrs or {}).items():
                f.attrs[key] = val
    return Path(path)
