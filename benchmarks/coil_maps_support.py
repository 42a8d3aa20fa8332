"""Exploration (seen rows) after the second coil-maps test failed: the adaptive subspace's maps (support at ESPIRiT
eigenvalue 0.8) restricted to the *release* maps' support, against the release maps, on the two conditions with
the failing rows (TUNE_REG8[5], TUNE_MAPS2[5]), at the count the release's pilot chose there (3 / 7). Tests the
idea that the "adaptive95" loss comes from its 0.95 support threshold, not from its subspace.

    cd benchmarks && python coil_maps_support.py
"""

from __future__ import annotations

import numpy as np
import suite
import torch
from corpus import load_split
from pilot_study import scan
from suite import cond_name, score

from mrdiff_cli.ops.coils import estimate_maps
from mrdiff_cli.ops.operators import normalize_maps
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.calibration import estimate_kspace_noise
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

ROWS = (("TUNE_REG8", 5, 3), ("TUNE_MAPS2", 5, 7))  # (set, condition, the release pilot's count)


def main() -> None:
    torch.set_num_threads(1)
    prior, _ = load_prior(None, "score", offline=True)
    for name, i, count in ROWS:
        cond = getattr(suite, name)[i]
        for vol, ref in load_split("tune", 128, 2.0, 1).items():
            k, truth, mask = scan(ref, cond)
            m = torch.as_tensor(np.asarray(mask, np.float32))
            y = torch.as_tensor(k).to(torch.complex64) * m
            release = estimate_maps(y, m)
            adaptive = estimate_maps(y, m, sigma_thresh=0.001, noise_std=estimate_kspace_noise(y, m), noise_factor=2.0)
            support = release.abs().sum(1, keepdim=True) > 0
            out = {}
            for label, maps in (("release", release), ("adaptive, release support", normalize_maps(adaptive * support))):
                rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=count))
                out[label] = round(score(rec.reconstruct(k, mask, "sense", maps=maps).images, truth)["psnr"], 3)
            print(cond_name(cond[0], *cond[1:]), vol, out, flush=True)


if __name__ == "__main__":
    main()
