"""Parse a model spec (``mrdiff --model``): the bundled default, ``bundled:NAME``, a local folder,
``org/name[@revision]`` or ``hf://[models/]org/name[@revision][/subfolder]``. Pure apart from one ``is_dir`` check;
never touches the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ...errors import ModelError
from ..format import CONFIG_FILE, PICKLE_SUFFIXES, WEIGHTS_FILE

SPEC_FORMS = "a bundle folder, bundled:NAME, org/name[@revision] or hf://org/name[@revision][/subfolder]"

_BARE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SPECIAL_REF_RE = re.compile(r"^refs/(?:pr/\d+|convert/[\w.-]+)")
_HF_URI_RE = re.compile(r"^(?P<org>[^/@]+)/(?P<name>[^/@]+)(?:@(?P<rest>.*)|/(?P<path>.*))?$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``kind`` is 'default', 'bundled', 'local' or 'hub'."""

    kind: str
    raw: str | None = None
    name: str | None = None  # bundled name
    path: Path | None = None  # local folder
    repo_id: str | None = None
    revision: str | None = None  # None = the repo's default branch ("main")
    subfolder: str | None = None

    @property
    def label(self) -> str:
        """How messages name a Hub model: ``org/name@rev`` or ``hf://org/name@rev/subfolder``."""
        label = self.repo_id or ""
        if self.revision:
            label += f"@{self.revision}"
        if self.subfolder:
            label = f"hf://{label}/{self.subfolder}"
        return label


def check_repo_id(repo_id: str, raw: str, option: str | None = "model") -> str:
    """``repo_id`` if it is a valid Hub model id of the form org/name (huggingface_hub's rules), else ModelError
    (naming ``option``: the parameter ``raw`` came from, None for a bare repo id)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
        valid = repo_id.isascii() and repo_id.count("/") == 1
    except HFValidationError:
        valid = False
    if not valid:
        where = f" in '{raw}'" if raw != repo_id else ""
        raise ModelError(f"invalid Hub repo id '{repo_id}'{where}: expected org/name", option=option)
    return repo_id


def check_revision(rev: str, raw: str, option: str | None = "model") -> str:
    if not rev or rev.startswith("/") or rev.endswith("/") or any(s in ("", ".", "..") for s in rev.split("/")):
        raise ModelError(f"invalid revision '{rev}' in '{raw}'", option=option)
    if any(c.isspace() for c in rev):
        raise ModelError(f"invalid revision '{rev}' in '{raw}' (contains whitespace)", option=option)
    return rev


def _check_subfolder(sub: str, raw: str) -> str | None:
    sub = sub.strip("/")
    if not sub:
        return None
    if any(s in ("", ".", "..") for s in sub.split("/")):
        raise ModelError(f"invalid subfolder '{sub}' in '{raw}'", option="model")
    return sub


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith((".", "/", "~"))
        or "\\" in spec
        or (len(spec) > 1 and spec[1] == ":")  # C:\...
        or spec.endswith("/")
    )


def parse_model_spec(spec: str | None) -> ModelSpec:
    """Parse a model spec (``mrdiff --model``); a bad one is a ModelError with ``option="model"``.

    * ``None``, ``""``, ``"default"`` -> the bundled default for the task
    * ``bundled:NAME`` (or a bare ``NAME`` that is not a folder) -> ``mrdiff_cli/weights/NAME``
    * an existing folder -> that folder (an existing folder wins over a same-named Hub repo; use ``hf://``)
    * ``org/name``, ``org/name@revision`` (the revision may contain '/', e.g. ``refs/pr/3``)
    * ``hf://[models/]org/name[@revision][/subfolder]`` (a revision with '/' is written ``%2F``-encoded,
      except the special ``refs/pr/N`` and ``refs/convert/NAME``)
    """
    if spec is None or not spec.strip() or spec.strip().lower() == "default":
        return ModelSpec(kind="default", raw=spec)
    raw, spec = spec, spec.strip()
    if spec.startswith("bundled:"):
        name = spec[len("bundled:") :]
        if not _BARE_NAME_RE.match(name):
            raise ModelError(f"invalid bundled model name in '{raw}'", option="model")
        return ModelSpec(kind="bundled", raw=raw, name=name)
    if spec.startswith("hf://"):
        return _parse_hf_uri(spec, raw)
    if "://" in spec:
        raise ModelError(f"unsupported model spec '{raw}': expected {SPEC_FORMS}", option="model")
    local = _parse_local(spec, raw)
    return local if local is not None else _parse_repo_id(spec, raw)


def _parse_local(spec: str, raw: str) -> ModelSpec | None:
    """A folder spec, or None when ``spec`` does not name anything on disk and does not look like a path."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSpec(kind="local", raw=raw, path=path)
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelError(f"'{raw}' is a pickled checkpoint; mrdiff never loads pickled weights", option="model")
        raise ModelError(
            f"'{raw}' is a file; pass the bundle folder that holds {CONFIG_FILE} and {WEIGHTS_FILE}", option="model"
        )
    if _looks_like_path(spec):
        raise ModelError(f"model folder '{raw}' does not exist", option="model")
    return None


def _parse_repo_id(spec: str, raw: str) -> ModelSpec:
    """``NAME`` (bundled) or ``org/name[@revision]``."""
    repo_part, at, rev = spec.partition("@")
    if "/" not in repo_part:
        if not at and _BARE_NAME_RE.match(spec):
            return ModelSpec(kind="bundled", raw=raw, name=spec)
        raise ModelError(f"cannot interpret '{raw}': expected {SPEC_FORMS}", option="model")
    if repo_part.count("/") != 1:
        raise ModelError(
            f"cannot interpret '{raw}': not an existing folder nor a Hub repo id (org/name); "
            "for a subfolder of a repo use hf://org/name@revision/subfolder", option="model"
        )
    repo_id = check_repo_id(repo_part, raw)
    revision = check_revision(rev, raw) if at else None
    return ModelSpec(kind="hub", raw=raw, repo_id=repo_id, revision=revision)


def _parse_hf_uri(spec: str, raw: str) -> ModelSpec:
    body = spec[len("hf://") :]
    for prefix in ("datasets/", "spaces/", "buckets/", "kernels/"):
        if body.startswith(prefix):
            raise ModelError(f"'{raw}': mrdiff bundles live in model repos, not {prefix[:-1]}", option="model")
    if body.startswith("models/"):
        body = body[len("models/") :]
    m = _HF_URI_RE.match(body)
    if not m:
        raise ModelError(f"cannot interpret '{raw}': expected hf://org/name[@revision][/subfolder]", option="model")
    repo_id = check_repo_id(f"{m['org']}/{m['name']}", raw)
    revision, sub = None, m["path"] or ""
    if m["rest"] is not None:
        rest = m["rest"]
        special = _SPECIAL_REF_RE.match(rest)
        if special:
            revision, sub = special.group(0), rest[special.end() :]
        else:
            rev, _, sub = rest.partition("/")
            revision = unquote(rev)
        revision = check_revision(revision, raw)
    return ModelSpec(kind="hub", raw=raw, repo_id=repo_id, revision=revision, subfolder=_check_subfolder(sub, raw))
