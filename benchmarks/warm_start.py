"""Warm start (CCDF-style): start the fast sampler from an L1-wavelet SENSE reconstruction instead of CG-SENSE, at a
lower starting noise level and with fewer steps. Tune split only (the 30 rows of ``benchmarks/pilot_study.py``).

Per row and variant, the full run at CG counts {3, 5, 7} with the row's best phase prior (from the pilot study's
recorded full runs), PSNR in the head mask; the default (CG-SENSE start, sigma_max 1, 20 steps) is the pilot
study's recorded value at the same seed.

    python benchmarks/warm_start.py --out OUT.jsonl [--more]
    python benchmarks/warm_start.py --table OUT.jsonl --psnr benchmarks/results/pilot_study_tune.jsonl,...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from corpus import MAGNITUDE_PRIOR, head_mask, load_split, masked_psnr
from pilot_study import full_runs, scan
from suite import CONDITIONS, TUNE_MORE, cond_name

import mrdiff_cli.samplers.posterior as posterior
from mrdiff_cli.ops.sparse import l1_wavelet_sense
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

# name: (L1 lambda of the start, 0 = CG-SENSE; sigma_max; steps)
VARIANTS = {"cs1e-3/s1/20": (1e-3, 1.0, 20), "cs1e-3/s0.5/10": (1e-3, 0.5, 10), "cs1e-3/s0.3/10": (1e-3, 0.3, 10),
            "cg/s0.3/10": (0.0, 0.3, 10)}
COUNTS = (3, 5, 7)
_START = {"lam": 0.0}
_orig_init = posterior.SenseProblem.__init__


def _init(self, y, m, maps, opts, phase_ref=None):
    _orig_init(self, y, m, maps, opts, phase_ref)
    if _START["lam"] > 0:  # the L1-wavelet reconstruction as the start (the phase reference stays the centre's)
        self.x_init = l1_wavelet_sense(self.y, self.A, _START["lam"], 40, x0=self.x_init) * self.support


posterior.SenseProblem.__init__ = _init  # type: ignore[method-assign]


def table(path: Path, psnr_paths: list[Path]) -> None:
    ref = full_runs(psnr_paths)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print("| variant | worst Δ default (best of 3/5/7 each) | mean Δ | rows better | mean s/slice |")
    print("|---|---|---|---|---|")
    for v in VARIANTS:
        d, s = [], []
        for r in rows:
            base = max(ref[(r["condition"], r["volume"])][f"{n}/{r['prior']}"] for n in COUNTS)
            d.append(max(r[v][str(n)] for n in COUNTS) - base)
            s.append(r["seconds"][v])
        d = np.asarray(d)
        print(f"| {v} | {d.min():+.2f} | {d.mean():+.2f} | {int((d > 0).sum())}/{len(d)} | {np.mean(s):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=False)
    ap.add_argument("--more", action="store_true")
    ap.add_argument("--table", default=None)
    ap.add_argument("--psnr", default="benchmarks/results/pilot_study_tune.jsonl,benchmarks/results/pilot_study_tune_more.jsonl")
    a = ap.parse_args()
    paths = [Path(p) for p in a.psnr.split(",")]
    if a.table:
        table(Path(a.table), paths)
        return
    torch.set_num_threads(1)
    prior, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    ref = full_runs(paths)
    conds = TUNE_MORE if a.more else [c for c in CONDITIONS["tune"] if c[1] == 128]
    for cond in conds:
        for vol, img in load_split("tune", cond[1], 256.0 / cond[1], 1).items():
            name = cond_name(cond[0], *cond[1:])
            best = max(ref[(name, vol)], key=ref[(name, vol)].get)
            prior_r = float(best.split("/")[1])
            k, truth, mask = scan(img, cond)
            row: dict = {"condition": name, "volume": vol, "prior": best.split("/")[1], "seconds": {}}
            for v, (lam, smax, steps) in VARIANTS.items():
                _START["lam"] = lam
                row[v], t = {}, time.time()
                for n in COUNTS:
                    out = Reconstructor(prior, ReconOptions(n_cg=n, phase_resid=prior_r, seed=0, sigma_max=smax,
                                                            steps=steps)).reconstruct(k, mask, "sense").images
                    x = torch.as_tensor(np.asarray(out), dtype=torch.float32)
                    row[v][str(n)] = round(float(np.mean(masked_psnr(x, truth, head_mask(truth)))), 3)
                row["seconds"][v] = round((time.time() - t) / len(COUNTS), 2)
            _START["lam"] = 0.0
            with Path(a.out).open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(name, vol, {v: max(row[v].values()) for v in VARIANTS},
                  max(ref[(name, vol)][f"{n}/{best.split('/')[1]}"] for n in COUNTS), flush=True)


if __name__ == "__main__":
    main()
