"""Get a Hub bundle into the Hugging Face cache with ``huggingface_hub.snapshot_download`` (or find it there).

Order: a commit-pinned bundle already cached needs no network at all; offline mode reads only the cache;
online, a one-second probe decides between downloading and falling back to the cache with a warning.
Only the bundle files (config.json, model.safetensors, README.md) are ever fetched.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...errors import ModelError
from ..format import BUNDLE_FILES
from . import env
from .cache import COMMIT_RE, pinned_snapshot
from .error_map import map_hub_error, unreachable_error
from .spec import ModelSpec

logger = logging.getLogger(__name__)


def snapshot(ms: ModelSpec, cache: Path, endpoint: str, *, local_only: bool) -> Path:
    """``snapshot_download`` of the bundle files of ``ms`` (its subfolder only) into ``cache``."""
    from huggingface_hub import constants, snapshot_download

    assert ms.repo_id is not None, "snapshot() of a spec without a Hub repo id"
    prefix = f"{ms.subfolder}/" if ms.subfolder else ""
    folder = snapshot_download(
        ms.repo_id,
        revision=ms.revision or "main",
        allow_patterns=[prefix + f for f in BUNDLE_FILES],
        cache_dir=str(cache),
        local_files_only=local_only,
        endpoint=endpoint,
        etag_timeout=getattr(constants, "HF_HUB_ETAG_TIMEOUT", constants.DEFAULT_ETAG_TIMEOUT),
    )
    return Path(folder)


def _cached_while_unreachable(ms: ModelSpec, cache: Path, endpoint: str, why: str) -> tuple[Path, str]:
    """The cached snapshot when the Hub does not answer the probe, with the warning to show."""
    try:
        snap = snapshot(ms, cache, endpoint, local_only=True)
    except Exception as exc:  # not cached either
        mapped = map_hub_error(exc, ms, offline=False, why=why, cache=cache, endpoint=endpoint)
        if isinstance(mapped, ModelError):
            raise unreachable_error(ms, endpoint, cache) from None
        raise
    warning = (
        f"the Hugging Face Hub at {endpoint} is unreachable; using the cached snapshot "
        f"{snap.name[:10]} of '{ms.label}' (set HF_HUB_OFFLINE=1 to skip this check)"
    )
    logger.warning(warning)
    return snap, warning


def fetch_from_hub(ms: ModelSpec, *, offline: bool | None, cache: Path) -> tuple[Path, str | None, str | None]:
    """Download (or find in the cache) a Hub bundle. Returns (snapshot folder, commit, warning)."""
    pinned = pinned_snapshot(ms, cache)
    if pinned is not None:
        return pinned[0], pinned[1], None
    endpoint = env.hub_endpoint()
    off = env.is_offline(offline) or env.hf_frozen_offline()
    why = env.offline_reason(offline)
    warning = None
    try:
        if off:
            snap = snapshot(ms, cache, endpoint, local_only=True)
        elif not env.hub_reachable(endpoint):
            snap, warning = _cached_while_unreachable(ms, cache, endpoint, why)
        else:
            snap = snapshot(ms, cache, endpoint, local_only=False)
    except ModelError:
        raise
    except Exception as exc:
        mapped = map_hub_error(exc, ms, offline=off, why=why, cache=cache, endpoint=endpoint)
        if mapped is exc:
            raise
        raise mapped from None
    return snap, snap.name if COMMIT_RE.match(snap.name) else None, warning
