"""`mrdiff superres`: low-resolution MR image (or raw k-space) → higher resolution with the k-space-guided VDM."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import handle_errors
from .options import JsonOpt, ModelOpt, OfflineOpt

RES = "Resolution"
SAMPLER = "Sampler"
OUTPUT = "Output"
RUN = "Execution"


class SRSampler(str, Enum):
    fast = "fast"
    vdm = "vdm"


class Consistency(str, Enum):
    auto = "auto"
    magnitude = "magnitude"
    linear = "linear"


class Calibration(str, Enum):
    model = "model"
    none = "none"


class OutFormat(str, Enum):
    nifti = "nifti"
    dicom = "dicom"


@handle_errors
def superres(
    input: Annotated[Path, typer.Argument(help="NIfTI / DICOM magnitude image (or .npy), or raw k-space h5 (its zero-filled RSS is used). NaN/Inf voxels are set to 0 with a warning.", metavar="IMAGE", show_default=False)],
    from_: Annotated[str, typer.Option("--from", metavar="N|HxW", help="Low-resolution matrix N or HxW. If the input has this matrix it is the acquisition; if larger it is degraded to it (k-space crop) and used as the reference.", rich_help_panel=RES, show_default=False)],
    to: Annotated[str, typer.Option("--to", metavar="N|HxW", help="Target matrix N or HxW (any size; the prior is fully convolutional).", rich_help_panel=RES, show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Output file (.nii.gz), or a folder path (no extension or a trailing /) for a DICOM series; with --format nifti a folder gets <input stem>.nii.gz inside.", rich_help_panel=OUTPUT, show_default=False)],
    model: ModelOpt = None,
    offline: OfflineOpt = False,
    sampler: Annotated[SRSampler, typer.Option(help="fast: denoise -> consistency on the measured k-space block -> renoise (21 network evaluations, NFE); vdm: the seed's k-space-guided VDM sampler.", rich_help_panel=SAMPLER)] = SRSampler.fast,
    steps: Annotated[int | None, typer.Option(help="Sampler steps (default: fast 20, vdm 100; the VDM paper uses 1000).", rich_help_panel=SAMPLER, show_default=False)] = None,
    guidance: Annotated[float, typer.Option("--guidance", help="vdm: k-space guidance weight lambda in [0, 1] (1 = exact low-k consistency, 0 = ignore the data); --lambda is the same option.", rich_help_panel=SAMPLER)] = 1.0,
    lambda_: Annotated[float | None, typer.Option("--lambda", hidden=True)] = None,
    noise: Annotated[str, typer.Option(metavar="auto|none|STD", help="fast: noise std of the low-resolution image: 'auto' (estimated from the data; soft consistency), 'none' (hard consistency) or a number in image units.", rich_help_panel=SAMPLER)] = "auto",
    consistency: Annotated[Consistency, typer.Option(help="fast: what the low-resolution image is. magnitude: |low-res image| (consistency with its magnitude, the sign from the estimate); linear: the low-res image itself; auto: magnitude for a magnitude/RSS input, linear for a retrospective degradation.", rich_help_panel=SAMPLER)] = Consistency.auto,
    samples: Annotated[int, typer.Option("--samples", "-K", help="Samples per slice; >1 writes the mean plus variance/std maps.", rich_help_panel=SAMPLER)] = 1,
    save_samples: Annotated[bool, typer.Option(help="Also write every sample.", rich_help_panel=OUTPUT)] = False,
    calibration: Annotated[Calibration, typer.Option("--calibration", help="K > 1: model scales the sample spread per volume by the extrapolation-ring hold-out (samples drawn from the inner 85 % of the measured k-space block must predict the rest; the model's fitted constants, or defaults); none writes the raw sample spread.", rich_help_panel=SAMPLER)] = Calibration.model,
    seed: Annotated[int, typer.Option(help="Random seed (same seed and batch size → same output).", rich_help_panel=RUN)] = 0,
    device: Annotated[str, typer.Option(metavar="DEVICE", help="auto, cpu, cuda or cuda:N.", rich_help_panel=RUN)] = "auto",
    batch_size: Annotated[int, typer.Option(help="Images per network batch (slices × samples).", rich_help_panel=RUN)] = 16,
    fmt: Annotated[OutFormat | None, typer.Option("--format", help="Output format (default from the output name).", rich_help_panel=OUTPUT)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.", rich_help_panel=OUTPUT)] = False,
    preview: Annotated[bool, typer.Option(help="Write <output>_preview.png (bicubic | sinc | mrdiff | reference | std).", rich_help_panel=OUTPUT)] = False,
    metrics: Annotated[bool, typer.Option(help="Write <output>_metrics.json.", rich_help_panel=OUTPUT)] = True,
    slices: Annotated[str | None, typer.Option(metavar="SLICES", help="Slices: 3, 3:7 (end exclusive) or 1,4,6.", rich_help_panel=RUN)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or messages on stderr (progress is a bar on a terminal, a line every ~10 s otherwise).", rich_help_panel=RUN)] = False,
    json_out: JsonOpt = False,
) -> None:
    """Super-resolve MR images with the k-space-guided variational diffusion model (e.g. 64 → 128)."""
    from .jobs import run_superres_job, superres_job_from_options

    kw: dict[str, Any] = dict(
        input=input, from_=from_, to=to, output=output, model=model, offline=offline, sampler=sampler, steps=steps,
        noise=noise, consistency=consistency, samples=samples, save_samples=save_samples, calibration=calibration,
        seed=seed, device=device,
        batch_size=batch_size, fmt=fmt, overwrite=overwrite, preview=preview, metrics=metrics, slices=slices,
        quiet=quiet, json_out=json_out,
        guidance=guidance if lambda_ is None else lambda_,  # --lambda: the seed's name of --guidance
    )
    job = superres_job_from_options(kw)
    run_superres_job(job, model=model, offline=offline, device=device, quiet=quiet, json_out=json_out)
