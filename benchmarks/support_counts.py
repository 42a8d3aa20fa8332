"""Exploration (seen tune rows): is the self-tuned count still right when the run uses the own support?

The count pilots estimate the release (``espirit``) maps whatever support the run then uses. For each recorded row
of ``support_choice.py`` where the choice took the own support: the 40-step run with the own support at each fixed
count of ``--counts``, beside the self-tuned count's PSNR (recorded).

    cd benchmarks && python support_counts.py --results results/support_choice_tune_suite.jsonl --sets TUNE_REG11,TUNE_MAPS5 --counts 3,5,7
    cd benchmarks && python support_counts.py --results results/support_choice_tune_files.jsonl --files --counts 3,5,7

``--pilots``: instead of the fixed-count runs, the count pilots' scores on the run's own (own-support) maps at each
count — the hold-out error (10 steps) and the parametric bootstrap's error (``Reconstructor.bootstrap_pilot``, 20
steps) — to see whether a count check on the run's maps would catch the undershoots.
"""

from __future__ import annotations

import json

import numpy as np
from support_choice import psnr_of, recorded_rows

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def main() -> None:
    prior = load_prior(None, "score", offline=True)[0]
    extra = (("--counts", {"default": "3,5,7"}), ("--pilots", {"action": "store_true"}))
    for a, r, y, mask, truth, ids, i in recorded_rows(__doc__.splitlines()[0], extra):
        if (r["choice"] or {}).get("support") != "own":
            continue
        if a.pilots:
            pilots(prior, a, r, y, mask, ids[i])
            continue
        psnr = {v: psnr_of(prior, y, mask, truth, ids, n_cg=int(v), maps_support="own") for v in a.counts.split(",")}
        best = max(psnr, key=lambda c: psnr[c])
        print(json.dumps({"name": r["name"], "volume": r["volume"], "count": r["count"], "psnr_self": r["psnr"]["own"],
                          "psnr_fixed": psnr, "best_fixed": int(best),
                          "self_minus_best": round(r["psnr"]["own"] - psnr[best], 3)}), flush=True)


def pilots(prior, a, r, y, mask, sid: int) -> None:
    import torch

    rec = Reconstructor(prior, ReconOptions(seed=0, maps_support="own"))
    m = torch.as_tensor(mask, dtype=torch.float32)
    yy, _ = rec._compress(torch.as_tensor(y[sid : sid + 1]).to(torch.complex64) * m, None, "sense")
    maps = rec.estimate_maps(yy, m)
    counts = [int(v) for v in a.counts.split(",")]
    hold = rec.pilot(yy, np.asarray(mask, np.float32), "sense", maps, [sid], compressed=True)[0]
    boot = rec.bootstrap_pilot(yy, np.asarray(mask, np.float32), "sense", maps, [sid], compressed=True)
    print(json.dumps({"name": r["name"], "volume": r["volume"], "count": r["count"],
                      "holdout": {str(n): round(hold(n), 6) for n in counts},
                      "bootstrap": {str(n): round(boot(n), 6) for n in counts}}), flush=True)


if __name__ == "__main__":
    main()
