"""Small shared dataclasses: Geometry, header facts, sampling, ScanInfo / Scan. No torch import here (keeps the CLI
start fast)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np


def vox3(v: Iterable[float]) -> tuple[float, float, float]:
    """``tuple(v)``, typed as the (dx, dy, dz) voxel size it holds (no conversion, no check)."""
    return cast(tuple[float, float, float], tuple(v))


@dataclass
class Geometry:
    """Image geometry of a reconstructed volume.

    voxel_size: (dx, dy, dz) in mm for image axes (row=H, column=W, slice).
    affine: 4x4 RAS+ voxel-to-world matrix for a volume laid out as (H, W, slices)
    (i.e. NIfTI index order i=H, j=W, k=slice). ``None`` means unknown: writers use the
    documented default (diagonal from voxel_size).
    """

    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    affine: np.ndarray | None = None
    known: bool = False
    # where the geometry came from, e.g. "ismrmrd acquisition headers", "header FOV/matrix", "default"
    source: str = "default"

    def resolved_affine(self) -> np.ndarray:
        if self.affine is not None:
            return np.asarray(self.affine, dtype=np.float64)
        aff = np.eye(4)
        aff[0, 0], aff[1, 1], aff[2, 2] = self.voxel_size
        return aff

    def affine_for(self, shape: tuple[int, int, int]) -> np.ndarray:
        """Affine for a volume laid out (H, W, slices): ``affine`` when set, else the documented default.

        Default: diagonal voxel sizes (RAS axes i→x, j→y, k→z) with the centre of the volume
        (voxel index ((n-1)/2, ...)) at world origin (0, 0, 0).
        """
        if self.affine is not None:
            return np.asarray(self.affine, dtype=np.float64)
        return centered_affine(self.voxel_size, shape)

    def from_slice(self, first_slice: int, shape_hws: tuple[int, int, int]) -> Geometry:
        """Explicit geometry of the sub-volume starting at slice ``first_slice`` of a volume laid out ``shape_hws``
        (H, W, slices): the affine origin moves ``first_slice`` slices along the slice axis."""
        aff = np.array(self.affine_for(shape_hws), dtype=np.float64)
        aff[:3, 3] = aff[:3, 3] + aff[:3, 2] * first_slice
        return Geometry(voxel_size=vox3(self.voxel_size), affine=aff, known=self.known, source=self.source)

    def for_slices(self, indices: list[int], shape_hws: tuple[int, int, int]) -> Geometry:
        """Geometry of the sub-volume made of slices ``indices`` (ascending) of a volume laid out ``shape_hws``:
        origin at the first; the slice axis steps by the indices' common spacing. Irregular spacing (e.g. 1, 4, 6)
        cannot be one affine: the file's own slice step is kept (callers warn)."""
        g = self.from_slice(int(indices[0]), shape_hws)
        steps = set(int(d) for d in np.diff(indices))
        if len(steps) == 1 and steps != {1}:
            aff = np.array(g.affine, dtype=np.float64)
            aff[:3, 2] *= steps.pop()
            g = Geometry(voxel_size=g.voxel_size, affine=aff, known=g.known, source=g.source)
        return g

    def scaled(self, fy: float, fx: float) -> Geometry:
        """Geometry after changing the in-plane matrix by factors (fy, fx) at fixed field of view.

        Voxel size is divided by the factor; the affine keeps the same field of view: the centre of the
        first voxel moves so the volume's outer edges stay in place.
        """
        vs = (self.voxel_size[0] / fy, self.voxel_size[1] / fx, self.voxel_size[2])
        aff = self.resolved_affine().copy()
        # old voxel centre 0 sits at edge + 0.5 old voxel; new centre 0 at edge + 0.5 new voxel
        shift = np.array([0.5 / fy - 0.5, 0.5 / fx - 0.5, 0.0])
        origin = aff[:3, :3] @ shift + aff[:3, 3]
        aff[:3, 0] = aff[:3, 0] / fy
        aff[:3, 1] = aff[:3, 1] / fx
        aff[:3, 3] = origin
        return Geometry(voxel_size=vs, affine=aff, known=self.known, source=self.source)


def centered_affine(voxel_size: tuple[float, float, float], shape: tuple[int, int, int]) -> np.ndarray:
    """Diagonal RAS affine with the given voxel sizes and the volume centre at world origin."""
    aff = np.eye(4)
    aff[0, 0], aff[1, 1], aff[2, 2] = (float(v) for v in voxel_size)
    for ax in range(3):
        n = int(shape[ax]) if ax < len(shape) else 1
        aff[ax, 3] = -aff[ax, ax] * (n - 1) / 2.0
    return aff


@dataclass(frozen=True)
class HeaderFacts:
    """What an ISMRMRD XML header says (``None`` where it is silent or absent).

    Matrices are (x, y, z) = (readout, phase encode, partition); FOVs in mm. ``parsed_by`` tells how the header was
    read: "schema" (the ismrmrd package's validating parser), "lenient" (plain XML, after the schema parser rejected
    it; ``problem`` says why), "absent" (no header) or "unreadable" (not XML at all; ``problem`` says why).
    """

    encoded_matrix: tuple[int, int, int] | None = None
    encoded_fov_mm: tuple[float, float, float] | None = None
    recon_matrix: tuple[int, int, int] | None = None
    recon_fov_mm: tuple[float, float, float] | None = None
    trajectory: str | None = None
    limits: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (minimum, maximum, center)
    acceleration: int | None = None
    calibration_mode: str | None = None
    receiver_channels: int | None = None
    n_encodings: int = 0
    parsed_by: str = "absent"
    problem: str | None = None

    @property
    def present(self) -> bool:
        return self.parsed_by in ("schema", "lenient")

    def voxel_size(self, space: str = "encoded") -> tuple[float, float, float] | None:
        """(dx, dy, dz) = FOV / matrix of the encoded (or recon) space; None when the header does not say."""
        fov = self.encoded_fov_mm if space == "encoded" else self.recon_fov_mm
        mat = self.encoded_matrix if space == "encoded" else self.recon_matrix
        if not fov or not mat:
            return None
        return tuple(float(f) / float(m) if m > 0 and f > 0 else 1.0 for f, m in zip(fov, mat, strict=False))  # type: ignore[return-value]

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("encoded_matrix", "encoded_fov_mm", "recon_matrix", "recon_fov_mm",
                                            "trajectory", "acceleration", "receiver_channels", "parsed_by")}
        if self.problem:
            out["problem"] = self.problem
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


@dataclass
class Sampling:
    """The sampling of the k-space a reader returns.

    mask: (H, W) float32 on the k-space grid of ``read_slices`` (1 = sampled), ``None`` = fully sampled.
    source: where the mask came from: "mask dataset", "zero lines in k-space", "acquisitions" or None.
    stated_acceleration / stated_acs: what the file itself states (fastMRI attrs ``acceleration`` /
    ``num_low_frequency``, ISMRMRD header / calibration flags), if anything.
    """

    mask: np.ndarray | None = None
    source: str | None = None
    stated_acceleration: float | None = None
    stated_acs: int | None = None

    @property
    def undersampled(self) -> bool:
        return self.mask is not None and float(np.mean(self.mask)) < 1.0


@dataclass(frozen=True)
class ReferenceInfo:
    """A reference image stored in the file (e.g. fastMRI ``reconstruction_rss``), and what it is."""

    name: str  # dataset name
    shape: tuple[int, int, int]  # (slices, h, w)
    description: str  # e.g. "fully sampled RSS (noisy)"
    noisy: bool  # True when the reference carries the acquisition noise (metrics then penalise denoising)


@dataclass
class ScanInfo:
    """Everything known about a raw k-space file before its samples are read (typed; no dict keys).

    shape: (slices, coils, H, W) of the k-space ``read_slices`` returns: readout oversampling already removed.
    image_shape: (h, w) matrix of the output images: the centre crop of the (H, W) image that the file's recon
    matrix asks for (fastMRI knee: 320 x 368 → 320 x 320), never larger than (H, W).
    stored_shape: (slices, coils, H_stored, W) as stored in the file.
    facts: format-specific extras shown by ``mrdiff info`` (repetitions, calibration lines, file attributes).
    """

    path: str
    format: str
    shape: tuple[int, int, int, int]
    image_shape: tuple[int, int]
    stored_shape: tuple[int, int, int, int]
    readout_oversampling: float
    sampling: Sampling
    geometry: Geometry
    header: HeaderFacts = field(default_factory=HeaderFacts)
    reference: ReferenceInfo | None = None
    single_coil: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # one-line warnings about what had to be assumed

    @property
    def mask(self) -> np.ndarray | None:
        return self.sampling.mask

    @property
    def undersampled(self) -> bool:
        return self.sampling.undersampled


@dataclass
class Scan:
    """Raw k-space of one acquisition with what is known about it.

    kspace: (slices, coils, H, W) complex64 (readout oversampling removed, see ``info.shape``).
    reference: optional (slices, h, w) float32 reference magnitudes (``info.reference`` says what they are).
    """

    info: ScanInfo
    kspace: Any
    reference: Any = None

    @property
    def mask(self) -> np.ndarray | None:
        return self.info.sampling.mask

    @property
    def geometry(self) -> Geometry:
        return self.info.geometry

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.kspace.shape)

    @property
    def n_slices(self) -> int:
        return int(self.kspace.shape[0])

    @property
    def n_coils(self) -> int:
        return int(self.kspace.shape[1])

    @property
    def undersampled(self) -> bool:
        return self.info.undersampled


@dataclass(frozen=True)
class SliceSpec:
    """A slice selection (``mrdiff --slices``): ``3`` (one slice), ``3:7`` / ``3:`` / ``:7`` / ``0:9:2`` (Python
    slice, end exclusive, negative indices count from the end) or ``1,4,6`` (a list). Parse with :meth:`parse`, resolve
    against a volume with :meth:`indices`."""

    text: str
    kind: str  # "one" | "range" | "list"
    values: tuple[int | None, ...]

    @classmethod
    def parse(cls, text: str | None) -> SliceSpec | None:
        from .errors import UsageError

        if text is None or str(text).strip() in ("", ":"):
            return None
        t = str(text).strip().replace(" ", "")
        try:
            if "," in t:
                return cls(t, "list", tuple(int(v) for v in t.split(",")))
            if ":" in t:
                parts = t.split(":")
                if len(parts) > 3:
                    raise ValueError
                vals = tuple(int(v) if v else None for v in parts)
                if len(vals) == 3 and vals[2] is not None and vals[2] < 1:
                    raise ValueError
                return cls(t, "range", vals)
            return cls(t, "one", (int(t),))
        except ValueError:
            raise UsageError(f"{text!r}: expected an index (3), a range (3:7, end exclusive) or a list (1,4,6)",
                             option="slices") from None

    def indices(self, n: int) -> list[int]:
        """Ascending slice indices of a volume with ``n`` slices (UsageError when out of range or empty)."""
        from .errors import UsageError

        if self.kind == "range":
            idx = list(range(n)[slice(*self.values)])
        else:
            idx = []
            for v in self.values:
                i = int(v) + n if int(v) < 0 else int(v)  # type: ignore[arg-type]
                if not 0 <= i < n:
                    raise UsageError(f"{self.text}: slice {v} is outside 0..{n - 1} ({n} slices)", option="slices")
                idx.append(i)
            idx = sorted(set(idx))
        if not idx:
            raise UsageError(f"{self.text} selects no slice of {n}", option="slices")
        return idx
