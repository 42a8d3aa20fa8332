"""Simulate raw multi-coil k-space from a magnitude image (no printing, no argument parsing).

Model, per slice (H = readout, W = phase encode):

    y_c = M · F( S_c · m · exp(i φ) ) + n_c

* m: magnitude image, resampled to ``matrix × matrix`` by centred k-space crop/zero-pad after zero-padding
  the slice to a square (keeps the field of view, intensities preserved; Gibbs ringing when shrinking).
* φ: smooth random phase, a seeded 2nd-order polynomial over normalised coordinates u, v ∈ [-1, 1]:
  φ = a0 + strength·π·(a1 u + a2 v + a3 u² + a4 v² + a5 u v) with a0 ~ U(-π, π), a1..a5 ~ N(0, 0.25²);
  optionally plus fine phase detail (``phase_detail`` > 0: white noise Gaussian-filtered to a 4-pixel correlation
  length, scaled to that std in radians — the kind of structure a low-resolution phase estimate misses).
* S_c: analytic birdcage-like coils: complex Gaussians centred on a circle of radius 1.3 (outside the FOV)
  at angles 2πc/C, magnitude exp(-d²/(2·0.8²)), phase = coil angle + polar angle seen from the coil, then
  normalised pointwise so Σ_c |S_c|² = 1 everywhere (so the RSS of the noise-free coil images is m).
  One coil → S = 1 (single-coil data).
* F: centred orthonormal FFT (:func:`mrdiff_cli.ops.fft.fft2c`).
* n_c: complex Gaussian noise, per slice σ² = mean(|F(S m e^{iφ})|²) / 10^(snr_db/10) (mean signal energy
  per k-space sample over all coils), real and imaginary parts each with variance σ²/2. ``snr_db=None``
  (or inf) adds no noise.
* M: optional mask (``ops.masks.make_mask``); unsampled entries are set to exactly 0.

Everything random draws from ``numpy.random.default_rng(seed)``: the same seed gives the same file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UsageError
from ..types import Geometry, vox3

SIM_FORMATS = ("fastmri", "ismrmrd")


# ---------------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------------


def analytic_phantom(n: int = 64) -> np.ndarray:
    """A small modified Shepp-Logan-like phantom (n, n) float32 in [0, 1] (ellipses, analytic)."""
    # (intensity, a, b, x0, y0, angle_deg) in normalised coordinates [-1, 1]
    ellipses = [
        (1.0, 0.69, 0.92, 0.0, 0.0, 0),
        (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0),
        (-0.2, 0.11, 0.31, 0.22, 0.0, -18),
        (-0.2, 0.16, 0.41, -0.22, 0.0, 18),
        (0.1, 0.21, 0.25, 0.0, 0.35, 0),
        (0.1, 0.046, 0.046, 0.0, 0.1, 0),
        (0.1, 0.046, 0.046, 0.0, -0.1, 0),
        (0.1, 0.046, 0.023, -0.08, -0.605, 0),
        (0.1, 0.023, 0.023, 0.0, -0.606, 0),
        (0.1, 0.023, 0.046, 0.06, -0.605, 0),
    ]
    c = (np.arange(n) - (n - 1) / 2.0) / (n / 2.0)
    y, x = np.meshgrid(c, c, indexing="ij")
    img = np.zeros((n, n), dtype=np.float64)
    for val, a, b, x0, y0, ang in ellipses:
        t = math.radians(ang)
        xr = (x - x0) * math.cos(t) + (y - y0) * math.sin(t)
        yr = -(x - x0) * math.sin(t) + (y - y0) * math.cos(t)
        img[(xr / a) ** 2 + (yr / b) ** 2 <= 1.0] += val
    return np.clip(img, 0.0, None).astype(np.float32)


def coil_maps(coils: int, shape: tuple[int, int]) -> np.ndarray:
    """Analytic birdcage-like sensitivities (coils, H, W) complex64 with Σ|S|² = 1 at every pixel."""
    h, w = int(shape[0]), int(shape[1])
    if coils < 1:
        raise UsageError(f"must be at least 1, got {coils}", option="coils")
    if coils == 1:
        return np.ones((1, h, w), dtype=np.complex64)
    u = (np.arange(h) - (h - 1) / 2.0) / (h / 2.0)
    v = (np.arange(w) - (w - 1) / 2.0) / (w / 2.0)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    radius, sigma = 1.3, 0.8
    maps = np.empty((coils, h, w), dtype=np.complex128)
    for c in range(coils):
        th = 2.0 * math.pi * c / coils
        cu, cv = radius * math.cos(th), radius * math.sin(th)
        du, dv = uu - cu, vv - cv
        mag = np.exp(-(du**2 + dv**2) / (2.0 * sigma**2))
        maps[c] = mag * np.exp(1j * (th + np.arctan2(dv, du)))
    maps /= np.sqrt(np.sum(np.abs(maps) ** 2, axis=0, keepdims=True))
    return maps.astype(np.complex64)


def gaussian_random_field(shape: tuple[int, int], rng: np.random.Generator, px: float = 4.0) -> np.ndarray:
    """Zero-mean, unit-std random field (H, W) float64: white noise Gaussian-filtered (FFT, periodic) to a
    correlation length of ``px`` pixels."""
    h, w = int(shape[0]), int(shape[1])
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    kernel = np.exp(-2.0 * (math.pi * px) ** 2 * (fy**2 + fx**2))  # FT of a Gaussian of std px pixels
    f = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((h, w))) * kernel))
    return f / max(float(f.std()), 1e-12)


def phase_detail_field(shape: tuple[int, int], rng: np.random.Generator, std: float, px: float = 4.0) -> np.ndarray:
    """Zero-mean random phase detail (H, W): :func:`gaussian_random_field` scaled to standard deviation ``std``
    radians."""
    return (gaussian_random_field(shape, rng, px) * std).astype(np.float32)


def smooth_phase(shape: tuple[int, int], rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Seeded smooth phase (H, W) float32: a random 2nd-order polynomial (see module docstring)."""
    h, w = int(shape[0]), int(shape[1])
    u = np.linspace(-1.0, 1.0, h)[:, None]
    v = np.linspace(-1.0, 1.0, w)[None, :]
    a0 = rng.uniform(-math.pi, math.pi)
    a = rng.normal(0.0, 0.25, size=5)
    poly = a[0] * u + a[1] * v + a[2] * u**2 + a[3] * v**2 + a[4] * u * v
    return (a0 + strength * math.pi * poly).astype(np.float32)


def fft2c_np(x: np.ndarray) -> np.ndarray:
    """numpy in, numpy out through the package's one FFT (:func:`mrdiff_cli.ops.fft.fft2c`)."""
    import torch

    from ..ops.fft import fft2c

    return fft2c(torch.from_numpy(np.ascontiguousarray(x, dtype=np.complex64))).numpy()


def resample_slices(volume: np.ndarray, matrix: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """(S, h, w) magnitude → (S, matrix, matrix): zero-pad to a square N = max(h, w), then centred k-space
    crop/zero-pad to ``matrix``. Returns (resampled magnitude, N/matrix (voxel growth), (pad_h, pad_w))."""
    v = np.asarray(volume, dtype=np.float32)
    s, h, w = v.shape
    n = max(h, w)
    pad = ((n - h) // 2, (n - w) // 2)
    sq = np.zeros((s, n, n), dtype=np.float32)
    sq[:, pad[0]: pad[0] + h, pad[1]: pad[1] + w] = v
    if n == matrix:
        return sq, 1.0, pad
    import torch

    from ..ops.operators import resize_image

    out = resize_image(torch.from_numpy(sq), (int(matrix), int(matrix))).abs().numpy().astype(np.float32)
    return out, n / matrix, pad


def simulate_kspace(image: np.ndarray, coils: int = 8, snr_db: float | None = 30.0, seed: int = 0, *,
                    mask: np.ndarray | None = None, phase_strength: float = 1.0,
                    maps: np.ndarray | None = None, phase_detail: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude (H, W) or (S, H, W) → (kspace, maps, phase).

    kspace: (coils, H, W) for 2D input, (S, coils, H, W) for 3D, complex64 (masked entries exactly 0);
    maps: (coils, H, W) complex64 with Σ|S|² = 1; phase: (H, W) or (S, H, W) float32 radians.
    """
    img = np.asarray(image)
    if np.iscomplexobj(img):
        img = np.abs(img)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[None]
    if img.ndim != 3 or 0 in img.shape:
        raise ValueError(f"image must be (H, W) or (S, H, W) with non-zero sizes, got {np.shape(image)}")
    img = img.astype(np.float32)
    s_n, h, w = img.shape
    rng = np.random.default_rng(seed)
    s_maps = coil_maps(coils, (h, w)) if maps is None else np.asarray(maps, dtype=np.complex64)
    phase = np.stack([smooth_phase((h, w), rng, phase_strength) for _ in range(s_n)])
    if phase_detail > 0:  # drawn after the polynomials: phase_detail = 0 leaves the random stream as it was
        phase = phase + np.stack([phase_detail_field((h, w), rng, phase_detail) for _ in range(s_n)])
    x = img * np.exp(1j * phase)
    k = fft2c_np(x[:, None] * s_maps[None])  # (S, C, H, W)
    if snr_db is not None and math.isfinite(float(snr_db)):
        for s in range(s_n):
            p_sig = float(np.mean(np.abs(k[s]) ** 2))
            sigma2 = p_sig / (10.0 ** (float(snr_db) / 10.0))
            noise = rng.standard_normal(k[s].shape) + 1j * rng.standard_normal(k[s].shape)
            k[s] = k[s] + (math.sqrt(sigma2 / 2.0) * noise).astype(np.complex64)
    if mask is not None:
        k = k * (np.asarray(mask, dtype=np.float32) > 0)
    k = k.astype(np.complex64)
    if squeeze:
        return k[0], s_maps, phase[0]
    return k, s_maps, phase


# ---------------------------------------------------------------------------------------------------
# whole simulation
# ---------------------------------------------------------------------------------------------------


@dataclass
class SimulatedScan:
    kspace: np.ndarray  # (S, C, H, W) complex64 (zeros where not sampled)
    maps: np.ndarray  # (C, H, W) complex64
    phase: np.ndarray  # (S, H, W) float32
    reference: np.ndarray  # (S, H, W) float32: RSS of noise-free fully sampled coil images
    mask: np.ndarray | None  # (H, W) float32 or None (fully sampled)
    geometry: Geometry
    info: dict[str, Any] = field(default_factory=dict)


def parse_slices(spec: str | None, n: int) -> slice:
    """'a:b', 'a:b:c', 'a' (one slice) or None (all) → a slice object validated against n slices."""
    if spec is None or str(spec).strip() in ("", ":"):
        return slice(0, n)
    try:
        parts = [p.strip() for p in str(spec).split(":")]
        if len(parts) == 1:
            i = int(parts[0])
            i = i + n if i < 0 else i
            sl = slice(i, i + 1)
        elif len(parts) in (2, 3):
            vals = [int(p) if p else None for p in parts]
            sl = slice(vals[0], vals[1], vals[2] if len(vals) == 3 else None)
        else:
            raise ValueError
    except ValueError:
        raise UsageError(f"'{spec}': expected a:b (python slice) or one index", option="slices") from None
    idx = range(n)[sl]
    if len(idx) == 0:
        raise UsageError(f"'{spec}' selects no slice of {n}", option="slices")
    return slice(idx.start, idx.stop, idx.step)


def reslice(volume: np.ndarray, geometry: Geometry, axis: int, slices: str | None) -> tuple[np.ndarray, Geometry]:
    """Volume (S, H, W) with geometry for (H, W, S) → slices along NIfTI voxel axis ``axis`` (0=i, 1=j, 2=k).

    The in-plane axes are the other two in increasing order; the affine columns are permuted to match,
    and the origin / slice step follow the ``slices`` selection.
    """
    if axis not in (0, 1, 2):
        raise UsageError(f"must be 0, 1 or 2, got {axis}", option="axis")
    nifti_order = np.transpose(volume, (1, 2, 0))  # (i, j, k)
    inplane = [a for a in (0, 1, 2) if a != axis]
    data = np.transpose(nifti_order, (axis, inplane[0], inplane[1]))  # (S, H, W)
    aff = geometry.affine_for(nifti_order.shape)
    perm = [inplane[0], inplane[1], axis]
    new = np.eye(4)
    new[:3, :3] = aff[:3, perm]
    new[:3, 3] = aff[:3, 3]
    sl = parse_slices(slices, data.shape[0])
    new[:3, 3] = new[:3, 3] + new[:3, 2] * sl.start
    new[:3, 2] = new[:3, 2] * (sl.step or 1)
    vs = vox3(float(np.linalg.norm(new[:3, i])) for i in range(3))
    data = np.ascontiguousarray(data[sl])
    return data, Geometry(voxel_size=vs, affine=new, known=geometry.known, source=geometry.source)


def _resampled_geometry(geom: Geometry, scale: float, pad: tuple[int, int], n_in: int, matrix: int) -> Geometry:
    """Affine after pad-to-square (N = n_in) and k-space resampling to ``matrix`` (FFT-centre convention)."""
    aff = np.asarray(geom.affine, float)
    t = np.eye(4)
    for ax in range(2):
        t[ax, ax] = scale
        t[ax, 3] = n_in // 2 - pad[ax] - (matrix // 2) * scale
    new = aff @ t
    vs = (geom.voxel_size[0] * scale, geom.voxel_size[1] * scale, geom.voxel_size[2])
    return Geometry(voxel_size=vs, affine=new, known=geom.known, source=geom.source)


def simulate_volume(volume: np.ndarray, geometry: Geometry | None = None, *, matrix: int | None = 128,
                    coils: int = 8, snr_db: float | None = 30.0, seed: int = 0, mask_kind: str | None = None,
                    accel: float | None = None, acs: int | None = None,
                    phase_strength: float = 1.0, phase_detail: float = 0.0, coil_model: str = "ring",
                    phase_model: str = "poly", phase_std: float = 1.0, noise_corr: float = 0.0) -> SimulatedScan:
    """In-memory simulation of a (S, H, W) magnitude volume (see module docstring). ``coil_model`` /
    ``phase_model`` / ``noise_corr`` other than the defaults use the acquisition families of
    :mod:`mrdiff_cli.tasks.acquisition` (then the reference is the RSS of the noise-free coil images, which
    carries the coils' receive profile)."""
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim == 2:
        vol = vol[None]
    if vol.ndim != 3 or 0 in vol.shape:
        raise InputError(f"image must be (slices, H, W) with non-zero sizes, got shape {vol.shape}")
    if not np.all(np.isfinite(vol)):
        raise InputError("image contains NaN or Inf values")
    if coils < 1:
        raise UsageError(f"must be at least 1, got {coils}", option="coils")
    geometry = geometry or Geometry()
    if geometry.affine is None:
        geometry = Geometry(voxel_size=geometry.voxel_size,
                            affine=geometry.affine_for((vol.shape[1], vol.shape[2], vol.shape[0])),
                            known=geometry.known, source=geometry.source)
    if matrix is not None:
        if int(matrix) < 4:
            raise UsageError(f"must be at least 4, got {matrix}", option="matrix")
        n_in = max(vol.shape[1], vol.shape[2])
        vol, scale, pad = resample_slices(vol, int(matrix))
        geometry = _resampled_geometry(geometry, scale, pad, n_in, int(matrix))
    s_n, h, w = vol.shape
    mask = None
    mask_info: dict[str, Any] = {}
    if mask_kind is not None and str(mask_kind).lower() != "none":
        from ..ops.masks import make_mask

        try:
            res = make_mask(str(mask_kind).lower(), (h, w), float(accel if accel is not None else 4.0), acs, seed)
        except ValueError as exc:
            raise UsageError(str(exc), option="mask_kind") from None
        mask = res.mask
        mask_info = {"kind": res.kind, "target_accel": res.target_accel, "achieved_accel": res.achieved_accel,
                     "acs": res.acs}
    elif accel is not None:
        raise UsageError("needs a mask kind (`mask_kind`)", option="accel")
    info = {"coils": coils, "snr_db": snr_db, "seed": seed, "matrix": [h, w], "slices": s_n, "mask": mask_info}
    if coil_model != "ring" or phase_model != "poly" or noise_corr > 0:
        from .acquisition import COIL_FAMILIES, PHASE_FAMILIES, Acquisition, simulate_acquisition_full

        if coil_model not in COIL_FAMILIES or phase_model not in PHASE_FAMILIES:
            raise UsageError(f"coil model {coil_model!r} / phase model {phase_model!r}: choose from "
                             f"{', '.join(COIL_FAMILIES)} / {', '.join(PHASE_FAMILIES)}")
        if not 0.0 <= noise_corr < 1.0:
            raise UsageError(f"must be in [0, 1), got {noise_corr}", option="noise_corr")
        acq = Acquisition(coil_model, coils, phase_model, phase_std,
                          snr_db=float(snr_db) if snr_db is not None else float("inf"), noise_rho=noise_corr)
        k, reference, maps, phase = simulate_acquisition_full(vol, acq, seed)
        if mask is not None:
            k = (k * (np.asarray(mask, dtype=np.float32) > 0)).astype(np.complex64)
        info.update(coil_model=coil_model, phase_model=phase_model, phase_std=phase_std, noise_corr=noise_corr)
        return SimulatedScan(kspace=k, maps=maps, phase=phase, reference=reference, mask=mask, geometry=geometry,
                             info=info)
    k, maps, phase = simulate_kspace(vol, coils, snr_db, seed, mask=mask, phase_strength=phase_strength,
                                     phase_detail=phase_detail)
    coil_imgs = np.abs(vol[:, None] * maps[None])
    reference = np.sqrt(np.sum(coil_imgs**2, axis=1)).astype(np.float32)
    return SimulatedScan(kspace=k, maps=maps, phase=phase, reference=reference, mask=mask, geometry=geometry,
                         info=info)


def acs_columns(mask: np.ndarray | None) -> list[int]:
    """Central fully sampled column block of a mask (flagged as calibration lines in ISMRMRD output)."""
    if mask is None:
        return []
    from ..ops.masks import acs_shape

    m = np.asarray(mask) > 0
    h, w = acs_shape(m)
    if h != m.shape[0] or w in (0, m.shape[1]):
        return []
    start = m.shape[1] // 2 - w // 2
    return list(range(start, start + w))


def write_simulated(sim: SimulatedScan, out_path: str | os.PathLike, fmt: str = "fastmri",
                    overwrite: bool = False, source: str = "") -> Path:
    """Write a SimulatedScan as a fastMRI-style HDF5 file or an ISMRMRD dataset (atomic)."""
    fmt = fmt.lower()
    if fmt not in SIM_FORMATS:
        raise UsageError(f"unknown simulate format '{fmt}' (choose from {', '.join(SIM_FORMATS)})", option="fmt")
    s_n, c_n, h, w = sim.kspace.shape
    if fmt == "fastmri":
        from ..io.fastmri import write_fastmri
        from ..io.header import minimal_ismrmrd_header

        xml = minimal_ismrmrd_header((h, w), sim.geometry.voxel_size, c_n, n_slices=s_n)
        attrs = {
            "max": float(sim.reference.max()),
            "norm": float(np.linalg.norm(sim.reference)),
            "acquisition": "SIMULATED",
            "simulated": True,
            "seed": int(sim.info.get("seed", 0)),
            "snr_db": float(sim.info["snr_db"]) if sim.info.get("snr_db") is not None else float("inf"),
            "coils": int(c_n),
            "source": str(source),
        }
        return write_fastmri(out_path, sim.kspace, mask=sim.mask, reference=sim.reference, header_xml=xml,
                             attrs=attrs, overwrite=overwrite)
    from ..io.base import column_mask
    from ..io.ismrmrd_io import write_ismrmrd

    if sim.mask is not None and column_mask(sim.mask) is None:
        raise UsageError("ISMRMRD output stores whole phase-encode lines: use a 1D mask kind "
                         "(gaussian1d, uniform1d, equispaced), not a 2D one")
    return write_ismrmrd(out_path, sim.kspace, sim.geometry, mask=sim.mask,
                         calibration_lines=acs_columns(sim.mask), overwrite=overwrite)


def simulate_file(image_path: str | os.PathLike, out_path: str | os.PathLike, *, matrix: int | None = 128,
                  coils: int = 8, snr_db: float | None = 30.0, mask_kind: str | None = None,
                  accel: float | None = None, acs: int | None = None, slices: str | None = None,
                  axis: int | None = None, seed: int = 0, fmt: str = "fastmri", overwrite: bool = False,
                  phase_strength: float = 1.0, coil_model: str = "ring", phase_model: str = "poly",
                  phase_std: float = 1.0, noise_corr: float = 0.0) -> dict[str, Any]:
    """Read a magnitude image (NIfTI, DICOM or .npy), simulate raw k-space, write it; return a summary.

    ``axis``: the NIfTI voxel axis to slice along (0=i, 1=j, 2=k); default 2 for NIfTI/DICOM, and for a
    3D ``.npy`` array its first axis (the array is taken as (slices, H, W)).
    """
    from ..io.atomic import check_output_path, ensure_parent
    from ..io.detect import load_image

    if fmt.lower() not in SIM_FORMATS:
        raise UsageError(f"unknown simulate format '{fmt}' (choose from {', '.join(SIM_FORMATS)})", option="fmt")
    if fmt.lower() == "ismrmrd" and mask_kind is not None and str(mask_kind).lower() in ("poisson", "gaussian2d"):
        raise UsageError(f"{mask_kind} is 2D; ISMRMRD output needs a 1D mask kind (gaussian1d, uniform1d, "
                         "equispaced)", option="mask_kind")
    check_output_path(out_path, overwrite, parents=True)  # fail before the work, not after it
    vol, geom = load_image(image_path)
    is_npy = Path(image_path).suffix.lower() == ".npy" or geom.source.startswith("default (npy")
    # load_image gives (slices=k, H=i, W=j); a .npy array's own axes (0, 1, 2) are (k, i, j)
    nifti_axis = 2 if axis is None else int(axis)
    if is_npy and axis is not None:
        if int(axis) not in (0, 1, 2):
            raise UsageError(f"must be 0, 1 or 2, got {axis}", option="axis")
        nifti_axis = {0: 2, 1: 0, 2: 1}[int(axis)]
    vol_s, geom_s = reslice(vol, geom, nifti_axis, slices)
    sim = simulate_volume(vol_s, geom_s, matrix=matrix, coils=coils, snr_db=snr_db, seed=seed,
                          mask_kind=mask_kind, accel=accel, acs=acs, phase_strength=phase_strength,
                          coil_model=coil_model, phase_model=phase_model, phase_std=phase_std, noise_corr=noise_corr)
    ensure_parent(out_path)  # missing folders are created, after the work succeeded
    path = write_simulated(sim, out_path, fmt, overwrite, source=Path(image_path).name)
    s_n, c_n, h, w = sim.kspace.shape
    return {
        "output": str(path),
        "format": fmt.lower(),
        "slices": s_n,
        "coils": c_n,
        "matrix": [h, w],
        "voxel_size_mm": [float(v) for v in sim.geometry.voxel_size],
        "snr_db": snr_db,
        "seed": seed,
        "acceleration": float(sim.info["mask"]["achieved_accel"]) if sim.info["mask"] else 1.0,
        "mask": sim.info["mask"] or None,
        "coil_model": coil_model, "phase_model": phase_model,
    }
