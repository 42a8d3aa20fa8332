"""`mrdiff uncertainty`: K posterior samples → mean, variance and std maps (+ calibration report).

Reconstruction (default) takes every `reconstruct` option; `--task superres --from N --to M` draws the samples
with the k-space-guided VDM instead (the `superres` command with K samples).
"""

from __future__ import annotations

import inspect
from enum import Enum
from typing import Annotated, Optional, get_type_hints

import typer

from ..errors import UsageError
from .common import handle_errors
from .jobs import recon_job_from_options, run_recon
from .reconstruct import reconstruct
from .superres import OutFormat, superres


class Task(str, Enum):
    reconstruct = "reconstruct"
    superres = "superres"


@handle_errors
def uncertainty(task: Task = Task.reconstruct, from_: Optional[str] = None, to: Optional[str] = None, guidance: float = 1.0, **kw) -> None:
    """Draw K posterior samples (batched) and write the posterior mean, variance and std maps."""
    if kw["samples"] < 2:
        raise UsageError("uncertainty needs --samples K with K >= 2 (a variance from one sample is meaningless)")
    if task == Task.superres:
        _superres(from_, to, guidance, kw)
        return
    if from_ or to:
        raise UsageError("--from/--to need --task superres")
    job = recon_job_from_options(kw)
    run_recon(job, quiet=kw["quiet"], json_out=kw["json_out"], device=kw["device"], precision=kw["precision"],
              title="mrdiff reconstruct")


def _superres(from_: Optional[str], to: Optional[str], guidance: float, kw: dict) -> None:
    if not from_ or not to:
        raise UsageError("--task superres needs --from N and --to M")
    if len(kw["inputs"]) != 1:
        raise UsageError("--task superres takes one input")
    run = inspect.unwrap(superres)
    run(
        input=kw["inputs"][0], from_=from_, to=to, output=kw["output"], model=kw["model"], offline=kw["offline"],
        steps=kw["steps"] or 100, guidance=guidance, samples=kw["samples"], save_samples=kw["save_samples"],
        seed=kw["seed"], device=kw["device"], batch_size=kw["batch_size"] or 16,
        fmt=None if kw["fmt"] is None else OutFormat(kw["fmt"].value),
        overwrite=kw["overwrite"], preview=kw["preview"], metrics=kw["metrics"], slices=kw["slices"],
        quiet=kw["quiet"], json_out=kw["json_out"],
    )


# same options as `reconstruct` (K defaults to 8), plus the super-resolution task switch
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
    kw_only = inspect.Parameter.KEYWORD_ONLY
    params += [
        inspect.Parameter("task", kw_only, default=Task.reconstruct, annotation=Annotated[Task, typer.Option(help="reconstruct (k-space posterior) or superres (VDM super-resolution samples).", rich_help_panel="Task")]),
        inspect.Parameter("from_", kw_only, default=None, annotation=Annotated[Optional[str], typer.Option("--from", help="superres: low-resolution matrix N or HxW.", rich_help_panel="Task", show_default=False)]),
        inspect.Parameter("to", kw_only, default=None, annotation=Annotated[Optional[str], typer.Option("--to", help="superres: target matrix N or HxW.", rich_help_panel="Task", show_default=False)]),
        inspect.Parameter("guidance", kw_only, default=1.0, annotation=Annotated[float, typer.Option("--guidance", help="superres: k-space guidance weight lambda in [0, 1].", rich_help_panel="Task")]),
    ]
    return inspect.Signature(params, return_annotation=None)


uncertainty.__signature__ = _signature()  # type: ignore[attr-defined]
