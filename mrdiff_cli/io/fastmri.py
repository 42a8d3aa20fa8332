"""fastMRI HDF5 files: reader (lazy, slice by slice) and a writer for simulated data.

Layouts read (exactly as the dataset ships them):

=====================  ===========================  =================================  ===========================
file                   ``kspace``                   reference                          header recon matrix
=====================  ===========================  =================================  ===========================
brain multicoil train  (S, C, 640, 320)             ``reconstruction_rss`` (S,320,320)  320 x 320 (encoded 640 x 320)
brain multicoil test   (S, C, 640, 320), zero lines none; ``mask`` (320,), attrs        320 x 320
                                                    ``acceleration``, ``num_low_frequency``
knee multicoil         (S, C, 640, 368)             ``reconstruction_rss`` (S,320,320)  320 x 320 (encoded 640 x 368)
knee singlecoil        (S, 640, 368)                ``reconstruction_esc`` (S,320,320)  320 x 320
=====================  ===========================  =================================  ===========================

H = readout (frequency encode), W = phase encode. The readout is stored 2x oversampled; the reader removes it
(:func:`~mrdiff_cli.io.base.crop_readout` to the recon matrix's x) so ``read_slices`` returns (n, C, 320, W). The
output images are the centre crop of that image to the recon matrix (``info.image_shape``; knee: 320 x 368 →
320 x 320, fastMRI's own crop). The recon matrix comes from the ISMRMRD header (schema-valid or read leniently),
else from the reference's shape. A ``mask`` (W,) dataset, or zero phase-encode lines in the k-space, mark an
already undersampled file. Geometry: fastMRI stores no orientation → the documented default affine with the voxel
size from the header's encoded FOV / matrix (1 mm and a note when there is none).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import InputError
from ..types import HeaderFacts, ReferenceInfo, Sampling, Scan, ScanInfo
from .atomic import atomic_path
from .base import (
    ScanReader,
    check_dims,
    check_finite,
    column_mask,
    crop_image,
    crop_readout,
    default_geometry,
    mask_from_nearest_slice,
)
from .header import acquisition_parameters, header_warning, parse_header

REFERENCE_KEYS = ("reconstruction_rss", "reconstruction_esc")
ATTR_KEYS = ("acquisition", "max", "norm", "patient_id", "simulated", "seed", "snr_db", "coils", "source",
             "acceleration", "num_low_frequency")


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


def _attr(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)


def plan_matrix(stored_hw: tuple[int, int], header: HeaderFacts, ref_hw: tuple[int, int] | None
                ) -> tuple[int, tuple[int, int], str | None]:
    """(readout rows kept, output image matrix, where the recon matrix came from) for stored k-space (H, W).

    The recon matrix is the header's reconSpace (x, y), else the reference's (h, w). The readout is cropped to
    recon x when that is smaller (oversampling removal); the image is then centre-cropped to (recon x, recon y),
    never beyond the k-space matrix.
    """
    h, w = stored_hw
    if header.recon_matrix and header.recon_matrix[0] > 0 and header.recon_matrix[1] > 0:
        rx, ry, src = int(header.recon_matrix[0]), int(header.recon_matrix[1]), "header"
    elif ref_hw is not None:
        (rx, ry), src = ref_hw, "reference"
    else:
        return h, (h, w), None
    h_out = min(rx, h)
    return h_out, (h_out, min(ry, w)), src


class FastMRIReader(ScanReader):
    """Lazy reader of a fastMRI HDF5 file (see module docstring)."""

    format = "fastmri"

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._ref_key: str | None = None
        self._f = _open_h5(self.path)
        try:
            self.info = self._describe()
        except BaseException:
            self._f.close()
            raise

    # ----------------------------------------------------------------------------------------------
    def _kspace_dataset(self):
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
        return ds

    def _describe(self) -> ScanInfo:
        f, p = self._f, self.path
        self._ds = self._kspace_dataset()
        self._single = self._ds.ndim == 3
        s, h, w = (int(self._ds.shape[i]) for i in (0, -2, -1))
        c = 1 if self._single else int(self._ds.shape[1])
        try:
            attrs = {k: _attr(f.attrs[k]) for k in ATTR_KEYS if k in f.attrs}
        except ValueError:  # an array where one value belongs
            raise InputError(f"{p}: file attributes {[k for k in ATTR_KEYS if k in f.attrs]} are not single values") from None
        xml = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
        header = parse_header(xml) if xml is not None else HeaderFacts()
        notes = [n for n in (header_warning(header, p),) if n]
        ref = self._reference_info(s, attrs)
        self._h_out, image_shape, recon_src = plan_matrix((h, w), header, ref.shape[1:] if ref else None)
        if recon_src == "reference" and self._h_out < h:
            notes.append(f"{p}: no recon matrix in the header; the readout is cropped to the reference's "
                         f"{image_shape[0]} rows")
        vs = header.voxel_size("encoded")
        if vs is None:
            notes.append(f"{p}: no field of view in the file; voxel size 1 mm (default geometry)")
        geometry = default_geometry(vs, (*image_shape, s), source="header FOV/matrix" if vs else "default (1 mm)")
        return ScanInfo(
            path=str(p), format="fastmri", shape=(s, c, self._h_out, w), image_shape=image_shape,
            stored_shape=(s, c, h, w), readout_oversampling=h / self._h_out, sampling=self._sampling(h, w, attrs),
            geometry=geometry, header=header, reference=ref, single_coil=self._single,
            facts={"attributes": attrs, "dtype": str(self._ds.dtype), "recon_matrix_from": recon_src,
                   "acquisition_parameters": acquisition_parameters(xml)}, notes=notes,
        )

    def _reference_info(self, s: int, attrs: dict[str, Any]) -> ReferenceInfo | None:
        import h5py

        order = REFERENCE_KEYS[::-1] if self._single else REFERENCE_KEYS  # single-coil: ESC is the reference
        name = next((k for k in order if isinstance(self._f.get(k), h5py.Dataset)), None)
        if name is None:
            return None
        r = self._f[name]
        if r.ndim != 3 or int(r.shape[0]) != s:
            raise InputError(f"{self.path}: '{name}' has shape {r.shape}; expected ({s}, H, W)")
        self._ref_key = name
        if attrs.get("simulated"):
            desc, noisy = f"noise-free RSS of the simulated coil images ({name})", False
        elif name == "reconstruction_esc":
            desc, noisy = "emulated single-coil reconstruction of the fully sampled data (noisy; reconstruction_esc)", True
        else:
            desc, noisy = "fully sampled RSS (noisy; the file's reconstruction_rss)", True
        return ReferenceInfo(name=name, shape=cast(tuple[int, int, int], tuple(int(x) for x in r.shape)), description=desc, noisy=noisy)

    def _sampling(self, h: int, w: int, attrs: dict[str, Any]) -> Sampling:
        stated_r = attrs.get("acceleration")
        stated_acs = attrs.get("num_low_frequency")
        try:
            stated: dict[str, Any] = dict(stated_acceleration=float(stated_r) if stated_r is not None else None,
                                          stated_acs=int(stated_acs) if stated_acs is not None else None)
        except (TypeError, ValueError):
            raise InputError(f"{self.path}: attributes acceleration={stated_r!r} / num_low_frequency={stated_acs!r} "
                             "are not numbers") from None
        if "mask" in self._f:
            return Sampling(mask=self._mask_dataset(h, w), source="mask dataset", **stated)
        # no mask dataset: zero phase-encode lines mark unsampled lines
        m = mask_from_nearest_slice(self._read_raw, self.n_slices_stored, self.path)
        if float(m.mean()) >= 1.0:
            return Sampling(mask=None, **stated)
        return Sampling(mask=self._to_output_rows(m, "zero lines in k-space"), source="zero lines in k-space", **stated)

    @property
    def n_slices_stored(self) -> int:
        return int(self._ds.shape[0])

    def _mask_dataset(self, h: int, w: int) -> np.ndarray:
        p = self.path
        m = np.asarray(self._f["mask"][()])
        if m.dtype.kind not in "biuf":
            raise InputError(f"{p}: 'mask' has dtype {m.dtype}; expected real or boolean values")
        if not np.all(np.isfinite(m)):
            raise InputError(f"{p}: mask contains NaN or Inf")
        if m.ndim == 1:
            if m.shape[0] != w:
                raise InputError(f"{p}: mask length {m.shape[0]} does not match the k-space width {w} "
                                 f"(k-space {tuple(self._ds.shape)})")
            m = np.broadcast_to(m[None, :], (h, w))
        elif m.ndim != 2 or m.shape != (h, w):
            raise InputError(f"{p}: mask shape {m.shape} does not match k-space (H, W) = ({h}, {w}) or (W,)")
        return self._to_output_rows(m > 0, "mask")

    def _to_output_rows(self, m: np.ndarray, what: str) -> np.ndarray:
        """An (H_stored, W) pattern on the (H_out, W) grid of the k-space this reader returns."""
        if m.shape[0] == self._h_out:
            return np.ascontiguousarray(m, dtype=np.float32)
        cols = column_mask(m)
        if cols is None:
            raise InputError(f"{self.path}: a 2D {what} on the oversampled readout ({m.shape[0]} rows) cannot be "
                             f"carried to the {self._h_out}-row recon grid; only phase-encode (column) masks can")
        return np.ascontiguousarray(np.broadcast_to(cols[None, :], (self._h_out, m.shape[1])), dtype=np.float32)

    # ----------------------------------------------------------------------------------------------
    def _read_raw(self, start: int, stop: int) -> np.ndarray:
        blk = np.asarray(self._ds[start:stop])
        if self._single:
            blk = blk[:, None]
        return blk.astype(np.complex64, copy=False)

    def read_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        start, stop = self.check_range(start, stop)
        blk = self._read_raw(start, stop)
        check_finite(blk, self.path, start)
        if blk.shape[-2] != self._h_out:
            blk = crop_readout(blk, self._h_out)
        return blk

    def reference_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        if self.info.reference is None:
            return None
        start, stop = self.check_range(start, stop)
        return np.asarray(self._f[self._ref_key][start:stop], dtype=np.float32)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._f.close()


def open_scan(path: str | os.PathLike) -> FastMRIReader:
    """Open a fastMRI HDF5 file lazily (context manager)."""
    return FastMRIReader(path)


def load_scan(path: str | os.PathLike) -> Scan:
    """Read a whole fastMRI file into a Scan."""
    with open_scan(path) as r:
        return r.load()


def crop_to_recon(image: np.ndarray, recon_shape: tuple[int, int]) -> np.ndarray:
    """fastMRI's reconstruction crop: centre crop the last two image axes to ``recon_shape``."""
    return crop_image(image, recon_shape)


# ---------------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------------


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
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
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
