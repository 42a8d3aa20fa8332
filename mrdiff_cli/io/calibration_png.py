"""The calibration plots of an uncertainty report (``tasks.calibration.calibration_report``) as one PNG, two panels:

* left, the calibration curve: RMSE of the error against the mean std per bin, with the identity line,
  Spearman and coverage;
* right, the sparsification curves: RMSE of the error over the pixels left after removing a growing fraction
  of them, largest std first (red) or largest error first (the oracle, grey), with the AUSE.

Reports without ``overall.sparsification`` (written before it existed) get the left panel only."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Z_95 = 1.96  # the coverage level the report's headline uses (tasks.calibration.Z_95)
RED = (200, 30, 30)
GREY = (120, 120, 120)
GRID = (225, 225, 225)


def _nice_max(v: float) -> float:
    """Round an axis maximum up to 1, 2, 2.5 or 5 x 10^k."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    e = 10.0 ** math.floor(math.log10(v))
    for f in (1.0, 2.0, 2.5, 5.0, 10.0):
        if v <= f * e * (1 + 1e-9):
            return f * e
    return 10.0 * e


def _axes(d, font, size: int, xmax: float, ymax: float, title: str, sub: str, xlabel: str,
          ylabel: str) -> Callable[[float, float], tuple[float, float]]:
    """Draw the plot box, grid, tick labels and titles of a ``size`` x ``size`` panel; return data → pixel."""
    left, right, top, bottom = 58, 14, 34, 44
    x0, y0, x1, y1 = left, top, size - right, size - bottom  # plot box (y grows downwards)

    def px(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x1 - x0) * x / xmax, y1 - (y1 - y0) * y / ymax)

    for tx, ty in zip(np.linspace(0.0, xmax, 5), np.linspace(0.0, ymax, 5), strict=True):
        gx, _ = px(tx, 0)
        _, gy = px(0, ty)
        d.line([(gx, y0), (gx, y1)], fill=GRID)
        d.line([(x0, gy), (x1, gy)], fill=GRID)
        xl, yl = f"{tx:.3g}", f"{ty:.3g}"
        d.text((gx - 3 * len(xl), y1 + 4), xl, fill="black", font=font)
        d.text((x0 - 6 - 6 * len(yl), gy - 5), yl, fill="black", font=font)
    d.rectangle([x0, y0, x1, y1], outline="black")
    d.text((x0, 4), title, fill="black", font=font)
    d.text((x0, 18), sub, fill="black", font=font)
    d.text(((x0 + x1) / 2 - 3 * len(xlabel), size - 16), xlabel, fill="black", font=font)
    d.text((4, y0 - 14), ylabel, fill="black", font=font)
    return px


def _curve(d, pts: Sequence[tuple[float, float]], colour: tuple[int, int, int], dots: bool = True) -> None:
    if len(pts) > 1:
        d.line(list(pts), fill=colour, width=2)
    if dots:
        for (cx, cy) in pts:
            d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)


def _no_data(d, font, size: int) -> None:
    d.text((size / 2 - 30, size / 2 - 6), "no support pixels", fill="black", font=font)


def _calibration_panel(report: dict[str, Any], size: int):
    """RMSE vs predicted std per bin, and the identity line."""
    from PIL import Image, ImageDraw, ImageFont

    curve = report.get("curve") or {}
    xs = [float(v) for v in curve.get("std_mean", [])]
    ys = [float(v) for v in curve.get("rmse", [])]
    font = ImageFont.load_default()
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    vmax = _nice_max(max(xs + ys) if xs else 1.0)
    ov = report.get("overall") or {}
    cov = ov.get(f"coverage_{report.get('z', Z_95):g}")
    rho = ov.get("spearman")
    sub = f"spearman {rho:.3f}" if rho is not None else "spearman n/a"
    sub += f"   coverage(1.96 std) {cov:.3f}" if cov is not None else ""
    px = _axes(d, font, size, vmax, vmax, "calibration: RMSE vs predicted std", sub, "predicted std (bin mean)", "RMSE")
    n_dash = 24  # identity line (dashed)
    for i in range(0, n_dash, 2):
        a, b = i / n_dash * vmax, (i + 1) / n_dash * vmax
        d.line([px(a, a), px(b, b)], fill=GREY, width=1)
    if xs:
        _curve(d, [px(x, y) for x, y in zip(xs, ys, strict=False)], RED)
    else:
        _no_data(d, font, size)
    _, ytop = px(0, vmax)
    xr, _ = px(vmax, 0)
    d.text((xr - 70, ytop + 4), "- - identity", fill=GREY, font=font)
    return img


def _sparsification_panel(report: dict[str, Any], size: int):
    """RMSE of the pixels left vs the fraction removed: largest std first (red) and the oracle (grey)."""
    from PIL import Image, ImageDraw, ImageFont

    ov = report.get("overall") or {}
    sp = ov.get("sparsification") or {}
    fr = [float(v) for v in sp.get("fraction_removed", [])]
    by_std = [float(v) for v in sp.get("rmse_by_std", [])]
    oracle = [float(v) for v in sp.get("rmse_oracle", [])]
    font = ImageFont.load_default()
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    ymax = _nice_max(max(by_std + oracle) if by_std else 1.0)
    ause = ov.get("ause", sp.get("ause"))
    sub = f"AUSE {ause:.3f}" if ause is not None else "AUSE n/a"
    if sp.get("ause_random") is not None:
        sub += f"   (random std ~{sp['ause_random']:.3f})"
    px = _axes(d, font, size, 1.0, ymax, "sparsification: RMSE of pixels left", sub, "fraction removed", "RMSE")
    if by_std:
        _curve(d, [px(x, y) for x, y in zip(fr, oracle, strict=False)], GREY, dots=False)
        _curve(d, [px(x, y) for x, y in zip(fr, by_std, strict=False)], RED, dots=False)
    else:
        _no_data(d, font, size)
    _, ytop = px(0, ymax)
    xr, _ = px(1.0, 0)
    d.text((xr - 100, ytop + 4), "largest std first", fill=RED, font=font)
    d.text((xr - 100, ytop + 16), "oracle (largest err)", fill=GREY, font=font)
    return img


def render_calibration(report: dict[str, Any], size: int = 360):
    """PIL RGB image: the calibration curve (``size`` x ``size``) and, when the report has one, the
    sparsification panel beside it (2 ``size`` x ``size``)."""
    from PIL import Image

    left = _calibration_panel(report, size)
    if not (report.get("overall") or {}).get("sparsification"):
        return left
    img = Image.new("RGB", (2 * size, size), "white")
    img.paste(left, (0, 0))
    img.paste(_sparsification_panel(report, size), (size, 0))
    return img


def write_calibration_png(path: str | os.PathLike, report: dict[str, Any], overwrite: bool = False) -> Path:
    """Write the calibration curve and the sparsification curves of ``report`` (from
    :func:`calibration_report`) as one PNG, atomically."""
    from .atomic import atomic_path

    img = render_calibration(report)
    with atomic_path(path, overwrite) as tmp:
        img.save(str(tmp), format="PNG")
    return Path(path)
