"""Uncertainty benchmark: calibration of the std maps on a corpus split, Spearman vs K, and the cost of K samples.

    # the report-set evidence of docs/benchmarks.md (the calibration is the model's, fitted on the TUNE split)
    python benchmarks/uncertainty.py --split report --samples 8 --settings poisson:8 uniform1d:4 --coils 8 1 \\
        --out-md /tmp/unc_report.md --figures docs/figures/uncertainty
    # std and error vs K on the tune split (nested subsets of 32 samples), and timing
    python benchmarks/uncertainty.py --split tune --vs-k 2 4 8 16 32 --timing-k 1 4 8 16

Data: the split's volumes of the corpus manifest (benchmarks/corpus.py), in-plane slices resampled to 2 mm and
centred in a 128 x 128 matrix (the prior's grid), simulated as raw k-space at ``--snr`` dB (smooth phase, coil
maps, complex Gaussian noise; ``tasks.simulate``); the noise-free magnitude is the reference. Per setting it
draws K posterior samples with the CLI's K > 1 defaults (fast sampler, zeta = 1 renoise, the model's calibration)
and the single-sample default (K = 1, zeta = 1) for the PSNR comparison. Metrics on the head (reference > 5 % of
its maximum): per-slice Spearman(std, |mean - ref|) and Spearman(std, 5 x 5 local RMS of |mean - ref|) (issue #24's
criterion, ``spearman_local``), both averaged over slices, coverage of mean ± z std at 68/90/95 %, and the AUSE (area
under the sparsification error, ``tasks.calibration.sparsification``: 0 = the std ranks pixels like the error).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate import default_opts, pick_slices, run_setting, split_volumes  # noqa: E402
from corpus import MAGNITUDE_PRIOR  # noqa: E402


def slices_2mm(path: Path, n: int, matrix: int = 128, voxel: float = 2.0) -> tuple[np.ndarray, list[int]]:
    """``n`` in-plane slices of a volume, resampled (k-space crop/pad) to ``voxel`` mm and centred (zero padding or
    cropping) in a ``matrix`` x ``matrix`` grid."""
    from mrdiff_cli.io.detect import load_image
    from mrdiff_cli.tasks.simulate import resample_slices

    vol, geom = load_image(path)
    idx = pick_slices(vol, n)
    v = vol[idx].astype(np.float32)
    fov = max(v.shape[1] * geom.voxel_size[0], v.shape[2] * geom.voxel_size[1])
    target = int(round(fov / voxel))
    v, _, _ = resample_slices(v, target)  # square, target x target at `voxel` mm
    out = np.zeros((v.shape[0], matrix, matrix), np.float32)
    a = min(target, matrix)
    src = (target - a) // 2
    dst = (matrix - a) // 2
    out[:, dst:dst + a, dst:dst + a] = v[:, src:src + a, src:src + a]
    return out, idx


def head_metrics(mean, std, ref) -> dict:
    from mrdiff_cli.tasks.calibration import calibration_report

    rep = calibration_report(mean, std, ref)
    rhos = [p["spearman"] for p in rep["per_slice"] if p["spearman"] is not None]
    local = [p["spearman_local"] for p in rep["per_slice"] if p["spearman_local"] is not None]
    ov = rep["overall"]
    return {"spearman_slice_mean": float(np.mean(rhos)) if rhos else None, "spearman_pooled": ov["spearman"],
            "spearman_local_slice_mean": float(np.mean(local)) if local else None, "ause": ov["ause"],
            "coverage": ov["coverage"], "rmse_over_rms_std": ov["rmse_over_rms_std"], "report": rep}


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def psnr_head(img, ref) -> float:
    from mrdiff_cli.metrics import volume_metrics

    return float(volume_metrics(img, ref)["mean"]["psnr"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="bundle folder (default: the bundled model)")
    ap.add_argument("--split", default="report", choices=["tune", "report"])
    ap.add_argument("--slices-per-volume", type=int, default=4)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--settings", nargs="+", default=["poisson:8", "uniform1d:4"])
    ap.add_argument("--coils", nargs="+", type=int, default=[8, 1])
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--vs-k", nargs="*", type=int, default=[], help="Spearman / coverage vs K (nested subsets)")
    ap.add_argument("--timing-k", nargs="*", type=int, default=[])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--figures", default=None, help="folder for the calibration plots")
    ap.add_argument("--out-md", default=None)
    ap.add_argument("--out-json", default=None)
    args = ap.parse_args()

    import torch

    from mrdiff_cli.io.calibration_png import write_calibration_png
    from mrdiff_cli.priors.bundle import read_config
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.calibration import Calibration
    from mrdiff_cli.tasks.simulate import simulate_volume

    prior, info = load_prior(args.model or MAGNITUDE_PRIOR, "score", offline=True)
    block = read_config(info["path"]).get("calibration")
    cal = Calibration.from_dict(block) if block else None
    base = default_opts(args.batch_size)
    rows, vsk, timing = [], [], []
    vols = split_volumes(args.split)
    figs = Path(args.figures) if args.figures else None
    if figs:
        figs.mkdir(parents=True, exist_ok=True)
    for vi, (name, path) in enumerate(vols):
        img, idx = slices_2mm(path, args.slices_per_volume)
        for coils in args.coils:
            sim = simulate_volume(img, matrix=None, coils=coils, snr_db=args.snr, seed=200 + vi)
            for setting in args.settings:
                kind, R = setting.split(":")
                one, _, t1 = run_setting(prior, sim, kind, float(R), samples=1, opts_kw={**base, "zeta": 1.0})
                res, mask, tk = run_setting(prior, sim, kind, float(R), samples=args.samples,
                                            opts_kw={**base, "calibration": block})
                raw = head_metrics(res.images, np.sqrt(res.raw_variance), sim.reference)
                calm = head_metrics(res.images, np.sqrt(res.variance), sim.reference)
                row = {"volume": name, "slices": idx, "coils": coils, "mask": kind, "R": float(R), "K": args.samples,
                       "psnr_single": psnr_head(one.images, sim.reference),
                       "psnr_mean": psnr_head(res.images, sim.reference),
                       "raw": {k: v for k, v in raw.items() if k != "report"},
                       "calibrated": {k: v for k, v in calm.items() if k != "report"},
                       "noise_sigma_est": [float(v) for v in res.noise_sigma] if res.noise_sigma is not None else None,
                       "seconds_K": tk, "seconds_1": t1}
                if figs:
                    png = figs / f"{args.split}_{name}_c{coils}_{kind}{int(float(R))}.png"
                    write_calibration_png(png, calm["report"], overwrite=True)
                    row["figure"] = str(png)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("raw",)}), flush=True)
    if args.vs_k:
        # nested subsets of one draw of max(K) samples: 8 coils, the first setting, every volume of the split
        kmax = max(args.vs_k)
        kind, R = args.settings[0].split(":")
        for vi, (name, path) in enumerate(vols):
            img, idx = slices_2mm(path, args.slices_per_volume)
            sim = simulate_volume(img, matrix=None, coils=8, snr_db=args.snr, seed=200 + vi)
            res, _, _ = run_setting(prior, sim, kind, float(R), samples=kmax, opts_kw={**base, "calibration": None},
                                    keep=True)
            for K in args.vs_k:
                s = res.samples[:K]
                mean, var = s.mean(axis=0), s.var(axis=0, ddof=1)
                for pool in (1, 3):
                    from mrdiff_cli.tasks.calibration import pool_variance

                    m = head_metrics(mean, np.sqrt(pool_variance(var, pool)), sim.reference)
                    c = head_metrics(mean, cal.std(mean, var), sim.reference) if cal and pool == 1 else None
                    d = {"volume": name, "K": K, "pool": pool, "psnr_mean": psnr_head(mean, sim.reference),
                         "std_rms_head": float(np.sqrt(np.mean(pool_variance(var, pool)[sim.reference > 0.05 * sim.reference.max()]))),
                         "err_rms_head": float(np.sqrt(np.mean(((mean - sim.reference) ** 2)[sim.reference > 0.05 * sim.reference.max()]))),
                         "spearman": m["spearman_slice_mean"], "coverage_95_raw": m["coverage"]["95"],
                         "calibrated_spearman": c["spearman_slice_mean"] if c else None,
                         "calibrated_coverage": c["coverage"] if c else None}
                    vsk.append(d)
                    print(json.dumps(d), flush=True)
    if args.timing_k:
        name, path = vols[0]
        img, _ = slices_2mm(path, 2)
        sim = simulate_volume(img, matrix=None, coils=8, snr_db=args.snr, seed=300)
        for K in args.timing_k:
            _, _, secs = run_setting(prior, sim, "poisson", 8.0, samples=K,
                                     opts_kw={**base, "zeta": 1.0 if K == 1 else None})
            timing.append({"K": K, "slices": img.shape[0], "seconds": secs, "samples_per_s": K * img.shape[0] / secs})
            print(json.dumps(timing[-1]), flush=True)

    machine = (f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
               f"precision {base['autocast'] or 'fp32'}, batch size {args.batch_size}")
    lines = [f"Command: `python benchmarks/uncertainty.py {' '.join(sys.argv[1:])}`  ",
             f"Machine: {machine} (2 cores shared with other jobs: timings are upper bounds).  ",
             f"Calibration: {json.dumps(block) if block else 'none in the bundle'}", ""]
    if rows:
        lines += ["| volume (slices) | coils | mask | K | PSNR K=1 | PSNR mean | Spearman raw | Spearman cal. | "
                  "Spearman local 5x5 cal. | AUSE raw | AUSE cal. | cov 68 / 90 / 95 % raw | cov 68 / 90 / 95 % cal. | plot |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            cr, cc = r["raw"]["coverage"], r["calibrated"]["coverage"]
            lines.append(
                f"| {r['volume']} ({len(r['slices'])}) | {r['coils']} | {r['mask']} x{r['R']:g} | {r['K']} | "
                f"{r['psnr_single']:.2f} | {r['psnr_mean']:.2f} | {r['raw']['spearman_slice_mean']:.3f} | "
                f"{r['calibrated']['spearman_slice_mean']:.3f} | {_f(r['calibrated']['spearman_local_slice_mean'])} | "
                f"{_f(r['raw']['ause'])} | {_f(r['calibrated']['ause'])} | {cr['68']:.2f} / {cr['90']:.2f} / {cr['95']:.2f} | "
                f"{cc['68']:.2f} / {cc['90']:.2f} / {cc['95']:.2f} | {Path(r.get('figure', '-')).name} |")
    if vsk:
        lines += ["", "| volume | K | pool | PSNR mean | rms std (head) | rms err (head) | Spearman | cov 95 % raw | "
                  "Spearman cal. | cov 68 / 90 / 95 % cal. |", "|---|---|---|---|---|---|---|---|---|---|"]
        for d in vsk:
            cc = d["calibrated_coverage"]
            lines.append(f"| {d['volume']} | {d['K']} | {d['pool']} | {d['psnr_mean']:.2f} | {d['std_rms_head']:.4g} | "
                         f"{d['err_rms_head']:.4g} | {d['spearman']:.3f} | {d['coverage_95_raw']:.3f} | "
                         + (f"{d['calibrated_spearman']:.3f} | {cc['68']:.2f} / {cc['90']:.2f} / {cc['95']:.2f} |"
                            if cc else "- | - |"))
    if timing:
        lines += ["", "| K | slices | seconds | samples/s |", "|---|---|---|---|"]
        lines += [f"| {t['K']} | {t['slices']} | {t['seconds']:.1f} | {t['samples_per_s']:.2f} |" for t in timing]
    md = "\n".join(lines) + "\n"
    print(md)
    if args.out_md:
        Path(args.out_md).write_text(md)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps({"rows": rows, "vs_k": vsk, "timing": timing, "machine": machine,
                                                   "calibration": block}, indent=1))


if __name__ == "__main__":
    main()
