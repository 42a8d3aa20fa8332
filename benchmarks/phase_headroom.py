"""How much of the reconstruction error is the phase model? Tune split only.

Per (tune condition, tune volume, one slice): the fast sampler at a fixed CG count and phase prior with several
phase-demodulation variants, including the oracle (the phase of the noise-free SENSE image with the run's own
estimated maps). The gap between the default and the oracle is what a better phase estimate could win.

    python benchmarks/phase_headroom.py --out /tmp/phase_headroom.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import suite
import torch
from corpus import MAGNITUDE_PRIOR, head_mask, load_split, masked_psnr
from suite import CONDITIONS, cond_name

from mrdiff_cli.ops.fft import ifft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.adapters import lowres_phase, make_denoiser
from mrdiff_cli.samplers.posterior import SenseProblem
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

VARIANTS = {
    # the phase of the previous release: the CG-SENSE start's Hann-windowed 24-pixel centre
    "default": {"phase_cs_lambda": 0.0},
    "w48": {"phase_cs_lambda": 0.0, "width": 48},
    "w12": {"phase_cs_lambda": 0.0, "width": 12},
    "refine0.2": {"phase_cs_lambda": 0.0, "phase_refine_sigma": 0.2},
    "refine0.2f1": {"phase_cs_lambda": 0.0, "phase_refine_sigma": 0.2, "phase_refine_frac": 1.0},
    "norefine": {"phase_cs_lambda": 0.0, "phase_refine_sigma": 0.0},
    # the release: the phase of mrdiff's L1-wavelet SENSE (ops.sparse) at half resolution, and its settings
    "cs1e-3": {"phase_cs_lambda": 1e-3},
    "cs3e-4": {"phase_cs_lambda": 3e-4}, "cs3e-3": {"phase_cs_lambda": 3e-3}, "cs1e-2": {"phase_cs_lambda": 1e-2},
    "cs1e-3_refine": {"phase_cs_lambda": 1e-3, "phase_refine_sigma": 0.05},
    "cs1e-3_it20": {"phase_cs_lambda": 1e-3, "phase_cs_iters": 20},
    "cs1e-3_f0.375": {"phase_cs_lambda": 1e-3, "phase_frac": 0.375},
    "cs1e-3_f0.75": {"phase_cs_lambda": 1e-3, "phase_frac": 0.75},
    # injected phases (phase_cs_lambda 0, the phase replaced): the truth's; a first diffusion run's output at a
    # fraction of the matrix (1 = full resolution; "loose": that run with phase prior 0.05); sigpy's CS
    "oracle": {"inject": "oracle"},
    "twopass_f1": {"inject": "twopass", "frac": 1.0},
    "twopass_f0.5": {"inject": "twopass", "frac": 0.5},
    "twopass_f0.25": {"inject": "twopass", "frac": 0.25},
    "loose_f0.5": {"inject": "twopass", "frac": 0.5, "pass1_resid": 0.05},
    "sigpy_f0.5": {"inject": "sigpy", "frac": 0.5},
    "sigpy_f1": {"inject": "sigpy", "frac": 1.0},
}
CS_LAMBDA = {"poisson": 3e-4, "equispaced": 3e-4, "gaussian1d": 1e-3}  # benchmarks/results/cs_lambdas_report.json
_STASH: dict = {}


def _stash_finish(self, x, dc, sigmas):
    _STASH["x"] = x * self.scale
    return (x * self.scale).abs()


SenseProblem.finish = _stash_finish  # keeps the complex output of the last run (the two-pass variants)


def _at(x: torch.Tensor, frac: float) -> torch.Tensor:
    return torch.angle(x) if frac >= 1 else lowres_phase(x, int(round(frac * x.shape[-1])))


def injected_phase(prior, k, mask, kind, n_cg, resid, var, oracle_phase):
    """The demodulation phase of an "inject" variant."""
    if var["inject"] == "oracle":
        return oracle_phase
    if var["inject"] == "sigpy":  # the phase of sigpy's L1-wavelet reconstruction, lambda as the CS baseline's
        import sigpy.mri.app as app

        base = Reconstructor(prior, ReconOptions(method="sense"))
        yc, _ = base._compress(torch.as_tensor(k * mask), None, "sense")
        maps = base.estimate_maps(yc, torch.as_tensor(mask))
        scale = float(np.percentile(Reconstructor(prior, ReconOptions(method="zero-filled")).reconstruct(
            k, mask, "sense").images, 99))
        x1 = app.L1WaveletRecon(yc[0].numpy(), maps[0].numpy(), CS_LAMBDA[kind] * scale, weights=mask,
                                max_iter=60, show_pbar=False).run()
        return _at(torch.as_tensor(np.asarray(x1)), var["frac"])
    Reconstructor(prior, ReconOptions(n_cg=n_cg, phase_resid=var.get("pass1_resid", resid), seed=0,
                                      phase_cs_lambda=0.0)).reconstruct(k, mask, "sense")
    return _at(_STASH["x"][0], var["frac"])


def run(prior, k, mask, kind, truth, n_cg, resid, var, oracle_phase):
    opts = {k2: v for k2, v in var.items() if k2.startswith("phase_")}
    if "inject" in var:
        opts["phase_cs_lambda"] = 0.0
    rec = Reconstructor(prior, ReconOptions(n_cg=n_cg, phase_resid=resid, seed=0, **opts))
    if "inject" in var or "width" in var:
        ph = injected_phase(prior, k, mask, kind, n_cg, resid, var, oracle_phase) if "inject" in var else None

        def den(mode, ref, batch_size, resid_=None, width=None, _rec=rec):
            return make_denoiser(prior, "phase", phase=ph if ph is not None else lowres_phase(ref, var["width"]),
                                 resid_std=resid if resid_ is None else resid_, batch_size=batch_size,
                                 autocast=_rec.autocast,
                                 refine_below=0.0 if ph is not None else 0.05 if _rec.opts.phase_refine_sigma is None
                                 else _rec.opts.phase_refine_sigma,
                                 refine_frac=_rec.opts.phase_refine_frac)
        rec._denoiser = den
    t = time.time()
    img = rec.reconstruct(k, mask, "sense").images
    x = torch.as_tensor(np.asarray(img), dtype=torch.float32)
    return round(float(np.mean(masked_psnr(x, truth, head_mask(truth)))), 3), round(time.time() - t, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--conditions", default="0,1,3,4,6")
    ap.add_argument("--cg", default="3")
    ap.add_argument("--resid", default="0.005,0.05")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--split", default="tune")
    a = ap.parse_args()
    torch.set_num_threads(1)
    prior, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    out = Path(a.out)
    done = {(r["condition"], r["volume"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    for ci in [int(c) for c in a.conditions.split(",")]:
        acq, matrix, kind, R = CONDITIONS[a.split][ci]
        for vol, ref in load_split(a.split, matrix, 256.0 / matrix, 1).items():
            name = cond_name(acq, matrix, kind, R)
            if (name, vol) in done:
                continue
            k, truth_np, mask = suite.scan(ref, (acq, matrix, kind, R))
            clean = suite.clean_kspace(ref, acq)
            truth = torch.as_tensor(truth_np)
            base = Reconstructor(prior, ReconOptions(method="sense"))
            yc, _ = base._compress(torch.as_tensor(k * mask), None, "sense")
            maps = base.estimate_maps(yc, torch.as_tensor(mask))
            # oracle: noise-free coil images (compressed as the run does) combined with the run's maps
            cc, _ = base._compress(torch.as_tensor(clean), None, "sense")
            oracle_phase = torch.angle((ifft2c(cc) * maps.conj()).sum(1))
            row = {"condition": name, "volume": vol}
            for n in [int(v) for v in a.cg.split(",")]:
                for resid in [float(v) for v in a.resid.split(",")]:
                    for vn in a.variants.split(","):
                        row[f"cg{n}/r{resid}/{vn}"] = run(prior, k, mask, kind, truth, n, resid, VARIANTS[vn], oracle_phase)
                        print(name, vol, n, resid, vn, row[f"cg{n}/r{resid}/{vn}"], flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
