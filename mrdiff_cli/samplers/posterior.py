"""One batch of posterior samples from undersampled k-space, per coil mode: what runs around the sampler.

For a batch of measured k-space ``y`` (B, C, H, W) with mask ``m`` the coil mode's row of :data:`MODES` builds a
:class:`Problem`, and :func:`sample_posterior` runs it:

    problem = MODES[mode].build(y, m, maps, options)
        A          the forward operator (ops.operators: SenseOp, CoilwiseOp)
        x_init     the start: CG-SENSE (sense) or the zero-filled coil images (coil-wise modes)
        scale      the prior's normalisation: the 99th percentile of |x_init| per image (per coil image coil-wise);
                   the sampler works on y / scale and x_init / scale
        phase_ref  the image whose low-resolution phase a phase-mode denoiser demodulates: x_init, or (sense with
                   ``phase_cs_lambda`` > 0) an L1-wavelet SENSE reconstruction (ops.sparse), low-passed to
                   ``phase_frac`` of the matrix
    dc = problem.consistency(noise, inner)
                   the consistency step of every sampler step (samplers.dc): proximal CG (fast sampler, mu fixed or
                   DiffPIR's sigma_n^2 / sigma_i^2 with measurement noise) or the seed's hard projection (pc), then the
                   mode's projection: the coils' support (sense), the real part (real), a low-resolution object
                   support (single-coil, fast sampler); hybrid adds the SENSE sweep every ``sense_every`` steps
    x = sampler(denoise, y / scale, A, sigmas, x_init / scale, dc=dc)     (samplers.fast / samplers.pc)
    problem.finish(x, dc, sigmas)
                   the final consistency step (pc: one more proximal CG step inside the support (sense) or the loop's
                   step; fast, coil-wise: the hard projection, so the output reproduces the measured k-space), back to
                   the data's units, magnitude: |x| (sense), RSS of the coil images (single, real, ssos), or the
                   SENSE combination (hybrid)

A new coil mode is a row of :data:`MODES` (and a member of :class:`~mrdiff_cli.samplers.modes.CoilMode`), with a
new :class:`Problem` class where it is a new family. The denoiser comes from the caller
(``denoiser_for(phase_ref, phase_width)``: the phase adapter demodulates that image's phase), so this module needs
no prior. Also here: the baselines
(:func:`zero_filled`, :func:`cg_sense`) and the K > 1 data perturbation (:func:`perturb_data`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from ..ops.fft import ifft2c, rss
from ..ops.operators import CoilwiseOp, LinearOperator, SenseOp, sense_combine
from ..ops.sparse import l1_wavelet_sense
from . import SamplerName, get_sampler
from .dc import HybridSenseDC, Projected, ProximalDC, SoftDC, cg_dc
from .modes import CoilMode
from .noise import Generators, randn_like
from .protocols import DCStep, Denoiser

# the self-tuning pilot's hook: (scale (B,), support) -> the SENSE consistency step to use instead of the run's own
InnerStep = Callable[[torch.Tensor, torch.Tensor], DCStep]


@dataclass(frozen=True)
class PosteriorOptions:
    """What the per-step algorithm takes from a run's options."""

    sampler: str = SamplerName.fast  # fast | pc (the registry's names)
    n_cg: int = 7  # CG iterations of the proximal consistency step (fast sampler; pc: the final step of sense)
    mu: float = 0.0  # its weight when the data are treated as exact
    cg_init_iters: int = 10  # CG-SENSE iterations of the sense start
    sense_every: int = 10  # hybrid: a SENSE sweep every m steps
    object_support: bool = True  # single-coil modes, fast sampler: keep the image inside a low-resolution support
    zeta: float | str = 1.0  # fast sampler: renoise mix
    snr: float = 0.16  # pc sampler: Langevin corrector SNR
    # sense: the phase a magnitude prior demodulates comes from an L1-wavelet SENSE reconstruction (ops.sparse) with
    # this threshold (units of the normalised image; 0 = the low-resolution phase of the CG-SENSE start) ...
    phase_cs_lambda: float = 0.0
    phase_cs_iters: int = 40
    phase_frac: float = 0.5  # ... low-passed to a centre block of this fraction of the matrix

    @property
    def fast(self) -> bool:
        return self.sampler == SamplerName.fast

    def sampler_options(self) -> dict[str, Any]:
        return {"zeta": self.zeta} if self.fast else {"snr": self.snr}


# ------------------------------------------------------------------------------------------------ building blocks


def quantile_scale(img: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Per-batch-element q-quantile of |img| over the last two axes (the prior's normalisation)."""
    flat = img.abs().reshape(img.shape[0], -1).float()
    s = torch.quantile(flat, q, dim=1)
    return torch.where(s > 0, s, torch.ones_like(s))


def zero_filled(y: torch.Tensor) -> torch.Tensor:
    """RSS of the zero-filled coil images, (B, C, H, W) → (B, H, W)."""
    return rss(ifft2c(y), dim=1)


def cg_sense(y: torch.Tensor, A: SenseOp, n_iter: int) -> torch.Tensor:
    """Least-squares SENSE image by CG on A^H A x = A^H y, started at the adjoint (cg_dc with mu = 0 from
    x0 = A^H y is exactly that, on the shift-free grid)."""
    return cg_dc(A.adjoint(y), y, A, 0.0, n_iter)


def coil_support(maps: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """1 where some coil is sensitive (the ESPIRiT support of ``maps`` (B, C, H, W)), else 0: (B, H, W)."""
    return (maps.abs().sum(dim=-3) > 0).to(dtype)


def lowres_support(x: torch.Tensor, width: int = 24, thresh: float = 0.06, dilate: int = 9) -> torch.Tensor:
    """Object support from the Hann-windowed central k-space (alias-free when the centre is fully sampled):
    |low-res image| > thresh × its max, dilated by ``dilate`` pixels (max-pool), per image."""
    from .adapters import lowres_image

    H, W = x.shape[-2:]
    mag = lowres_image(x, width).abs()
    flat = mag.reshape(-1, H, W)
    peak = flat.reshape(flat.shape[0], -1).max(dim=1).values.reshape(-1, 1, 1)
    supp = (flat > thresh * peak).float()[:, None]
    supp = torch.nn.functional.max_pool2d(supp, dilate, stride=1, padding=dilate // 2)[:, 0]
    return supp.reshape(mag.shape).to(torch.complex64)


def sense_magnitude(coil_images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """|SENSE combination| of coil images (B, C, H, W) with ``maps``: (B, H, W)."""
    return sense_combine(coil_images, maps).abs()


def proximal_weight(mu: float, noise: torch.Tensor | None, scale: torch.Tensor) -> float | Callable[[float], torch.Tensor]:
    """mu of the proximal consistency step: the fixed ``mu``, or with the measurement noise std ``noise`` (B,)
    (k-space units) DiffPIR's mu_i = sigma_n^2 / sigma_i^2 in the prior's units (sigma_n / the first image's
    ``scale`` of each batch element)."""
    if noise is None:
        return mu
    sn2 = (noise.reshape(-1).float() / scale.reshape(noise.shape[0], -1)[:, 0].float()) ** 2

    def weight(sigma: float) -> torch.Tensor:
        return sn2 / max(float(sigma) ** 2, 1e-12)

    return weight


def perturb_data(y: torch.Tensor, m: torch.Tensor, noise: torch.Tensor, generator: Generators) -> torch.Tensor:
    """y plus a draw of complex measurement noise of std ``noise`` (B,) on the measured locations (K > 1 samples
    with noise consistency perturb/both: randomise-then-optimise)."""
    return y + m * (noise.reshape(-1, 1, 1, 1) / math.sqrt(2.0)) * randn_like(y, generator)


# ------------------------------------------------------------------------------------------------ the problems


class Problem:
    """One batch in the prior's units, built by a coil mode (see the module docstring)."""

    A: LinearOperator
    y: torch.Tensor  # the measured data / scale
    x_init: torch.Tensor  # the start / scale
    scale: torch.Tensor  # broadcastable to x_init
    # the image whose low-resolution phase a phase-mode denoiser demodulates (x_init unless the mode has a better
    # one), and the width of that low-resolution block in pixels (None: the adapter's default)
    phase_ref: torch.Tensor
    phase_width: int | None = None
    opts: PosteriorOptions

    def consistency(self, noise: torch.Tensor | None = None, inner: InnerStep | None = None) -> DCStep:
        """The consistency step of every sampler step (``noise``: for the proximal weight; ``inner``: the pilot's)."""
        raise NotImplementedError

    def finish(self, x: torch.Tensor, dc: DCStep, sigmas: torch.Tensor) -> torch.Tensor:
        """The sampler's output → the final magnitude (B, H, W) in the data's units."""
        raise NotImplementedError


class SenseProblem(Problem):
    """SENSE (y = P F S x): one complex image per slice (B, H, W), started at CG-SENSE, normalised by its 99th
    percentile, kept zero where no coil is sensitive."""

    def __init__(self, y: torch.Tensor, m: torch.Tensor, maps: torch.Tensor, opts: PosteriorOptions,
                 phase_ref: torch.Tensor | None = None) -> None:
        """``phase_ref``: the phase reference of an earlier problem on the same data (the pilots reuse it)."""
        self.opts = opts
        self.A = SenseOp(m, maps)
        x_init = cg_sense(y, self.A, opts.cg_init_iters)
        self.scale = quantile_scale(x_init).reshape(-1, 1, 1)
        self.y, self.x_init = y / self.scale[:, None], x_init / self.scale
        # SENSE sees no signal where no coil is sensitive (ESPIRiT support): keep the image zero there, as CG-SENSE
        # does; otherwise the prior alone fills that region with sampler noise.
        self.support = coil_support(maps, self.x_init.dtype)
        self.phase_ref, self.phase_width = self.x_init, None
        if opts.phase_cs_lambda > 0:  # the phase of an L1-wavelet reconstruction: finer phase detail than the centre
            self.phase_ref = phase_ref if phase_ref is not None else l1_wavelet_sense(
                self.y, self.A, opts.phase_cs_lambda, opts.phase_cs_iters, x0=self.x_init) * self.support
            self.phase_width = max(1, int(round(opts.phase_frac * min(self.x_init.shape[-2:]))))

    def _project(self, v: torch.Tensor) -> torch.Tensor:
        return v * self.support

    def consistency(self, noise: torch.Tensor | None = None, inner: InnerStep | None = None) -> DCStep:
        o = self.opts
        step: DCStep
        if inner is not None:
            step = inner(self.scale.reshape(-1), self.support)
        else:
            step = ProximalDC(o.n_cg, proximal_weight(o.mu, noise, self.scale)) if o.fast else SoftDC(1.0)
        return Projected(step, self._project)

    def finish(self, x: torch.Tensor, dc: DCStep, sigmas: torch.Tensor) -> torch.Tensor:
        if not self.opts.fast:  # pc: one proximal CG step onto the data at the end
            x = ProximalDC(self.opts.n_cg)(x, self.y, self.A) * self.support
        return (x * self.scale).abs()


class CoilwiseProblem(Problem):
    """Coil by coil (single, real, ssos): x has the shape of y (B, C, H, W), each coil image normalised by its own
    99th percentile, started at the zero-filled coil images; ``real``: the real part only; ``object_support``: a
    low-resolution object support (fast sampler; with no coil sensitivities to lean on, the prior alone would fill
    the background with sampler noise). The RSS of the coil images at the end."""

    def __init__(self, y: torch.Tensor, m: torch.Tensor, maps: torch.Tensor | None, opts: PosteriorOptions, *,
                 real: bool = False, object_support: bool = False) -> None:
        self.opts, self.real = opts, real
        self.A = CoilwiseOp(m)
        x_init = ifft2c(y)
        self.scale = quantile_scale(x_init.reshape(-1, *x_init.shape[-2:])).reshape(*x_init.shape[:2], 1, 1)
        self.y, x_init = y / self.scale, x_init / self.scale
        if real:
            x_init = x_init.real.to(torch.complex64)
        self.x_init = self.phase_ref = x_init
        self.phase_width = None
        self.support = lowres_support(x_init) if object_support and opts.fast and opts.object_support else None

    def _project(self, v: torch.Tensor) -> torch.Tensor:
        v = v.real.to(torch.complex64) if self.real else v
        return v * self.support if self.support is not None else v

    def consistency(self, noise: torch.Tensor | None = None, inner: InnerStep | None = None) -> DCStep:
        o = self.opts
        dc: DCStep = ProximalDC(max(1, o.n_cg), proximal_weight(o.mu, noise, self.scale)) if o.fast else SoftDC(1.0)
        if self.real or self.support is not None:
            dc = Projected(dc, self._project)
        return dc

    def _final_step(self, x: torch.Tensor, dc: DCStep, sigmas: torch.Tensor) -> torch.Tensor:
        """pc: the loop's consistency step once more (at the last step's index)."""
        return dc(x, self.y, self.A, step=len(sigmas) - 1, n_steps=len(sigmas), sigma=float(sigmas[-1]))

    def finish(self, x: torch.Tensor, dc: DCStep, sigmas: torch.Tensor) -> torch.Tensor:
        # pc: the loop's step once more; fast: the hard projection (the output reproduces the measured k-space)
        x = self._final_step(x, dc, sigmas) if not self.opts.fast else SoftDC(1.0)(x, self.y, self.A)
        return rss(x * self.scale, dim=1)


class HybridProblem(CoilwiseProblem):
    """The seed's hybrid mode: coil by coil (as ssos) plus a block-Kaczmarz SENSE sweep every ``sense_every`` steps
    and at the last one (samplers.dc.HybridSenseDC); the SENSE combination of the coil images at the end."""

    def __init__(self, y: torch.Tensor, m: torch.Tensor, maps: torch.Tensor, opts: PosteriorOptions) -> None:
        super().__init__(y, m, maps, opts)
        self.maps, self.y_raw, self.mask = maps, y, m

    def consistency(self, noise: torch.Tensor | None = None, inner: InnerStep | None = None) -> DCStep:
        return HybridSenseDC(super().consistency(noise, inner), self.maps, self.y_raw, self.mask, self.scale,
                             self.opts.sense_every)

    def finish(self, x: torch.Tensor, dc: DCStep, sigmas: torch.Tensor) -> torch.Tensor:
        if not self.opts.fast:
            x = self._final_step(x, dc, sigmas)
        return sense_magnitude(x * self.scale, self.maps)


# ------------------------------------------------------------------------------------------------ the modes


@dataclass(frozen=True)
class ModeSpec:
    """A coil mode: how its batch problem is built, and what the orchestration needs to know about it."""

    build: Callable[..., Problem]  # (y, m, maps, PosteriorOptions) -> Problem
    single_coil: bool  # for single-coil data (else multi-coil)
    needs_maps: bool  # coil sensitivities are estimated for it
    per_coil: bool  # the prior sees every coil image: one network image per coil, slice and sample
    real: bool = False  # the image is real: the prior's real adapter, whatever the complex mode
    # the prior sees one SENSE image per slice: the hold-out pilot and calibration apply (the maps predict the
    # hidden samples from it), and coils are compressed by default
    sense_image: bool = False

    def images(self, n_coils: int) -> int:
        """Network images per slice and sample."""
        return n_coils if self.per_coil else 1


MODES: dict[CoilMode, ModeSpec] = {
    CoilMode.sense: ModeSpec(SenseProblem, single_coil=False, needs_maps=True, per_coil=False, sense_image=True),
    CoilMode.single: ModeSpec(partial(CoilwiseProblem, object_support=True), single_coil=True, needs_maps=False,
                              per_coil=False),
    CoilMode.real: ModeSpec(partial(CoilwiseProblem, real=True, object_support=True), single_coil=True,
                            needs_maps=False, per_coil=False, real=True),
    CoilMode.ssos: ModeSpec(CoilwiseProblem, single_coil=False, needs_maps=False, per_coil=True),
    CoilMode.hybrid: ModeSpec(HybridProblem, single_coil=False, needs_maps=True, per_coil=True),
}


def mode_spec(mode: str) -> ModeSpec:
    """The row of :data:`MODES` for a resolved coil mode (ValueError for ``auto`` or an unknown one)."""
    try:
        return MODES[CoilMode(mode)]
    except (ValueError, KeyError):
        raise ValueError(f"not a resolved coil mode: {mode!r} (one of {', '.join(MODES)})") from None


# ------------------------------------------------------------------------------------------------ the sample


def sample_posterior(problem: Problem, denoiser_for: Callable[[torch.Tensor, int | None], Denoiser], sigmas: torch.Tensor,
                     opts: PosteriorOptions, *, noise: torch.Tensor | None = None, inner: InnerStep | None = None,
                     generator: Generators = None, callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """One batch of posterior samples, magnitude (B, H, W) in the data's units: the registered sampler
    ``opts.sampler`` over ``sigmas`` with ``problem``'s consistency step and the denoiser
    ``denoiser_for(phase_ref, phase_width)`` (the image whose low-resolution phase a phase-mode adapter demodulates),
    then ``problem.finish``. ``noise`` (B,): the measurement noise std for the proximal weight (None: ``opts.mu``);
    ``inner``: the SENSE consistency step to use instead of the run's own (the self-tuning pilot's)."""
    sample = get_sampler(opts.sampler)
    dc = problem.consistency(noise, inner)
    x = sample(denoiser_for(problem.phase_ref, problem.phase_width), problem.y, problem.A, sigmas, problem.x_init, dc=dc,
               generator=generator, callback=callback, **opts.sampler_options())
    return problem.finish(x, dc, sigmas)
