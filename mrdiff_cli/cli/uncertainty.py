"""`mrdiff uncertainty`: K posterior samples → mean, calibrated std / variance, 95 % interval maps (+ calibration
report against a reference).

Reconstruction (default) takes the diffusion options of `reconstruct` (not `--method`: zero-filled and SENSE have
no posterior samples; the shared declarations are in ``recon_options`` and ``options``); `--task superres --from N
--to M` draws the samples with the k-space-guided VDM instead (the `superres` command with K samples).
`--calibration model` (default) scales the std per scan by the k-space hold-out run (tasks.scan_calibration, with
the bundle's constants), falling back to the bundle's fixed map where no hold-out is possible; `--calibration fixed`
applies only the fixed map (tasks.calibration); `--calibration none` writes the raw sample spread.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError
from .common import console, handle_errors, print_table, say
from .jobs import recon_job_from_cli, run_recon, run_superres_job, superres_job_from_options
from .options import (
    CoilsOpt,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    OfflineOpt,
    OverwriteOpt,
    QuietOpt,
    SlicesOpt,
    ThreadsOpt,
    parse_batch_size,
)
from .recon_options import (
    COIL_MAPS_DEFAULT,
    COIL_MODE_DEFAULT,
    COMPLEX_MODE_DEFAULT,
    COUNT_PILOT_DEFAULT,
    DEVICE_DEFAULT,
    MAPS_SUPPORT_DEFAULT,
    PHASE_REF_DEFAULT,
    PRECISION_DEFAULT,
    SAMPLER,
    SAMPLER_DEFAULT,
    SEED_DEFAULT,
    SENSE_EVERY_DEFAULT,
    SNR_DEFAULT,
    AccelOpt,
    AcsOpt,
    BatchSizeOpt,
    CgItersOpt,
    CoilMapsOpt,
    CoilModeOpt,
    ComplexModeOpt,
    CountPilotOpt,
    FormatOpt,
    InputFormatOpt,
    InputsArg,
    KeepGoingOpt,
    MapsSupportOpt,
    MaskOpt,
    Method,
    MetricsOpt,
    NoiseConsistency,
    OutputOpt,
    PhaseRefOpt,
    PhaseResidOpt,
    PrecisionOpt,
    PreviewOpt,
    SamplerOpt,
    SaveSamplesOpt,
    SaveZeroFilledOpt,
    SeedOpt,
    SenseEveryOpt,
    ShardOpt,
    SigmaMaxOpt,
    SnrOpt,
    StepsOpt,
    ZetaOpt,
)

TASK = "Task"


class Task(str, Enum):
    reconstruct = "reconstruct"
    superres = "superres"


class CalibrationChoice(str, Enum):
    model = "model"
    fixed = "fixed"
    none = "none"


TITLE = "mrdiff uncertainty"

# reconstruction-only options and their defaults: --task superres refuses any of them set to another value
# (rather than ignoring it)
RECON_ONLY: dict[str, Any] = {
    "mask": None, "accel": None, "acs": None, "sampler": SAMPLER_DEFAULT, "coil_mode": COIL_MODE_DEFAULT,
    "complex_mode": COMPLEX_MODE_DEFAULT, "phase_resid": None, "phase_ref": PHASE_REF_DEFAULT, "count_pilot": COUNT_PILOT_DEFAULT, "coil_maps": COIL_MAPS_DEFAULT, "maps_support": MAPS_SUPPORT_DEFAULT,
    "sense_every": SENSE_EVERY_DEFAULT, "snr": SNR_DEFAULT,
    "sigma_max": None, "zeta": None, "cg_iters": None, "input_format": None, "save_zero_filled": False, "coils": None,
    "shard": None, "keep_going": False, "precision": PRECISION_DEFAULT, "threads": None,
    "noise_consistency": NoiseConsistency.none,
}


# the options of `reconstruct` but --method (K defaults to 8), then the task switch, noise handling and calibration
@handle_errors
def uncertainty(
    inputs: InputsArg,
    output: OutputOpt,
    mask: MaskOpt = None,
    accel: AccelOpt = None,
    acs: AcsOpt = None,
    sampler: SamplerOpt = SAMPLER_DEFAULT,
    steps: StepsOpt = None,
    coil_mode: CoilModeOpt = COIL_MODE_DEFAULT,
    complex_mode: ComplexModeOpt = COMPLEX_MODE_DEFAULT,
    phase_resid: PhaseResidOpt = None,
    phase_ref: PhaseRefOpt = PHASE_REF_DEFAULT,
    count_pilot: CountPilotOpt = COUNT_PILOT_DEFAULT,
    coil_maps: CoilMapsOpt = COIL_MAPS_DEFAULT,
    maps_support: MapsSupportOpt = MAPS_SUPPORT_DEFAULT,
    sense_every: SenseEveryOpt = SENSE_EVERY_DEFAULT,
    snr: SnrOpt = SNR_DEFAULT,
    sigma_max: SigmaMaxOpt = None,
    zeta: ZetaOpt = None,
    cg_iters: CgItersOpt = None,
    samples: Annotated[int, typer.Option("--samples", "-K", help="Posterior samples K (>= 2), batched through the network.", rich_help_panel=SAMPLER)] = 8,
    model: ModelOpt = None,
    offline: OfflineOpt = False,
    fmt: FormatOpt = None,
    input_format: InputFormatOpt = None,
    save_zero_filled: SaveZeroFilledOpt = False,
    save_samples: SaveSamplesOpt = False,
    preview: PreviewOpt = False,
    metrics: MetricsOpt = True,
    overwrite: OverwriteOpt = False,
    seed: SeedOpt = SEED_DEFAULT,
    device: DeviceOpt = DEVICE_DEFAULT,
    batch_size: BatchSizeOpt = None,
    coils: CoilsOpt = None,
    threads: ThreadsOpt = None,
    precision: PrecisionOpt = PRECISION_DEFAULT,
    shard: ShardOpt = None,
    slices: SlicesOpt = None,
    keep_going: KeepGoingOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    task: Annotated[Task, typer.Option(help="reconstruct (k-space posterior) or superres (VDM super-resolution samples).", rich_help_panel=TASK)] = Task.reconstruct,
    from_: Annotated[str | None, typer.Option("--from", help="superres: low-resolution matrix N or HxW.", rich_help_panel=TASK, show_default=False)] = None,
    to: Annotated[str | None, typer.Option("--to", help="superres: target matrix N or HxW.", rich_help_panel=TASK, show_default=False)] = None,
    guidance: Annotated[float, typer.Option("--guidance", help="superres: k-space guidance weight lambda in [0, 1].", rich_help_panel=TASK)] = 1.0,
    noise_consistency: Annotated[NoiseConsistency, typer.Option("--noise-consistency", help="Measurement noise in the consistency step (sigma_n estimated from >= 4 coils): none (data exact), prox (weight sigma_n^2/sigma_i^2), perturb (each sample re-draws the noise) or both. The model's calibration was fitted with none.", rich_help_panel=SAMPLER)] = NoiseConsistency.none,
    calibration: Annotated[CalibrationChoice, typer.Option("--calibration", help="model: the std scaled per scan by a k-space hold-out run (part of the measured samples hidden, a few samples drawn without them, their miss compared with their spread; the model's constants, fitted on its tune suite), the model's fixed map where no hold-out is possible; fixed: the fixed map only (no hold-out run); none: the raw sample spread.", rich_help_panel=SAMPLER)] = CalibrationChoice.model,
) -> None:
    """Draw K posterior samples (batched); write the posterior mean, calibrated std and variance, and 95 % interval
    maps (mean ± 1.96 std)."""
    if samples < 2:
        raise UsageError("uncertainty needs --samples K with K >= 2 (a variance from one sample is meaningless)")
    if task == Task.superres:
        recon_only = {
            "mask": mask, "accel": accel, "acs": acs, "sampler": sampler, "coil_mode": coil_mode,
            "complex_mode": complex_mode, "phase_resid": phase_resid, "phase_ref": phase_ref, "count_pilot": count_pilot, "coil_maps": coil_maps, "maps_support": maps_support,
            "sense_every": sense_every, "snr": snr,
            "sigma_max": sigma_max, "zeta": zeta, "cg_iters": cg_iters, "input_format": input_format,
            "save_zero_filled": save_zero_filled, "coils": coils, "shard": shard, "keep_going": keep_going,
            "precision": precision, "threads": threads, "noise_consistency": noise_consistency,
        }
        _superres(inputs, output, from_, to, guidance, recon_only, steps=steps, samples=samples,
                  save_samples=save_samples, seed=seed, batch_size=batch_size, device=device, fmt=fmt,
                  overwrite=overwrite, preview=preview, metrics=metrics, slices=slices, model=model, offline=offline,
                  quiet=quiet, json_out=json_out,
                  calibration="none" if CalibrationChoice(calibration) == CalibrationChoice.none else "model")
        return
    if from_ or to:
        raise UsageError("--from/--to need --task superres")
    options = {  # every option by name, so what the job reads is visible here
        "inputs": inputs, "output": output, "method": Method.diffusion, "mask": mask, "accel": accel, "acs": acs,
        "sampler": sampler, "steps": steps, "coil_mode": coil_mode, "complex_mode": complex_mode,
        "phase_resid": phase_resid, "phase_ref": phase_ref, "count_pilot": count_pilot, "coil_maps": coil_maps, "maps_support": maps_support, "sense_every": sense_every, "snr": snr,
        "sigma_max": sigma_max, "zeta": zeta, "cg_iters": cg_iters, "samples": samples, "model": model, "offline": offline, "fmt": fmt,
        "input_format": input_format, "save_zero_filled": save_zero_filled, "save_samples": save_samples,
        "preview": preview, "metrics": metrics, "overwrite": overwrite, "seed": seed, "device": device,
        "batch_size": batch_size, "coils": coils, "threads": threads, "precision": precision, "shard": shard,
        "slices": slices, "keep_going": keep_going, "quiet": quiet, "json_out": json_out,
    }
    job = recon_job_from_cli(options)
    job.options = replace(job.options, noise_dc=NoiseConsistency(noise_consistency).value,
                          calibration=CalibrationChoice(calibration).value)
    run_recon(job, quiet=quiet, json_out=json_out, device=device, precision=precision, title=TITLE,
              after=print_calibration_table)


def _applied(unc: dict) -> str:
    """The table's calibration cell: per scan (hold-out ratio), the fixed map's method, or none."""
    how = unc.get("calibration_applied", "none")
    if how == "holdout":
        ratio = (unc.get("holdout") or {}).get("ratio")
        return f"per scan (x{ratio:.2f})" if isinstance(ratio, (int, float)) else "per scan"
    cal = unc.get("calibration")
    if how == "none" or not isinstance(cal, dict):
        return "none"
    block = cal.get("single_coil", cal) if how == "single_coil" else cal
    return f"fixed {block.get('method')}" + (" (1 coil)" if how == "single_coil" else "")


def _fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def print_calibration_table(summary: dict) -> None:
    """Per input: which calibration was applied and, when a reference exists, the mean over slices of
    Spearman(std, |err|) and of Spearman(std, 5x5 local RMS of err) (issue #24's criterion), the coverage of
    mean ± z std at 68 / 90 / 95 %, the AUSE (tasks.calibration) and the calibration curve file."""
    rows, curves = [], []
    for r in summary.get("results", []):
        if r.get("error") or not r.get("slices"):
            continue  # failed (named on stderr) or a shard without slices (one line above)
        unc = r.get("uncertainty") or {}
        applied = _applied(unc)
        rep = r.get("calibration")
        if not rep:
            rows.append([Path(r["input"]).name, applied, "no reference", "-", "-", "-", "-", "-"])
            continue
        ov = rep["overall"]
        cov = ov.get("coverage") or {}
        rows.append([Path(r["input"]).name, applied, _fmt(_slice_mean(rep, "spearman")),
                     _fmt(_slice_mean(rep, "spearman_local")), _fmt(cov.get("68")), _fmt(cov.get("90")),
                     _fmt(cov.get("95")), _fmt(ov.get("ause"))])
        png = (r.get("output") or {}).get("calibration_png")
        if png:
            curves.append(f"{Path(r['input']).name}: calibration and sparsification curves {png}")
    if not rows:
        return
    numbers = ("Spearman |err|", "Spearman local 5x5", "cov 68%", "cov 90%", "cov 95%", "AUSE")
    print_table(console, ["input", "calibration", *numbers], rows, title=f"{TITLE}: std vs |error| on head pixels",
                no_wrap=numbers)
    say("Spearman |err|: mean over slices of Spearman(std, |mean - reference|); Spearman local 5x5: the same "
        "against the RMS of that error over each pixel's 5x5 window (the error scale a std predicts; target >= 0.6); "
        "cov: fraction of head pixels inside mean ± z std (z = 0.99, 1.64, 1.96); AUSE: area between the "
        "sparsification curves (RMSE left after removing the largest std vs the largest error first) over the "
        "RMSE, 0 = the std ranks pixels like the error")
    for line in curves:
        say(line)


def _slice_mean(rep: dict, key: str) -> float | None:
    vals = [p[key] for p in rep["per_slice"] if p.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def _superres(inputs: list[Path], output: Path, from_: str | None, to: str | None, guidance: float,
              recon_only: dict[str, Any], *, steps: int | None, samples: int, save_samples: bool, seed: int,
              batch_size: str | None, device: str, fmt: Any, overwrite: bool, preview: bool, metrics: bool,
              slices: str | None, model: str | None, offline: bool, quiet: bool, json_out: bool,
              calibration: str = "model") -> None:
    if not from_ or not to:
        raise UsageError("--task superres needs --from N and --to M")
    if len(inputs) != 1:
        raise UsageError("--task superres takes one input")
    given = [name for name, default in RECON_ONLY.items() if recon_only[name] != default]
    if given:
        opts = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{opts}: not used by --task superres (reconstruction only); drop {'it' if len(given) == 1 else 'them'}")
    job = superres_job_from_options({
        "input": inputs[0], "from_": from_, "to": to, "output": output, "steps": steps, "guidance": guidance,
        "samples": samples, "save_samples": save_samples, "seed": seed,
        "batch_size": parse_batch_size(batch_size) or 16, "device": device, "fmt": fmt, "overwrite": overwrite,
        "preview": preview, "metrics": metrics, "slices": slices, "calibration": calibration,
    })
    run_superres_job(job, model=model, offline=offline, device=device, quiet=quiet, json_out=json_out)
