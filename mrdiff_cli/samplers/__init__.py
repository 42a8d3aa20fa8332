"""Samplers: plain functions over a noise schedule with one contract,

    sample(denoise, y, A, sigmas, x_init, *, dc=..., generator=..., callback=..., **sampler_options) -> x

(``denoise(x, sigma)`` the prior's denoiser, ``y`` the measurement, ``A`` a forward operator from ``ops/``,
``sigmas`` the decreasing VE noise levels, ``x_init`` the start / shape, ``dc`` a data-consistency step of
``samplers/dc.py``), registered by name: ``pc`` (the seed's predictor-corrector), ``fast`` (DDS/DiffPIR-style
few-step sampler, mrdiff's default) and ``vdm`` (the seed's k-space-guided VDM ancestral sampler)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SAMPLER_NAMES = ("fast", "pc", "vdm")


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    """The sampler function registered under ``name`` (imported lazily: torch loads only when sampling)."""
    if name == "fast":
        from .fast import fast_sample

        return fast_sample
    if name == "pc":
        from .pc import pc_sample

        return pc_sample
    if name == "vdm":
        from .vdm import vdm_sample

        return vdm_sample
    raise ValueError(f"unknown sampler {name!r} (choose from {', '.join(SAMPLER_NAMES)})")
