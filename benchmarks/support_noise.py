"""Exploration (seen tune rows): the support choice's hold-out errors with the noise floor taken out.

The hold-out error is ||hold (F S x) - y_hold||^2 / ||y_hold||^2, and the hidden samples' own noise is in it for any
image: E ||hold n||^2 / ||y_hold||^2 = n_hidden sigma^2 / ||y_hold||^2 (sigma: the scan's complex noise std per
k-space sample, ``estimate_kspace_noise``). Where that floor is most of the error, a support that cuts the object
changes the error by a few percent only. Per row of ``support_choice.py``'s recorded results: the floor of the
pilot's split (the same seed, split and coil compression as ``Reconstructor.pilot``), and the ratio of the two
supports' errors with the floor subtracted, beside the PSNR difference.

    cd benchmarks && python support_noise.py --results results/support_choice_tune_suite.jsonl --sets TUNE_REG11,TUNE_MAPS5
    cd benchmarks && python support_noise.py --results results/support_choice_tune_files.jsonl --files
"""

from __future__ import annotations

import json

import numpy as np
import torch
from support_choice import recorded_rows

from mrdiff_cli.samplers.selftune import PILOT_LINE_CAP, split_holdout
from mrdiff_cli.tasks.calibration import estimate_kspace_noise
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def noise_floor(y: np.ndarray, mask: np.ndarray, slice_index: int) -> float:
    """The pilot split's expected relative error from the hidden samples' noise alone."""
    opts = ReconOptions(seed=0)
    rec = Reconstructor(None, opts)
    m = torch.as_tensor(mask, dtype=torch.float32)
    yy = torch.as_tensor(y[slice_index : slice_index + 1]).to(torch.complex64) * m
    yy, _ = rec._compress(yy, None, "sense")
    split = split_holdout(np.asarray(mask, np.float32), opts.holdout_frac, opts.seed, stream=0, line_cap=PILOT_LINE_CAP)
    hold = torch.as_tensor(split.hold, dtype=torch.float32)
    sigma = float(estimate_kspace_noise(yy, m)[0])
    n_hidden = float(hold.sum()) * yy.shape[1]
    return n_hidden * sigma**2 / float((yy * hold).abs().square().sum())


def main() -> None:
    for _, r, y, mask, _, _, i in recorded_rows(__doc__.splitlines()[0]):
        name, vol = r["name"], r["volume"]
        he = (r["choice"] or {}).get("holdout_error")
        if not he:
            continue
        floor = noise_floor(y, mask, i)
        corrected = (he["own"] - floor) / max(he["release"] - floor, 1e-12)
        print(json.dumps({"name": name, "volume": vol, "floor": round(floor, 5), "release": he["release"],
                          "own": he["own"], "ratio": round(he["own"] / he["release"], 4),
                          "ratio_noise_removed": round(corrected, 4),
                          "own_minus_release_db": round(r["psnr"]["own"] - r["psnr"]["release"], 3)}), flush=True)


if __name__ == "__main__":
    main()
