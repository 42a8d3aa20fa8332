"""Calibration of posterior uncertainty maps against a reference (numpy + PIL only; no scipy, no matplotlib).

Given the posterior mean magnitude ``mean``, the posterior std of the magnitude ``std`` and a reference
``ref`` (all (slices, H, W)), the error is ``err = |mean - ref|``. Every statistic is computed on the
*object support* only: pixels where ``ref > support_frac * max(ref)`` (the volume's maximum, 5 % by
default). Background pixels are excluded because there both the error and the std are ~0 and they would
dominate (and inflate) rank correlations and coverage.

Reported per slice and pooled over the volume (``overall``):

* ``spearman``: Spearman rank correlation of std vs the pixel error err (Pearson correlation of the average
  ranks, ties averaged). 1: the std ranks pixels exactly like the error does; ~0: the std says nothing about
  where errors are. ``None`` when either quantity is constant on the support. A std describes the *scale* of
  the error distribution at a pixel, and err is one draw of it: even a perfect std scores well below 1 when
  that draw is mostly pixel-to-pixel noise.
* ``spearman_local``: Spearman of std vs the *locally pooled* error ``local_rms_error(err, 5)``: at each pixel
  the RMS of err over the 5 x 5 window centred on it (the pixel included; at the image edges only the pixels
  inside the image), an estimate of the local error scale that the std claims to predict
  (:func:`local_rms_error`; the window reaches into the background, the Spearman uses support pixels only).
  Issue #24's acceptance criterion: ``spearman_local >= 0.6``.
* ``coverage_1.96``: fraction of support pixels with ``err <= 1.96 std``; 0.95 for a calibrated Gaussian
  error, lower = over-confident std, higher = under-confident. ``coverage`` holds the same at the three
  nominal levels 68 / 90 / 95 % (z = 0.9945, 1.6449, 1.96, :data:`LEVELS`).
* ``spearman_local_oracle``: Spearman(local-error oracle, err), where the oracle is at each pixel the RMS of
  the true error over its 8 neighbours (3 x 3 window without the pixel itself, :func:`local_error_oracle`).
  It is a reference level: how well the true local error itself ranks |err|, not an upper bound. A std map
  can score above it (the oracle's 8-pixel estimate is noisy; 0.038 against an oracle at 0.005 was seen). A
  low value says that the error is mostly pixel-to-pixel noise (measurement noise passed through consistency,
  texture of the reference the prior does not reproduce), which no smooth map ranks pixel by pixel.
* ``std_mean_support`` / ``std_mean_background``: mean std inside / outside the support.
* ``rmse``: sqrt(mean err^2) on the support; ``rms_std``: sqrt(mean std^2) on the support; their ratio
  ``rmse_over_rms_std`` (1 = the std has the right overall scale).

Pooled only:

* ``curve``: a binned calibration curve. Support pixels are sorted by std and split into ``n_bins``
  equal-count bins (deciles by default); per bin the mean predicted std, the RMSE of err and the count. A
  calibrated map lies on the identity ``RMSE = std``. ``ence`` (expected normalised calibration error) is the
  mean over bins of ``|RMSE_b - std_b| / std_b``.
* ``sparsification`` and ``ause`` (:func:`sparsification`): remove the fraction f = 0, 1/20, ..., 19/20 of
  the support pixels with the largest std and take the RMSE of err over the pixels left (``rmse_by_std``);
  the *oracle* curve removes the pixels with the largest err instead (``rmse_oracle``, the lowest any ranking
  reaches). ``ause`` (area under the sparsification error) is the mean over f of ``rmse_by_std - rmse_oracle``
  divided by the RMSE of all support pixels: dimensionless, >= 0, 0 when the std ranks pixels like the error
  itself; a std unrelated to the error scores about ``sparsification["ause_random"]`` (its curve stays at the
  overall RMSE).

:func:`mrdiff_cli.io.calibration_png.write_calibration_png` draws the curve (RMSE vs predicted std, with the
identity line) and the sparsification curves (RMSE vs fraction removed) with PIL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Z_95 = 1.96
# two-sided central Gaussian intervals: nominal level -> z (|err| <= z std with that probability)
LEVELS = {"68": 0.9945, "90": 1.6449, "95": 1.9600}
LOCAL_WINDOW = 5  # spearman_local: the std against the RMS error over this window (issue #24)
SPARSIFICATION_STEPS = 20  # fractions removed: 0, 1/20, ..., 19/20


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1D array, ties get the average of their ranks (like ``scipy.stats.rankdata``)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size == 0:
        return a
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = np.arange(1, a.size + 1, dtype=np.float64)
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    return np.bincount(inv, weights=ranks)[inv] / counts[inv]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation of two equally long 1D samples; None when undefined (constant input)."""
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    if x.size != y.size:
        raise ValueError(f"spearman: sizes differ ({x.size} vs {y.size})")
    if x.size < 2:
        return None
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(np.dot(rx, rx)) * float(np.dot(ry, ry)))
    if den == 0.0:
        return None
    return float(np.clip(np.dot(rx, ry) / den, -1.0, 1.0))


def _window_sums(a: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of ``a`` (..., H, W) over the ``size`` x ``size`` window centred on each pixel, and the number of
    pixels of that window inside the image (the window is cut at the edges, nothing is padded in)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size {size}: must be an odd number >= 1 (a window centred on the pixel)")
    a = np.asarray(a, dtype=np.float64)
    H, W = a.shape[-2:]
    pad = size // 2

    def box(x: np.ndarray) -> np.ndarray:  # integral image of the zero-padded array, one leading zero row/column
        lead = [(0, 0)] * (x.ndim - 2)
        c = np.pad(x, lead + [(pad, pad), (pad, pad)]).cumsum(-2).cumsum(-1)
        c = np.pad(c, lead + [(1, 0), (1, 0)])
        return c[..., size:, size:] - c[..., :H, size:] - c[..., size:, :W] + c[..., :H, :W]

    return box(a), box(np.ones((H, W)))


def local_rms_error(err: np.ndarray, size: int = LOCAL_WINDOW) -> np.ndarray:
    """Per pixel the RMS of ``err`` over the ``size`` x ``size`` window centred on it, the pixel included (at the
    image edges: over the pixels of the window inside the image). err: (S, H, W) or (H, W) → numpy, same shape."""
    tot, cnt = _window_sums(np.asarray(err, dtype=np.float64) ** 2, size)
    return np.sqrt(np.clip(tot, 0.0, None) / cnt)


def local_error_oracle(err: np.ndarray, size: int = 3) -> np.ndarray:
    """Leave-one-out local RMS of ``err`` (S, H, W): sqrt of the mean of err^2 over the ``size`` x ``size``
    window around each pixel, the pixel itself excluded (edges: the neighbours inside the image)."""
    e2 = np.asarray(err, dtype=np.float64) ** 2
    tot, cnt = _window_sums(e2, size)
    return np.sqrt(np.clip(tot - e2, 0.0, None) / np.maximum(cnt - 1.0, 1.0))


def _kept_rmse(e2_sorted: np.ndarray, key_sorted: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """RMSE over the ``keep`` pixels with the smallest key (``e2_sorted``: err^2 in ascending key order). Pixels
    with tied keys are interchangeable: a tie group cut by ``keep`` counts with its mean err^2 (the expected
    value over the group's order), so the result does not depend on how the sort broke the tie."""
    cs = np.concatenate([[0.0], np.cumsum(e2_sorted)])
    ends = np.concatenate([[0], np.flatnonzero(np.diff(key_sorted) != 0) + 1, [key_sorted.size]])
    sums = np.interp(keep, ends, cs[ends])  # linear inside a tie group: its mean err^2 per pixel kept
    return np.sqrt(np.clip(sums, 0.0, None) / keep)


def sparsification(std: np.ndarray, err: np.ndarray, n: int = SPARSIFICATION_STEPS) -> dict[str, Any]:
    """Sparsification curves of ``std`` against ``err`` (any shape, flattened; pass the support pixels).

    For the fractions f = k / n (k = 0 .. n-1) of pixels removed: ``rmse_by_std``, the RMSE of err over the
    pixels left after removing the fraction f with the largest std (``floor(f N)`` pixels; tied stds count
    with their group's mean err^2), and ``rmse_oracle``, the same removing the largest err (non-increasing in f,
    the lowest curve any ranking reaches). ``ause`` = mean over f of (rmse_by_std - rmse_oracle) / RMSE of all
    pixels: dimensionless, >= 0, 0 when std ranks the pixels like err. ``ause_random``: mean over f of
    (1 - rmse_oracle / RMSE), about what a std unrelated to the error scores (its curve stays at the RMSE).
    ``ause`` and ``ause_random`` are None without pixels or when err is 0 everywhere.
    """
    std = np.asarray(std, dtype=np.float64).ravel()
    err = np.asarray(err, dtype=np.float64).ravel()
    if std.size != err.size:
        raise ValueError(f"sparsification: sizes differ ({std.size} vs {err.size})")
    if n < 1:
        raise ValueError(f"sparsification: n = {n}, must be >= 1")
    N = std.size
    frac = [k / n for k in range(n)]
    out: dict[str, Any] = {"fraction_removed": frac, "rmse_by_std": [], "rmse_oracle": [], "ause": None,
                           "ause_random": None}
    if N == 0:
        return out
    keep = np.array([N - (k * N) // n for k in range(n)], dtype=np.float64)  # >= N / n >= 1
    by_std = np.argsort(std, kind="mergesort")
    by_err = np.argsort(err, kind="mergesort")
    e2 = err**2
    r_std = _kept_rmse(e2[by_std], std[by_std], keep)
    r_orc = _kept_rmse(e2[by_err], err[by_err], keep)
    out["rmse_by_std"] = [float(v) for v in r_std]
    out["rmse_oracle"] = [float(v) for v in r_orc]
    total = float(r_std[0])  # nothing removed: the RMSE of all pixels
    if total > 0:
        out["ause"] = float(np.mean(r_std - r_orc)) / total
        out["ause_random"] = float(np.mean(1.0 - r_orc / total))
    return out


def _block(std: np.ndarray, err: np.ndarray, supp: np.ndarray, z: float, local: np.ndarray | None = None,
           oracle: np.ndarray | None = None) -> dict[str, Any]:
    s_in, e_in = std[supp], err[supp]
    n = int(s_in.size)
    out: dict[str, Any] = {
        "support_pixels": n,
        "spearman": None,
        "spearman_local": None,
        "spearman_local_oracle": None,
        f"coverage_{z:g}": None,
        "coverage": {lvl: None for lvl in LEVELS},
        "std_mean_support": None,
        "std_mean_background": float(std[~supp].mean()) if (~supp).any() else None,
        "rmse": None,
        "rms_std": None,
        "rmse_over_rms_std": None,
    }
    if n == 0:
        return out
    rmse = float(np.sqrt(np.mean(e_in**2)))
    rms_std = float(np.sqrt(np.mean(s_in**2)))
    out.update(
        {
            "spearman": spearman(s_in, e_in),
            "spearman_local": spearman(s_in, local[supp]) if local is not None else None,
            "spearman_local_oracle": spearman(oracle[supp], e_in) if oracle is not None else None,
            f"coverage_{z:g}": float(np.mean(e_in <= z * s_in)),
            "coverage": {lvl: float(np.mean(e_in <= zl * s_in)) for lvl, zl in LEVELS.items()},
            "std_mean_support": float(s_in.mean()),
            "rmse": rmse,
            "rms_std": rms_std,
            "rmse_over_rms_std": rmse / rms_std if rms_std > 0 else None,
        }
    )
    return out


def calibration_curve(std: np.ndarray, err: np.ndarray, n_bins: int = 10) -> dict[str, list]:
    """Equal-count bins of ``std`` (1D): per bin the std range, mean std, RMSE of ``err`` and count."""
    std, err = np.asarray(std, np.float64).ravel(), np.asarray(err, np.float64).ravel()
    curve: dict[str, list] = {"std_lo": [], "std_hi": [], "std_mean": [], "rmse": [], "count": []}
    if std.size == 0:
        return curve
    order = np.argsort(std, kind="mergesort")
    for idx in np.array_split(order, min(n_bins, std.size)):
        s, e = std[idx], err[idx]
        curve["std_lo"].append(float(s.min()))
        curve["std_hi"].append(float(s.max()))
        curve["std_mean"].append(float(s.mean()))
        curve["rmse"].append(float(np.sqrt(np.mean(e**2))))
        curve["count"].append(int(idx.size))
    return curve


def calibration_report(
    mean: np.ndarray,
    std: np.ndarray,
    ref: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    support_frac: float = 0.05,
    n_bins: int = 10,
    z: float = Z_95,
) -> dict[str, Any]:
    """Calibration of ``std`` against ``|mean - ref|`` on the object support (see the module docstring).

    mean, std, ref: (slices, H, W) (or (H, W)) magnitude arrays of the same shape; mask: the sampling
    mask (H, W) the reconstruction used (only its sampled fraction is recorded). Returns a JSON-ready dict.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if mean.ndim == 2:
        mean, std, ref = mean[None], std[None], ref[None]
    if not (mean.shape == std.shape == ref.shape) or mean.ndim != 3:
        raise ValueError(f"calibration_report: mean {mean.shape}, std {std.shape} and ref {ref.shape} must all be (slices, H, W)")
    err = np.abs(mean - ref)
    finite = np.isfinite(err) & np.isfinite(std)
    rmax = float(np.nanmax(ref)) if ref.size else 0.0
    thresh = support_frac * rmax
    supp = (ref > thresh) & finite
    err0 = np.where(np.isfinite(err), err, 0.0)
    local = local_rms_error(err0, LOCAL_WINDOW)
    oracle = local_error_oracle(err0)
    per_slice = [_block(std[i], err[i], supp[i], z, local[i], oracle[i]) for i in range(mean.shape[0])]
    overall = _block(std, err, supp, z, local, oracle)
    curve = calibration_curve(std[supp], err[supp], n_bins)
    ence = None
    pairs = [(s, r) for s, r in zip(curve["std_mean"], curve["rmse"], strict=False) if s > 0]
    if pairs:
        ence = float(np.mean([abs(r - s) / s for s, r in pairs]))
    overall["ence"] = ence
    sp = sparsification(std[supp], err[supp], SPARSIFICATION_STEPS)
    overall["sparsification"] = sp
    overall["ause"] = sp["ause"]
    report: dict[str, Any] = {
        "definition": (
            f"err = |posterior mean - reference|; support = reference > {support_frac:g} x max(reference); "
            f"on support pixels only: spearman(std, err), spearman_local(std, {LOCAL_WINDOW}x{LOCAL_WINDOW} local RMS "
            f"of err), coverage (err <= {z:g} std), sparsification (RMSE of err after removing the largest std vs "
            "the largest err) and ause (its mean gap / RMSE of err); spearman_local_oracle: Spearman(3x3 "
            "leave-one-out local RMS of err, err), a reference level, not an upper bound"
        ),
        "support_threshold": thresh,
        "z": z,
        "overall": overall,
        "per_slice": per_slice,
        "curve": curve,
    }
    if mask is not None:
        m = np.asarray(mask)
        report["sampled_fraction"] = float((m > 0).mean()) if m.size else None
    return report


# ----------------------------------------------------------------------------------------------------------
# measurement noise, variance pooling and the calibration map shipped with a model


MIN_NOISE_COILS = 4


def _calibration_matrix(kc: np.ndarray, kern: int) -> np.ndarray:
    """Rows: every kern x kern patch of the coil k-spaces kc (C, h, w), all coils concatenated (ESPIRiT's matrix)."""
    C, h, w = kc.shape
    win = np.lib.stride_tricks.sliding_window_view(kc, (kern, kern), axis=(1, 2))  # (C, h-k+1, w-k+1, k, k)
    return np.ascontiguousarray(win.transpose(1, 2, 0, 3, 4)).reshape((h - kern + 1) * (w - kern + 1), C * kern * kern)


def _unit_noise_svals(shape: tuple[int, int, int], kern: int) -> np.ndarray:
    """Singular values of the calibration matrix of unit complex white noise of ``shape`` (fixed seed)."""
    rng = np.random.default_rng(0)
    kn = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2.0)
    return np.linalg.svd(_calibration_matrix(kn, kern), compute_uv=False)


def estimate_kspace_noise(kspace, mask, kern: int = 5, tail: float = 0.25):
    """Per-slice std sigma_n of the complex measurement noise (E|n|^2 = sigma_n^2 per k-space value), from the
    coils' redundancy in the fully sampled calibration centre.

    The image seen by C coils with smooth sensitivities spans only part of the space of kern x kern multi-coil
    k-space patches (ESPIRiT's null space); white noise fills all of it. The smallest ``tail`` fraction of the
    singular values of the calibration matrix (all patches of the centre) is therefore noise: sigma_n is the ratio
    of their median to that of the same matrix built from unit white noise. Signal leaking into that tail biases
    the estimate upwards (measured on the tune split: 1.04-1.31 x the true value at 30 dB, ~0 on noise-free data).
    Image content that is itself noise-like (e.g. the noise of the scan a magnitude image came from) is coherent
    across coils and is not counted, unlike the outer-k-space or high-pass estimators, which read it as noise.

    Needs >= 4 coils and a centred fully sampled block of at least (kern + 2)^2: otherwise 0 (the data are
    then treated as exact). kspace: (B, C, H, W) complex (torch or numpy), mask (H, W) → torch float32 (B,).
    """
    import torch

    from ..ops.masks import acs_shape

    k = torch.as_tensor(kspace).detach().cpu().numpy()
    m = np.asarray(mask, dtype=np.float32)
    out = torch.zeros(k.shape[0], dtype=torch.float32)
    ah, aw = acs_shape(m > 0)
    H, W = m.shape[-2:]
    if k.shape[1] < MIN_NOISE_COILS or min(ah, aw) < kern + 2:
        return out
    ys, xs = H // 2 - ah // 2, W // 2 - aw // 2
    centre = k[:, :, ys:ys + ah, xs:xs + aw].astype(np.complex128)
    ref = _unit_noise_svals(centre.shape[1:], kern)
    lo = int(round(ref.size * (1.0 - tail)))
    ref_med = float(np.median(ref[lo:]))
    for b in range(k.shape[0]):
        sv = np.linalg.svd(_calibration_matrix(centre[b], kern), compute_uv=False)
        out[b] = float(np.median(sv[lo:])) / ref_med
    return out


def pool_variance(var, size: int):
    """Mean of the variance over a ``size`` x ``size`` window (edges: over the pixels inside the image), per
    slice; ``size <= 1`` returns it unchanged. With K samples each pixel's variance has a relative standard error
    of sqrt(2 / (K - 1)); averaging n nearly independent neighbours divides that by about sqrt(n)."""
    import torch

    size = int(size)
    arr = np.asarray(var, dtype=np.float32)
    if size <= 1:
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr)).reshape(-1, 1, *arr.shape[-2:])
    pooled = torch.nn.functional.avg_pool2d(t, size, stride=1, padding=size // 2, count_include_pad=False)
    return pooled[..., : arr.shape[-2], : arr.shape[-1]].reshape(arr.shape).numpy()


def slice_scale(mean: np.ndarray, q: float = 0.99) -> np.ndarray:
    """Per-slice q-quantile of the mean magnitude (the prior's normalisation), (S, 1, 1); 1 where it is 0."""
    m = np.abs(np.asarray(mean, dtype=np.float64))
    s = np.quantile(m.reshape(m.shape[0], -1), q, axis=1)
    return np.where(s > 0, s, 1.0).reshape(-1, 1, 1)


METHODS = ("factor", "loglinear")
EPS_STD, DELTA_INT = 1e-3, 0.05


@dataclass
class Calibration:
    """A map from the raw sample spread (and the mean image) to a calibrated std, stored in ``config.json``.

    ``factor``:    std = factor * sqrt(pool(var_raw))
    ``loglinear``: with S the slice's 99th percentile of the mean, s = sqrt(pool(var_raw)) / S, m = mean / S:
                   std = factor * S * exp(log_c) * (s + 1e-3)^a * (m + 0.05)^b     (a >= 0: monotone in the spread)

    ``factor`` is the split-conformal factor: the ceil((n + 1) level)-th smallest |err| / (z std_model) over the
    n held-back calibration pixels, so that |err| <= z std holds for at least ``level`` of them (z = 1.96 at 95 %).

    ``single_coil``: optionally a second block of the same form, fitted on single-coil data, which
    :meth:`for_coils` returns for one-coil scans (their error and spread behave differently from SENSE's).
    """

    method: str = "factor"
    params: dict[str, float] = field(default_factory=lambda: {"factor": 1.0, "pool": 1})
    level: float = 0.95
    z: float = Z_95
    fitted_on: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    single_coil: Calibration | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibration method {self.method!r} unknown (choose from {', '.join(METHODS)})")
        need = {"factor": ("factor",), "loglinear": ("factor", "log_c", "a", "b")}[self.method]
        missing = [k for k in need if k not in self.params]
        if missing:
            raise ValueError(f"calibration '{self.method}' lacks params {', '.join(missing)}")
        bad = [k for k, v in self.params.items() if not isinstance(v, (int, float)) or not math.isfinite(float(v))]
        if bad or float(self.params["factor"]) <= 0:
            raise ValueError(f"calibration params must be finite numbers with factor > 0 (bad: {bad or ['factor']})")

    def block_for(self, n_coils: int) -> str:
        """Which block a scan with ``n_coils`` coils uses: "single_coil" for one coil when there is one, else "main"."""
        return "single_coil" if int(n_coils) == 1 and self.single_coil is not None else "main"

    def for_coils(self, n_coils: int) -> Calibration:
        """The block (:meth:`block_for`) for a scan with ``n_coils`` coils."""
        single = self.single_coil
        return single if single is not None and self.block_for(n_coils) == "single_coil" else self

    @property
    def pool(self) -> int:
        return int(self.params.get("pool", 1))

    def model_std(self, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        """The std before the conformal factor (S, H, W), float64."""
        v = pool_variance(np.maximum(np.asarray(var, dtype=np.float32), 0.0), self.pool).astype(np.float64)
        s = np.sqrt(v)
        if self.method == "factor":
            return s
        mean = np.asarray(mean, dtype=np.float64)
        squeeze = mean.ndim == 2
        if squeeze:
            mean, s = mean[None], s[None]
        S = slice_scale(mean)
        p = self.params
        out = S * math.exp(float(p["log_c"])) * (s / S + EPS_STD) ** float(p["a"]) * (np.abs(mean) / S + DELTA_INT) ** float(p["b"])
        return out[0] if squeeze else out

    def std(self, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        """Calibrated std map, float32, same shape as ``var``."""
        return (float(self.params["factor"]) * self.model_std(mean, var)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": dict(self.params), "level": self.level, "z": self.z,
                "fitted_on": list(self.fitted_on), **({"info": self.info} if self.info else {}),
                **({"single_coil": self.single_coil.to_dict()} if self.single_coil is not None else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        if not isinstance(d, dict) or "method" not in d or not isinstance(d.get("params"), dict):
            raise ValueError("calibration block must be an object with 'method' and 'params'")
        single = d.get("single_coil")
        if single is not None and (not isinstance(single, dict) or "single_coil" in single):
            raise ValueError("calibration 'single_coil' must be one calibration block (not nested)")
        return cls(method=str(d["method"]), params={k: v for k, v in d["params"].items()},
                   level=float(d.get("level", 0.95)), z=float(d.get("z", Z_95)),
                   fitted_on=[str(v) for v in d.get("fitted_on", [])], info=dict(d.get("info") or {}),
                   single_coil=cls.from_dict(single) if single is not None else None)


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Split-conformal threshold: the ceil((n + 1) level)-th smallest score (the largest when that exceeds n).
    At least ``level`` of the n scores lie at or below it (exactly ceil((n + 1) level) / n without ties)."""
    sc = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    n = sc.size
    if n == 0:
        raise ValueError("conformal_quantile: no scores")
    rank = min(n, int(math.ceil((n + 1) * float(level))))
    return float(sc[rank - 1])


def _support(ref: np.ndarray, support_frac: float) -> np.ndarray:
    return ref > support_frac * float(np.nanmax(ref))


def _fit_loglinear(r: np.ndarray, u: np.ndarray, v: np.ndarray, iters: int = 50) -> tuple[float, float, float]:
    """Gaussian NLL fit of log s = c + a u + b v to normalised errors r (convex; damped Newton). a >= 0."""

    def solve(cols: list[np.ndarray]) -> np.ndarray:
        X = np.stack([np.ones_like(r)] + cols, axis=1)
        theta = np.zeros(X.shape[1])
        theta[0] = 0.5 * math.log(max(float(np.mean(r**2)), 1e-30))
        r2 = r**2

        def nll(t: np.ndarray) -> float:
            return float(np.mean(X @ t + 0.5 * r2 * np.exp(-2.0 * (X @ t))))

        for _ in range(iters):
            lin = X @ theta
            w = r2 * np.exp(-2.0 * lin)
            g = X.T @ (1.0 - w) / r.size
            Hm = (X * (2.0 * w)[:, None]).T @ X / r.size + 1e-9 * np.eye(X.shape[1])
            step = np.linalg.solve(Hm, g)
            f0, t = nll(theta), 1.0
            while t > 1e-4 and nll(theta - t * step) > f0:
                t *= 0.5
            theta = theta - t * step
            if float(np.max(np.abs(t * step))) < 1e-8:
                break
        return theta

    th = solve([u, v])
    if th[1] < 0:  # keep the map monotone in the raw spread
        th2 = solve([v])
        th = np.array([th2[0], 0.0, th2[1]])
    return float(th[0]), float(th[1]), float(th[2])


def fit_calibration(
    means: Sequence[np.ndarray],
    variances: Sequence[np.ndarray],
    refs: Sequence[np.ndarray],
    *,
    method: str = "loglinear",
    pool: int = 3,
    level: float = 0.95,
    z: float = Z_95,
    support_frac: float = 0.05,
    fitted_on: Sequence[str] = (),
    info: dict[str, Any] | None = None,
) -> Calibration:
    """Fit a :class:`Calibration` on volumes with a reference (mean, raw variance, reference; each (S, H, W)).

    Split conformal on the object support (``ref > support_frac * max(ref)`` per volume): slices alternate between
    a *fit* half (even positions in the concatenated slice list: the log-linear shape ``log_c, a, b`` by Gaussian
    maximum likelihood) and a *calibration* half (odd positions: the conformal factor, so that
    ``|err| <= z * std`` on at least ``level`` of its pixels). ``factor``: no shape; the factor uses every slice.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method {method!r} unknown (choose from {', '.join(METHODS)})")
    if not (len(means) == len(variances) == len(refs)) or not means:
        raise ValueError("fit_calibration: need equally many (>= 1) means, variances and references")
    per_slice = []  # (err, mean, var, ref-support) for each slice, in order
    for mean, var, ref in zip(means, variances, refs, strict=True):
        mean, var, ref = (np.asarray(a, dtype=np.float64) for a in (mean, var, ref))
        if mean.ndim == 2:
            mean, var, ref = mean[None], var[None], ref[None]
        if not mean.shape == var.shape == ref.shape:
            raise ValueError(f"fit_calibration: shapes differ {mean.shape} {var.shape} {ref.shape}")
        supp = _support(ref, support_frac)
        for i in range(mean.shape[0]):
            per_slice.append((np.abs(mean[i] - ref[i]), mean[i], var[i], supp[i]))
    base = Calibration(method, {"factor": 1.0, "pool": int(pool), "log_c": 0.0, "a": 1.0, "b": 0.0}
                       if method == "loglinear" else {"factor": 1.0, "pool": int(pool)}, level, z)
    fit_idx = list(range(0, len(per_slice), 2)) if method == "loglinear" and len(per_slice) > 1 else []
    cal_idx = [i for i in range(len(per_slice)) if i not in fit_idx] or list(range(len(per_slice)))
    if fit_idx:
        rs, us, vs = [], [], []
        for i in fit_idx:
            err, mean, var, supp = per_slice[i]
            S = float(slice_scale(mean[None])[0, 0, 0])
            s = np.sqrt(pool_variance(np.maximum(var, 0.0)[None], pool)[0].astype(np.float64)) / S
            rs.append(err[supp] / S)
            us.append(np.log(s[supp] + EPS_STD))
            vs.append(np.log(np.abs(mean[supp]) / S + DELTA_INT))
        log_c, a, b = _fit_loglinear(np.concatenate(rs), np.concatenate(us), np.concatenate(vs))
        base.params.update({"log_c": log_c, "a": a, "b": b})
    scores = []
    for i in cal_idx:
        err, mean, var, supp = per_slice[i]
        sm = base.model_std(mean[None], var[None])[0]
        scores.append(err[supp] / np.maximum(z * sm[supp], 1e-30))
    sc = np.concatenate(scores)
    base.params["factor"] = max(conformal_quantile(sc, level), 1e-12)
    base.fitted_on = [str(f) for f in fitted_on]
    base.info = {"fit_slices": len(fit_idx), "calibration_slices": len(cal_idx), "calibration_pixels": int(sc.size),
                 "support_frac": support_frac, **(info or {})}
    return base


# ----------------------------------------------------------------------------------------------------------
# PNG
