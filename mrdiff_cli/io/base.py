"""The reader interface shared by every raw-data format, plus small numpy helpers readers share.

A ``ScanReader`` is opened once (cheap: headers, mask, geometry) and then read slice by slice;
``load()`` reads everything into a :class:`~mrdiff_cli.types.Scan`. No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from ..types import Geometry, Scan, centered_affine


class ScanReader:
    """Lazy view of one raw k-space file. Use as a context manager.

    Attributes every reader sets in ``__init__``:
      path, format ('fastmri' | 'ismrmrd'), shape (slices, coils, H, W), mask ((H, W) float32 or None when
      fully sampled), geometry (Geometry), metadata (dict), has_reference (bool).
    """

    format: str = ""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.shape: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.mask: np.ndarray | None = None
        self.geometry = Geometry()
        self.metadata: dict[str, Any] = {}
        self.has_reference = False

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "ScanReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    # -- shape helpers -----------------------------------------------------------------------------
    @property
    def n_slices(self) -> int:
        return int(self.shape[0])

    @property
    def n_coils(self) -> int:
        return int(self.shape[1])

    @property
    def undersampled(self) -> bool:
        return self.mask is not None and float(np.mean(self.mask)) < 1.0

    def _check_range(self, start: int, stop: int | None) -> tuple[int, int]:
        n = self.n_slices
        stop = n if stop is None else stop
        if start < 0:
            start += n
        if stop < 0:
            stop += n
        if not (0 <= start <= stop <= n):
            raise InputError(f"{self.path}: slice range {start}:{stop} outside 0:{n}")
        return int(start), int(stop)

    # -- data ----------------------------------------------------------------------------------------
    def read_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """k-space of slices [start, stop) as (n, coils, H, W) complex64 (validated finite)."""
        raise NotImplementedError

    def reference_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Reference magnitude images of slices [start, stop) as (n, H', W') float32, or None."""
        return None

    def iter_slices(self, batch: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, kspace block) in batches of ``batch`` slices."""
        for s in range(0, self.n_slices, max(1, int(batch))):
            yield s, self.read_slices(s, min(s + batch, self.n_slices))

    def load(self) -> Scan:
        """Read every slice into a Scan."""
        k = self.read_slices(0, self.n_slices)
        ref = self.reference_slices(0, self.n_slices) if self.has_reference else None
        return Scan(
            kspace=k,
            mask=None if self.mask is None else self.mask.copy(),
            geometry=self.geometry,
            reference=ref,
            metadata=dict(self.metadata),
            source=str(self.path),
        )


# ---------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------


def check_finite(block: np.ndarray, path: Path | str, first_slice: int = 0) -> None:
    """InputError naming the first slice holding NaN/Inf."""
    bad = ~np.isfinite(block)
    if bad.any():
        idx = np.argwhere(bad.reshape(block.shape[0], -1).any(axis=1))
        s = first_slice + int(idx[0, 0]) if idx.size else first_slice
        raise InputError(f"{path}: k-space contains NaN or Inf values (slice {s})")


def check_dims(shape: tuple[int, ...], path: Path | str, what: str = "k-space") -> None:
    if any(int(d) == 0 for d in shape):
        raise InputError(f"{path}: {what} has a zero-size dimension, shape {tuple(int(d) for d in shape)}")


# ---------------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------------


def _mask_from_kspace_fallback(k: np.ndarray) -> np.ndarray:
    """(H, W) float32: 1 where any coil (and any leading index) holds a non-zero sample."""
    k = np.asarray(k)
    nz = k != 0
    if nz.ndim > 2:
        nz = nz.reshape(-1, *nz.shape[-2:]).any(axis=0)
    return nz.astype(np.float32)


def mask_from_kspace(k: np.ndarray) -> np.ndarray:
    """Sampling mask (H, W) float32 of a (…, H, W) k-space block: sampled = not exactly zero.

    Uses ``mrdiff_cli.ops.masks.mask_from_kspace`` when it is available (same contract), else a local
    equivalent.
    """
    k = np.asarray(k)
    hw = k.shape[-2:]
    try:
        from ..ops.masks import mask_from_kspace as _ops_mask  # type: ignore[attr-defined]

        m = _ops_mask(k)
        try:  # torch tensor → numpy without importing torch here
            m = m.detach().cpu().numpy()  # type: ignore[union-attr]
        except AttributeError:
            pass
        m = np.asarray(m, dtype=np.float32)
        if m.shape == hw:
            return m
    except Exception:  # module absent or contract differs: use the local definition
        pass
    return _mask_from_kspace_fallback(k)


def column_mask(mask: np.ndarray) -> np.ndarray | None:
    """The (W,) column pattern of a (H, W) mask when every column is all-0 or all-1, else None."""
    m = np.asarray(mask) > 0
    if m.ndim == 1:
        return m.astype(np.float32)
    cols = m.any(axis=0)
    if np.array_equal(m, np.broadcast_to(cols, m.shape)):
        return cols.astype(np.float32)
    return None


def center_block_width(cols: np.ndarray) -> int:
    """Width of the contiguous run of sampled columns around the centre (W//2); 0 if the centre is unsampled."""
    c = np.asarray(cols) > 0
    w = c.shape[0]
    mid = w // 2
    if not c[mid]:
        return 0
    lo = mid
    while lo - 1 >= 0 and c[lo - 1]:
        lo -= 1
    hi = mid
    while hi + 1 < w and c[hi + 1]:
        hi += 1
    return hi - lo + 1


def sampling_summary(mask: np.ndarray | None, width: int) -> dict[str, Any]:
    """Acceleration / sampled lines / ACS width of a (H, W) mask (None = fully sampled)."""
    if mask is None:
        return {"fully_sampled": True, "acceleration": 1.0, "sampled_lines": int(width), "acs_lines": int(width),
                "mask_type": "none"}
    m = np.asarray(mask, dtype=np.float32)
    frac = float(m.mean()) if m.size else 0.0
    cols = column_mask(m)
    out: dict[str, Any] = {
        "fully_sampled": bool(frac >= 1.0),
        "acceleration": float(1.0 / frac) if frac > 0 else float("inf"),
        "sampled_fraction": frac,
    }
    if cols is not None:
        out.update(mask_type="1d", sampled_lines=int(cols.sum()), acs_lines=center_block_width(cols))
    else:
        out.update(mask_type="2d")
    return out


# ---------------------------------------------------------------------------------------------------
# numpy k-space helpers (centered orthonormal, same convention as ops.fft)
# ---------------------------------------------------------------------------------------------------


def ifftc(x: np.ndarray, axis: int) -> np.ndarray:
    x = np.fft.ifftshift(x, axes=axis)
    x = np.fft.ifft(x, axis=axis, norm="ortho")
    return np.fft.fftshift(x, axes=axis)


def fftc(x: np.ndarray, axis: int) -> np.ndarray:
    x = np.fft.ifftshift(x, axes=axis)
    x = np.fft.fft(x, axis=axis, norm="ortho")
    return np.fft.fftshift(x, axes=axis)


def center_crop(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Centre crop along one axis, keeping index n//2 at index size//2 (the FFT-centre convention)."""
    n = x.shape[axis]
    if size > n:
        raise ValueError(f"cannot crop axis of length {n} to {size}")
    start = n // 2 - size // 2
    sl = [slice(None)] * x.ndim
    sl[axis] = slice(start, start + size)
    return x[tuple(sl)]


def crop_readout(kspace: np.ndarray, n_out: int, axis: int = -2) -> np.ndarray:
    """Remove readout oversampling: IFFT along the readout, centre-crop to ``n_out``, FFT back.

    ``ifft2c`` of the result equals the centre ``n_out`` rows of ``ifft2c`` of the input (same image
    intensities; the field of view along the readout shrinks by n/n_out). Returns complex64.
    """
    k = np.asarray(kspace)
    if k.shape[axis] == n_out:
        return k.astype(np.complex64, copy=False)
    img = ifftc(k, axis)
    img = center_crop(img, n_out, axis)
    return fftc(img, axis).astype(np.complex64)


def crop_image(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre crop the last two axes of an image to ``shape`` (fastMRI's reconstruction crop)."""
    out = center_crop(np.asarray(img), int(shape[0]), -2)
    return center_crop(out, int(shape[1]), -1)


# ---------------------------------------------------------------------------------------------------
# ISMRMRD XML header (shared by the fastMRI and ISMRMRD readers)
# ---------------------------------------------------------------------------------------------------


def parse_ismrmrd_header(xml: bytes | str, path: Path | str) -> dict[str, Any]:
    """Encoded/recon matrix and FOV (plus a few limits) from an ISMRMRD XML header.

    Returns {} when the document cannot be parsed (the header is optional for fastMRI files).
    """
    try:
        import ismrmrd.xsd

        if isinstance(xml, (bytes, bytearray, np.bytes_)):
            xml = bytes(xml).decode("utf-8", errors="replace")
        hdr = ismrmrd.xsd.CreateFromDocument(str(xml))
        enc = hdr.encoding[0]
    except Exception:
        return {}

    def _trip(obj: Any) -> list[float] | None:
        if obj is None:
            return None
        return [float(obj.x), float(obj.y), float(obj.z)]

    out: dict[str, Any] = {
        "encoded_matrix": [int(v) for v in _trip(enc.encodedSpace.matrixSize) or []] or None,
        "encoded_fov_mm": _trip(enc.encodedSpace.fieldOfView_mm),
        "recon_matrix": [int(v) for v in _trip(enc.reconSpace.matrixSize) or []] or None,
        "recon_fov_mm": _trip(enc.reconSpace.fieldOfView_mm),
        "trajectory": getattr(enc.trajectory, "value", str(enc.trajectory)),
        "n_encodings": len(hdr.encoding),
    }
    lim = enc.encodingLimits
    if lim is not None:
        for name in ("kspace_encoding_step_1", "kspace_encoding_step_2", "slice", "repetition", "average"):
            v = getattr(lim, name, None)
            if v is not None:
                out[f"limit_{name}"] = [int(v.minimum), int(v.maximum), int(v.center)]
    pi = enc.parallelImaging
    if pi is not None and pi.accelerationFactor is not None:
        out["header_acceleration"] = int(pi.accelerationFactor.kspace_encoding_step_1)
        cm = getattr(pi, "calibrationMode", None)
        if cm is not None:
            out["calibration_mode"] = getattr(cm, "value", str(cm))
    asi = hdr.acquisitionSystemInformation
    if asi is not None and asi.receiverChannels is not None:
        out["receiver_channels"] = int(asi.receiverChannels)
    return out


def voxel_size_from_header(info: dict[str, Any], space: str = "encoded") -> tuple[float, float, float] | None:
    """(dx, dy, dz) = FOV / matrix of the encoded (or recon) space; None when not in the header."""
    fov = info.get(f"{space}_fov_mm")
    mat = info.get(f"{space}_matrix")
    if not fov or not mat:
        return None
    vs = []
    for f, m in zip(fov, mat):
        vs.append(float(f) / float(m) if m and f and m > 0 and f > 0 else 1.0)
    return (vs[0], vs[1], vs[2])


def default_geometry(voxel_size: tuple[float, float, float] | None, shape_hws: tuple[int, int, int],
                     source: str) -> Geometry:
    """Geometry with the documented default affine (diagonal, volume centre at the origin)."""
    vs = voxel_size or (1.0, 1.0, 1.0)
    return Geometry(voxel_size=tuple(float(v) for v in vs), affine=centered_affine(vs, shape_hws),
                    known=False, source=source)


LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine_from_directions(read_dir: np.ndarray, phase_dir: np.ndarray, slice_vec: np.ndarray,
                           centre_lps: np.ndarray, voxel_size: tuple[float, float, float],
                           shape_hw: tuple[int, int]) -> np.ndarray:
    """RAS affine for (H, W, slices) from scanner (LPS) direction cosines.

    ``centre_lps`` is the centre of the first slice (ISMRMRD ``position``), taken as the geometric centre
    of the (H, W) grid, i.e. voxel ((H-1)/2, (W-1)/2). ``slice_vec`` is the full step between slices (mm).
    """
    aff = np.eye(4)
    aff[:3, 0] = np.asarray(read_dir, float) * voxel_size[0]
    aff[:3, 1] = np.asarray(phase_dir, float) * voxel_size[1]
    aff[:3, 2] = np.asarray(slice_vec, float)
    h, w = shape_hw
    aff[:3, 3] = np.asarray(centre_lps, float) - aff[:3, 0] * (h - 1) / 2.0 - aff[:3, 1] * (w - 1) / 2.0
    return LPS_TO_RAS @ aff
