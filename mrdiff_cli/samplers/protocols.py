"""The contracts the samplers are written against, as structural types (Protocols).

=====================  ==========================================================================================
``LinearOperator``     ``A(x)``, ``A.adjoint(y)``, ``A.normal(x)`` — every forward model of ``ops/`` (re-exported
                       from :mod:`mrdiff_cli.ops.operators`, where it is defined)
``Denoiser``           ``denoise(x, sigma) -> x0``: the prior's denoiser D(x; sigma) on the sampler's images (the
                       adapters of :mod:`~mrdiff_cli.samplers.adapters` make one from a prior network)
``DCStep``             ``dc(x, y, A, *, step, n_steps, sigma) -> x``: one data-consistency step
                       (:mod:`~mrdiff_cli.samplers.dc`), told the sampler step index and noise level
``ScorePrior``         a prior network with ``denoise(x, sigma)`` on real (B, 1, H, W) images (``EDMPrior``,
                       ``VDM``, the closed-form Gaussian prior of the tests)
=====================  ==========================================================================================

Positional parameters are positional-only here: the samplers call ``denoise(x, sigma)`` and ``dc(x, y, A, ...)``
positionally, so any function or object with that shape qualifies, whatever it names its arguments.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ..ops.operators import LinearOperator

__all__ = ["DCStep", "Denoiser", "LinearOperator", "ScorePrior"]


class Denoiser(Protocol):
    """D(x; sigma): the prior's estimate of the clean image from ``x`` at noise level ``sigma`` (VE scale)."""

    def __call__(self, x: torch.Tensor, sigma: float, /) -> torch.Tensor: ...


class DCStep(Protocol):
    """One data-consistency step: ``x`` made (more) consistent with ``y = A x_true (+ noise)``.

    ``step`` is the sampler step index (0 .. n_steps - 1; a final noise-free step repeats n_steps - 1) and
    ``sigma`` its noise level, so steps keyed on either (the hybrid SENSE sweep every m steps, a noise-aware
    weight) need no hidden counters."""

    def __call__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        A: LinearOperator,
        /,
        *,
        step: int = 0,
        n_steps: int = 1,
        sigma: float = 0.0,
    ) -> torch.Tensor: ...


class ScorePrior(Protocol):
    """A prior network as the adapters use it: ``denoise`` on real images (B, 1, H, W) with per-image sigmas."""

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float, /) -> torch.Tensor: ...
