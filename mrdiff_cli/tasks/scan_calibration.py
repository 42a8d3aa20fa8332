"""Per-scan calibration of posterior std maps from k-space hold-out (``mrdiff uncertainty``'s default).

The raw spread of K posterior samples is not the error of their mean: the samples share the prior's bias, and
how much narrower than the error they are depends on the scan (coils, phase, noise, mask), not on a constant
(a calibration fitted on one simulator covered 38-68 % of head pixels where it claimed 95 % on other physics).
The scan itself can say how much narrower. :meth:`Reconstructor.measure_spread
<mrdiff_cli.tasks.reconstruct.Reconstructor.measure_spread>` hides a fraction of the measured k-space samples of
one or two slices, draws a few posterior samples from the rest and measures at the hidden locations
(:class:`~mrdiff_cli.samplers.selftune.HoldoutSpread`)

    e^2      = sum |mean_k P_k - y|^2  -  n sigma_n^2  -  spread^2 / K       (P_k = F S x_k at the hidden samples)
    spread^2 = sum (1 / (K - 1)) sum_k |P_k - mean_k P_k|^2
    rho^2    = e^2 / spread^2 + 1 / K_final             (the error^2 of a K_final-sample mean per unit spread^2)

(e^2: the squared error of the posterior mean; for exact samples of a calibrated posterior e^2 = spread^2 and
rho^2 = 1 + 1 / K_final, the closed form the tests check)

and the std map of the full run (all data, K_final samples, raw variance v) becomes

    std = factor * sqrt(rho^2 * pool(v) + w * sigma_n^2 / 2)                  (:meth:`HoldoutCalibration.std`)

``pool``: the variance averaged over a pool x pool window (K samples estimate each pixel's variance with a
relative error of sqrt(2 / (K - 1)); the error that matters is local, not pixel-to-pixel). ``sigma_n^2 / 2``: the
variance of the magnitude that complex k-space noise of std sigma_n puts into a pixel of a fully sampled,
coil-combined image (orthonormal FFT, normalised coil maps); ``w`` is the fraction of it the error carries
(the noise the samples all share: it is in the data every sample reproduces, so it is not in their spread).
``factor``, ``pool`` and ``w`` are the only constants; they are fitted over the acquisition-diverse tune suite
(``benchmarks/suite_uncertainty.py``) and stored in the model's config.json (``calibration.holdout``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..samplers.selftune import HoldoutSpread


@dataclass(frozen=True)
class ScanSpread:
    """What the hold-out run measured on one scan (``Reconstructor.spread``)."""

    total: HoldoutSpread  # summed over the slices it ran on
    noise_std: float  # k-space noise std used (calibration-matrix tail estimate; 0 when not estimable)
    holdout: dict[str, Any]  # the split (fraction, kind, hidden, of_measured_outside_centre)
    slices: list[int]
    ratio2_per_slice: list[float] = field(default_factory=list)

    def ratio2(self, k_final: int, remove_noise: bool = True) -> float:
        return self.total.ratio2(k_final, remove_noise)

    def usable(self) -> bool:
        """The samples spread at the hidden locations (else the ratio is undefined)."""
        return self.total.spread2 > 0 and math.isfinite(self.total.spread2)

    def summary(self, k_final: int, remove_noise: bool = True) -> dict[str, Any]:
        """JSON-ready evidence; ``remove_noise`` as the calibration applied it (the ratio reported is the one used)."""
        t = self.total
        return {
            "method": "k-space hold-out (posterior samples drawn without the hidden samples)",
            "samples": t.samples, "slices": self.slices, "holdout": self.holdout,
            "hidden_values": t.n_values,
            "rms_error": math.sqrt(t.err2 / max(1, t.n_values)),
            "rms_spread": math.sqrt(t.spread2 / max(1, t.n_values)),
            "rms_error_of_posterior_mean": math.sqrt(t.mean_err2(remove_noise) / max(1, t.n_values)),
            "kspace_noise_std": self.noise_std,
            "ratio": math.sqrt(self.ratio2(k_final, remove_noise)) if self.usable() else None,
            "ratio_per_slice": [round(math.sqrt(r), 4) if math.isfinite(r) else None for r in self.ratio2_per_slice],
        }


@dataclass(frozen=True)
class HoldoutCalibration:
    """The constants of the per-scan calibration (config.json ``calibration.holdout``)."""

    factor: float = 1.0
    pool: int = 5
    noise_weight: float = 1.0
    # subtract the estimated measurement noise from the hold-out residual (True) or count it as error (False: the
    # ratio then also carries the noise, as a reference image from noisy fully sampled data does)
    remove_noise: bool = True
    level: float = 0.95
    z: float = 1.96
    fitted_on: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        vals = {"factor": self.factor, "noise_weight": self.noise_weight}
        bad = [k for k, v in vals.items() if not isinstance(v, (int, float)) or not math.isfinite(float(v)) or v < 0]
        if bad or self.factor <= 0 or int(self.pool) < 1:
            raise ValueError(f"holdout calibration needs factor > 0, noise_weight >= 0, pool >= 1 (bad: {bad or ['factor/pool']})")

    def std(self, var: np.ndarray, spread: ScanSpread, k_final: int, noise_var: np.ndarray | None = None) -> np.ndarray:
        """Calibrated std map (float32, the shape of ``var``) from the raw sample variance of the full run and
        ``noise_var``, the measurement noise's variance map in the image (``Reconstructor.noise_variance_map``;
        None: the fully sampled value sigma_n^2 / 2 everywhere)."""
        from .calibration import pool_variance

        v = pool_variance(np.maximum(np.asarray(var, dtype=np.float32), 0.0), int(self.pool)).astype(np.float64)
        nv = (spread.noise_std ** 2 / 2.0 if noise_var is None
              else pool_variance(np.asarray(noise_var, dtype=np.float32), int(self.pool)).astype(np.float64))
        out = self.factor * np.sqrt(spread.ratio2(k_final, self.remove_noise) * v + self.noise_weight * nv)
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "pool": int(self.pool), "noise_weight": self.noise_weight,
                "remove_noise": self.remove_noise, "level": self.level,
                "z": self.z, "fitted_on": list(self.fitted_on), **({"info": self.info} if self.info else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HoldoutCalibration:
        if not isinstance(d, dict) or "factor" not in d:
            raise ValueError("calibration 'holdout' must be an object with 'factor'")
        return cls(factor=float(d["factor"]), pool=int(d.get("pool", 5)), noise_weight=float(d.get("noise_weight", 1.0)),
                   remove_noise=bool(d.get("remove_noise", True)),
                   level=float(d.get("level", 0.95)), z=float(d.get("z", 1.96)),
                   fitted_on=[str(v) for v in d.get("fitted_on", [])], info=dict(d.get("info") or {}))
