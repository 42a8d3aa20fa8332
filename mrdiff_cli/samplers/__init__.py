"""Samplers: plain functions over a noise schedule with one contract,

    sample(denoise, y, A, sigmas, x_init, *, dc=..., generator=..., callback=..., **sampler_options) -> x

(``denoise(x, sigma)`` the prior's denoiser, ``y`` the measurement, ``A`` a forward operator from ``ops/``,
``sigmas`` the decreasing VE noise levels, ``x_init`` the start / shape, ``dc`` a data-consistency step of
``samplers/dc.py``), registered by name: ``pc`` (the seed's predictor-corrector), ``fast`` (DDS/DiffPIR-style
few-step sampler, mrdiff's default) and ``vdm`` (the seed's k-space-guided VDM ancestral sampler)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from .modes import Choice

if TYPE_CHECKING:
    import torch


class SamplerName(Choice):
    """The registered samplers (equal to their names as strings, and printed as them)."""

    fast = "fast"
    pc = "pc"
    vdm = "vdm"


# the registry: name → (module of this package, function); imported on first use (torch loads only when sampling)
_REGISTRY: dict[SamplerName, tuple[str, str]] = {
    SamplerName.fast: ("fast", "fast_sample"),
    SamplerName.pc: ("pc", "pc_sample"),
    SamplerName.vdm: ("vdm", "vdm_sample"),
}
SAMPLER_NAMES = tuple(s.value for s in SamplerName)
# what each command offers (the CLI's choices are checked against these by tests/test_samplers_registry.py)
TASK_SAMPLERS: dict[str, tuple[str, ...]] = {"reconstruct": ("fast", "pc"), "superres": ("fast", "vdm")}


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    """The sampler function registered under ``name`` (imported lazily: torch loads only when sampling)."""
    try:
        module, func = _REGISTRY[SamplerName(name)]
    except ValueError:
        raise ValueError(f"unknown sampler {name!r} (choose from {', '.join(SAMPLER_NAMES)})") from None
    return getattr(importlib.import_module(f".{module}", __name__), func)
