"""`mrdiff superres`: low-resolution MR image (or raw k-space) → higher resolution with the k-space-guided VDM."""

from __future__ import annotations

import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .common import console, handle_errors, parse_slices, print_json, print_warnings
from .options import JsonOpt, ModelOpt, OfflineOpt

RES = "Resolution"
SAMPLER = "Sampler"
OUTPUT = "Output"
RUN = "Execution"


class SRSampler(str, Enum):
    fast = "fast"
    vdm = "vdm"


class OutFormat(str, Enum):
    nifti = "nifti"
    dicom = "dicom"


@handle_errors
def superres(
    input: Annotated[Path, typer.Argument(help="NIfTI / DICOM magnitude image (or .npy), or raw k-space h5 (its zero-filled RSS is used).", show_default=False)],
    from_: Annotated[str, typer.Option("--from", help="Low-resolution matrix N or HxW. If the input has this matrix it is the acquisition; if larger it is degraded to it (k-space crop) and used as the reference.", rich_help_panel=RES, show_default=False)],
    to: Annotated[str, typer.Option("--to", help="Target matrix N or HxW (any size; the prior is fully convolutional).", rich_help_panel=RES, show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (.nii.gz) or folder for DICOM.", rich_help_panel=OUTPUT, show_default=False)],
    model: ModelOpt = None,
    offline: OfflineOpt = False,
    sampler: Annotated[SRSampler, typer.Option(help="fast: denoise -> consistency on the measured k-space block -> renoise (21 NFE); vdm: the seed's k-space-guided VDM sampler.", rich_help_panel=SAMPLER)] = SRSampler.fast,
    steps: Annotated[Optional[int], typer.Option(help="Sampler steps (default: fast 20, vdm 100; the VDM paper uses 1000).", rich_help_panel=SAMPLER, show_default=False)] = None,
    guidance: Annotated[float, typer.Option("--guidance", "--lambda", help="vdm: k-space guidance weight lambda in [0, 1] (1 = exact low-k consistency, 0 = ignore the data).", rich_help_panel=SAMPLER)] = 1.0,
    noise: Annotated[str, typer.Option(help="fast: noise std of the low-resolution image: 'auto' (estimated from the data; soft consistency), 'none' (hard consistency) or a number in image units.", rich_help_panel=SAMPLER)] = "auto",
    samples: Annotated[int, typer.Option("--samples", "-K", help="Samples per slice; >1 writes the mean plus variance/std maps.", rich_help_panel=SAMPLER)] = 1,
    save_samples: Annotated[bool, typer.Option(help="Also write every sample.", rich_help_panel=OUTPUT)] = False,
    seed: Annotated[int, typer.Option(help="Random seed (same seed and batch size → same output).", rich_help_panel=RUN)] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=RUN)] = "auto",
    batch_size: Annotated[int, typer.Option(help="Images per network batch (slices × samples).", rich_help_panel=RUN)] = 16,
    fmt: Annotated[Optional[OutFormat], typer.Option("--format", help="Output format (default from the output name).", rich_help_panel=OUTPUT)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.", rich_help_panel=OUTPUT)] = False,
    preview: Annotated[bool, typer.Option(help="Write <output>_preview.png (bicubic | sinc | mrdiff | reference | std).", rich_help_panel=OUTPUT)] = False,
    metrics: Annotated[bool, typer.Option(help="Write <output>_metrics.json.", rich_help_panel=OUTPUT)] = True,
    slices: Annotated[Optional[str], typer.Option(help="Slice range a:b (Python-style, end exclusive).", rich_help_panel=RUN)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or messages.", rich_help_panel=RUN)] = False,
    json_out: JsonOpt = False,
) -> None:
    """Super-resolve MR images with the k-space-guided variational diffusion model (e.g. 64 → 128)."""
    from ..tasks.reconstruct import resolve_device
    from ..tasks.superres import SuperresJob, SuperresOptions, load_superres_model, parse_matrix

    if samples < 1:
        raise UsageError("--samples must be >= 1")
    if steps is not None and steps < 1:
        raise UsageError("--steps must be >= 1")
    if noise not in ("auto", "none"):
        try:
            noise = float(noise)
        except ValueError:
            raise UsageError(f"--noise {noise!r}: expected auto, none or a number >= 0") from None
        if not noise >= 0:
            raise UsageError(f"--noise {noise}: must be >= 0")
    if batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    if not 0.0 <= guidance <= 1.0:
        raise UsageError(f"--guidance {guidance}: lambda must be in [0, 1]")
    job = SuperresJob(
        input=str(input),
        output=str(output),
        from_hw=parse_matrix(from_, "--from"),
        to_hw=parse_matrix(to, "--to"),
        fmt=fmt.value if fmt else None,
        save_samples=save_samples,
        metrics=metrics,
        preview=preview,
        overwrite=overwrite,
        slices=parse_slices(slices),
        options=SuperresOptions(sampler=sampler.value, steps=steps, guidance=guidance, noise=noise, samples=samples, seed=seed,
                                batch_size=batch_size),
    )
    dev = resolve_device(device)
    job.options.device = str(dev)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prior, info = load_superres_model(model, offline=offline, device=str(dev))
        summary = _with_progress(job, prior, info, quiet or json_out)
    print_warnings(caught, quiet)
    if json_out:
        print_json(summary)
    elif not quiet:
        _print_summary(summary)


def _with_progress(job, prior, info, quiet: bool) -> dict:
    from ..tasks.superres import run_superres

    if quiet:
        return run_superres(job, prior, info)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as prog:
        task = prog.add_task(Path(job.input).name, total=None)

        def cb(e: dict) -> None:
            n = max(1, e["slices"])
            if e["type"] == "slices":
                prog.update(task, completed=e["slices_done"], total=n)
            else:
                frac = e["step"] / max(1, e["steps"])
                prog.update(task, total=n, completed=e["slices_done"] + frac * 0.999 * min(n - e["slices_done"], max(1, job.options.batch_size // job.options.samples)))

        return run_superres(job, prior, info, cb)


def _print_summary(s: dict) -> None:
    from rich.table import Table

    t = Table(title="mrdiff superres", show_lines=False)
    for col in ("method", "PSNR", "SSIM"):
        t.add_column(col)
    if s.get("metrics"):
        m = s["metrics"]["mean"]
        t.add_row("mrdiff (VDM)", f"{m['psnr']:.2f}", f"{m['ssim']:.4f}")
        for name, b in (s.get("baselines") or {}).items():
            t.add_row(name, f"{b['psnr']:.2f}", f"{b['ssim']:.4f}")
        console.print(t)
    fh, fw = s["from"]
    th, tw = s["to"]
    console.print(
        f"{Path(s['input']).name}: {s['mode']} {fh}x{fw} → {th}x{tw}, {len(s['slices'])} slice(s), "
        f"{s['sampler']} sampler, {s['steps']} steps, {s['seconds_per_slice']:.2f} s/slice → {s['output']['image']}"
    )
