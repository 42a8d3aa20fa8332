"""Does the bootstrap count pilot of regular masks stop too low above 7 CG because its reference is a 7-CG run?

The parametric bootstrap (``samplers.selftune``) scores each CG count by how well it recovers a reference
reconstruction x_ref (BOOTSTRAP_REF_CG = 7 iterations) from the scan simulated from it. A reference that enforces
the data less than the best count leaves out detail the real image has, and the pilot then needs fewer iterations to
recover it: the choice leans to the reference's own count. On the fastMRI-layout files (256², 16 coils,
equispaced x4) fixed 10 / 15 CG beat the bootstrap's 7 by 2.5 / 4.8 dB.

Per row (one slice: the suite rows' only slice, the fastMRI-layout files' middle slice), as ``support_choice.scans``
builds them:
  * the default run: its count (stage 1: the 7-CG reference), the bootstrap errors, the support, PSNR;
  * where stage 1 chose 7 or more (the only rows a second stage would touch): the bootstrap errors at counts
    ``--stage2`` with the reference at ``--ref`` CG (``ReconOptions.bootstrap_ref_cg``), every count evaluated;
  * fixed-count runs ``--fixed`` with the default's support (the oracle the rules are judged against).

    OMP_NUM_THREADS=1 python benchmarks/boot_ref.py --part suite --sets TUNE_CGEQ --out benchmarks/results/boot_ref_tune.jsonl
    OMP_NUM_THREADS=1 python benchmarks/boot_ref.py --part files --out benchmarks/results/boot_ref_files.jsonl
    python benchmarks/boot_ref.py --table benchmarks/results/boot_ref_tune.jsonl,benchmarks/results/boot_ref_files.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from fastmri_test_layout import score
from sampler_variants import emit
from support_choice import done_keys, file_specs, scans

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.selftune import CG_CANDIDATES, choose_count
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def run_row(prior, y, mask, truth, ids: list[int], ref: int, stage2: tuple[int, ...], fixed: tuple[int, ...]) -> dict:
    t = time.time()
    rec = Reconstructor(prior, ReconOptions(seed=0))
    img = rec.reconstruct(y, mask, "sense", slice_ids=ids).images
    row: dict = {"count": rec.n_cg(), "support": rec.support_kind().value if rec.support_kind() else None,
                 "method": rec.tuning.method if rec.tuning else None,
                 "bootstrap_error": ({str(n): round(e, 6) for n, e in sorted(rec.tuning.bootstrap.items())}
                                     if rec.tuning and rec.tuning.bootstrap else None),
                 "psnr": {"default": round(score(img, np.asarray(truth))["psnr"], 3)}, "s_default": round(time.time() - t, 1)}
    if row["method"] != "parametric bootstrap" or row["count"] < max(CG_CANDIDATES):
        return row
    t = time.time()
    rec2 = Reconstructor(prior, ReconOptions(seed=0, bootstrap_ref_cg=ref))
    boot = rec2.bootstrap_pilot(y, mask, "sense", None, ids, compressed=False, resid=rec.phase_resid())
    row["stage2_ref"] = ref
    row["stage2_error"] = {str(n): round(boot(n), 6) for n in stage2}
    row["s_stage2"] = round(time.time() - t, 1)
    support = row["support"] or "auto"
    for n in fixed:
        if n == row["count"]:
            row["psnr"][str(n)] = row["psnr"]["default"]
            continue
        r = Reconstructor(prior, ReconOptions(seed=0, n_cg=n, maps_support=support))
        row["psnr"][str(n)] = round(score(r.reconstruct(y, mask, "sense", slice_ids=ids).images,
                                          np.asarray(truth))["psnr"], 3)
    return row


def stage2_choice(errors: dict[str, float], tol: float, margin: float) -> int:
    """A rule on the stage-2 errors: the fewest count within (1 + tol) x the least, each step above the lowest count
    only while it lowers the error by more than ``margin`` (a fraction)."""
    e = {int(k): v for k, v in errors.items()}
    best = choose_count(e, tol)
    chosen = min(e)
    for n in sorted(c for c in e if min(e) < c <= best):
        if not e[n] < (1.0 - margin) * e[chosen]:
            break
        chosen = n
    return chosen


def table(paths: list[Path], rules: list[tuple[float, float]]) -> None:
    rows = [json.loads(r) for p in paths for r in p.read_text().splitlines() if r.strip()]
    rows = [r for r in rows if "stage2_error" in r]
    print("| row | volume | default count | PSNR 7 / 10 / 15 | stage-1 errors (ref 7) | stage-2 errors (ref) | "
          + " | ".join(f"tol {t:g} margin {m:g}" for t, m in rules) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(rules))
    gains: dict = {rule: [] for rule in rules}
    regret_default = []
    for r in rows:
        ps = r["psnr"]
        best = max(ps[k] for k in ps if k != "default")
        regret_default.append(ps["default"] - best)
        cells = []
        for rule in rules:
            c = stage2_choice(r["stage2_error"], *rule)
            p = ps["default"] if c == r["count"] else ps[str(c)]
            gains[rule].append(p - ps["default"])
            cells.append(f"{c}: {p - ps['default']:+.2f}")
        s1 = ", ".join(f"{k} {v:.4f}" for k, v in r["bootstrap_error"].items())
        s2 = ", ".join(f"{k} {v:.4f}" for k, v in r["stage2_error"].items())
        fx = " / ".join(f"{ps.get(k, float('nan')):.2f}" for k in ("7", "10", "15"))
        print(f"| {r['name']} | {r['volume']} | {r['count']} ({ps['default']:.2f}) | {fx} | {s1} | {s2} (ref "
              f"{r['stage2_ref']}) | " + " | ".join(cells) + " |")
    print(f"\n{len(rows)} rows where stage 1 chose >= 7; default - best fixed: mean {np.mean(regret_default):+.2f}, "
          f"worst {np.min(regret_default):+.2f}")
    for rule, g in gains.items():
        g = np.asarray(g)
        print(f"tol {rule[0]:g} margin {rule[1]:g}: rule - default mean {g.mean():+.2f} dB, worst {g.min():+.2f}, "
              f"best {g.max():+.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["suite", "files"], default="suite")
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--sets", default="TUNE_CGEQ")
    ap.add_argument("--files", default=None, help="comma list of indices into the file settings (default all)")
    ap.add_argument("--seeds", default=None, help="files: replace each setting's seed by these (comma list)")
    ap.add_argument("--volume", default=None, help="only this volume")
    ap.add_argument("--ref", type=int, default=15, help="the stage-2 reference's CG count")
    ap.add_argument("--stage2", default="7,10,15")
    ap.add_argument("--fixed", default="7,10,15")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", default=None, help="comma list of result files: print the rules' table")
    ap.add_argument("--rules", default="0.15:0.1,0:0.1,0:0,0.15:0", help="tol:margin pairs for --table")
    a = ap.parse_args()
    if a.table:
        table([Path(p) for p in a.table.split(",")],
              [(float(t), float(m)) for t, m in (r.split(":") for r in a.rules.split(","))])
        return
    torch.set_num_threads(a.threads)
    prior = load_prior(None, "score", offline=True)[0]
    seen = done_keys(a.out)
    specs = file_specs(a.split, a.seeds)
    keep = None if not a.files else {i for i in a.files.split(",")}
    stage2 = tuple(int(v) for v in a.stage2.split(","))
    fixed = tuple(int(v) for v in a.fixed.split(","))
    for k, (name, vol, y, mask, truth, ids, pilot) in enumerate(scans(a.split, a.part == "files", a.sets, specs)):
        if (name, vol) in seen or (a.volume and vol != a.volume):
            continue
        if keep is not None and str(k // 2 if a.split == "tune" else k) not in keep:
            continue
        sl = slice(pilot, pilot + 1)
        emit({"name": name, "volume": vol, **run_row(prior, y[sl], mask, np.asarray(truth)[sl], [ids[pilot]], a.ref,
                                                     stage2, fixed)}, a.out)


if __name__ == "__main__":
    main()
