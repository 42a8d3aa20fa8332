"""Exploration (seen tune rows only): does the image energy where the two coil-map supports differ tell which support
is better, where the hold-out error differs by only a few percent?

Per row of ``support_choice.py``'s recorded results (``--results``): the scan rebuilt the same way, the adaptive maps
with the release and the own support (``Reconstructor.estimate_maps(support=)``), a CG-SENSE image with each (20
iterations), and the share of the image energy that each support would cut: ``cut_by_release`` = energy of the own
support's image in own \\ release over its total; ``cut_by_own`` = energy of the release support's image in
release \\ own over its total. Printed beside the recorded PSNRs (own − release) and hold-out errors.

    cd benchmarks && python support_energy.py --results results/support_choice_tune_suite.jsonl --sets TUNE_REG11,TUNE_MAPS5
    cd benchmarks && python support_energy.py --results results/support_choice_tune_files.jsonl --files
"""

from __future__ import annotations

import json

import numpy as np
import torch
from support_choice import recorded_rows

from mrdiff_cli.ops.operators import SenseOp
from mrdiff_cli.samplers.modes import MapsSupport
from mrdiff_cli.samplers.posterior import cg_sense
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def shares(y: np.ndarray, mask: np.ndarray, slice_index: int) -> dict:
    rec = Reconstructor(None, ReconOptions(seed=0))
    m = torch.as_tensor(mask, dtype=torch.float32)
    yy = torch.as_tensor(y[slice_index : slice_index + 1]).to(torch.complex64) * m
    yy, _ = rec._compress(yy, None, "sense")
    out = {}
    imgs, inside = {}, {}
    for s in (MapsSupport.release, MapsSupport.own):
        maps = rec.estimate_maps(yy, m, support=s)
        imgs[s] = cg_sense(yy, SenseOp(m, maps), 20)[0].abs() ** 2
        inside[s] = (maps.abs().sum(1) > 0)[0]
    own_only = inside[MapsSupport.own] & ~inside[MapsSupport.release]
    rel_only = inside[MapsSupport.release] & ~inside[MapsSupport.own]
    e_own, e_rel = imgs[MapsSupport.own], imgs[MapsSupport.release]
    out["cut_by_release"] = float(e_own[own_only].sum() / e_own.sum())
    out["cut_by_own"] = float(e_rel[rel_only].sum() / e_rel.sum())
    return out


def main() -> None:
    for _, r, y, mask, _, _, i in recorded_rows(__doc__.splitlines()[0]):
        name, vol = r["name"], r["volume"]
        sh = shares(y, mask, i)
        he = (r["choice"] or {}).get("holdout_error") or {}
        ratio = he["own"] / he["release"] if he else float("nan")
        print(json.dumps({"name": name, "volume": vol, **{k: round(v, 5) for k, v in sh.items()},
                          "holdout_ratio": round(ratio, 4),
                          "own_minus_release_db": round(r["psnr"]["own"] - r["psnr"]["release"], 3)}), flush=True)


if __name__ == "__main__":
    main()
