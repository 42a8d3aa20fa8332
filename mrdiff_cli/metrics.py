"""Image-quality metrics per slice (fastMRI conventions): PSNR and SSIM with data range = max(reference),
NMSE = ||x - ref||^2 / ||ref||^2. numpy only."""

from __future__ import annotations

import numpy as np


def nmse(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sum((x - ref) ** 2) / max(np.sum(ref**2), 1e-20))


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float | None = None) -> float:
    dr = float(ref.max()) if data_range is None else data_range
    mse = float(np.mean((x - ref) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(dr**2 / mse))


def _box(img: np.ndarray, w: int) -> np.ndarray:
    """Mean over w×w windows, 'valid' region (summed-area table)."""
    c = np.pad(np.cumsum(np.cumsum(img, 0), 1), ((1, 0), (1, 0)))
    s = c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]
    return s / (w * w)


def ssim(x: np.ndarray, ref: np.ndarray, data_range: float | None = None, win: int = 7) -> float:
    """SSIM (Wang et al. 2004) with a uniform win×win window, K1=0.01, K2=0.03, sample covariance."""
    x = x.astype(np.float64)
    ref = ref.astype(np.float64)
    dr = float(ref.max()) if data_range is None else data_range
    c1, c2 = (0.01 * dr) ** 2, (0.03 * dr) ** 2
    ux, uy = _box(x, win), _box(ref, win)
    n = win * win
    cov = n / (n - 1)
    vx = cov * (_box(x * x, win) - ux**2)
    vy = cov * (_box(ref * ref, win) - uy**2)
    vxy = cov * (_box(x * ref, win) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def slice_metrics(x: np.ndarray, ref: np.ndarray) -> dict:
    """Metrics of one magnitude slice against its reference (volume-wide data range is the caller's choice)."""
    return {"psnr": psnr(x, ref), "ssim": ssim(x, ref), "nmse": nmse(x, ref)}


def volume_metrics(vol: np.ndarray, ref: np.ndarray) -> dict:
    """Per-slice metrics (data range = the reference volume's max, as fastMRI) and their means."""
    dr = float(ref.max())
    per = [{"psnr": psnr(v, r, dr), "ssim": ssim(v, r, dr), "nmse": nmse(v, r)} for v, r in zip(vol, ref, strict=False)]
    mean = {k: float(np.mean([p[k] for p in per])) for k in ("psnr", "ssim", "nmse")}
    return {"per_slice": per, "mean": mean}
