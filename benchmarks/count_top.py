"""Is the top of the CG-count candidates (7) too low at high SNR? The default against the same run with the hold-out
count pilot allowed 10 and 15 CG (``ReconOptions.cg_candidates``), per suite row; optionally fixed counts.

    python benchmarks/count_top.py --set TUNE_CG --split tune --out benchmarks/results/count_top_tune_cg.jsonl
    python benchmarks/count_top.py --split report --conditions 0,1,2 --out benchmarks/results/count_top_report.jsonl
    python benchmarks/count_top.py --summary benchmarks/results/count_top_tune_cg.jsonl
    python benchmarks/count_top.py --set TUNE_CG2 --split tune --margin 0.1 --out benchmarks/results/count_top_tune_cg2.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import suite
import torch
from corpus import load_split

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

EXTENDED = (1, 2, 3, 5, 7, 10, 15)


def run_one(prior, k, mask, truth, **opts) -> dict:
    rec = Reconstructor(prior, ReconOptions(seed=0, calibration=None, **opts))
    t = time.time()
    img = rec.reconstruct(k, mask, "sense").images
    return {"psnr": suite.score(img, truth)["psnr"], "s": round(time.time() - t, 2), "cg_iters": rec.n_cg(),
            "support": rec.support_kind().value if rec.support_kind() else None,
            "holdout_error": {str(n): round(e, 6) for n, e in rec.tuning.errors.items()} if rec.tuning else None}


def rows(args) -> None:
    prior, _ = load_prior("bundled:score-brain-complex", "score", offline=True)
    conds = getattr(suite, args.set) if args.set else suite.CONDITIONS[args.split]
    idx = [int(c) for c in args.conditions.split(",")] if args.conditions else range(len(conds))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    for i in idx:
        cond = conds[i]
        for vol, ref in load_split(args.split, cond[1], 256.0 / cond[1], 1).items():
            k, truth, mask = suite.scan(ref, cond)
            t = torch.as_tensor(truth)
            row: dict = {"condition": suite.cond_name(*cond), "volume": vol, "machine": machine,
                         "default": run_one(prior, k, mask, t),
                         "margin": args.margin, "bootstrap_extended": args.bootstrap,
                         "extended": run_one(prior, k, mask, t, cg_candidates=EXTENDED, upper_count_margin=args.margin,
                                             **({"bootstrap_candidates": EXTENDED} if args.bootstrap else {}))}
            for n in [int(c) for c in args.fixed.split(",") if c.strip()]:
                row[f"fixed{n}"] = run_one(prior, k, mask, t, n_cg=n, maps_support=row["default"]["support"] or "auto")
            with Path(args.out).open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def summary(path: Path) -> None:
    rs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    d = [r["extended"]["psnr"] - r["default"]["psnr"] for r in rs]
    print("| condition | volume | default (count) | extended (count) | Δ |")
    print("|---|---|---|---|---|")
    for r, x in zip(rs, d, strict=True):
        print(f"| {r['condition']} | {r['volume']} | {r['default']['psnr']:.2f} ({r['default']['cg_iters']}) | "
              f"{r['extended']['psnr']:.2f} ({r['extended']['cg_iters']}) | {x:+.2f} |")
    ts = [r["extended"]["s"] / r["default"]["s"] for r in rs]
    print(f"\n{len(rs)} rows: mean Δ {np.mean(d):+.2f} dB, worst {min(d):+.2f}, best {max(d):+.2f}; "
          f"count moved on {sum(r['extended']['cg_iters'] != r['default']['cg_iters'] for r in rs)}; "
          f"time ratio mean {np.mean(ts):.2f} (max {max(ts):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--set", default=None, help="a condition list of suite.py (default: the split's CONDITIONS)")
    ap.add_argument("--conditions", default=None)
    ap.add_argument("--fixed", default="", help="also fixed counts, e.g. 7,10,15")
    ap.add_argument("--margin", type=float, default=0.0,
                    help="the variant's upper_count_margin (a step above 7 CG needs this much lower hold-out error)")
    ap.add_argument("--bootstrap", action="store_true",
                    help="the variant also lets the bootstrap pilot of regular masks choose 10 / 15")
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--summary", default=None)
    a = ap.parse_args()
    if a.summary:
        summary(Path(a.summary))
        return
    torch.set_num_threads(a.threads)
    rows(a)


if __name__ == "__main__":
    main()
