"""Exploration (not adopted): does coil-noise prewhitening with the *exact* noise covariance help?

Tune volumes (one slice each, 128²), noise-free k-space of ``tasks.acquisition`` plus complex Gaussian noise with a
known covariance Psi = D^1/2 R D^1/2 (R_ij = rho^|i-j|, per-coil powers D in 0.7-1.3, as ``acquisition.add_noise``
draws it), at the row's SNR. Whitener W = L^-1 sqrt(tr Psi / C) (Psi = L L^H; the mean noise power is kept).
Per row: CG-SENSE and the default one-sample diffusion reconstruction (``espirit`` maps, self-tuned count) on the
raw data and on the whitened data, PSNR on the head against the RSS of the noise-free coil images.

``--maps raw`` (default): the maps are estimated once on the raw data and whitened with the data (S_w = W S), so
the two runs share one signal model and differ only in the noise weighting. ``--maps whitened``: ESPIRiT on the
whitened data, each map rescaled per pixel by 1 / ||W^-1 S_w|| (back to the raw coils' unit-norm convention, so
the image is comparable with the RSS reference).

    python benchmarks/prewhiten_oracle.py --rows a --json benchmarks/results/prewhiten_oracle_a.json   # and --rows b
"""

from __future__ import annotations

import argparse
import json
import math
import platform

import numpy as np
import torch
from corpus import head_mask, load_split, masked_psnr

from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.acquisition import Acquisition, simulate_acquisition
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

# (coil family, coils, phase family, SNR dB, rho, mask, acceleration)
ROWS = {
    "a": [("ring", 8, "poly", 25, 0.3, "equispaced", 3.3), ("wires", 8, "random", 30, 0.5, "poisson", 8),
          ("ring", 12, "poly", 35, 0.5, "gaussian1d", 8), ("wires", 10, "poly", 28, 0.3, "poisson", 6)],
    "b": [("ring", 8, "poly", 25, 0.5, "poisson", 8), ("wires", 12, "poly", 32, 0.3, "equispaced", 4),
          ("ring", 16, "random", 27, 0.4, "gaussian1d", 6), ("wires", 8, "poly", 40, 0.5, "equispaced", 3.3)],
}


def correlated_noise(k0: np.ndarray, snr_db: float, rho: float, rng: np.random.Generator):
    """(k0 + noise, Psi): noise of covariance Psi across the coils (axis 1) at ``snr_db``."""
    C = k0.shape[1]
    sigma2 = float(np.mean(np.abs(k0) ** 2)) / 10 ** (snr_db / 10)
    idx = np.arange(C)
    d = np.sqrt(rng.uniform(0.7, 1.3, C))
    psi = sigma2 * d[:, None] * rho ** np.abs(idx[:, None] - idx[None, :]) * d[None, :]
    n = (rng.standard_normal(k0.shape) + 1j * rng.standard_normal(k0.shape)) / math.sqrt(2)
    return (k0 + np.einsum("ij,sjhw->sihw", np.linalg.cholesky(psi), n)).astype(np.complex64), psi


def coils(W: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,sjhw->sihw", torch.as_tensor(W.astype(np.complex64)), x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", choices=sorted(ROWS), default="a")
    ap.add_argument("--maps", choices=("raw", "whitened"), default="raw")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prior, _ = load_prior("bundled:score-brain-complex", "score", offline=True)
    out = []
    for coil, nc, ph, snr, rho, kind, R in ROWS[a.rows]:
        for vol, ref in load_split("tune", 128, 2.0, 1).items():
            k0, truth = simulate_acquisition(ref.numpy(), Acquisition(coil=coil, coils=nc, phase=ph, snr_db=None), seed=5)
            k, psi = correlated_noise(k0, snr, rho, np.random.default_rng(3))
            W = np.linalg.inv(np.linalg.cholesky(psi)) * math.sqrt(np.trace(psi).real / nc)
            acs = max(8, round(0.08 * 128)) if kind == "equispaced" else None
            m = torch.as_tensor(np.asarray(make_mask(kind, (128, 128), R, acs=acs, seed=11).mask, dtype=np.float32))
            t, hm = torch.as_tensor(truth), head_mask(torch.as_tensor(truth))
            y_raw = torch.as_tensor(k) * m
            maps_raw = Reconstructor(prior, ReconOptions(coil_maps="espirit")).estimate_maps(y_raw, m)
            row = {"condition": f"{coil}{nc}/{ph}/{snr}dB/rho{rho}/{kind}x{R}", "volume": vol}
            for label, whiten in (("raw", False), ("whitened", True)):
                y = coils(W, y_raw) if whiten else y_raw
                rec = Reconstructor(prior, ReconOptions(samples=1, seed=0, calibration=None, coil_maps="espirit"))
                if not whiten:
                    S = maps_raw
                elif a.maps == "raw":
                    S = coils(W, maps_raw)
                else:
                    S = rec.estimate_maps(y, m)
                    g = torch.linalg.vector_norm(coils(np.linalg.inv(W), S), dim=1, keepdim=True)
                    S = torch.where(g > 0, S / g.clamp_min(1e-12), S)
                sense = Reconstructor(prior, ReconOptions(method="sense")).reconstruct(y, m, "sense", maps=S).images
                x = rec.reconstruct(y, m, "sense", maps=S).images
                row[label] = {"cg_sense": masked_psnr(torch.as_tensor(sense), t, hm)[0],
                              "diffusion": masked_psnr(torch.as_tensor(x), t, hm)[0],
                              "cg_iters": rec.tuning.n_cg if rec.tuning else None}
            out.append(row)
            print(json.dumps(row), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"maps": a.maps, "rows": out, "machine": f"{platform.machine()} {platform.processor()}",
                       "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
