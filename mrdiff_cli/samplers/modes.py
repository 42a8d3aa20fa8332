"""The choices of a k-space reconstruction, one enum per concept (no torch, no numpy: the CLI's options use them).

=====================  =================================================================================
``Method``             diffusion (the posterior sampler) or a baseline: zero-filled, sense (CG-SENSE)
``CoilMode``           how the coils enter the prior: sense, ssos, hybrid (multi-coil), single, real
                       (single-coil); auto picks one from the data (``tasks.reconstruct.choose_coil_mode``)
``ComplexMode``        how a magnitude prior sees complex images (``samplers.adapters.make_denoiser``)
``PhaseRef``           where phase mode takes the phase it demodulates (SENSE)
``NoiseConsistency``   measurement noise in the consistency step of K > 1 samples
``CountPilot``         how the self-tuning pilot scores the CG counts (hold-out, bootstrap, auto)
=====================  =================================================================================

The sampler names are the registry's (:class:`mrdiff_cli.samplers.SamplerName`, ``TASK_SAMPLERS``). What each coil
mode builds per batch (operator, start, normalisation, consistency, magnitude) is one row of
:data:`mrdiff_cli.samplers.posterior.MODES`.

They are ``str`` enums: a member equals its value (``CoilMode.sense == "sense"``), prints as it (``str``, f-strings)
and goes to JSON as it, so options given as strings keep working and outputs do not change.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A str enum that prints as its value (``f"{CoilMode.sense}"`` is ``sense``, not ``CoilMode.sense``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def names(cls) -> str:
        """The values, comma-separated (for messages)."""
        return ", ".join(m.value for m in cls)


class Method(Choice):
    """The reconstruction: the diffusion posterior, or a baseline without a prior."""

    diffusion = "diffusion"
    zero_filled = "zero-filled"
    sense = "sense"


class CoilMode(Choice):
    """How the coils enter the prior: one image per slice through coil maps (sense), each coil image on its own
    (ssos; hybrid adds a SENSE sweep every few steps), or single-coil data (single; real keeps the real part).
    ``auto``: chosen from the data."""

    auto = "auto"
    single = "single"
    real = "real"
    sense = "sense"
    ssos = "ssos"
    hybrid = "hybrid"


class ComplexMode(Choice):
    """How a magnitude prior sees complex images: ``phase`` (demodulated real part, Gaussian prior on the residual
    imaginary part) or ``realimag`` (real and imaginary parts separately, the seed's split). A real image (coil mode
    real) passes its real part alone. ``complex``: the prior itself is complex-valued (two channels); it is the
    only mode such a prior takes, and the one used whenever the model is one."""

    phase = "phase"
    realimag = "realimag"
    complex = "complex"


class PhaseRef(Choice):
    """Where a phase-mode SENSE reconstruction takes the phase it demodulates: ``centre`` (the CG-SENSE start's
    24-pixel k-space centre, re-estimated from the iterate at the last steps; the default) or ``l1`` (an L1-wavelet
    SENSE reconstruction at half resolution, ``ops.sparse``)."""

    centre = "centre"
    l1 = "l1"


class NoiseConsistency(Choice):
    """Measurement noise in the consistency step of K > 1 samples: ``none`` (data exact), ``prox`` (weight
    mu_i = sigma_n^2 / sigma_i^2), ``perturb`` (each sample sees the data plus its own noise draw) or ``both``."""

    none = "none"
    prox = "prox"
    perturb = "perturb"
    both = "both"

    @property
    def weighted(self) -> bool:
        """The proximal weight follows the noise (prox, both)."""
        return self in (NoiseConsistency.prox, NoiseConsistency.both)

    @property
    def perturbed(self) -> bool:
        """Each sample sees its own noise draw on the data (perturb, both)."""
        return self in (NoiseConsistency.perturb, NoiseConsistency.both)


class CoilMaps(Choice):
    """How the SENSE coil maps are estimated from the calibration centre: ``espirit`` (ESPIRiT, 6 x 6 kernels,
    signal subspace above 0.02 x the largest singular value, support at eigenvalue 0.8), ``adaptive`` (the subspace
    cut at the scan's own noise level — twice the Marchenko-Pastur edge of pure noise, relative cut 0.001 — with
    the support of the ``espirit`` maps; the self-tuning pilots keep the ``espirit`` maps, so the CG count is the
    one ``espirit`` would choose) or ``auto`` (``adaptive`` for one-sample diffusion runs, ``espirit`` for K > 1
    samples, whose per-scan uncertainty constants were fitted with it, and for the SENSE / zero-filled methods;
    docs/benchmarks.md "Coil maps")."""

    auto = "auto"
    espirit = "espirit"
    adaptive = "adaptive"


class MapsSupport(Choice):
    """Where the ``adaptive`` coil maps are nonzero (their support): ``release`` (ESPIRiT eigenvalue above 0.8 in a
    pass with the ``espirit`` preset's subspace: the ``espirit`` maps' support), ``own`` (eigenvalue above 0.95 of
    the adaptive subspace itself: wider where the object fills the field of view, tighter around a small one) or
    ``auto`` (per scan: the own support when a k-space hold-out pilot on the pilot slice predicts the hidden samples
    clearly better with it, else the release one; docs/reconstruct.md "Coil maps"). Applies to the ``adaptive``
    maps only."""

    auto = "auto"
    release = "release"
    own = "own"


class SpreadMaps(Choice):
    """The coil maps the K > 1 hold-out spread measurement draws its samples with: ``pilot`` (the self-tuning
    pilots' preset: ``espirit`` when the samples' maps are ``adaptive``) or ``own`` (the samples' maps)."""

    pilot = "pilot"
    own = "own"


class CountPilot(Choice):
    """How the self-tuning pilot scores the candidate CG counts: ``holdout`` (hide measured samples, keep the count
    that predicts them best), ``bootstrap`` (simulate the scan from a reference reconstruction with its own mask,
    coil maps and noise level, keep the count that recovers the reference best) or ``auto`` (bootstrap on regular
    1D masks, where hidden lines sit in gaps twice as wide as the scan's missing lines and the hold-out cannot see
    the noise the count amplifies into them; hold-out elsewhere)."""

    auto = "auto"
    holdout = "holdout"
    bootstrap = "bootstrap"
