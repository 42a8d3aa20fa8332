"""Calibration of posterior uncertainty maps against a reference (numpy + PIL only; no scipy, no matplotlib).

Given the posterior mean magnitude ``mean``, the posterior std of the magnitude ``std`` and a reference
``ref`` (all (slices, H, W)), the error is ``err = |mean - ref|``. Every statistic is computed on the
*object support* only: pixels where ``ref > support_frac * max(ref)`` (the volume's maximum, 5 % by
default). Background pixels are excluded because there both the error and the std are ~0 and they would
dominate (and inflate) rank correlations and coverage.

Reported per slice and pooled over the volume (``overall``):

* ``spearman``: Spearman rank correlation of std vs err (Pearson correlation of the average ranks, ties
  averaged). 1: the std ranks pixels exactly like the error does; ~0: the std says nothing about where
  errors are. ``None`` when either quantity is constant on the support.
* ``coverage_1.96``: fraction of support pixels with ``err <= 1.96 std``; 0.95 for a calibrated Gaussian
  error, lower = over-confident std, higher = under-confident.
* ``std_mean_support`` / ``std_mean_background``: mean std inside / outside the support.
* ``rmse``: sqrt(mean err^2) on the support; ``rms_std``: sqrt(mean std^2) on the support; their ratio
  ``rmse_over_rms_std`` (1 = the std has the right overall scale).

Pooled only: a binned calibration curve. Support pixels are sorted by std and split into ``n_bins``
equal-count bins (deciles by default); per bin the mean predicted std, the RMSE of err and the count. A
calibrated map lies on the identity ``RMSE = std``. ``ence`` (expected normalised calibration error) is the
mean over bins of ``|RMSE_b - std_b| / std_b``.

:func:`write_calibration_png` draws that curve (RMSE vs predicted std, with the identity line) with PIL.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

Z_95 = 1.96


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


def _block(std: np.ndarray, err: np.ndarray, supp: np.ndarray, z: float) -> dict[str, Any]:
    s_in, e_in = std[supp], err[supp]
    n = int(s_in.size)
    out: dict[str, Any] = {
        "support_pixels": n,
        "spearman": None,
        f"coverage_{z:g}": None,
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
            f"coverage_{z:g}": float(np.mean(e_in <= z * s_in)),
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
    per_slice = [_block(std[i], err[i], supp[i], z) for i in range(mean.shape[0])]
    overall = _block(std, err, supp, z)
    curve = calibration_curve(std[supp], err[supp], n_bins)
    ence = None
    pairs = [(s, r) for s, r in zip(curve["std_mean"], curve["rmse"]) if s > 0]
    if pairs:
        ence = float(np.mean([abs(r - s) / s for s, r in pairs]))
    overall["ence"] = ence
    report: dict[str, Any] = {
        "definition": (
            f"err = |posterior mean - reference|; support = reference > {support_frac:g} x max(reference); "
            f"spearman(std, err) and coverage (err <= {z:g} std) on support pixels only"
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
# PNG


def _nice_max(v: float) -> float:
    """Round an axis maximum up to 1, 2, 2.5 or 5 x 10^k."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    e = 10.0 ** math.floor(math.log10(v))
    for f in (1.0, 2.0, 2.5, 5.0, 10.0):
        if v <= f * e * (1 + 1e-9):
            return f * e
    return 10.0 * e


def render_calibration(report: dict[str, Any], size: int = 360):
    """PIL RGB image of the calibration curve: RMSE vs predicted std per bin, and the identity line."""
    from PIL import Image, ImageDraw, ImageFont

    curve = report.get("curve") or {}
    xs = [float(v) for v in curve.get("std_mean", [])]
    ys = [float(v) for v in curve.get("rmse", [])]
    font = ImageFont.load_default()
    left, right, top, bottom = 58, 14, 34, 44
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = left, top, size - right, size - bottom  # plot box (y grows downwards)
    vmax = _nice_max(max(xs + ys) if xs else 1.0)

    def px(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x1 - x0) * x / vmax, y1 - (y1 - y0) * y / vmax)

    # grid, ticks, labels
    for t in np.linspace(0.0, vmax, 5):
        gx, _ = px(t, 0)
        _, gy = px(0, t)
        d.line([(gx, y0), (gx, y1)], fill=(225, 225, 225))
        d.line([(x0, gy), (x1, gy)], fill=(225, 225, 225))
        label = f"{t:.3g}"
        d.text((gx - 3 * len(label), y1 + 4), label, fill="black", font=font)
        d.text((x0 - 6 - 6 * len(label), gy - 5), label, fill="black", font=font)
    d.rectangle([x0, y0, x1, y1], outline="black")
    # identity line (dashed)
    n_dash = 24
    for i in range(0, n_dash, 2):
        a, b = i / n_dash * vmax, (i + 1) / n_dash * vmax
        d.line([px(a, a), px(b, b)], fill=(120, 120, 120), width=1)
    # curve
    if xs:
        pts = [px(x, y) for x, y in zip(xs, ys)]
        if len(pts) > 1:
            d.line(pts, fill=(200, 30, 30), width=2)
        for (cx, cy) in pts:
            d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=(200, 30, 30))
    else:
        d.text(((x0 + x1) / 2 - 30, (y0 + y1) / 2), "no support pixels", fill="black", font=font)
    ov = report.get("overall") or {}
    cov = ov.get(f"coverage_{report.get('z', Z_95):g}")
    rho = ov.get("spearman")
    title = "calibration: RMSE vs predicted std"
    sub = f"spearman {rho:.3f}" if rho is not None else "spearman n/a"
    sub += f"   coverage(1.96 std) {cov:.3f}" if cov is not None else ""
    d.text((x0, 4), title, fill="black", font=font)
    d.text((x0, 18), sub, fill="black", font=font)
    d.text(((x0 + x1) / 2 - 45, size - 16), "predicted std (bin mean)", fill="black", font=font)
    d.text((4, y0 - 14), "RMSE", fill="black", font=font)
    d.text((x1 - 70, y0 + 4), "- - identity", fill=(120, 120, 120), font=font)
    return img


def write_calibration_png(path: str | os.PathLike, report: dict[str, Any], overwrite: bool = False) -> Path:
    """Write the calibration curve of ``report`` (from :func:`calibration_report`) as a PNG, atomically."""
    from ..io.atomic import atomic_path

    img = render_calibration(report)
    with atomic_path(path, overwrite) as tmp:
        img.save(str(tmp), format="PNG")
    return Path(path)
