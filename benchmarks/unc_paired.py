"""Two uncertainty variants on the same rows, paired by row: 95 % coverage, Spearman (local) and the mean image's
PSNR of each, and the pre-registered rule of docs/uncertainty.md ("Adaptive maps with the per-scan support choice
for K > 1: a second test").

Each variant is a results file of ``benchmarks/suite_uncertainty.py``, the ``MRDIFF_UNC_CACHE`` folder its arrays
were written to, and the calibration constants to apply (a ``--fit`` JSON, or ``bundle:PATH`` for a bundle's
``calibration.holdout`` block):

    python benchmarks/unc_paired.py \\
        --a rows_espirit.jsonl:cache_espirit:bundle:mrdiff_cli/weights/score-brain-complex \\
        --b rows_adaptive.jsonl:cache_adaptive:fit_adaptive.json [--rule decide|veto] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import suite_uncertainty as su

BAND = (0.88, 0.98)


def variant(spec: str) -> dict[tuple[str, str], dict]:
    """Per (condition, volume): cov95, Spearman (local), mean PSNR, CS PSNR, CG count — against the truth."""
    rows_path, cache, cal_spec = spec.split(":", 2)
    su.CACHE = Path(cache)
    su._ARRAYS.clear()  # the array cache is keyed by row key only; another folder holds other arrays
    rows = su.load_rows(Path(rows_path))
    out = {}
    by_key = {(r["condition"], r["volume"]): r for r in rows}
    for ev in su.evaluate(rows, su.load_calibration(cal_spec), targets=("truth",)):
        r = by_key[(ev["condition"], ev["volume"])]
        out[(ev["condition"], ev["volume"])] = {
            "cov95": ev["truth"]["coverage"]["95"], "spearman_local": ev["truth"]["spearman_local"],
            "psnr_mean": r["psnr_mean"], "psnr_cs": r.get("psnr_cs"), "cg": r["cg_iters"]}
    su._ARRAYS.clear()
    return out


def summary(v: dict, keys: list) -> dict:
    cov = [v[k]["cov95"] for k in keys]
    return {"in_band": int(sum(BAND[0] <= c <= BAND[1] for c in cov)), "cov95_worst_low": min(cov),
            "spearman_local_mean": float(np.mean([v[k]["spearman_local"] for k in keys]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="ROWS:CACHE:CAL of the current default")
    ap.add_argument("--b", required=True, help="ROWS:CACHE:CAL of the candidate")
    ap.add_argument("--rule", choices=["decide", "veto", "none"], default="none")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    va, vb = variant(a.a), variant(a.b)
    keys = [k for k in va if k in vb]
    print("| condition | volume | cov95 a / b | Spearman local a / b | mean dB a / b | b - a | CS dB (b's maps) | CG a / b |")
    print("|---|---|---|---|---|---|---|---|")
    diffs = []
    for k in keys:
        x, y = va[k], vb[k]
        d = y["psnr_mean"] - x["psnr_mean"]
        diffs.append(d)
        cs = f"{y['psnr_cs']:.2f}" if y["psnr_cs"] is not None else "-"
        print(f"| {k[0]} | {k[1]} | {x['cov95']:.3f} / {y['cov95']:.3f} | {x['spearman_local']:.2f} / "
              f"{y['spearman_local']:.2f} | {x['psnr_mean']:.2f} / {y['psnr_mean']:.2f} | {d:+.2f} | {cs} | "
              f"{x['cg']} / {y['cg']} |")
    sa, sb = summary(va, keys), summary(vb, keys)
    res = {"rows": len(keys), "a": sa, "b": sb, "psnr_diff_mean": float(np.mean(diffs)), "psnr_diff_worst": min(diffs)}
    print(json.dumps(res, indent=1))
    if a.rule == "decide":
        checks = {"(a) in band, at most one row fewer": sb["in_band"] >= sa["in_band"] - 1,
                  "(b) worst-low no more than 0.02 lower": sb["cov95_worst_low"] >= sa["cov95_worst_low"] - 0.02,
                  "(c) Spearman local mean no more than 0.01 lower":
                      sb["spearman_local_mean"] >= sa["spearman_local_mean"] - 0.01,
                  "(d) mean PSNR +0.2 dB on average, no row below -0.5": res["psnr_diff_mean"] >= 0.2
                      and res["psnr_diff_worst"] >= -0.5}
    elif a.rule == "veto":
        checks = {"mean PSNR >= 0 on average, no row below -0.5": res["psnr_diff_mean"] >= 0
                      and res["psnr_diff_worst"] >= -0.5,
                  "worst-low no more than 0.03 lower": sb["cov95_worst_low"] >= sa["cov95_worst_low"] - 0.03,
                  # added for the fourth test (written down before its rows ran); tests 2 and 3 had no such clause
                  "in band, at most one row fewer": sb["in_band"] >= sa["in_band"] - 1}
    else:
        checks = {}
    for name, ok in checks.items():
        print(("PASS " if ok else "FAIL ") + name)
    if checks:
        res["rule"] = a.rule
        res["checks"] = checks
        print("passed" if all(checks.values()) else "failed")
    if a.json:
        res["rows_detail"] = [{"condition": k[0], "volume": k[1], "a": va[k], "b": vb[k]} for k in keys]
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
