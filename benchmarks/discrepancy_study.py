"""Does the pilot fit the kept data closer than its noise? (offline study for a discrepancy-capped CG count)

Early-stopped CG is a regulariser; the textbook stopping rule for it is Morozov's discrepancy principle: stop
once the residual on the measured data is down to what the measurement noise explains. The release's count
pilot looks only at the hidden samples; on low-SNR equispaced rows it picks more CG iterations than the best
full run (docs/benchmarks.md). This study records, per (condition, volume) and per pilot (count, phase prior)
of the release's pilot (fold 0, 10 steps — the same split and noise as ``benchmarks/pilot_study.py``):

* the residual energy on the kept samples ``|fit (F S x - y)|^2`` and their number (after coil compression),
* the hidden samples' residual and energy (the release's hold-out error, a cross-check against pilot_study),
* the noise std estimated from the scan (``estimate_kspace_noise`` on the compressed data, what a rule may use)
  and the true one (the simulator's noise, compressed the same way; diagnostics only).

Rules are then replayed against the full runs recorded by pilot_study.py (magnitude prior) or complex_prior.py
(a complex prior, ``--model``):

    python benchmarks/discrepancy_study.py --split tune --out benchmarks/results/discrepancy_tune.jsonl
    python benchmarks/discrepancy_study.py --split tune --more --out benchmarks/results/discrepancy_tune_more.jsonl
    python benchmarks/discrepancy_study.py --split tune --model RUN/bundle --out benchmarks/results/discrepancy_tune_complex.jsonl
    python benchmarks/discrepancy_study.py --rules benchmarks/results/discrepancy_tune.jsonl,benchmarks/results/discrepancy_tune_more.jsonl \\
        --psnr benchmarks/results/pilot_study_tune.jsonl,benchmarks/results/pilot_study_tune_more.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from corpus import MAGNITUDE_PRIOR, load_split
from pilot_study import COUNTS, PRIORS, clean_kspace, scan
from suite import CONDITIONS, TUNE_MORE, cond_name

from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.noise import sample_generator
from mrdiff_cli.tasks.calibration import estimate_kspace_noise
from mrdiff_cli.tasks.reconstruct import PILOT_SAMPLE, ReconOptions, Reconstructor


def record(prior, ref, cond, complex_prior: bool, steps: int = 10, stream: int = 0) -> dict:
    k, _, mask = scan(ref, cond)
    rec = Reconstructor(prior, ReconOptions(seed=0))
    prepared = rec._holdout_data(k, mask, "sense", None, compressed=False, stream=stream)
    assert prepared is not None
    y, maps, split, fit, hold = prepared
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    noise = y - m * clean_kspace(ref, cond, torch.as_tensor(k) * m, y.shape[1])  # the true noise, compressed likewise
    n_fit = int(fit.sum()) * y.shape[1]
    out: dict = {
        "kind": split.kind, "coils": int(y.shape[1]), "n_fit": n_fit, "n_hold": int(hold.sum()) * y.shape[1],
        "sigma_est": float(estimate_kspace_noise(y, m)[0]),
        "sigma_true": float(np.sqrt(float((noise * fit).abs().square().sum()) / n_fit)),
        "y2_fit": float((y * fit).abs().square().sum()), "y2_hold": float((y * hold).abs().square().sum()),
        "pilots": {},
    }
    sig = rec._sigmas("sense", steps)
    cache: dict = {}
    pairs = [(n, None) for n in COUNTS] if complex_prior else [(n, r) for r in PRIORS for n in COUNTS]
    for n, r in pairs:
        gen = [sample_generator(0, PILOT_SAMPLE, 0)]
        x = rec._holdout_run(y, fit, "sense", maps, gen, n, r, sig, cache)
        pred = fft2c(maps * x.unsqueeze(-3))
        out["pilots"][str(n) if r is None else f"{n}/{r}"] = {
            "fit": float((fit * (pred - y)).abs().square().sum()),
            "hold": float((hold * (pred - y)).abs().square().sum())}
    return out


# ------------------------------------------------------------------------------------------------ rules


def ratio(row: dict, key: str, sigma: str = "sigma_est") -> float:
    """The pilot's kept-data residual over the noise energy it should leave: |fit (A x - y)|^2 / (n_fit sigma^2)."""
    return row["pilots"][key]["fit"] / max(row["n_fit"] * row[sigma] ** 2, 1e-30)


def release_pick(row: dict) -> tuple[int, str]:
    """The release rule: the phase prior with the lower hold-out error at 3 CG, then the count with the least
    hold-out error at that prior (complex rows: the count only). → (count, prior suffix)."""
    p = row["pilots"]
    if "3" in p:
        return min(COUNTS, key=lambda n: p[str(n)]["hold"]), ""
    r = min(PRIORS, key=lambda r: p[f"3/{r}"]["hold"])
    return min(COUNTS, key=lambda n: p[f"{n}/{r}"]["hold"]), f"/{r}"


def capped_pick(row: dict, tau: float, sigma: str = "sigma_est") -> tuple[int, str]:
    """The discrepancy cap: the release's count, unless a smaller count already fits the kept samples to within
    ``tau`` times their noise energy — then the smallest such count (same prior)."""
    n, suffix = release_pick(row)
    within = [c for c in COUNTS if c <= n and ratio(row, f"{c}{suffix}", sigma) <= tau]
    return (min(within) if within else n), suffix


def rules(paths: list[Path], psnr_paths: list[Path], taus: list[float]) -> None:
    rows = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    full: dict = {}
    for p in psnr_paths:
        for line in p.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                fixed = r["psnr"] if "psnr" in r else r["complex"]["fixed"]
                full[(r["condition"], r["volume"])] = {(k if "/" in k else k): v for k, v in fixed.items()}
    print("| condition | volume | σ̂/σ | discrepancy ratio per count (release prior) | release | best fixed |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        psnr = full.get((row["condition"], row["volume"]))
        if psnr is None:
            continue
        n, suf = release_pick(row)
        rs = " ".join(f"{c}:{ratio(row, f'{c}{suf}'):.2f}" for c in COUNTS)
        pick = f"{n}{suf}"
        best = max((k for k in psnr if "/" not in k or float(k.split("/")[1]) in PRIORS), key=psnr.get)
        print(f"| {row['condition']} | {row['volume']} | {row['sigma_est'] / max(row['sigma_true'], 1e-30):.2f} | "
              f"{rs} | {pick} {psnr[pick]:.2f} | {best} {psnr[best]:.2f} |")
    print("\n| rule | worst Δ best fixed (dB) | mean Δ | rows within 0.3 dB | rows changed |\n|---|---|---|---|---|")
    cands = {"release": lambda r: release_pick(r)}
    for tau in taus:
        cands[f"discrepancy cap τ={tau:g}"] = lambda r, tau=tau: capped_pick(r, tau)
        cands[f"discrepancy cap τ={tau:g}, true σ (diagnostic)"] = lambda r, tau=tau: capped_pick(r, tau, "sigma_true")
    for name, f in cands.items():
        d, changed = [], 0
        for row in rows:
            psnr = full.get((row["condition"], row["volume"]))
            if psnr is None:
                continue
            best = max(v for k, v in psnr.items() if "/" not in k or float(k.split("/")[1]) in PRIORS)
            n, suf = f(row)
            d.append(psnr[f"{n}{suf}"] - best)
            changed += (n, suf) != release_pick(row)
        a = np.asarray(d)
        print(f"| {name} | {a.min():+.2f} | {a.mean():+.2f} | {int((a >= -0.3).sum())}/{len(a)} | {changed} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--more", action="store_true", help="tune split: the extra conditions (suite.TUNE_MORE) instead")
    ap.add_argument("--model", default=None, help="a complex-valued bundle (default: the bundled magnitude prior)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--rules", default=None, help="replay rules on these results files (comma list)")
    ap.add_argument("--psnr", default="", help="with --rules: the full-run files (pilot_study / complex_prior)")
    ap.add_argument("--taus", default="0.8,1,1.25")
    a = ap.parse_args()
    if a.rules:
        rules([Path(p) for p in a.rules.split(",")], [Path(p) for p in a.psnr.split(",") if p], [float(t) for t in a.taus.split(",")])
        return
    torch.set_num_threads(1)
    prior, _ = load_prior(a.model or MAGNITUDE_PRIOR, "score", offline=True)
    out = Path(a.out)
    done = {(r["condition"], r["volume"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    conds = TUNE_MORE if a.more and a.split == "tune" else [c for c in CONDITIONS[a.split] if c[1] == 128]
    for cond in conds:
        for vol, ref in load_split(a.split, cond[1], 256.0 / cond[1], 1).items():
            name = cond_name(cond[0], *cond[1:])
            if (name, vol) in done:
                continue
            row = {"condition": name, "volume": vol, **record(prior, ref, cond, a.model is not None)}
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(name, vol, f"σ̂/σ {row['sigma_est'] / max(row['sigma_true'], 1e-30):.2f}",
                  {k: round(v["fit"] / (row["n_fit"] * row["sigma_est"] ** 2), 3) for k, v in row["pilots"].items()},
                  flush=True)


if __name__ == "__main__":
    main()
