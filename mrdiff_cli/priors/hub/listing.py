"""``mrdiff models list``: the bundled models plus every mrdiff bundle in the Hugging Face cache. No network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..bundle import read_mrdiff_config
from ..format import DEFAULT_BUNDLES, WEIGHTS_FILE, bundle_tasks
from .bundled import bundled_names
from .cache import cached_model_revisions
from .env import bundled_dir, cache_root
from .resolve import bundle_files


def format_size(n: int) -> str:
    """Decimal units, as the Hub shows them: 812 B, 1.4 KB, 23.5 MB."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def _entry(
    config: dict[str, Any], *, name: str, spec: str, source: str, path: Path, size: int,
    revision: str | None = None, commit: str | None = None,
) -> dict[str, Any]:
    res = config.get("resolution")
    return {
        "name": name,
        "spec": spec,
        "source": source,
        "tasks": bundle_tasks(config),
        "resolution": list(res) if isinstance(res, list) else None,
        "fully_convolutional": bool(config.get("fully_convolutional", False)),
        "default_for": sorted(t for t, n in DEFAULT_BUNDLES.items() if source == "bundled" and n == name),
        "size_bytes": size,
        "size": format_size(size),
        "revision": revision,
        "commit": commit,
        "path": str(path),
        "complete": (path / WEIGHTS_FILE).is_file(),
        "description": config.get("description"),
    }


def _bundled_entries(weights_dir: str | os.PathLike | None) -> list[dict[str, Any]]:
    entries = []
    root = bundled_dir(weights_dir)
    for name in bundled_names(weights_dir):
        folder = root / name
        config = read_mrdiff_config(folder)
        if config is not None:
            size = sum(f["size"] for f in bundle_files(folder))
            entries.append(_entry(config, name=name, spec=f"bundled:{name}", source="bundled", path=folder, size=size))
    return entries


def _hub_entries(cache: Path) -> list[dict[str, Any]]:
    entries = []
    for repo_id, commit, refs, snap in cached_model_revisions(cache):
        subdirs = sorted(p for p in snap.iterdir() if p.is_dir()) if snap.is_dir() else []
        rev = "main" if "main" in refs else (refs[0] if refs else commit)
        for folder in [snap, *subdirs]:
            config = read_mrdiff_config(folder)
            if config is None:
                continue
            sub = folder.relative_to(snap).as_posix() if folder != snap else None
            spec = f"hf://{repo_id}@{rev}/{sub}" if sub else (repo_id if rev == "main" else f"{repo_id}@{rev}")
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            name = repo_id + (f"/{sub}" if sub else "")
            entries.append(
                _entry(config, name=name, spec=spec, source="hub", path=folder, size=size,
                       revision=", ".join(refs) or None, commit=commit)
            )
    return entries


def list_models(
    *, weights_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> list[dict[str, Any]]:
    """Bundled models plus every mrdiff bundle in the Hugging Face cache (repo root or one subfolder deep).

    Each entry: name, spec (a ``--model`` value that selects it), source, tasks, resolution, size_bytes,
    size, revision (cached refs), commit, path, complete (weights present), description. No network.
    """
    return _bundled_entries(weights_dir) + _hub_entries(cache_root(cache_dir))
