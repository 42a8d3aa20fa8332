"""Which map ranks the error? Spearman(feature, 5x5 local RMS error of the posterior mean) on the cached rows of
``benchmarks/suite_uncertainty.py`` (tune split by default; nothing is fitted here).

Features: the shipped calibrated std; the pooled sample variance; the pooled CG noise-variance map; image features
of the mean (pooled squared magnitude, gradient, Laplacian); the sample std times the mean; and the variance
mixed with the gradient or the noise map (each normalised by its median on the head).

    python benchmarks/unc_features.py [--split tune]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import suite_uncertainty as su

from mrdiff_cli.tasks.calibration import pool_variance, spearman
from mrdiff_cli.tasks.scan_calibration import HoldoutCalibration


def grad2(m: np.ndarray) -> np.ndarray:
    gy, gx = np.zeros_like(m), np.zeros_like(m)
    gy[..., 1:-1, :] = (m[..., 2:, :] - m[..., :-2, :]) / 2
    gx[..., :, 1:-1] = (m[..., :, 2:] - m[..., :, :-2]) / 2
    return gx**2 + gy**2


def lap2(m: np.ndarray) -> np.ndarray:
    lap = np.zeros_like(m)
    lap[..., 1:-1, 1:-1] = (4 * m[..., 1:-1, 1:-1] - m[..., 2:, 1:-1] - m[..., :-2, 1:-1] - m[..., 1:-1, 2:]
                            - m[..., 1:-1, :-2])
    return lap**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune")
    ap.add_argument("--pool", type=int, default=7)
    a = ap.parse_args()
    rows = su.load_rows(Path(f"benchmarks/results/unc_{a.split}.jsonl"))
    su.backfill_noise_maps(rows)
    cal = HoldoutCalibration(factor=1.5708, pool=7, noise_weight=0.25, remove_noise=False)  # the shipped constants
    res: dict[str, list[float]] = {}
    P = a.pool
    for row in rows:
        std = su.calibrated(row, cal)
        if std is None:
            continue
        d = su.arrays(row["key"])
        supp, m = d["support"], d["mean"]
        local = np.sqrt(pool_variance(np.abs(m - d["truth"]) ** 2, 5))[supp]
        feats = {"calibrated std": std, "sample variance": pool_variance(d["var"], P),
                 "noise map": pool_variance(d["noise_var"], P), "mean^2": pool_variance(m**2, P),
                 "gradient^2": pool_variance(grad2(m), P), "laplacian^2": pool_variance(lap2(m), P),
                 "sample std x mean": np.sqrt(pool_variance(d["var"], P)) * pool_variance(m, P)}
        med = {k: np.median(feats[k][supp]) for k in ("sample variance", "gradient^2", "noise map")}
        v, g, n = (feats[k] / med[k] for k in ("sample variance", "gradient^2", "noise map"))
        for c in (0.25, 1.0):
            feats[f"variance + {c} gradient"] = v + c * g
            feats[f"variance + {c} noise map"] = v + c * n
        for k, f in feats.items():
            res.setdefault(k, []).append(spearman(f[supp], local))
    print(f"{len(res['calibrated std'])} rows ({a.split})")
    print("| feature | worst Spearman local | mean |")
    print("|---|---|---|")
    for k, s in res.items():
        print(f"| {k} | {min(s):+.3f} | {np.mean(s):+.3f} |")


if __name__ == "__main__":
    main()
