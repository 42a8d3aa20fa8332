"""Exploration (seen tune rows): do longer support pilots separate the two coil-map supports better?

The support choice's 10-step hold-out pilots carry their own reconstruction error, which dilutes the support's
effect on the hidden samples. Per row of ``support_choice.py``'s recorded results: the same two pilots (the pilot
slice, the recorded count, the same split and sampler noise as ``Reconstructor.choose_support``) at each of
``--steps``, printed as the ratio own / release of the hold-out errors beside the recorded PSNR difference.

    cd benchmarks && python support_steps.py --results results/support_choice_tune_suite.jsonl --sets TUNE_REG11,TUNE_MAPS5 --steps 10,20
    cd benchmarks && python support_steps.py --results results/support_choice_tune_files.jsonl --files --steps 10,20
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from support_choice import recorded_rows

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.modes import MapsSupport
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

STEPS = [int(v) for v in os.environ.get("SUPPORT_STEPS", "10,20").split(",")]


def main() -> None:
    prior = load_prior(None, "score", offline=True)[0]
    for _, r, y, mask, _, _, i in recorded_rows(__doc__.splitlines()[0]):
        rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=int(r["count"])))
        m = torch.as_tensor(mask, dtype=torch.float32)
        yy, _ = rec._compress(torch.as_tensor(y[i : i + 1]).to(torch.complex64) * m, None, "sense")
        maps = {s: rec.estimate_maps(yy, m, support=s) for s in (MapsSupport.release, MapsSupport.own)}
        out = {}
        for steps in STEPS:
            err = {str(s): rec.pilot(yy, np.asarray(mask, np.float32), "sense", mp, [i], compressed=True,
                                     steps=steps)[0](int(r["count"])) for s, mp in maps.items()}
            out[str(steps)] = round(err["own"] / err["release"], 4)
        print(json.dumps({"name": r["name"], "volume": r["volume"], "ratio_by_steps": out,
                          "recorded_ratio": round(r["choice"]["holdout_error"]["own"] / r["choice"]["holdout_error"]["release"], 4)
                          if (r["choice"] or {}).get("holdout_error") else None,
                          "own_minus_release_db": round(r["psnr"]["own"] - r["psnr"]["release"], 3)}), flush=True)


if __name__ == "__main__":
    main()
