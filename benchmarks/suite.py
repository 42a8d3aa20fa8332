"""Acquisition-diverse reconstruction suite: every split volume under several acquisition models.

The corpus split (``benchmarks/corpus.py``) separates *subjects*; this suite also separates *physics*. Each
condition is an acquisition model of ``mrdiff_cli.tasks.acquisition`` (coil family and count, phase family,
SNR, correlated receiver noise, matrix) with a sampling pattern. The tune conditions use only the ``ring`` and
``wires`` coil families and the ``poly`` and ``random`` phase families; the report conditions use the ``loops``
(Biot-Savart) coils and the ``offres`` (air-tissue susceptibility) phase, which nothing was tuned on, plus other
coil counts and a 320² matrix. Coil maps are always estimated from the data (ESPIRiT on the calibration centre).

Per (condition, volume): zero-filled, CG-SENSE, L1-wavelet CS (lambda per mask kind chosen on the tune split,
``--cs-lambdas``), the fast sampler with every fixed CG count in {1, 2, 3, 5, 7, 10} (7 = the previous default,
5 = the release before; the oracle is the best fixed count of {1, 2, 3, 5, 7}, as the issue states it), and the
self-tuned default (``--variants``: ReconOptions overrides, ``default`` = none). PSNR inside the head mask against
the RSS of the noise-free coil images (data range: the slice maximum), SSIM, seconds per slice (this machine).

    python benchmarks/suite.py --split tune --tune-cs --out benchmarks/results/suite_tune.jsonl
    python benchmarks/suite.py --split report --out benchmarks/results/suite_report.jsonl
    python benchmarks/suite.py --table benchmarks/results/suite_report.jsonl

Rows are appended to ``--out`` as JSON lines and skipped when already there (a killed run resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from baselines import cs_inputs, cs_l1wavelet
from corpus import MAGNITUDE_PRIOR, head_mask, load_split, masked_psnr

from mrdiff_cli.metrics import ssim
from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.selftune import CG_CANDIDATES, choose_count, unimodal_search
from mrdiff_cli.tasks.acquisition import Acquisition, simulate_acquisition
from mrdiff_cli.tasks.calibration import estimate_kspace_noise
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

A = Acquisition
# (acquisition, matrix, mask kind, acceleration)
CONDITIONS = {
    "tune": [
        (A("ring", 8, "poly", snr_db=35), 128, "poisson", 8),
        (A("ring", 8, "random", 1.0, 8, snr_db=25), 128, "equispaced", 3.3),
        (A("wires", 12, "poly", snr_db=50), 128, "gaussian1d", 8),
        (A("wires", 8, "random", 0.5, 3, snr_db=25), 128, "poisson", 8),
        (A("ring", 12, "random", 2.0, 16, snr_db=45), 128, "gaussian1d", 8),
        (A("ring", 4, "poly", snr_db=40), 128, "poisson", 8),
        (A("wires", 8, "random", 1.0, 8, snr_db=35, noise_rho=0.3), 128, "equispaced", 3.3),
        (A("wires", 16, "poly", snr_db=30), 256, "equispaced", 4),
    ],
    "report": [
        (A("loops", 8, "offres", 3.0, snr_db=30), 128, "poisson", 8),
        (A("loops", 8, "offres", 3.0, snr_db=30), 128, "equispaced", 3.3),
        (A("loops", 8, "offres", 3.0, snr_db=30), 128, "gaussian1d", 8),
        (A("loops", 12, "random", 0.5, 3, snr_db=48), 128, "poisson", 8),
        (A("loops", 8, "poly", snr_db=25), 128, "equispaced", 3.3),
        (A("loops", 32, "offres", 3.0, snr_db=45, rows=2), 128, "gaussian1d", 8),
        (A("loops", 16, "offres", 2.0, snr_db=40, noise_rho=0.2, rows=2), 256, "equispaced", 4),
        (A("loops", 12, "random", 1.0, 16, snr_db=35), 320, "poisson", 8),
    ],
}
# more tune rows (tune families only: ring/wires coils, poly/random phase), weighted towards what the pilot
# misses — equispaced masks (few hidden lines) and low SNR — for the pilot study (benchmarks/pilot_study.py --more)
TUNE_MORE = [
    (A("ring", 8, "poly", snr_db=30), 128, "equispaced", 3.3),
    (A("wires", 8, "poly", snr_db=25), 128, "equispaced", 3.3),
    (A("ring", 12, "random", 1.0, 5, snr_db=30), 128, "equispaced", 4),
    (A("wires", 12, "random", 0.5, 12, snr_db=40), 128, "equispaced", 2.5),
    (A("ring", 4, "random", 1.0, 8, snr_db=30), 128, "equispaced", 3),
    (A("ring", 8, "random", 1.5, 4, snr_db=30), 128, "poisson", 6),
    (A("wires", 8, "poly", snr_db=45), 128, "gaussian1d", 6),
    (A("wires", 16, "poly", snr_db=35), 128, "poisson", 10),
]
# low-SNR tune rows (tune families only), where the measured best count is 3 on most (it is 5-7 on every row
# above): what the report's 25 dB row and the independent files showed and the tune suite did not have
# (benchmarks/pilot_study.py --low; 2026-12-06)
TUNE_LOW = [
    (A("ring", 6, "poly", snr_db=20), 128, "poisson", 8),
    (A("ring", 8, "poly", snr_db=20), 128, "equispaced", 3),
    (A("ring", 12, "random", 0.5, 6, snr_db=18), 128, "poisson", 8),
    (A("wires", 8, "random", 1.0, 8, snr_db=20), 128, "poisson", 6),
    (A("wires", 8, "poly", snr_db=20), 128, "gaussian1d", 4),
    (A("ring", 4, "poly", snr_db=22, distance=2.0), 128, "equispaced", 4),
    (A("wires", 6, "random", 0.5, 12, snr_db=22), 128, "equispaced", 4),
]
# fresh tune rows with regular 1D masks (equispaced x2.5-x3.3, 22-30 dB; tune families), added after the pilot's
# count bias on such masks was found, to test a remedy on rows it was not designed on (pilot_study.py --reg)
TUNE_REG = [
    (A("ring", 8, "poly", snr_db=22), 128, "equispaced", 3),
    (A("wires", 8, "random", 1.0, 6, snr_db=25), 128, "equispaced", 3.3),
    (A("ring", 12, "poly", snr_db=25), 128, "equispaced", 2.5),
    (A("wires", 12, "random", 0.5, 8, snr_db=28), 128, "equispaced", 3),
    (A("ring", 6, "random", 1.0, 10, snr_db=24), 128, "equispaced", 3.3),
    (A("wires", 8, "poly", snr_db=30), 128, "equispaced", 2.5),
]
# fresh regular-mask rows for confirming a count rule chosen on the rows above (tune families only; new SNRs,
# coil counts, phase scales and accelerations; written down before any rule was run on them)
TUNE_REG2 = [
    (A("ring", 10, "random", 0.7, 12, snr_db=26), 128, "equispaced", 3),
    (A("wires", 6, "poly", snr_db=23), 128, "equispaced", 2.5),
    (A("ring", 8, "random", 1.5, 5, snr_db=32), 128, "equispaced", 3.3),
    (A("wires", 10, "random", 1.0, 8, snr_db=27), 128, "equispaced", 4),
    (A("ring", 12, "poly", snr_db=35), 128, "equispaced", 3),
    (A("wires", 8, "random", 0.5, 10, snr_db=21), 128, "equispaced", 2.5),
]
# a third fresh set, written down after TUNE_REG2 showed that its worst row was a phase-prior miss both count rules
# share (the criterion is restated on the count; nothing has been run on these)
TUNE_REG3 = [
    (A("wires", 12, "poly", snr_db=24), 128, "equispaced", 3.3),
    (A("ring", 6, "random", 0.5, 16, snr_db=28), 128, "equispaced", 2.5),
    (A("ring", 10, "poly", snr_db=30), 128, "equispaced", 4),
    (A("wires", 8, "random", 1.0, 10, snr_db=22), 128, "equispaced", 3),
    (A("ring", 12, "random", 0.7, 6, snr_db=33), 128, "equispaced", 3.3),
    (A("wires", 10, "poly", snr_db=26), 128, "equispaced", 2.5),
]
# a fourth fresh set, for the bootstrap with a 7-CG reference (chosen after TUNE_REG3; nothing run on these yet)
TUNE_REG4 = [
    (A("ring", 8, "poly", snr_db=27), 128, "equispaced", 3.3),
    (A("wires", 12, "random", 0.7, 10, snr_db=23), 128, "equispaced", 3),
    (A("ring", 10, "random", 1.0, 8, snr_db=29), 128, "equispaced", 2.5),
    (A("wires", 6, "poly", snr_db=31), 128, "equispaced", 4),
    (A("ring", 6, "random", 0.5, 12, snr_db=25), 128, "equispaced", 3),
    (A("wires", 8, "poly", snr_db=21), 128, "equispaced", 3.3),
]
# fifth and sixth fresh regular-mask sets (2026-12-07, sixth session), written down before the bootstrap tolerance
# rule was explored on TUNE_REG .. TUNE_REG4 (nothing has been run on these)
TUNE_REG5 = [
    (A("ring", 8, "random", 0.7, 8, snr_db=24), 128, "equispaced", 3.3),
    (A("wires", 10, "poly", snr_db=28), 128, "equispaced", 3),
    (A("ring", 12, "poly", snr_db=22), 128, "equispaced", 2.5),
    (A("wires", 6, "random", 1.0, 12, snr_db=30), 128, "equispaced", 3.3),
    (A("ring", 10, "random", 0.5, 6, snr_db=26), 128, "equispaced", 4),
    (A("wires", 12, "poly", snr_db=32), 128, "equispaced", 3),
]
TUNE_REG6 = [
    (A("wires", 8, "random", 0.7, 16, snr_db=27), 128, "equispaced", 2.5),
    (A("ring", 6, "poly", snr_db=25), 128, "equispaced", 3),
    (A("wires", 10, "random", 1.5, 6, snr_db=23), 128, "equispaced", 3.3),
    (A("ring", 12, "random", 1.0, 12, snr_db=31), 128, "equispaced", 2.5),
    (A("wires", 12, "poly", snr_db=29), 128, "equispaced", 4),
    (A("ring", 8, "poly", snr_db=34), 128, "equispaced", 3.3),
]
# seventh and eighth fresh regular-mask sets (2026-12-07, sixth session), written down after the bootstrap tolerance
# was adopted and before the 40-step bootstrap pilots' exploration on TUNE_REG5/6 was looked at (nothing run on these)
TUNE_REG7 = [
    (A("wires", 8, "poly", snr_db=33), 128, "equispaced", 3.3),
    (A("ring", 10, "random", 0.7, 10, snr_db=25), 128, "equispaced", 3),
    (A("wires", 12, "random", 1.0, 6, snr_db=29), 128, "equispaced", 4),
    (A("ring", 6, "poly", snr_db=31), 128, "equispaced", 2.5),
    (A("wires", 6, "random", 0.5, 8, snr_db=22), 128, "equispaced", 3.3),
    (A("ring", 12, "poly", snr_db=27), 128, "equispaced", 4),
]
TUNE_REG8 = [
    (A("ring", 8, "poly", snr_db=30), 128, "equispaced", 3),
    (A("wires", 10, "random", 0.7, 12, snr_db=34), 128, "equispaced", 3.3),
    (A("ring", 12, "random", 1.5, 8, snr_db=24), 128, "equispaced", 3),
    (A("wires", 8, "poly", snr_db=26), 128, "equispaced", 4),
    (A("ring", 6, "random", 1.0, 6, snr_db=32), 128, "equispaced", 3.3),
    (A("wires", 12, "poly", snr_db=23), 128, "equispaced", 2.5),
]
# fresh mixed-mask rows (2026-12-07, sixth session) for a coil-map estimation change, written down after the maps'
# model-error exploration on CONDITIONS["tune"], TUNE_REG5 (nothing run on these)
TUNE_MAPS = [
    (A("ring", 10, "poly", snr_db=38), 128, "poisson", 8),
    (A("wires", 8, "random", 0.7, 10, snr_db=27), 128, "poisson", 6),
    (A("ring", 6, "random", 1.0, 12, snr_db=44), 128, "gaussian1d", 8),
    (A("wires", 12, "poly", snr_db=21), 128, "gaussian1d", 6),
    (A("ring", 12, "random", 0.5, 8, snr_db=33), 128, "poisson", 10),
    (A("wires", 6, "poly", snr_db=48), 128, "poisson", 8),
]
# second fresh mixed-mask set for the coil-map change (2026-12-07, sixth session), written down after its first
# test failed on TUNE_MAPS + TUNE_REG7 (nothing run on these; with TUNE_REG8, unused so far)
TUNE_MAPS2 = [
    (A("wires", 10, "random", 1.0, 8, snr_db=36), 128, "poisson", 8),
    (A("ring", 8, "poly", snr_db=29), 128, "poisson", 10),
    (A("wires", 6, "random", 0.5, 12, snr_db=40), 128, "gaussian1d", 6),
    (A("ring", 10, "poly", snr_db=24), 128, "gaussian1d", 8),
    (A("wires", 12, "random", 1.5, 6, snr_db=31), 128, "poisson", 6),
    (A("ring", 6, "random", 0.7, 16, snr_db=45), 128, "poisson", 8),
]
# third fresh pair for the coil-map change (2026-12-07, seventh session), written down before the "adaptive_rs" test
# (adaptive subspace, release support; its exploration used TUNE_REG8[5] and TUNE_MAPS2[5] only; nothing run on these)
TUNE_REG9 = [
    (A("ring", 10, "poly", snr_db=21), 128, "equispaced", 2.5),
    (A("wires", 8, "random", 1.0, 10, snr_db=31), 128, "equispaced", 3.3),
    (A("ring", 6, "random", 0.7, 8, snr_db=28), 128, "equispaced", 4),
    (A("wires", 12, "poly", snr_db=35), 128, "equispaced", 3),
    (A("ring", 12, "random", 1.5, 10, snr_db=25), 128, "equispaced", 3.3),
    (A("wires", 6, "poly", snr_db=38), 128, "equispaced", 2.5),
]
TUNE_MAPS3 = [
    (A("ring", 8, "random", 1.0, 6, snr_db=42), 128, "poisson", 8),
    (A("wires", 10, "poly", snr_db=22), 128, "poisson", 6),
    (A("ring", 12, "poly", snr_db=47), 128, "gaussian1d", 8),
    (A("wires", 8, "random", 0.5, 16, snr_db=30), 128, "gaussian1d", 6),
    (A("ring", 6, "random", 1.5, 10, snr_db=35), 128, "poisson", 10),
    (A("wires", 12, "random", 0.7, 8, snr_db=26), 128, "poisson", 8),
]
# fourth fresh pair (2026-12-07, seventh session), written down after the adaptive_rs test failed on TUNE_REG9 +
# TUNE_MAPS3 and before the pilot-maps variant's exploration on TUNE_REG8 / TUNE_MAPS2 was looked at (nothing run on
# these); like the earlier sets, more low- and high-SNR regular-mask rows (where the counts move)
TUNE_REG10 = [
    (A("wires", 10, "poly", snr_db=24), 128, "equispaced", 4),
    (A("ring", 8, "random", 1.2, 6, snr_db=36), 128, "equispaced", 3),
    (A("wires", 6, "random", 0.7, 14, snr_db=27), 128, "equispaced", 3.3),
    (A("ring", 12, "poly", snr_db=30), 128, "equispaced", 4),
    (A("wires", 12, "random", 1.0, 10, snr_db=21), 128, "equispaced", 3),
    (A("ring", 10, "poly", snr_db=41), 128, "equispaced", 3.3),
]
TUNE_MAPS4 = [
    (A("wires", 8, "poly", snr_db=34), 128, "poisson", 8),
    (A("ring", 10, "random", 0.7, 12, snr_db=24), 128, "poisson", 6),
    (A("wires", 12, "random", 1.2, 8, snr_db=44), 128, "poisson", 10),
    (A("ring", 8, "poly", snr_db=39), 128, "gaussian1d", 6),
    (A("wires", 6, "random", 1.0, 6, snr_db=28), 128, "poisson", 8),
    (A("ring", 12, "random", 0.5, 10, snr_db=49), 128, "gaussian1d", 8),
]
# fifth fresh pair (2026-12-07, eighth session), written down before the per-scan coil-map support choice was
# implemented or run on anything (its exploration: benchmarks/support_holdout.py on TUNE_REG8[5], TUNE_MAPS2[5] and
# fastMRI-layout files of the tune volumes at seed 7); nothing run on these
TUNE_REG11 = [
    (A("ring", 8, "poly", snr_db=33), 128, "equispaced", 4),
    (A("wires", 10, "random", 0.7, 8, snr_db=45), 128, "equispaced", 3),
    (A("ring", 12, "random", 1.0, 14, snr_db=26), 128, "equispaced", 3.3),
    (A("wires", 8, "poly", snr_db=40), 128, "equispaced", 2.5),
    (A("ring", 6, "random", 1.5, 6, snr_db=30), 128, "equispaced", 3),
    (A("wires", 12, "poly", snr_db=23), 128, "equispaced", 4),
]
TUNE_MAPS5 = [
    (A("ring", 10, "poly", snr_db=37), 128, "poisson", 8),
    (A("wires", 8, "random", 1.0, 12, snr_db=46), 128, "poisson", 6),
    (A("ring", 8, "random", 0.5, 8, snr_db=27), 128, "gaussian1d", 8),
    (A("wires", 12, "poly", snr_db=31), 128, "gaussian1d", 6),
    (A("ring", 12, "random", 1.2, 10, snr_db=42), 128, "poisson", 10),
    (A("wires", 6, "poly", snr_db=25), 128, "poisson", 8),
]
# sixth fresh pair (2026-12-07, eighth session), written down after the support-choice test's tune rows
# (TUNE_REG11 / TUNE_MAPS5, 10 % margin) were seen and before anything ran on these: for a test of a smaller margin
TUNE_REG12 = [
    (A("wires", 8, "random", 1.2, 10, snr_db=29), 128, "equispaced", 3.3),
    (A("ring", 10, "poly", snr_db=43), 128, "equispaced", 3),
    (A("wires", 6, "poly", snr_db=35), 128, "equispaced", 4),
    (A("ring", 8, "random", 0.7, 12, snr_db=24), 128, "equispaced", 2.5),
    (A("wires", 12, "random", 1.5, 8, snr_db=38), 128, "equispaced", 3),
    (A("ring", 12, "poly", snr_db=48), 128, "equispaced", 4),
]
TUNE_MAPS6 = [
    (A("wires", 10, "random", 0.5, 10, snr_db=33), 128, "poisson", 8),
    (A("ring", 6, "poly", snr_db=44), 128, "poisson", 6),
    (A("wires", 8, "poly", snr_db=26), 128, "gaussian1d", 8),
    (A("ring", 10, "random", 1.0, 6, snr_db=39), 128, "poisson", 10),
    (A("wires", 12, "random", 0.7, 14, snr_db=47), 128, "gaussian1d", 6),
    (A("ring", 8, "poly", snr_db=30), 128, "poisson", 8),
]
# seventh fresh pair (2026-12-07, eighth session), written down for the count re-check on the own-support maps
# (docs/benchmarks.md, "Pre-registered next test: a count re-check"), before it was implemented; nothing run on these
TUNE_REG13 = [
    (A("ring", 10, "random", 0.7, 10, snr_db=34), 128, "equispaced", 3.3),
    (A("wires", 12, "poly", snr_db=42), 128, "equispaced", 4),
    (A("ring", 8, "poly", snr_db=28), 128, "equispaced", 3),
    (A("wires", 8, "random", 1.0, 14, snr_db=37), 128, "equispaced", 2.5),
    (A("ring", 12, "random", 1.5, 6, snr_db=45), 128, "equispaced", 3),
    (A("wires", 10, "poly", snr_db=31), 128, "equispaced", 4),
]
TUNE_MAPS7 = [
    (A("ring", 8, "random", 1.0, 8, snr_db=41), 128, "poisson", 6),
    (A("wires", 12, "poly", snr_db=35), 128, "poisson", 8),
    (A("ring", 10, "poly", snr_db=46), 128, "poisson", 10),
    (A("wires", 8, "random", 0.7, 10, snr_db=29), 128, "gaussian1d", 8),
    (A("ring", 12, "poly", snr_db=38), 128, "gaussian1d", 6),
    (A("wires", 10, "random", 1.2, 12, snr_db=43), 128, "poisson", 8),
]
# large matrices (2026-12-07): the complex default's one report row more than 0.3 dB below the previous default was
# at 320² (its hold-out pilot chose 3 CG where 5 was best); the tune suite had one 256² condition and no 320² one
TUNE_BIG = [
    (A("ring", 12, "random", 1.0, 16, snr_db=35), 320, "poisson", 8),
    (A("wires", 8, "poly", snr_db=30), 320, "poisson", 8),
    (A("ring", 16, "random", 0.5, 8, snr_db=40), 256, "poisson", 8),
    (A("wires", 12, "random", 1.5, 12, snr_db=28), 256, "gaussian1d", 6),
]
# fresh large-matrix rows for the 20-step pilot test written down in docs/benchmarks.md (TUNE_BIG's follow-up)
TUNE_BIG2 = [
    (A("wires", 12, "poly", snr_db=33), 320, "poisson", 6),
    (A("ring", 8, "random", 0.7, 12, snr_db=38), 320, "gaussian1d", 8),
    (A("ring", 12, "poly", snr_db=27), 256, "poisson", 10),
    (A("wires", 16, "random", 1.2, 20, snr_db=42), 256, "poisson", 8),
]
# fresh rows (2026-12-07, defined before any run) for the pre-registered test of adaptive coil maps with the
# per-scan support choice for K > 1 samples (docs/uncertainty.md; benchmarks/suite_uncertainty.py --set TUNE_UNC)
TUNE_UNC = [
    (A("ring", 8, "poly", snr_db=30), 128, "poisson", 8),
    (A("wires", 8, "random", 1.0, 8, snr_db=27), 128, "poisson", 8),
    (A("ring", 12, "random", 0.7, 12, snr_db=44), 128, "equispaced", 4),
    (A("wires", 10, "poly", snr_db=36), 128, "gaussian1d", 8),
    (A("ring", 16, "random", 1.5, 16, snr_db=40), 128, "poisson", 6),
    (A("wires", 8, "poly", snr_db=25, noise_rho=0.2), 128, "equispaced", 3.3),
]
# fresh rows (2026-12-07, defined before any run) for the third K > 1 maps test: adaptive samples, spread measured
# on the pilots' espirit maps (docs/uncertainty.md; benchmarks/suite_uncertainty.py --set TUNE_UNC2)
TUNE_UNC2 = [
    (A("wires", 8, "poly", snr_db=32), 128, "poisson", 8),
    (A("ring", 10, "random", 0.8, 6, snr_db=29), 128, "poisson", 8),
    (A("ring", 8, "poly", snr_db=42), 128, "equispaced", 3.3),
    (A("wires", 12, "random", 1.2, 10, snr_db=38), 128, "gaussian1d", 8),
    (A("wires", 16, "poly", snr_db=46), 128, "poisson", 10),
    (A("ring", 6, "random", 0.5, 4, snr_db=34, noise_rho=0.2), 128, "equispaced", 4),
]
# fresh rows (2026-12-07, defined before any run) for the fourth K > 1 maps test (docs/uncertainty.md): decision rows
# on the tune volumes (tune families) and veto rows on the report volumes (report coil family, new settings)
TUNE_UNC3 = [
    (A("ring", 8, "random", 1.0, 10, snr_db=31), 128, "poisson", 8),
    (A("wires", 10, "poly", snr_db=40), 128, "poisson", 8),
    (A("ring", 12, "poly", snr_db=28), 128, "equispaced", 3.3),
    (A("wires", 8, "random", 0.6, 5, snr_db=45), 128, "poisson", 6),
    (A("ring", 8, "random", 1.5, 14, snr_db=36), 128, "gaussian1d", 8),
    (A("wires", 12, "poly", snr_db=33, noise_rho=0.2), 128, "equispaced", 4),
]
# exploration rows of count_top.py (seen; the high-SNR rows where fixed 10 / 15 CG beat 7)
TUNE_CGX = [
    TUNE_UNC3[1],
    TUNE_UNC3[3],
    (A("ring", 4, "poly", snr_db=40), 128, "poisson", 8),
    (A("wires", 12, "poly", snr_db=50), 128, "gaussian1d", 8),
    (A("ring", 8, "poly", snr_db=35), 128, "poisson", 8),
]
# fresh rows for the pre-registered test of the extended count candidates (docs/benchmarks.md, "The top of the count
# candidates"): written down before any run on them
TUNE_CG = [
    (A("ring", 10, "poly", snr_db=44), 128, "poisson", 8),
    (A("wires", 12, "random", 0.8, 6, snr_db=38), 128, "poisson", 6),
    (A("ring", 6, "random", 1.2, 12, snr_db=30), 128, "poisson", 5),
    (A("wires", 8, "poly", snr_db=47), 128, "gaussian1d", 6),
    (A("ring", 16, "random", 0.6, 8, snr_db=41), 128, "gaussian2d", 8),
    (A("wires", 6, "poly", snr_db=27), 128, "poisson", 8),
    (A("ring", 5, "poly", snr_db=42), 128, "poisson", 6),
    (A("wires", 14, "random", 1.0, 10, snr_db=34, noise_rho=0.2), 128, "gaussian1d", 8),
]
# fresh rows for the second test (a 10 % margin on steps above 7 CG), written down before any run on them
TUNE_CG2 = [
    (A("wires", 10, "random", 0.7, 7, snr_db=43), 128, "poisson", 7),
    (A("ring", 8, "poly", snr_db=29), 128, "poisson", 6),
    (A("ring", 12, "random", 1.0, 9, snr_db=46), 128, "gaussian2d", 6),
    (A("wires", 6, "random", 0.9, 11, snr_db=33), 128, "poisson", 8),
    (A("ring", 14, "poly", snr_db=37), 128, "gaussian1d", 6),
    (A("wires", 9, "poly", snr_db=49), 128, "poisson", 8),
    (A("ring", 6, "poly", snr_db=36), 128, "poisson", 8),
    (A("wires", 16, "random", 0.6, 5, snr_db=31, noise_rho=0.2), 128, "poisson", 8),
]
# exploration rows: do regular (equispaced) masks at higher SNR also want more than 7 CG? (seen tune rows + one)
TUNE_CGEQ = [
    TUNE_UNC3[5],
    (A("wires", 8, "random", 1.0, 8, snr_db=35, noise_rho=0.3), 128, "equispaced", 3.3),  # tune condition 6
    (A("ring", 8, "poly", snr_db=45), 128, "equispaced", 4),
]
# fresh regular-mask rows for the pre-registered test of the bootstrap's 10 / 15 CG, written before any run on them
TUNE_CGEQ2 = [
    (A("ring", 10, "poly", snr_db=38), 128, "equispaced", 4),
    (A("wires", 8, "random", 0.7, 9, snr_db=30), 128, "equispaced", 3),
    (A("ring", 12, "random", 0.5, 6, snr_db=43), 128, "equispaced", 3.3),
    (A("wires", 12, "poly", snr_db=26), 128, "equispaced", 4),
    (A("ring", 16, "poly", snr_db=34, noise_rho=0.2), 128, "equispaced", 4),
    (A("wires", 10, "random", 1.1, 12, snr_db=41), 128, "equispaced", 3.3),
    (A("ring", 6, "poly", snr_db=46), 128, "equispaced", 3),
    (A("wires", 14, "poly", snr_db=32), 128, "equispaced", 3.3),
]
# fresh regular-mask rows for the pre-registered test of the bootstrap's walk above 7 CG (a second reference),
# written down before any run on them
TUNE_CGEQ3 = [
    (A("ring", 12, "poly", snr_db=40), 128, "equispaced", 4),
    (A("wires", 10, "random", 0.8, 10, snr_db=36), 128, "equispaced", 4),
    (A("ring", 8, "random", 0.6, 7, snr_db=48), 128, "equispaced", 3.3),
    (A("wires", 16, "poly", snr_db=29), 128, "equispaced", 4),
    (A("ring", 14, "poly", snr_db=44, noise_rho=0.2), 128, "equispaced", 3),
    (A("wires", 12, "random", 1.0, 8, snr_db=33), 128, "equispaced", 3.3),
    (A("ring", 10, "random", 0.9, 6, snr_db=37), 128, "equispaced", 4),
    (A("wires", 8, "poly", snr_db=42), 128, "equispaced", 4),
]
# fresh regular-mask rows for the pre-registered test of the bootstrap's 7 -> 10 step (ReconOptions.seven_up),
# written down before any run on them; 26-38 dB, where the bootstrap often stops at 7
TUNE_CGEQ4 = [
    (A("ring", 10, "poly", snr_db=31), 128, "equispaced", 4),
    (A("wires", 12, "random", 0.8, 9, snr_db=28), 128, "equispaced", 3.3),
    (A("ring", 14, "random", 0.7, 7, snr_db=34), 128, "equispaced", 3),
    (A("wires", 8, "poly", snr_db=27), 128, "equispaced", 4),
    (A("ring", 8, "poly", snr_db=33, noise_rho=0.2), 128, "equispaced", 3.3),
    (A("wires", 14, "random", 1.0, 11, snr_db=30), 128, "equispaced", 4),
    (A("ring", 12, "random", 0.9, 8, snr_db=36), 128, "equispaced", 3.3),
    (A("wires", 10, "poly", snr_db=32), 128, "equispaced", 3),
]
REPORT_UNC = [
    (A("loops", 8, "offres", 2.0, snr_db=35), 128, "poisson", 8),
    (A("loops", 10, "random", 0.7, 5, snr_db=42), 128, "poisson", 8),
    (A("loops", 8, "offres", 4.0, snr_db=28), 128, "equispaced", 3.3),
    (A("loops", 12, "poly", snr_db=46), 128, "poisson", 6),
    (A("loops", 16, "offres", 2.5, snr_db=38), 128, "gaussian1d", 8),
    (A("loops", 8, "random", 1.0, 8, snr_db=32, noise_rho=0.2), 128, "equispaced", 4),
]
FIXED = (1, 2, 3, 5, 7, 10)
ORACLE = (1, 2, 3, 5, 7)  # the issue's best-fixed-count set; the report runs only these
LAMBDA_GRID = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]


def parse_opts(spec: str) -> dict:
    """'pilot_steps=10,holdout_frac=0.2' → ReconOptions overrides; 'default' → none."""
    out: dict = {}
    for item in filter(None, spec.split(",")):
        if item == "default":
            continue
        k, v = item.split("=")
        out[k] = float(v) if any(c in v for c in ".e") else int(v)
    return out


def score(img: np.ndarray, truth: torch.Tensor) -> dict:
    x = torch.as_tensor(np.asarray(img), dtype=torch.float32)
    m = head_mask(truth)
    return {"psnr": round(float(np.mean(masked_psnr(x, truth, m))), 3),
            "ssim": round(float(np.mean([ssim(a.numpy(), r.numpy()) for a, r in zip(x, truth, strict=True)])), 4)}


def cond_name(acq: Acquisition, matrix: int, kind: str, R: float) -> str:
    return f"{acq.name()}/{matrix}/{kind}x{R:g}"


def row_mask(matrix: int, kind: str, R: float) -> np.ndarray:
    """The sampling mask of every suite row: seed 11; equispaced masks keep 8 % of the lines (at least 8) as ACS,
    the other kinds the module default."""
    acs = max(8, int(round(0.08 * matrix))) if kind == "equispaced" else None
    return make_mask(kind, (matrix, matrix), R, acs=acs, seed=11).mask


def scan(ref: torch.Tensor, cond) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fully sampled k-space (S, C, H, W), reference = RSS of the noise-free coil images (S, H, W), mask (H, W)) of
    a (condition, volume) row: the acquisition simulated with seed 5, the mask of :func:`row_mask`."""
    acq, matrix, kind, R = cond
    k, truth = simulate_acquisition(ref.numpy(), acq, seed=5)
    return k, truth, row_mask(matrix, kind, R)


def clean_kspace(ref: torch.Tensor, acq: Acquisition) -> np.ndarray:
    """The noise-free k-space of :func:`scan`'s acquisition (the same draws but the noise)."""
    return simulate_acquisition(ref.numpy(), dataclasses.replace(acq, snr_db=float("inf")), seed=5)[0]


def run_condition(prior, vol: str, ref: torch.Tensor, cond, args, lambdas: dict) -> dict:
    acq, matrix, kind, R = cond
    k, truth_np, mask = scan(ref, cond)
    truth = torch.as_tensor(truth_np)
    y = k * mask
    row: dict = {"condition": cond_name(acq, matrix, kind, R), "volume": vol, "slices": len(ref), "steps": args.steps,
                 "coil_family": acq.coil, "phase_family": acq.phase, "achieved_R": float(mask.size / mask.sum())}
    base = Reconstructor(prior, ReconOptions(method="sense"))
    zf = Reconstructor(prior, ReconOptions(method="zero-filled")).reconstruct(k, mask, "sense").images
    row["zero-filled"] = score(zf, truth)
    # coil compression as the CLI does it (> 12 coils): maps estimated on the compressed data inside reconstruct
    row["CG-SENSE"] = score(base.reconstruct(k, mask, "sense").images, truth)
    yc, maps, scale = cs_inputs(k, mask, zf)
    # the noise actually added (the same draws but the noise: one slice per volume, so the random stream matches)
    clean = clean_kspace(ref, acq)
    row["noise"] = {"true": float(np.sqrt(np.mean(np.abs(k - clean) ** 2))),
                    "estimated": float(estimate_kspace_noise(torch.as_tensor(y), mask).mean())}
    if args.tune_cs:
        row["cs_grid"] = {str(lam): score(cs_l1wavelet(yc, maps, mask, lam * scale), truth)["psnr"]
                          for lam in LAMBDA_GRID}
    lam = lambdas.get(kind)
    if lam is not None:
        t = time.time()
        row["CS"] = {**score(cs_l1wavelet(yc, maps, mask, lam * scale), truth), "lambda": lam,
                     "s_per_slice": round((time.time() - t) / len(ref), 2)}
    # the self-tuned variants first: the fixed counts then run at the phase prior the first one chose
    resid = 0.005
    for spec in filter(None, args.variants.split(";")):
        rec = Reconstructor(prior, ReconOptions(seed=0, **{"steps": args.steps, **parse_opts(spec)}))
        t = time.time()
        img = rec.reconstruct(k, mask, "sense").images
        row[f"self:{spec}"] = {**score(img, truth), "s_per_slice": round((time.time() - t) / len(ref), 2),
                               "tuning": rec.tuning.summary() if rec.tuning else rec.tuning_note}
        if spec == args.variants.split(";")[0]:
            resid = rec.phase_resid()
    row["fixed_phase_resid"] = resid
    for n in () if args.variants_only else FIXED if args.split == "tune" else ORACLE:
        t = time.time()
        img = Reconstructor(prior, ReconOptions(n_cg=n, phase_resid=resid, seed=0, steps=args.steps)
                            ).reconstruct(k, mask, "sense").images
        row[f"cg{n}"] = {**score(img, truth), "s_per_slice": round((time.time() - t) / len(ref), 2)}
    if not args.variants_only:  # the previous defaults: 7 CG iterations, phase prior 0.005
        row["old_default"] = row["cg7"] if resid == 0.005 else score(
            Reconstructor(prior, ReconOptions(n_cg=7, phase_resid=0.005, seed=0, steps=args.steps)
                          ).reconstruct(k, mask, "sense").images, truth)
    # the pilot's hold-out error for every count and pilot length (selection rules are then compared offline:
    # the self-tuned run with count n is the fixed-count run with n, same seed)
    probe = Reconstructor(prior, ReconOptions(seed=0, phase_resid=resid, steps=args.steps))
    row["pilot_errors"] = {}
    for ps in [int(v) for v in args.pilot_steps.split(",") if v and not args.variants_only]:
        pilot = probe.pilot(k, mask, "sense", None, [0], steps=ps)
        if pilot is not None:
            row["pilot_errors"][str(ps)] = {str(n): pilot[0](n) for n in FIXED}
            row["holdout"] = pilot[1]
    return row


def table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    variants = sorted({k for r in rows for k in r if k.startswith("self:")})
    hdr = ["condition", "volume", "zero-filled", "CS", "cg7 (old)", "oracle {1,2,3,5,7}"] + [v for v in variants] + ["Δ oracle", "Δ CS"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    worst_o = {v: 1e9 for v in variants}
    worst_cs = {v: 1e9 for v in variants}
    for r in rows:
        best_n = max(ORACLE, key=lambda n: r[f"cg{n}"]["psnr"])
        oracle = r[f"cg{best_n}"]["psnr"]
        cs = r.get("CS", {}).get("psnr", float("nan"))
        cells = [r["condition"], r["volume"], f"{r['zero-filled']['psnr']:.2f}", f"{cs:.2f}", f"{r['cg7']['psnr']:.2f}",
                 f"{oracle:.2f} ({best_n})"]
        for v in variants:
            if v not in r:
                cells.append("-")
                continue
            t = r[v].get("tuning")
            n = t.get("cg_iters") if isinstance(t, dict) else "fixed"
            cells.append(f"{r[v]['psnr']:.2f} ({n})")
            worst_o[v] = min(worst_o[v], r[v]["psnr"] - oracle)
            worst_cs[v] = min(worst_cs[v], r[v]["psnr"] - cs)
        v0 = variants[0]
        cells += [f"{r[v0]['psnr'] - oracle:+.2f}", f"{r[v0]['psnr'] - cs:+.2f}"] if v0 in r else ["-", "-"]
        print("| " + " | ".join(cells) + " |")
    for v in variants:
        print(f"worst case {v}: vs oracle {worst_o[v]:+.2f} dB, vs CS {worst_cs[v]:+.2f} dB")


def report(path: Path, second: Path | None, steps: int, tol: float) -> None:
    """The docs table: per condition and volume, zero-filled, CS, the old fixed defaults (7; 5 = the release
    before), the self-tuned default and the oracle; worst cases in bold. The self-tuned column is the actual run
    from ``second`` (``--variants-only`` pass, which also times CS in the same run) where present, else the
    fixed-count run with the count the rule picks from the recorded pilot errors (the same image: the final run
    with count n is the fixed-count run with n, same seed)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    extra = {}
    if second is not None and second.exists():
        for r in map(json.loads, filter(str.strip, second.read_text().splitlines())):
            extra[(r["condition"], r["volume"])] = r
    out = []
    for r in rows:
        x = extra.get((r["condition"], r["volume"]), {})
        errs = {int(n): e for n, e in r["pilot_errors"][str(steps)].items()} if r.get("pilot_errors") else None
        actual = x.get("self:default") or r.get("self:default")
        tuned = actual["tuning"]["cg_iters"] if actual and isinstance(actual.get("tuning"), dict) else None
        rederived = False
        if tuned is not None:  # the run's own pilot errors, replayed with today's candidates and rule
            run_errs = {int(n): e for n, e in actual["tuning"]["holdout_error"].items()}
            now = choose_count(unimodal_search(run_errs.__getitem__, CG_CANDIDATES, 3)[1], tol)
            if now != tuned and f"cg{now}" in r:
                actual = {**r[f"cg{now}"], "tuning": {**actual["tuning"], "cg_iters": now}}
                tuned, rederived = now, True
        pick = choose_count(unimodal_search(errs.__getitem__, FIXED, 3)[1], tol) if errs else (tuned or 7)
        chosen = tuned if tuned is not None else pick
        best_n = max(ORACLE, key=lambda n: r[f"cg{n}"]["psnr"])
        out.append({
            "condition": r["condition"], "volume": r["volume"], "zf": r["zero-filled"]["psnr"],
            "cs": x.get("CS", r.get("CS", {})).get("psnr"), "cg7": r.get("old_default", r["cg7"])["psnr"],
            "cg5": r["cg5"]["psnr"],
            "self": actual["psnr"] if actual else r[f"cg{pick}"]["psnr"], "rederived": rederived,
            "self_resid": actual["tuning"].get("phase_resid", 0.005) if actual and isinstance(actual.get("tuning"), dict) else 0.005, "n": chosen, "lookup_n": pick,
            "oracle": r[f"cg{best_n}"]["psnr"], "oracle_n": best_n,
            "t_self": actual.get("s_per_slice") if actual and not rederived else None,
            "t_cs": x.get("CS", r.get("CS", {})).get("s_per_slice"), "resid": r.get("fixed_phase_resid", 0.005),
        })
    worst = {k: min((o[k] - o["oracle"]) for o in out) for k in ("cg7", "cg5", "self")}
    worst_any = min(o["self"] - max(o["oracle"], o["cg7"]) for o in out)
    worst_cs = min((o["self"] - o["cs"]) for o in out if o["cs"] is not None) if any(o["cs"] for o in out) else None
    print("| condition | volume | zero-filled | CS (λ from tune) | old default (7 CG, prior 0.005) | fixed 5 | "
          "self-tuned (count, prior) | oracle: best of {1,2,3,5,7} | self − oracle | self − CS | s/slice self / CS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for o in out:
        d_o = o["self"] - o["oracle"]
        d_cs = o["self"] - o["cs"] if o["cs"] is not None else None
        cells = [o["condition"], o["volume"], f"{o['zf']:.2f}", f"{o['cs']:.2f}" if o["cs"] is not None else "-",
                 f"{o['cg7']:.2f}", f"{o['cg5']:.2f}", f"{o['self']:.2f} ({o['n']}, {o['self_resid']:g}){' †' if o['rederived'] else ''}", f"{o['oracle']:.2f} ({o['oracle_n']})",
                 (f"**{d_o:+.2f}**" if d_o == worst["self"] else f"{d_o:+.2f}"),
                 ("-" if d_cs is None else f"**{d_cs:+.2f}**" if d_cs == worst_cs else f"{d_cs:+.2f}"),
                 f"{o['t_self']:.1f} / {o['t_cs']:.1f}" if o["t_self"] is not None and o["t_cs"] is not None else "-"]
        print("| " + " | ".join(cells) + " |")
    print(f"\nworst case against the oracle: self-tuned {worst['self']:+.2f} dB, fixed 7 {worst['cg7']:+.2f} dB, "
          f"fixed 5 {worst['cg5']:+.2f} dB; self-tuned against the best of the oracle and the old default (the other "
          f"phase prior): {worst_any:+.2f} dB" + (f"; self-tuned against CS: {worst_cs:+.2f} dB" if worst_cs is not None else ""))
    mismatch = [o for o in out if o["n"] != o["lookup_n"]]
    if mismatch:
        print(f"note: {len(mismatch)} row(s) where the actual run chose another count than the recorded pilots")
    if any(o["rederived"] for o in out):
        print("† the run's own recorded pilot errors replayed with the current candidates (1, 2, 3, 5, 7): the "
              "image is the fixed-count run with that count and the run's phase prior (same seed, bit-identical)")


def rules(path: Path, tolerances=(0.0, 0.01, 0.02, 0.05, 0.1), candidates=FIXED) -> None:
    """Compare selection rules offline on recorded pilot errors: for each pilot length and tolerance, the count
    the default search (start 3, walk down or up) + tolerance picks, its PSNR (the fixed-count run with that
    count), and the loss against the oracle {1, 2, 3, 5, 7}: worst case and mean over the rows, pilots tried."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("pilot_errors")]
    lengths = sorted(set.intersection(*[{int(ps) for ps in r["pilot_errors"]} for r in rows]))
    print("| pilot steps | tolerance | worst Δ oracle (dB) | mean Δ oracle | rows within 0.3 dB | mean pilots |")
    print("|---|---|---|---|---|---|")
    for ps in lengths:
        for tol in tolerances:
            deltas, tried = [], []
            for r in rows:
                errs = {int(n): e for n, e in r["pilot_errors"][str(ps)].items()}
                _, seen = unimodal_search(errs.__getitem__, candidates, 3)
                n = choose_count(seen, tol)
                oracle = max(r[f"cg{m}"]["psnr"] for m in ORACLE)
                deltas.append(r[f"cg{n}"]["psnr"] - oracle)
                tried.append(len(seen))
            print(f"| {ps} | {tol:g} | {min(deltas):+.2f} | {np.mean(deltas):+.2f} | "
                  f"{sum(d >= -0.3 for d in deltas)}/{len(deltas)} | {np.mean(tried):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--out", default=None)
    ap.add_argument("--conditions", default=None, help="comma list of condition indices (default: all)")
    ap.add_argument("--volumes", default=None, help="comma list of volume names (default: every volume of the split)")
    ap.add_argument("--variants", default="default", help="';'-separated ReconOptions overrides for the self-tuned runs")
    ap.add_argument("--pilot-steps", default="6,20", help="pilot lengths whose hold-out errors are recorded for every count")
    ap.add_argument("--variants-only", action="store_true",
                    help="only CS and the self-tuned variants, timed in the same run (a second pass, its own --out)")
    ap.add_argument("--cs-lambdas", default="benchmarks/results/cs_lambdas_suite.json")
    ap.add_argument("--tune-cs", action="store_true", help="tune split: run the CS lambda grid and store the best per mask kind")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="sampler steps of every diffusion run (default: the release's)")
    ap.add_argument("--report", default=None, help="print the docs table of a results file and exit")
    ap.add_argument("--second", default=None, help="with --report: the --variants-only results (CS timing, actual self-tuned runs)")
    ap.add_argument("--rule-steps", type=int, default=6, help="with --report: the pilot length of the lookup")
    ap.add_argument("--rule-tol", type=float, default=0.0, help="with --report: the tolerance of the lookup")
    ap.add_argument("--candidates", default="1,2,3,5,7,10", help="with --rules: the counts the search may choose")
    ap.add_argument("--rules", default=None, help="compare selection rules offline on a results file and exit")
    ap.add_argument("--table", default=None, help="print the markdown table of a results file and exit")
    a = ap.parse_args()
    if a.table:
        table(Path(a.table))
        return
    if a.rules:
        rules(Path(a.rules), candidates=tuple(int(c) for c in a.candidates.split(",")))
        return
    if a.report:
        report(Path(a.report), Path(a.second) if a.second else None, a.rule_steps, a.rule_tol)
        return
    torch.set_num_threads(a.threads)
    prior, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    lam_path = Path(a.cs_lambdas)
    lambdas = json.loads(lam_path.read_text()) if lam_path.exists() else {}
    out = Path(a.out or f"benchmarks/results/suite_{a.split}.jsonl")
    done = set()
    if out.exists():
        done = {(r["condition"], r["volume"]) for r in map(json.loads, filter(str.strip, out.read_text().splitlines()))}
    conds = CONDITIONS[a.split]
    idx = [int(i) for i in a.conditions.split(",")] if a.conditions else range(len(conds))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    for i in idx:
        cond = conds[i]
        matrix = cond[1]
        for vol, ref in load_split(a.split, matrix, 256.0 / matrix, 1).items():
            if (cond_name(cond[0], *cond[1:]), vol) in done or (a.volumes and vol not in a.volumes.split(",")):
                continue
            row = {**run_condition(prior, vol, ref, cond, a, lambdas), "machine": machine}
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps({k: v for k, v in row.items() if k not in ("cs_grid",)}), flush=True)
    if a.tune_cs:
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        for kind in sorted({r["condition"].split("/")[-1].split("x")[0] for r in rows}):
            grids = [r["cs_grid"] for r in rows if r["condition"].split("/")[-1].startswith(kind) and "cs_grid" in r]
            # the lambda with the best worst case over the tune conditions of this mask kind
            lambdas[kind] = max(LAMBDA_GRID, key=lambda lam: min(g[str(lam)] for g in grids))
        lam_path.write_text(json.dumps(lambdas, indent=1))
        print("CS lambdas:", lambdas)


if __name__ == "__main__":
    main()
