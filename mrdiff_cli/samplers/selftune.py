"""Per-scan self-tuning of the consistency strength by k-space hold-out cross-validation.

The fast sampler's consistency step (:class:`~mrdiff_cli.samplers.dc.ProximalDC`) runs ``n`` CG iterations on
``||A x - y||^2`` from the denoised estimate at every step. Stopping CG early is the regulariser (the
semi-convergence of CG on an ill-posed problem): the first iterations bring in the well-determined part of the
data, later ones fit the noise and whatever the model gets wrong (estimated coil maps, phase) and amplify it by
the g-factor. How many iterations pay depends on the scan, not on a constant: on the team's independent
evaluation the best fixed count ranged from 1 (30 dB) to 5 (48 dB), and on the acquisition suite
(``benchmarks/suite.py``) from 2 to 10.

The rule here reads the scan itself:

1. :func:`split_holdout` hides a seeded random fraction of the measured samples outside the fully sampled centre
   (whole phase-encode lines for 1D Cartesian masks, so that the hidden samples must be inferred the way the
   truly missing ones are — at least ``min_hold`` = 4 lines; where 15 % of the lines is fewer than 4, still 4
   if that is at most :data:`PILOT_LINE_CAP` of them; single samples for 2D masks, and for 1D masks with fewer
   lines). The centre is kept, so the coil maps do not change.
2. A short *pilot* (``pilot_steps`` sampler steps on one or two slices) runs on the remaining samples with a
   candidate count; :func:`holdout_error` scores its final estimate by how well ``F S x`` predicts the hidden
   samples (relative squared error; the noise on the hidden samples adds the same amount for every
   candidate). The hidden samples never enter the pilot, so this is a proper validation. Every candidate's
   pilot draws the same noise (common random numbers), so the comparison is not swamped by sampler noise.
3. :func:`unimodal_search` walks the sorted candidates (1, 2, 3, 5, 7, 10, 15) from a starting count towards lower
   error and stops at the first count whose neighbour is worse (3-5 pilots instead of all of them); a step above 7
   is kept only if its error is at least 10 % lower than the previous count's (UPPER_COUNT_MARGIN).
4. The real run uses the chosen count with all the data.

On regular 1D masks (equispaced lines, :func:`regular_line_spacing`) a hidden measured line sits in a gap twice
as wide as any missing line of the scan, so its error is bias that more iterations keep reducing, while in the full
run the missing lines' bias has flattened and the noise the iterations unfold into them (the g-factor) grows.
There the count can be scored by a *parametric bootstrap* instead (``count_pilot`` bootstrap / auto): a
reference image from a full-data pilot at :data:`BOOTSTRAP_REF_CG` iterations, the scan simulated from it with the
scan's own mask, coil maps and estimated noise level, and the count whose pilot recovers the reference best
(:func:`bootstrap_error`).
It sees the amplified noise with the scan's own geometry; it understates the bias (the reference is the prior's
own kind of image), which is why it is not used on random masks, where the hold-out pilot is right more often
(docs/benchmarks.md, "Count selection at low SNR").

Measured alternatives that did *not* work (docs/science.md): choosing the count per sampler step greedily by the
same hold-out error (-2.5 to -17 dB against the best fixed count: the best-predicting estimate at a step is not
the one that leads to the best final image), and a noise-only rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..ops.fft import fft2c
from ..ops.operators import LinearOperator
from .dc import ProximalDC, _bnorm2

# counts the pilot may choose. 10 is left out: on the tune suite it raised the worst case against the best fixed
# count from -0.77 to -1.73 dB (the hold-out error keeps falling with more CG when the prior smooths away phase the
# data carry, while the magnitude gets noisier), for +0.8 dB on one row (benchmarks/suite.py --rules)
CG_CANDIDATES = (1, 2, 3, 5, 7)
# the count pilots' counts for one-sample runs (hold-out and, since a second test, the bootstrap of regular masks,
# whose reference stays a 7-CG run, with a top check at 15: Reconstructor._top_check; K > 1 samples keep
# CG_CANDIDATES). 10 and 15 came back
# with the complex prior and the adaptive maps: at high SNR the data determine more than 7 CG per step enforce
# (fresh tune rows +0.78 dB mean, up to +4.1; docs/benchmarks.md "The top of the count candidates"), guarded by
# UPPER_COUNT_MARGIN: without it a step taken for a 2 % lower hold-out error cost 0.53 dB on a 27 dB row.
HOLDOUT_CG_CANDIDATES = (1, 2, 3, 5, 7, 10, 15)
# a step above max(CG_CANDIDATES) needs a hold-out error this much lower than the previous count's
UPPER_COUNT_MARGIN = 0.1
# the count pilot hides 4 whole lines of a 1D mask whose 15 % is fewer than 4 lines, as long as 4 is at most this
# share of its lines (equispaced x4 / Gaussian 1D x4 at 128²). Single samples on the measured lines, the fallback
# before, are predicted from the rest of their own line — an easier task than a missing line — and the pilot chose
# 2-3 CG where 5-7 was best (-0.6 to -2.45 dB on all six such low-SNR tune rows); with whole lines the 44 tune
# rows' worst case went from -2.45 to -1.32 dB, mean -0.42 to -0.21 (docs/benchmarks.md, "Count selection at low
# SNR"). The uncertainty calibration's split (another stream) keeps the fallback it was fitted with.
PILOT_LINE_CAP = 0.25
# the CG count of the bootstrap's reference reconstruction. 5 (written down before the first study) understated
# the bias and picked one count low on fresh rows; 7 (a reference with more of the data's own detail) passed its
# test on 12 fresh regular-mask tune rows (TUNE_REG4: worst -1.09 vs the hold-out's -1.17 dB, mean +0.28 dB, no
# row below it; docs/benchmarks.md)
BOOTSTRAP_REF_CG = 7


@dataclass
class HoldoutSplit:
    """The pilot's sampling: ``fit`` (what the pilot sees) and ``hold`` (what it must predict), (H, W) float32."""

    fit: np.ndarray
    hold: np.ndarray
    kind: str  # "lines" (1D Cartesian), "points" (2D masks) or "points on lines" (1D masks with few lines)
    n_hold: int  # hidden lines or points
    n_candidates: int  # measured lines / points outside the calibration centre


def _sampled_lines(m: np.ndarray) -> int | None:
    """The axis (0 rows, 1 columns) along which a 2D mask is made of whole lines, else None."""
    if m.any() and np.array_equal(m.any(axis=0), m.all(axis=0)) and m.all(axis=0).any():
        return 1  # every sampled column is fully sampled: phase-encode lines along W
    if m.any() and np.array_equal(m.any(axis=1), m.all(axis=1)) and m.all(axis=1).any():
        return 0
    return None


def regular_line_spacing(mask: np.ndarray) -> float | None:
    """The mean spacing of the measured lines outside the calibration centre of a *regular* 1D mask (whole lines,
    a centre of at least 3 lines, and the spacings between neighbouring outer lines within one line between their
    10th and 90th percentiles: equispaced, not Gaussian 1D); None for any other mask."""
    from ..ops.masks import acs_shape

    m = np.asarray(mask) > 0
    if m.ndim != 2:
        return None
    axis = _sampled_lines(m)
    if axis is None:
        return None
    mm = m if axis == 1 else m.T
    W = mm.shape[1]
    aw = acs_shape(mm)[1]
    if aw < 3:
        return None
    lo = W // 2 - aw // 2
    lines = mm.all(axis=0)
    centre = np.zeros(W, dtype=bool)
    centre[lo:lo + aw] = True
    outer = np.flatnonzero(lines & ~centre)
    spacings = np.concatenate([np.diff(outer[outer < lo]), np.diff(outer[outer >= lo + aw])])
    if spacings.size < 4:
        return None
    q10, q90 = np.percentile(spacings, [10, 90])
    return float(spacings.mean()) if q90 - q10 <= 1 else None


def bootstrap_error(x: torch.Tensor, maps: torch.Tensor, k_ref: torch.Tensor) -> torch.Tensor:
    """(B,) relative squared error of a bootstrap pilot's estimate ``x`` (B, H, W) against the reference k-space
    ``k_ref`` = F S x_ref (B, C, H, W) over all of k-space (the coil images' error, Parseval)."""
    d = (fft2c(maps * x.unsqueeze(-3)) - k_ref).abs().square().sum(dim=(-3, -2, -1))
    return d / k_ref.abs().square().sum(dim=(-3, -2, -1)).clamp_min(1e-30)


def split_holdout(mask: np.ndarray, frac: float, seed: int, min_hold: int = 4, stream: int = 0,
                  line_cap: float = 0.0) -> HoldoutSplit | None:
    """Hide ``frac`` of the measured samples outside the calibration centre (whole lines for a 1D mask with at
    least ``min_hold`` lines to hide, else single samples). ``line_cap`` > 0: where ``frac`` of the lines is fewer
    than ``min_hold``, hide ``min_hold`` whole lines anyway if that is at most ``line_cap`` of them.

    Returns None when fewer than ``min_hold`` samples would be hidden (nothing to validate on: the caller falls
    back to a fixed count). Seeded: the same (mask, frac, seed, stream) gives the same split; another ``stream``
    an independent one (the uncertainty calibration hides other samples than the CG-count pilot chose on)."""
    from ..ops.masks import acs_shape

    m = np.asarray(mask, dtype=np.float32) > 0
    if m.ndim != 2:
        raise ValueError(f"split_holdout needs an (H, W) mask, got {m.shape}")
    H, W = m.shape
    ah, aw = acs_shape(m)
    centre = np.zeros_like(m)
    if ah and aw:
        centre[H // 2 - ah // 2: H // 2 - ah // 2 + ah, W // 2 - aw // 2: W // 2 - aw // 2 + aw] = True
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % 2**63, 0x5E1F] + ([int(stream)] if stream else [])))
    hold = np.zeros_like(m)
    axis = _sampled_lines(m)
    kind = "points"
    if axis is not None:
        full = m.all(axis=1 - axis) & ~centre.any(axis=1 - axis)  # measured lines outside the centre
        cand = np.flatnonzero(full)
        n = int(round(frac * cand.size))
        if n < min_hold <= line_cap * cand.size:
            n = min_hold
        if n >= min_hold:
            pick = rng.choice(cand, size=n, replace=False)
            if axis == 1:
                hold[:, pick] = True
            else:
                hold[pick, :] = True
            return HoldoutSplit((m & ~hold).astype(np.float32), hold.astype(np.float32), "lines", n, int(cand.size))
        kind = "points on lines"  # too few lines to hide whole ones: hide single samples of them instead
    cand = np.flatnonzero(m & ~centre)
    n = int(round(frac * cand.size))
    if n < min_hold:
        return None
    hold.reshape(-1)[rng.choice(cand, size=n, replace=False)] = True
    return HoldoutSplit((m & ~hold).astype(np.float32), hold.astype(np.float32), kind, n, int(cand.size))


def holdout_error(x: torch.Tensor, maps: torch.Tensor, hold: torch.Tensor, y_hold: torch.Tensor) -> torch.Tensor:
    """(B,) relative squared error ||hold * F(S x) - y_hold||^2 / ||y_hold||^2 of images x (B, H, W) with coil
    maps (B, C, H, W) against the hidden samples y_hold (B, C, H, W) (same units as x)."""
    pred = hold * fft2c(maps * x.unsqueeze(-3))
    return _bnorm2(pred - y_hold) / _bnorm2(y_hold).clamp_min(1e-30)


class LastEstimate(ProximalDC):
    """``ProximalDC`` that keeps its last output (the sampler's final estimate, before any projection)."""

    last: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, *, step: int = 0, n_steps: int = 1,
                 sigma: float = 0.0) -> torch.Tensor:
        self.last = super().__call__(x, y, A, step=step, n_steps=n_steps, sigma=sigma)
        return self.last


def unimodal_search(evaluate: Callable[[int], float], candidates: Sequence[int], start: int) -> tuple[int, dict[int, float]]:
    """argmin of ``evaluate`` over sorted ``candidates``, assuming one minimum: evaluate ``start`` and its upper
    neighbour, walk towards the lower value while it keeps falling. Returns (best, every value evaluated)."""
    cands = sorted(int(c) for c in candidates)
    seen: dict[int, float] = {}

    def f(i: int) -> float:
        if cands[i] not in seen:
            seen[cands[i]] = float(evaluate(cands[i]))
        return seen[cands[i]]

    i = min(range(len(cands)), key=lambda j: abs(cands[j] - start))
    if len(cands) == 1:
        f(0)
        return cands[0], seen
    step = 1 if i + 1 < len(cands) and f(i + 1) < f(i) else -1
    if step == 1:
        i += 1
    while 0 <= i + step < len(cands) and f(i + step) < f(i):
        i += step
    return cands[i], seen


def choose_count(errors: dict[int, float], tolerance: float = 0.0) -> int:
    """The fewest CG iterations whose hold-out error is within ``(1 + tolerance)`` x the least error seen (a
    one-standard-error-style rule: among counts the validation cannot tell apart, the more regularised one)."""
    least = min(errors.values())
    return min(n for n, e in errors.items() if e <= least * (1.0 + tolerance))


@dataclass
class Tuning:
    """What the pilot chose and why (written to the metrics JSON)."""

    n_cg: int
    errors: dict[int, float]
    split: dict[str, Any]
    pilot_slices: list[int]
    pilot_steps: int
    extra: dict[str, Any] = field(default_factory=dict)

    method: str = "k-space hold-out cross-validation"
    # the bootstrap's relative error of every count tried (None where the hold-out chose the count)
    bootstrap: dict[int, float] | None = None
    bootstrap_ref_cg: int = BOOTSTRAP_REF_CG  # the CG count of the bootstrap's reference reconstruction

    def summary(self) -> dict[str, Any]:
        """JSON-ready evidence: the choice, the relative hold-out error of every count tried, the hidden samples
        (and, where the bootstrap chose the count, its error per count)."""
        boot = ({"bootstrap_error": {str(k): round(v, 6) for k, v in sorted(self.bootstrap.items())},
                 "bootstrap_reference_cg": self.bootstrap_ref_cg} if self.bootstrap is not None else {})
        return {
            "method": self.method,
            "cg_iters": self.n_cg,
            "holdout_error": {str(k): round(v, 6) for k, v in sorted(self.errors.items())},
            "holdout": self.split,
            "pilot_slices": self.pilot_slices,
            "pilot_steps": self.pilot_steps,
            **boot,
            **self.extra,
        }


@dataclass
class HoldoutSpread:
    """How far K posterior samples drawn *without* the hidden samples are from them, against how much the samples
    disagree there (sums over the hidden k-space values of one or more slices; :func:`holdout_spread`).

    ``err2``:    sum |mean_k P_k - y|^2 (P_k: sample k's prediction F S x_k; y: the hidden data)
    ``spread2``: sum of the unbiased per-value variance (1 / (K - 1)) sum_k |P_k - mean_k P_k|^2
    ``noise2``:  n_values x sigma_n^2, the part of ``err2`` the measurement noise of y explains
    The squared error of the posterior mean itself (noise and the finite-K part of the sample mean removed) is
    :meth:`mean_err2` = ``err2 - noise2 - spread2 / K``; :meth:`ratio2` turns it into the factor by which the
    spread must be scaled to match the error of a K'-sample mean. For exact samples of a calibrated posterior,
    mean_err2 = spread2 in expectation (the truth is one more draw around the posterior mean) and the ratio is
    1 + 1/K'; a prior that is too sure of itself gives a larger ratio.
    """

    err2: float
    spread2: float
    noise2: float
    n_values: int
    samples: int

    def mean_err2(self, remove_noise: bool = True) -> float:
        """The squared error of the posterior mean at the hidden values; ``remove_noise=False``: against the noisy
        hidden data (the noise counted as error, as against a reference image from noisy fully sampled data)."""
        return max(0.0, self.err2 - (self.noise2 if remove_noise else 0.0) - self.spread2 / self.samples)

    def ratio2(self, k_final: int, remove_noise: bool = True) -> float:
        """(expected squared error of the mean of ``k_final`` samples) / (per-sample spread^2) at the hidden values:
        mean_err2 / spread2 + 1 / k_final. Infinite when the samples do not spread at all."""
        if self.spread2 <= 0:
            return math.inf
        return self.mean_err2(remove_noise) / self.spread2 + 1.0 / max(1, int(k_final))

    def __add__(self, other: HoldoutSpread) -> HoldoutSpread:
        return HoldoutSpread(self.err2 + other.err2, self.spread2 + other.spread2, self.noise2 + other.noise2,
                             self.n_values + other.n_values, min(self.samples, other.samples))


def holdout_spread(preds: torch.Tensor, y_hold: torch.Tensor, hold: torch.Tensor,
                   noise_std: torch.Tensor | None = None) -> list[HoldoutSpread]:
    """Per slice :class:`HoldoutSpread` of K >= 2 samples' k-space predictions ``preds`` (K, B, C, H, W) complex
    against the hidden data ``y_hold`` (B, C, H, W) on the hidden locations ``hold`` (H, W); ``noise_std`` (B,):
    the complex noise std of one k-space value (E|n|^2 = sigma^2), None or 0 when unknown (then the noise counts
    as error: a conservative scale)."""
    K = int(preds.shape[0])
    if K < 2:
        raise ValueError("holdout_spread needs K >= 2 samples")
    h = hold.to(preds.device).bool()
    mean = preds.mean(dim=0)
    err2 = (mean - y_hold).abs().square()[..., h].sum(dim=(-2, -1))  # (B,)
    spread2 = (preds - mean).abs().square()[..., h].sum(dim=(0, -2, -1)) / (K - 1)
    n_values = int(h.sum()) * int(preds.shape[2])
    out = []
    for b in range(preds.shape[1]):
        sn = float(noise_std[b]) if noise_std is not None else 0.0
        out.append(HoldoutSpread(float(err2[b]), float(spread2[b]), n_values * sn * sn, n_values, K))
    return out
