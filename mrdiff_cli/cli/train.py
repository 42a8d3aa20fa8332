"""`mrdiff train score|vdm`: train a prior on magnitude images (NIfTI volumes, fastMRI h5) → a model bundle.

Both subcommands are built by one factory (:func:`_make_command`) so they share one option set; all work
happens in :func:`mrdiff_cli.tasks.train.train`. Under ``torchrun`` only rank 0 prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputError, NotAvailableError, OutputError, UsageError
from .common import console, handle_errors, print_json, say
from .options import JsonOpt, OfflineOpt

DATA = "Data"
MODEL = "Model"
OPTIM = "Optimisation"
RUN = "Execution"
OUTPUT = "Output"
VDM = "VDM (train vdm only)"

TASK_HELP = {
    "score": "Train the score prior (EDM denoiser on the VE-SDE) used by reconstruct and uncertainty.",
    "vdm": "Train the VDM prior (learned noise schedule) used by superres; --init-from can start from a score bundle.",
}

app = typer.Typer(
    help="Train a diffusion prior on magnitude images: 'score' (reconstruct, uncertainty) or 'vdm' (superres).",
    no_args_is_help=True,
)


class Axes(str, Enum):
    all = "all"
    axial = "axial"
    coronal = "coronal"
    sagittal = "sagittal"


def _make_command(task: str) -> Callable[..., None]:
    """One option set, two commands: the function below is instantiated once per task."""

    # NB: defaults mirror mrdiff_cli.tasks.train.TrainConfig (kept equal by tests/test_cli_train.py); the task
    # module is imported only after parsing so that `--help` stays instant (no torch import).
    @handle_errors
    def command(
        data: Annotated[list[str], typer.Argument(help="Training volumes: NIfTI files, folders (searched recursively), globs, or fastMRI h5 files (reconstruction_rss).", metavar="DATA", show_default=False)],
        out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoint/, bundle/ and samples.png are written here.", show_default=False, rich_help_panel=OUTPUT)],
        steps: Annotated[int, typer.Option(help="Total optimiser steps (with --resume: the step to stop at).", rich_help_panel=OPTIM)] = 1000,
        batch_size: Annotated[int, typer.Option(help="Slices per step and per process (torchrun: global batch = this × processes).", rich_help_panel=OPTIM)] = 16,
        lr: Annotated[float, typer.Option(help="AdamW learning rate (linear warm-up over --warmup steps).", rich_help_panel=OPTIM)] = 2e-4,
        warmup: Annotated[int, typer.Option(help="Learning-rate warm-up steps.", rich_help_panel=OPTIM)] = 200,
        ema_decay: Annotated[float, typer.Option(help="EMA decay of the exported weights (warm-up: min(decay, (1+t)/(10+t))).", rich_help_panel=OPTIM)] = 0.999,
        seed: Annotated[int, typer.Option(help="Seed for initialisation, batches, augmentation and noise.", rich_help_panel=OPTIM)] = 0,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint (a fresh start if there is none).", rich_help_panel=OPTIM)] = False,
        checkpoint_every: Annotated[int, typer.Option(help="Write the checkpoint and the bundle every N steps (and at the end).", rich_help_panel=OUTPUT)] = 500,
        val_every: Annotated[int, typer.Option(help="Validate (EMA weights, fixed noise) every N steps and at the end.", rich_help_panel=OUTPUT)] = 1000,
        val: Annotated[list[str] | None, typer.Option("--val", metavar="PATH", help="Held-out validation volumes (repeatable; files, folders or globs). They are removed from the training set.", show_default=False, rich_help_panel=DATA)] = None,
        val_fraction: Annotated[float | None, typer.Option(help="Instead of --val: hold out this fraction of the training volumes (whole volumes, deterministic).", show_default=False, rich_help_panel=DATA)] = None,
        matrix: Annotated[int, typer.Option(help="Training image size (matrix × matrix) after resampling to --voxel.", rich_help_panel=DATA)] = 128,
        voxel: Annotated[float, typer.Option(help="Isotropic voxel size in mm the volumes are resampled to.", rich_help_panel=DATA)] = 2.0,
        axes: Annotated[Axes, typer.Option(help="Slice orientations taken from 3D volumes.", rich_help_panel=DATA)] = Axes.all,
        voxels: Annotated[str, typer.Option(help="Any-resolution training: comma-separated voxel sizes in mm (e.g. 0.8,1.1,1.5,2); slices are resampled at each (same FOV as --matrix x --voxel) and --matrix² patches are drawn from them. '' = whole slices at --voxel.", rich_help_panel=DATA)] = "",
        elastic: Annotated[float, typer.Option(help="Elastic-deformation augmentation: max displacement as a fraction of the image half-width (0 = off).", rich_help_panel=DATA)] = 0.0,
        aniso_scale: Annotated[float, typer.Option(help="Independent x/y scaling augmentation, +- this fraction (0 = off).", rich_help_panel=DATA)] = 0.0,
        p_mean: Annotated[float, typer.Option(help="Score training: mean of log(sigma) of the training noise levels (EDM log-normal). Lower it to spend the steps on the low noise levels the fast sampler uses (sigma 0.01-1).", rich_help_panel=OPTIM)] = -1.2,
        p_std: Annotated[float, typer.Option(help="Score training: std of log(sigma) of the training noise levels.", rich_help_panel=OPTIM)] = 1.2,
        base_channels: Annotated[int, typer.Option(help="UNet channels at full resolution.", rich_help_panel=MODEL)] = 32,
        channel_mults: Annotated[str, typer.Option(help="UNet channel multipliers per level, comma separated.", rich_help_panel=MODEL)] = "1,2,2,4",
        res_blocks: Annotated[int, typer.Option(help="Residual blocks per UNet level.", rich_help_panel=MODEL)] = 1,
        attn_resolutions: Annotated[str, typer.Option(help="Feature-map sizes with self-attention, comma separated ('' = none).", rich_help_panel=MODEL)] = "16",
        init_from: Annotated[str | None, typer.Option(help="Start from the weights of this bundle (folder, bundled:NAME or Hub repo); tensors with matching names and shapes are copied (a magnitude prior's one-channel layers seed the real channel of a --complex prior).", show_default=False, rich_help_panel=MODEL)] = None,
        complex_: Annotated[bool, typer.Option("--complex", help="Score training: a complex-valued prior (real and imaginary channels) trained on the slices with random phase (global, polynomial, random fields); reconstruct and uncertainty then need no phase estimate.", rich_help_panel=MODEL)] = False,
        complex_demod: Annotated[float, typer.Option(help="With --complex: the network sees each image demodulated by the phase of its low-resolution copy (the central FRAC x matrix of k-space, e.g. 0.1875 = 24 of 128 pixels) and models the residual phase only; reconstruction demodulates by the scan's low-resolution phase the same way. 0 = the raw complex image.", rich_help_panel=MODEL)] = 0.0,
        offline: OfflineOpt = False,
        freeze_net: Annotated[bool, typer.Option("--freeze-net", help="Keep the --init-from network fixed and train only the noise schedule gamma.", rich_help_panel=VDM)] = False,
        vdm_timesteps: Annotated[int, typer.Option(help="VLB diffusion loss: 0 = continuous time, T > 0 = the discrete T-step loss.", rich_help_panel=VDM)] = 0,
        gamma_min: Annotated[float, typer.Option(help="Initial gamma(0) of the learned schedule (sigma_ve = exp(gamma/2)).", rich_help_panel=VDM)] = -13.3,
        gamma_max: Annotated[float, typer.Option(help="Initial gamma(1) of the learned schedule.", rich_help_panel=VDM)] = 5.0,
        bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16", help="bf16 autocast (default: on where the GPU or CPU supports bf16 natively).", show_default=False, rich_help_panel=RUN)] = None,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (torchrun: each process uses cuda:LOCAL_RANK).", rich_help_panel=RUN)] = "auto",
        sample_grid: Annotated[bool, typer.Option(help="Write OUT/samples.png (unconditional samples of the EMA model) at the end.", rich_help_panel=OUTPUT)] = True,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over even if OUT already has a checkpoint.", rich_help_panel=OUTPUT)] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or messages.", rich_help_panel=RUN)] = False,
        json_out: JsonOpt = False,
    ) -> None:
        kw: dict[str, Any] = dict(
            data=data, out=out, steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, ema_decay=ema_decay,
            seed=seed, resume=resume, checkpoint_every=checkpoint_every, val_every=val_every, val=val,
            val_fraction=val_fraction, matrix=matrix, voxel=voxel, axes=axes, voxels=voxels, elastic=elastic,
            aniso_scale=aniso_scale, p_mean=p_mean, p_std=p_std, base_channels=base_channels,
            channel_mults=channel_mults, res_blocks=res_blocks, attn_resolutions=attn_resolutions,
            init_from=init_from, offline=offline, freeze_net=freeze_net, complex=complex_, complex_demod=complex_demod,
            vdm_timesteps=vdm_timesteps,
            gamma_min=gamma_min, gamma_max=gamma_max, bf16=bf16, device=device, sample_grid=sample_grid,
            overwrite=overwrite, quiet=quiet, json_out=json_out,
        )
        _train(task, **kw)

    command.__doc__ = TASK_HELP[task]
    return command


for _task in ("score", "vdm"):
    app.command(_task, help=TASK_HELP[_task])(_make_command(_task))


# ------------------------------------------------------------------------------------------------------------
# option checks (no torch)
# ------------------------------------------------------------------------------------------------------------


def _int_list(spec: str, option: str, allow_empty: bool = False) -> list[int]:
    parts = [p.strip() for p in spec.replace(" ", "").split(",") if p.strip()]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"{option} {spec!r}: expected comma-separated integers, e.g. 1,2,2,4") from None
    if (not vals and not allow_empty) or any(v < 1 for v in vals):
        raise UsageError(f"{option} {spec!r}: expected positive integers, e.g. 1,2,2,4")
    return vals


def _check_options(task: str, kw: dict[str, Any]) -> tuple[list[int], list[int]]:
    for name in ("steps", "batch_size", "checkpoint_every", "val_every", "base_channels", "res_blocks"):
        if kw[name] < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1 (got {kw[name]})")
    if kw["warmup"] < 0:
        raise UsageError("--warmup must be >= 0")
    if not kw["lr"] > 0:
        raise UsageError(f"--lr must be > 0 (got {kw['lr']:g})")
    if not 0.0 <= kw["ema_decay"] < 1.0:
        raise UsageError(f"--ema-decay must be in [0, 1) (got {kw['ema_decay']:g})")
    if not kw["voxel"] > 0:
        raise UsageError(f"--voxel must be > 0 mm (got {kw['voxel']:g})")
    mults = _int_list(kw["channel_mults"], "--channel-mults")
    try:
        kw["voxels"] = [float(v) for v in kw["voxels"].replace(" ", "").split(",") if v]
    except ValueError:
        raise UsageError(f"--voxels {kw['voxels']!r}: expected comma-separated sizes in mm, e.g. 0.8,1.1,1.5,2") from None
    if any(not v > 0 for v in kw["voxels"]):
        raise UsageError("--voxels: every voxel size must be > 0 mm")
    if not 0.0 <= kw["elastic"] <= 0.2 or not 0.0 <= kw["aniso_scale"] < 0.5:
        raise UsageError("--elastic must be in [0, 0.2] and --aniso-scale in [0, 0.5)")
    if not kw["p_std"] > 0 or not -8.0 <= kw["p_mean"] <= 4.0:
        raise UsageError("--p-std must be > 0 and --p-mean in [-8, 4] (log sigma)")
    attn = _int_list(kw["attn_resolutions"], "--attn-resolutions", allow_empty=True)
    down = 2 ** (len(mults) - 1)
    if kw["matrix"] < 8 or kw["matrix"] % down:
        raise UsageError(f"--matrix {kw['matrix']}: must be >= 8 and divisible by {down} ({len(mults)} UNet levels)")
    if kw["val"] and kw["val_fraction"] is not None:
        raise UsageError("use either --val or --val-fraction, not both")
    if task != "score" and kw["complex"]:
        raise UsageError("--complex: only for 'mrdiff train score' (super-resolution works on magnitudes)")
    if kw["complex_demod"] and not kw["complex"]:
        raise UsageError("--complex-demod needs --complex")
    if not 0.0 <= kw["complex_demod"] <= 1.0:
        raise UsageError(f"--complex-demod must be in [0, 1] (a fraction of the matrix; got {kw['complex_demod']:g})")
    if task == "score":
        vdm_only = {"freeze_net": False, "vdm_timesteps": 0, "gamma_min": -13.3, "gamma_max": 5.0}
        used = [f"--{k.replace('_', '-')}" for k, v in vdm_only.items() if kw[k] != v]
        if used:
            raise UsageError(f"{', '.join(used)}: only for 'mrdiff train vdm'")
    if kw["vdm_timesteps"] < 0:
        raise UsageError("--vdm-timesteps must be >= 0 (0 = continuous time)")
    if not kw["gamma_min"] < kw["gamma_max"]:
        raise UsageError("--gamma-min must be below --gamma-max")
    if kw["freeze_net"] and not kw["init_from"]:
        raise UsageError("--freeze-net trains the noise schedule of a trained network: give it with --init-from")
    if kw["val_fraction"] is not None and not 0.0 < kw["val_fraction"] < 1.0:
        raise UsageError(f"--val-fraction must be between 0 and 1 (got {kw['val_fraction']:g})")
    return mults, attn


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


# ------------------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------------------


def _check_out(out: Path, kw: dict[str, Any], quiet: bool) -> dict | None:
    """The checkpoint metadata to resume from (None: fresh start); refuses to overwrite a run by accident."""
    from ..tasks.train import read_checkpoint_meta

    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    if kw["resume"] and kw["overwrite"]:
        raise UsageError("--resume continues the checkpoint and --overwrite discards it; pass only one")
    meta = None if kw["overwrite"] else read_checkpoint_meta(out)
    if meta is not None and not kw["resume"] and not kw["overwrite"]:
        raise OutputError(f"{out} already holds a checkpoint (step {meta.get('step')}); pass --resume to continue or --overwrite to start over")
    if kw["resume"] and meta is None and not quiet:
        console.print(f"[yellow]note:[/] --resume: no checkpoint in {out / 'checkpoint'}; starting a fresh run")
    return meta


def _split_data(kw: dict[str, Any], quiet: bool) -> tuple[list[Path], list[Path]]:
    """(training volumes, validation volumes): --val volumes are removed from the training set; --val-fraction
    holds out whole volumes."""
    from ..tasks.train_data import expand_inputs, split_volumes

    train_paths = expand_inputs(list(kw["data"]))
    if kw["val"]:
        val_paths = expand_inputs(list(kw["val"]))
        held = {p.resolve() for p in val_paths}
        n_before = len(train_paths)
        train_paths = [p for p in train_paths if p.resolve() not in held]
        if not train_paths:
            raise InputError("every training volume is also a --val volume; nothing left to train on")
        if len(train_paths) < n_before and not quiet:
            console.print(f"note: {n_before - len(train_paths)} --val volume(s) removed from the training set")
        return train_paths, val_paths
    if kw["val_fraction"] is not None:
        return split_volumes(train_paths, kw["val_fraction"])
    return train_paths, []


# options passed to TrainConfig unchanged (same name, same value)
_SAME_FIELDS = ("steps", "batch_size", "lr", "warmup", "ema_decay", "seed", "matrix", "voxel", "checkpoint_every",
                "val_every", "base_channels", "sample_grid", "freeze_net", "vdm_timesteps", "gamma_min", "gamma_max",
                "voxels", "elastic", "aniso_scale", "p_mean", "p_std", "complex", "complex_demod")


def _train_config(task: str, kw: dict[str, Any], mults: list[int], attn: list[int], quiet: bool) -> Any:
    """The TrainConfig of the command line: data split, device, bf16 default and the --init-from bundle's folder."""
    from ..tasks.recon_job import native_bf16
    from ..tasks.reconstruct import resolve_device
    from ..tasks.train import TrainConfig, resolve_init_from

    train_paths, val_paths = _split_data(kw, quiet)
    dev = resolve_device(kw["device"])
    # bf16 default: where the device runs it natively (measured on a 2-core x86 CPU with AVX512-BF16/AMX: 3x
    # faster steps for the default UNet)
    bf16 = kw["bf16"] if kw["bf16"] is not None else native_bf16(dev) is not None
    init_from = resolve_init_from(kw["init_from"], offline=kw["offline"] or None) if kw["init_from"] else None
    return TrainConfig(
        task=task,
        inputs=[str(p) for p in train_paths],
        val_inputs=[str(p) for p in val_paths],
        out=str(kw["out"]),
        axes=kw["axes"].value,
        bf16=bool(bf16),
        channel_mults=mults,
        num_res_blocks=kw["res_blocks"],
        attn_resolutions=attn,
        init_from=init_from,
        device=str(dev),
        **{k: kw[k] for k in _SAME_FIELDS},
    )


def _train(task: str, **kw: Any) -> None:
    mults, attn = _check_options(task, kw)
    rank = _rank()
    quiet = kw["quiet"] or rank != 0  # under torchrun only rank 0 talks
    json_out = kw["json_out"] and rank == 0
    if task == "vdm":
        import importlib.util

        if importlib.util.find_spec("mrdiff_cli.priors.vdm") is None:
            raise NotAvailableError("'mrdiff train vdm' needs the VDM prior (mrdiff_cli.priors.vdm), which this build lacks")

    out: Path = kw["out"]
    meta = _check_out(out, kw, quiet)
    cfg = _train_config(task, kw, mults, attn, quiet)
    if meta is not None and kw["resume"] and int(meta.get("step", 0)) >= cfg.steps and not quiet:
        console.print(f"note: the checkpoint is already at step {meta.get('step')} (>= --steps {cfg.steps}); re-exporting the bundle only")

    summary = _run_with_output(cfg, kw["resume"], quiet=quiet, json_out=json_out)
    if rank != 0:
        return
    summary = {"type": "done", "task": task, "out": str(out), "checkpoint": str(out / "checkpoint" / "last.safetensors"),
               "resumed": meta is not None and kw["resume"], "bf16": cfg.bf16, "device": cfg.device,
               **{k: v for k, v in summary.items() if k != "type"}}
    if json_out:
        print_json(summary)
    elif not quiet:
        _print_summary(summary)


def _run_with_output(cfg: Any, resume: bool, *, quiet: bool, json_out: bool) -> dict[str, Any]:
    from ..tasks.train import train

    if json_out:
        # one JSON line per event; the summary line is printed by the caller once the bundle is written
        return train(cfg, resume, lambda e: print_json(e) if e["type"] != "done" else None)
    if quiet:
        return train(cfg, resume)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]train {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} it/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as prog:
        state: dict[str, Any] = {}

        def cb(e: dict) -> None:
            kind = e["type"]
            if kind == "start":
                state["t0"], state["s0"] = time.time(), e["step"]
                what = f"resuming at step {e['step']}" if e.get("resumed") else "fresh start"
                prog.console.print(
                    f"{cfg.task}: {e['n_slices']} slices from {e['n_volumes']} volume(s), {e['n_val_slices']} validation slices, "
                    f"{e['parameters'] / 1e6:.2f} M parameters, {e['world_size']} process(es), {what}"
                )
                state["id"] = prog.add_task(cfg.task, total=e["steps"], completed=e["step"], loss="-", rate="-")
            elif kind == "step":
                rate = (e["step"] - state["s0"]) / max(1e-9, time.time() - state["t0"])
                prog.update(state["id"], completed=e["step"], loss=f"{e['loss_smooth']:.4f}", rate=f"{rate:.2f}")
            elif kind == "checkpoint":
                prog.console.print(f"step {e['step']}: checkpoint + bundle written")
            elif kind == "val":
                if "mean_mse" in e:
                    prog.console.print(f"step {e['step']}: validation mean MSE over noise levels {e['mean_mse']:.5f}")
                elif "vlb_bpd" in e:
                    prog.console.print(f"step {e['step']}: validation VLB {e['vlb_bpd']:.4f} bits/dim")

        return train(cfg, resume, cb)


def _print_summary(s: dict[str, Any]) -> None:
    console.print(f"[bold]done[/]: {s['task']} prior, step {s['start_step']} → {s['steps']} in {s['elapsed_s']:.1f} s")
    say(f"  bundle     {s.get('bundle', '-')}")  # paths: never wrapped in logs
    say(f"  checkpoint {s['checkpoint']}")
    if s.get("samples_png"):
        say(f"  samples    {s['samples_png']}")
    val = s.get("validation") or {}
    if "mean_mse" in val:
        console.print(f"  validation mean MSE {val['mean_mse']:.5f}")
    if s.get("world_size", 1) > 1:
        console.print(f"  {s['world_size']} processes, parameters identical on every rank: {s.get('params_in_sync')}")
