"""Wall-clock of the self-tuned default against a fixed CG count and L1-wavelet CS, in one run on one machine.

A report-set volume (``pyradiomics_brain2``, ``--slices`` evenly spread slices at 128² / 2 mm) is simulated under a
report acquisition (8 Biot-Savart loops, off-resonance phase, 30 dB) and undersampled (Poisson x8); then, on the
same in-memory data: the self-tuned default (pilot included), the default prior at a fixed ``n_cg = 7``, the
previous default (the same, 20 sampler steps), the one before (the magnitude prior ``score-brain-128``, self-tuned
with the hold-out pilot, 20 steps) and sigpy's
L1-wavelet CS (60 iterations, the suite's lambda; and converged: ``cs_converged.py``'s 300 iterations and lambda).
Seconds per slice, and PSNR for orientation.

``--precision auto`` (the default since 2026-12-07) runs the networks the way ``mrdiff reconstruct`` does on this
device: bf16 autocast where the device runs bf16 natively and NHWC memory format on the CPU
(``recon_job.native_bf16``, ``resources.prepare_prior``); ``--precision fp32`` is how the tables before that date
were measured (fp32, NCHW).

    python benchmarks/selftune_time.py --slices 8 --json benchmarks/results/selftune_time.json
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
from corpus import MAGNITUDE_PRIOR, load_split
from suite import row_mask, score

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.acquisition import Acquisition, simulate_acquisition
from mrdiff_cli.tasks.recon_job import native_bf16
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
from mrdiff_cli.tasks.resources import prepare_prior


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--mask", default="poisson", help="mask kind (equispaced: the bootstrap count pilot)")
    ap.add_argument("--accel", type=float, default=8.0)
    ap.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                    help="auto: the CLI's (bf16 where native, NHWC on the CPU); fp32: fp32 NCHW")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prior, _ = load_prior(None, "score", offline=True)
    magnitude, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    autocast = None
    if a.precision == "auto":
        autocast = native_bf16(torch.device("cpu"))
        prepare_prior(prior, "cpu")
        prepare_prior(magnitude, "cpu")
    ref = load_split("report", 128, 2.0, a.slices)["pyradiomics_brain2"]
    k, truth = simulate_acquisition(ref.numpy(), Acquisition("loops", 8, "offres", 3.0, snr_db=30), seed=5)
    truth_t = torch.as_tensor(truth)
    mask = row_mask(128, a.mask, a.accel)  # as the suite's masks
    S = k.shape[0]
    out: dict = {"slices": S, "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                 f"{a.threads} threads",
                 "precision": f"{autocast or 'fp32'}, {'NHWC' if a.precision == 'auto' else 'NCHW'}"}
    runs = (("self-tuned (default)", prior, ReconOptions(seed=0, autocast=autocast)),
            ("self-tuned, release support (the default before the per-scan support choice)", prior,
             ReconOptions(seed=0, maps_support="release", autocast=autocast)),
            ("fixed 7 CG (default prior)", prior, ReconOptions(seed=0, n_cg=7, autocast=autocast)),
            ("self-tuned, 20 steps (previous default)", prior, ReconOptions(seed=0, steps=20, autocast=autocast)),
            ("magnitude prior, self-tuned, 20 steps (default before the complex prior)", magnitude,
             ReconOptions(seed=0, count_pilot="holdout", steps=20, autocast=autocast)))
    for name, model, opts in runs:
        rec = Reconstructor(model, opts)
        t = time.time()
        ids = [S // 2] if S < 8 else [S // 2, S // 2 - max(1, S // 6)]  # tasks.recon_job.pilot_slices' rule
        rec.tune(k[ids], mask, "sense", slice_ids=ids)  # what the CLI does: one pilot per file
        rec.choose_support(k[ids], mask, "sense", slice_ids=ids)  # (no-op where the maps' support is fixed)
        img = np.concatenate([rec.reconstruct(k[i:i + 4], mask, "sense", slice_ids=list(range(i, min(i + 4, S)))).images
                              for i in range(0, S, 4)])
        out[name] = {**score(img, truth_t), "s_per_slice": round((time.time() - t) / S, 3),
                     "cg_iters": rec.n_cg(), "phase_resid": rec.phase_resid() if model is magnitude else None}
        print(name, out[name], flush=True)
    rec = Reconstructor(prior, ReconOptions(method="sense"))
    y = torch.as_tensor(k * mask)
    maps = rec.estimate_maps(y, torch.as_tensor(mask))
    zf = Reconstructor(prior, ReconOptions(method="zero-filled")).reconstruct(k, mask, "sense").images
    lam = json.loads(Path("results/cs_lambdas_report.json").read_text())[a.mask]
    t = time.time()
    img = cs_l1wavelet(y.numpy(), maps.numpy(), mask, lam * float(np.percentile(zf, 99)))
    out["CS (L1-wavelet, 60 it)"] = {**score(img, truth_t), "s_per_slice": round((time.time() - t) / S, 3)}
    print("CS", out["CS (L1-wavelet, 60 it)"], flush=True)
    # the converged CS (cs_converged.py: 300 iterations, its lambda re-tuned on the tune rows at that count)
    conv = json.loads(Path("results/cs_lambdas_converged.json").read_text())
    t = time.time()
    img = cs_l1wavelet(y.numpy(), maps.numpy(), mask, conv[a.mask] * float(np.percentile(zf, 99)), conv["iters"])
    out["CS converged"] = {**score(img, truth_t), "s_per_slice": round((time.time() - t) / S, 3), "iters": conv["iters"]}
    print("CS converged", out["CS converged"], flush=True)
    out["ratio self-tuned / CS converged"] = round(out["self-tuned (default)"]["s_per_slice"]
                                                   / out["CS converged"]["s_per_slice"], 2)
    out["ratio self-tuned / CS"] = round(out["self-tuned (default)"]["s_per_slice"] / out["CS (L1-wavelet, 60 it)"]["s_per_slice"], 2)
    fixed = out["fixed 7 CG (default prior)"]["s_per_slice"]
    out["ratio self-tuned / fixed"] = round(out["self-tuned (default)"]["s_per_slice"] / fixed, 2)
    out["ratio fixed / CS"] = round(fixed / out["CS (L1-wavelet, 60 it)"]["s_per_slice"], 2)
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
