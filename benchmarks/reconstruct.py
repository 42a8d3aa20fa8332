"""Reconstruction benchmark on the corpus split: mrdiff vs L1-wavelet CS (lambda tuned on the TUNE set) vs CG-SENSE.

Raw k-space is simulated (``tasks.simulate.simulate_volume``: smooth random phase, birdcage-like coils,
complex noise at ``--snr`` dB) from held-out magnitude slices of the corpus built by ``benchmarks/corpus.py``,
then undersampled. Settings (``--settings``, comma list of ``coils:matrix:mask:R``):

  * ``8:128:poisson:8``, ``8:128:equispaced:3.3``, ``8:128:gaussian1d:8`` — 128² at 2 mm;
  * ``16:256:equispaced:4`` — 256² at 1 mm, equispaced x4 with an 8 % fully sampled centre (fastMRI-like);
  * ``1:128:poisson:8``, ``1:128:gaussian1d:8`` — single coil.

``--split tune`` runs the CS lambda grid (per setting, relative to the zero-filled image's 99th percentile)
and writes the best lambda to ``--cs-lambdas`` (JSON); ``--split report`` reads it and never chooses anything.
Metrics: PSNR inside the head mask against the noise-free magnitude (data range: the slice maximum), SSIM
(whole slice), seconds per slice (this machine, shared: see the machine line).

    python benchmarks/reconstruct.py --split tune --cs-lambdas benchmarks/results/cs_lambdas.json
    python benchmarks/reconstruct.py --split report --cs-lambdas benchmarks/results/cs_lambdas.json --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from baselines import cs_l1wavelet
from corpus import MAGNITUDE_PRIOR, head_mask, load_split, masked_psnr
from mrdiff_cli.metrics import ssim
from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor, choose_coil_mode
from mrdiff_cli.tasks.simulate import simulate_volume

DEFAULT_SETTINGS = "8:128:poisson:8,8:128:equispaced:3.3,8:128:gaussian1d:8,16:256:equispaced:4,1:128:poisson:8,1:128:gaussian1d:8"
LAMBDA_GRID = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]


def parse_opts(spec: str) -> dict:
    """'steps=30,sigma_max=2' → ReconOptions overrides (sampler settings to compare on the tune set)."""
    out: dict = {}
    for item in filter(None, spec.split(",")):
        k, v = item.split("=")
        out[k] = v if not v.replace(".", "", 1).replace("e-", "", 1).isdigit() else (float(v) if "." in v or "e" in v else int(v))
    return out


def score(img: np.ndarray, ref: torch.Tensor) -> dict:
    x = torch.as_tensor(img, dtype=torch.float32)
    m = head_mask(ref)
    return {"psnr": float(np.mean(masked_psnr(x, ref, m))),
            "ssim": float(np.mean([ssim(a.numpy(), r.numpy()) for a, r in zip(x, ref)]))}


def simulate(ref: torch.Tensor, coils: int, snr: float, seed: int, phase_detail: float = 0.0):
    sim = simulate_volume(ref.numpy(), None, matrix=None, coils=coils, snr_db=snr, seed=seed, phase_detail=phase_detail)
    truth = torch.as_tensor(sim.reference, dtype=torch.float32)
    return sim.kspace, truth


def run_setting(prior, ref: torch.Tensor, setting: str, args, lambdas: dict, tune: bool) -> dict:
    coils, matrix, kind, R = setting.split(":")
    coils, matrix, R = int(coils), int(matrix), float(R)
    full, truth = simulate(ref, coils, args.snr, seed=7, phase_detail=args.phase_detail)
    acs = max(8, int(round(0.08 * matrix))) if kind == "equispaced" else None
    mask = make_mask(kind, (matrix, matrix), R, acs=acs, seed=11).mask
    mode = choose_coil_mode("auto", coils)
    y = full * mask
    out: dict = {"setting": setting, "achieved_R": float(mask.size / mask.sum()) if mask.ndim == 2 else R}
    zf = Reconstructor(prior, ReconOptions(method="zero-filled")).reconstruct(full, mask, mode).images
    out["zero-filled"] = score(zf, truth)
    rec = Reconstructor(prior, ReconOptions(method="sense"))
    maps = rec.estimate_maps(torch.as_tensor(y), torch.as_tensor(mask)) if coils > 1 else torch.ones(y.shape, dtype=torch.complex64)
    if coils > 1:
        out["CG-SENSE"] = score(rec.reconstruct(full, mask, "sense", maps=maps).images, truth)
    scale = float(np.percentile(zf, 99))
    if tune:
        grid = {lam: score(cs_l1wavelet(y, maps.numpy(), mask, lam * scale), truth)["psnr"] for lam in LAMBDA_GRID}
        out["cs_grid"] = grid
        lambdas[setting] = max(grid, key=grid.get)
    lam = lambdas[setting]
    t = time.time()
    out[f"CS (λ={lam:g})"] = score(cs_l1wavelet(y, maps.numpy(), mask, lam * scale), truth)
    out["cs_s_per_slice"] = (time.time() - t) / len(ref)
    autocast = None if args.autocast in ("none", "fp32", "") else args.autocast
    o = ReconOptions(batch_size=args.batch_size, seed=0, autocast=autocast, **parse_opts(args.opts))
    t = time.time()
    img = Reconstructor(prior, o).reconstruct(full, mask, mode, maps=maps if coils > 1 else None).images
    out["mrdiff_s_per_slice"] = (time.time() - t) / len(ref)
    out["mrdiff"] = score(img, truth)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS)
    ap.add_argument("--per-volume", type=int, default=3)
    ap.add_argument("--snr", type=float, default=35.0)
    ap.add_argument("--phase-detail", type=float, default=0.0,
                    help="add fine phase detail to the simulated data: std in radians at a 4-pixel correlation length")
    ap.add_argument("--cs-lambdas", default="benchmarks/results/cs_lambdas.json")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--autocast", default="bf16", help="bf16 (the CLI default where the CPU runs it natively), fp16, or none/fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--opts", default="", help="ReconOptions overrides for mrdiff, e.g. steps=30,sigma_max=2")
    ap.add_argument("--fixed-lambda", action="store_true", help="tune split: use the stored lambdas (compare models) instead of re-running the grid")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prior, info = load_prior(a.model or MAGNITUDE_PRIOR, "score", offline=True)
    lam_path = Path(a.cs_lambdas)
    lambdas = json.loads(lam_path.read_text()) if lam_path.exists() else {}
    rows = []
    for setting in a.settings.split(","):
        matrix = int(setting.split(":")[1])
        for vol, ref in load_split(a.split, matrix, 256.0 / matrix, a.per_volume).items():
            tune = a.split == "tune" and not a.fixed_lambda
            r = {"volume": vol, "slices": len(ref), **run_setting(prior, ref, setting, a, lambdas, tune)}
            rows.append(r)
            print(json.dumps(r), flush=True)
    if a.split == "tune" and not a.fixed_lambda:
        # one lambda per setting: the best mean PSNR over the tune volumes
        for setting in a.settings.split(","):
            grids = [r["cs_grid"] for r in rows if r["setting"] == setting]
            lambdas[setting] = max(LAMBDA_GRID, key=lambda lam: np.mean([g[lam] for g in grids]))
        lam_path.parent.mkdir(parents=True, exist_ok=True)
        lam_path.write_text(json.dumps(lambdas, indent=1))
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other jobs), torch {torch.__version__}",
           "model": str(info.get("path")), "split": a.split, "snr_db": a.snr, "phase_detail_rad": a.phase_detail, "rows": rows}
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    for r in rows:
        cs = next(k for k in r if k.startswith("CS ("))
        print(f"| {r['setting']} | {r['volume']} | {r['zero-filled']['psnr']:.2f} | {r.get('CG-SENSE', {}).get('psnr', float('nan')):.2f} | "
              f"{r[cs]['psnr']:.2f} / {r[cs]['ssim']:.3f} | {r['mrdiff']['psnr']:.2f} / {r['mrdiff']['ssim']:.3f} | "
              f"{r['mrdiff']['psnr'] - r[cs]['psnr']:+.2f} |")


if __name__ == "__main__":
    main()
