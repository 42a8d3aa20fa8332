"""The reader interface shared by every raw-data format, plus small numpy helpers readers share.

A ``ScanReader`` is opened once (cheap: headers, mask, geometry → ``reader.info``) and then read slice by slice;
``load()`` reads everything into a :class:`~mrdiff_cli.types.Scan`. torch is imported only to crop the readout
(the one FFT of the package, ``ops.fft``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..types import Geometry, Scan, ScanInfo, centered_affine, vox3


class ScanReader:
    """Lazy view of one raw k-space file. Use as a context manager.

    Every reader sets ``self.info`` (:class:`~mrdiff_cli.types.ScanInfo`) in ``__init__``: shapes, sampling, geometry,
    header facts, reference, notes. ``read_slices`` returns k-space of shape ``info.shape`` (readout oversampling
    removed), so callers never need to know the format.
    """

    format: str = ""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.info: ScanInfo

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> ScanReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    # -- what the file holds ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.info.shape

    @property
    def mask(self) -> np.ndarray | None:
        return self.info.sampling.mask

    @property
    def geometry(self) -> Geometry:
        return self.info.geometry

    @property
    def n_slices(self) -> int:
        return int(self.info.shape[0])

    @property
    def n_coils(self) -> int:
        return int(self.info.shape[1])

    @property
    def undersampled(self) -> bool:
        return self.info.undersampled

    @property
    def has_reference(self) -> bool:
        return self.info.reference is not None

    def check_range(self, start: int, stop: int | None) -> tuple[int, int]:
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
        """Reference magnitude images of slices [start, stop) as (n, h, w) float32, or None."""
        return None

    def iter_slices(self, batch: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, kspace block) in batches of ``batch`` slices."""
        for s in range(0, self.n_slices, max(1, int(batch))):
            yield s, self.read_slices(s, min(s + batch, self.n_slices))

    def load(self) -> Scan:
        """Read every slice into a Scan."""
        k = self.read_slices(0, self.n_slices)
        ref = self.reference_slices(0, self.n_slices) if self.has_reference else None
        return Scan(info=self.info, kspace=k, reference=ref)


# ---------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------


class NonFiniteError(InputError):
    """k-space holds NaN/Inf: ``count`` values in ``slices`` (of the block that was read)."""

    def __init__(self, message: str, count: int = 0, slices: list[int] | None = None):
        super().__init__(message)
        self.count = count
        self.slices = slices or []


def check_finite(block: np.ndarray, path: Path | str, first_slice: int = 0) -> None:
    """NonFiniteError (an InputError) naming the first slice holding NaN/Inf."""
    bad = ~np.isfinite(block)
    if bad.any():
        per_slice = bad.reshape(block.shape[0], -1).sum(axis=1)
        slices = [first_slice + int(i) for i in np.flatnonzero(per_slice)]
        raise NonFiniteError(f"{path}: k-space contains NaN or Inf values (slice {slices[0]})",
                             count=int(per_slice.sum()), slices=slices)


def as_real_volume(volume: np.ndarray, writer: str, dtype: Any = np.float32) -> np.ndarray:
    """A real (magnitude) volume (slices, H, W) for a writer (a 2D image becomes one slice) in ``dtype``; complex
    data or another rank is a ValueError naming ``writer`` (a bug of the caller, not of the user's input)."""
    v = np.asarray(volume)
    if np.iscomplexobj(v):
        raise ValueError(f"{writer} expects a real (magnitude) volume, got complex data")
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3:
        raise ValueError(f"volume must be (slices, H, W), got shape {v.shape}")
    return v.astype(dtype, copy=False)


def mask_from_nearest_slice(read_raw: Any, n_slices: int, path: Path | str) -> np.ndarray:
    """The sampling pattern read from zeros in k-space (``ops.masks.mask_from_kspace``) of the middle slice, or of
    the nearest slice that is not all zeros (an empty slice is refused only when it is reconstructed, so --slices
    can skip it). ``read_raw(start, stop)`` → (n, C, H, W)."""
    from ..ops.masks import mask_from_kspace

    mid = n_slices // 2
    for s in sorted(range(n_slices), key=lambda i: (abs(i - mid), i)):
        m = mask_from_kspace(read_raw(s, s + 1))
        if float(m.mean()) > 0.0:
            return m
    raise InputError(f"{path}: k-space is all zeros (every slice)")


def check_dims(shape: tuple[int, ...], path: Path | str, what: str = "k-space") -> None:
    if any(int(d) == 0 for d in shape):
        raise InputError(f"{path}: {what} has a zero-size dimension, shape {tuple(int(d) for d in shape)}")


# ---------------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------------


def column_mask(mask: np.ndarray) -> np.ndarray | None:
    """The (W,) column pattern of a (H, W) mask when every column is all-0 or all-1, else None."""
    m = np.asarray(mask) > 0
    if m.ndim == 1:
        return m.astype(np.float32)
    cols = np.asarray(m.any(axis=0))
    if np.array_equal(m, np.broadcast_to(cols, m.shape)):
        return cols.astype(np.float32)
    return None


def sampling_summary(mask: np.ndarray | None, width: int) -> dict[str, Any]:
    """Acceleration / sampled lines / ACS width of a (H, W) mask (None = fully sampled), for ``mrdiff info``."""
    from ..ops.masks import acs_shape

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
        out.update(mask_type="1d", sampled_lines=int(cols.sum()), acs_lines=int(acs_shape(m)[1]))
    else:
        out.update(mask_type="2d", acs_square=int(min(acs_shape(m))))
    return out


# ---------------------------------------------------------------------------------------------------
# k-space / image crops (centred FFT convention: index n//2 is the centre)
# ---------------------------------------------------------------------------------------------------


def center_crop(x: Any, size: int, axis: int) -> Any:
    """Centre crop (numpy array or tensor) along one axis, keeping index n//2 at index size//2."""
    n = x.shape[axis]
    if size > n:
        raise ValueError(f"cannot crop axis of length {n} to {size}")
    start = n // 2 - size // 2
    sl = [slice(None)] * x.ndim
    sl[axis] = slice(start, start + size)
    return x[tuple(sl)]


def crop_readout(kspace: np.ndarray, n_out: int) -> np.ndarray:
    """Remove readout oversampling of (…, H, W) k-space: to the image (``ops.fft``), centre crop the H axis to
    ``n_out`` rows, back to k-space. The image of the result is the centre ``n_out`` rows of the input's image (same
    intensities; the readout field of view shrinks by H / n_out). Returns complex64."""
    k = np.asarray(kspace)
    if k.shape[-2] == n_out:
        return k.astype(np.complex64, copy=False)
    import torch

    from ..ops.fft import fft2c, ifft2c

    img = ifft2c(torch.from_numpy(np.ascontiguousarray(k, dtype=np.complex64)))
    img = center_crop(img, int(n_out), -2).contiguous()
    return fft2c(img).numpy()


def crop_image(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre crop the last two axes of an image to ``shape`` (fastMRI's reconstruction crop)."""
    out = center_crop(np.asarray(img), int(shape[0]), -2)
    return center_crop(out, int(shape[1]), -1)


# ---------------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------------


def default_geometry(voxel_size: tuple[float, float, float] | None, shape_hws: tuple[int, int, int],
                     source: str) -> Geometry:
    """Geometry with the documented default affine (diagonal, volume centre at the origin)."""
    vs = voxel_size or (1.0, 1.0, 1.0)
    return Geometry(voxel_size=vox3(float(v) for v in vs), affine=centered_affine(vs, shape_hws),
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
