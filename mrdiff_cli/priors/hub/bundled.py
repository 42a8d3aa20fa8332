"""The bundled models (``mrdiff_cli/weights/<name>/``, or ``MRDIFF_WEIGHTS_DIR``) and the default per task."""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import ModelError
from ..bundle import read_mrdiff_config
from ..format import CONFIG_FILE, DEFAULT_BUNDLES, TASKS, bundle_tasks
from .env import bundled_dir


def bundled_names(wdir: str | os.PathLike | None = None) -> list[str]:
    root = bundled_dir(wdir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())


def bundled_path(name: str, wdir: str | os.PathLike | None = None) -> Path:
    root = bundled_dir(wdir)
    folder = root / name
    if not (folder / CONFIG_FILE).is_file():
        available = ", ".join(bundled_names(wdir)) or "none installed"
        raise ModelError(
            f"no bundled model '{name}' in {root} (available: {available}); for a Hub model use org/name"
        )
    return folder


def default_bundle(task: str | None, wdir: str | os.PathLike | None = None) -> str:
    """Name of the bundled default for ``task``; a VDM task may use a score bundle that lists 'vdm'."""
    task = task or "score"
    if task not in DEFAULT_BUNDLES:
        raise ModelError(f"unknown model task '{task}' (known: {', '.join(TASKS)})")
    root = bundled_dir(wdir)
    preferred = DEFAULT_BUNDLES[task]
    if (root / preferred / CONFIG_FILE).is_file():
        return preferred
    # fall back: another bundled bundle whose config serves this task (default score bundle first)
    candidates = [DEFAULT_BUNDLES["score"]] + [n for n in bundled_names(wdir) if n != DEFAULT_BUNDLES["score"]]
    for name in candidates:
        config = read_mrdiff_config(root / name)
        if config is not None and task in bundle_tasks(config):
            return name
    raise ModelError(
        f"no bundled default model for task '{task}' (expected {root / preferred}); "
        "give a `model` spec: a bundle folder or a Hub repo (org/name)"
    )
