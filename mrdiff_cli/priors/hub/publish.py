"""``mrdiff models push``: validate a bundle folder, render its model card, and upload it in one Hub commit
(``HfApi.create_repo`` / ``create_branch`` / ``create_commit`` with ``CommitOperationAdd``s)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import ModelError
from ..bundle import check_bundle
from ..format import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, bundle_tasks
from . import env
from .card import figures, render_model_card
from .error_map import map_push_error
from .spec import check_repo_id, check_revision

#: Images referenced by config["validation"]["figures"] that ``push_model`` uploads next to the card.
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


def local_figures(folder: Path, config: dict[str, Any]) -> list[str]:
    """Figure paths from config that are image files inside the bundle folder (uploaded with the card)."""
    keep = []
    for fig in figures(config):
        if "://" in fig or fig.startswith("/") or ".." in Path(fig).parts:
            continue
        p = folder / fig
        if p.is_file() and p.suffix.lower() in FIGURE_SUFFIXES:
            keep.append(Path(fig).as_posix())
    return keep


def plan_push(
    src: Path, config: dict[str, Any], repo_id: str, *, revision: str | None, private: bool, dry_run: bool
) -> dict[str, Any]:
    """Describe the upload of a validated bundle: files (path, size, source), the card, the target."""
    existing = (src / CARD_FILE).read_text(encoding="utf-8") if (src / CARD_FILE).is_file() else None
    card = render_model_card(config, repo_id, existing=existing, revision=revision)
    files = [
        {"path": CONFIG_FILE, "size": (src / CONFIG_FILE).stat().st_size, "source": str(src / CONFIG_FILE)},
        {"path": WEIGHTS_FILE, "size": (src / WEIGHTS_FILE).stat().st_size, "source": str(src / WEIGHTS_FILE)},
        {"path": CARD_FILE, "size": len(card.encode("utf-8")),
         "source": "existing" if existing is not None else "generated"},
    ]
    files += [{"path": f, "size": (src / f).stat().st_size, "source": str(src / f)} for f in local_figures(src, config)]
    return {
        "repo_id": repo_id,
        "revision": revision or "main",
        "private": bool(private),
        "url": f"{env.hub_endpoint()}/{repo_id}",
        "folder": str(src.resolve()),
        "files": files,
        "total_size": sum(f["size"] for f in files),
        "card": card,
        "card_generated": existing is None,
        "dry_run": bool(dry_run),
    }


def _upload(plan: dict[str, Any], src: Path, *, revision: str | None, token: str | None, message: str) -> None:
    """Create the repo (and branch) if needed and commit the planned files; updates ``plan`` with the result."""
    from huggingface_hub import CommitOperationAdd, HfApi

    repo_id = plan["repo_id"]
    operations = [
        CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=plan["card"].encode("utf-8"))
        if f["path"] == CARD_FILE
        else CommitOperationAdd(path_in_repo=f["path"], path_or_fileobj=str(src / f["path"]))
        for f in plan["files"]
    ]
    api = HfApi(endpoint=env.hub_endpoint(), token=token)
    repo_url = api.create_repo(repo_id, repo_type="model", private=True if plan["private"] else None, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    commit = api.create_commit(
        repo_id=repo_id,
        operations=operations,
        commit_message=message,
        repo_type="model",
        revision=revision,
    )
    plan.update(url=str(repo_url), commit=getattr(commit, "oid", None), commit_url=getattr(commit, "commit_url", None))


def push_model(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> dict[str, Any]:
    """Validate a bundle folder, generate its model card and upload it to ``repo_id`` on the Hub.

    Uploads only ``config.json``, ``model.safetensors``, the card ``README.md`` and local validation figures
    listed in config.json. ``dry_run=True`` returns the plan (files, sizes, card) without any network access.
    The token defaults to huggingface_hub's (``HF_TOKEN`` or ``hf auth login``).
    """
    src = Path(folder).expanduser()
    config = check_bundle(src, None, None, label=str(folder))
    repo_id = check_repo_id(repo_id, repo_id, option=None)
    if revision is not None:
        revision = check_revision(revision, f"{repo_id}@{revision}", option="revision")
    plan = plan_push(src, config, repo_id, revision=revision, private=private, dry_run=dry_run)
    if dry_run:
        return plan
    endpoint = env.hub_endpoint()
    if env.is_offline(None) or env.hf_frozen_offline():
        raise ModelError(f"cannot push '{repo_id}' while offline mode is on (HF_HUB_OFFLINE / MRDIFF_OFFLINE)")
    if not env.hub_reachable(endpoint):
        raise ModelError(f"cannot reach the Hugging Face Hub at {endpoint} to push '{repo_id}'; check the network")
    try:
        message = commit_message or f"Upload mrdiff bundle ({'/'.join(bundle_tasks(config))})"
        _upload(plan, src, revision=revision, token=token, message=message)
    except ModelError:
        raise
    except Exception as exc:
        raise map_push_error(exc, repo_id, endpoint) from None
    return plan
