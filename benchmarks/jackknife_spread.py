"""Exploration for issue #24 (tune rows only): does a spread that also varies the *data* rank the error better?

Per tune condition of ``benchmarks/suite.py`` (128², one middle slice per tune volume), K one-sample posterior
draws (20 steps, the count the default uncertainty run chose there, ``results/unc_tune_complex.jsonl``) two ways:
``fresh`` — the full data, a new seed per draw (what ``mrdiff uncertainty`` spreads); ``jackknife`` — each draw also
drops its own random ``--drop`` of the measured samples outside the calibration centre (``samplers.selftune.
split_holdout`` with stream 100 + k: single samples for Poisson, whole lines for 1D masks). Reported: PSNR of the
mean, and Spearman(pooled sample std, 5x5 local RMS error of the mean) over the head (truth > 5 % of its max) for
the spread alone and with the run's noise map added as ``uncertainty`` does (the default run's hold-out ratio rho^2
on the spread, noise weight 1, pool 5) — rank only, no calibration factor.

    python benchmarks/jackknife_spread.py --conditions 0,1,2,3 --out OUT.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import suite
import torch
from corpus import load_split
from sampler_variants import emit
from suite import CONDITIONS, cond_name

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.selftune import split_holdout
from mrdiff_cli.tasks.calibration import local_rms_error, pool_variance, spearman
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conditions", default="0,1,2,3,4,5,6")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--drop", type=float, default=0.15)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    prior, _ = load_prior(None, "score", offline=True)
    base = {(r["condition"], r["volume"]): r for r in map(json.loads, (RESULTS / "unc_tune_complex.jsonl").read_text().splitlines())}
    for i in [int(c) for c in a.conditions.split(",")]:
        acq, matrix, kind, R = CONDITIONS["tune"][i]
        for vol, ref in load_split("tune", matrix, 256.0 / matrix, 1).items():
            k, truth, mask = suite.scan(ref, (acq, matrix, kind, R))
            mask = mask.astype(np.float32)
            name = cond_name(acq, matrix, kind, R)
            n = base[(name, vol)]["cg_iters"]
            sp = base[(name, vol)]["spread"]  # the default run's hold-out ratio (noise removed), as uncertainty scales
            rho2 = max(sp["err2"] - sp["noise2"], 0.0) / sp["spread2"] + 1.0 / a.samples
            head = truth[0] > 0.05 * truth[0].max()
            row: dict = {"condition": name, "volume": vol, "cg_iters": n}
            noise_map = None
            for how in ("fresh", "jackknife"):
                draws = []
                for j in range(a.samples):
                    mj = mask
                    if how == "jackknife":
                        split = split_holdout(mask, a.drop, 0, stream=100 + j)
                        mj = mask if split is None else split.fit.astype(np.float32)
                    rec = Reconstructor(prior, ReconOptions(seed=j, n_cg=n, steps=20, coil_maps="espirit"))
                    draws.append(rec.reconstruct(k * mj, mj, "sense").images[0])
                    if noise_map is None:
                        y = torch.as_tensor(k * mask).to(torch.complex64)
                        m = torch.as_tensor(mask)
                        maps = rec.estimate_maps(y, m)
                        from mrdiff_cli.tasks.calibration import estimate_kspace_noise

                        sn = float(estimate_kspace_noise(y, m)[0])
                        noise_map = (np.asarray(rec.noise_variance_map(y, m, maps, sn, [0]))[0] if sn > 0
                                     else np.zeros_like(draws[0]))
                d = np.stack(draws)
                mean, var = d.mean(0), d.var(0, ddof=1)
                err = local_rms_error(np.abs(mean - truth[0]))
                pooled = pool_variance(var[None], 5)[0]
                with_noise = rho2 * pooled + pool_variance(noise_map[None], 5)[0]
                mse = float(((mean - truth[0])[head] ** 2).mean())
                row[how] = {"psnr_mean": round(float(10 * np.log10(truth[0].max() ** 2 / mse)), 3),
                            "spearman_spread": round(spearman(np.sqrt(pooled[head]), err[head]) or 0.0, 4),
                            "spearman_with_noise": round(spearman(np.sqrt(with_noise[head]), err[head]) or 0.0, 4)}
            emit(row, a.out)


if __name__ == "__main__":
    main()
