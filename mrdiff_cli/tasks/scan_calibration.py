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

Super-resolution's extrapolation-ring hold-out (:mod:`.superres_calibration`) is the same calibration with another
hold-out and noise term: :class:`HoldoutRecord` (what a hold-out run measured) and :class:`HoldoutConstants` (the
constants, their validation, ``std`` and config.json form) are shared; :class:`ScanSpread` /
:class:`HoldoutCalibration` here and ``RingSpread`` / ``RingCalibration`` there are the two kinds.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..samplers.selftune import HoldoutSpread

C = TypeVar("C", bound="HoldoutConstants")


def finite_number(v: Any) -> bool:
    """A finite int or float (the numeric constants' first check)."""
    return isinstance(v, (int, float)) and math.isfinite(float(v))


@dataclass(frozen=True)
class HoldoutRecord:
    """What a hold-out run measured on one scan or volume: the base of :class:`ScanSpread` (k-space hold-out) and
    ``superres_calibration.RingSpread`` (extrapolation ring), which differ only in the wording of :meth:`summary`
    (the class constants below)."""

    total: HoldoutSpread  # summed over the slices it ran on
    noise_std: float  # the measurement noise std the hold-out accounted for (0: none / not estimable)
    held_out: dict[str, Any]  # which data were held out
    slices: list[int]
    ratio2_per_slice: list[float] = field(default_factory=list)

    METHOD: ClassVar[str] = "hold-out"  # the summary's wording and keys, per kind
    HELD_OUT_KEY: ClassVar[str] = "holdout"
    VALUES_KEY: ClassVar[str] = "hidden_values"
    NOISE_KEY: ClassVar[str] = "noise_std"

    def ratio2(self, k_final: int, remove_noise: bool = True) -> float:
        return self.total.ratio2(k_final, remove_noise)

    def usable(self) -> bool:
        """The samples spread at the held-out data (else the ratio is undefined)."""
        return self.total.spread2 > 0 and math.isfinite(self.total.spread2)

    def summary(self, k_final: int, remove_noise: bool = True) -> dict[str, Any]:
        """JSON-ready evidence; ``remove_noise`` as the calibration applied it (the ratio reported is the one used)."""
        t = self.total
        n = max(1, t.n_values)
        return {
            "method": self.METHOD,
            "samples": t.samples, "slices": self.slices, self.HELD_OUT_KEY: self.held_out, self.VALUES_KEY: t.n_values,
            "rms_error": math.sqrt(t.err2 / n), "rms_spread": math.sqrt(t.spread2 / n),
            "rms_error_of_posterior_mean": math.sqrt(t.mean_err2(remove_noise) / n),
            self.NOISE_KEY: self.noise_std,
            "ratio": math.sqrt(self.ratio2(k_final, remove_noise)) if self.usable() else None,
            "ratio_per_slice": [round(math.sqrt(r), 4) if math.isfinite(r) else None for r in self.ratio2_per_slice],
        }


@dataclass(frozen=True)
class ScanSpread(HoldoutRecord):
    """What the k-space hold-out measured on one scan (``Reconstructor.spread``); ``noise_std``: the k-space noise
    std used (calibration-matrix tail estimate; 0 when not estimable)."""

    METHOD = "k-space hold-out (posterior samples drawn without the hidden samples)"
    HELD_OUT_KEY = "holdout"
    VALUES_KEY = "hidden_values"
    NOISE_KEY = "kspace_noise_std"

    @property
    def holdout(self) -> dict[str, Any]:
        """The split (fraction, kind, hidden, of_measured_outside_centre)."""
        return self.held_out


@dataclass(frozen=True)
class HoldoutConstants:
    """The constants of a hold-out calibration, std = factor * sqrt(ratio^2 * pool(v) + noise_weight * noise
    variance): the base of :class:`HoldoutCalibration` and ``superres_calibration.RingCalibration``, which differ in
    the noise term (:meth:`_noise_variance`), a default and extra constants (:meth:`_extra_dict`)."""

    factor: float = 1.0
    pool: int = 5
    noise_weight: float = 1.0
    # subtract the estimated measurement noise from the hold-out residual (True) or count it as error (False: the
    # ratio then also carries the noise, as a reference image from noisy fully sampled data does)
    remove_noise: bool = True
    _: KW_ONLY  # the rest by name only: a kind's extra constants follow remove_noise in the positional order
    level: float = 0.95
    z: float = 1.96
    fitted_on: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    LABEL: ClassVar[str] = "hold-out calibration"  # error messages: the constants' name, their ranges, their block
    RANGES: ClassVar[str] = "factor > 0, noise_weight >= 0, pool >= 1"
    BLOCK: ClassVar[str] = "hold-out calibration"

    def __post_init__(self) -> None:
        bad = self._out_of_range()
        if bad:
            raise ValueError(f"{self.LABEL} needs {self.RANGES} (bad: {bad})")

    def _out_of_range(self) -> list[str]:
        """The names of the constants outside their ranges (empty: all valid)."""
        ok = {"factor": finite_number(self.factor) and self.factor > 0,
              "noise_weight": finite_number(self.noise_weight) and self.noise_weight >= 0, "pool": int(self.pool) >= 1}
        return [k for k, v in ok.items() if not v]

    def _noise_variance(self, spread: HoldoutRecord, noise: np.ndarray | None) -> float | np.ndarray:
        """The measurement noise's variance in the image (a scalar or an array that broadcasts against ``var``)."""
        raise NotImplementedError

    def _extra_dict(self) -> dict[str, Any]:
        """The constants of a kind beyond the common ones (config.json: between ``remove_noise`` and ``level``)."""
        return {}

    def std(self, var: np.ndarray, spread: HoldoutRecord, k_final: int, noise: np.ndarray | None = None) -> np.ndarray:
        """Calibrated std map (float32, the shape of ``var``) from the raw sample variance ``var`` of the full run
        (``k_final`` samples), what the hold-out measured and ``noise`` (see :meth:`_noise_variance`)."""
        from .calibration import pool_variance

        v = pool_variance(np.maximum(np.asarray(var, dtype=np.float32), 0.0), int(self.pool)).astype(np.float64)
        nv = self._noise_variance(spread, noise)
        out = self.factor * np.sqrt(spread.ratio2(k_final, self.remove_noise) * v + self.noise_weight * nv)
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "pool": int(self.pool), "noise_weight": self.noise_weight,
                "remove_noise": self.remove_noise, **self._extra_dict(), "level": self.level,
                "z": self.z, "fitted_on": list(self.fitted_on), **({"info": self.info} if self.info else {})}

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """The constants of a config.json block; those it lacks keep their defaults. ValueError when invalid."""
        if not isinstance(d, dict) or "factor" not in d:
            raise ValueError(f"{cls.BLOCK} must be an object with 'factor'")
        # the scalars converted to the type of their default (float, int, bool); the list and the dict by hand
        scalars = {f.name: type(f.default)(d.get(f.name, f.default)) for f in fields(cls) if f.default is not MISSING}
        return cls(**scalars, fitted_on=[str(v) for v in d.get("fitted_on", [])], info=dict(d.get("info") or {}))


@dataclass(frozen=True)
class HoldoutCalibration(HoldoutConstants):
    """The constants of the per-scan calibration (config.json ``calibration.holdout``)."""

    LABEL = "holdout calibration"
    BLOCK = "calibration 'holdout'"

    def _noise_variance(self, spread: HoldoutRecord, noise: np.ndarray | None) -> float | np.ndarray:
        """``noise``: the measurement noise's variance map in the image (``Reconstructor.noise_variance_map``),
        pooled like the variance; None: the fully sampled value sigma_n^2 / 2 everywhere."""
        from .calibration import pool_variance

        if noise is None:
            return spread.noise_std ** 2 / 2.0
        return pool_variance(np.asarray(noise, dtype=np.float32), int(self.pool)).astype(np.float64)
