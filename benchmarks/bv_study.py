"""A bias-variance count criterion for regular 1D masks (offline study; docs/benchmarks.md "Count selection at low SNR").

On regular (equispaced) masks the full run's loss from 5 to 7 CG iterations is noise amplified into the missing
lines, while the hold-out pilot's hidden lines are dominated by bias. This study estimates the full run's error on
its missing samples as bias + variance, each from the scan:

    count = argmin_c  B(c) * E_u + V(c)

* B(c): the relative error of the ACS-subsampled pilot (``pilot_study.py --add-fold 0/10/acs``) at its hidden centre
  lines, noise removed: (h_c - N_h sigma^2) / (Y_h - N_h sigma^2);
* E_u: the signal energy at the scan's missing lines, from the measured lines (each missing line: the geometric
  mean of the noise-removed energies of the nearest measured line on either side) — and, as a diagnostic, the true
  noise-free energy (simulation only);
* V(c): the noise amplified into the missing samples — two full-data runs at the pilot's 10 steps with the same
  sampler noise, one with extra complex noise of the estimated sigma on the measured samples; the squared change
  at the missing samples.

Per regular row of the four tune files (the release's phase prior; the complex prior has none) it records sigma,
N_h, E_u (estimated and true), V(c), and the full run's own error at the missing samples from the noise-free and
the noisy data (diagnostics: what B(c) * E_u and V(c) stand in for).

    python benchmarks/bv_study.py --out benchmarks/results/bv_study_tune.jsonl
    python benchmarks/bv_study.py --model RUN/bundle --out benchmarks/results/bv_study_tune_complex.jsonl
    python benchmarks/bv_study.py --rules benchmarks/results/bv_study_tune.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from corpus import MAGNITUDE_PRIOR, load_split
from pilot_study import COUNTS, PRIORS, acs_split, best_fixed, clean_kspace, current_rule, release_fold, rule_row, scan
from suite import CONDITIONS, TUNE_LOW, TUNE_MORE, TUNE_REG, cond_name

from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.noise import sample_generator
from mrdiff_cli.tasks.reconstruct import PILOT_SAMPLE, ReconOptions, Reconstructor

RESULTS = Path(__file__).parent / "results"
SETS = ("", "_more", "_low", "_reg")


def missing_energy(y: torch.Tensor, m: np.ndarray, sigma2: float) -> float:
    """E_u estimated from the measured lines of a 1D mask (columns, or rows): each missing line gets the geometric
    mean of the noise-removed energies of the nearest measured line on either side (one side at the edges)."""
    col = bool(m.all(axis=0).any())
    e = (y[0].abs().square().sum(dim=(0, 1)) if col else y[0].abs().square().sum(dim=(0, 2))).cpu().numpy()
    lines = m.all(axis=0) if col else m.all(axis=1)
    n_per_line = y.shape[1] * (m.shape[0] if col else m.shape[1])
    e = np.maximum(e - n_per_line * sigma2, 1e-12)
    meas = np.flatnonzero(lines)
    total = 0.0
    for i in np.flatnonzero(~lines):
        lo, hi = meas[meas < i], meas[meas > i]
        nb = ([e[lo[-1]]] if lo.size else []) + ([e[hi[0]]] if hi.size else [])
        total += float(np.exp(np.mean(np.log(nb))))
    return total


def record(prior, ref, cond, resid: float) -> dict:
    k, _, mask = scan(ref, cond)
    m_np = np.asarray(mask, dtype=np.float32)
    rec = Reconstructor(prior, ReconOptions(seed=0))
    y, maps, _split, _fit, _hold = rec._holdout_data(k, mask, "sense", None, compressed=False, stream=0)
    m = torch.as_tensor(m_np)
    y_raw = torch.as_tensor(k) * m
    clean = clean_kspace(ref, cond, y_raw, y.shape[1])
    sigma = float(rec._noise_sigma(y, m)[0])
    g = torch.Generator().manual_seed(123)
    d = (torch.randn(y.shape, generator=g) + 1j * torch.randn(y.shape, generator=g)).to(torch.complex64)
    d = d / np.sqrt(2) * sigma * m
    u = 1 - m
    fit_acs, hold_acs, _ = acs_split(m_np)
    out = {"sigma": sigma, "coils": int(y.shape[1]), "n_hold": float(hold_acs.sum()) * y.shape[1],
           "E_u_est": missing_energy(y, m_np, sigma ** 2),
           "E_u_true": float((u * clean.abs().square()).sum()), "V": {}, "full_clean": {}, "full_noisy": {}}
    sig10, sig20 = rec._sigmas("sense", 10), rec._sigmas("sense")

    def run(data, n, steps_sig, stream):
        x = rec._holdout_run(data, m, "sense", maps, [sample_generator(0, stream, 0)], n, resid, steps_sig, {})
        return fft2c(maps * x.unsqueeze(-3))

    for n in COUNTS:
        a, b = run(y, n, sig10, PILOT_SAMPLE), run(y + d, n, sig10, PILOT_SAMPLE)
        out["V"][str(n)] = float((u * (b - a)).abs().square().sum())
        out["full_clean"][str(n)] = float((u * (run(clean * m, n, sig20, 0) - clean)).abs().square().sum())
        out["full_noisy"][str(n)] = float((u * (run(y, n, sig20, 0) - clean)).abs().square().sum())
    return out


def rows_of(suffix: str) -> list[dict]:
    return [json.loads(line) for s in SETS
            for line in (RESULTS / f"pilot_study_tune{s}{suffix}.jsonl").read_text().splitlines() if line.strip()]


def bias_term(row: dict, bv: dict, energy: str, n: int) -> float:
    """B(c) * E_u at the release's phase prior: the ACS pilot's noise-removed relative error times the energy."""
    pr = current_rule(release_fold(row)).split("/")[1]
    acs = row["pilots"]["0/10/acs"]
    noise = bv["n_hold"] * bv["sigma"] ** 2
    y_h = max(float(np.sum(acs["_y2"])) - noise, 1e-12)
    return max(float(np.sum(acs[f"{n}/{pr}"])) - noise, 0.0) / y_h * bv[energy]


def bv_count(row: dict, bv: dict, energy: str) -> str:
    """The bias-variance criterion's (count, prior) on a regular row: the release's prior."""
    pr = current_rule(release_fold(row)).split("/")[1]
    return f"{min(COUNTS, key=lambda n: bias_term(row, bv, energy, n) + bv['V'][str(n)])}/{pr}"


def rules(paths: list[Path]) -> None:
    for path in paths:
        suffix = "_complex" if "complex" in path.name else ""
        bvs = {(r["condition"], r["volume"]): r for r in map(json.loads, path.read_text().splitlines())}
        rows = rows_of(suffix)
        print(f"\n{path.name}: {len(bvs)} regular rows of {len(rows)} tune rows")
        print("| rule | worst Δ best fixed pair (dB) | mean Δ | rows within 0.3 dB |\n|---|---|---|---|")
        for name, energy in (("release", None), ("bias-variance, E_u estimated", "E_u_est"),
                             ("bias-variance, E_u true (diagnostic)", "E_u_true")):
            d_all, d_reg, d_fresh = [], [], []
            for r in rows:
                bv = bvs.get((r["condition"], r["volume"]))
                pick = current_rule(release_fold(r)) if bv is None or energy is None else bv_count(r, bv["bv"], energy)
                v = r["psnr"][pick] - best_fixed(r["psnr"])
                d_all.append(v)
                if bv is not None:
                    d_reg.append(v)
                    if bv["set"] == "_reg":
                        d_fresh.append(v)
            for label, d in ((f"all {len(d_all)}", d_all), (f"regular {len(d_reg)}", d_reg),
                             (f"fresh regular {len(d_fresh)}", d_fresh)):
                if d:
                    print(rule_row(f"{name}: {label}", d))
        print("\nper row: best count at the release's prior | full run's missing-sample error from noise-free data "
              "(bias) / noisy data, per count | B(c) * E_u (estimated) | V(c) | E_u est / true")
        for r in rows:
            bv = bvs.get((r["condition"], r["volume"]))
            if bv is None:
                continue
            pr = current_rule(release_fold(r)).split("/")[1]
            b = bv["bv"]
            best = max(COUNTS, key=lambda n: r["psnr"][f"{n}/{pr}"])
            print(f"{r['condition']} {r['volume'][:6]} best {best} release {current_rule(release_fold(r))} "
                  f"bv {bv_count(r, b, 'E_u_est')} | "
                  + " ".join(f"{b['full_clean'][str(n)]:.2f}/{b['full_noisy'][str(n)]:.2f}" for n in COUNTS)
                  + " | " + " ".join(f"{bias_term(r, b, 'E_u_est', n):.2f}" for n in COUNTS)
                  + " | " + " ".join(f"{b['V'][str(n)]:.2f}" for n in COUNTS)
                  + f" | {b['E_u_est']:.1f}/{b['E_u_true']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a complex-valued bundle (rows of the _complex tune files)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--rules", default=None, help="comma list of this study's results files")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.rules:
        rules([Path(p) for p in a.rules.split(",")])
        return
    torch.set_num_threads(a.threads)
    prior, _ = load_prior(a.model or MAGNITUDE_PRIOR, "score", offline=True)
    suffix = "_complex" if a.model else ""
    out = Path(a.out or RESULTS / f"bv_study_tune{suffix}.jsonl")
    done = {(r["condition"], r["volume"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    conds = {cond_name(c[0], *c[1:]): c for c in CONDITIONS["tune"] + TUNE_MORE + TUNE_LOW + TUNE_REG}
    for s in SETS:
        for line in (RESULTS / f"pilot_study_tune{s}{suffix}.jsonl").read_text().splitlines():
            row = json.loads(line)
            if not row["pilots"].get("0/10/acs") or (row["condition"], row["volume"]) in done:
                continue
            cond = conds[row["condition"]]
            ref = load_split("tune", cond[1], 256.0 / cond[1], 1)[row["volume"]]
            resid = PRIORS[0] if a.model else float(current_rule(release_fold(row)).split("/")[1])
            bv = record(prior, ref, cond, resid)
            with out.open("a") as fh:
                fh.write(json.dumps({"condition": row["condition"], "volume": row["volume"], "set": s, "bv": bv}) + "\n")
            print(row["condition"], row["volume"], flush=True)


if __name__ == "__main__":
    main()
