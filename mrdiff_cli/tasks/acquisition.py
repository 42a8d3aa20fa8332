"""Acquisition physics families for simulation: coil arrays, phase models and receiver noise.

``tasks.simulate`` has one coil model (Gaussian-profile coils on a ring, pointwise normalised) and one phase
model (a random 2nd-order polynomial). A method tuned on one simulator learns that simulator; these families
exist so that benchmarks can hold whole families out of tuning (``benchmarks/suite.py``).

Coordinates: the image plane is z = 0, (u, v) in units of the half field of view (the FOV spans [-1, 1]²),
u along H (rows) and v along W (columns). The static field B0 is along z for coils (receive sensitivity
S ∝ B1^- = (B_x - i B_y) / 2 of the coil's field per unit current, reciprocity) and along the in-plane u axis for
the off-resonance model (a coronal or sagittal slice, where the 2D dipole field is not constant).

Coil families (:func:`coil_family`):

* ``ring``: ``simulate.coil_maps`` (Gaussian magnitude, polar phase, sum |S|^2 = 1 everywhere).
* ``loops``: circular surface loops of radius ``loop_radius`` on a cylinder of radius ``distance`` around the
  head, ``rows`` rings of loops stacked along z (``row_gap`` apart, the slice between them), their normals
  pointing at the axis; fields by Biot-Savart over 96 straight segments per loop. A random cable phase per coil.
* ``wires``: infinite straight conductors parallel to z on a circle of radius ``distance`` (a birdcage's rungs,
  each a receive element): B = mu0 I / (2 pi d) around the wire, so S_c ∝ (B_x - i B_y) with a 1/d falloff.
  A random cable phase per coil.

The two physical families are scaled so that max_r sqrt(sum_c |S_c|^2) = 1 (the receive bias stays in the data,
as on a scanner without intensity normalisation).

Phase families (:func:`phase_family`, radians, (H, W)):

* ``poly``: ``simulate.smooth_phase`` (random global offset plus a 2nd-order polynomial).
* ``random``: a random global offset plus a Gaussian random field of correlation length ``length`` pixels and
  standard deviation ``std`` radians (flow, susceptibility texture, RF-penetration phase at many scales).
* ``offres``: off-resonance from air-tissue susceptibility: chi = -9.4 ppm (tissue relative to air) inside the
  head (the image support) except an air cavity (an ellipse in the anterior part, the frontal sinus /
  nasal cavity), field dB/B0 = F^{-1}[(1/3 - k_u^2 / |k|^2) F chi] (2D dipole kernel, B0 along u), phase =
  2 pi gamma B0 TE dB/B0, scaled so that its 99th-percentile |phase| inside the head is ``std`` radians (i.e. the
  echo time is set by ``std``); plus a random global offset and a weak polynomial. Phase wraps near the cavity,
  as it does in gradient-echo images.

Receiver noise (:func:`add_noise`): complex Gaussian at ``snr_db`` (mean signal energy per k-space sample over
coils, as in ``tasks.simulate``), optionally correlated across coils: covariance Psi = D^1/2 R D^1/2 with
R_ij = rho^|i-j| (neighbouring elements couple) and per-coil noise powers D varying by +-30 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .simulate import coil_maps, fft2c_np, gaussian_random_field, smooth_phase

COIL_FAMILIES = ("ring", "loops", "wires")
PHASE_FAMILIES = ("poly", "random", "offres")


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = int(shape[0]), int(shape[1])
    u = (np.arange(h) - (h - 1) / 2.0) / (h / 2.0)
    v = (np.arange(w) - (w - 1) / 2.0) / (w / 2.0)
    return np.meshgrid(u, v, indexing="ij")


def _loop_field(centre: np.ndarray, normal: np.ndarray, radius: float, pts: np.ndarray, n_seg: int = 96) -> np.ndarray:
    """Biot-Savart field (3, N) per unit current (mu0/4pi = 1) of a circular loop at ``pts`` (3, N)."""
    normal = normal / np.linalg.norm(normal)
    a = np.cross(normal, [0.0, 0.0, 1.0]) if abs(normal[2]) < 0.9 else np.cross(normal, [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(normal, a)
    t = np.linspace(0.0, 2 * math.pi, n_seg + 1)
    ring = centre[:, None] + radius * (np.cos(t)[None] * a[:, None] + np.sin(t)[None] * b[:, None])  # (3, n+1)
    B = np.zeros_like(pts)
    for s in range(n_seg):
        dl = ring[:, s + 1] - ring[:, s]
        mid = 0.5 * (ring[:, s + 1] + ring[:, s])
        r = pts - mid[:, None]
        d3 = np.maximum(np.linalg.norm(r, axis=0), 1e-3) ** 3
        B += np.cross(dl[:, None], r, axis=0) / d3
    return B


def _scale_max_rss(maps: np.ndarray) -> np.ndarray:
    rss = np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))
    return (maps / max(float(rss.max()), 1e-12)).astype(np.complex64)


def coil_family(kind: str, coils: int, shape: tuple[int, int], rng: np.random.Generator, *,
                distance: float = 1.25, loop_radius: float = 0.45, rows: int = 1, row_gap: float = 0.5) -> np.ndarray:
    """Receive sensitivities (coils, H, W) complex64 of one family (module docstring)."""
    if kind not in COIL_FAMILIES:
        raise ValueError(f"unknown coil family {kind!r} (choose from {', '.join(COIL_FAMILIES)})")
    if kind == "ring" or coils == 1:
        return coil_maps(coils, shape)
    uu, vv = _grid(shape)
    pts = np.stack([uu.ravel(), vv.ravel(), np.zeros(uu.size)])
    maps = np.empty((coils, uu.size), dtype=np.complex128)
    per_row = math.ceil(coils / max(1, rows))
    offset = rng.uniform(0, 2 * math.pi)
    for c in range(coils):
        row, j = divmod(c, per_row)
        th = offset + 2 * math.pi * (j + 0.5 * row) / per_row
        z = (row - (rows - 1) / 2.0) * row_gap if kind == "loops" else 0.0
        pos = np.array([distance * math.cos(th), distance * math.sin(th), z])
        if kind == "loops":
            B = _loop_field(pos, -np.array([math.cos(th), math.sin(th), 0.0]), loop_radius, pts)
        else:  # infinite wire along z: B = 2 I / d (phi-hat) with mu0/4pi = 1
            r = pts[:2] - pos[:2, None]
            d2 = np.maximum(np.sum(r**2, axis=0), 1e-6)
            B = np.stack([-r[1] / d2, r[0] / d2, np.zeros(d2.size)]) * 2.0
        maps[c] = (B[0] - 1j * B[1]) * np.exp(1j * rng.uniform(-math.pi, math.pi))
    return _scale_max_rss(maps.reshape(coils, *uu.shape))


def offresonance_field(support: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """dB/B0 (H, W) (arbitrary scale) of the air-tissue susceptibility model (module docstring)."""
    h, w = support.shape
    uu, vv = _grid((h, w))
    rows = np.flatnonzero(support.any(axis=1))
    cols = np.flatnonzero(support.any(axis=0))
    chi = support.astype(np.float64) * -9.4
    if rows.size and cols.size:
        # an air cavity inside the head, near one end of the u extent (anterior), random size / offset
        cu = uu[rows[0] + int(0.22 * (rows[-1] - rows[0])), 0]
        cv = vv[0, (cols[0] + cols[-1]) // 2] + rng.uniform(-0.08, 0.08)
        au, av = rng.uniform(0.06, 0.12), rng.uniform(0.08, 0.16)
        chi[((uu - cu) / au) ** 2 + ((vv - cv) / av) ** 2 <= 1.0] = 0.0
    pad = ((h // 2, h // 2), (w // 2, w // 2))  # zero padding: no periodic images of the head
    c = np.pad(chi, pad)
    ku = np.fft.fftfreq(c.shape[0])[:, None]
    kv = np.fft.fftfreq(c.shape[1])[None, :]
    k2 = ku**2 + kv**2
    kernel = np.where(k2 > 0, 1.0 / 3.0 - ku**2 / np.where(k2 > 0, k2, 1.0), 0.0)
    field = np.real(np.fft.ifft2(np.fft.fft2(c) * kernel))
    return field[h // 2: h // 2 + h, w // 2: w // 2 + w]


def phase_family(kind: str, shape: tuple[int, int], rng: np.random.Generator, *, std: float = 1.0,
                 length: float = 8.0, support: np.ndarray | None = None) -> np.ndarray:
    """Image phase (H, W) float32 radians of one family (module docstring)."""
    if kind not in PHASE_FAMILIES:
        raise ValueError(f"unknown phase family {kind!r} (choose from {', '.join(PHASE_FAMILIES)})")
    if kind == "poly":
        return smooth_phase(shape, rng, 1.0)
    offset = rng.uniform(-math.pi, math.pi)
    if kind == "random":
        return (offset + std * gaussian_random_field(shape, rng, length)).astype(np.float32)
    supp = support if support is not None else np.ones(shape, dtype=bool)
    f = offresonance_field(supp, rng)
    if supp.any():  # centred and scaled on the head
        f = f - float(np.median(f[supp]))
        ref = np.abs(f[supp])
    else:
        ref = np.abs(f)
    scale = std / max(float(np.percentile(ref, 99)), 1e-12)
    return (offset + scale * f + 0.3 * (smooth_phase(shape, rng, 1.0) - smooth_phase(shape, rng, 0.0))).astype(np.float32)


def add_noise(k: np.ndarray, snr_db: float | None, rng: np.random.Generator, rho: float = 0.0) -> np.ndarray:
    """k (C, H, W) plus complex Gaussian noise at ``snr_db``; ``rho`` > 0 correlates neighbouring coils."""
    if snr_db is None or not math.isfinite(float(snr_db)):
        return k
    C = k.shape[0]
    sigma2 = float(np.mean(np.abs(k) ** 2)) / (10.0 ** (float(snr_db) / 10.0))
    n = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * math.sqrt(sigma2 / 2.0)
    if rho > 0 and C > 1:
        idx = np.arange(C)
        R = rho ** np.abs(idx[:, None] - idx[None, :])
        d = np.sqrt(rng.uniform(0.7, 1.3, C))
        L = np.linalg.cholesky(d[:, None] * R * d[None, :])
        n = np.tensordot(L, n, axes=(1, 0))
    return (k + n).astype(np.complex64)


@dataclass(frozen=True)
class Acquisition:
    """One acquisition model: coil family and count, phase family, noise, matrix, sampling."""

    coil: str = "ring"
    coils: int = 8
    phase: str = "poly"
    phase_std: float = 1.0
    phase_length: float = 8.0
    snr_db: float = 35.0
    noise_rho: float = 0.0
    distance: float = 1.25
    rows: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def name(self) -> str:
        ph = self.phase if self.phase == "poly" else f"{self.phase}{self.phase_std:g}" + (
            f"@{self.phase_length:g}px" if self.phase == "random" else "")
        corr = f",rho{self.noise_rho:g}" if self.noise_rho else ""
        return f"{self.coil}{self.coils}/{ph}/{self.snr_db:g}dB{corr}"


def simulate_acquisition(image: np.ndarray, acq: Acquisition, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude slices (S, H, W) → (fully sampled k-space (S, C, H, W) complex64, reference (S, H, W) float32 =
    RSS of the noise-free coil images). One coil array per call (the array does not move between slices)."""
    k, ref, _, _ = simulate_acquisition_full(image, acq, seed)
    return k, ref


def simulate_acquisition_full(image: np.ndarray, acq: Acquisition, seed: int
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`simulate_acquisition` plus the coil maps (C, H, W) and the image phase (S, H, W)."""
    img = np.asarray(image, dtype=np.float32)
    img = img[None] if img.ndim == 2 else img
    S, H, W = img.shape
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xAC9]))
    maps = coil_family(acq.coil, acq.coils, (H, W), rng, distance=acq.distance, rows=acq.rows)
    ks, refs, phases = [], [], []
    for s in range(S):
        supp = img[s] > 0.05 * float(np.percentile(img[s], 99))
        ph = phase_family(acq.phase, (H, W), rng, std=acq.phase_std, length=acq.phase_length, support=supp)
        coil_imgs = maps * (img[s] * np.exp(1j * ph))[None]
        refs.append(np.sqrt(np.sum(np.abs(coil_imgs) ** 2, axis=0)).astype(np.float32))
        ks.append(add_noise(fft2c_np(coil_imgs), acq.snr_db, rng, acq.noise_rho))
        phases.append(ph)
    return np.stack(ks).astype(np.complex64), np.stack(refs), maps, np.stack(phases).astype(np.float32)
