"""How high can Spearman(std, 5x5 local RMS error) go? Issue #24's ranking criterion against error-scale oracles.

Per row of a ``suite_uncertainty.py`` results file (its array cache): Spearman of the local error (RMS of
|mean - truth| over the 5 x 5 window, head pixels) with

* the shipped calibrated std (the bundle's constants; what ``mrdiff uncertainty`` reports),
* the *neighbourhood oracle* at P = 9, 15, 25: the true RMS error over the P x P window around each pixel with the
  5 x 5 window itself left out, i.e. the smooth error scale of the surroundings, known exactly. A std map that
  varies on the scale of the samples' spread can hardly rank the 5 x 5 error better than the true error scale of
  its surroundings does; where the error scale is nearly uniform over the head, both are low, because the 5 x 5
  RMS is then mostly sampling noise of the error itself. A reference level, not a proof of a bound.

    python benchmarks/unc_ceiling.py --rows ROWS.jsonl --cache CACHE [--model M] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import suite_uncertainty as su

from mrdiff_cli.tasks.calibration import pool_variance, spearman

RADII = (9, 15, 25)


def neighbourhood_oracle(err2: np.ndarray, p: int, inner: int = 5) -> np.ndarray:
    """Mean of err² over the p x p window minus the inner x inner window (the pixels' own window left out).
    ``pool_variance`` averages over the in-image part of each window, so near the image edge this is approximate
    (the head pixels it is used on lie away from the edge)."""
    outer, core = pool_variance(err2, p) * p * p, pool_variance(err2, inner) * inner * inner
    return np.maximum(outer - core, 0.0) / (p * p - inner * inner)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--model", default="mrdiff_cli/weights/score-brain-complex")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    su.CACHE = Path(a.cache)
    su._ARRAYS.clear()
    cal = su.load_calibration(f"bundle:{a.model}")
    cols = ["std"] + [f"oracle{p}" for p in RADII]
    print("| condition | volume | " + " | ".join(cols) + " |")
    per_row = []
    for r in su.load_rows(Path(a.rows)):
        std = su.calibrated(r, cal)
        if std is None:
            continue
        d = su.arrays(r["key"])
        supp, err2 = d["support"], np.abs(d["mean"] - d["truth"]) ** 2
        local = np.sqrt(pool_variance(err2, 5))[supp]
        vals = [spearman(std[supp], local)] + [spearman(neighbourhood_oracle(err2, p)[supp], local) for p in RADII]
        per_row.append({"key": r["key"], **{c: float(v) for c, v in zip(cols, vals, strict=True)}})
        print(f"| {r['condition']} | {r['volume']} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    summary = {c: {"mean": float(np.mean([x[c] for x in per_row])), "worst": float(min(x[c] for x in per_row))}
               for c in cols}
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": a.rows, "model": a.model, "summary": summary, "per_row": per_row},
                                           indent=1) + "\n")


if __name__ == "__main__":
    main()
