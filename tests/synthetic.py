"""Synthetic training data shared by the training tests."""

from __future__ import annotations

import numpy as np


def head_volume(shape=(24, 28, 12), seed: int = 0) -> np.ndarray:
    """A textured ellipsoid "head" (bright rim, textured core), zero outside."""
    rng = np.random.default_rng(seed)
    X, Y, Z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    a = 0.75 + 0.1 * rng.random(3)
    r = (X / a[0]) ** 2 + (Y / a[1]) ** 2 + (Z / a[2]) ** 2
    core = 0.4 * (1 + 0.3 * np.sin(9 * X + 7 * Y + 3 * Z + 6 * rng.random()))
    vol = (0.6 + np.where(r < 0.6, core, 0.0)) * (1 + 0.05 * rng.standard_normal(shape)) * (r < 1)
    return np.abs(vol).astype(np.float32)
