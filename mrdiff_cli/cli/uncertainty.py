"""`mrdiff uncertainty`: K posterior samples → mean, calibrated std / variance, 95 % interval maps (+ calibration
report against a reference).

Reconstruction (default) takes the diffusion options of `reconstruct` (not `--method`: zero-filled and SENSE have
no posterior samples); `--task superres --from N --to M` draws the samples with the k-space-guided VDM instead (the
`superres` command with K samples). `--calibration model` (default) applies the model bundle's calibration block
(tasks.calibration); `--calibration none` writes the raw sample spread.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, get_type_hints

import typer

from ..errors import UsageError
from .common import console, handle_errors, print_table, say
from .jobs import recon_job_from_cli, run_recon, run_superres_job, superres_job_from_options
from .options import parse_batch_size
from .reconstruct import reconstruct


class Task(str, Enum):
    reconstruct = "reconstruct"
    superres = "superres"


class CalibrationChoice(str, Enum):
    model = "model"
    none = "none"


class NoiseConsistency(str, Enum):
    none = "none"
    prox = "prox"
    perturb = "perturb"
    both = "both"


TITLE = "mrdiff uncertainty"


@handle_errors
def uncertainty(task: Task = Task.reconstruct, from_: str | None = None, to: str | None = None,
                guidance: float = 1.0, calibration: CalibrationChoice = CalibrationChoice.model,
                noise_consistency: NoiseConsistency = NoiseConsistency.none, **kw) -> None:
    """Draw K posterior samples (batched); write the posterior mean, calibrated std and variance, and 95 % interval
    maps (mean ± 1.96 std)."""
    if kw["samples"] < 2:
        raise UsageError("uncertainty needs --samples K with K >= 2 (a variance from one sample is meaningless)")
    if task == Task.superres:
        extra = [] if NoiseConsistency(noise_consistency) == NoiseConsistency.none else ["noise_consistency"]
        _superres(from_, to, guidance, kw, extra)
        return
    if from_ or to:
        raise UsageError("--from/--to need --task superres")
    job = recon_job_from_cli({**kw, "method": "diffusion"})
    job.options = replace(job.options, noise_dc=NoiseConsistency(noise_consistency).value,
                          calibration="none" if CalibrationChoice(calibration) == CalibrationChoice.none else "model")
    run_recon(job, quiet=kw["quiet"], json_out=kw["json_out"], device=kw["device"], precision=kw["precision"],
              title=TITLE, after=print_calibration_table)


def _fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def print_calibration_table(summary: dict) -> None:
    """Per input: which calibration was applied and, when a reference exists, Spearman(std, |err|) (mean per slice
    and pooled), coverage of mean ± z std at 68 / 90 / 95 % and the calibration curve file."""
    rows, curves = [], []
    for r in summary.get("results", []):
        if r.get("error") or not r.get("slices"):
            continue  # failed (named on stderr) or a shard without slices (one line above)
        unc = r.get("uncertainty") or {}
        cal_block = unc.get("calibration")
        applied = cal_block.get("method") if isinstance(cal_block, dict) else "none"
        rep = r.get("calibration")
        if not rep:
            rows.append([Path(r["input"]).name, applied, "no reference", "-", "-", "-", "-"])
            continue
        cov = rep["overall"].get("coverage") or {}
        rows.append([Path(r["input"]).name, applied, _fmt(_slice_mean(rep, "spearman")),
                     _fmt(_slice_mean(rep, "spearman_local_oracle")), _fmt(cov.get("68")), _fmt(cov.get("90")),
                     _fmt(cov.get("95"))])
        png = (r.get("output") or {}).get("calibration_png")
        if png:
            curves.append(f"{Path(r['input']).name}: calibration curve {png}")
    if not rows:
        return
    print_table(console, ["input", "calibration", "Spearman", "ceiling", "cov 68%", "cov 90%", "cov 95%"], rows,
                title=f"{TITLE}: std vs |error| on head pixels",
                no_wrap=("Spearman", "ceiling", "cov 68%", "cov 90%", "cov 95%"))
    say("Spearman: mean over slices of Spearman(std, |mean - reference|); ceiling: the same for the local RMS of the "
        "true error (3x3 neighbours, an oracle no std map can beat by much); cov: fraction of head pixels inside "
        "mean ± z std (z = 0.99, 1.64, 1.96)")
    for line in curves:
        say(line)


def _slice_mean(rep: dict, key: str) -> float | None:
    vals = [p[key] for p in rep["per_slice"] if p.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


# reconstruction-only options: --task superres refuses them rather than ignoring them
RECON_ONLY = ("mask", "accel", "acs", "sampler", "coil_mode", "complex_mode", "phase_resid", "sense_every", "snr",
              "sigma_max", "zeta", "cg_iters", "input_format", "save_zero_filled", "coils", "shard", "keep_going",
              "precision", "threads")


def _superres(from_: str | None, to: str | None, guidance: float, kw: dict, extra_set: list[str]) -> None:
    if not from_ or not to:
        raise UsageError("--task superres needs --from N and --to M")
    if len(kw["inputs"]) != 1:
        raise UsageError("--task superres takes one input")
    defaults = {p.name: p.default for p in inspect.signature(inspect.unwrap(reconstruct)).parameters.values()}
    given = [name for name in RECON_ONLY if name in kw and kw[name] != defaults.get(name)] + extra_set
    if given:
        opts = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{opts}: not used by --task superres (reconstruction only); drop {'it' if len(given) == 1 else 'them'}")
    job = superres_job_from_options({
        "input": kw["inputs"][0], "from_": from_, "to": to, "output": kw["output"], "steps": kw["steps"],
        "guidance": guidance, "samples": kw["samples"], "save_samples": kw["save_samples"], "seed": kw["seed"],
        "batch_size": parse_batch_size(kw["batch_size"]) or 16, "device": kw["device"], "fmt": kw["fmt"],
        "overwrite": kw["overwrite"], "preview": kw["preview"],
        "metrics": kw["metrics"], "slices": kw["slices"],
    })
    run_superres_job(job, model=kw["model"], offline=kw["offline"], device=kw["device"], quiet=kw["quiet"],
                     json_out=kw["json_out"])


# same options as `reconstruct` (K defaults to 8), plus the super-resolution task switch
def _signature() -> inspect.Signature:
    base = inspect.unwrap(reconstruct)
    hints = get_type_hints(base, include_extras=True)
    params = []
    for p in inspect.signature(base).parameters.values():
        if p.name == "method":  # only the diffusion posterior has samples
            continue
        ann, default = hints[p.name], p.default
        if p.name == "samples":
            ann = Annotated[int, typer.Option("--samples", "-K", help="Posterior samples K (>= 2), batched through the network.", rich_help_panel="Sampler")]
            default = 8
        params.append(p.replace(annotation=ann, default=default))
    kw_only = inspect.Parameter.KEYWORD_ONLY
    params += [
        inspect.Parameter("task", kw_only, default=Task.reconstruct, annotation=Annotated[Task, typer.Option(help="reconstruct (k-space posterior) or superres (VDM super-resolution samples).", rich_help_panel="Task")]),
        inspect.Parameter("from_", kw_only, default=None, annotation=Annotated[str | None, typer.Option("--from", help="superres: low-resolution matrix N or HxW.", rich_help_panel="Task", show_default=False)]),
        inspect.Parameter("to", kw_only, default=None, annotation=Annotated[str | None, typer.Option("--to", help="superres: target matrix N or HxW.", rich_help_panel="Task", show_default=False)]),
        inspect.Parameter("guidance", kw_only, default=1.0, annotation=Annotated[float, typer.Option("--guidance", help="superres: k-space guidance weight lambda in [0, 1].", rich_help_panel="Task")]),
        inspect.Parameter("noise_consistency", kw_only, default=NoiseConsistency.none, annotation=Annotated[NoiseConsistency, typer.Option("--noise-consistency", help="Measurement noise in the consistency step (sigma_n estimated from >= 4 coils): none (data exact), prox (weight sigma_n^2/sigma_i^2), perturb (each sample re-draws the noise) or both. The model's calibration was fitted with none.", rich_help_panel="Sampler")]),
        inspect.Parameter("calibration", kw_only, default=CalibrationChoice.model, annotation=Annotated[CalibrationChoice, typer.Option("--calibration", help="model: apply the model's calibration (config.json 'calibration', fitted on its tune set) to the std; none: the raw sample spread.", rich_help_panel="Sampler")]),
    ]
    return inspect.Signature(params, return_annotation=None)


uncertainty.__signature__ = _signature()  # type: ignore[attr-defined]
