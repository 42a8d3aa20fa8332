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


def cs_inputs(k: np.ndarray, mask: np.ndarray, zf: np.ndarray | None = None):
    """What the benchmarks' CS runs on, from fully sampled k-space ``k`` (S, C, H, W) and ``mask`` (H, W): (the
    measured data coil-compressed as the CLI does it (> 12 coils), their ESPIRiT maps (the SENSE baseline's), the
    lambda scale = the zero-filled image's 99th percentile), as numpy arrays. ``zf``: the zero-filled images when the
    caller has them."""
    import torch

    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    base = Reconstructor(None, ReconOptions(method="sense"))
    if zf is None:
        zf = Reconstructor(None, ReconOptions(method="zero-filled")).reconstruct(k, mask, "sense").images
    yc, _ = base._compress(torch.as_tensor(k * mask), None, "sense")
    maps = base.estimate_maps(yc, torch.as_tensor(mask))
    return yc.numpy(), maps.numpy(), float(np.percentile(zf, 99))
