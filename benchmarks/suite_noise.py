"""Noise-aware consistency on the acquisition suite (tune split): DiffPIR's proximal weight
mu_i = sigma_n^2 / sigma_i^2 with the k-space noise estimated per scan (``--noise-dc prox`` in ReconOptions terms),
CG run to (near) convergence, against exact consistency with the best fixed CG count.

    python benchmarks/suite_noise.py --out benchmarks/results/suite_tune_noise.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from corpus import MAGNITUDE_PRIOR, load_split
from suite import CONDITIONS, cond_name, scan, score

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune")
    ap.add_argument("--out", default="benchmarks/results/suite_tune_noise.jsonl")
    ap.add_argument("--counts", default="5,10")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prior, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    out = Path(a.out)
    for acq, matrix, kind, R in CONDITIONS[a.split]:
        for vol, ref in load_split(a.split, matrix, 256.0 / matrix, 1).items():
            k, truth, mask = scan(ref, (acq, matrix, kind, R))
            row = {"condition": cond_name(acq, matrix, kind, R), "volume": vol}
            for n in [int(c) for c in a.counts.split(",")]:
                img = Reconstructor(prior, ReconOptions(n_cg=n, noise_dc="prox", seed=0)).reconstruct(k, mask, "sense").images
                row[f"prox_cg{n}"] = score(img, torch.as_tensor(truth))
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
