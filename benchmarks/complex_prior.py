"""A complex-valued prior (``mrdiff train score --complex``) against the bundled magnitude prior on the
acquisition-diverse suite (``benchmarks/suite.py``'s conditions and volumes, one middle slice per volume).

Per (condition, volume): PSNR in the head mask of
* the magnitude prior: the self-tuned default and every fixed (CG count, phase prior) pair;
* the complex prior: the self-tuned default and every fixed CG count (it has no phase prior: no phase estimate);
* L1-wavelet CS (sigpy, the lambdas chosen on tune, ``benchmarks/results/cs_lambdas_report.json``) when sigpy is
  installed.
Both priors run in the same process on the same device, same seeds.

    python benchmarks/complex_prior.py --split tune --model runs/complex/bundle --out OUT.jsonl [--device cuda]
    python benchmarks/complex_prior.py --split tune --model RUN2/bundle --magnitude-from OUT.jsonl --out OUT2.jsonl
    python benchmarks/complex_prior.py --table OUT.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from corpus import MAGNITUDE_PRIOR, load_split
from pilot_study import COUNTS, PRIORS, scan
from suite import CONDITIONS, cond_name, score

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def run(prior, k, mask, truth, **opts) -> tuple[float, float, Reconstructor]:
    rec = Reconstructor(prior, ReconOptions(seed=0, **opts))
    t = time.time()
    img = rec.reconstruct(k, mask, "sense").images
    return score(img, truth)["psnr"], time.time() - t, rec


def run_row(mag, cplx, vol: str, ref: torch.Tensor, cond, device: str, lambdas: dict, old: dict | None = None,
            count_pilot: str = "holdout") -> dict:
    """``old``: this row from an earlier results file: its magnitude prior and CS entries are reused (the runs
    are deterministic given the seed on the CPU), so only the complex prior runs."""
    acq, matrix, kind, R = cond
    k, truth, mask = scan(ref, cond)
    row: dict = {"condition": cond_name(acq, matrix, kind, R), "volume": vol, "device": device,
                 "magnitude": {"fixed": {}}, "complex": {"fixed": {}}}
    if old is not None:
        row["magnitude"] = old["magnitude"]
        if "cs" in old:
            row["cs"] = old["cs"]
    for name, prior in (("magnitude", mag), ("complex", cplx)):
        if (name == "magnitude" and old is not None) or prior is None:
            continue
        p, s, rec = run(prior, k, mask, truth, device=device, count_pilot=count_pilot)
        row[name]["self"] = {"psnr": p, "s": round(s, 2), "cg_iters": rec.n_cg(),
                             "phase_resid": rec.phase_resid() if name == "magnitude" else None}
        pairs = itertools.product(COUNTS, PRIORS) if name == "magnitude" else ((n, None) for n in COUNTS)
        for n, r in pairs:
            key = f"{n}/{r}" if r is not None else str(n)
            row[name]["fixed"][key] = run(prior, k, mask, truth, device=device, n_cg=n,
                                          **({"phase_resid": r} if r is not None else {}))[0]
    if "cs" in row:  # reused
        return row
    lam = lambdas.get(kind)
    try:
        from baselines import cs_inputs, cs_l1wavelet
    except ImportError:  # sigpy missing
        cs_l1wavelet = None
    if lam is not None and cs_l1wavelet is not None:
        yc, maps, scale = cs_inputs(k, mask)
        row["cs"] = score(cs_l1wavelet(yc, maps, mask, lam * scale), truth)["psnr"]
    return row


def magnitude_from_report(count_pilot: str) -> dict:
    """The magnitude prior's report rows in this script's format, from the recorded report runs (deterministic on the
    CPU, so rerunning them would give the same numbers)."""
    from pilot_study import current_rule, release_fold

    res = Path(__file__).parent / "results"
    cs = {(r["condition"], r["volume"]): r["CS"]["psnr"] for r in map(json.loads, (res / "suite_report.jsonl").read_text().splitlines())
          if "CS" in r}
    boot = {}
    if count_pilot != "holdout":
        boot = {(r["condition"], r["volume"]): r["boot"]["err"]
                for r in map(json.loads, (res / "bootstrap_study_report_ref7.jsonl").read_text().splitlines())}
    out = {}
    for r in map(json.loads, (res / "pilot_study_report.jsonl").read_text().splitlines()):
        key = (r["condition"], r["volume"])
        pick = current_rule(release_fold(r))
        n, prior = pick.split("/")
        if key in boot:
            n = str(min(COUNTS, key=lambda c: boot[key][str(c)]))
        fixed = {f"{c}/{p}": r["psnr"][f"{c}/{p}"] for c in COUNTS for p in PRIORS}
        out[key] = {"magnitude": {"fixed": fixed, "self": {"psnr": r["psnr"][f"{n}/{prior}"], "s": None, "cg_iters": int(n),
                                                           "phase_resid": float(prior)}}}
        if key in cs:
            out[key]["cs"] = cs[key]
    for r in map(json.loads, (res / "suite_report.jsonl").read_text().splitlines()):  # the 256² / 320² rows
        key = (r["condition"], r["volume"])
        if key in out or "self:default" not in r:
            continue
        t = r["self:default"].get("tuning") or {}
        prior = t.get("phase_resid", 0.005)
        fixed = {f"{c}/{prior}": r[f"cg{c}"]["psnr"] for c in COUNTS if f"cg{c}" in r}
        out[key] = {"magnitude": {"fixed": fixed, "self": {"psnr": r["self:default"]["psnr"], "s": None,
                                                           "cg_iters": t.get("cg_iters"), "phase_resid": prior}},
                    "cs": r["CS"]["psnr"]}
    return out


def table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print("| condition | volume | CS | magnitude: self-tuned (count, prior) | magnitude: best fixed pair | "
          "complex: self-tuned (count) | complex: best fixed count | complex − magnitude (self) | complex − CS |")
    print("|---|---|---|---|---|---|---|---|---|")
    d_self, d_cs, d_best = [], [], []
    for r in rows:
        m, c = r["magnitude"], r["complex"]
        mb = max(m["fixed"], key=m["fixed"].get)
        cb = max(c["fixed"], key=c["fixed"].get)
        cs = r.get("cs")
        d_self.append(c["self"]["psnr"] - m["self"]["psnr"])
        d_best.append(c["fixed"][cb] - m["fixed"][mb])
        if cs is not None:
            d_cs.append(c["self"]["psnr"] - cs)
        print(f"| {r['condition']} | {r['volume']} | {cs if cs is not None else '–'} | "
              f"{m['self']['psnr']:.2f} ({m['self']['cg_iters']}, {m['self']['phase_resid']}) | "
              f"{m['fixed'][mb]:.2f} ({mb}) | {c['self']['psnr']:.2f} ({c['self']['cg_iters']}) | "
              f"{c['fixed'][cb]:.2f} ({cb}) | {d_self[-1]:+.2f} | "
              f"{(c['self']['psnr'] - cs) if cs is not None else float('nan'):+.2f} |")
    print(f"\ncomplex - magnitude, self-tuned: worst {min(d_self):+.2f}, mean {np.mean(d_self):+.2f} dB; "
          f"best fixed against best fixed: worst {min(d_best):+.2f}, mean {np.mean(d_best):+.2f} dB")
    if d_cs:
        print(f"complex self-tuned - CS: worst {min(d_cs):+.2f}, mean {np.mean(d_cs):+.2f} dB")
        m_cs = [r["magnitude"]["self"]["psnr"] - r["cs"] for r in rows if r.get("cs") is not None]
        print(f"magnitude self-tuned - CS: worst {min(m_cs):+.2f}, mean {np.mean(m_cs):+.2f} dB")
    for name in ("magnitude", "complex"):  # each default against its own best fixed count, and against every fixed setting
        own = [r[name]["self"]["psnr"] - max(r[name]["fixed"].values()) for r in rows]
        both = [r[name]["self"]["psnr"] - max(max(r["magnitude"]["fixed"].values()), max(r["complex"]["fixed"].values()))
                for r in rows]
        print(f"{name} self-tuned - its best fixed setting: worst {min(own):+.2f}, mean {np.mean(own):+.2f} dB, "
              f"{sum(d >= -0.3 for d in own)}/{len(own)} within 0.3 dB; - the best fixed setting of either prior: "
              f"worst {min(both):+.2f}, mean {np.mean(both):+.2f} dB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--model", help="the complex-valued bundle (folder)")
    ap.add_argument("--conditions", default=None, help="comma list of condition indices (default: every 128² one)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cs-lambdas", default="benchmarks/results/cs_lambdas_report.json")
    ap.add_argument("--table", default=None, help="print the markdown table of a results file and exit")
    ap.add_argument("--magnitude-only", action="store_true",
                    help="run only the magnitude prior and CS (a file for a later --magnitude-from; no table)")
    ap.add_argument("--magnitude-from", default=None,
                    help="an earlier results file (same split, same device): reuse its magnitude-prior and CS entries")
    ap.add_argument("--count-pilot", default="holdout", choices=["holdout", "bootstrap", "auto"],
                    help="the self-tuned runs' count pilot (both priors)")
    ap.add_argument("--magnitude-from-report", action="store_true",
                    help="report split: reuse the magnitude prior's recorded report runs (pilot_study_report.jsonl: "
                         "every fixed pair; self-tuned = the release's pick, or the 7-CG bootstrap's on regular masks "
                         "with --count-pilot auto) and CS (suite_report.jsonl); only those rows run")
    a = ap.parse_args()
    if a.table:
        table(Path(a.table))
        return
    torch.set_num_threads(a.threads)
    mag, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    cplx = None if a.magnitude_only else load_prior(a.model, "score", offline=True)[0]
    lambdas = json.loads(Path(a.cs_lambdas).read_text()) if Path(a.cs_lambdas).exists() else {}
    out = Path(a.out or f"benchmarks/results/complex_prior_{a.split}.jsonl")
    done = {(r["condition"], r["volume"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    old = {}
    if a.magnitude_from:
        old = {(r["condition"], r["volume"]): r for r in map(json.loads, Path(a.magnitude_from).read_text().splitlines())}
    if a.magnitude_from_report:
        old = magnitude_from_report(a.count_pilot)
    conds = CONDITIONS[a.split]
    idx = [int(c) for c in a.conditions.split(",")] if a.conditions else [i for i, c in enumerate(conds) if c[1] == 128]
    for i in idx:
        cond = conds[i]
        for vol, ref in load_split(a.split, cond[1], 256.0 / cond[1], 1).items():
            name = cond_name(cond[0], *cond[1:])
            if (name, vol) in done or (a.magnitude_from_report and (name, vol) not in old):
                continue
            row = run_row(mag, cplx, vol, ref, cond, a.device, lambdas, old.get((name, vol)), a.count_pilot)
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(row["condition"], vol, row["magnitude"]["self"], row["complex"].get("self"), row.get("cs"), flush=True)


if __name__ == "__main__":
    main()
