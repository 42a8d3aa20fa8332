"""The calibration curve of an uncertainty report (``tasks.calibration.calibration_report``) as a PNG:
RMSE of the error against the mean std per bin, with the identity line, Spearman and coverage."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

Z_95 = 1.96  # the coverage level the report's headline uses (tasks.calibration.Z_95)


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
        pts = [px(x, y) for x, y in zip(xs, ys, strict=False)]
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
    from .atomic import atomic_path

    img = render_calibration(report)
    with atomic_path(path, overwrite) as tmp:
        img.save(str(tmp), format="PNG")
    return Path(path)
