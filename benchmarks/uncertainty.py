"""Uncertainty benchmark on held-out data: calibration of the std maps and the cost of K samples.

For each setting (8-coil, x4 uniform1d and x8 poisson by default) it draws K posterior samples with the bundled
prior and reports the calibration figures of `tasks.calibration.calibration_report` (Spearman rho of std vs
|error|, 1.96-sigma coverage, std inside vs outside the object), then times K = 1, 4, 8 (batched).

    python benchmarks/uncertainty.py --out-md docs/benchmarks_uncertainty.md
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mrdiff_cli.io.detect import load_image
from mrdiff_cli.metrics import volume_metrics
from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.calibration import calibration_report
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def main() -> None:
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--volume", default="/work/data/val/S0_10slices.nii.gz")
    ap.add_argument("--slices", default="2:6")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--timing-k", nargs="+", type=int, default=[1, 4, 8])
    ap.add_argument("--settings", nargs="+", default=["uniform1d:4", "poisson:8"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out-md", default=None)
    args = ap.parse_args()
    from mrdiff_cli.tasks.simulate import simulate_volume

    autocast = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None  # as the CLI's --precision auto

    a, b = (int(v) for v in args.slices.split(":"))
    vol, geom = load_image(args.volume)
    sim = simulate_volume(vol[a:b], geom, matrix=128, coils=8, snr_db=30.0, seed=7)
    prior, _ = load_prior(args.model, "score", offline=True)
    rows, timing = [], []
    for setting in args.settings:
        kind, R = setting.split(":")
        mask = make_mask(kind, (128, 128), float(R), seed=11).mask
        rec = Reconstructor(prior, ReconOptions(samples=args.samples, batch_size=args.batch_size, autocast=autocast))
        maps = rec.estimate_maps(torch.as_tensor(sim.kspace * mask), torch.as_tensor(mask))
        t = time.time()
        res = rec.reconstruct(sim.kspace, mask, "sense", maps=maps)
        el = time.time() - t
        cal = calibration_report(res.images, np.sqrt(res.variance), sim.reference, mask)
        m = volume_metrics(res.images, sim.reference)["mean"]
        row = {"mask": kind, "R": float(R), "K": args.samples, "psnr_mean": m["psnr"], "ssim_mean": m["ssim"],
               "spearman": cal["overall"]["spearman"], "coverage_1.96": cal["overall"]["coverage_1.96"],
               "std_in": cal["overall"]["std_mean_support"], "std_out": cal["overall"]["std_mean_background"],
               "rmse_over_rms_std": cal["overall"].get("rmse_over_rms_std"), "seconds": el}
        rows.append(row)
        print(json.dumps(row), flush=True)
    mask = make_mask("poisson", (128, 128), 8.0, seed=11).mask
    for K in args.timing_k:
        rec = Reconstructor(prior, ReconOptions(samples=K, batch_size=args.batch_size, autocast=autocast))
        maps = rec.estimate_maps(torch.as_tensor(sim.kspace * mask), torch.as_tensor(mask))
        t = time.time()
        rec.reconstruct(sim.kspace, mask, "sense", maps=maps)
        el = time.time() - t
        n = K * (b - a)
        timing.append({"K": K, "slices": b - a, "seconds": el, "samples_per_s": n / el})
        print(json.dumps(timing[-1]), flush=True)
    lines = [
        f"Command: `python benchmarks/uncertainty.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}, precision {autocast or 'fp32'}.  ",
        f"Data: held-out {Path(args.volume).name} slices {args.slices}, 8 coils, 30 dB; fast sampler, ancestral renoise.",
        "",
        "| mask | R | K | PSNR of mean | SSIM | Spearman(std, \\|err\\|) | coverage ±1.96σ | RMSE / rms std | mean std inside / outside object |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['rmse_over_rms_std']:.2f}" if r["rmse_over_rms_std"] is not None else "-"
        lines.append(f"| {r['mask']} | {r['R']:g} | {r['K']} | {r['psnr_mean']:.2f} | {r['ssim_mean']:.4f} | {r['spearman']:.3f} | {r['coverage_1.96']:.3f} | {ratio} | {r['std_in']:.4g} / {r['std_out']:.4g} |")
    lines += ["", "| K | slices | seconds | samples/s |", "|---|---|---|---|"]
    for t in timing:
        lines.append(f"| {t['K']} | {t['slices']} | {t['seconds']:.1f} | {t['samples_per_s']:.2f} |")
    md = "\n".join(lines) + "\n"
    print(md)
    if args.out_md:
        Path(args.out_md).write_text(md)


if __name__ == "__main__":
    main()
