"""Exploration (not adopted): a map-ambiguity term in the K > 1 std. Per row of a ``suite_uncertainty.py`` results
file, two one-sample reconstructions at the row's CG count with the adaptive maps' two supports (``own``, ``release``;
20 steps, seed 0); their difference d adds ``c * f^2 * pool_p(d^2)`` to the calibrated variance. Prints Spearman
(std, 5x5 local RMS error) and 95 % coverage per row and per c.

    python benchmarks/unc_map_ambiguity.py --set TUNE_UNC3 --split tune --rows ROWS.jsonl --cache CACHE \\
        --diffs diffs.npz [--json summary.json]

(ROWS / CACHE: a ``--coil-maps adaptive`` run of ``suite_uncertainty.py``; ``--diffs`` is computed once and reused.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import corpus
import numpy as np
import suite
import suite_uncertainty as su
import torch
from corpus import load_split
from pilot_study import scan

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.calibration import pool_variance, spearman
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


def support_diffs(set_name: str, split: str, rows: dict, model: str, pair: str = "supports") -> dict[str, np.ndarray]:
    """Per row (the rows' simulation as suite_uncertainty.run_row makes it): ``supports``: x_own - x_release;
    ``priors``: x_other - x_model, one sample of the magnitude prior against one of ``model`` (same maps, count,
    seed): a two-member prior ensemble."""
    prior, _ = load_prior(model, "score", offline=True)
    other = load_prior(corpus.MAGNITUDE_PRIOR, "score", offline=True)[0] if pair == "priors" else None
    out = {}
    for acq, matrix, kind, R in getattr(suite, set_name):
        for vol, ref in load_split(split, matrix, 256.0 / matrix, 1).items():
            row = rows[(suite.cond_name(acq, matrix, kind, R), vol)]
            k, _, mask = scan(ref, (acq, matrix, kind, R))
            if other is None:
                imgs = [Reconstructor(prior, ReconOptions(samples=1, steps=20, seed=0, calibration=None,
                                                          n_cg=row["cg_iters"], maps_support=s)).reconstruct(
                            k, mask, "sense").images for s in ("own", "release")]
            else:
                imgs = [Reconstructor(p, ReconOptions(samples=1, steps=20, seed=0, calibration=None,
                                                      n_cg=row["cg_iters"], maps_support="release")).reconstruct(
                            k, mask, "sense").images for p in (other, prior)]
            out[row["key"]] = (imgs[0] - imgs[1]).astype(np.float32)
            print(row["key"], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", required=True)
    ap.add_argument("--split", choices=["tune", "report"], required=True)
    ap.add_argument("--rows", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--diffs", required=True)
    ap.add_argument("--model", default="mrdiff_cli/weights/score-brain-complex")
    ap.add_argument("--json", default=None)
    ap.add_argument("--pair", choices=("supports", "priors"), default="supports",
                    help="what the two one-sample runs differ in: the maps' support, or the prior (magnitude prior)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = su.load_rows(Path(a.rows))
    if not Path(a.diffs).exists():
        np.savez_compressed(a.diffs, **support_diffs(a.set, a.split, {(r["condition"], r["volume"]): r for r in rows},
                                                     a.model, a.pair))
    diffs = np.load(a.diffs)
    su.CACHE = Path(a.cache)
    su._ARRAYS.clear()
    cal = su.load_calibration(f"bundle:{a.model}")
    per_c: dict[float, dict[str, list]] = {c: {"spearman_local": [], "cov95": []} for c in WEIGHTS}
    for r in rows:
        std = su.calibrated(r, cal)
        if std is None:
            continue
        d = su.arrays(r["key"])
        supp, err = d["support"], np.abs(d["mean"] - d["truth"])
        local = np.sqrt(pool_variance(err ** 2, 5))
        amb2 = pool_variance(diffs[r["key"]].astype(np.float64) ** 2, cal.pool)
        cells = []
        for c in WEIGHTS:
            s = np.sqrt(std.astype(np.float64) ** 2 + c * cal.factor ** 2 * amb2)
            sp, cov = spearman(s[supp], local[supp]), float(np.mean(err[supp] <= 1.96 * s[supp]))
            per_c[c]["spearman_local"].append(sp)
            per_c[c]["cov95"].append(cov)
            cells.append(f"{sp:.2f} / {cov:.3f}")
        print(f"| {r['condition']} | {r['volume']} | " + " | ".join(cells) + " |")
    summary = {str(c): {"spearman_local_mean": float(np.mean(v["spearman_local"])),
                        "spearman_local_worst": float(min(v["spearman_local"])),
                        "cov95_worst_low": float(min(v["cov95"])),
                        "in_band": int(sum(0.88 <= x <= 0.98 for x in v["cov95"]))} for c, v in per_c.items()}
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": a.rows, "set": a.set, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
