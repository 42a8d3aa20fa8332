"""Exploration (seen tune rows): is the self-tuned count still right when the run uses the own support?

The count pilots estimate the release (``espirit``) maps whatever support the run then uses. For each recorded row
of ``support_choice.py`` where the choice took the own support: the 40-step run with the own support at each fixed
count of ``--counts``, beside the self-tuned count's PSNR (recorded).

    cd benchmarks && python support_counts.py --results results/support_choice_tune_suite.jsonl --sets TUNE_REG11,TUNE_MAPS5 --counts 3,5,7
    cd benchmarks && python support_counts.py --results results/support_choice_tune_files.jsonl --files --counts 3,5,7
"""

from __future__ import annotations

import json

import numpy as np
from fastmri_test_layout import score
from support_choice import recorded_rows

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def main() -> None:
    prior = load_prior(None, "score", offline=True)[0]
    extra = (("--counts", {"default": "3,5,7"}),)
    for a, r, y, mask, truth, ids, _ in recorded_rows(__doc__.splitlines()[0], extra):
        if (r["choice"] or {}).get("support") != "own":
            continue
        psnr = {}
        for n in [int(v) for v in a.counts.split(",")]:
            rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=n, maps_support="own"))
            psnr[str(n)] = round(score(rec.reconstruct(y, mask, "sense", slice_ids=ids).images, np.asarray(truth))["psnr"], 3)
        best = max(psnr, key=lambda c: psnr[c])
        print(json.dumps({"name": r["name"], "volume": r["volume"], "count": r["count"], "psnr_self": r["psnr"]["own"],
                          "psnr_fixed": psnr, "best_fixed": int(best),
                          "self_minus_best": round(r["psnr"]["own"] - psnr[best], 3)}), flush=True)


if __name__ == "__main__":
    main()
