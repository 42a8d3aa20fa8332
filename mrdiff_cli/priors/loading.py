"""Resolve a --model spec (bundled / folder / Hub) and load it onto a device: the one entry point commands use."""

from __future__ import annotations

import warnings
from typing import Any

from .bundle import load_bundle
from .hub import resolve_model


def load_prior(spec: str | None, task: str, *, offline: bool = False, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """→ (model in eval mode on device, info dict for metrics / DICOM descriptions).

    The bundle is validated for ``task`` (:func:`~mrdiff_cli.priors.bundle.check_bundle`) before any weights are
    read. A resolution warning (e.g. Hub unreachable, cached snapshot used) is raised as a Python warning; the
    CLI prints those on stderr.
    """
    resolved = resolve_model(spec, task, offline=offline or None)
    if resolved.warning:
        warnings.warn(resolved.warning, stacklevel=2)
    model, config = load_bundle(resolved.path, device=device)
    info = {
        "name": resolved.path.name if resolved.source != "hub" else resolved.repo_id,
        "source": resolved.source,
        "path": str(resolved.path),
        "revision": resolved.revision,
        "architecture": (config.get("architecture") or {}).get("type"),
        "training_steps": (config.get("training") or {}).get("steps"),
    }
    return model, info
