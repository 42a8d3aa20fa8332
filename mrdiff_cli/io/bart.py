"""BART ``.cfl`` / ``.hdr`` k-space (the Berkeley Advanced Reconstruction Toolbox's file pair): reader and writer.

Format (BART ``misc/io.c``):

* ``NAME.hdr`` is text. A line ``# Dimensions`` is followed by the dimensions, whitespace-separated integers (BART
  writes 16; fewer means the rest are 1, more are allowed only when they are 1). Other ``# Keyword`` sections
  (``# Command``, ``# Files``, ``# Creator``) and lines outside sections are ignored; only the first 4096 bytes are
  read, and exactly one ``# Dimensions`` section is allowed.
* ``NAME.cfl`` is the raw data: complex64 little-endian (float32 real, float32 imaginary), **column-major**
  (Fortran order: dimension 0 varies fastest), nothing else; its size is 8 bytes x the product of the dimensions.

The name may be given as ``NAME``, ``NAME.cfl`` or ``NAME.hdr``. Dimensions mrdiff reads (BART's names):
0 ``READ_DIM`` → H (readout), 1 ``PHS1_DIM`` → W (phase encode), 3 ``COIL_DIM`` → coils, 13 ``SLICE_DIM`` →
slices (several files, one per slice, are several inputs). Every other dimension must be 1: in particular
2 ``PHS2_DIM`` (partitions) > 1 is 3D k-space and refused, as for ISMRMRD; ``bart fft -u -i 4`` then
``bart transpose 2 13`` turn it into a stack of 2D slices (valid only when k_z is fully sampled).

BART files carry no geometry, header or readout-oversampling information: the image matrix is the k-space matrix,
the voxel size is 1 mm and the orientation is the documented default (a note says so). The k-space centre is at
index n//2, as BART's centred FFT puts it. Zero phase-encode lines (or points) in the middle slice (or the nearest
slice that is not all zeros) mark an already undersampled scan, as for fastMRI files without a ``mask`` dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..types import HeaderFacts, Sampling, ScanInfo
from .atomic import atomic_path
from .base import ScanReader, check_dims, check_finite, default_geometry, mask_from_nearest_slice

N_DIMS = 16
READ_DIM, PHS1_DIM, PHS2_DIM, COIL_DIM, SLICE_DIM = 0, 1, 2, 3, 13
DIM_NAMES = ("READ", "PHS1", "PHS2", "COIL", "MAPS", "TE", "COEFF", "COEFF2", "ITER", "CSHIFT", "TIME", "TIME2",
             "LEVEL", "SLICE", "AVG", "BATCH")
_HEADER_BYTES = 4096


def bart_pair(path: str | os.PathLike) -> tuple[Path, Path]:
    """(``NAME.hdr``, ``NAME.cfl``) for ``NAME``, ``NAME.cfl`` or ``NAME.hdr``."""
    p = Path(path)
    base = p.with_suffix("") if p.suffix.lower() in (".cfl", ".hdr") else p
    return base.with_name(base.name + ".hdr"), base.with_name(base.name + ".cfl")


def is_bart(path: str | os.PathLike) -> bool:
    """True when ``path`` names a BART pair: a text ``.hdr`` holding a ``# Dimensions`` line, and its ``.cfl``."""
    hdr, cfl = bart_pair(path)
    if not (hdr.is_file() and cfl.is_file()):
        return False
    try:
        with open(hdr, "rb") as fh:
            head = fh.read(_HEADER_BYTES)
    except OSError:
        return False
    return any(_keyword(line) == "Dimensions" for line in head.split(b"\n"))


def _keyword(line: bytes) -> str | None:
    """The keyword of a ``# Keyword`` line (None for other lines)."""
    s = line.strip()
    if not s.startswith(b"#"):
        return None
    words = s[1:].split()
    return words[0].decode("ascii", errors="replace") if words else ""


def parse_header(text: bytes | str, where: str = "BART header") -> tuple[int, ...]:
    """The 16 dimensions of a BART ``.hdr`` (see the module docstring); InputError when it is malformed."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    lines = raw[:_HEADER_BYTES].split(b"\n")
    found: list[int] | None = None
    i = 0
    while i < len(lines):
        if _keyword(lines[i]) != "Dimensions":
            i += 1
            continue
        if found is not None:
            raise InputError(f"{where}: more than one '# Dimensions' section")
        found = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(b"#"):
            for tok in lines[i].split():
                try:
                    found.append(int(tok))
                except ValueError:
                    raise InputError(f"{where}: dimension {tok.decode(errors='replace')!r} is not an integer") from None
            i += 1
    if found is None:
        raise InputError(f"{where}: no '# Dimensions' line (not a BART header)")
    if not found:
        raise InputError(f"{where}: '# Dimensions' lists no dimensions")
    if any(d < 0 for d in found):
        raise InputError(f"{where}: negative dimension in {found}")
    if any(d != 1 for d in found[N_DIMS:]):
        raise InputError(f"{where}: {len(found)} dimensions; BART allows {N_DIMS} (extra ones must be 1)")
    dims = (found + [1] * N_DIMS)[:N_DIMS]
    return tuple(int(d) for d in dims)


def read_dims(path: str | os.PathLike) -> tuple[int, ...]:
    """The dimensions of a BART pair, from its ``.hdr``."""
    hdr, _ = bart_pair(path)
    try:
        with open(hdr, "rb") as fh:
            text = fh.read(_HEADER_BYTES)
    except OSError as exc:
        raise InputError(f"{hdr}: cannot read BART header ({exc.strerror or exc})") from None
    return parse_header(text, str(hdr))


def _check_supported(dims: tuple[int, ...], path: Path) -> None:
    for d, n in enumerate(dims):
        if n > 1 and d not in (READ_DIM, PHS1_DIM, COIL_DIM, SLICE_DIM):
            hint = (" (3D k-space; mrdiff reads 2D slices: 'bart fft -u -i 4' then 'bart transpose 2 13' make a "
                    "slice stack when k_z is fully sampled)") if d == PHS2_DIM else ""
            raise InputError(f"{path}: BART dimension {d} ({DIM_NAMES[d]}) has size {n}; mrdiff reads readout (0), "
                             f"phase encode (1), coils (3) and slices (13) only{hint}")


class BartReader(ScanReader):
    """Lazy reader of a BART ``.cfl``/``.hdr`` pair (memory-mapped; see the module docstring)."""

    format = "bart"

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        hdr, cfl = bart_pair(path)
        if not hdr.is_file() or not cfl.is_file():
            missing = hdr if not hdr.is_file() else cfl
            raise InputError(f"{self.path}: BART file pair incomplete, '{missing}' not found")
        self._cfl = cfl
        self._dims = read_dims(path)
        check_dims(self._dims, self.path, "BART k-space")
        _check_supported(self._dims, self.path)
        need = 8 * int(np.prod(self._dims, dtype=np.int64))
        have = cfl.stat().st_size
        if have != need:
            raise InputError(f"{cfl}: holds {have} bytes; the header's dimensions {list(self._dims)} need {need} "
                             "(complex64)")
        try:
            self._mm: np.memmap | None = np.memmap(cfl, dtype="<c8", mode="r", shape=self._dims, order="F")
        except (OSError, ValueError) as exc:
            raise InputError(f"{cfl}: cannot map BART data ({exc})") from None
        self.info = self._describe()

    def _describe(self) -> ScanInfo:
        h, w, c, s = (self._dims[d] for d in (READ_DIM, PHS1_DIM, COIL_DIM, SLICE_DIM))
        note = (f"{self.path}: BART files carry no geometry; voxel size 1 mm, default orientation, image matrix = "
                f"k-space matrix {h} x {w} (no readout oversampling removed)")
        return ScanInfo(
            path=str(self.path), format="bart", shape=(s, c, h, w), image_shape=(h, w), stored_shape=(s, c, h, w),
            readout_oversampling=1.0, sampling=self._sampling(s), geometry=default_geometry(
                None, (h, w, s), source="default (BART: no geometry, 1 mm)"),
            header=HeaderFacts(parsed_by="absent"), single_coil=c == 1,
            facts={"bart_dims": list(self._dims), "cfl": str(self._cfl)}, notes=[note],
        )

    def _sampling(self, s: int) -> Sampling:
        m = mask_from_nearest_slice(self._read_raw, s, self.path)  # as for fastMRI files
        if float(m.mean()) >= 1.0:
            return Sampling(mask=None)
        return Sampling(mask=np.ascontiguousarray(m, dtype=np.float32), source="zero lines in k-space")

    def _read_raw(self, start: int, stop: int) -> np.ndarray:
        idx: list[Any] = [0] * N_DIMS
        for d in (READ_DIM, PHS1_DIM, COIL_DIM):
            idx[d] = slice(None)
        idx[SLICE_DIM] = slice(start, stop)
        assert self._mm is not None, "read after close()"
        blk = self._mm[tuple(idx)]  # (H, W, C, n)
        return np.array(np.transpose(blk, (3, 2, 0, 1)), dtype=np.complex64, order="C", copy=True)  # off the map

    def read_slices(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        start, stop = self.check_range(start, stop)
        blk = self._read_raw(start, stop)
        check_finite(blk, self.path, start)
        return blk

    def close(self) -> None:
        self._mm = None  # reads return copies, so dropping the map releases the file


def open_scan(path: str | os.PathLike) -> BartReader:
    """Open a BART ``.cfl``/``.hdr`` pair lazily (context manager)."""
    return BartReader(path)


def write_bart(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``array`` (up to 16 dimensions, BART's order) as a BART pair, each file atomically.

    → (``NAME.hdr``, ``NAME.cfl``). Data are complex64 little-endian in Fortran order.
    """
    a = np.asarray(array)
    if a.ndim > N_DIMS:
        raise ValueError(f"BART arrays have at most {N_DIMS} dimensions, got {a.ndim}")
    dims = list(a.shape) + [1] * (N_DIMS - a.ndim)
    hdr, cfl = bart_pair(path)
    with atomic_path(cfl, overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(np.asarray(a, dtype="<c8").tobytes(order="F"))
    with atomic_path(hdr, overwrite) as tmp:
        tmp.write_text("# Dimensions\n" + " ".join(str(int(d)) for d in dims) + " \n", encoding="ascii")
    return hdr, cfl
