"""Write a grid of 2D images as one PNG (atomic)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def to_uint8(img: np.ndarray, vmax: float | None = None) -> np.ndarray:
    img = np.nan_to_num(np.asarray(img, dtype=np.float32))
    vmax = float(np.percentile(img, 99.5)) if vmax is None else vmax
    vmax = vmax if vmax > 0 else 1.0
    return (np.clip(img / vmax, 0, 1) * 255).astype(np.uint8)


def save_grid(path: str | Path, images: np.ndarray, ncols: int | None = None, vmax: float | None = None,
              overwrite: bool = True) -> Path:
    """images (N, H, W) → one PNG laid out in a grid (shared intensity scale when vmax given)."""
    from PIL import Image

    images = np.asarray(images)
    n, h, w = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    canvas = np.zeros((nrows * h, ncols * w), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = to_uint8(images[i], vmax)
    from .atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(canvas).save(tmp, format="PNG")
    return path
