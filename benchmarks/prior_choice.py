"""Replay "prior by hold-out": the pilot's first comparison (3 CG) chooses between the magnitude prior at phase
priors 0.005 / 0.05 and a complex prior by the lowest hold-out error on the same split; then the count is the
argmin for that model. Compared per row with the release (magnitude prior only), from the files recorded by
``benchmarks/pilot_study.py`` (magnitude prior: ``results/pilot_study_SPLIT{,_more,_low}.jsonl``; the complex
prior: the same names with ``_complex``, recorded with ``--model``).

    python benchmarks/prior_choice.py --split tune [--fold 0/10/lines0.25]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from pilot_study import COUNTS, PRIORS, averaged, current_rule, rel

RESULTS = Path(__file__).parent / "results"


def load(paths: list[Path]) -> dict[tuple[str, str], dict]:
    out = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[(r["condition"], r["volume"])] = r
    return out


def pilot(row: dict, fold: str) -> dict:
    """The row's pilot errors of ``fold`` ("A+B": folds A and B pooled), 0/10 where the row lacks it."""
    folds = [row["pilots"].get(f) or row["pilots"]["0/10"] for f in fold.split("+")]
    return folds[0] if len(folds) == 1 else averaged(folds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--fold", default="0/10/lines0.25",
                    help="the pilot fold (0/10 where a row lacks it); A+B pools two folds")
    ap.add_argument("--sets", default=",_more,_low", help="tune files: pilot_study_tune{SET}.jsonl (comma list)")
    ap.add_argument("--release-fold", default="0/10/lines0.25", help="the fold of the release it is compared with")
    a = ap.parse_args()
    sets = tuple(a.sets.split(",")) if a.split == "tune" else ("",)
    mag = load([RESULTS / f"pilot_study_{a.split}{s}.jsonl" for s in sets])
    cpx = load([RESULTS / f"pilot_study_{a.split}{s}_complex.jsonl" for s in sets])
    d, d_best, chosen = [], [], {"magnitude": 0, "complex": 0}
    print("| condition | volume | hold-out error at 3 CG: magnitude (better prior) / complex | choice | PSNR | "
          "release | Δ release | Δ best of all |\n|---|---|---|---|---|---|---|---|")
    for key in sorted(k for k in mag if k in cpx):
        m, c = mag[key], cpx[key]
        pm, pc = (pilot(r, a.fold) for r in (m, c))
        if not np.allclose(pm["_y2"], pc["_y2"]):
            raise SystemExit(f"{key}: the two files hid different samples")
        err_m = min(rel(pm, f"3/{r}") for r in PRIORS)
        err_c = rel(pc, f"3/{PRIORS[0]}")  # a complex prior's runs are stored under every prior key
        release = m["psnr"][current_rule(pilot(m, a.release_fold))]
        if err_c < err_m:
            n = min(COUNTS, key=lambda n: rel(pc, f"{n}/{PRIORS[0]}"))
            psnr, who = c["psnr"][f"{n}/{PRIORS[0]}"], f"complex, {n} CG"
            chosen["complex"] += 1
        else:
            psnr, who = m["psnr"][current_rule(pm)], f"magnitude, {current_rule(pm)}"
            chosen["magnitude"] += 1
        best = max(max(v for k, v in m["psnr"].items() if float(k.split("/")[1]) in PRIORS), max(c["psnr"].values()))
        d.append(psnr - release)
        d_best.append(psnr - best)
        print(f"| {key[0]} | {key[1]} | {err_m:.4f} / {err_c:.4f} | {who} | {psnr:.2f} | {release:.2f} | "
              f"{d[-1]:+.2f} | {d_best[-1]:+.2f} |")
    dd, db = np.asarray(d), np.asarray(d_best)
    print(f"\n{a.split}, {len(dd)} rows: against the release worst {dd.min():+.2f}, mean {dd.mean():+.2f} dB, "
          f"{int((dd < -0.3).sum())} rows more than 0.3 dB below; against the best fixed of both priors worst "
          f"{db.min():+.2f}, mean {db.mean():+.2f} dB; chosen {chosen}")


if __name__ == "__main__":
    main()
