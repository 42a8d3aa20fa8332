"""huggingface_hub's exceptions (and raw network errors) → one-line :class:`~mrdiff_cli.errors.ModelError`s
that name the repo, the revision, the cache folder and the switch that helps."""

from __future__ import annotations

from pathlib import Path

from ...errors import ModelError
from .cache import cached_revisions
from .spec import ModelSpec

_LOGIN = "`hf auth login` or set HF_TOKEN"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def unreachable_error(ms: ModelSpec, endpoint: str, cache: Path) -> ModelError:
    return ModelError(
        f"cannot reach the Hugging Face Hub at {endpoint} to fetch '{ms.label}' and it is not in the "
        f"local cache ({cache}); check the network/proxy, or set HF_HUB_OFFLINE=1 (or pass `offline`) "
        "to use cached models only"
    )


def not_cached_error(ms: ModelSpec, cache: Path, why: str) -> ModelError:
    repo = ms.repo_id or ""
    cached = cached_revisions(cache, repo) if ms.revision else None
    if cached is not None:
        return ModelError(
            f"revision '{ms.revision}' of '{repo}' is not in the local cache ({cache}; cached: "
            f"{', '.join(cached) or 'none'}) and offline mode is on ({why}); fetch it once with network access "
            "or drop `offline` / HF_HUB_OFFLINE"
        )
    return ModelError(
        f"model '{ms.label}' is not in the local cache ({cache}) and offline mode is on ({why}); "
        f"run `mrdiff models download {ms.raw or repo}` with network access first, "
        "or drop `offline` / HF_HUB_OFFLINE"
    )


def _local_entry_error(exc: Exception, ms: ModelSpec, *, offline: bool, why: str, cache: Path, endpoint: str):
    if "incomplete" in type(exc).__name__.lower():  # IncompleteSnapshotError (huggingface_hub >= 1.x)
        return ModelError(
            f"the cached snapshot of '{ms.label}' is incomplete and the Hub cannot be used now; "
            "download it again with network access (`mrdiff models download`)"
        )
    return not_cached_error(ms, cache, why) if offline else unreachable_error(ms, endpoint, cache)


def map_hub_error(exc: Exception, ms: ModelSpec, *, offline: bool, why: str, cache: Path, endpoint: str) -> Exception:
    """Turn a huggingface_hub / network exception into a one-line ModelError (others are returned as is)."""
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo = ms.repo_id
    if isinstance(exc, GatedRepoError):  # before RepositoryNotFoundError, its parent class
        return ModelError(
            f"model repo '{repo}' is gated: accept its terms at {endpoint}/{repo} and log in "
            "(`hf auth login` or HF_TOKEN)"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(
            f"model repo '{repo}' not found on the Hub at {endpoint} (if it is private, log in with {_LOGIN})"
        )
    if isinstance(exc, RevisionNotFoundError):
        return ModelError(f"revision '{ms.revision}' not found in model repo '{repo}'")
    if isinstance(exc, LocalEntryNotFoundError):
        return _local_entry_error(exc, ms, offline=offline, why=why, cache=cache, endpoint=endpoint)
    if isinstance(exc, EntryNotFoundError):
        return ModelError(f"a bundle file is missing from '{ms.label}': {first_line(exc)}")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return ModelError(f"not authorized to read model repo '{repo}' (HTTP {status}); log in with {_LOGIN}")
        return ModelError(f"Hub request for '{ms.label}' failed: {first_line(exc)}")
    if isinstance(exc, HFValidationError):
        return ModelError(f"invalid Hub model '{ms.label}': {first_line(exc)}")
    if is_network_error(exc):
        return unreachable_error(ms, endpoint, cache)
    return exc


def map_push_error(exc: Exception, repo_id: str, endpoint: str) -> Exception:
    """The same for ``mrdiff models push`` (HfApi create_repo / create_branch / create_commit)."""
    from huggingface_hub.utils import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return ModelError(
                f"not authorized to push to '{repo_id}' (HTTP {status}); log in with {_LOGIN} "
                "to a token with write access"
            )
        return ModelError(f"push to '{repo_id}' failed: {first_line(exc)}")
    if "token" in type(exc).__name__.lower() or (isinstance(exc, EnvironmentError) and "token" in str(exc).lower()):
        return ModelError(f"no Hugging Face token to push '{repo_id}': log in with {_LOGIN}")
    if is_network_error(exc):
        return ModelError(f"cannot reach the Hugging Face Hub at {endpoint} to push '{repo_id}': {first_line(exc)}")
    if isinstance(exc, ValueError):
        return ModelError(f"push to '{repo_id}' failed: {first_line(exc)}")
    return exc
