"""`mrdiff uncertainty`: K posterior samples → mean, variance and std maps (+ calibration report)."""

from __future__ import annotations

import inspect
from typing import Annotated, get_type_hints

import typer

from .common import handle_errors
from .reconstruct import _run, reconstruct


@handle_errors
def uncertainty(**kw) -> None:
    """Draw K posterior samples (batched) and write the posterior mean, variance and std maps."""
    _run(uncertainty=True, **kw)


# same options as `reconstruct`, but K defaults to 8 and the output always carries variance/std maps
def _signature() -> inspect.Signature:
    base = inspect.unwrap(reconstruct)
    hints = get_type_hints(base, include_extras=True)
    params = []
    for p in inspect.signature(base).parameters.values():
        ann, default = hints[p.name], p.default
        if p.name == "samples":
            ann = Annotated[int, typer.Option("--samples", "-K", help="Posterior samples K (>= 2), batched through the network.", rich_help_panel="Sampler")]
            default = 8
        params.append(p.replace(annotation=ann, default=default))
    return inspect.Signature(params, return_annotation=None)


uncertainty.__signature__ = _signature()  # type: ignore[attr-defined]
