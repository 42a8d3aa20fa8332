"""Reconstruction orchestration: k-space slices → mask → (zero-filled | SENSE | diffusion posterior) → images.

No printing and no argument parsing: options come in a :class:`ReconOptions`, progress goes out through
``callback(done, total)``. Slices are streamed in batches so memory is bounded by the batch size.

This module orchestrates: options, batching, per-(sample, slice) seeds, coil maps and compression, the noise
schedule and the denoiser, the self-tuning pilot and the hold-out calibration. What runs per batch and per step
(operator, start, normalisation, consistency step and projections, final step, magnitude, for each coil mode) is
:mod:`mrdiff_cli.samplers.posterior`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..errors import UsageError
from ..ops.fft import fft2c
from ..ops.operators import SenseOp
from ..samplers import TASK_SAMPLERS, SamplerName
from ..samplers.dc import cg_dc
from ..samplers.modes import (
    CoilMaps,
    CoilMode,
    ComplexMode,
    CountPilot,
    MapsSupport,
    Method,
    NoiseConsistency,
    SpreadMaps,
)
from ..samplers.noise import randn_like, running_mean_var, sample_generator
from ..samplers.posterior import (
    PosteriorOptions,
    cg_sense,
    coil_support,
    mode_spec,
    perturb_data,
    sample_posterior,
    zero_filled,
)
from ..samplers.selftune import (
    BOOTSTRAP_REF_CG,
    CG_CANDIDATES,
    HOLDOUT_CG_CANDIDATES,
    PILOT_LINE_CAP,
    UPPER_COUNT_MARGIN,
    LastEstimate,
    Tuning,
    bootstrap_error,
    choose_count,
    holdout_error,
    holdout_spread,
    regular_line_spacing,
    split_holdout,
    unimodal_search,
)
from .calibration import estimate_kspace_noise
from .scan_calibration import HoldoutCalibration, ScanSpread

SAMPLERS = TASK_SAMPLERS["reconstruct"]  # the samplers `reconstruct` offers (the registry's names)
__all__ = ["ReconOptions", "Reconstructor", "choose_coil_mode", "cg_sense", "nfe", "resolve_device", "zero_filled"]


@dataclass(frozen=True)
class ReconOptions:
    """The options of one reconstruction run. The choices are enums (samplers.modes); strings are accepted and
    turned into them when the options are built (UsageError naming the option for an unknown one)."""

    method: Method = Method.diffusion
    sampler: SamplerName = SamplerName.fast  # one of SAMPLERS
    coil_mode: CoilMode = CoilMode.auto
    complex_mode: ComplexMode = ComplexMode.phase  # realimag: the seed's split; poor with a magnitude-only prior
    # phase mode: std of the Gaussian prior on Im(x e^{-i phi}) (the phase detail finer than the low-resolution
    # phase estimate), normalised units. None (default): chosen per scan with the CG count by the hold-out pilot
    # from PHASE_RESID_CANDIDATES (0.005 suits smooth phase: +1.6 dB on the old simulator; 0.05 keeps phase detail:
    # +6.8 dB with air-tissue off-resonance, docs/reconstruct.md); FALLBACK_PHASE_RESID where no pilot runs
    phase_resid: float | None = None
    # phase mode: below this sigma the demodulation phase is re-estimated from the iterate (centre block of
    # phase_refine_frac x the matrix); tune split, 8 coils 128²: with fine phase detail (0.5 rad at 4 px) +1.7 dB,
    # with the simulator's smooth phase -0.14 dB (16 coils 256²: +4.7 / -0.49 dB; docs/reconstruct.md);
    # 0 = keep the initial phase throughout. None (default): 0.05 with the start's centre phase, 0 with the
    # L1-wavelet phase (phase_cs_lambda > 0; re-estimating it from the noisy iterate cost 0.3-1.3 dB on 4 tune rows)
    phase_refine_sigma: float | None = None
    phase_refine_frac: float = 0.5
    # phase mode, SENSE: > 0 demodulates the phase of an L1-wavelet SENSE reconstruction (ops.sparse; FISTA,
    # phase_cs_iters iterations, threshold phase_cs_lambda in units of the normalised image, 1e-3 was the tune
    # suite's choice) low-passed to phase_frac x the matrix, instead of the CG-SENSE start's 24-pixel centre (0, the
    # default). Tune suite: -0.4 to +3.3 dB (mean +0.8) at equal settings; report suite: +0.7/+1.5 dB on Gaussian-1D
    # off-resonance rows, -0.1 to -0.2 dB on the others, and one failed pilot choice: opt-in (docs/benchmarks.md)
    phase_cs_lambda: float = 0.0
    phase_cs_iters: int = 40
    phase_frac: float = 0.5
    steps: int | None = None  # fast: 40 for one sample, 20 per sample for K > 1 (default_steps); pc: 500 multi-coil, 2000 single-coil
    sigma_max: float | None = None  # fast: start level; pc: 80 (prior's sigma_max)
    sigma_min: float = 0.01
    # CG consistency iterations per step. None (default): chosen per scan by k-space hold-out cross-validation
    # (samplers.selftune: short pilots on one or two slices with part of the samples hidden; SENSE mode with the
    # fast sampler), falling back to FALLBACK_CG where no hold-out is possible; an int forces that fixed count
    n_cg: int | None = None
    holdout_frac: float = 0.15  # fraction of the measured non-centre samples (lines for 1D masks) the pilot hides
    # how the pilot scores the counts (samplers.modes.CountPilot): "holdout" (the hidden samples' prediction),
    # "bootstrap" (the scan simulated from a reference reconstruction; samplers.selftune), "auto": bootstrap on
    # regular 1D masks, hold-out elsewhere. The phase prior is always chosen by the hold-out
    count_pilot: CountPilot = CountPilot.auto
    # sampler steps of each pilot run (the full run: steps): 10 or 6 made the same worst case on the tune suite
    # (-1.7 dB against the best fixed count, benchmarks/suite.py --rules); 10 was better on average
    pilot_steps: int = 10
    # sampler steps of the bootstrap count pilot's runs; None: half the full run's steps, at least pilot_steps (20
    # with the default 40; docs/benchmarks.md "The count pilot under 40 steps")
    bootstrap_steps: int | None = None
    # the bootstrap count pilot keeps the fewest iterations whose bootstrap error is within (1 + tol) x the least
    # (choose_count; near ties lean to the count of its 7-CG reference); 0 = the plain argmin. None: see
    # Reconstructor.bootstrap_tolerance (0.15 for runs of 40 steps or more, 0 for shorter ones)
    bootstrap_tolerance: float | None = None
    cg_start: int = 3  # the search's first count (then its upper neighbour)
    # the CG counts the hold-out count pilot (and the own-support count re-check) may choose; None: see
    # Reconstructor.holdout_candidates (the bootstrap pilot of regular masks has bootstrap_candidates)
    cg_candidates: tuple[int, ...] | None = None
    # a step above the top of CG_CANDIDATES (to 10, 15) is taken only if its hold-out error is lower than the
    # previous count's by more than this fraction (0: the plain argmin; 0.1 passed its fresh test where 0 failed)
    upper_count_margin: float = UPPER_COUNT_MARGIN
    # the counts the bootstrap pilot of regular masks may choose (a step above 7 also needs upper_count_margin); None:
    # see Reconstructor.bootstrap_candidates
    bootstrap_candidates: tuple[int, ...] | None = None
    # the CG count of the bootstrap's reference reconstruction; None: BOOTSTRAP_REF_CG (samplers.selftune)
    bootstrap_ref_cg: int | None = None
    # the bootstrap's top check: where the bootstrap chose 7 CG or more but less than the top of its candidates, a
    # second bootstrap with its reference at the top count scores the top and the count below it, and the top is
    # taken if its error is lower by more than top_check_margin (a fraction). Designed on seen tune rows (0.3
    # separated "15 beats 10 by > 1 dB" from "15 does not beat 10" there), passed a pre-registered test on 24 fresh
    # equispaced rows and fastMRI-layout files (+0.68 dB mean, worst 0.00; report rows unchanged; docs/benchmarks.md)
    top_check: bool = True
    top_check_margin: float = 0.3
    # a bootstrap choice of exactly 7 CG (its reference's own count, which the reference leans to) moves to the next
    # candidate above (10) before the top check, where the candidates go above 7. On six seen rows where the
    # bootstrap kept 7, 10 was better on all (+0.74 ... +1.00 dB); passed a pre-registered test on 20 fresh
    # equispaced rows and fastMRI-layout files (+0.47 dB mean, worst -0.43; report files +0.87 / +0.81;
    # docs/benchmarks.md "The step from 7 to 10")
    seven_up: bool = True
    # keep the fewest iterations whose hold-out error is within (1 + tol) x the least. 0 (plain argmin): a relative
    # tolerance of 0.1 (chosen on 4 tune rows) picked too few iterations where the hold-out error is dominated by
    # a floor the count does not change (-1.4 and -7 dB on report rows, docs/benchmarks.md)
    cv_tolerance: float = 0.0
    # keep the tighter phase prior unless the looser one's hold-out error is lower by more than this fraction.
    # 0 (plain argmin); 0.3 was the tune suite's choice (benchmarks/suite_phase_prior.py: 0.005 had the better
    # PSNR on all 8 random-phase tune rows) but on a report row it swapped a near tie towards 0.005 and lost 7 dB
    phase_tolerance: float = 0.0
    mu: float = 0.0
    zeta: float | str | None = None  # renoise mix; None: 1.0 (fresh noise, also for K > 1 samples); or 'ancestral'
    snr: float = 0.16
    sense_every: int = 10
    samples: int = 1
    batch_size: int = 16
    seed: int = 0
    device: str = "cpu"
    autocast: str | None = None  # bf16 | fp16 | None
    espirit: bool = True
    # ESPIRiT's signal subspace (ops.coils.estimate_maps): singular values >= espirit_sigma x the largest and, with
    # espirit_noise > 0, >= espirit_noise x the Marchenko-Pastur edge of pure noise at the scan's estimated noise
    # level (slices without a noise estimate keep the relative cut 0.02); kernel width espirit_kernel
    # (docs/benchmarks.md "Coil maps")
    espirit_sigma: float = 0.02
    espirit_noise: float = 0.0
    espirit_kernel: int = 6
    espirit_eig: float = 0.8  # the maps' support: pixels whose top ESPIRiT eigenvalue exceeds this
    # None: that eigenvalue from the maps' own subspace; a number: from a second ESPIRiT pass with this relative cut
    # (the release's 0.02 keeps the release support under a larger subspace; benchmarks/coil_maps_support.py)
    espirit_support_sigma: float | None = None
    # the espirit_* settings above apply with coil_maps "espirit"; "adaptive" (--coil-maps adaptive) replaces them
    # (but the kernel) by ADAPTIVE_MAPS; "auto" (the default): adaptive for diffusion runs (one sample, and K > 1
    # samples since the fourth test in docs/uncertainty.md "Adaptive maps ... for K > 1"), espirit for the SENSE /
    # zero-filled methods (Reconstructor.maps_kind)
    coil_maps: CoilMaps = CoilMaps.auto
    # the maps the self-tuning pilots (count, phase prior; and the hold-out spread of K > 1 runs under spread_maps
    # "pilot") estimate for themselves, as a preset; None: the run's own maps, but the release's (ESPIRIT_MAPS) when those are adaptive —
    # the count's choice is sensitive to the maps, and it was tuned and tested with the release's (docs/benchmarks.md
    # "Coil maps")
    pilot_maps: CoilMaps | None = None
    # the maps the K > 1 hold-out spread measurement (Reconstructor.measure_spread) draws its samples with: "pilot"
    # (the pilots' preset: espirit when the run's maps are adaptive) or "own" (the samples' maps). With the adaptive
    # maps' better fit the hidden samples' miss falls more than the image error does (48 dB report row: 3.3x against
    # 1.2x), so their ratio under-calibrates; the espirit maps' miss also carries the SENSE model error the samples'
    # spread does not show (docs/uncertainty.md "Adaptive maps ... for K > 1")
    spread_maps: SpreadMaps = SpreadMaps.pilot
    # the adaptive maps' support (samplers.modes.MapsSupport): "release", "own", or "auto": per scan, the own one
    # when the hold-out pilot's error with it is lower by more than support_margin (a fraction) than with the release
    # one (Reconstructor.choose_support)
    maps_support: MapsSupport = MapsSupport.auto
    support_margin: float = 0.1
    # when the support choice takes "own" and the self-tuned count is below the candidates' top: one more hold-out
    # pilot on the run's own-support maps at the next count, used when it predicts the hidden samples better (the
    # count pilots ran on the espirit maps; better maps favour more iterations). Passed its pre-registered test
    # (docs/benchmarks.md "Pre-registered next test: a count re-check"): 1 of 28 fresh rows moved (+0.22 dB)
    count_recheck: bool = True
    cg_init_iters: int = 10
    support: bool = True  # single-coil fast sampler: keep the image inside a low-res object support
    # coil compression (ops.compress): None = auto (SENSE with > 12 coils -> max(10, ceil(C/2)) virtual coils),
    # 0 = off, N = N virtual coils (any multi-coil mode)
    compress_coils: int | None = None
    channels_last: bool | None = None  # network memory format: None = auto (NHWC on the CPU), see tasks.resources
    # measurement noise in the K > 1 consistency step: "none" (data exact; the default: prox/both cost up to 1.5 dB
    # of mean PSNR on the tune split), "prox" (mu_i = sigma_n^2 / sigma_i^2), "perturb" (each sample sees y plus
    # its own noise draw) or "both"; sigma_n: ``noise`` in k-space units, or None = estimated from the coils'
    # redundancy in the calibration centre (tasks.calibration.estimate_kspace_noise); 0 = none
    noise_dc: NoiseConsistency = NoiseConsistency.none
    noise: float | None = None
    # applied to the K > 1 spread: a tasks.calibration.Calibration or its config.json dict; "model": the loaded
    # bundle's "calibration" block (resolved by tasks.recon_job.load_model; raw when the bundle has none): with a
    # "holdout" block the std is scaled per scan by the hold-out run (tasks.scan_calibration), the fixed map being
    # the fallback; "fixed": the bundle's block without its per-scan part; None / "none": the raw sample spread
    calibration: Any = "model"

    def __post_init__(self) -> None:
        for name, kind, what, allowed in (
            ("method", Method, "method", None), ("sampler", SamplerName, "sampler", SAMPLERS),
            ("coil_mode", CoilMode, "coil mode", None), ("complex_mode", ComplexMode, "complex mode", None),
            ("noise_dc", NoiseConsistency, "noise consistency", None),
            ("count_pilot", CountPilot, "count pilot", None), ("coil_maps", CoilMaps, "coil maps", None),
            ("maps_support", MapsSupport, "maps support", None), ("spread_maps", SpreadMaps, "spread maps", None),
        ):
            object.__setattr__(self, name, _choice(getattr(self, name), kind, what, name, allowed))
        if self.pilot_maps is not None:
            object.__setattr__(self, "pilot_maps", _choice(self.pilot_maps, CoilMaps, "coil maps", "pilot_maps"))


def _espirit_kwargs(o: ReconOptions, y: torch.Tensor, m: torch.Tensor) -> dict[str, Any]:
    """The ESPIRiT subspace options of ``o`` as ``ops.coils`` keywords, with the scan's own k-space noise estimate
    (not --noise, which may be 0 = exact) where the noise-level cut is on."""
    sn = estimate_kspace_noise(y, m.cpu()) if o.espirit_noise > 0 else None
    return {"kernel": int(o.espirit_kernel), "sigma_thresh": float(o.espirit_sigma), "noise_std": sn,
            "noise_factor": float(o.espirit_noise)}


def _choice(value: Any, kind: type[Any], what: str, option: str, allowed: tuple[str, ...] | None = None) -> Any:
    """``value`` as a member of the enum ``kind`` (restricted to ``allowed``); UsageError naming ``option``."""
    names = allowed if allowed is not None else tuple(m.value for m in kind)
    if value in names:
        return kind(value)
    raise UsageError(f"unknown {what} {value!r} (choose from {', '.join(names)})", option=option)


# fast sampler: 40 steps for one sample (+0.57 dB over 20 at the self-tuned count on the tune suite, passed a fresh
# pre-registered test; docs/benchmarks.md "Sampler steps with the complex prior"); K > 1 samples keep 20 steps each
# (K times the cost already, and the setting the per-scan uncertainty calibration was fitted with)
FAST_DEFAULTS = {"steps": 40, "steps_per_sample": 20, "sigma_max": 1.0}
FALLBACK_CG = 7  # fixed count where self-tuning does not apply (coil-wise modes, no hold-out possible)
FALLBACK_PHASE_RESID = 0.005
PHASE_RESID_CANDIDATES = (0.005, 0.05)
# --coil-maps espirit (the ReconOptions defaults) and adaptive: ESPIRiT's subspace at 2x the noise's Marchenko-Pastur
# edge (relative cut 0.001), support where the espirit preset's eigenvalue exceeds 0.8 (a second pass at the 0.02
# cut; benchmarks/coil_maps.py "rs_rp" with release-map pilots, which passed a fresh test; docs/benchmarks.md
# "Coil maps"); an explicit pilot_maps means the preset, not the espirit_* options
ADAPTIVE_MAPS: dict[str, Any] = {"espirit_sigma": 0.001, "espirit_noise": 2.0, "espirit_eig": 0.8, "espirit_support_sigma": 0.02}
ESPIRIT_MAPS: dict[str, Any] = {k: getattr(ReconOptions, k) for k in ADAPTIVE_MAPS}  # the ReconOptions defaults
MAPS_PRESETS: dict[CoilMaps, dict[str, Any]] = {CoilMaps.espirit: ESPIRIT_MAPS, CoilMaps.adaptive: ADAPTIVE_MAPS}
# --maps-support own: the adaptive maps' support at eigenvalue 0.95 of their own subspace (no second pass; wider
# than the release support where the object fills the field of view, tighter elsewhere)
OWN_SUPPORT: dict[str, Any] = {"espirit_eig": 0.95, "espirit_support_sigma": None}
# the bootstrap count pilot's near-tie tolerance for runs of 40 steps or more (Reconstructor.bootstrap_tolerance)
BOOTSTRAP_TOLERANCE = 0.15
L1_PHASE_LAMBDA = 1e-3  # --phase-ref l1: the L1-wavelet threshold chosen on the tune suite (benchmarks/phase_headroom.py)
PILOT_SAMPLE = 2**31 - 1  # the self-tuning pilot's sample index: its own noise stream, apart from samples 0..K-1


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{spec}: CUDA is not available on this machine", option="device")
    return dev


def choose_coil_mode(requested: str, n_coils: int, kspace_is_real_image: bool = False) -> CoilMode:
    """The coil mode for a scan of ``n_coils`` coils: ``auto`` resolved (sense for multi-coil data, single or real
    for one coil), a given one checked against the data (UsageError naming ``coil_mode``)."""
    mode = _choice(requested, CoilMode, "coil mode", "coil_mode")
    if mode == CoilMode.auto:
        return CoilMode.sense if n_coils > 1 else (CoilMode.real if kspace_is_real_image else CoilMode.single)
    if not mode_spec(mode).single_coil and n_coils == 1:
        raise UsageError(f"{mode} needs multi-coil data (this scan has 1 coil)", option="coil_mode")
    if mode_spec(mode).single_coil and n_coils > 1:
        raise UsageError(f"{mode} needs single-coil data (this scan has {n_coils} coils)", option="coil_mode")
    return mode


def default_steps(opts: ReconOptions, mode: str) -> int:
    """The full run's sampler steps: ``--steps``, else the sampler's default (fast: 40 for one sample, 20 for each
    of K > 1 samples)."""
    if opts.steps is not None:
        return opts.steps
    if opts.sampler == SamplerName.fast:
        return int(FAST_DEFAULTS["steps"] if int(opts.samples) <= 1 else FAST_DEFAULTS["steps_per_sample"])
    return 2000 if mode_spec(mode).single_coil else 500


def nfe(opts: ReconOptions, mode: str) -> int:
    n = default_steps(opts, mode)
    return n + 1 if opts.sampler == SamplerName.fast else 2 * n - 1


@dataclass
class BatchResult:
    images: np.ndarray  # (B, H, W) magnitude (posterior mean when samples > 1)
    variance: np.ndarray | None  # (B, H, W) pixel-wise posterior variance of the magnitude
    samples: np.ndarray | None  # (K, B, H, W) when kept
    zero_filled: np.ndarray  # (B, H, W)
    raw_variance: np.ndarray | None = None  # (B, H, W) sample variance before calibration (variance is calibrated)
    noise_sigma: np.ndarray | None = None  # (B,) measurement noise std used by the K > 1 sampler (k-space units)


class Reconstructor:
    """Reconstructs batches of slices with one prior, one set of options, on one device."""

    def __init__(self, prior, opts: ReconOptions):
        self.prior = prior
        self.opts = _complex_mode_for(prior, opts)
        self.device = resolve_device(opts.device)
        if prior is not None and opts.method == Method.diffusion:
            from .resources import prepare_prior

            prepare_prior(prior, self.device, opts.channels_last)  # NHWC on the CPU (measured faster)
        self.autocast = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[opts.autocast]
        self.tuning: Tuning | None = None  # set once a pilot ran (one per Reconstructor: one scan)
        self.tuning_note: str | None = None  # why self-tuning did not apply, when it did not
        self.spread: ScanSpread | None = None  # the hold-out uncertainty calibration (measure_spread), once run
        self.spread_note: str | None = None  # why it did not run, when it did not
        self.support_choice: dict[str, Any] | None = None  # the per-scan support choice and its evidence, once made
        self.count_recheck: int | None = None  # the count the re-check on the own-support maps moved to (count_recheck)

    # ---------------------------------------------------------------- helpers
    def _denoiser(self, mode: str, phase_ref: torch.Tensor, batch_size: int, resid: float | None = None,
                  phase_width: int | None = None):
        """The complex-image denoiser for ``mode``; phase mode demodulates the low-resolution phase of ``phase_ref``
        (the problem's: the start, or its L1-wavelet reconstruction) over ``phase_width`` pixels (None: 24)."""
        from ..samplers.adapters import demod_phase, lowres_phase, make_denoiser, prior_demod_frac

        cm = "real" if mode_spec(mode).real else self.opts.complex_mode
        phase = (lowres_phase(phase_ref, phase_width) if phase_width else lowres_phase(phase_ref)
                 ) if cm == ComplexMode.phase else None
        demod = prior_demod_frac(self.prior) if cm == ComplexMode.complex else 0.0
        if demod > 0:  # a complex prior trained on demodulated images: the start's low-resolution phase, same width
            phase = demod_phase(phase_ref, demod)
        refine = self.opts.phase_refine_sigma
        if refine is None:
            refine = 0.0 if phase_width else 0.05
        return make_denoiser(self.prior, cm, phase=phase, resid_std=self.phase_resid() if resid is None else resid,
                             batch_size=batch_size,
                             autocast=self.autocast, refine_below=refine,
                             refine_frac=self.opts.phase_refine_frac)

    def _sigmas(self, mode: str, steps: int | None = None) -> torch.Tensor:
        from ..samplers.schedules import geometric_sigmas, karras_sigmas

        n = default_steps(self.opts, mode) if steps is None else int(steps)
        if self.opts.sampler == SamplerName.fast:
            smax = self.opts.sigma_max if self.opts.sigma_max is not None else FAST_DEFAULTS["sigma_max"]
            return karras_sigmas(n, self.opts.sigma_min, smax)
        smax = self.opts.sigma_max if self.opts.sigma_max is not None else float(self.prior.edm.sigma_max)
        return geometric_sigmas(n, self.opts.sigma_min, smax)

    # ---------------------------------------------------------------- self-tuning
    def self_tuning(self, mode: str) -> bool:
        """Whether this run chooses its CG counts by hold-out cross-validation (see ReconOptions.n_cg)."""
        auto = self.opts.n_cg is None or (self.opts.phase_resid is None and self.opts.complex_mode == ComplexMode.phase)
        return auto and self._holdout_applies(mode) and self.tuning_note is None

    def _holdout_applies(self, mode: str) -> bool:
        """Whether hold-out runs (the CG-count pilot, the uncertainty calibration) can run: a diffusion run with the
        fast sampler in a mode whose prior sees one SENSE image per slice."""
        return (self.opts.method == Method.diffusion and self.opts.sampler == SamplerName.fast
                and mode_spec(mode).sense_image)

    def tune(self, kspace, mask, mode: str, maps: torch.Tensor | None = None, slice_ids: Sequence[int] = (0,),
             *, compressed: bool = False, callback: Callable[[int], None] | None = None) -> None:
        """Choose the CG count and the phase prior (those not fixed by the options) for every later
        :meth:`reconstruct` call of this object (one scan) by k-space hold-out cross-validation on ``kspace``
        (P, C, H, W), a slice or two of the scan
        (:mod:`~mrdiff_cli.samplers.selftune`). ``compressed``: kspace/maps are already coil-compressed.
        No-op unless :meth:`self_tuning` applies; where no hold-out is possible, records why and falls back.
        ``callback(k)`` is called as pilot k (1, 2, ...) starts."""
        if not self.self_tuning(mode):
            return
        pilot = self.pilot(kspace, mask, mode, maps, slice_ids, compressed=compressed)
        if pilot is None:
            self.tuning_note = (f"too few measured samples outside the centre to hide {self.opts.holdout_frac:.0%}: "
                                f"fixed {FALLBACK_CG} CG iterations")
            return
        run_pilot, info = pilot
        started = [0]

        def tick() -> None:  # one more pilot run starts
            started[0] += 1
            if callback is not None:
                callback(started[0])

        def evaluate(n: int, resid: float | None = None) -> float:
            tick()
            return run_pilot(n, resid)

        opts = self.opts
        counts = self.holdout_candidates() if opts.n_cg is None else (int(opts.n_cg),)
        start = opts.cg_start if opts.n_cg is None else int(opts.n_cg)
        resids = (PHASE_RESID_CANDIDATES if opts.phase_resid is None and opts.complex_mode == ComplexMode.phase
                  else (self.phase_resid(),))
        # the phase prior first, at the search's first count; then the count, with that phase prior
        at_start = {r: evaluate(start, r) for r in resids}
        # the least hold-out error; with phase_tolerance > 0 the tighter prior unless the looser one is clearly better
        least = min(at_start.values())
        resid = min(r for r in resids if at_start[r] <= least * (1.0 + opts.phase_tolerance))
        phase = ({"phase_resid": resid, "phase_tolerance": opts.phase_tolerance,
                  "phase_resid_holdout_error": {str(r): round(e, 6) for r, e in at_start.items()},
                  "phase_resid_at_cg": start} if opts.complex_mode == ComplexMode.phase else {})
        ids = [int(i) for i in slice_ids]
        if len(counts) > 1 and self.uses_bootstrap(mask):
            def scorer(ref_cg: int | None = None) -> Callable[[int], float]:
                """A bootstrap (reference at ``ref_cg``) whose reference run and pilots each count as a pilot run."""
                tick()  # the reference run
                boot = self.bootstrap_pilot(kspace, mask, mode, maps, ids, compressed=compressed, resid=resid,
                                            ref_cg=ref_cg)

                def score(n: int) -> float:
                    tick()
                    return boot(n)
                return score

            boot_counts = self.bootstrap_candidates()
            _, boot_err = unimodal_search(scorer(), boot_counts, start)
            tol = self.bootstrap_tolerance(mode)
            best = self._above_top(choose_count(boot_err, tol), boot_err)
            best, top = self._top_check(best, boot_counts, scorer)
            self.tuning = Tuning(best, {start: at_start[resid]}, info, ids, self.bootstrap_steps(mode),
                                 {"tolerance": tol, **self._margin_record(boot_counts), **top, **phase},
                                 method="parametric bootstrap", bootstrap=boot_err,
                                 bootstrap_ref_cg=self.bootstrap_ref_cg())
            return
        _, errors = unimodal_search(lambda n: at_start[resid] if n == start else evaluate(n, resid), counts, start)
        best = self._above_top(choose_count(errors, opts.cv_tolerance), errors)
        self.tuning = Tuning(best, errors, info, ids, opts.pilot_steps,
                             {"tolerance": opts.cv_tolerance, **self._margin_record(counts), **phase})

    def _top_check(self, best: int, counts: Sequence[int], pilot: Callable[[int], Callable[[int], float]]
                   ) -> tuple[int, dict[str, Any]]:
        """(count, evidence) of the bootstrap's steps above 7 CG. ``seven_up``: a ``best`` of exactly 7 (the top of
        CG_CANDIDATES, the 7-CG reference's own count) moves to the next of ``counts`` above it. Then the top check
        (``top_check``): where the count is at least 7 and below the top of ``counts``, ``pilot(top)`` (a bootstrap
        whose reference is a run at the top count) scores the top and the count below it; the top is taken if its
        error is lower by more than ``top_check_margin``. A reference leans the choice to its own count (the 7-CG
        reference held it at 7-10 where 15 was best, the 15-CG one leans to 15): the margin asks for more than that
        lean."""
        counts = sorted(int(c) for c in counts)
        top = counts[-1]
        seven = max(CG_CANDIDATES)
        up: dict[str, Any] = {}
        if self.opts.seven_up and best == seven and any(c > seven for c in counts):
            up = {"seven_up": {"from": best, "to": min(c for c in counts if c > seven)}}
            best = up["seven_up"]["to"]
        if not self.opts.top_check or len(counts) < 2 or best < seven or best >= top:
            return best, up
        below = counts[-2]
        score = pilot(top)
        errors = {below: score(below), top: score(top)}
        margin = float(self.opts.top_check_margin)
        chosen = top if errors[top] < (1.0 - margin) * errors[below] else best
        return chosen, {**up, "top_check": {"reference_cg": top, "margin": margin, "from": best, "to": chosen,
                                            "bootstrap_error": {str(k): round(v, 6) for k, v in errors.items()}}}

    def _margin_record(self, counts: Sequence[int]) -> dict[str, float]:
        """The evidence's ``upper_count_margin`` where the search could go above the top of CG_CANDIDATES."""
        return {"upper_count_margin": float(self.opts.upper_count_margin)} if max(counts) > max(CG_CANDIDATES) else {}

    def _steps_up(self, n: int, e_n: float, higher: int, e_higher: float) -> bool:
        """Whether ``higher`` CG iterations beat ``n`` by their errors: any decrease within CG_CANDIDATES, more than
        ``upper_count_margin`` (a fraction) for a count above its top."""
        margin = float(self.opts.upper_count_margin) if higher > max(CG_CANDIDATES) else 0.0
        return e_higher < (1.0 - margin) * e_n

    def _above_top(self, best: int, errors: dict[int, float]) -> int:
        """``best`` limited by ``upper_count_margin``: from the top of CG_CANDIDATES upwards, each higher count the
        search evaluated is kept only while it steps up from the previous one (:meth:`_steps_up`)."""
        top = max(CG_CANDIDATES)
        if best <= top or float(self.opts.upper_count_margin) <= 0 or top not in errors:
            return best
        chosen = top
        for n in sorted(c for c in errors if top < c <= best):
            if not self._steps_up(chosen, errors[chosen], n, errors[n]):
                break
            chosen = n
        return chosen

    def count_candidates(self) -> tuple[int, ...]:
        """The counts the scan's count choice ranges over: :meth:`bootstrap_candidates` where the parametric bootstrap
        chose it (regular masks), else :meth:`holdout_candidates` (the own-support re-check stays in that range)."""
        if self.tuning is not None and self.tuning.method == "parametric bootstrap":
            return self.bootstrap_candidates()
        return self.holdout_candidates()

    def bootstrap_candidates(self) -> tuple[int, ...]:
        """The counts the bootstrap pilot searches, sorted: ``bootstrap_candidates``, else :meth:`_default_counts`."""
        return self._default_counts(self.opts.bootstrap_candidates)

    def holdout_candidates(self) -> tuple[int, ...]:
        """The counts the hold-out count pilot searches, sorted: ``cg_candidates``, else :meth:`_default_counts`."""
        return self._default_counts(self.opts.cg_candidates)

    def _default_counts(self, given: tuple[int, ...] | None) -> tuple[int, ...]:
        """``given`` sorted, else HOLDOUT_CG_CANDIDATES (up to 15) for one-sample runs and CG_CANDIDATES (up to 7) for
        K > 1 samples, whose per-scan uncertainty constants were fitted with counts up to 7 (the extended list was
        tested on one-sample runs)."""
        if given:
            return tuple(sorted(int(n) for n in given))
        return CG_CANDIDATES if int(self.opts.samples) > 1 else HOLDOUT_CG_CANDIDATES

    def uses_bootstrap(self, mask) -> bool:
        """Whether the CG count of a scan with this mask is scored by the parametric bootstrap (``count_pilot``)."""
        cp = self.opts.count_pilot
        return cp == CountPilot.bootstrap or (cp == CountPilot.auto and regular_line_spacing(np.asarray(mask)) is not None)

    def bootstrap_ref_cg(self) -> int:
        """The CG count of the bootstrap's reference reconstruction: ``bootstrap_ref_cg``, else BOOTSTRAP_REF_CG."""
        return BOOTSTRAP_REF_CG if self.opts.bootstrap_ref_cg is None else int(self.opts.bootstrap_ref_cg)

    def bootstrap_steps(self, mode: str) -> int:
        """Sampler steps of the bootstrap's pilots: ``bootstrap_steps``, else half the full run's (10 for 20, 20 for
        the default 40; the 20-step pilots passed a fresh test with the 40-step run, docs/benchmarks.md), at least
        ``pilot_steps``."""
        if self.opts.bootstrap_steps is not None:
            return int(self.opts.bootstrap_steps)
        return max(int(self.opts.pilot_steps), default_steps(self.opts, mode) // 2)

    def bootstrap_tolerance(self, mode: str) -> float:
        """The bootstrap's near-tie tolerance (:func:`~mrdiff_cli.samplers.selftune.choose_count`):
        ``bootstrap_tolerance``, else BOOTSTRAP_TOLERANCE for runs of 40 steps or more and 0 (the argmin) for shorter
        ones. 0.15 was explored on 64 seen equispaced tune rows and passed with 40-step runs on 24 fresh ones
        (within 0.3 dB of the best count on 19 instead of 16, same worst case, +0.09 dB) and on the report rows (the
        best count on 6 of 6, the argmin 4, worst -1.21 dB); replayed on 24 seen rows with 20-step runs (10-step
        bootstrap pilots: K > 1 samples, ``--steps 20``) it cost 0.03 dB on average and 1.06 dB on one row
        (docs/benchmarks.md, "A tolerance on the bootstrap's errors")."""
        if self.opts.bootstrap_tolerance is not None:
            return float(self.opts.bootstrap_tolerance)
        return BOOTSTRAP_TOLERANCE if default_steps(self.opts, mode) >= 40 else 0.0

    def bootstrap_pilot(self, kspace, mask, mode: str, maps: torch.Tensor | None = None,
                        slice_ids: Sequence[int] = (0,), *, compressed: bool = False, resid: float | None = None,
                        ref_cg: int | None = None):
        """The parametric bootstrap of :meth:`tune`: ``evaluate(n)`` → the relative error (summed over the slices)
        with which a pilot (:meth:`bootstrap_steps`, ``n`` CG iterations, phase prior ``resid``) recovers a reference
        reconstruction x_ref from the scan simulated from it, y* = M (F S x_ref + n*): the scan's own mask and coil
        maps, n* complex Gaussian of the scan's estimated noise std (seeded; none where the data are treated as
        exact). x_ref: a full-data pilot at ``ref_cg`` iterations (default :meth:`bootstrap_ref_cg`). Every ``n`` sees the
        same sampler noise."""
        opts = self.opts
        y, maps, m = self._measured(kspace, mask, mode, maps, compressed=compressed)
        ids = [int(i) for i in slice_ids]
        sig = self._sigmas(mode, self.bootstrap_steps(mode))

        def gens() -> list:
            return [sample_generator(opts.seed, PILOT_SAMPLE, s) for s in ids]

        ref = self.bootstrap_ref_cg() if ref_cg is None else int(ref_cg)
        x_ref = self._holdout_run(y, m, mode, maps, gens(), ref, resid, sig)
        k_ref = fft2c(maps * x_ref.unsqueeze(-3))
        sn = self._noise_sigma(y, m)
        g = torch.Generator().manual_seed(int(opts.seed) % 2**63 ^ 0xB007)
        y_star = perturb_data(k_ref * m, m, sn, g) if sn is not None else k_ref * m
        cache: dict[str, Any] = {}

        def evaluate(n: int) -> float:
            x = self._holdout_run(y_star, m, mode, maps, gens(), n, resid, sig, cache)
            return float(bootstrap_error(x, maps, k_ref).sum())

        return evaluate

    def pilot(self, kspace, mask, mode: str, maps: torch.Tensor | None = None, slice_ids: Sequence[int] = (0,), *,
              compressed: bool = False, steps: int | None = None):
        """The hold-out pilot of :meth:`tune`: ``(evaluate, split info)`` where ``evaluate(n, resid)`` runs the sampler
        (``steps``, default ``pilot_steps``) with ``n`` CG iterations per step and phase prior ``resid`` (default:
        the run's) on the kept samples of ``kspace``
        and returns the relative error of its prediction of the hidden ones (summed over the slices); None when
        the mask leaves nothing to hide. Every ``n`` sees the same sampler noise."""
        opts = self.opts
        prepared = self._holdout_data(kspace, mask, mode, maps, compressed=compressed, line_cap=PILOT_LINE_CAP)
        if prepared is None:
            return None
        y, maps, split, fit, hold = prepared
        ids = [int(i) for i in slice_ids]
        sig = self._sigmas(mode, opts.pilot_steps if steps is None else steps)
        cache: dict[str, Any] = {}  # every pilot runs on the same kept samples: one phase reference

        def evaluate(n: int, resid: float | None = None) -> float:
            gen = [sample_generator(opts.seed, PILOT_SAMPLE, s) for s in ids]  # the same noise for every n
            x = self._holdout_run(y, fit, mode, maps, gen, n, resid, sig, cache)
            return float(holdout_error(x, maps, hold, y * hold).sum())

        return evaluate, _split_info(split, opts.holdout_frac)

    def _holdout_data(self, kspace, mask, mode: str, maps: torch.Tensor | None, *, compressed: bool, stream: int = 0,
                      line_cap: float = 0.0, own_maps: bool = False):
        """(y, maps, split, fit, hold) for a hold-out run on ``kspace`` (P, C, H, W): the measured data (coil
        compressed unless ``compressed``), the coil maps (estimated from the centre, which is never hidden) and a
        seeded split of the measured samples (``stream``: which of the independent splits; ``line_cap``: see
        :func:`~mrdiff_cli.samplers.selftune.split_holdout`; ``own_maps``: the run's maps, not the pilots'); None
        when the mask leaves nothing to hide."""
        dev, opts = self.device, self.opts
        split = split_holdout(np.asarray(mask, dtype=np.float32), opts.holdout_frac, opts.seed, stream=stream,
                              line_cap=line_cap)
        if split is None:
            return None
        # the centre is never hidden
        y, maps, _ = self._measured(kspace, mask, mode, maps, compressed=compressed, own_maps=own_maps)
        fit, hold = torch.as_tensor(split.fit).to(dev), torch.as_tensor(split.hold).to(dev)
        return y, maps, split, fit, hold

    def _measured(self, kspace, mask, mode: str, maps: torch.Tensor | None, *, compressed: bool, own_maps: bool = False):
        """(y, maps, m) for a pilot on ``kspace`` (P, C, H, W): the measured data on this device (coil compressed
        unless ``compressed``), the coil maps (given, or estimated from y: the pilots' preset, or the run's own with
        ``own_maps``) and the mask (H, W) as a tensor."""
        dev = self.device
        m = torch.as_tensor(np.asarray(mask, dtype=np.float32)).to(dev)
        y = torch.as_tensor(kspace).to(dev, torch.complex64) * m
        if not compressed:
            y, maps = self._compress(y, maps, mode)
        if maps is None:
            maps = self.estimate_maps(y, m, None if own_maps else self.pilot_maps_kind())
        return y, maps.to(dev), m

    def _holdout_run(self, y: torch.Tensor, fit: torch.Tensor, mode: str, maps: torch.Tensor, gen, n: int,
                     resid: float | None, sigmas: torch.Tensor, cache: dict[str, Any] | None = None) -> torch.Tensor:
        """The sampler's final complex estimates (B, H, W) from the kept samples ``y * fit`` with ``n`` CG iterations
        per step and phase prior ``resid``, in the units of y (SENSE mode); ``cache``: see :meth:`_sample`."""
        rec: dict[str, Any] = {}

        def inner(scale: torch.Tensor, support: torch.Tensor) -> LastEstimate:
            rec.update(dc=LastEstimate(n), scale=scale.reshape(-1, 1, 1), support=support)
            return rec["dc"]

        self._sample(y * fit, fit, mode, maps, gen, lambda i, k: None, inner=inner, sigmas=sigmas, resid=resid,
                     cache=cache)
        return rec["dc"].last * rec["support"] * rec["scale"]

    def measure_spread(self, kspace, mask, mode: str, maps: torch.Tensor | None = None,
                       slice_ids: Sequence[int] = (0,), *, compressed: bool = False, samples: int | None = None,
                       callback: Callable[[int], None] | None = None) -> None:
        """Per-scan uncertainty calibration (``mrdiff uncertainty``): hide ``holdout_frac`` of the measured samples
        of ``kspace`` (P, C, H, W; another split than the CG-count pilot's), draw ``samples`` (default
        ``min(4, K)``) posterior samples of those slices with the run's settings (the maps: ``spread_maps``) from the
        rest, and compare how far their mean misses the hidden data with how much they disagree there
        (:class:`HoldoutSpread`). Sets
        ``self.spread`` (None, with ``self.spread_note``, where it cannot run: not SENSE mode with the fast
        sampler, K = 1, or nothing to hide). ``callback(k)``: called once as the run starts."""
        self.spread, self.spread_note = None, None
        opts = self.opts
        maps_given = maps is not None
        if not self._holdout_applies(mode) or opts.samples < 2:
            self.spread_note = (f"the hold-out calibration needs SENSE mode with the fast sampler and K >= 2 "
                                f"(this run: {mode}, {opts.sampler}, K = {opts.samples})")
            return
        # the maps: spread_maps (the pilots' preset by default: espirit when the samples' maps are adaptive)
        own = opts.spread_maps == SpreadMaps.own or self.pilot_maps_kind() is None
        prepared = self._holdout_data(kspace, mask, mode, maps, compressed=compressed, stream=1, own_maps=own)
        if prepared is None:
            self.spread_note = f"too few measured samples outside the centre to hide {opts.holdout_frac:.0%}"
            return
        y, maps, split, fit, hold = prepared
        if callback is not None:
            callback(1)
        K = int(samples) if samples is not None else min(4, int(opts.samples))
        ids = [int(i) for i in slice_ids]
        P = y.shape[0]
        gen = [sample_generator(opts.seed, PILOT_SAMPLE - 1 - j, s) for j in range(K) for s in ids]
        shared = self._shared_phase_ref(y * fit, fit, mode, maps)
        x = self._holdout_run(y.repeat(K, 1, 1, 1), fit, mode, maps.repeat(K, 1, 1, 1), gen, self.n_cg(),
                              None, self._sigmas(mode),
                              {"phase_ref": shared.repeat(K, 1, 1)} if shared is not None else None)
        preds = hold * fft2c(maps.repeat(K, 1, 1, 1) * x.unsqueeze(-3))

        noise = estimate_kspace_noise(y, np.asarray(mask, dtype=np.float32))
        per_slice = holdout_spread(preds.reshape(K, P, *preds.shape[1:]), y * hold, hold, noise)
        total = per_slice[0]
        for sp in per_slice[1:]:
            total = total + sp
        which = "given" if maps_given else str(self.maps_kind() if own else self.pilot_maps_kind())
        self.spread = ScanSpread(total, float(noise.mean()), {**_split_info(split, opts.holdout_frac), "coil_maps": which},
                                 ids, [sp.ratio2(opts.samples) for sp in per_slice])

    def wants_support_choice(self, mode: str) -> bool:
        """Whether :meth:`choose_support` has a choice to make: adaptive maps, ``maps_support`` auto, hold-out runs
        possible (:meth:`_holdout_applies`), not made yet."""
        return (self.maps_kind() == CoilMaps.adaptive and self.opts.maps_support == MapsSupport.auto
                and self._holdout_applies(mode) and self.support_choice is None)

    def choose_support(self, kspace, mask, mode: str, slice_ids: Sequence[int] = (0,), *, compressed: bool = False,
                       callback: Callable[[int], None] | None = None) -> None:
        """Choose the adaptive maps' support for every later :meth:`reconstruct` call of this object (one scan) from
        ``kspace`` (P, C, H, W), the pilot slice(s): the own support (eigenvalue 0.95 of the adaptive subspace)
        when the hold-out pilot (:meth:`pilot`: the count pilot's split and sampler noise, ``pilot_steps``, at this
        run's CG count and phase prior — call after :meth:`tune`) predicts the hidden samples with it by more than
        ``support_margin`` better than with the release support; where both supports are the same mask, no pilot
        runs. Records the choice and its evidence in ``self.support_choice``. ``callback(k)`` as pilot k starts."""
        if not self.wants_support_choice(mode):
            return
        m = torch.as_tensor(np.asarray(mask, dtype=np.float32)).to(self.device)
        y = torch.as_tensor(kspace).to(self.device, torch.complex64) * m
        if not compressed:
            y, _ = self._compress(y, None, mode)
        release, own_maps = self.support_maps(y, m)
        maps = {MapsSupport.release: release.to(self.device), MapsSupport.own: own_maps.to(self.device)}
        inside = {s: mp.abs().sum(1) > 0 for s, mp in maps.items()}
        rec: dict[str, Any] = {"support": "release", "margin": float(self.opts.support_margin),
                               "support_fraction": {str(s): round(float(v.float().mean()), 4) for s, v in inside.items()}}
        if torch.equal(inside[MapsSupport.release], inside[MapsSupport.own]):
            self.support_choice = {**rec, "chosen_by": "the supports agree: no pilot"}
            return
        errors: dict[str, float] = {}
        runs = {}
        for k, (s, mp) in enumerate(maps.items()):
            pilot = self.pilot(y, mask, mode, mp, slice_ids, compressed=True)
            if pilot is None:
                self.support_choice = {**rec, "chosen_by": f"fallback: too few measured samples outside the centre "
                                                           f"to hide {self.opts.holdout_frac:.0%}"}
                return
            if callback is not None:
                callback(k + 1)
            runs[str(s)] = pilot[0]
            errors[str(s)] = round(pilot[0](self.n_cg(), self.phase_resid()), 6)
        own = errors["own"] < (1.0 - float(self.opts.support_margin)) * errors["release"]
        self.support_choice = {**rec, "support": "own" if own else "release",
                               "chosen_by": "k-space hold-out cross-validation", "holdout_error": errors,
                               "at_cg": self.n_cg(), "steps": int(self.opts.pilot_steps)}
        n = self.n_cg()
        higher = [c for c in self.count_candidates() if c > n]
        if own and self.opts.count_recheck and self.tuning is not None and self.opts.n_cg is None and higher:
            nxt = min(higher)
            e_next = round(runs["own"](nxt, self.phase_resid()), 6)
            if self._steps_up(n, errors["own"], nxt, e_next):
                self.count_recheck = nxt
            self.support_choice["count_recheck"] = {"holdout_error": {str(n): errors["own"], str(nxt): e_next},
                                                    "cg_iters": self.n_cg()}

    def consistency_report(self, mode: str, y: torch.Tensor | None = None, mask=None) -> dict[str, Any] | None:
        """How strongly this run enforced the data and why (the metrics JSON's ``consistency`` block): the CG
        count, who chose it (--cg-iters, the hold-out pilot, or the fallback) with the pilot's evidence, and the
        k-space noise std estimated from ``y`` (P, C, H, W) / ``mask`` when given (calibration-matrix tail)."""
        if self.opts.method != Method.diffusion:
            return None
        if self.opts.n_cg is not None:
            how = "fixed (--cg-iters)"
        elif self.tuning is not None:
            how = self.tuning.method
        elif not mode_spec(mode).sense_image or self.opts.sampler != SamplerName.fast:
            how = f"fixed: self-tuning applies to SENSE mode with the fast sampler (this run: {mode}, {self.opts.sampler})"
        else:
            how = f"fixed: {self.tuning_note}" if self.tuning_note else "fixed"
        rep: dict[str, Any] = {"cg_iters": self.n_cg(), "chosen_by": how, "coil_maps": str(self.maps_kind())}
        if self.support_kind() is not None:
            rep["coil_map_support"] = self.support_choice or {
                "support": str(self.support_kind()),
                "chosen_by": "fixed (--maps-support)" if self.opts.maps_support != MapsSupport.auto
                else "fixed: no hold-out pilot applies to this run (release support)"}
        if self.tuning is not None and self.pilot_maps_kind() is not None:
            rep["pilot_coil_maps"] = str(self.pilot_maps_kind())
        if self.opts.complex_mode == ComplexMode.complex:
            from ..samplers.adapters import prior_demod_frac

            demod = prior_demod_frac(self.prior)
            rep["phase_reference"] = (f"complex-valued prior, input demodulated by the start's low-resolution phase "
                                      f"({demod:g} of the matrix)" if demod > 0 else "none (complex-valued prior)")
        if self.opts.complex_mode == ComplexMode.phase:
            rep["phase_reference"] = (f"l1-wavelet SENSE (lambda {self.opts.phase_cs_lambda:g}, "
                                      f"{self.opts.phase_cs_iters} iterations, {self.opts.phase_frac:g} of the matrix)"
                                      if self.opts.phase_cs_lambda > 0 and mode_spec(mode).sense_image
                                      else "centre (24-pixel low-resolution phase of the start)")
            rep["phase_resid"] = self.phase_resid()
            rep["phase_resid_chosen_by"] = (
                "fixed (--phase-resid)" if self.opts.phase_resid is not None
                else "k-space hold-out cross-validation" if self.tuning is not None and "phase_resid" in self.tuning.extra
                else "fixed (default)")
        if self.tuning is not None:
            rep["evidence"] = self.tuning.summary()
        if y is not None and mask is not None:
            sn = estimate_kspace_noise(y, np.asarray(mask, dtype=np.float32))
            rep["kspace_noise_std"] = [float(v) for v in sn] if bool((sn > 0).all()) else None
        return rep

    def phase_resid(self) -> float:
        """The phase-mode residual prior std this run uses: forced (``--phase-resid``), chosen by the pilot, or the
        fallback."""
        if self.opts.phase_resid is not None:
            return float(self.opts.phase_resid)
        if self.tuning is not None and "phase_resid" in self.tuning.extra:
            return float(self.tuning.extra["phase_resid"])
        return FALLBACK_PHASE_RESID

    def n_cg(self) -> int:
        """The CG count this run uses: forced (``--cg-iters``), chosen by the pilot, or the fallback."""
        if self.opts.n_cg is not None:
            return int(self.opts.n_cg)
        if self.count_recheck is not None:
            return self.count_recheck
        return self.tuning.n_cg if self.tuning is not None else FALLBACK_CG

    # ---------------------------------------------------------------- main entry
    def reconstruct(
        self,
        kspace: np.ndarray | torch.Tensor,
        mask: np.ndarray | torch.Tensor,
        mode: str,
        maps: torch.Tensor | None = None,
        sample_seed_offset: int = 0,
        keep_samples: bool = False,
        callback: Callable[[int, int], None] | None = None,
        slice_ids: Sequence[int] | None = None,
    ) -> BatchResult:
        """kspace (B, C, H, W) fully or already undersampled; mask (H, W) applied to it (y = M k).

        ``slice_ids``: the slices' indices in their volume (default ``0 .. B-1``). Sample k of slice s draws
        its noise from its own generator seeded by (seed, sample_seed_offset + k, s), so a slice's result
        does not depend on which other slices share its batch (shards, --batch-size, one by one).
        """
        dev = self.device
        k = torch.as_tensor(kspace).to(dev, torch.complex64)
        m = torch.as_tensor(np.asarray(mask, dtype=np.float32)).to(dev)
        y = k * m
        zf = zero_filled(y)
        if self.opts.method == Method.zero_filled:
            return BatchResult(zf.cpu().numpy(), None, None, zf.cpu().numpy())
        y, maps = self._compress(y, maps, mode)
        given = maps is not None  # the caller's maps: the pilots use them too, and there is no support to choose
        ids = list(range(y.shape[0])) if slice_ids is None else [int(i) for i in slice_ids]
        if len(ids) != y.shape[0]:
            raise ValueError(f"{len(ids)} slice_ids for {y.shape[0]} slices")
        mid = y.shape[0] // 2  # no tune() / choose_support() / measure_spread() beforehand: the middle slice is the pilot
        if self.opts.method == Method.diffusion and self.self_tuning(mode) and self.tuning is None:
            self.tune(y[mid:mid + 1], m, mode, maps[mid:mid + 1] if given else None, [ids[mid]], compressed=True)
        if self.opts.method == Method.diffusion and not given and self.wants_support_choice(mode):
            self.choose_support(y[mid:mid + 1], m, mode, [ids[mid]], compressed=True)
        if self.opts.method == Method.sense or mode_spec(mode).needs_maps:
            if maps is None:
                maps = self.estimate_maps(y, m)
            maps = maps.to(dev)
        if self.opts.method == Method.sense:
            x = cg_sense(y, SenseOp(m, maps), max(self.opts.cg_init_iters, 20))
            return BatchResult(x.abs().cpu().numpy(), None, None, zf.cpu().numpy())
        K = max(1, int(self.opts.samples))
        noise = self._noise_sigma(y, m) if self.opts.noise_dc != NoiseConsistency.none else None
        if self.wants_spread() and self.spread is None and self.spread_note is None:
            self.measure_spread(y[mid:mid + 1], m, mode, maps[mid:mid + 1] if given else None, [ids[mid]],
                                compressed=True)
        stats = running_mean_var(self._draw(y, m, mode, maps, K, sample_seed_offset, keep_samples, callback, ids, noise))
        mean, var, _ = stats
        samples = torch.stack(self._kept) if keep_samples and self._kept else None
        mean_np = mean.cpu().numpy()
        raw = var.cpu().numpy() if K > 1 else None
        noise_var = None
        hc = self._applied_holdout()
        # the noise map (two CG solves per slice) only where the per-scan calibration will use it
        if raw is not None and hc is not None and hc.noise_weight > 0 and self.spread is not None and maps is not None:
            noise_var = self.noise_variance_map(y, m, maps, self.spread.noise_std, ids)
        return BatchResult(
            mean_np,
            self.calibrated_variance(mean_np, raw, int(k.shape[1]), noise_var) if raw is not None else None,
            samples.cpu().numpy() if samples is not None else None,
            zf.cpu().numpy(),
            raw_variance=raw,
            noise_sigma=noise.cpu().numpy() if noise is not None else None,
        )

    def _calibration(self, n_coils: int):
        """The fixed calibration map for a scan of ``n_coils`` coils (its single-coil block for one coil, when
        present); None for the raw spread."""
        from .calibration import Calibration

        c = self.opts.calibration
        if c is None or isinstance(c, str):  # "none", or "model" never resolved (no bundle: raw spread)
            return None
        return (Calibration.from_dict(c) if isinstance(c, dict) else c).for_coils(n_coils)

    def _holdout_calibration(self) -> HoldoutCalibration | None:
        c = self.opts.calibration
        block = c.get("holdout") if isinstance(c, dict) else None
        return HoldoutCalibration.from_dict(block) if block is not None else None

    def _applied_holdout(self) -> HoldoutCalibration | None:
        """The per-scan calibration's constants where the hold-out run gave a usable spread, else None."""
        hc = self._holdout_calibration()
        return hc if hc is not None and self.spread is not None and self.spread.usable() else None

    def wants_spread(self) -> bool:
        """Whether the K > 1 std is calibrated per scan by the hold-out run (the calibration has a ``holdout``
        block and K >= 2)."""
        return self.opts.method == Method.diffusion and self.opts.samples > 1 and self._holdout_calibration() is not None

    def calibration_applied(self, n_coils: int) -> str:
        """Which calibration the std of this run got: "holdout" (per scan), the fixed map's block ("main" /
        "single_coil"), or "none" (the raw sample spread)."""
        if self.wants_spread() and self._applied_holdout() is not None:
            return "holdout"
        cal = self._calibration(n_coils)
        if cal is None:
            return "none"
        from .calibration import Calibration

        c = self.opts.calibration
        return Calibration.from_dict(c).block_for(n_coils) if isinstance(c, dict) else "main"

    def noise_variance_map(self, y: torch.Tensor, m: torch.Tensor, maps: torch.Tensor, sigma: float,
                           slice_ids: Sequence[int], draws: int = 2) -> np.ndarray:
        """(B, H, W) variance of the magnitude that measurement noise of std ``sigma`` (complex, per k-space value)
        puts into the image through the consistency step: ``draws`` seeded noise-only k-spaces on the measured
        locations, each through the run's CG count from zero (SENSE), |x|^2 / 2 averaged. The shape of the noise
        part of the error (the g-factor pattern) that the samples' spread does not carry (they all reproduce the
        same noisy data)."""
        B = y.shape[0]
        if sigma <= 0:
            return np.zeros((B, *y.shape[-2:]), np.float32)
        A = SenseOp(m, maps)
        support = coil_support(maps, torch.float32)
        acc = torch.zeros(B, *y.shape[-2:], device=y.device)
        for r in range(draws):
            gen = [sample_generator(self.opts.seed, PILOT_SAMPLE - 2 - r, s) for s in slice_ids]
            n = m * (sigma / math.sqrt(2.0)) * randn_like(y, gen)
            x = cg_dc(torch.zeros(y.shape[0], *y.shape[-2:], dtype=y.dtype, device=y.device), n, A, 0.0, self.n_cg())
            acc += (x * support).abs().square() / 2.0
        return (acc / draws).cpu().numpy()

    def calibrated_variance(self, mean: np.ndarray, raw_var: np.ndarray, n_coils: int,
                            noise_var: np.ndarray | None = None) -> np.ndarray:
        """The variance map of K > 1 samples: per scan from the hold-out run where it ran
        (:mod:`.scan_calibration`; ``noise_var``: :meth:`noise_variance_map`), else from the fixed calibration
        map, else the raw sample variance."""
        hc = self._applied_holdout()
        if hc is not None and self.spread is not None:
            return hc.std(raw_var, self.spread, int(self.opts.samples), noise_var) ** 2
        cal = self._calibration(n_coils)
        return cal.std(mean, raw_var) ** 2 if cal is not None else raw_var

    def _noise_sigma(self, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor | None:
        """(B,) complex noise std of the measured k-space (None when the data are treated as exact)."""
        if self.opts.noise is None:
            return estimate_kspace_noise(y, m.cpu()).to(y.device)
        if float(self.opts.noise) <= 0:
            return None
        return torch.full((y.shape[0],), float(self.opts.noise), device=y.device)

    def _compress(self, y: torch.Tensor, maps: torch.Tensor | None, mode: str):
        """Coil compression (ops.compress) per slice: y and given maps → virtual coils. Auto only in SENSE mode;
        ``self.compression`` records coils → virtual coils and the smallest retained energy fraction."""
        from ..ops.compress import apply_compression, compression_matrices, resolve_virtual_coils

        C = y.shape[1]
        req = self.opts.compress_coils
        sense = self.opts.method == Method.sense or mode_spec(mode).sense_image
        n = C if C < 2 or (req is None and not sense) else resolve_virtual_coils(req, C)
        self.compression = {"coils": C, "virtual_coils": n, "retained_min": 1.0}
        if n >= C:
            return y, maps
        U, retained = compression_matrices(y, n)
        self.compression["retained_min"] = float(retained.min())
        return apply_compression(y, U), (apply_compression(maps.to(y.device), U) if maps is not None else None)

    def maps_kind(self) -> CoilMaps:
        """The run's coil maps: ``coil_maps``, with ``auto`` resolved (adaptive for diffusion runs, one sample or K >
        1, the settings they were tested in; espirit for ``--method sense`` / zero-filled)."""
        if self.opts.coil_maps == CoilMaps.auto:
            return CoilMaps.adaptive if self.opts.method == Method.diffusion else CoilMaps.espirit
        return CoilMaps(self.opts.coil_maps)

    def pilot_maps_kind(self) -> CoilMaps | None:
        """The preset the self-tuning pilots estimate their maps with (None: the run's own maps)."""
        if self.opts.pilot_maps is not None:
            return CoilMaps(self.opts.pilot_maps)
        return CoilMaps.espirit if self.maps_kind() == CoilMaps.adaptive else None

    def support_kind(self) -> MapsSupport | None:
        """The support of the run's adaptive maps: ``maps_support``, with ``auto`` resolved (the per-scan choice
        once :meth:`choose_support` made it, else release); None where the run's maps are not adaptive."""
        if self.maps_kind() != CoilMaps.adaptive:
            return None
        if self.opts.maps_support != MapsSupport.auto:
            return MapsSupport(self.opts.maps_support)
        return MapsSupport(self.support_choice["support"]) if self.support_choice else MapsSupport.release

    def estimate_maps(self, y: torch.Tensor, m: torch.Tensor, kind: CoilMaps | None = None,
                      support: MapsSupport | None = None) -> torch.Tensor:
        """SENSE maps (B, C, H, W) from the calibration centre of y: the run's own (``coil_maps`` and the espirit_*
        options; adaptive ones with :meth:`support_kind`'s support, or ``support``) or, with ``kind``, that preset
        (ESPIRIT_MAPS / ADAPTIVE_MAPS with the release support; ``pilot_maps``)."""
        from ..ops.coils import estimate_maps

        preset: dict[str, Any] = {}
        if kind is None and self.maps_kind() == CoilMaps.adaptive:
            support = support or self.support_kind()
            preset = {**ADAPTIVE_MAPS, **(OWN_SUPPORT if support == MapsSupport.own else {})}
        elif kind is not None:
            preset = MAPS_PRESETS[kind]
        o = replace(self.opts, **preset) if preset else self.opts
        return estimate_maps(y, m, method="espirit" if o.espirit else "lowres", **_espirit_kwargs(o, y, m),
                             eig_thresh=float(o.espirit_eig), support_sigma=o.espirit_support_sigma)

    def support_maps(self, y: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The adaptive maps (B, C, H, W) with the release and with the own support: the same as
        ``estimate_maps(y, m, support=release / own)``, from one ESPIRiT eigen-pass per slice."""
        from ..ops.coils import estimate_maps_supports

        o = replace(self.opts, **ADAPTIVE_MAPS)
        if not o.espirit:  # low-resolution maps: no eigenvalues to share
            return (self.estimate_maps(y, m, support=MapsSupport.release),
                    self.estimate_maps(y, m, support=MapsSupport.own))
        return estimate_maps_supports(y, m, **_espirit_kwargs(o, y, m), eig_thresh=float(o.espirit_eig),
                                      support_sigma=o.espirit_support_sigma, eig_own=float(OWN_SUPPORT["espirit_eig"]))

    def _draw(self, y, m, mode, maps, K, seed_offset, keep, callback, slice_ids, noise=None):
        """Yield K magnitude samples (B, H, W); samples are batched together when memory allows.

        ``noise`` (B,): measurement noise std. With ``noise_dc`` perturb/both each sample sees the data plus its
        own draw of that noise on the measured locations (randomise-then-optimise: the samples then also spread
        by what the noise leaves undetermined, and their mean averages the extra draws out)."""
        self._kept = []
        B = y.shape[0]
        per_sample_items = B * mode_spec(mode).images(y.shape[1]) * (2 if self._is_realimag(mode) else 1)
        group = max(1, min(K, self.opts.batch_size // max(1, per_sample_items)))
        total_steps = default_steps(self.opts, mode) * math.ceil(K / group)
        done = [0]

        def cb(i: int, n: int) -> None:
            if callback is not None:
                done[0] += 1
                callback(done[0], total_steps)

        # every sample of a slice sees the same data: its L1-wavelet phase reference is computed once, not per sample
        perturbed = noise is not None and self.opts.noise_dc.perturbed
        shared = self._shared_phase_ref(y, m, mode, maps) if K > 1 and not perturbed else None
        k0 = 0
        while k0 < K:
            g = min(group, K - k0)
            # batch order of yy is sample-major: element j * B + b is sample k0 + j of slice b
            gen = [sample_generator(self.opts.seed, seed_offset + k0 + j, s) for j in range(g) for s in slice_ids]
            yy = y.repeat(g, 1, 1, 1)
            nn = noise.repeat(g) if noise is not None else None
            if nn is not None and self.opts.noise_dc.perturbed:
                yy = perturb_data(yy, m, nn, gen)
            mm = maps.repeat(g, 1, 1, 1) if maps is not None else None
            cache = {"phase_ref": shared.repeat(g, 1, 1)} if shared is not None else None
            out = self._sample(yy, m, mode, mm, gen, cb, nn, cache=cache)  # (g*B, H, W)
            for j in range(g):
                s = out[j * B : (j + 1) * B]
                if keep:
                    self._kept.append(s.cpu())
                yield s
            k0 += g

    def _shared_phase_ref(self, y: torch.Tensor, m: torch.Tensor, mode: str, maps: torch.Tensor | None) -> torch.Tensor | None:
        """The SENSE problem's L1-wavelet phase reference of the slices ``y`` (B, ...), for all their samples; None
        where the run has none (not SENSE, or the centre phase)."""
        popts = self.posterior_options()
        if popts.phase_cs_lambda <= 0 or not mode_spec(mode).sense_image or maps is None:
            return None
        return mode_spec(mode).build(y, m, maps, popts).phase_ref

    def _zeta(self) -> float | str:
        """Fresh noise each step (zeta = 1) for point estimates and, by default, for K > 1 samples too.
        DDPM-ancestral renoise (``zeta="ancestral"``) keeps the closed-form posterior spread, but on
        the tune split the mean of 8 ancestral samples was 0.5-2 dB below the mean of 8 zeta = 1 samples (and
        below one zeta = 1 sample), for 0.01-0.03 more Spearman; the shipped calibration rescales the narrower
        zeta = 1 spread (docs/uncertainty.md)."""
        return self.opts.zeta if self.opts.zeta is not None else 1.0

    def _is_realimag(self, mode: str) -> bool:
        """The prior sees real and imaginary parts separately (two network images per image)."""
        return self.opts.complex_mode == ComplexMode.realimag and not mode_spec(mode).real

    def posterior_options(self) -> PosteriorOptions:
        """What the per-step algorithm (samplers.posterior) takes from this run: the sampler, the CG count in use
        (forced, tuned or the fallback), the consistency and sampler settings."""
        o = self.opts
        cs = o.phase_cs_lambda if o.complex_mode == ComplexMode.phase else 0.0
        return PosteriorOptions(sampler=o.sampler, n_cg=self.n_cg(), mu=o.mu, cg_init_iters=o.cg_init_iters,
                                sense_every=o.sense_every, object_support=o.support, zeta=self._zeta(), snr=o.snr,
                                phase_cs_lambda=cs, phase_cs_iters=o.phase_cs_iters, phase_frac=o.phase_frac)

    def _sample(self, y, m, mode, maps, gen, cb, noise=None, inner=None, sigmas=None, resid=None,
                cache: dict[str, Any] | None = None) -> torch.Tensor:
        """One batch of posterior samples (B, H, W) magnitude: the coil mode's problem (samplers.posterior.MODES)
        through :func:`~mrdiff_cli.samplers.posterior.sample_posterior`. ``noise`` (B,): the measurement noise std
        (used by the proximal weight with noise_dc prox/both); ``inner(scale, support)``: the SENSE consistency step
        to use instead of the run's own (the self-tuning pilot's); ``sigmas``: another noise schedule (the
        pilot's); ``resid``: another phase prior (the pilot's); ``cache``: kept between calls on the same data (the
        pilots): the SENSE problem's phase reference is computed once."""
        sig = self._sigmas(mode) if sigmas is None else sigmas
        popts = self.posterior_options()
        reuse = {"phase_ref": cache["phase_ref"]} if cache and "phase_ref" in cache else {}
        problem = mode_spec(mode).build(y, m, maps, popts, **reuse)
        if cache is not None and problem.phase_width is not None:  # an L1-wavelet reference: worth keeping
            cache["phase_ref"] = problem.phase_ref
        return sample_posterior(problem, lambda ref, width: self._denoiser(mode, ref, self.opts.batch_size, resid, width),
                                sig, popts,
                                noise=noise if self.opts.noise_dc.weighted else None, inner=inner, generator=gen,
                                callback=cb)


def _complex_mode_for(prior, opts: ReconOptions) -> ReconOptions:
    """The options with the complex mode the prior takes: a complex-valued prior always runs in ``complex`` mode
    (no phase estimate: the default ``phase`` is replaced), a magnitude prior never does."""
    from ..samplers.adapters import is_complex_prior

    if prior is None or opts.method != Method.diffusion:
        return opts
    if is_complex_prior(prior):
        if opts.complex_mode == ComplexMode.realimag:
            raise UsageError("'realimag' needs a magnitude prior; this model is complex-valued", option="complex_mode")
        magnitude_only = {"phase_resid": opts.phase_resid is not None, "phase_ref": opts.phase_cs_lambda > 0}
        for option, given in magnitude_only.items():
            if given:
                raise UsageError("applies to a magnitude prior (e.g. the bundled score-brain-128); this model is "
                                 "complex-valued and has no phase estimate or phase prior", option=option)
        return replace(opts, complex_mode=ComplexMode.complex) if opts.complex_mode != ComplexMode.complex else opts
    if opts.complex_mode == ComplexMode.complex:
        raise UsageError("'complex' needs a complex-valued model (trained with `complex`)", option="complex_mode")
    return opts


def _split_info(split, frac: float) -> dict[str, Any]:
    return {"fraction": frac, "kind": split.kind, "hidden": split.n_hold, "of_measured_outside_centre": split.n_candidates}
