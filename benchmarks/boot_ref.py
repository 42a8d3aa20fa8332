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
    OMP_NUM_THREADS=1 python benchmarks/boot_ref.py --part suite --sets TUNE_CGEQ3 --test 0.3 --out benchmarks/results/boot_ref_test_cgeq3.jsonl
    OMP_NUM_THREADS=1 python benchmarks/boot_ref.py --part suite --sets TUNE_CGEQ4 --test 0.3 --variant seven_up --out benchmarks/results/boot_ref_test7_cgeq4.jsonl
    python benchmarks/boot_ref.py --table benchmarks/results/boot_ref_tune_cgeq.jsonl,benchmarks/results/boot_ref_files.jsonl
    python benchmarks/boot_ref.py --test-table benchmarks/results/boot_ref_test7_cgeq4.jsonl
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
from mrdiff_cli.samplers.selftune import CG_CANDIDATES
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

# the default the design rows ran with (before the top check and seven_up were adopted)
DESIGN_DEFAULT = {"top_check": False, "seven_up": False}


def run_row(prior, y, mask, truth, ids: list[int], ref: int, stage2: tuple[int, ...], fixed: tuple[int, ...],
            low: bool = False) -> dict:
    """One design row (module docstring); ``low``: the fixed-count runs also where the default's count is below 7
    (no second stage there)."""
    t = time.time()
    rec = Reconstructor(prior, ReconOptions(seed=0, **DESIGN_DEFAULT))
    img = rec.reconstruct(y, mask, "sense", slice_ids=ids).images
    row: dict = {"count": rec.n_cg(), "support": rec.support_kind().value if rec.support_kind() else None,
                 "method": rec.tuning.method if rec.tuning else None,
                 "bootstrap_error": ({str(n): round(e, 6) for n, e in sorted(rec.tuning.bootstrap.items())}
                                     if rec.tuning and rec.tuning.bootstrap else None),
                 "psnr": {"default": round(score(img, np.asarray(truth))["psnr"], 3)}, "s_default": round(time.time() - t, 1)}
    if row["method"] != "parametric bootstrap" or (row["count"] < max(CG_CANDIDATES) and not low):
        return row
    if row["count"] >= max(CG_CANDIDATES):
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


def stage2_row(prior, y, mask, ids: list[int], ref: int, stage2: tuple[int, ...]) -> dict:
    """Only the stage-2 errors (reference ``ref``) of a row: stage 1 (``Reconstructor.tune``) reruns for its phase
    prior and count."""
    rec = Reconstructor(prior, ReconOptions(seed=0, **DESIGN_DEFAULT))
    rec.tune(y, mask, "sense", None, ids)
    rec2 = Reconstructor(prior, ReconOptions(seed=0, bootstrap_ref_cg=ref))
    boot = rec2.bootstrap_pilot(y, mask, "sense", None, ids, compressed=False, resid=rec.phase_resid())
    return {"stage1_count": rec.tuning.n_cg if rec.tuning else None, "stage2_ref": ref,
            "stage2_error": {str(n): round(boot(n), 6) for n in stage2}}


def test_row(prior, y, mask, truth, ids: list[int], margin: float, always: bool = False,
             variant: str = "top_check") -> dict:
    """The pre-registered test's row: the default against the default with the top check (``top_check``, margin
    ``margin``). The variant's full run only where its check moved the count (``always``: every row); elsewhere the
    two runs are the same computation (same seed, same count) and the default's PSNR stands for both."""
    t = time.time()
    # the default of the test's time: neither step for the top check's test, the top check alone for seven_up's
    rec = Reconstructor(prior, ReconOptions(seed=0, top_check=variant == "seven_up", seven_up=False))
    img = rec.reconstruct(y, mask, "sense", slice_ids=ids).images
    row: dict = {"default": {"count": rec.n_cg(), "psnr": round(score(img, np.asarray(truth))["psnr"], 3),
                             "s": round(time.time() - t, 1)}}
    t = time.time()
    var = Reconstructor(prior, ReconOptions(seed=0, top_check=True, top_check_margin=margin, seven_up=variant == "seven_up"))
    var.tune(y, mask, "sense", None, ids)
    check = var.tuning.extra.get("top_check") if var.tuning else None
    row["top_check"] = check
    row["seven_up"] = var.tuning.extra.get("seven_up") if var.tuning else None
    if always or var.tuning is None or var.tuning.n_cg != rec.tuning.n_cg:
        img = var.reconstruct(y, mask, "sense", slice_ids=ids).images
        row["variant"] = {"count": var.n_cg(), "psnr": round(score(img, np.asarray(truth))["psnr"], 3),
                          "s": round(time.time() - t, 1), "ran": True}
    else:
        row["variant"] = {**row["default"], "s_tune": round(time.time() - t, 1), "ran": False}
    row["delta"] = round(row["variant"]["psnr"] - row["default"]["psnr"], 3)
    return row


def test_table(path: Path) -> None:
    rows = [json.loads(r) for r in path.read_text().splitlines() if r.strip()]
    print("| row | volume | default count | variant count | top check errors (below / top) | default | variant | Δ |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["top_check"]
        e = " / ".join(f"{v:.5f}" for v in c["bootstrap_error"].values()) if c else "—"
        print(f"| {r['name']} | {r['volume']} | {r['default']['count']} | {r['variant']['count']} | {e} | "
              f"{r['default']['psnr']:.2f} | {r['variant']['psnr']:.2f} | {r['delta']:+.2f} |")
    d = np.array([r["delta"] for r in rows])
    print(f"\n{len(rows)} rows: Δ mean {d.mean():+.3f} dB, worst {d.min():+.3f}, best {d.max():+.3f}; moved on "
          f"{sum(r['variant']['count'] != r['default']['count'] for r in rows)}")


def holdout_row(prior, y, mask, ids: list[int], counts: tuple[int, ...]) -> dict:
    """The hold-out count pilot's errors (``Reconstructor.pilot``: 15 % of the outer lines hidden, 10-step pilots)
    at ``counts`` on the same slice, every count evaluated."""
    rec = Reconstructor(prior, ReconOptions(seed=0))
    pilot = rec.pilot(y, mask, "sense", None, ids, compressed=False)
    if pilot is None:
        return {"holdout_error": None}
    ev, info = pilot
    return {"holdout_error": {str(n): round(ev(n), 6) for n in counts}, "holdout": info}


def ascent(r: dict, margin: float, top_ref: int = 10) -> int | None:
    """The walk up from 7 CG: to 10 if the 7-CG reference's bootstrap (stage 1) scores 10 more than ``margin`` below
    7, then to 15 if the ``top_ref``-CG reference's (stage 2) scores 15 more than ``margin`` below 10. None where a
    needed error is missing."""
    e1 = {int(k): v for k, v in r["bootstrap_error"].items()}
    if 7 not in e1 or 10 not in e1:
        return None
    if not e1[10] < (1.0 - margin) * e1[7]:
        return 7
    e2 = r.get("stage2", {}).get(top_ref)
    if e2 is None:
        return None
    return 15 if e2["15"] < (1.0 - margin) * e2["10"] else 10


def raise_to_top(r: dict, margin: float, ref: int = 15) -> int | None:
    """The default's count, raised to 15 where it is 7 or more and the ``ref``-CG reference's bootstrap scores 15
    more than ``margin`` below 10. None where those errors are missing."""
    e2 = r.get("stage2", {}).get(ref)
    if e2 is None or "10" not in e2 or "15" not in e2:
        return None
    return 15 if r["count"] >= 7 and e2["15"] < (1.0 - margin) * e2["10"] else int(r["count"])


def load_rows(paths: list[Path]) -> list[dict]:
    """The rows with fixed-count runs, each with ``stage2`` {reference CG: errors} from every file."""
    rows: dict = {}
    extra = []
    for p in paths:
        for r in map(json.loads, filter(str.strip, p.read_text().splitlines())):
            if "psnr" in r:
                rows[(r["name"], r["volume"])] = r
            extra.append(r)
    for r in extra:
        if "stage2_error" in r and (r["name"], r["volume"]) in rows:
            rows[(r["name"], r["volume"])].setdefault("stage2", {})[int(r["stage2_ref"])] = r["stage2_error"]
    return [r for r in rows.values() if "stage2_error" in r]


def table(paths: list[Path], margins: list[float], raise_margins: list[float]) -> None:
    rows = load_rows(paths)
    refs = sorted({ref for r in rows for ref in r.get("stage2", {})})
    print("| row | volume | default count (PSNR) | PSNR 7 / 10 / 15 | ref 7: e(10)/e(7) | "
          + " | ".join(f"ref {ref}: e(15)/e(10)" for ref in refs) + " | "
          + " | ".join(f"ascent {m:g}" for m in margins) + " | " + " | ".join(f"raise {m:g}" for m in raise_margins)
          + " |")
    print("|---|---|---|---|---|" + "---|" * (len(refs) + len(margins) + len(raise_margins)))
    rules = {f"ascent {m:g}": (lambda r, m=m: ascent(r, m)) for m in margins}
    rules.update({f"raise {m:g}": (lambda r, m=m: raise_to_top(r, m)) for m in raise_margins})
    gains: dict = {m: [] for m in rules}
    regret_default, regret_rule = [], {m: [] for m in rules}
    for r in rows:
        ps = r["psnr"]
        best = max(ps[k] for k in ps if k != "default")
        regret_default.append(ps["default"] - best)
        e1 = r["bootstrap_error"]
        cells = []
        for m, rule in rules.items():
            c = rule(r)
            if c is None:
                cells.append("—")
                continue
            p = ps[str(c)]
            gains[m].append(p - ps["default"])
            regret_rule[m].append(p - best)
            cells.append(f"{c}: {p - ps['default']:+.2f}")
        ratios = [f"{r['stage2'][ref]['15'] / r['stage2'][ref]['10']:.2f}" if ref in r.get("stage2", {}) else "—"
                  for ref in refs]
        fx = " / ".join(f"{ps.get(k, float('nan')):.2f}" for k in ("7", "10", "15"))
        r10 = f"{e1['10'] / e1['7']:.2f}" if "10" in e1 and "7" in e1 else "—"
        print(f"| {r['name']} | {r['volume']} | {r['count']} ({ps['default']:.2f}) | {fx} | {r10} | "
              + " | ".join(ratios) + " | " + " | ".join(cells) + " |")
    print(f"\n{len(rows)} rows where stage 1 chose >= 7; default - best of 7/10/15: mean {np.mean(regret_default):+.2f}, "
          f"worst {np.min(regret_default):+.2f}")
    for m in rules:
        g, q = np.asarray(gains[m]), np.asarray(regret_rule[m])
        if g.size:
            print(f"{m} ({g.size} rows): rule - default mean {g.mean():+.2f} dB, worst {g.min():+.2f}, "
                  f"best {g.max():+.2f}; rule - best fixed mean {q.mean():+.2f}, worst {q.min():+.2f}")


def low_table(path: Path) -> None:
    """The ``--low`` rows: where the default's count is 7 or less, its bootstrap errors against fixed counts."""
    rows = [json.loads(r) for r in path.read_text().splitlines() if r.strip()]
    rows = [r for r in rows if r.get("bootstrap_error") and r["count"] <= max(CG_CANDIDATES)]
    print("| row | volume | default count (PSNR) | fixed 5 / 7 / 10 | best − default | ref 7: e(10)/e(7) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ps, e = r["psnr"], r["bootstrap_error"]
        best = max(v for k, v in ps.items() if k != "default")
        ratio = f"{e['10'] / e['7']:.2f}" if "10" in e and "7" in e else "—"
        print(f"| {r['name']} | {r['volume']} | {r['count']} ({ps['default']:.2f}) | "
              + " / ".join(f"{ps.get(k, float('nan')):.2f}" for k in ("5", "7", "10"))
              + f" | {best - ps['default']:+.2f} | {ratio} |")


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
    ap.add_argument("--holdout", default=None, help="instead: the hold-out pilot's errors at these counts (comma "
                    "list) on the same rows")
    ap.add_argument("--stage2-only", default=None, help="instead: only the stage-2 errors (--ref, --stage2) of the "
                    "rows of this result file that have stage-2 errors")
    ap.add_argument("--test", type=float, default=None, help="instead: the pre-registered test, default vs the top "
                    "check with this margin")
    ap.add_argument("--fresh", type=int, default=0, help="files: 1 support_choice.FRESH_FILES, 2 FRESH_FILES2")
    ap.add_argument("--variant", default="top_check", choices=["top_check", "seven_up"],
                    help="--test: the option the variant turns on (over this version's default)")
    ap.add_argument("--test-table", default=None)
    ap.add_argument("--low-table", default=None, help="the --low rows' table")
    ap.add_argument("--low", action="store_true", help="fixed-count runs also where the default chose fewer than 7")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", default=None, help="comma list of result files: print the rules' table")
    ap.add_argument("--margins", default="0,0.05,0.1", help="the ascent's margins for --table")
    ap.add_argument("--raise-margins", default="0.2,0.3,0.4", help="the raise-to-15 rule's margins for --table")
    a = ap.parse_args()
    if a.low_table:
        low_table(Path(a.low_table))
        return
    if a.test_table:
        test_table(Path(a.test_table))
        return
    if a.table:
        table([Path(p) for p in a.table.split(",")], [float(m) for m in a.margins.split(",")],
              [float(m) for m in a.raise_margins.split(",")])
        return
    torch.set_num_threads(a.threads)
    prior = load_prior(None, "score", offline=True)[0]
    seen = done_keys(a.out)
    specs = file_specs(a.split, a.seeds, a.fresh)
    keep = None if not a.files else {i for i in a.files.split(",")}
    stage2 = tuple(int(v) for v in a.stage2.split(","))
    wanted = ({(r["name"], r["volume"]) for r in map(json.loads, filter(str.strip, Path(a.stage2_only).read_text()
                                                                         .splitlines())) if "stage2_error" in r}
              if a.stage2_only else set())
    fixed = tuple(int(v) for v in a.fixed.split(","))
    for k, (name, vol, y, mask, truth, ids, pilot) in enumerate(scans(a.split, a.part == "files", a.sets, specs)):
        if (name, vol) in seen or (a.volume and vol != a.volume):
            continue
        if keep is not None and str(k // 2 if a.split == "tune" else k) not in keep:
            continue
        sl = slice(pilot, pilot + 1)
        if a.test is not None:
            emit({"name": name, "volume": vol, **test_row(prior, y[sl], mask, np.asarray(truth)[sl], [ids[pilot]],
                                                          a.test, variant=a.variant)}, a.out)
            continue
        if a.stage2_only:
            if (name, vol) not in wanted:
                continue
            emit({"name": name, "volume": vol, **stage2_row(prior, y[sl], mask, [ids[pilot]], a.ref, stage2)}, a.out)
            continue
        if a.holdout:
            counts = tuple(int(v) for v in a.holdout.split(","))
            emit({"name": name, "volume": vol, **holdout_row(prior, y[sl], mask, [ids[pilot]], counts)}, a.out)
            continue
        emit({"name": name, "volume": vol, **run_row(prior, y[sl], mask, np.asarray(truth)[sl], [ids[pilot]], a.ref,
                                                     stage2, fixed, a.low)}, a.out)


if __name__ == "__main__":
    main()
