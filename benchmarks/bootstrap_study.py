"""The CG count by a parametric bootstrap of the scan (offline study; docs/benchmarks.md "Count selection at low SNR").

The hold-out pilot cannot see the noise that more CG iterations amplify into the missing lines of a regular mask
(its hidden lines sit in wider gaps and are bias-dominated). A parametric bootstrap has the scan's own geometry:
take a reference image from the scan (a full-data run at 5 CG, the pilot's 10 steps), simulate the scan from it
(the same mask, coil maps and estimated noise level σ̂: y* = M F S x_ref + n*), reconstruct y* at every
candidate count and keep the count whose result is closest to x_ref (squared error of the coil images over all of
k-space). Mismatch it cannot remove: x_ref is the prior's own kind of image, so the bias it shows is smaller than
the scan's.

Per tune row of ``pilot_study_tune{,_more,_low,_reg}.jsonl`` (the release's phase prior of that row) it records the
error per count; ``--rules`` compares the count it picks with the release's against the recorded full runs.

    python benchmarks/bootstrap_study.py --only 0::2 &  python benchmarks/bootstrap_study.py --only 1::2
    python benchmarks/bootstrap_study.py --rules
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from corpus import MAGNITUDE_PRIOR, load_split
from count_schedule import pending, rows_of
from pilot_study import COUNTS, acs_split, best_fixed, current_rule, release_fold, rule_row, scan
from suite import (
    CONDITIONS,
    TUNE_BIG,
    TUNE_LOW,
    TUNE_MORE,
    TUNE_REG,
    TUNE_REG2,
    TUNE_REG3,
    TUNE_REG4,
    cond_name,
    row_mask,
)

from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.noise import sample_generator
from mrdiff_cli.tasks.reconstruct import PILOT_SAMPLE, ReconOptions, Reconstructor

RESULTS = Path(__file__).parent / "results"
SETS = ("", "_more", "_low", "_reg", "_reg2", "_reg3", "_reg4", "_big")
REF_COUNT = 5


def record(prior, ref, cond, resid: float, ref_count: int = REF_COUNT) -> dict:
    k, _, mask = scan(ref, cond)
    rec = Reconstructor(prior, ReconOptions(seed=0))
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    y, maps, _s, _f, _h = rec._holdout_data(k, mask, "sense", None, compressed=False, stream=0)
    sigma = float(rec._noise_sigma(y, m)[0])
    sig10 = rec._sigmas("sense", 10)

    def run(data: torch.Tensor, n: int) -> torch.Tensor:
        return rec._holdout_run(data, m, "sense", maps, [sample_generator(0, PILOT_SAMPLE, 0)], n, resid, sig10, {})

    x_ref = run(y, ref_count)
    k_ref = fft2c(maps * x_ref.unsqueeze(-3))
    g = torch.Generator().manual_seed(321)
    noise = (torch.randn(y.shape, generator=g) + 1j * torch.randn(y.shape, generator=g)).to(torch.complex64)
    y_star = (k_ref + noise / np.sqrt(2) * sigma) * m
    out = {"sigma": sigma, "err": {}, "err_missing": {}}
    for n in COUNTS:
        d = (fft2c(maps * run(y_star, n).unsqueeze(-3)) - k_ref).abs().square()
        out["err"][str(n)] = float(d.sum())
        out["err_missing"][str(n)] = float(((1 - m) * d).sum())
    return out


def rules(path: Path, suffix: str = "", split: str = "tune") -> None:
    got = {(r["condition"], r["volume"]): r["boot"] for r in map(json.loads, path.read_text().splitlines())}
    rows = [r for r in (report_rows() if split == "report" else rows_of(suffix, SETS)) if (r["condition"], r["volume"]) in got]
    print(f"{len(rows)} {split} rows ({'complex' if suffix else 'magnitude'} prior), against the best fixed pair")
    print("| rule | worst Δ best fixed pair (dB) | mean Δ | rows within 0.3 dB |\n|---|---|---|---|")
    def regular(r: dict) -> bool:
        return acs_split(np.asarray(scan_mask(r))) is not None

    groups = {"all": lambda r: True, "all but TUNE_REG2/3/4, TUNE_BIG": lambda r: r["set"] not in ("_reg2", "_reg3", "_reg4", "_big"), "regular 1D": regular,
              "TUNE_REG (seen)": lambda r: r["set"] == "_reg", "TUNE_REG2 (fresh)": lambda r: r["set"] == "_reg2",
              "TUNE_REG3 (fresh)": lambda r: r["set"] == "_reg3", "TUNE_REG4 (fresh)": lambda r: r["set"] == "_reg4",
              "TUNE_BIG (256²/320²)": lambda r: r["set"] == "_big"}
    for label, keep in groups.items():
        sel = [r for r in rows if keep(r)]
        if not sel:
            continue
        rel = [r["psnr"][current_rule(release_fold(r))] - best_fixed(r["psnr"]) for r in sel]
        print(rule_row(f"release, {label} ({len(sel)})", rel))
        for key in ("err", "err_missing"):
            d = []
            for r in sel:
                pr = current_rule(release_fold(r)).split("/")[1]
                b = got[(r["condition"], r["volume"])][key]
                d.append(r["psnr"][f"{min(COUNTS, key=lambda n: b[str(n)])}/{pr}"] - best_fixed(r["psnr"]))
            print(rule_row(f"bootstrap ({key}), {label} ({len(sel)})", d))
        comb, vs = [], []  # the bootstrap's count on regular 1D masks, the release's pilot elsewhere
        for r in sel:
            pick = current_rule(release_fold(r))
            if regular(r):
                b = got[(r["condition"], r["volume"])]["err"]
                pick = f"{min(COUNTS, key=lambda n: b[str(n)])}/{pick.split('/')[1]}"
            comb.append(r["psnr"][pick] - best_fixed(r["psnr"]))
            vs.append(r["psnr"][pick] - r["psnr"][current_rule(release_fold(r))])
        print(rule_row(f"bootstrap on regular 1D, release elsewhere, {label} ({len(sel)})", comb)
              + f" against the release: mean {np.mean(vs):+.2f}, worst {min(vs):+.2f}, "
                f"{sum(v < -0.3 for v in vs)} rows > 0.3 dB below")
    print("\nper row: release pick, best count at its prior, bootstrap pick (all k-space / missing samples)")
    for r in rows:
        pr = current_rule(release_fold(r)).split("/")[1]
        b = got[(r["condition"], r["volume"])]
        print(f"{r['condition']} {r['volume'][:6]} release {current_rule(release_fold(r))} best "
              f"{max(COUNTS, key=lambda n: r['psnr'][f'{n}/{pr}'])} boot {min(COUNTS, key=lambda n: b['err'][str(n)])}/"
              f"{min(COUNTS, key=lambda n: b['err_missing'][str(n)])} | "
              + " ".join(f"{b['err'][str(n)]:.3g}" for n in COUNTS))


_CONDS = {cond_name(c[0], *c[1:]): c
          for c in CONDITIONS["tune"] + CONDITIONS["report"] + TUNE_MORE + TUNE_LOW + TUNE_REG + TUNE_REG2 + TUNE_REG3 + TUNE_REG4 + TUNE_BIG}


def report_rows() -> list[dict]:
    """The report suite's recorded rows (``pilot_study_report.jsonl``: full runs and the release's pilot)."""
    return [dict(json.loads(line), set="report")
            for line in (RESULTS / "pilot_study_report.jsonl").read_text().splitlines() if line.strip()]


def scan_mask(row: dict):
    _acq, matrix, kind, R = _CONDS[row["condition"]]
    return row_mask(matrix, kind, R)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(RESULTS / "bootstrap_study_tune.jsonl"))
    ap.add_argument("--only", default=None, help="a slice START::STEP of the tune rows (two processes)")
    ap.add_argument("--rules", action="store_true")
    ap.add_argument("--model", default=None, help="a complex-valued bundle (rows of the _complex tune files)")
    ap.add_argument("--ref-count", type=int, default=REF_COUNT,
                    help="CG count of the reference reconstruction (results: ..._ref{N}.jsonl unless 5)")
    ap.add_argument("--split", choices=["tune", "report"], default="tune",
                    help="report: the report suite's rows (magnitude prior; the veto, nothing is chosen there)")
    ap.add_argument("--sets", default=",".join(SETS), help="comma list of the tune sets whose rows run ('' = the base set)")
    a = ap.parse_args()
    suffix = "_complex" if a.model else ""
    out = Path(a.out.replace(".jsonl", f"{suffix}.jsonl") if a.model and suffix not in a.out else a.out)
    if a.split == "report":
        out = Path(str(out).replace("_tune", "_report"))
    if a.ref_count != REF_COUNT:
        out = Path(str(out).replace(".jsonl", f"_ref{a.ref_count}.jsonl"))
    if a.rules:
        rules(out, suffix, a.split)
        return
    torch.set_num_threads(1)
    prior, _ = load_prior(a.model or MAGNITUDE_PRIOR, "score", offline=True)
    sets = tuple(a.sets.split(","))
    for row in pending(report_rows() if a.split == "report" else rows_of(suffix, sets), a.only, out):
        cond = _CONDS[row["condition"]]
        if a.split == "report" and acs_split(np.asarray(scan_mask(row))) is None:
            continue  # the veto concerns the regular-mask rows only
        ref = load_split(a.split, cond[1], 256.0 / cond[1], 1)[row["volume"]]
        boot = record(prior, ref, cond, 0.005 if a.model else float(current_rule(release_fold(row)).split("/")[1]),
                      a.ref_count)
        with out.open("a") as fh:
            fh.write(json.dumps({"condition": row["condition"], "volume": row["volume"], "boot": boot}) + "\n")
        print(row["condition"], row["volume"], flush=True)


if __name__ == "__main__":
    main()
