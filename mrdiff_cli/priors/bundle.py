"""Model bundles: a folder with config.json + model.safetensors (never a pickle): validate, read, write, load.

config.json keys: mrdiff_bundle_version, task, tasks, resolution, architecture {type, unet, edm | vdm},
normalization, training, validation, description (optionally license, tags, limitations).

:func:`check_bundle` is the one validation every source goes through (bundled, local folder, Hub snapshot,
``mrdiff models push``); :func:`save_bundle` / :func:`load_bundle` write and read the weights. torch and
safetensors are imported inside the functions that need them, so validating a bundle stays light.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from .format import (
    BUNDLE_VERSION,
    CONFIG_FILE,
    NORMALIZATION,
    PICKLE_SUFFIXES,
    SUPPORTED_BUNDLE_VERSIONS,
    TASKS,
    WEIGHTS_FILE,
    bundle_tasks,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUNDLE_VERSION",
    "NORMALIZATION",
    "build_model",
    "check_bundle",
    "load_bundle",
    "read_config",
    "read_mrdiff_config",
    "save_bundle",
]

# ------------------------------------------------------------------------------------------------ validation


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
    _check_files(folder, label)
    config = _parse_config(folder / CONFIG_FILE, label)
    _check_version(config, label)
    _check_fields(config, label)
    _check_fit(config, task, resolution, label)
    check_safetensors_header(folder / WEIGHTS_FILE, label)
    return config


def refuse_pickles(label: str, pickles: list[str], where: str = "found") -> None:
    """Raise the one message for a bundle whose only weights are pickles (``where``: 'found' / 'the repo has')."""
    if pickles:
        raise ModelError(
            f"model '{label}' contains no {WEIGHTS_FILE}; mrdiff never loads pickled weights "
            f"({where} {', '.join(pickles)}; convert it to safetensors)"
        )


def _check_files(folder: Path, label: str) -> None:
    if not (folder / WEIGHTS_FILE).is_file():
        refuse_pickles(label, sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES))
        raise ModelError(
            f"model '{label}' contains no {WEIGHTS_FILE} (an mrdiff bundle is {CONFIG_FILE} + {WEIGHTS_FILE})"
        )
    if not (folder / CONFIG_FILE).is_file():
        raise ModelError(
            f"model '{label}' contains no {CONFIG_FILE} (an mrdiff bundle is {CONFIG_FILE} + {WEIGHTS_FILE})"
        )


def _parse_config(path: Path, label: str) -> dict[str, Any]:
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


def _check_version(config: dict[str, Any], label: str) -> None:
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


def _check_fields(config: dict[str, Any], label: str) -> None:
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


def _check_fit(config: dict[str, Any], task: str | None, resolution: Any, label: str) -> None:
    served = bundle_tasks(config)
    if task is not None and task not in served:
        raise ModelError(
            f"model '{label}' is a '{config.get('task')}' model (serves: {', '.join(served)}); "
            f"this command needs a '{task}' model"
        )
    if resolution is not None:
        res = config["resolution"]
        want = tuple(int(v) for v in resolution)
        if tuple(res) != want:
            raise ModelError(
                f"model '{label}' was trained at {res[0]}x{res[1]}; this command needs {want[0]}x{want[1]}"
            )


def check_safetensors_header(path: Path, label: str) -> None:
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
            if not isinstance(json.loads(fh.read(n).decode("utf-8")), dict):
                raise ValueError
    except (ValueError, UnicodeDecodeError, struct.error):
        hint = " (it is a Git LFS pointer: run `git lfs pull` in that folder)" if _is_lfs_pointer(path) else ""
        raise ModelError(f"model '{label}': {WEIGHTS_FILE} is not a valid safetensors file{hint}") from None
    except OSError as exc:
        raise ModelError(f"model '{label}': cannot read {WEIGHTS_FILE} ({exc.strerror or exc})") from None


def _is_lfs_pointer(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(40).startswith(b"version https://git-lfs")
    except OSError:
        return False


def read_mrdiff_config(folder: Path) -> dict[str, Any] | None:
    """config.json of ``folder`` if it is an mrdiff config, else None (never raises; for listings)."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(config, dict) and "mrdiff_bundle_version" in config:
        return config
    return None


# ------------------------------------------------------------------------------------------------ read / write


def read_config(folder: str | Path) -> dict[str, Any]:
    """config.json of a bundle folder (no validation beyond JSON; :func:`check_bundle` validates)."""
    path = Path(folder) / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder}: no {CONFIG_FILE} (not an mrdiff model bundle)") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: invalid JSON ({exc.msg})") from None


def save_bundle(
    folder: str | Path, model: torch.nn.Module, config: dict[str, Any], dtype: torch.dtype | None = None
) -> Path:
    """Write config.json + model.safetensors atomically (weights stored in ``dtype``, default float16)."""
    import torch
    from safetensors.torch import save

    from ..io.atomic import atomic_write_bytes

    dtype = torch.float16 if dtype is None else dtype
    folder = Path(folder)
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    cfg = dict(config)
    cfg.setdefault("mrdiff_bundle_version", BUNDLE_VERSION)
    cfg["weights_dtype"] = str(dtype).replace("torch.", "")
    atomic_write_bytes(folder / WEIGHTS_FILE, save(state))
    atomic_write_bytes(folder / CONFIG_FILE, (json.dumps(cfg, indent=2) + "\n").encode())
    return folder


def build_model(config: dict[str, Any]) -> torch.nn.Module:
    """Instantiate the network described by ``config['architecture']`` ('edm-unet' or 'vdm-unet')."""
    from .edm import EDMConfig, EDMPrior
    from .unet import UNetConfig
    from .vdm import VDM, VDMConfig

    arch = config.get("architecture") or {}
    kind = arch.get("type")
    try:
        if kind == "edm-unet":
            return EDMPrior(UNetConfig.from_dict(arch["unet"]), EDMConfig(**arch.get("edm", {})))
        if kind == "vdm-unet":
            edm = EDMConfig(**arch["edm"]) if "edm" in arch else None
            return VDM(UNetConfig.from_dict(arch["unet"]), VDMConfig(**arch.get("vdm", {})), edm)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model config is invalid: {exc}") from None
    raise ModelError(f"unknown model architecture type {kind!r} (expected 'edm-unet' or 'vdm-unet')")


def load_bundle(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a bundle folder → (model in eval mode, float32, on device; config)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    if int(config.get("mrdiff_bundle_version", -1)) not in SUPPORTED_BUNDLE_VERSIONS:
        raise ModelError(f"{folder}: unsupported bundle version {config.get('mrdiff_bundle_version')!r}")
    wpath = folder / WEIGHTS_FILE
    if not wpath.exists():
        raise ModelError(f"{folder}: no {WEIGHTS_FILE}; mrdiff only loads safetensors weights")
    model = build_model(config)
    state = load_file(str(wpath))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or bad:
        detail = (missing or unexpected or bad)[:3]
        raise ModelError(f"{folder}: weights do not match config.json (mismatched tensors: {', '.join(detail)})")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.eval().requires_grad_(False)
    return model.to(device), config
