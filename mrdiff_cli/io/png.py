"""Side-by-side grayscale PNG previews (PIL), written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_path

TITLE_HEIGHT = 14
GAP = 4


def normalise_panel(img: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """2D array → uint8: magnitude (complex input), clipped to [0, p-th percentile], scaled to 0..255."""
    a = np.asarray(img)
    if np.iscomplexobj(a):
        a = np.abs(a)
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if a.ndim != 2:
        raise ValueError(f"preview panels must be 2D, got shape {a.shape}")
    lo = min(float(a.min()), 0.0) if a.size else 0.0
    hi = float(np.percentile(a, percentile)) if a.size else 1.0
    if hi <= lo:
        hi = float(a.max()) if a.size and a.max() > lo else lo + 1.0
    return (np.clip((a - lo) / (hi - lo), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_preview(panels: Sequence[tuple[str, np.ndarray]]):
    """PIL image with the panels side by side, each titled (PIL's default font) above the image."""
    from PIL import Image, ImageDraw, ImageFont

    if not panels:
        raise ValueError("no panels to preview")
    tiles = [(str(t), normalise_panel(a)) for t, a in panels]
    height = max(a.shape[0] for _, a in tiles) + TITLE_HEIGHT
    width = sum(a.shape[1] for _, a in tiles) + GAP * (len(tiles) - 1)
    canvas = Image.new("L", (width, height), color=0)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    x = 0
    for title, a in tiles:
        canvas.paste(Image.fromarray(a, mode="L"), (x, TITLE_HEIGHT))
        draw.text((x + 2, 1), title, fill=255, font=font)
        x += a.shape[1] + GAP
    return canvas


def write_preview(path: str | os.PathLike, panels: Sequence[tuple[str, np.ndarray]],
                  overwrite: bool = False) -> Path:
    """Write a side-by-side grayscale PNG of ``panels`` = [(title, 2D array), ...]."""
    img = render_preview(panels)
    with atomic_path(path, overwrite) as tmp:
        img.save(str(tmp), format="PNG")
    return Path(path)
