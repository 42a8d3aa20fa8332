"""Small shared dataclasses: Geometry, Scan. No torch import here (keeps the CLI start fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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

    def from_slice(self, first_slice: int, shape_hws: tuple[int, int, int]) -> "Geometry":
        """Explicit geometry of the sub-volume starting at slice ``first_slice`` of a volume laid out ``shape_hws``
        (H, W, slices): the affine origin moves ``first_slice`` slices along the slice axis."""
        aff = np.array(self.affine_for(shape_hws), dtype=np.float64)
        aff[:3, 3] = aff[:3, 3] + aff[:3, 2] * first_slice
        return Geometry(voxel_size=tuple(self.voxel_size), affine=aff, known=self.known, source=self.source)

    def scaled(self, fy: float, fx: float) -> "Geometry":
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


@dataclass
class Scan:
    """Raw k-space of one acquisition.

    kspace: (slices, coils, H, W) complex64, H = readout (frequency encode), W = phase encode.
    mask: (H, W) or (W,) sampling pattern as float32 (1 = sampled); ``None`` = fully sampled.
    reference: optional (slices, H', W') magnitude reference image (e.g. fastMRI reconstruction_rss).
    """

    kspace: Any
    mask: np.ndarray | None = None
    geometry: Geometry = field(default_factory=Geometry)
    reference: Any = None
    metadata: dict = field(default_factory=dict)
    source: str = ""

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
        return self.mask is not None and float(np.mean(self.mask)) < 1.0
