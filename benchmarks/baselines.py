"""Classical baselines shared by the benchmarks (needs the bench extra: sigpy)."""

from __future__ import annotations

import numpy as np


def cs_l1wavelet(y: np.ndarray, maps: np.ndarray, mask: np.ndarray, lam: float, iters: int = 60) -> np.ndarray:
    """L1-wavelet compressed sensing (sigpy ``L1WaveletRecon``) of each slice of k-space ``y`` (S, C, H, W) with
    coil maps (S, C, H, W) and sampling mask (H, W) → magnitude images (S, H, W)."""
    import sigpy.mri.app as app

    out = []
    for s in range(y.shape[0]):
        x = app.L1WaveletRecon(y[s], maps[s], lam, weights=mask, max_iter=iters, show_pbar=False).run()
        out.append(np.abs(np.asarray(x)))
    return np.stack(out)
