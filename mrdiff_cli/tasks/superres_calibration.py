"""Per-scan calibration of super-resolution std maps from an extrapolation ring (``superres --samples K``).

The raw spread of K super-resolution samples is not the error of their mean: the samples share the prior's bias,
and how much narrower than the error they are depends on the scan (contrast, noise, factor), not on a constant.
As for reconstruction (:mod:`.scan_calibration`), the scan itself says how much narrower, from data the samples
did not see. In super-resolution the measured data are the centre (h, w) block of the (H, W) k-space and the
unknown is everything outside it; the natural hold-out is the **extrapolation ring**: :func:`measure_ring_spread`
runs the same sampler from a smaller centre block (the inner ``inner`` x (h, w), rounded to even sizes,
:func:`inner_block`) of one or two slices, and compares the samples' predictions in the ring between that block
and the measured one with the measured values there (:func:`~mrdiff_cli.samplers.selftune.holdout_spread`):

    e^2      = sum_ring |mean_k P_k - y|^2  -  n sigma_n^2  -  spread^2 / K     (P_k: the block of F x_k)
    spread^2 = sum_ring (1 / (K - 1)) sum_k |P_k - mean_k P_k|^2
    rho^2    = e^2 / spread^2 + 1 / K_final

(sigma_n: the low-resolution image's noise std, ``tasks.superres.lowres_noise_sigma``, in k-space units). The std
map of the full run (all data, K_final samples, raw sample variance v) becomes

    std = factor * sqrt(rho^2 * pool(v) + w * sigma_n^2)                       (:meth:`RingCalibration.std`)

``pool``: the variance averaged over a pool x pool window (``tasks.calibration.pool_variance``); ``sigma_n^2``:
the per-pixel variance the low-resolution image's noise puts into the zero-padded image (the same intensity,
band-limited: sigma_n^2 per pixel), ``w`` the fraction of it the error carries (every sample reproduces the same
noisy data, so that part is not in their spread). ``factor``, ``pool``, ``w`` and whether the noise is removed
from the ring residual are the constants, fitted over the tune split (``benchmarks/superres_uncertainty.py``) and
stored in the VDM bundle's config.json (``superres_calibration``; :func:`calibration_from_bundle`); without
them the defaults of :class:`RingCalibration` apply.

What is approximate: the ring lies just *inside* the measured cut-off, the unknown just outside it; the prior's
error-to-spread ratio there is assumed to carry over (``factor`` corrects the average mismatch over the tune
split). The inner data of a magnitude input are a crop of the magnitude image's k-space, not the k-space of a
lower-resolution magnitude acquisition (the hold-out run uses the full run's consistency all the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from ..ops.operators import crop_kspace
from ..ops.superres import SuperResOp, centre_mask
from ..samplers.noise import sample_generator
from ..samplers.selftune import holdout_spread
from .scan_calibration import HoldoutConstants, HoldoutRecord, finite_number

RING_INNER = 0.85  # the hold-out run sees the inner 0.85 h x 0.85 w of the measured block
RING_SAMPLES = 4  # K_cal = min(RING_SAMPLES, K)
# the hold-out run's sample streams: sample_generator(seed, RING_SAMPLE - k, slice), apart from the output's 0..K-1
# (and from reconstruction's pilot streams, which count down from 2**31 - 1)
RING_SAMPLE = 2**31 - 1001
BUNDLE_KEY = "superres_calibration"  # config.json key of the fitted constants (a top-level key; see the docs)
CALIBRATIONS = ("model", "none")  # SuperresOptions.calibration: the ring calibration, or the raw spread


def inner_block(hw: Sequence[int], frac: float = RING_INNER) -> tuple[int, int] | None:
    """The hold-out block inside a measured (h, w) block: ``frac`` of each side rounded to an even size, at least
    2 and at least one row / column smaller than the side; None when a side is under 4 (no ring to hold out)."""
    out = []
    for n in (int(v) for v in hw):
        if n < 4:
            return None
        m = 2 * int(round(frac * n / 2.0))
        out.append(max(2, min(m, n - 1 if n % 2 else n - 2)))
    return out[0], out[1]


def calibration_slices(n: int) -> list[int]:
    """Which of ``n`` slices the hold-out run uses: the middle one, plus the one at a quarter for >= 8 slices."""
    if n <= 0:
        return []
    return sorted({n // 2, n // 4}) if n >= 8 else [n // 2]


@dataclass(frozen=True)
class RingSpread(HoldoutRecord):
    """What the ring hold-out measured on one volume (:func:`measure_ring_spread`); ``noise_std``: the
    low-resolution images' noise std (image units, mean over those slices; 0: none)."""

    METHOD = "extrapolation ring hold-out (samples drawn from the inner k-space block only)"
    HELD_OUT_KEY = "ring"
    VALUES_KEY = "ring_values"
    NOISE_KEY = "image_noise_std"

    @property
    def ring(self) -> dict[str, Any]:
        """The measured block, the inner block and its fraction."""
        return self.held_out


@dataclass(frozen=True)
class RingCalibration(HoldoutConstants):
    """The constants of the ring calibration (config.json ``superres_calibration``; defaults: no bundle block);
    ``inner`` and ``samples``: the hold-out run's inner block fraction and sample count."""

    noise_weight: float = 0.0
    inner: float = RING_INNER
    samples: int = RING_SAMPLES

    LABEL = "superres calibration"
    RANGES = "factor > 0, noise_weight >= 0, 0 < inner < 1, pool >= 1, samples >= 2"
    BLOCK = "superres calibration"

    def _out_of_range(self) -> list[str]:
        ok = {"inner": finite_number(self.inner) and 0 < self.inner < 1, "samples": int(self.samples) >= 2}
        return super()._out_of_range() + [k for k, v in ok.items() if not v]

    def _noise_variance(self, spread: HoldoutRecord, noise: np.ndarray | None) -> float | np.ndarray:
        """``noise`` (S,): each slice's low-resolution noise std (image units); None: no noise term."""
        return 0.0 if noise is None else np.asarray(noise, dtype=np.float64).reshape(-1, 1, 1) ** 2

    def _extra_dict(self) -> dict[str, Any]:
        return {"inner": self.inner, "samples": int(self.samples)}


def calibration_from_bundle(bundle_path: str | Path | None) -> tuple[RingCalibration, str]:
    """(constants, where they came from) for a model bundle: its config.json ``superres_calibration`` block (or a
    ``superres`` block inside ``calibration``), else the defaults. ModelError for an invalid block."""
    from ..priors.bundle import read_config

    if not bundle_path:
        return RingCalibration(), "default (no bundle)"
    config = read_config(bundle_path)
    block, where = config.get(BUNDLE_KEY), BUNDLE_KEY
    nested = config.get("calibration")
    if block is None and isinstance(nested, dict) and "superres" in nested:
        block, where = nested["superres"], "calibration.superres"
    if block is None:
        return RingCalibration(), "default (the bundle has no superres_calibration)"
    try:
        return RingCalibration.from_dict(block), f"bundle config.json {where}"
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{bundle_path}/config.json: invalid '{where}' block ({exc})") from None


def measure_ring_spread(model, y: torch.Tensor, to_hw: tuple[int, int], opts, positions: Sequence[int], *,
                        slice_ids: Sequence[int] | None = None, inner: float = RING_INNER,
                        samples: int = RING_SAMPLES) -> RingSpread | None:
    """The ring hold-out of a super-resolution run: for the slices ``positions`` of the low-resolution k-space
    y (S, h, w) (numbered ``slice_ids`` in the input, for their noise streams; default: the positions), draw
    K_cal = min(``samples``, opts.samples) samples with the run's settings (``opts``: a SuperresOptions) from the
    inner block only (:func:`inner_block`) and compare their k-space in the ring with y there. Deterministic given
    opts.seed: the streams ``sample_generator(seed, RING_SAMPLE - k, slice)`` are not the output samples'. None
    when there is no ring (a side under 4) or fewer than 2 samples."""
    from .superres import lowres_noise_sigma, resolve_consistency, sample_chunks

    S, h, w = y.shape
    ib = inner_block((h, w), inner)
    K = min(int(samples), int(opts.samples))
    pos = [int(p) for p in positions]
    ids = [int(i) for i in slice_ids] if slice_ids is not None else pos
    if ib is None or K < 2 or not pos:
        return None
    yc = y[pos]
    # the full run's consistency (a crop of a magnitude image's k-space no longer looks like one)
    o = replace(opts, consistency=resolve_consistency(opts.consistency, yc), samples=K)
    shrink = math.sqrt(ib[0] * ib[1] / (h * w))  # low-resolution units of the inner block: same intensity
    yi = crop_kspace(yc, ib) * shrink
    noise = lowres_noise_sigma(yc, opts.noise)

    def gens_for(c0: int, n: int) -> list[torch.Generator]:
        if o.sampler == "vdm":
            return [sample_generator(o.seed, RING_SAMPLE, ids[c0])]
        return [sample_generator(o.seed, RING_SAMPLE - k, ids[c0 + j]) for k in range(K) for j in range(n)]

    xs = [x for _, x in sample_chunks(model, yi, to_hw, o, K, None if noise is None else noise * shrink, gens_for)]
    x = torch.cat(xs, dim=1).cpu()  # (K, n, H, W)
    A = SuperResOp(to_hw, (h, w))
    preds = A(x)[:, :, None]  # (K, n, 1, h, w): the measured block of each sample, A's units
    ring = ~centre_mask((h, w), ib)
    sig = None if noise is None else noise.cpu() * A.scale
    per = holdout_spread(preds, A.from_lowres(yc.cpu())[:, None], ring, sig)
    total = per[0]
    for sp in per[1:]:
        total = total + sp
    info = {"measured": [h, w], "inner": list(ib), "inner_fraction": inner}
    noise_mean = float(noise.mean()) if noise is not None else 0.0
    return RingSpread(total, noise_mean, info, ids, [sp.ratio2(opts.samples) for sp in per])


def calibrate_variance(var: torch.Tensor, y: torch.Tensor, opts, cal: RingCalibration,
                       spread: RingSpread | None) -> tuple[torch.Tensor, str]:
    """(variance of the run, which calibration it got): ``cal.std(...)**2`` of the raw sample variance ``var``
    (S, H, W) where the ring hold-out ran and the samples spread there, else ``var`` itself."""
    from .superres import lowres_noise_sigma

    if spread is None:
        return var, "none (no ring hold-out: raw sample spread)"
    if not spread.usable():
        return var, "none (the hold-out samples did not spread in the ring: raw sample spread)"
    noise = lowres_noise_sigma(y, opts.noise)
    std = cal.std(var.numpy(), spread, int(opts.samples), None if noise is None else noise.numpy())
    return torch.from_numpy(std.astype(np.float32) ** 2), "ring"


def uncertainty_block(opts, cal: RingCalibration | None, source: str | None, spread: RingSpread | None,
                      applied: str) -> dict[str, Any]:
    """The summary's ``uncertainty`` block of a K > 1 super-resolution run: which calibration the std got, its
    constants and where they came from, and what the ring hold-out measured."""
    out: dict[str, Any] = {"calibration_applied": applied, "interval_z": 1.96}
    if opts.calibration == "none":
        out["calibration"] = "none (raw sample spread, calibration='none')"
        return out
    assert cal is not None
    out["calibration"] = {**cal.to_dict(), "source": source}
    out["std"] = ("factor * sqrt(ratio^2 * pool(raw sample variance) + noise_weight * sigma_n^2), ratio from the "
                  "extrapolation ring hold-out" if applied == "ring" else "the raw sample spread")
    if spread is not None:
        out["holdout"] = spread.summary(int(opts.samples), cal.remove_noise)
    return out
