"""Reusable Typer option types shared by commands (``Annotated`` aliases). No torch, no huggingface_hub."""

from __future__ import annotations

from typing import Annotated

import typer

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help=(
            "Model bundle: a folder (config.json + model.safetensors), bundled:NAME, a Hub repo org/name, "
            "org/name@REVISION (branch, tag or commit), or hf://org/name@REVISION/SUBFOLDER. "
            "Default: the bundled model for this task."
        ),
        show_default=False,
        rich_help_panel="Model",
    ),
]

OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help=(
            "Never contact the Hugging Face Hub; use bundled, local or already-cached models only "
            "(same as HF_HUB_OFFLINE=1 or MRDIFF_OFFLINE=1)."
        ),
        rich_help_panel="Model",
    ),
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

CoilsOpt = Annotated[
    int | None,
    typer.Option(
        "--coils",
        help=(
            "Coil compression to N virtual coils (per-slice SVD over coils, like BART cc); 0 = off. "
            "Default: auto (SENSE with more than 12 coils: max(10, ceil(coils/2)))."
        ),
        show_default=False,
        rich_help_panel="Execution",
    ),
]

ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="CPU threads for torch (default: MRDIFF_THREADS or OMP_NUM_THREADS, else the CPUs this process may use).",
        show_default=False,
        rich_help_panel="Execution",
    ),
]


OverwriteOpt = Annotated[bool, typer.Option(help="Replace existing outputs.", rich_help_panel="Output")]

DeviceOpt = Annotated[str, typer.Option(metavar="DEVICE", help="auto, cpu, cuda or cuda:N.", rich_help_panel="Execution")]

SlicesOpt = Annotated[
    str | None,
    typer.Option(metavar="SLICES", help="Slices: 3, 3:7 (end exclusive) or 1,4,6.", rich_help_panel="Execution"),
]

QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress or messages on stderr (progress is a bar on a terminal, a line every ~10 s otherwise).",
        rich_help_panel="Execution",
    ),
]


def parse_batch_size(spec: str | None) -> int | None:
    """--batch-size N | auto → N, or None for auto (chosen for the device: free GPU memory, 4 on the CPU)."""
    if spec is None or str(spec).strip().lower() == "auto":
        return None
    try:
        n = int(spec)
    except ValueError:
        from ..errors import UsageError

        raise UsageError(f"--batch-size {spec!r}: expected a positive integer or 'auto'") from None
    return n

__all__ = ["CoilsOpt", "DeviceOpt", "JsonOpt", "ModelOpt", "OfflineOpt", "OverwriteOpt", "QuietOpt", "SlicesOpt",
           "ThreadsOpt", "parse_batch_size"]
