"""Reusable Typer option types shared by commands (``Annotated`` aliases). No torch, no huggingface_hub."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ModelOpt = Annotated[
    Optional[str],
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

__all__ = ["JsonOpt", "ModelOpt", "OfflineOpt"]
