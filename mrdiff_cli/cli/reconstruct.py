"""`mrdiff reconstruct`: undersampled raw k-space → image (diffusion posterior, SENSE or zero-filled).

The options it shares with `uncertainty` are declared in ``recon_options`` (and ``options``)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import handle_errors
from .options import CoilsOpt, DeviceOpt, JsonOpt, ModelOpt, OfflineOpt, OverwriteOpt, QuietOpt, SlicesOpt, ThreadsOpt
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
    CoilMode,
    CoilModeOpt,
    ComplexMode,
    ComplexModeOpt,
    CountPilotOpt,
    FormatOpt,
    InFormat,
    InputFormatOpt,
    InputsArg,
    KeepGoingOpt,
    MapsSupportOpt,
    MaskKind,
    MaskOpt,
    Method,
    MetricsOpt,
    OutFormat,
    OutputOpt,
    PhaseRefOpt,
    PhaseResidOpt,
    PrecisionOpt,
    PreviewOpt,
    Sampler,
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

# the enums stay importable from here (they moved to recon_options)
__all__ = ["CoilMode", "ComplexMode", "InFormat", "MaskKind", "Method", "OutFormat", "Sampler", "reconstruct"]


@handle_errors
def reconstruct(
    inputs: InputsArg,
    output: OutputOpt,
    method: Annotated[Method, typer.Option(help="diffusion (score prior), sense (CG-SENSE) or zero-filled.")] = Method.diffusion,
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
    samples: Annotated[int, typer.Option("--samples", "-K", help="Posterior samples; >1 writes mean + variance/std maps.", rich_help_panel=SAMPLER)] = 1,
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
) -> None:
    """Reconstruct undersampled raw k-space with the diffusion prior (or SENSE / zero-filled baselines)."""
    from .jobs import recon_job_from_cli, run_recon

    options = {  # every option by name, so what the job reads is visible here
        "inputs": inputs, "output": output, "method": method, "mask": mask, "accel": accel, "acs": acs,
        "sampler": sampler, "steps": steps, "coil_mode": coil_mode, "complex_mode": complex_mode,
        "phase_resid": phase_resid, "phase_ref": phase_ref, "count_pilot": count_pilot, "coil_maps": coil_maps, "maps_support": maps_support, "sense_every": sense_every, "snr": snr,
        "sigma_max": sigma_max, "zeta": zeta, "cg_iters": cg_iters, "samples": samples, "model": model, "offline": offline, "fmt": fmt,
        "input_format": input_format, "save_zero_filled": save_zero_filled, "save_samples": save_samples,
        "preview": preview, "metrics": metrics, "overwrite": overwrite, "seed": seed, "device": device,
        "batch_size": batch_size, "coils": coils, "threads": threads, "precision": precision, "shard": shard,
        "slices": slices, "keep_going": keep_going, "quiet": quiet, "json_out": json_out,
    }
    job = recon_job_from_cli(options)
    run_recon(job, quiet=quiet, json_out=json_out, device=device, precision=precision, title="mrdiff reconstruct")
