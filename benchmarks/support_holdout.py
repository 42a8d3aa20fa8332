"""Exploration (tune volumes only): can the scan itself tell which coil-map support to use? On fastMRI-layout files
simulated from the tune volumes (``fastmri_test_layout.simulate_test_layout``: 16 ring coils, polynomial phase, 35
dB, equispaced x4, readout oversampled and removed as the reader does), for each map setting: the fraction of the
image inside the maps' support, and the k-space hold-out error of the middle slice at 7 CG (``Reconstructor.pilot``
with the maps given: the count pilot's hold-out), and the PSNR in the head mask of the 3-slice reconstruction with
those maps (40 steps, 7 CG; ``fastmri_test_layout.score``) at each ``--snrs``.

    cd benchmarks && python support_holdout.py --out results/support_holdout_tune.jsonl
    cd benchmarks && python support_holdout.py --suite TUNE_REG8:5,TUNE_MAPS2:5 --count 3 --out OUT.jsonl   # 128² rows

``--suite SET:I,...``: instead of fastMRI-layout files, rows of ``benchmarks/suite.py`` (one middle slice per tune
volume, the suite's simulation and mask), reconstructed at ``--count`` CG (40 steps).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from corpus import load_split
from fastmri_test_layout import score, simulate_test_layout
from sampler_variants import emit

from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

VARIANTS = {"auto": {}, "a95": {"coil_maps": "espirit", "espirit_sigma": 0.001, "espirit_noise": 2.0,
                                "espirit_eig": 0.95, "pilot_maps": "espirit"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--snrs", default="35")
    ap.add_argument("--suite", default=None)
    ap.add_argument("--count", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(2)
    prior = load_prior(None, "score", offline=True)[0]
    if a.suite:
        return suite_rows(prior, a)
    refs = load_split("tune", 256, 1.0, 3)
    for snr in [float(v) for v in a.snrs.split(",")]:
        for vol in ("dipy_S0_10slices", "itk_kmeans_t1"):
            ref = refs[vol].numpy()
            sim = simulate_test_layout(ref, coils=16, snr_db=snr, accel=4.0)
            k = torch.as_tensor(sim["kspace"])  # (S, C, 512, 256), readout oversampled: crop the image as the reader does
            img = ifft2c(k)
            h = img.shape[-2]
            y = fft2c(img[..., h // 4 : h // 4 + 256, :]).numpy().astype(np.complex64)
            mask = np.broadcast_to(np.asarray(sim["mask"], np.float32)[None, :], (256, 256)).copy()
            y = y * mask
            mid = y[1:2]
            for name, o in VARIANTS.items():
                full = Reconstructor(prior, ReconOptions(seed=0, n_cg=7, **o)).reconstruct(y, mask, "sense", slice_ids=[0, 1, 2])
                psnr = score(full.images, sim["truth"])["psnr"]
                rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=7, **o))
                yc, _ = rec._compress(torch.as_tensor(mid), None, "sense")
                maps = rec.estimate_maps(yc, torch.as_tensor(mask))
                inside = float((maps.abs().sum(1) > 0).float().mean())
                pilot = rec.pilot(yc.numpy(), mask, "sense", maps, [1], compressed=True)
                err = pilot[0](7) if pilot is not None else float("nan")
                emit({"volume": vol, "snr_db": snr, "variant": name, "support_fraction": round(inside, 4),
                      "holdout_error_7cg": round(float(err), 6), "psnr": round(float(psnr), 3)}, a.out)


def suite_rows(prior, a) -> None:
    import suite
    from pilot_study import scan
    from suite import cond_name

    for item in a.suite.split(","):
        name, i = item.split(":")
        cond = getattr(suite, name)[int(i)]
        for vol, ref in load_split("tune", cond[1], 256.0 / cond[1], 1).items():
            k, truth, mask = scan(ref, cond)
            mask = np.asarray(mask, np.float32)
            for vname, o in VARIANTS.items():
                rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=a.count, **o))
                psnr = score(rec.reconstruct(k, mask, "sense").images, np.asarray(truth))["psnr"]
                y = torch.as_tensor(k).to(torch.complex64) * torch.as_tensor(mask)
                maps = rec.estimate_maps(y, torch.as_tensor(mask))
                pilot = rec.pilot(y.numpy(), mask, "sense", maps, [0], compressed=True)
                err = pilot[0](a.count) if pilot is not None else float("nan")
                emit({"condition": cond_name(cond[0], *cond[1:]), "volume": vol, "variant": vname,
                      "support_fraction": round(float((maps.abs().sum(1) > 0).float().mean()), 4),
                      f"holdout_error_{a.count}cg": round(float(err), 6), "psnr": round(float(psnr), 3)}, a.out)


if __name__ == "__main__":
    main()
