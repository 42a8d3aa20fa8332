"""`mrdiff simulate IMAGE -o OUT.h5`: simulated multi-coil raw k-space from a magnitude image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .common import console, handle_errors, print_json
from .options import JsonOpt, QuietOpt

MASK_CHOICES = ("poisson", "gaussian2d", "gaussian1d", "uniform1d", "equispaced", "none")
RAW_SUFFIXES = (".h5", ".hdf5")


@handle_errors
def simulate(
    image: Annotated[Path, typer.Argument(help="Magnitude image: NIfTI, DICOM file/folder, or .npy (2D or 3D); 'example' = the bundled T1 slice.",
                                          metavar="IMAGE", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE.h5", help="Output raw file (.h5; other names are refused).", show_default=False)],
    matrix: Annotated[int, typer.Option("--matrix", help="In-plane matrix (k-space crop/zero-pad resampling).")] = 128,
    coils: Annotated[int, typer.Option("--coils", help="Number of coils (1 = single-coil).")] = 8,
    snr: Annotated[float, typer.Option("--snr", help="SNR in dB vs. mean k-space signal energy (inf = no noise).")] = 30.0,
    mask: Annotated[str | None, typer.Option("--mask", help=f"Undersample with a mask: {', '.join(MASK_CHOICES)}.",
                                                show_default=False)] = None,
    accel: Annotated[float | None, typer.Option("--accel", help="Acceleration R for --mask (default 4).",
                                                   show_default=False)] = None,
    acs: Annotated[int | None, typer.Option("--acs", help="ACS (fully sampled centre): calibration lines / square side (default: mask default).",
                                               show_default=False)] = None,
    slices: Annotated[str | None, typer.Option("--slices", help="Slice range a:b (python slice); default all.",
                                                  show_default=False)] = None,
    axis: Annotated[int | None, typer.Option(
        "--axis", help="Slicing axis: NIfTI voxel axis 0/1/2 (default 2); for a 3D .npy the array axis (default 0).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for phase, noise and mask.")] = 0,
    coil_model: Annotated[str, typer.Option("--coil-model", metavar="ring|loops|wires", help="Coil sensitivities: ring (Gaussian profiles, normalised), loops (Biot-Savart surface loops) or wires (straight conductors, birdcage rungs).")] = "ring",
    phase_model: Annotated[str, typer.Option("--phase-model", metavar="poly|random|offres", help="Image phase: poly (smooth polynomial), random (Gaussian random field, 8 px) or offres (air-tissue off-resonance).")] = "poly",
    phase_std: Annotated[float, typer.Option("--phase-std", help="random/offres phase: size in radians (std; offres: 99th percentile in the head).")] = 1.0,
    noise_corr: Annotated[float, typer.Option("--noise-corr", help="Correlation of neighbouring coils' noise (0 = independent).")] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="Output format: fastmri or ismrmrd.")] = "fastmri",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate raw k-space (smooth phase, coil maps, noise, optional undersampling) from a magnitude image."""
    if mask is not None and mask.lower() not in MASK_CHOICES:
        raise UsageError(f"--mask '{mask}': choose from {', '.join(MASK_CHOICES)}")
    if seed < 0:
        raise UsageError(f"--seed {seed}: must be >= 0")
    if coil_model not in ("ring", "loops", "wires") or phase_model not in ("poly", "random", "offres"):
        raise UsageError(f"--coil-model {coil_model} / --phase-model {phase_model}: choose ring, loops or wires / "
                         "poly, random or offres")
    if not 0.0 <= noise_corr < 1.0:
        raise UsageError(f"--noise-corr {noise_corr}: must be in [0, 1)")
    if output.suffix.lower() not in RAW_SUFFIXES:
        raise UsageError(f"-o {output}: simulate writes raw k-space as HDF5 ({fmt}); name the output .h5")
    from ..tasks.simulate import simulate_file

    if str(image) == "example" and not image.exists():
        image = example_image()
    summary = simulate_file(
        image, output, matrix=matrix, coils=coils, snr_db=snr, mask_kind=mask, accel=accel, acs=acs,
        slices=slices, axis=axis, seed=seed, fmt=fmt, overwrite=overwrite, coil_model=coil_model,
        phase_model=phase_model, phase_std=phase_std, noise_corr=noise_corr,
    )
    if json_out:
        from ..io.metrics_json import to_jsonable

        print_json(to_jsonable(summary))
        return
    if quiet:
        return
    accel_txt = f", R = {summary['acceleration']:.3g} ({mask})" if summary["mask"] else ", fully sampled"
    console.print(
        f"wrote {summary['output']} ({summary['format']}): {summary['slices']} slice(s), {summary['coils']} coil(s), "
        f"{summary['matrix'][0]}x{summary['matrix'][1]}, SNR {snr:g} dB{accel_txt}",
        highlight=False,
        soft_wrap=True,
    )


def example_image() -> Path:
    """The bundled example: one real T1-weighted coronal slice (dipy sample data, BSD-3), 1 mm."""
    return Path(__file__).resolve().parent.parent / "data" / "example_t1.nii.gz"
