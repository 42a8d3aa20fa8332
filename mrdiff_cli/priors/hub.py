"""Model resolution: which bundle folder a ``--model`` spec means, and whether it fits the task.

One function, :func:`resolve_model`, serves every command. A *model bundle* is a folder with exactly two
files that mrdiff reads, ``config.json`` and ``model.safetensors`` (never a pickle). It can come from

* the bundled defaults (``mrdiff_cli/weights/<name>/``; override the folder with ``MRDIFF_WEIGHTS_DIR``),
* a local folder (``--model path/to/bundle``),
* a Hugging Face Hub model repo (``org/name``, ``org/name@revision``, ``hf://org/name@revision/subfolder``),
  downloaded with ``huggingface_hub.snapshot_download`` into the standard Hugging Face cache
  (``HF_HUB_CACHE`` / ``HF_HOME``), so it is shared with every other Hugging Face tool.

Offline use: ``offline=True`` (``--offline``), ``HF_HUB_OFFLINE=1`` or ``MRDIFF_OFFLINE=1`` read only the cache.
When online but the Hub cannot be reached, a cached snapshot is used (with a warning) and otherwise a one-line
:class:`~mrdiff_cli.errors.ModelError` is raised within about a second.

This module imports neither torch nor (at import time) huggingface_hub, so the CLI starts fast. It prints
nothing: warnings are returned on :class:`ResolvedModel` and logged on the ``mrdiff_cli.priors.hub`` logger.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ModelError

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())  # warnings reach users via ResolvedModel.warning; no stray stderr lines

# --------------------------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------------------------

#: Bundle format versions this build reads.
SUPPORTED_BUNDLE_VERSIONS = (1,)
#: Tasks a bundle can serve.
TASKS = ("score", "vdm")
#: Task -> name of the bundled default (a folder under the weights dir).
DEFAULT_BUNDLES = {"score": "score-brain-128", "vdm": "vdm-brain-128"}

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
#: The only files ever fetched from a Hub repo (relative to the bundle's subfolder).
BUNDLE_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)
#: Weight formats that are pickles underneath; found alone, they are refused with a clear message.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: Images referenced by config["validation"]["figures"] that ``push_model`` uploads next to the card.
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Seconds allowed for the pre-flight TCP connect to the Hub (env ``MRDIFF_HUB_CONNECT_TIMEOUT``).
CONNECT_TIMEOUT_S = 1.0

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_REPO_PART_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_BARE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SPECIAL_REF_RE = re.compile(r"^refs/(?:pr/\d+|convert/[\w.-]+)")
_TRUE = {"1", "ON", "YES", "TRUE"}


# --------------------------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` value. ``kind`` is 'default', 'bundled', 'local' or 'hub'."""

    kind: str
    raw: str | None = None
    name: str | None = None  # bundled name
    path: Path | None = None  # local folder
    repo_id: str | None = None
    revision: str | None = None  # None = the repo's default branch ("main")
    subfolder: str | None = None


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


# --------------------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------------------


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in _TRUE


def is_offline(offline: bool | None = None) -> bool:
    """Offline when asked (``--offline``) or when ``HF_HUB_OFFLINE`` / ``MRDIFF_OFFLINE`` is set."""
    return bool(offline) or _env_true("HF_HUB_OFFLINE") or _env_true("MRDIFF_OFFLINE")


def _hf_frozen_offline() -> bool:
    """huggingface_hub reads HF_HUB_OFFLINE once, at import; if it was set then, it still blocks requests."""
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _offline_reason(offline: bool | None) -> str:
    reasons = []
    if offline:
        reasons.append("--offline")
    if _env_true("HF_HUB_OFFLINE") or _hf_frozen_offline():
        reasons.append("HF_HUB_OFFLINE=1")
    if _env_true("MRDIFF_OFFLINE"):
        reasons.append("MRDIFF_OFFLINE=1")
    return ", ".join(reasons) or "offline"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment *now* (huggingface_hub reads it at import)."""
    env = os.environ
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return Path(os.path.expandvars(env[var])).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def bundled_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder of the bundled defaults: the argument, else ``MRDIFF_WEIGHTS_DIR``, else ``mrdiff_cli/weights``."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get("MRDIFF_WEIGHTS_DIR"):
        return Path(os.environ["MRDIFF_WEIGHTS_DIR"]).expanduser()
    return Path(__file__).resolve().parent.parent / "weights"


def _etag_timeout() -> float:
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT", "10"))
    except ValueError:
        return 10.0


def _connect_timeout() -> float:
    try:
        return float(os.environ.get("MRDIFF_HUB_CONNECT_TIMEOUT", CONNECT_TIMEOUT_S))
    except ValueError:
        return CONNECT_TIMEOUT_S


def hub_reachable(endpoint: str | None = None, timeout: float | None = None) -> bool:
    """Quick TCP probe of the Hub endpoint (or of the proxy in front of it). Bounded to ~``timeout`` s,
    DNS included (the probe runs in a daemon thread), so an unplugged network fails fast."""
    import urllib.request

    endpoint = endpoint or hub_endpoint()
    timeout = _connect_timeout() if timeout is None else timeout
    url = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
    host = url.hostname
    if not host:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        proxies = urllib.request.getproxies()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if proxy and not urllib.request.proxy_bypass(host):
            purl = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            if purl.hostname:
                host, port = purl.hostname, purl.port or (443 if purl.scheme == "https" else 80)
    except Exception:  # pragma: no cover - proxy detection is best effort
        pass

    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="mrdiff-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.25)
    return bool(result and result[0])


# --------------------------------------------------------------------------------------------------------------
# Spec parsing
# --------------------------------------------------------------------------------------------------------------

_SPEC_FORMS = (
    "a bundle folder, bundled:NAME, org/name[@revision] or hf://org/name[@revision][/subfolder]"
)


def _valid_repo_part(part: str) -> bool:
    return (
        bool(_REPO_PART_RE.match(part))
        and ".." not in part
        and "--" not in part
        and not part.startswith(("-", "."))
        and not part.endswith(("-", "."))
    )


def _check_repo_id(repo_id: str, raw: str) -> str:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_valid_repo_part(p) for p in parts) or len(parts[1]) > 96:
        raise ModelError(f"invalid Hub repo id '{repo_id}' in --model '{raw}': expected org/name")
    return repo_id


def _check_revision(rev: str, raw: str) -> str:
    if not rev or rev.startswith("/") or rev.endswith("/") or any(s in ("", ".", "..") for s in rev.split("/")):
        raise ModelError(f"invalid revision '{rev}' in --model '{raw}'")
    if any(c.isspace() for c in rev):
        raise ModelError(f"invalid revision '{rev}' in --model '{raw}' (contains whitespace)")
    return rev


def _check_subfolder(sub: str, raw: str) -> str | None:
    sub = sub.strip("/")
    if not sub:
        return None
    if any(s in ("", ".", "..") for s in sub.split("/")):
        raise ModelError(f"invalid subfolder '{sub}' in --model '{raw}'")
    return sub


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith((".", "/", "~"))
        or "\\" in spec
        or (len(spec) > 1 and spec[1] == ":")  # C:\...
        or spec.endswith("/")
    )


def parse_model_spec(spec: str | None) -> ModelSpec:
    """Parse a ``--model`` value (pure apart from one ``is_dir`` check).

    * ``None``, ``""``, ``"default"`` -> the bundled default for the task
    * ``bundled:NAME`` (or a bare ``NAME`` that is not a folder) -> ``mrdiff_cli/weights/NAME``
    * an existing folder -> that folder (an existing folder wins over a same-named Hub repo; use ``hf://``)
    * ``org/name``, ``org/name@revision`` (the revision may contain '/', e.g. ``refs/pr/3``)
    * ``hf://[models/]org/name[@revision][/subfolder]`` (a revision with '/' is written ``%2F``-encoded,
      except the special ``refs/pr/N`` and ``refs/convert/NAME``)
    """
    if spec is None or not spec.strip() or spec.strip().lower() == "default":
        return ModelSpec(kind="default", raw=spec)
    raw = spec
    spec = spec.strip()

    if spec.startswith("bundled:"):
        name = spec[len("bundled:") :]
        if not _BARE_NAME_RE.match(name):
            raise ModelError(f"invalid bundled model name in --model '{raw}'")
        return ModelSpec(kind="bundled", raw=raw, name=name)

    if spec.startswith("hf://"):
        return _parse_hf_uri(spec, raw)

    if "://" in spec:
        raise ModelError(f"unsupported --model '{raw}': expected {_SPEC_FORMS}")

    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSpec(kind="local", raw=raw, path=path)
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelError(f"--model '{raw}' is a pickled checkpoint; mrdiff never loads pickled weights")
        raise ModelError(
            f"--model '{raw}' is a file; pass the bundle folder that holds {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    if _looks_like_path(spec):
        raise ModelError(f"model folder '{raw}' does not exist")

    repo_part, at, rev = spec.partition("@")
    if "/" not in repo_part:
        if not at and _BARE_NAME_RE.match(spec):
            return ModelSpec(kind="bundled", raw=raw, name=spec)
        raise ModelError(f"cannot interpret --model '{raw}': expected {_SPEC_FORMS}")
    if repo_part.count("/") != 1:
        raise ModelError(
            f"cannot interpret --model '{raw}': not an existing folder nor a Hub repo id (org/name); "
            "for a subfolder of a repo use hf://org/name@revision/subfolder"
        )
    repo_id = _check_repo_id(repo_part, raw)
    revision = _check_revision(rev, raw) if at else None
    return ModelSpec(kind="hub", raw=raw, repo_id=repo_id, revision=revision)


def _parse_hf_uri(spec: str, raw: str) -> ModelSpec:
    body = spec[len("hf://") :]
    for prefix in ("datasets/", "spaces/", "buckets/", "kernels/"):
        if body.startswith(prefix):
            raise ModelError(f"--model '{raw}': mrdiff bundles live in model repos, not {prefix[:-1]}")
    if body.startswith("models/"):
        body = body[len("models/") :]
    m = re.match(r"^(?P<org>[^/@]+)/(?P<name>[^/@]+)(?:@(?P<rest>.*)|/(?P<path>.*))?$", body)
    if not m:
        raise ModelError(f"cannot interpret --model '{raw}': expected hf://org/name[@revision][/subfolder]")
    repo_id = _check_repo_id(f"{m['org']}/{m['name']}", raw)
    revision, sub = None, m["path"] or ""
    if m["rest"] is not None:
        rest = m["rest"]
        special = _SPECIAL_REF_RE.match(rest)
        if special:
            revision, sub = special.group(0), rest[special.end() :]
        else:
            rev, _, sub = rest.partition("/")
            revision = unquote(rev)
        revision = _check_revision(revision, raw)
    return ModelSpec(kind="hub", raw=raw, repo_id=repo_id, revision=revision, subfolder=_check_subfolder(sub, raw))


# --------------------------------------------------------------------------------------------------------------
# Bundle validation
# --------------------------------------------------------------------------------------------------------------


def bundle_tasks(config: dict[str, Any]) -> list[str]:
    """Tasks a bundle serves: its ``task`` plus any listed in ``tasks`` (one network serving both)."""
    tasks: list[str] = []
    for t in [config.get("task"), *(config.get("tasks") or [])]:
        if isinstance(t, str) and t not in tasks:
            tasks.append(t)
    return tasks


def _read_json(path: Path, label: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"model '{label}': cannot read {CONFIG_FILE} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ModelError(f"model '{label}': {CONFIG_FILE} is not UTF-8 text") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"model '{label}': {CONFIG_FILE} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(config, dict):
        raise ModelError(f"model '{label}': {CONFIG_FILE} must hold a JSON object")
    return config


def _check_safetensors_header(path: Path, label: str) -> None:
    """Cheap sanity check of the safetensors header (8-byte length + JSON); catches Git LFS pointers and
    HTML error pages saved under the right name. Never deserialises tensors."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > min(size - 8, 100_000_000):
                raise ValueError
            header = json.loads(fh.read(n).decode("utf-8"))
            if not isinstance(header, dict):
                raise ValueError
    except (ValueError, UnicodeDecodeError, struct.error):
        hint = ""
        try:
            if path.read_bytes()[:40].startswith(b"version https://git-lfs"):
                hint = " (it is a Git LFS pointer: run `git lfs pull` in that folder)"
        except OSError:
            pass
        raise ModelError(f"model '{label}': {WEIGHTS_FILE} is not a valid safetensors file{hint}") from None
    except OSError as exc:
        raise ModelError(f"model '{label}': cannot read {WEIGHTS_FILE} ({exc.strerror or exc})") from None


def check_bundle(
    path: str | os.PathLike,
    task: str | None = None,
    resolution: tuple[int, int] | list[int] | None = None,
    *,
    label: str | None = None,
) -> dict[str, Any]:
    """Validate a bundle folder and return its config. Raises :class:`ModelError` (one line) when
    a file is missing, only pickled weights are present, config.json is invalid, the bundle version is
    unsupported, the task does not match, or the trained resolution differs from ``resolution``."""
    folder = Path(path)
    label = label or str(folder)
    if task is not None and task not in TASKS:
        raise ModelError(f"unknown model task '{task}' (known: {', '.join(TASKS)})")
    if not folder.is_dir():
        raise ModelError(f"model '{label}' not found: {folder} is not a folder")

    if not (folder / WEIGHTS_FILE).is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise ModelError(
                f"model '{label}' contains no {WEIGHTS_FILE}; mrdiff never loads pickled weights "
                f"(found {', '.join(pickles)}; convert it to safetensors)"
            )
        raise ModelError(
            f"model '{label}' contains no {WEIGHTS_FILE} (an mrdiff bundle is {CONFIG_FILE} + {WEIGHTS_FILE})"
        )
    if not (folder / CONFIG_FILE).is_file():
        raise ModelError(
            f"model '{label}' contains no {CONFIG_FILE} (an mrdiff bundle is {CONFIG_FILE} + {WEIGHTS_FILE})"
        )

    config = _read_json(folder / CONFIG_FILE, label)
    version = config.get("mrdiff_bundle_version")
    if version is None:
        raise ModelError(f"model '{label}' is not an mrdiff bundle: {CONFIG_FILE} has no 'mrdiff_bundle_version'")
    if isinstance(version, bool) or version not in SUPPORTED_BUNDLE_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_BUNDLE_VERSIONS))
        newer = isinstance(version, int) and version > max(SUPPORTED_BUNDLE_VERSIONS)
        raise ModelError(
            f"model '{label}' has mrdiff_bundle_version {version!r}; this mrdiff reads version {supported}"
            + ("; upgrade mrdiff" if newer else "")
        )

    declared = config.get("task")
    if declared not in TASKS:
        raise ModelError(f"model '{label}': {CONFIG_FILE} 'task' must be one of {', '.join(TASKS)} (got {declared!r})")
    extra = config.get("tasks", [])
    if not isinstance(extra, list) or any(t not in TASKS for t in extra):
        raise ModelError(f"model '{label}': {CONFIG_FILE} 'tasks' must be a list drawn from {', '.join(TASKS)}")
    res = config.get("resolution")
    if (
        not isinstance(res, list)
        or len(res) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in res)
    ):
        raise ModelError(f"model '{label}': {CONFIG_FILE} 'resolution' must be [H, W] (positive integers)")
    if not isinstance(config.get("architecture"), dict):
        raise ModelError(f"model '{label}': {CONFIG_FILE} has no 'architecture' object")

    served = bundle_tasks(config)
    if task is not None and task not in served:
        raise ModelError(
            f"model '{label}' is a '{declared}' model (serves: {', '.join(served)}); this command needs a '{task}' model"
        )
    if resolution is not None:
        want = tuple(int(v) for v in resolution)
        if tuple(res) != want:
            raise ModelError(
                f"model '{label}' was trained at {res[0]}x{res[1]}; this command needs {want[0]}x{want[1]}"
            )

    _check_safetensors_header(folder / WEIGHTS_FILE, label)
    return config


def _read_mrdiff_config(folder: Path) -> dict[str, Any] | None:
    """config.json of ``folder`` if it is an mrdiff config, else None (never raises)."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(config, dict) and "mrdiff_bundle_version" in config:
        return config
    return None


# --------------------------------------------------------------------------------------------------------------
# Bundled defaults
# --------------------------------------------------------------------------------------------------------------


def bundled_names(wdir: str | os.PathLike | None = None) -> list[str]:
    root = bundled_dir(wdir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())


def _bundled_path(name: str, wdir: str | os.PathLike | None) -> Path:
    root = bundled_dir(wdir)
    folder = root / name
    if not (folder / CONFIG_FILE).is_file():
        available = ", ".join(bundled_names(wdir)) or "none installed"
        raise ModelError(
            f"no bundled model '{name}' in {root} (available: {available}); for a Hub model use org/name"
        )
    return folder


def _default_bundle(task: str | None, wdir: str | os.PathLike | None) -> str:
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
        config = _read_mrdiff_config(root / name)
        if config is not None and task in bundle_tasks(config):
            return name
    raise ModelError(
        f"no bundled default model for task '{task}' (expected {root / preferred}); "
        "pass --model with a bundle folder or a Hub repo (org/name)"
    )


# --------------------------------------------------------------------------------------------------------------
# Hub
# --------------------------------------------------------------------------------------------------------------


def _storage_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def _cached_revisions(cache: Path, repo_id: str) -> list[str]:
    storage = _storage_folder(cache, repo_id)
    refs = storage / "refs"
    names = sorted(p.relative_to(refs).as_posix() for p in refs.glob("**/*") if p.is_file()) if refs.is_dir() else []
    snaps = storage / "snapshots"
    commits = sorted(p.name[:10] for p in snaps.iterdir() if p.is_dir()) if snaps.is_dir() else []
    return names + [c for c in commits if c not in names]


def _hub_label(ms: ModelSpec) -> str:
    label = ms.repo_id or ""
    if ms.revision:
        label += f"@{ms.revision}"
    if ms.subfolder:
        label = f"hf://{label}/{ms.subfolder}"
    return label


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _unreachable_error(ms: ModelSpec, endpoint: str, cache: Path) -> ModelError:
    return ModelError(
        f"cannot reach the Hugging Face Hub at {endpoint} to fetch '{_hub_label(ms)}' and it is not in the "
        f"local cache ({cache}); check the network/proxy, or set HF_HUB_OFFLINE=1 (or pass --offline) "
        "to use cached models only"
    )


def _not_cached_error(ms: ModelSpec, cache: Path, why: str) -> ModelError:
    repo = ms.repo_id or ""
    storage = _storage_folder(cache, repo)
    if storage.is_dir() and ms.revision:
        cached = ", ".join(_cached_revisions(cache, repo)) or "none"
        return ModelError(
            f"revision '{ms.revision}' of '{repo}' is not in the local cache ({cache}; cached: {cached}) and "
            f"offline mode is on ({why}); fetch it once with network access or drop --offline / HF_HUB_OFFLINE"
        )
    return ModelError(
        f"model '{_hub_label(ms)}' is not in the local cache ({cache}) and offline mode is on ({why}); "
        f"run `mrdiff models download {ms.raw or repo}` with network access first, "
        "or drop --offline / HF_HUB_OFFLINE"
    )


def _map_hub_error(exc: Exception, ms: ModelSpec, *, offline: bool, why: str, cache: Path, endpoint: str) -> Exception:
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
    if isinstance(exc, GatedRepoError):
        return ModelError(
            f"model repo '{repo}' is gated: accept its terms at {endpoint}/{repo} and log in "
            "(`hf auth login` or HF_TOKEN)"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(
            f"model repo '{repo}' not found on the Hub at {endpoint} (if it is private, log in with "
            "`hf auth login` or set HF_TOKEN)"
        )
    if isinstance(exc, RevisionNotFoundError):
        return ModelError(f"revision '{ms.revision}' not found in model repo '{repo}'")
    if isinstance(exc, LocalEntryNotFoundError):
        if "incomplete" in type(exc).__name__.lower():
            return ModelError(
                f"the cached snapshot of '{_hub_label(ms)}' is incomplete and the Hub cannot be used now; "
                "download it again with network access (`mrdiff models download`)"
            )
        if offline:
            return _not_cached_error(ms, cache, why)
        return _unreachable_error(ms, endpoint, cache)
    if isinstance(exc, EntryNotFoundError):
        return ModelError(f"a bundle file is missing from '{_hub_label(ms)}': {_first_line(exc)}")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return ModelError(
                f"not authorized to read model repo '{repo}' (HTTP {status}); log in with `hf auth login` "
                "or set HF_TOKEN"
            )
        return ModelError(f"Hub request for '{_hub_label(ms)}' failed: {_first_line(exc)}")
    if isinstance(exc, HFValidationError):
        return ModelError(f"invalid Hub model '{_hub_label(ms)}': {_first_line(exc)}")
    if _is_network_error(exc):
        return _unreachable_error(ms, endpoint, cache)
    return exc


def _snapshot(ms: ModelSpec, cache: Path, endpoint: str, *, local_only: bool) -> Path:
    from huggingface_hub import snapshot_download

    prefix = f"{ms.subfolder}/" if ms.subfolder else ""
    kwargs: dict[str, Any] = dict(
        revision=ms.revision or "main",
        allow_patterns=[prefix + f for f in BUNDLE_FILES],
        cache_dir=str(cache),
        local_files_only=local_only,
        endpoint=endpoint,
        etag_timeout=_etag_timeout(),
    )
    return Path(snapshot_download(ms.repo_id, **kwargs))


def _cached_bundle(ms: ModelSpec, cache: Path) -> tuple[Path, str] | None:
    """The cached snapshot for a pinned commit when both bundle files are present (no network needed)."""
    rev = ms.revision or "main"
    if not _COMMIT_RE.match(rev):
        return None
    snap = _storage_folder(cache, ms.repo_id or "") / "snapshots" / rev
    folder = snap / ms.subfolder if ms.subfolder else snap
    if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
        return snap, rev
    return None


def _fetch_from_hub(
    ms: ModelSpec, *, offline: bool | None, cache_dir: str | os.PathLike | None
) -> tuple[Path, str | None, str | None]:
    """Download (or find in the cache) a Hub bundle. Returns (snapshot folder, commit, warning)."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hf_cache_dir()
    endpoint = hub_endpoint()
    off = is_offline(offline) or _hf_frozen_offline()
    why = _offline_reason(offline)
    warning = None

    pinned = _cached_bundle(ms, cache)
    if pinned is not None:
        return pinned[0], pinned[1], None

    try:
        if off:
            snap = _snapshot(ms, cache, endpoint, local_only=True)
        elif not hub_reachable(endpoint):
            try:
                snap = _snapshot(ms, cache, endpoint, local_only=True)
            except Exception as exc:  # not cached either
                mapped = _map_hub_error(exc, ms, offline=False, why=why, cache=cache, endpoint=endpoint)
                if isinstance(mapped, ModelError):
                    raise _unreachable_error(ms, endpoint, cache) from None
                raise
            warning = (
                f"the Hugging Face Hub at {endpoint} is unreachable; using the cached snapshot "
                f"{snap.name[:10]} of '{_hub_label(ms)}' (set HF_HUB_OFFLINE=1 to skip this check)"
            )
            logger.warning(warning)
        else:
            snap = _snapshot(ms, cache, endpoint, local_only=False)
    except ModelError:
        raise
    except Exception as exc:
        mapped = _map_hub_error(exc, ms, offline=off, why=why, cache=cache, endpoint=endpoint)
        if mapped is exc:
            raise
        raise mapped from None
    return snap, snap.name if _COMMIT_RE.match(snap.name) else None, warning


def _repo_pickles(ms: ModelSpec, cache: Path, commit: str | None) -> list[str]:
    """Pickle files the Hub tree listing (cached by snapshot_download) shows for this repo/subfolder."""
    if commit is None:
        return []
    try:
        from huggingface_hub import get_cached_repo_tree  # huggingface_hub >= 1.x
    except ImportError:
        return []
    try:
        files = get_cached_repo_tree(ms.repo_id, revision=commit, cache_dir=str(cache))
    except Exception:
        return []
    prefix = f"{ms.subfolder}/" if ms.subfolder else ""
    return sorted(
        f.path[len(prefix) :]
        for f in files
        if f.path.startswith(prefix) and "/" not in f.path[len(prefix) :]
        and Path(f.path).suffix.lower() in PICKLE_SUFFIXES
    )


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


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
    wdir = weights_dir

    if ms.kind == "default":
        name = _default_bundle(task, wdir)
        path = _bundled_path(name, wdir)
        config = check_bundle(path, task, resolution, label=f"bundled:{name}")
        return ResolvedModel(path=path, source="bundled", repo_id=None, revision=None, config=config, name=name)

    if ms.kind == "bundled":
        assert ms.name is not None
        path = _bundled_path(ms.name, wdir)
        config = check_bundle(path, task, resolution, label=f"bundled:{ms.name}")
        return ResolvedModel(path=path, source="bundled", repo_id=None, revision=None, config=config, name=ms.name)

    if ms.kind == "local":
        assert ms.path is not None
        path = ms.path.resolve()
        config = check_bundle(path, task, resolution, label=str(ms.raw))
        return ResolvedModel(path=path, source="local", repo_id=None, revision=None, config=config, name=path.name)

    # Hub
    snap, commit, warning = _fetch_from_hub(ms, offline=offline, cache_dir=cache_dir)
    folder = snap / ms.subfolder if ms.subfolder else snap
    label = _hub_label(ms)
    if not (folder / WEIGHTS_FILE).is_file():
        local_pickles = [p for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES] if folder.is_dir() else []
        if not local_pickles:  # the pickles were not downloaded (allow_patterns): ask the cached tree listing
            cache = Path(cache_dir).expanduser() if cache_dir is not None else hf_cache_dir()
            pickles = _repo_pickles(ms, cache, commit)
            if pickles:
                raise ModelError(
                    f"model '{label}' contains no {WEIGHTS_FILE}; mrdiff never loads pickled weights "
                    f"(the repo has {', '.join(pickles)}; convert it to safetensors)"
                )
            if not folder.is_dir():
                where = f" under '{ms.subfolder}'" if ms.subfolder else ""
                raise ModelError(
                    f"model '{label}' has no mrdiff bundle{where} ({CONFIG_FILE} + {WEIGHTS_FILE} not in the repo)"
                )
    config = check_bundle(folder, task, resolution, label=label)
    name = f"{ms.repo_id}/{ms.subfolder}" if ms.subfolder else str(ms.repo_id)
    return ResolvedModel(
        path=folder,
        source="hub",
        repo_id=ms.repo_id,
        revision=ms.revision or "main",
        config=config,
        name=name,
        commit=commit,
        subfolder=ms.subfolder,
        warning=warning,
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


def _folder_files(folder: Path) -> list[dict[str, Any]]:
    files = []
    for name in BUNDLE_FILES:
        p = folder / name
        if p.is_file():
            files.append({"name": name, "size": p.stat().st_size})
    return files


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
    files = _folder_files(rm.path)
    info = rm.to_dict()
    info.update(
        description=rm.config.get("description"),
        files=files,
        size_bytes=sum(f["size"] for f in files),
        config=rm.config,
        card=card,
    )
    return info


def format_size(n: int) -> str:
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
        "size_bytes": size,
        "size": format_size(size),
        "revision": revision,
        "commit": commit,
        "path": str(path),
        "complete": (path / WEIGHTS_FILE).is_file(),
        "description": config.get("description"),
    }


def list_models(
    *, weights_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> list[dict[str, Any]]:
    """Bundled models plus every mrdiff bundle in the Hugging Face cache (repo root or one subfolder deep).

    Each entry: name, spec (a ``--model`` value that selects it), source, tasks, resolution, size_bytes,
    size, revision (cached refs), commit, path, complete (weights present), description. No network.
    """
    entries: list[dict[str, Any]] = []
    root = bundled_dir(weights_dir)
    for name in bundled_names(weights_dir):
        folder = root / name
        config = _read_mrdiff_config(folder)
        if config is None:
            continue
        size = sum(f["size"] for f in _folder_files(folder))
        entries.append(_entry(config, name=name, spec=f"bundled:{name}", source="bundled", path=folder, size=size))

    cache = Path(cache_dir).expanduser() if cache_dir is not None else hf_cache_dir()
    for repo_id, commit, refs, snap in _scan_cache(cache):
        subdirs = sorted(p for p in snap.iterdir() if p.is_dir()) if snap.is_dir() else []
        for folder in [snap, *subdirs]:
            config = _read_mrdiff_config(folder)
            if config is None:
                continue
            sub = folder.relative_to(snap).as_posix() if folder != snap else None
            rev = "main" if "main" in refs else (refs[0] if refs else commit)
            if sub:
                spec = f"hf://{repo_id}@{rev}/{sub}"
            else:
                spec = repo_id if rev == "main" else f"{repo_id}@{rev}"
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            entries.append(
                _entry(
                    config,
                    name=repo_id + (f"/{sub}" if sub else ""),
                    spec=spec,
                    source="hub",
                    path=folder,
                    size=size,
                    revision=", ".join(refs) or None,
                    commit=commit,
                )
            )
    return entries


def _scan_cache(cache: Path) -> list[tuple[str, str, list[str], Path]]:
    """(repo_id, commit, refs, snapshot folder) for every cached model revision; per repo the one that
    ``main`` points to first, then by ref name."""
    if not cache.is_dir():
        return []
    out: list[tuple[str, str, list[str], Path]] = []
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache)
        for repo in sorted(info.repos, key=lambda r: r.repo_id):
            if repo.repo_type != "model":
                continue
            for rev in sorted(repo.revisions, key=lambda r: ("main" not in r.refs, sorted(r.refs), r.commit_hash)):
                out.append((repo.repo_id, rev.commit_hash, sorted(rev.refs), Path(rev.snapshot_path)))
        return out
    except Exception as exc:  # fall back to a plain walk of the documented layout
        logger.debug("scan_cache_dir failed (%s); walking %s", exc, cache)
    for storage in sorted(cache.glob("models--*")):
        repo_id = storage.name[len("models--") :].replace("--", "/")
        refs_dir = storage / "refs"
        refs_by_commit: dict[str, list[str]] = {}
        if refs_dir.is_dir():
            for ref in refs_dir.glob("**/*"):
                if ref.is_file():
                    refs_by_commit.setdefault(ref.read_text().strip(), []).append(ref.relative_to(refs_dir).as_posix())
        snaps = storage / "snapshots"
        found = []
        for snap in snaps.iterdir() if snaps.is_dir() else []:
            if snap.is_dir():
                refs = sorted(refs_by_commit.get(snap.name, []))
                found.append((("main" not in refs, refs, snap.name), (repo_id, snap.name, refs, snap)))
        out += [item for _, item in sorted(found, key=lambda x: x[0])]
    return out


# --------------------------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------------------------


def _md_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value) + "`"
    return str(value)


def _md_section(value: Any, empty: str) -> str:
    if value is None or value == {} or value == [] or value == "":
        return empty
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return "\n".join(f"- **{k}**: {_md_value(v)}" for k, v in value.items() if k != "figures")
    if isinstance(value, list):
        return "\n".join(f"- {_md_value(v)}" for v in value)
    return str(value)


def _figures(config: dict[str, Any]) -> list[str]:
    validation = config.get("validation")
    figs = validation.get("figures") if isinstance(validation, dict) else None
    if isinstance(figs, str):
        figs = [figs]
    return [f for f in figs or [] if isinstance(f, str)]


def _local_figures(folder: Path, config: dict[str, Any]) -> list[str]:
    """Figure paths from config that are image files inside the bundle folder (uploaded with the card)."""
    keep = []
    for fig in _figures(config):
        if "://" in fig or fig.startswith("/") or ".." in Path(fig).parts:
            continue
        p = folder / fig
        if p.is_file() and p.suffix.lower() in FIGURE_SUFFIXES:
            keep.append(Path(fig).as_posix())
    return keep


def render_model_card(
    config: dict[str, Any], repo_id: str, *, existing: str | None = None, revision: str | None = None
) -> str:
    """A Hub model card (README.md) for a bundle: YAML front matter (``library_name: mrdiff``, tags, license)
    plus description, tasks/architecture, training data, validation figures, intended resolution and
    limitations. With ``existing`` (the folder's own README.md) its text is kept and only the metadata merged."""
    from huggingface_hub import ModelCard, ModelCardData

    tasks = bundle_tasks(config)
    tags = ["mri", "diffusion", "medical-imaging", "mrdiff"]
    tags += {"score": ["score-based", "mri-reconstruction"], "vdm": ["vdm", "super-resolution"]}.get(
        str(config.get("task")), []
    )
    if "vdm" in tasks and "vdm" not in tags:
        tags += ["vdm", "super-resolution"]
    extra_tags = config.get("tags")
    if isinstance(extra_tags, list):
        tags += [t for t in extra_tags if isinstance(t, str) and t not in tags]
    license_ = config.get("license")

    if existing is not None:
        card = ModelCard(existing)
        data = card.data
        if not getattr(data, "library_name", None):
            data.library_name = "mrdiff"
        current = list(getattr(data, "tags", None) or [])
        data.tags = current + [t for t in tags if t not in current]
        if license_ and not getattr(data, "license", None):
            data.license = license_
        return str(card)

    data = ModelCardData(library_name="mrdiff", tags=tags, license=license_ if isinstance(license_, str) else None)
    res = config.get("resolution") or ["?", "?"]
    h, w = res[0], res[1]
    title = repo_id.split("/")[-1]
    rev_suffix = f"@{revision}" if revision and revision != "main" else ""
    description = config.get("description") or f"An mrdiff {'/'.join(tasks)} prior for MRI."
    task_text = {
        "score": "score network for diffusion-prior reconstruction of undersampled k-space and uncertainty maps",
        "vdm": "variational diffusion model with a learned noise schedule, for super-resolution",
    }
    arch = config.get("architecture") or {}
    arch_lines = _md_section(arch, "Not documented.")

    figures = _figures(config)
    fig_lines = []
    for fig in figures:
        fig_lines.append(f"![{Path(fig).stem}]({fig})")
    validation = _md_section(config.get("validation"), "")
    validation_text = "\n\n".join(x for x in (validation, "\n".join(fig_lines)) if x) or "No validation results in config.json."

    limits = config.get("limitations")
    limit_lines = [
        "- Research use only. Not a medical device; do not use for diagnosis or treatment decisions.",
        f"- Trained at {h}x{w}. Data at other matrix sizes must be cropped/padded in k-space to this size; "
        "quality there has not been validated.",
        "- A diffusion prior can hallucinate plausible structure, especially at high acceleration or on "
        "anatomy, contrast or field strength unlike its training data; check the uncertainty maps.",
    ]
    if isinstance(limits, str) and limits.strip():
        limit_lines.append(f"- {limits.strip()}")
    elif isinstance(limits, list):
        limit_lines += [f"- {x}" for x in limits]

    body = f"""
# {title}

{description}

## Model

- **Task(s)**: {"; ".join(f"`{t}`: {task_text.get(t, t)}" for t in tasks)}
- **Intended resolution**: {h} x {w}
- **Format**: mrdiff bundle v{config.get("mrdiff_bundle_version")} (`config.json` + `model.safetensors`; no pickles)

### Architecture

{arch_lines}

## Training data

{_md_section(config.get("training"), "Not documented in config.json.")}

## Validation

{validation_text}

## Usage

```bash
pip install mrdiff
mrdiff models download {repo_id}{rev_suffix}
mrdiff reconstruct <input> --model {repo_id}{rev_suffix}    # pin exactly with {repo_id}@<commit>
```

## Intended use and limitations

{chr(10).join(limit_lines)}
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"


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
    repo_id = _check_repo_id(repo_id, repo_id)
    if revision is not None:
        revision = _check_revision(revision, f"{repo_id}@{revision}")
    existing = None
    if (src / CARD_FILE).is_file():
        existing = (src / CARD_FILE).read_text(encoding="utf-8")
    card = render_model_card(config, repo_id, existing=existing, revision=revision)
    card_bytes = card.encode("utf-8")
    figures = _local_figures(src, config)

    files = [
        {"path": CONFIG_FILE, "size": (src / CONFIG_FILE).stat().st_size, "source": str(src / CONFIG_FILE)},
        {"path": WEIGHTS_FILE, "size": (src / WEIGHTS_FILE).stat().st_size, "source": str(src / WEIGHTS_FILE)},
        {"path": CARD_FILE, "size": len(card_bytes), "source": "existing" if existing is not None else "generated"},
    ]
    files += [{"path": f, "size": (src / f).stat().st_size, "source": str(src / f)} for f in figures]
    endpoint = hub_endpoint()
    plan: dict[str, Any] = {
        "repo_id": repo_id,
        "revision": revision or "main",
        "private": bool(private),
        "url": f"{endpoint}/{repo_id}",
        "folder": str(src.resolve()),
        "files": files,
        "total_size": sum(f["size"] for f in files),
        "card": card,
        "card_generated": existing is None,
        "dry_run": bool(dry_run),
    }
    if dry_run:
        return plan

    if is_offline(None) or _hf_frozen_offline():
        raise ModelError(f"cannot push '{repo_id}' while offline mode is on (HF_HUB_OFFLINE / MRDIFF_OFFLINE)")
    if not hub_reachable(endpoint):
        raise ModelError(f"cannot reach the Hugging Face Hub at {endpoint} to push '{repo_id}'; check the network")

    from huggingface_hub import HfApi

    allow = [CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, *figures]
    try:
        api = HfApi(endpoint=endpoint, token=token)
        repo_url = api.create_repo(repo_id, repo_type="model", private=True if private else None, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mrdiff-push-") as tmp:
            stage = Path(tmp)
            for f in files:
                if f["path"] == CARD_FILE:
                    (stage / CARD_FILE).write_bytes(card_bytes)
                else:
                    _link_or_copy(src / f["path"], stage / f["path"])
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(stage),
                repo_type="model",
                revision=revision,
                allow_patterns=allow,
                commit_message=commit_message or f"Upload mrdiff bundle ({'/'.join(bundle_tasks(config))})",
            )
    except ModelError:
        raise
    except Exception as exc:
        raise _map_push_error(exc, repo_id, endpoint) from None
    plan.update(
        url=str(repo_url),
        commit=getattr(commit, "oid", None),
        commit_url=getattr(commit, "commit_url", None),
    )
    return plan


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return
    except OSError:
        pass
    try:
        os.symlink(src.resolve(), dst)
        return
    except OSError:
        pass
    shutil.copy2(src, dst)


def _map_push_error(exc: Exception, repo_id: str, endpoint: str) -> Exception:
    from huggingface_hub.utils import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return ModelError(
                f"not authorized to push to '{repo_id}' (HTTP {status}); log in with `hf auth login` or set "
                "HF_TOKEN to a token with write access"
            )
        return ModelError(f"push to '{repo_id}' failed: {_first_line(exc)}")
    if "token" in type(exc).__name__.lower() or (isinstance(exc, EnvironmentError) and "token" in str(exc).lower()):
        return ModelError(f"no Hugging Face token to push '{repo_id}': log in with `hf auth login` or set HF_TOKEN")
    if _is_network_error(exc):
        return ModelError(f"cannot reach the Hugging Face Hub at {endpoint} to push '{repo_id}': {_first_line(exc)}")
    if isinstance(exc, ValueError):
        return ModelError(f"push to '{repo_id}' failed: {_first_line(exc)}")
    return exc


__all__ = [
    "DEFAULT_BUNDLES",
    "SUPPORTED_BUNDLE_VERSIONS",
    "TASKS",
    "ModelSpec",
    "ResolvedModel",
    "bundle_tasks",
    "bundled_names",
    "check_bundle",
    "download_model",
    "hf_cache_dir",
    "hub_reachable",
    "is_offline",
    "list_models",
    "model_info",
    "parse_model_spec",
    "push_model",
    "render_model_card",
    "resolve_model",
    "bundled_dir",
    "format_size",
]
