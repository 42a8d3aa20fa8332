"""Super-resolution uncertainty: the extrapolation-ring calibration of ``superres --samples K`` on the corpus.

For every (factor, SNR, volume) it runs what ``mrdiff superres -K K`` runs by default — K samples per slice
(``tasks.superres.superres_slices``) and the ring hold-out on the volume's calibration slices
(``tasks.superres_calibration.measure_ring_spread``, the CLI's choice of slices) — and caches the arrays (mean,
raw sample variance, reference, the ring's sums, the noise estimate, the k-space split of spread and error), so
the constants can be fitted and evaluated offline. Data: ``benchmarks/superres.py``'s (axial slices at 2 mm,
128², normalised to the 99th percentile; the low-resolution *magnitude* image of the centre k-space block, with
complex Gaussian noise at ``--snr`` dB).

    # fit (tune split): factor, pool, noise weight, noise removal by the worst case over the conditions
    python benchmarks/superres_uncertainty.py --split tune --json benchmarks/results/superres_uncertainty_tune.json \\
        --write-config mrdiff_cli/weights/vdm-brain-128
    # report split: the bundle's constants, coverage / Spearman local / AUSE per condition
    python benchmarks/superres_uncertainty.py --split report --json benchmarks/results/superres_uncertainty_report.json

Fit: for every candidate (pool, noise weight, noise removal) the factor that minimises the worst-case
|coverage(1.96 std) - 0.95| over the conditions (factor x SNR, volumes pooled); among the candidates, the one
whose worst-case coverage is inside the 88-98 % band (or closest to it) with the best worst-case Spearman local.
``fixed`` (reported for comparison): the same fit of a constant factor x sqrt(pool(v)), no ring ratio.
Metrics: ``tasks.calibration.calibration_report`` on the head (reference > 5 % of its maximum).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from corpus import head_mask, load_split, masked_psnr
from superres import degrade

from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.ops.superres import centre_mask
from mrdiff_cli.samplers.selftune import HoldoutSpread
from mrdiff_cli.tasks.calibration import LEVELS, calibration_report, pool_variance
from mrdiff_cli.tasks.superres import (
    SuperresOptions,
    load_superres_model,
    lowres_noise_sigma,
    renoise_zeta,
    superres_slices,
)
from mrdiff_cli.tasks.superres_calibration import (
    BUNDLE_KEY,
    RingCalibration,
    RingSpread,
    calibration_from_bundle,
    calibration_slices,
    measure_ring_spread,
)

CACHE = Path(os.environ.get("MRDIFF_SR_UNC_CACHE", "/work/data/sr_unc_cache"))
HI = 128
POOLS = (1, 3, 5, 7)
NOISE_WEIGHTS = (0.0, 0.5, 1.0)
FACTORS = np.round(np.exp(np.linspace(np.log(0.2), np.log(30.0), 800)), 3)  # ~0.6 % steps
BAND = (0.88, 0.98)


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}, 1 thread"


def options(args) -> SuperresOptions:
    zeta = None if args.zeta == "default" else (args.zeta if args.zeta == "ancestral" else float(args.zeta))
    return SuperresOptions(samples=args.samples, steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                           zeta=zeta, consistency="magnitude")


def cache_path(args, vol: str, lo: int, snr: float) -> Path:
    zeta = renoise_zeta(options(args))  # "default" is whatever the library does
    key = f"{args.split}_{vol}_{lo}_{snr:g}_K{args.samples}_z{zeta}_s{args.steps}_seed{args.seed}_n{args.per_volume}"
    return CACHE / f"{key}.npz"


def run_one(model, ref: torch.Tensor, vol: str, lo: int, snr: float, args) -> dict:
    """Sample one (volume, factor, SNR), or read it from the cache."""
    path = cache_path(args, vol, lo, snr)
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return {k: z[k] for k in z.files}
    y = degrade(ref, (lo, lo), snr, seed=zlib.crc32(f"{vol}:{lo}:{HI}".encode()))  # benchmarks/superres.py's data
    opts = options(args)
    t0 = time.time()
    pos = calibration_slices(len(ref))
    spread = measure_ring_spread(model, y, (HI, HI), opts, pos)
    t_cal = time.time() - t0
    mean, var, samples = superres_slices(model, y, (HI, HI), opts, keep_samples=True)
    t_run = time.time() - t0 - t_cal
    assert spread is not None and var is not None and samples is not None
    # where the samples differ and where the mean errs, in k-space: inside the measured block vs outside
    lam = centre_mask((HI, HI), (lo, lo))
    ks = fft2c(samples.to(torch.complex64))
    spread_k = (ks - ks.mean(0)).abs().square().sum(0) / (len(ks) - 1)
    err_k = (fft2c(mean.to(torch.complex64)) - fft2c(ref.to(torch.complex64))).abs().square()
    noise = lowres_noise_sigma(y, opts.noise)
    t = spread.total
    out = {
        "mean": mean.numpy(), "var": var.numpy(), "ref": ref.numpy(), "noise": noise.numpy() if noise is not None else np.zeros(len(ref)),
        "ring": np.array([t.err2, t.spread2, t.noise2, t.n_values, t.samples], dtype=np.float64),
        "cal_slices": np.array(pos), "inner": np.array(spread.ring["inner"]),
        "spread_k_in": np.array(float(spread_k[:, lam].sum())), "spread_k_out": np.array(float(spread_k[:, ~lam].sum())),
        "err_k_in": np.array(float(err_k[:, lam].sum())), "err_k_out": np.array(float(err_k[:, ~lam].sum())),
        "psnr": np.array(masked_psnr(mean, ref, head_mask(ref))), "seconds": np.array([t_cal, t_run]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def psnr_one_sample(model, ref: torch.Tensor, vol: str, lo: int, snr: float, args) -> float:
    """PSNR of one zeta = 1 sample (what ``superres`` writes for K = 1), cached: the K > 1 mean's baseline."""
    path = cache_path(args, vol, lo, snr).with_suffix(".k1.json")
    if path.exists():
        return float(json.loads(path.read_text())["psnr"])
    y = degrade(ref, (lo, lo), snr, seed=zlib.crc32(f"{vol}:{lo}:{HI}".encode()))
    o = SuperresOptions(samples=1, steps=args.steps, seed=args.seed, batch_size=args.batch_size, consistency="magnitude")
    mean, _, _ = superres_slices(model, y, (HI, HI), o)
    v = float(np.mean(masked_psnr(mean, ref, head_mask(ref))))
    path.write_text(json.dumps({"psnr": v}))
    return v


def spread_of(row: dict) -> RingSpread:
    e, s, n2, n, k = (float(v) for v in row["ring"])
    return RingSpread(HoldoutSpread(e, s, n2, int(n), int(k)), float(np.mean(row["noise"])), {}, [])


def calibrated_std(row: dict, cal: RingCalibration, k_final: int) -> np.ndarray:
    return cal.std(row["var"], spread_of(row), k_final, row["noise"])


def collect(args) -> dict[str, list[tuple[str, dict]]]:
    """{condition: [(volume, row)]}, conditions 'lo->128 snr'."""
    torch.set_num_threads(args.threads)
    model, info = load_superres_model(args.model, offline=True)
    data = load_split(args.split, HI, 256.0 / HI, args.per_volume)
    conds: dict[str, list[tuple[str, dict]]] = {}
    for lo in args.factors:
        for snr in args.snr:
            name = f"{lo}->{HI} {'noise-free' if not math.isfinite(snr) else f'{snr:g} dB'}"
            for vol, ref in data.items():
                t0 = time.time()
                row = run_one(model, ref, vol, lo, snr, args)
                if args.k1:
                    row = {**row, "psnr_k1": np.array(psnr_one_sample(model, ref, vol, lo, snr, args))}
                conds.setdefault(name, []).append((vol, row))
                print(f"{name} {vol}: {len(ref)} slices, PSNR {float(np.mean(row['psnr'])):.2f}, "
                      f"ring ratio {math.sqrt(spread_of(row).ratio2(args.samples)):.3f} ({time.time() - t0:.0f} s)",
                      flush=True)
    conds["_model"] = [(str(info.get("path")), {})]
    return conds


def pooled(rows: list[tuple[str, dict]], std_fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = np.concatenate([r["mean"] for _, r in rows])
    ref = np.concatenate([r["ref"] for _, r in rows])
    std = np.concatenate([std_fn(r) for _, r in rows])
    return mean, std, ref


def metrics(rows: list[tuple[str, dict]], std_fn) -> dict:
    mean, std, ref = pooled(rows, std_fn)
    rep = calibration_report(mean, std, ref)
    ov = rep["overall"]
    return {"coverage": ov["coverage"], "spearman_local": ov["spearman_local"], "spearman": ov["spearman"],
            "ause": ov["ause"], "rmse_over_rms_std": ov["rmse_over_rms_std"]}


def ratios(rows: list[tuple[str, dict]], std_fn) -> np.ndarray:
    """err / std on the support (pooled as calibration_report does): coverage(f) = mean(ratio <= 1.96 f)."""
    mean, std, ref = pooled(rows, std_fn)
    supp = ref > 0.05 * ref.max()
    return np.abs(mean - ref)[supp] / np.maximum(std[supp], 1e-12)


def best_factor(rs: dict[str, np.ndarray]) -> tuple[float, float, dict[str, float]]:
    """The factor minimising the worst |coverage - 0.95| over the units, that worst case, the coverages."""
    best = (math.inf, 1.0)
    for f in FACTORS:
        worst = max(abs(float(np.mean(r <= 1.96 * f)) - 0.95) for r in rs.values())
        if worst < best[0]:
            best = (worst, float(f))
    f = best[1]
    return f, best[0], {c: float(np.mean(r <= 1.96 * f)) for c, r in rs.items()}


def band_miss(covs: dict[str, float]) -> float:
    return max(max(BAND[0] - c, c - BAND[1], 0.0) for c in covs.values())


def units(conds: dict) -> dict[str, list[tuple[str, dict]]]:
    """Every (condition, volume) on its own: the worst case of a per-volume calibration is per volume."""
    return {f"{c} / {v}": [(v, row)] for c, rows in conds.items() for v, row in rows}


def choose(cands: list[dict]) -> dict:
    """Inside the band (or closest to it), then the best worst-case Spearman local (to 0.01), then the simpler
    rule (no noise term, noise removed as for reconstruction), then the smallest worst |coverage - 0.95|."""
    return min(cands, key=lambda g: (round(g["band_miss"] / 0.005), -round(g["worst_spearman_local"], 2),
                                     g.get("noise_weight", 0.0), not g.get("remove_noise", True), g["worst_abs_dev"]))


def fit_candidates(us: dict, std_for, params: list[dict]) -> list[dict]:
    out = []
    for prm in params:
        rs = {u: ratios(rows, lambda r, prm=prm: std_for(r, 1.0, prm)) for u, rows in us.items()}
        f, worst, covs = best_factor(rs)
        sp = {u: metrics(rows, lambda r, prm=prm, f=f: std_for(r, f, prm))["spearman_local"] for u, rows in us.items()}
        out.append({**prm, "factor": f, "worst_abs_dev": worst, "band_miss": band_miss(covs), "coverage_95": covs,
                    "spearman_local": sp, "worst_spearman_local": min(sp.values())})
        print(f"{prm}: factor {f:.3f}, coverage 95 {min(covs.values()):.3f}-{max(covs.values()):.3f}, "
              f"worst Spearman local {min(sp.values()):.3f}", flush=True)
    return out


def fit(conds: dict, k_final: int) -> dict:
    """Grid over (pool, noise weight, noise removal), each with the factor of :func:`best_factor`, worst case over
    every (condition, volume); ``fixed``: a constant factor x sqrt(pool(v)) chosen the same way (no ring ratio)."""
    us = units(conds)

    def ring_std(r: dict, f: float, prm: dict) -> np.ndarray:
        return calibrated_std(r, RingCalibration(factor=f, pool=prm["pool"], noise_weight=prm["noise_weight"],
                                                 remove_noise=prm["remove_noise"]), k_final)

    def fixed_std(r: dict, f: float, prm: dict) -> np.ndarray:
        return f * np.sqrt(pool_variance(np.maximum(r["var"], 0), prm["pool"]))

    grid = fit_candidates(us, ring_std, [{"pool": p, "noise_weight": w, "remove_noise": rn} for p, w, rn
                                         in itertools.product(POOLS, NOISE_WEIGHTS, (True, False))])
    fixed = fit_candidates(us, fixed_std, [{"pool": p} for p in POOLS])
    return {"units": "(condition, volume)", "grid": grid, "chosen": choose(grid), "fixed": choose(fixed), "fixed_all": fixed}


def evaluate(conds: dict, cal: RingCalibration, k_final: int, fixed: dict | None) -> list[dict]:
    rows_out = []
    for c, rows in conds.items():
        r = {"condition": c, "volumes": {v: len(x["ref"]) for v, x in rows},
             "psnr": float(np.mean(np.concatenate([x["psnr"] for _, x in rows]))),
             "psnr_per_volume": {v: float(np.mean(x["psnr"])) for v, x in rows},
             **({"psnr_one_sample_per_volume": {v: float(x["psnr_k1"]) for v, x in rows}}
                if all("psnr_k1" in x for _, x in rows) else {}),
             "ring_ratio": {v: math.sqrt(spread_of(x).ratio2(k_final, cal.remove_noise)) for v, x in rows},
             "ring": {v: [int(i) for i in x["inner"]] for v, x in rows},
             "ring_calibrated": metrics(rows, lambda x: calibrated_std(x, cal, k_final)),
             "raw": metrics(rows, lambda x: np.sqrt(np.maximum(x["var"], 0))),
             "per_volume": {v: metrics([(v, x)], lambda x: calibrated_std(x, cal, k_final)) for v, x in rows},
             "kspace": {v: {"spread_outside_block": float(x["spread_k_out"] / (x["spread_k_in"] + x["spread_k_out"])),
                            "error_outside_block": float(x["err_k_out"] / (x["err_k_in"] + x["err_k_out"]))}
                        for v, x in rows},
             "seconds_per_slice": {v: float(x["seconds"].sum() / len(x["ref"])) for v, x in rows}}
        if fixed is not None:
            p, f = int(fixed["pool"]), float(fixed["factor"])
            r["fixed_factor"] = metrics(rows, lambda x, p=p, f=f: f * np.sqrt(pool_variance(x["var"], p)))
            r["fixed_per_volume"] = {v: metrics([(v, x)], lambda x, p=p, f=f: f * np.sqrt(pool_variance(x["var"], p)))
                                     for v, x in rows}
        rows_out.append(r)
    return rows_out


def table(rows: list[dict], key: str, per_volume: str | None = None) -> str:
    """Markdown: per condition the volumes pooled (``key``) and, with ``per_volume``, each volume on its own line."""
    lines = ["| condition | volume (slices) | PSNR | ring ratio | cov 68 % | cov 90 % | cov 95 % | Spearman local | AUSE |",
             "|---|---|---|---|---|---|---|---|---|"]
    cells = []

    def line(cond: str, vol: str, psnr: str, ratio: str, m: dict) -> None:
        cov = m["coverage"]
        cells.append(m)
        lines.append(f"| {cond} | {vol} | {psnr} | {ratio} | {cov['68']:.3f} | {cov['90']:.3f} | {cov['95']:.3f} | "
                     f"{m['spearman_local']:.3f} | {m['ause']:.3f} |")

    for r in rows:
        if per_volume:
            for v, m in r[per_volume].items():
                line(r["condition"], f"{v} ({r['volumes'][v]})", "", f"{r['ring_ratio'][v]:.2f}", m)
        line(r["condition"], "pooled" if per_volume else ", ".join(f"{v} ({n})" for v, n in r["volumes"].items()),
             f"{r['psnr']:.2f}", "", r[key])
    lines.append(f"\nworst case: coverage 95 % {min(m['coverage']['95'] for m in cells):.3f}-"
                 f"{max(m['coverage']['95'] for m in cells):.3f}, Spearman local >= "
                 f"{min(m['spearman_local'] for m in cells):.3f}")
    return "\n".join(lines)


def write_config(bundle: Path, cal: RingCalibration, fit_res: dict, args, fitted_on: list[str]) -> None:
    path = bundle / "config.json"
    cfg = json.loads(path.read_text())
    info = {"command": "python benchmarks/" + Path(sys.argv[0]).name + " " + " ".join(sys.argv[1:]),
            "data": f"corpus tune split ({', '.join(fitted_on)}), {args.per_volume} axial slices per volume at 2 mm / "
                    f"128^2; low-resolution magnitude images at {', '.join(f'{lo}->{HI}' for lo in args.factors)}, SNR "
                    f"{', '.join('noise-free' if not math.isfinite(s) else f'{s:g} dB' for s in args.snr)}",
            "samples": args.samples, "steps": args.steps, "zeta": str(renoise_zeta(options(args))),
            "worst_case_coverage_95": [min(fit_res["chosen"]["coverage_95"].values()), max(fit_res["chosen"]["coverage_95"].values())],
            "worst_case_spearman_local": fit_res["chosen"]["worst_spearman_local"],
            "machine": machine(), "fitted": datetime.date.today().isoformat()}
    block = RingCalibration(factor=cal.factor, pool=cal.pool, noise_weight=cal.noise_weight, remove_noise=cal.remove_noise,
                            fitted_on=fitted_on, info=info).to_dict()
    cfg[BUNDLE_KEY] = block
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    print(f"wrote {BUNDLE_KEY} to {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--factors", default="64,32", help="low-resolution matrices (target 128)")
    ap.add_argument("--snr", default="inf,35")
    ap.add_argument("--per-volume", type=int, default=4)
    ap.add_argument("--samples", "-K", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--zeta", default="default", help="default (tasks.superres.renoise_zeta), ancestral or a number")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calibration", help="report: a JSON file with the constants (default: the model bundle's)")
    ap.add_argument("--tune-json", help="report: the tune run's JSON, for the fixed-factor comparison")
    ap.add_argument("--write-config", type=Path, help="tune: write the fitted constants into this bundle's config.json")
    ap.add_argument("--k1", action="store_true", help="also the PSNR of one zeta = 1 sample (K = 1) per volume")
    ap.add_argument("--json")
    a = ap.parse_args()
    a.factors = [int(v) for v in str(a.factors).split(",")]
    a.snr = [float(v) for v in str(a.snr).split(",")]
    conds = collect(a)
    model_path = conds.pop("_model")[0][0]
    out: dict = {"split": a.split, "machine": machine(), "model": model_path, "samples": a.samples, "steps": a.steps,
                 "zeta": str(renoise_zeta(options(a))), "per_volume": a.per_volume, "command": " ".join(sys.argv)}
    if a.split == "tune":
        res = fit(conds, a.samples)
        ch = res["chosen"]
        cal = RingCalibration(factor=ch["factor"], pool=ch["pool"], noise_weight=ch["noise_weight"], remove_noise=ch["remove_noise"])
        out.update(fit=res, calibration=cal.to_dict())
        print(f"chosen: {cal.to_dict()}")
        print(f"fixed factor (no ring ratio): {res['fixed']}")
        fixed = res["fixed"]
        if a.write_config:
            write_config(a.write_config, cal, res, a, sorted({v for rows in conds.values() for v, _ in rows}))
    else:
        if a.calibration:
            cal = RingCalibration.from_dict(json.loads(Path(a.calibration).read_text()))
            source = a.calibration
        else:
            cal, source = calibration_from_bundle(model_path)
        out["calibration"] = {**cal.to_dict(), "source": source}
        fixed = json.loads(Path(a.tune_json).read_text())["fit"]["fixed"] if a.tune_json else None
    out["rows"] = evaluate(conds, cal, a.samples, fixed)
    out["levels"] = LEVELS
    print(table(out["rows"], "ring_calibrated", "per_volume"))
    print("\nraw sample spread:")
    print(table(out["rows"], "raw"))
    if fixed is not None:
        print(f"\nfixed factor {fixed['factor']:.2f} x sqrt(pool {fixed['pool']}) (no ring ratio):")
        print(table(out["rows"], "fixed_factor", "fixed_per_volume"))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
