"""Sweep the fast sampler's settings on held-out slices (the tuning behind the shipped defaults).

    python benchmarks/tune_sampler.py --model DIR --grid steps=10,20 sigma_max=0.5,1,2 n_cg=3,5
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch
from corpus import MAGNITUDE_PRIOR

from mrdiff_cli.io.detect import load_image
from mrdiff_cli.metrics import volume_metrics
from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor, choose_coil_mode
from mrdiff_cli.tasks.simulate import simulate_volume


def _value(text: str):
    """'20' → 20, '0.5' → 0.5, 'none' → None, anything else stays a string."""
    if text.lower() == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--volume", default="/work/data/val/S0_10slices.nii.gz")
    ap.add_argument("--slices", default="3:5")
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--mask", default="poisson")
    ap.add_argument("--accel", type=float, default=8.0)
    ap.add_argument("--grid", nargs="*", default=[])
    ap.add_argument("--sampler", default="fast")
    args = ap.parse_args()
    a, b = (int(v) for v in args.slices.split(":"))
    vol, geom = load_image(args.volume)
    sim = simulate_volume(vol[a:b], geom, matrix=128, coils=args.coils, snr_db=30.0, seed=7)
    mask = make_mask(args.mask, (128, 128), args.accel, seed=11).mask
    prior, _ = load_prior(args.model or MAGNITUDE_PRIOR, "score", offline=True)
    mode = choose_coil_mode("auto", args.coils)
    rec = Reconstructor(prior, ReconOptions(method="sense"))
    y = sim.kspace * mask
    maps = rec.estimate_maps(torch.as_tensor(y), torch.as_tensor(mask)) if args.coils > 1 else None
    if args.coils > 1:
        s = rec.reconstruct(sim.kspace, mask, "sense", maps=maps).images
        print(json.dumps({"method": "sense", **volume_metrics(s, sim.reference)["mean"]}))
    grid = {}
    for g in args.grid:
        k, v = g.split("=")
        grid[k] = [_value(x) for x in v.split(",")]
    keys = list(grid)
    for vals in itertools.product(*[grid[k] for k in keys]) if keys else [()]:
        kw = dict(zip(keys, vals))
        o = ReconOptions(sampler=args.sampler, **kw)
        t = time.time()
        img = Reconstructor(prior, o).reconstruct(sim.kspace, mask, mode, maps=maps).images
        m = volume_metrics(img, sim.reference)["mean"]
        print(json.dumps({**kw, "psnr": round(m["psnr"], 3), "ssim": round(m["ssim"], 4), "s": round(time.time() - t, 1)}), flush=True)


if __name__ == "__main__":
    main()
