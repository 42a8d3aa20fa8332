"""Phase-prior choice on the tune suite: the pilot's hold-out error at 3 CG iterations for each phase prior
(``--phase-resid`` 0.005 and 0.05) against the PSNR of full runs with each prior (5 and 7 CG iterations), on the
tune conditions whose phase is not smooth (random fields). Chooses the tolerance of the phase-prior rule.

    python benchmarks/suite_phase_prior.py --out benchmarks/results/suite_tune_phase_prior.jsonl
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

RESIDS = (0.005, 0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/suite_tune_phase_prior.jsonl")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prior, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    for acq, matrix, kind, R in CONDITIONS["tune"]:
        if acq.phase != "random" or matrix != 128:
            continue
        for vol, ref in load_split("tune", matrix, 256.0 / matrix, 1).items():
            k, truth, mask = scan(ref, (acq, matrix, kind, R))
            row: dict = {"condition": cond_name(acq, matrix, kind, R), "volume": vol, "pilot_error_cg3": {}, "psnr": {}}
            pilot = Reconstructor(prior, ReconOptions(seed=0)).pilot(k, mask, "sense", None, [0])
            for r in RESIDS:
                row["pilot_error_cg3"][str(r)] = pilot[0](3, r) if pilot else None
                for n in (5, 7):
                    img = Reconstructor(prior, ReconOptions(n_cg=n, phase_resid=r, seed=0)).reconstruct(k, mask, "sense").images
                    row["psnr"][f"{r}/{n}"] = score(img, torch.as_tensor(truth))["psnr"]
            with Path(a.out).open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
