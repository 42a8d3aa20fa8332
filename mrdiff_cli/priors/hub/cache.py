"""Read the Hugging Face cache with huggingface_hub's own API; never the network.

* :func:`pinned_snapshot`: a commit-pinned bundle already in the cache (``try_to_load_from_cache``),
* :func:`cached_revisions` / :func:`cached_model_revisions`: what is cached (``scan_cache_dir``),
* :func:`repo_pickles`: pickle files the cached tree listing shows (``get_cached_repo_tree``).

The layout (``models--org--name/{blobs,snapshots,refs}``) is huggingface_hub's business; nothing here builds
cache paths by hand.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, cast

from ..format import CONFIG_FILE, PICKLE_SUFFIXES, WEIGHTS_FILE
from .spec import ModelSpec

logger = logging.getLogger(__name__)

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def _prefix(ms: ModelSpec) -> str:
    return f"{ms.subfolder}/" if ms.subfolder else ""


def pinned_snapshot(ms: ModelSpec, cache: Path) -> tuple[Path, str] | None:
    """(snapshot folder, commit) when ``ms`` pins a full commit hash whose bundle files are both cached."""
    rev = ms.revision or "main"
    if not COMMIT_RE.match(rev) or ms.repo_id is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    prefix = _prefix(ms)
    found = [
        try_to_load_from_cache(ms.repo_id, prefix + name, cache_dir=str(cache), revision=rev)
        for name in (CONFIG_FILE, WEIGHTS_FILE)
    ]
    if not all(isinstance(f, str) for f in found):  # None (unknown) or the "cached as missing" sentinel
        return None
    return Path(cast(str, found[0])).parents[prefix.count("/")], rev


def _scan(cache: Path) -> Any | None:
    """``scan_cache_dir(cache)`` or None when there is no (readable) cache."""
    if not cache.is_dir():
        return None
    from huggingface_hub import scan_cache_dir

    try:
        return scan_cache_dir(cache)
    except Exception as exc:  # CacheNotFound, CorruptedCacheException, OSError: treat as empty
        logger.debug("scan_cache_dir(%s) failed: %s", cache, exc)
        return None


def _model_repos(cache: Path) -> list[Any]:
    info = _scan(cache)
    return sorted((r for r in info.repos if r.repo_type == "model"), key=lambda r: r.repo_id) if info else []


def cached_revisions(cache: Path, repo_id: str) -> list[str] | None:
    """Cached ref names, then the short hashes of cached commits; None when the repo is not cached at all."""
    for repo in _model_repos(cache):
        if repo.repo_id == repo_id:
            refs = sorted({ref for rev in repo.revisions for ref in rev.refs})
            commits = sorted(rev.commit_hash[:10] for rev in repo.revisions)
            return refs + [c for c in commits if c not in refs]
    return None


def cached_model_revisions(cache: Path) -> list[tuple[str, str, list[str], Path]]:
    """(repo_id, commit, refs, snapshot folder) for every cached model revision; per repo the one that
    ``main`` points to first, then by ref name."""
    out = []
    for repo in _model_repos(cache):
        for rev in sorted(repo.revisions, key=lambda r: ("main" not in r.refs, sorted(r.refs), r.commit_hash)):
            out.append((repo.repo_id, rev.commit_hash, sorted(rev.refs), Path(rev.snapshot_path)))
    return out


def repo_pickles(ms: ModelSpec, cache: Path, commit: str | None) -> list[str]:
    """Pickle files the Hub tree listing (cached by snapshot_download) shows for this repo/subfolder."""
    if commit is None or ms.repo_id is None:
        return []
    try:
        from huggingface_hub import get_cached_repo_tree  # huggingface_hub >= 1.x
    except ImportError:
        return []
    try:
        files = get_cached_repo_tree(ms.repo_id, revision=commit, cache_dir=str(cache))
    except Exception:
        return []
    prefix = _prefix(ms)
    return sorted(
        f.path[len(prefix) :]
        for f in files
        if f.path.startswith(prefix)
        and "/" not in f.path[len(prefix) :]
        and Path(f.path).suffix.lower() in PICKLE_SUFFIXES
    )
