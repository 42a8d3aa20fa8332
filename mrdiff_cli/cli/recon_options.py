"""The options `reconstruct` and `uncertainty` share, declared once: their enums, ``Annotated`` aliases (help text,
flag names, panel) and the defaults that are not None / False. Each command writes its parameters out in its own
signature with these types, so ``mrdiff X --help`` and the source show the same list. No torch, no numpy."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

# the library's choices (torch-free): the CLI offers exactly these
from ..samplers.modes import (
    CoilMaps,
    CoilMode,
    ComplexMode,
    CountPilot,
    MapsSupport,
    Method,
    NoiseConsistency,
    PhaseRef,
)

__all__ = ["CoilMode", "ComplexMode", "CountPilot", "Method", "NoiseConsistency", "Sampler"]

SAMPLING = "Undersampling"
SAMPLER = "Sampler"
OUTPUT = "Output"
RUN = "Execution"


class MaskKind(str, Enum):
    poisson = "poisson"
    gaussian2d = "gaussian2d"
    gaussian1d = "gaussian1d"
    uniform1d = "uniform1d"
    equispaced = "equispaced"


class Sampler(str, Enum):
    """The samplers `reconstruct` offers (a subset of the registry, samplers.TASK_SAMPLERS["reconstruct"]: Typer needs
    the enum spelled out; tests/test_samplers_registry.py checks they match)."""

    fast = "fast"
    pc = "pc"


class OutFormat(str, Enum):
    nifti = "nifti"
    dicom = "dicom"
    h5 = "h5"


class InFormat(str, Enum):
    fastmri = "fastmri"
    ismrmrd = "ismrmrd"
    bart = "bart"


# defaults other than None / False (both signatures and uncertainty's --task superres check use them)
SAMPLER_DEFAULT = Sampler.fast
COIL_MODE_DEFAULT = CoilMode.auto
COMPLEX_MODE_DEFAULT = ComplexMode.phase
PHASE_REF_DEFAULT = PhaseRef.centre
COUNT_PILOT_DEFAULT = CountPilot.auto
COIL_MAPS_DEFAULT = CoilMaps.auto
MAPS_SUPPORT_DEFAULT = MapsSupport.auto
SENSE_EVERY_DEFAULT = 10
SNR_DEFAULT = 0.16
SEED_DEFAULT = 0
DEVICE_DEFAULT = "auto"
PRECISION_DEFAULT = "auto"

# ---- inputs and outputs
InputsArg = Annotated[list[Path], typer.Argument(help="Raw k-space file(s): fastMRI h5, ISMRMRD h5 or BART .cfl/.hdr.", metavar="FILE", show_default=False)]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Output file (.nii.gz with a .json sidecar; .h5 in fastMRI's submission layout), or a folder path (no extension or a trailing /, existing or not): one input → a DICOM series written as that folder (with --format nifti/h5: <input stem>.nii.gz/.h5 inside it); several inputs → one <input stem>.nii.gz (or series) per input inside it. Missing folders are created.", rich_help_panel=OUTPUT)]
FormatOpt = Annotated[OutFormat | None, typer.Option("--format", help="Output format (default from the output name): nifti, dicom, or h5 (fastMRI 'reconstruction' dataset).", rich_help_panel=OUTPUT)]
InputFormatOpt = Annotated[InFormat | None, typer.Option(help="Force the input format instead of detecting it.")]
SaveZeroFilledOpt = Annotated[bool, typer.Option(help="Also write the zero-filled image.", rich_help_panel=OUTPUT)]
SaveSamplesOpt = Annotated[bool, typer.Option(help="Also write every posterior sample.", rich_help_panel=OUTPUT)]
PreviewOpt = Annotated[bool, typer.Option(help="Write a PNG preview of the middle slice.", rich_help_panel=OUTPUT)]
MetricsOpt = Annotated[bool, typer.Option(help="Write <output>_metrics.json and <output>_mask.png.", rich_help_panel=OUTPUT)]

# ---- undersampling
MaskOpt = Annotated[MaskKind | None, typer.Option("--mask", help="Undersample retrospectively with this pattern.", rich_help_panel=SAMPLING)]
AccelOpt = Annotated[float | None, typer.Option("--accel", "-R", help="Target acceleration for --mask.", rich_help_panel=SAMPLING)]
AcsOpt = Annotated[int | None, typer.Option("--acs", help="ACS: size of the fully sampled centre (auto-calibration lines; default per mask kind; 0 = none).", rich_help_panel=SAMPLING)]

# ---- sampler (`--samples` differs per command: its own declaration there)
SamplerOpt = Annotated[Sampler, typer.Option(help="fast (few-step, default) or pc (paper's predictor-corrector).", rich_help_panel=SAMPLER)]
StepsOpt = Annotated[int | None, typer.Option(help="Sampler steps, >= 1 (fast: 40, i.e. 41 network evaluations (NFE), for one sample and 20 per sample for K > 1; pc: 500 multi-coil, 2000 single-coil).", rich_help_panel=SAMPLER)]
CoilModeOpt = Annotated[CoilMode, typer.Option(help="How coils enter the prior: sense (coil maps combine them into one image), ssos (each coil image separately, combined by the square root of the sum of squares), hybrid (ssos with a SENSE sweep every --sense-every steps), single/real (single-coil data); auto: sense for multi-coil, single for single-coil.", rich_help_panel=SAMPLER)]
ComplexModeOpt = Annotated[ComplexMode | None, typer.Option(help="How the prior sees complex images: phase (demodulated real part) or realimag (the seed's split) for a magnitude prior; complex for a complex-valued prior (mrdiff train score --complex), chosen automatically for one.", rich_help_panel=SAMPLER)]
PhaseResidOpt = Annotated[float | None, typer.Option(help="Magnitude model only (e.g. --model bundled:score-brain-128), phase mode: prior std of the imaginary part left after removing the smooth phase (normalised units; 0 = phase assumed smooth). Default: chosen per scan with the CG count by the hold-out pilot, 0.005 (smooth phase) or 0.05 (fine phase structure, e.g. off-resonance); 0.005 where no pilot runs.", rich_help_panel=SAMPLER, show_default=False)]
PhaseRefOpt = Annotated[PhaseRef, typer.Option("--phase-ref", help="Magnitude model only, phase mode, SENSE: the phase the magnitude prior removes. centre: the CG-SENSE start's low-resolution (24-pixel) phase, refined at the last steps; l1: the phase of an L1-wavelet SENSE reconstruction at half resolution (finer phase detail; about 0.3 s per slice at 128²; better on some acquisitions, worse on others: docs/reconstruct.md).", rich_help_panel=SAMPLER)]
CountPilotOpt = Annotated[CountPilot, typer.Option("--count-pilot", help="How the self-tuning pilot scores the CG counts (when --cg-iters is not given). holdout: hide 15 % of the measured samples and keep the count that predicts them best; bootstrap: simulate the scan from a reference reconstruction (its mask, coil maps and estimated noise) and keep the count that recovers the reference best; auto: bootstrap on regular (equispaced) 1D masks, hold-out elsewhere (docs/reconstruct.md).", rich_help_panel=SAMPLER)]
CoilMapsOpt = Annotated[CoilMaps, typer.Option("--coil-maps", help="How the SENSE coil maps are estimated from the calibration centre. espirit: ESPIRiT with a fixed relative signal-subspace cut; adaptive: the subspace cut at the scan's own estimated noise level (finer maps at high SNR, the same at low SNR; the self-tuning pilots keep the espirit maps); auto: adaptive for diffusion runs (one sample or --samples K > 1; the K > 1 spread is calibrated on the espirit maps), espirit for the SENSE baseline. docs/reconstruct.md, docs/benchmarks.md \"Coil maps\".", rich_help_panel=SAMPLER)]
MapsSupportOpt = Annotated[MapsSupport, typer.Option("--maps-support", help="Where the adaptive coil maps are nonzero. release: the espirit maps' support (ESPIRiT eigenvalue 0.8); own: eigenvalue 0.95 of the adaptive subspace itself (wider where the object fills the field of view, tighter around a small one); auto: per scan, own only when a k-space hold-out pilot predicts the hidden samples more than 10 % better with it. Applies when the maps are adaptive (--coil-maps auto with the diffusion method, or adaptive). docs/reconstruct.md \"Coil maps\".", rich_help_panel=SAMPLER)]
SenseEveryOpt = Annotated[int, typer.Option(help="Hybrid mode: a SENSE consistency sweep (Kaczmarz: one projection onto the data per coil in turn) every m steps.", rich_help_panel=SAMPLER)]
SnrOpt = Annotated[float, typer.Option(help="PC sampler: Langevin corrector SNR.", rich_help_panel=SAMPLER)]
SigmaMaxOpt = Annotated[float | None, typer.Option(help="Starting noise level, > 0 (fast: 1.0; pc: the prior's sigma_max).", rich_help_panel=SAMPLER)]
ZetaOpt = Annotated[str | None, typer.Option(metavar="ZETA|ancestral", help="Fast sampler renoise ζ (zeta: how much fresh noise each step adds back): a number in [0, 1] (1 = fresh noise) or 'ancestral' (default 1; 'ancestral' keeps the raw posterior spread of K > 1 samples, at a noisier mean).", rich_help_panel=SAMPLER)]
CgItersOpt = Annotated[int | None, typer.Option(help="CG (conjugate-gradient) data-consistency iterations per step (fast sampler), >= 1. Default: chosen per scan by a short pilot on one or two slices (SENSE mode; --count-pilot): k-space hold-out cross-validation, or on equispaced 1D masks a parametric bootstrap of the scan, over 1-15 iterations (1-7 for --samples > 1); 7 where neither applies.", rich_help_panel=SAMPLER, show_default=False)]

# ---- execution
SeedOpt = Annotated[int, typer.Option(help="Seed for the mask and the sampler.", rich_help_panel=RUN)]
BatchSizeOpt = Annotated[str | None, typer.Option(metavar="N|auto", help="Images per batch (slices × samples × coils), or auto (default): from free memory on a GPU, 4 on the CPU (larger batches were slower per image there).", rich_help_panel=RUN, show_default=False)]
PrecisionOpt = Annotated[str, typer.Option(metavar="auto|fp32|bf16|fp16", help="Network precision: auto (bf16 where the CPU/GPU runs it natively, else fp32), fp32, bf16 or fp16 (GPU).", rich_help_panel=RUN)]
ShardOpt = Annotated[str | None, typer.Option(metavar="I/N", help="This node's share of slices, shard I of N (0-based; default: SLURM array vars). A shard with no slices writes nothing, says so in one line and exits 0.", rich_help_panel=RUN)]
KeepGoingOpt = Annotated[bool, typer.Option("--keep-going", help="Several inputs: when one fails, name it on stderr and go on with the next; exit 2 at the end if any failed (default: the first failure stops the run).", rich_help_panel=RUN)]
