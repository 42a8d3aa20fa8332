"""``--model`` → a validated bundle folder on disk: :func:`resolve_model`, the one entry point every command uses.

Bundled defaults and local folders are used in place; Hub bundles are fetched into the Hugging Face cache
(:mod:`.fetch`). Every source passes the same :func:`~mrdiff_cli.priors.bundle.check_bundle`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ModelError
from ..bundle import check_bundle, refuse_pickles
from ..format import BUNDLE_FILES, CARD_FILE, CONFIG_FILE, PICKLE_SUFFIXES, WEIGHTS_FILE, bundle_tasks
from .bundled import bundled_path, default_bundle
from .cache import repo_pickles
from .env import cache_root
from .fetch import fetch_from_hub
from .spec import ModelSpec, parse_model_spec


@dataclass
class ResolvedModel:
    """A bundle folder that exists on disk and passed :func:`check_bundle`."""

    path: Path
    source: str  # 'bundled' | 'local' | 'hub'
    repo_id: str | None
    revision: str | None
    config: dict[str, Any]
    name: str = ""
    commit: str | None = None  # Hub snapshot commit hash
    subfolder: str | None = None
    warning: str | None = None  # e.g. "Hub unreachable, using the cached snapshot"

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def tasks(self) -> list[str]:
        return bundle_tasks(self.config)

    @property
    def resolution(self) -> tuple[int, int]:
        h, w = self.config["resolution"]
        return int(h), int(w)

    @property
    def pinned_spec(self) -> str:
        """A ``--model`` value that reproduces exactly this bundle (for provenance in outputs)."""
        if self.source == "hub":
            rev = self.commit or self.revision or "main"
            sub = f"/{self.subfolder}" if self.subfolder else ""
            return f"hf://{self.repo_id}@{rev}{sub}"
        if self.source == "bundled":
            return f"bundled:{self.name}"
        return str(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "path": str(self.path),
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "subfolder": self.subfolder,
            "spec": self.pinned_spec,
            "tasks": self.tasks,
            "resolution": list(self.resolution),
            "warning": self.warning,
        }


def resolve_model(
    spec: str | None,
    task: str | None,
    *,
    offline: bool | None = None,
    resolution: tuple[int, int] | None = None,
    weights_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> ResolvedModel:
    """Resolve a ``--model`` value to a validated bundle folder on disk (downloading it if needed).

    ``task`` ('score' | 'vdm') is checked against the bundle (``None`` skips the check, e.g. for
    ``mrdiff models info``); ``resolution`` (H, W), when given, must equal the trained resolution.
    ``weights_dir`` overrides the bundled-weights folder (default: ``MRDIFF_WEIGHTS_DIR`` or
    ``mrdiff_cli/weights``); ``cache_dir`` overrides the Hugging Face cache (default: ``HF_HUB_CACHE`` /
    ``HF_HOME``/hub, read at call time).
    """
    ms = parse_model_spec(spec)
    if ms.kind in ("default", "bundled"):
        name = default_bundle(task, weights_dir) if ms.kind == "default" else str(ms.name)
        path = bundled_path(name, weights_dir)
        config = check_bundle(path, task, resolution, label=f"bundled:{name}")
        return ResolvedModel(path=path, source="bundled", repo_id=None, revision=None, config=config, name=name)
    if ms.kind == "local":
        assert ms.path is not None
        path = ms.path.resolve()
        config = check_bundle(path, task, resolution, label=str(ms.raw))
        return ResolvedModel(path=path, source="local", repo_id=None, revision=None, config=config, name=path.name)
    return _resolve_hub(ms, task, resolution, offline=offline, cache=cache_root(cache_dir))


def _resolve_hub(
    ms: ModelSpec, task: str | None, resolution: tuple[int, int] | None, *, offline: bool | None, cache: Path
) -> ResolvedModel:
    snap, commit, warning = fetch_from_hub(ms, offline=offline, cache=cache)
    folder = snap / ms.subfolder if ms.subfolder else snap
    if not (folder / WEIGHTS_FILE).is_file():
        _explain_missing_weights(ms, folder, cache, commit)
    config = check_bundle(folder, task, resolution, label=ms.label)
    return ResolvedModel(
        path=folder,
        source="hub",
        repo_id=ms.repo_id,
        revision=ms.revision or "main",
        config=config,
        name=f"{ms.repo_id}/{ms.subfolder}" if ms.subfolder else str(ms.repo_id),
        commit=commit,
        subfolder=ms.subfolder,
        warning=warning,
    )


def _explain_missing_weights(ms: ModelSpec, folder: Path, cache: Path, commit: str | None) -> None:
    """No model.safetensors was fetched: refuse a pickle-only repo, or say that the subfolder has no bundle.
    (Pickles in the folder itself are reported by check_bundle.)"""
    if folder.is_dir() and any(p.suffix.lower() in PICKLE_SUFFIXES for p in folder.iterdir()):
        return
    # the pickles were not downloaded (allow_patterns): ask the cached tree listing
    refuse_pickles(ms.label, repo_pickles(ms, cache, commit), "the repo has")
    if not folder.is_dir():
        where = f" under '{ms.subfolder}'" if ms.subfolder else ""
        raise ModelError(
            f"model '{ms.label}' has no mrdiff bundle{where} ({CONFIG_FILE} + {WEIGHTS_FILE} not in the repo)"
        )


def download_model(
    spec: str,
    *,
    offline: bool | None = None,
    task: str | None = None,
    weights_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> ResolvedModel:
    """Fetch a model into the Hugging Face cache (no-op for bundled/local bundles) and validate it."""
    return resolve_model(spec, task, offline=offline, weights_dir=weights_dir, cache_dir=cache_dir)


def bundle_files(folder: Path) -> list[dict[str, Any]]:
    """The bundle files present in ``folder``: [{name, size}]."""
    return [{"name": n, "size": (folder / n).stat().st_size} for n in BUNDLE_FILES if (folder / n).is_file()]


def model_info(
    spec: str | None,
    *,
    offline: bool | None = None,
    weights_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Resolve a model and describe it: where it is, tasks, resolution, files, config and model card."""
    rm = resolve_model(spec, None, offline=offline, weights_dir=weights_dir, cache_dir=cache_dir)
    card_path = rm.path / CARD_FILE
    try:
        card = card_path.read_text(encoding="utf-8") if card_path.is_file() else None
    except (OSError, UnicodeDecodeError):
        card = None
    files = bundle_files(rm.path)
    info = rm.to_dict()
    info.update(
        description=rm.config.get("description"),
        files=files,
        size_bytes=sum(f["size"] for f in files),
        config=rm.config,
        card=card,
    )
    return info
