"""The error the hold-out cannot see: how far the pilot fits the noise of the samples it keeps (Monte-Carlo SURE).

The count pilot scores a CG count by its prediction of hidden samples. The image error of a run also has a part on
the *measured* samples: the more CG, the closer the estimate follows their noise. Stein's unbiased risk estimate
gives that part from the data alone: for the kept samples y_f with complex noise of variance sigma^2 per value,

    E |fit (A x - k)|^2  =  |fit (A x - y)|^2 - n_fit sigma^2 + 2 sigma^2 div,
    div = Re <b, fit A (x(y + eps b) - x(y))> / eps       (one extra pilot with perturbed data, same sampler noise)

(Ramani, Blu & Unser 2008, Monte-Carlo SURE). Per (condition, volume) of the tune files and per count, at the
phase prior the release chooses (from the recorded whole-lines fold), this records the kept-data residual, the
divergence, the hidden samples' residual and the sample counts, so that criteria combining the two parts are
replayed offline (``--rules``) against the recorded full runs.

    python benchmarks/sure_study.py --sets ,_more,_low [--model RUN/bundle] --out benchmarks/results/sure_tune.jsonl
    python benchmarks/sure_study.py --rules benchmarks/results/sure_tune.jsonl,benchmarks/results/sure_tune_complex.jsonl
    python benchmarks/sure_study.py --probe 1/itk_kmeans_t1 [--model RUN/bundle]     # one row, printed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from corpus import MAGNITUDE_PRIOR, load_split
from pilot_study import COUNTS, PRIORS, clean_kspace, current_rule, rel, scan
from suite import CONDITIONS, TUNE_LOW, TUNE_MORE, cond_name

from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.noise import sample_generator
from mrdiff_cli.samplers.selftune import PILOT_LINE_CAP
from mrdiff_cli.tasks.calibration import estimate_kspace_noise
from mrdiff_cli.tasks.reconstruct import PILOT_SAMPLE, ReconOptions, Reconstructor

RESULTS = Path(__file__).parent / "results"
FOLD = "0/10/lines0.25"


def record(prior, ref, cond, resid: float, eps_rel: float = 0.1) -> dict:
    k, _, mask = scan(ref, cond)
    rec = Reconstructor(prior, ReconOptions(seed=0))
    y, maps, split, fit, hold = rec._holdout_data(k, mask, "sense", None, compressed=False, line_cap=PILOT_LINE_CAP)
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    sigma = float(estimate_kspace_noise(y, m)[0])
    C = y.shape[1]
    g = torch.Generator().manual_seed(1234)
    b = torch.complex(torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g)) / np.sqrt(2.0)
    b = b.to(y.dtype) * fit
    eps = eps_rel * max(sigma, 1e-8)
    sig = rec._sigmas("sense", 10)
    out: dict = {"sigma_est": sigma, "n_fit": int(fit.sum()) * C, "n_hold": int(hold.sum()) * C,
                 "n_meas": int(m.sum()) * C, "n_all": int(m.numel()) * C, "kind": split.kind, "resid": resid,
                 "y2_hold": float((y * hold).abs().square().sum()), "eps": eps, "counts": {}}
    for n in COUNTS:
        pred = {}
        for name, yy in (("plain", y), ("perturbed", y + eps * b)):
            gen = [sample_generator(0, PILOT_SAMPLE, 0)]  # the same sampler noise for both
            x = rec._holdout_run(yy, fit, "sense", maps, gen, n, resid, sig, {})
            pred[name] = fft2c(maps * x.unsqueeze(-3))
        div = float(torch.real(torch.sum(b.conj() * fit * (pred["perturbed"] - pred["plain"])))) / eps
        out["counts"][str(n)] = {"fit": float((fit * (pred["plain"] - y)).abs().square().sum()),
                                 "hold": float((hold * (pred["plain"] - y)).abs().square().sum()), "div": div}
    return out


def full_errors(prior, ref, cond, resid: float, counts=(3, 5, 7)) -> dict[int, tuple[float, float]]:
    """The full run's own k-space error (all measured samples, 20 steps) at each count, against the noise-free
    k-space (compressed like the data): {n: (error on the measured samples, error on the unmeasured ones)} —
    what the pilot's hidden samples stand in for, measurable only in simulation."""
    k, _, mask = scan(ref, cond)
    rec = Reconstructor(prior, ReconOptions(seed=0))
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    y_raw = torch.as_tensor(k) * m
    y, _ = rec._compress(y_raw, None, "sense")
    clean = clean_kspace(ref, cond, y_raw, y.shape[1])
    maps = rec.estimate_maps(y, m)
    out = {}
    for n in counts:
        x = rec._holdout_run(y, m, "sense", maps, [sample_generator(0, 0, 0)], n, resid, rec._sigmas("sense"), {})
        err = (fft2c(maps * x.unsqueeze(-3)) - clean).abs().square()
        out[n] = (float((m * err).sum()), float(((1 - m) * err).sum()))
    return out


# ------------------------------------------------------------------------------------------------ rules


def criteria(row: dict, n: int) -> dict[str, float]:
    """Estimated squared errors (k-space, all coils) of the pilot estimate at count n: on the kept samples (SURE),
    on the hidden ones (noise removed), and their combinations scaled to the whole k-space by sample counts."""
    c, s2 = row["counts"][str(n)], row["sigma_est"] ** 2
    fit = c["fit"] - row["n_fit"] * s2 + 2.0 * s2 * c["div"]
    hold = c["hold"] - row["n_hold"] * s2
    per_fit, per_hold = fit / max(row["n_fit"], 1), hold / max(row["n_hold"], 1)
    return {"hold": hold, "sure_fit": fit,
            "measured+unmeasured": per_fit * row["n_meas"] + per_hold * (row["n_all"] - row["n_meas"])}


def rules(paths: list[Path]) -> None:
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]
    out: dict[str, list[float]] = {}
    print("| prior | condition | volume | best count | hold-out pick | combined pick | ratio fit part / hold part at 7 |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        psnr = {int(k.split("/")[0]): v for k, v in row["psnr"].items() if float(k.split("/")[1]) == row["resid"]}
        best = max(psnr.values())
        picks = {}
        for name in ("hold", "measured+unmeasured"):
            picks[name] = min(COUNTS, key=lambda n, name=name: criteria(row, n)[name])
            out.setdefault(name, []).append(psnr[picks[name]] - best)
        c7 = criteria(row, 7)
        print(f"| {row['prior']} | {row['condition']} | {row['volume']} | {max(psnr, key=psnr.get)} ({best:.2f}) | "
              f"{picks['hold']} ({psnr[picks['hold']]:.2f}) | {picks['measured+unmeasured']} "
              f"({psnr[picks['measured+unmeasured']]:.2f}) | {c7['sure_fit'] / max(c7['hold'], 1e-30):.2f} |")
    print("\n| count criterion (at the release's phase prior) | worst Δ best count (dB) | mean Δ | within 0.3 dB |")
    print("|---|---|---|---|")
    for name, d in out.items():
        a = np.asarray(d)
        print(f"| {name} | {a.min():+.2f} | {a.mean():+.2f} | {int((a >= -0.3).sum())}/{len(a)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",_more,_low", help="tune files: pilot_study_tune{SET}.jsonl")
    ap.add_argument("--model", default=None, help="a complex-valued bundle (its files: ..._complex.jsonl)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--rules", default=None)
    ap.add_argument("--only", default=None, help="comma list of row indices to run (for two processes)")
    ap.add_argument("--probe", default=None, help="CONDITION_INDEX/VOLUME of suite.CONDITIONS['tune']: print one row")
    a = ap.parse_args()
    if a.probe:
        idx, vol = a.probe.split("/")
        cond = CONDITIONS["tune"][int(idx)]
        prior, _ = load_prior(a.model or MAGNITUDE_PRIOR, "score", offline=True)
        name = cond_name(cond[0], *cond[1:])
        row = {(r["condition"], r["volume"]): r for r in map(json.loads, (RESULTS / (
            "pilot_study_tune" + ("_complex" if a.model else "") + ".jsonl")).read_text().splitlines())}[(name, vol)]
        resid = PRIORS[0] if a.model else float(current_rule(row["pilots"].get(FOLD) or row["pilots"]["0/10"]).split("/")[1])
        r = record(prior, load_split("tune", 128, 2.0, 1)[vol], cond, resid)
        print(f"{name} {vol} ({'complex' if a.model else f'magnitude, phase prior {resid}'})")
        print("| count | full-run PSNR | SURE, kept samples | hidden samples (noise removed) | combined |\n|---|---|---|---|---|")
        for n in COUNTS:
            c = criteria(r, n)
            print(f"| {n} | {row['psnr'][f'{n}/{resid}']:.2f} | {c['sure_fit']:.3f} | {c['hold']:.3f} | "
                  f"{c['measured+unmeasured']:.2f} |")
        full = full_errors(prior, load_split("tune", 128, 2.0, 1)[vol], cond, resid)
        print("\nthe full run's own error against the noise-free k-space (simulation only):")
        print("| count | measured samples | unmeasured samples |\n|---|---|---|")
        for n, (e_m, e_u) in full.items():
            print(f"| {n} | {e_m:.3f} | {e_u:.3f} |")
        return
    if a.rules:
        rules([Path(p) for p in a.rules.split(",")])
        return
    torch.set_num_threads(1)
    prior, _ = load_prior(a.model or MAGNITUDE_PRIOR, "score", offline=True)
    suffix = "_complex" if a.model else ""
    refs = {}
    for cond in CONDITIONS["tune"] + TUNE_MORE + TUNE_LOW:
        if cond[1] != 128:
            continue
        for vol, ref in load_split("tune", 128, 2.0, 1).items():
            refs[(cond_name(cond[0], *cond[1:]), vol)] = (ref, cond)
    rows = [json.loads(line) for s in a.sets.split(",")
            for line in (RESULTS / f"pilot_study_tune{s}{suffix}.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if (r["condition"], r["volume"]) in refs]
    out = Path(a.out)
    done = {(r["condition"], r["volume"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    only = {int(i) for i in a.only.split(",")} if a.only else None
    for i, row in enumerate(rows):
        if (only is not None and i not in only) or (row["condition"], row["volume"]) in done:
            continue
        p = row["pilots"].get(FOLD) or row["pilots"]["0/10"]
        resid = float(current_rule(p).split("/")[1]) if not a.model else PRIORS[0]
        ref, cond = refs[(row["condition"], row["volume"])]
        rec = {"condition": row["condition"], "volume": row["volume"], "prior": "complex" if a.model else "magnitude",
               "psnr": {k: v for k, v in row["psnr"].items()},
               "release_holdout": {str(n): rel(p, f"{n}/{resid}") for n in COUNTS}, **record(prior, ref, cond, resid)}
        with out.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(row["condition"], row["volume"], {n: round(criteria(rec, n)["measured+unmeasured"], 4) for n in COUNTS},
              flush=True)


if __name__ == "__main__":
    main()
