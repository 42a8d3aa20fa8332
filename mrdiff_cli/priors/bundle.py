"""Model bundles: a folder with config.json + model.safetensors (never pickles).

config.json keys: mrdiff_bundle_version, task, tasks, resolution, architecture {type, unet, edm | vdm},
normalization, training, validation, description.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

BUNDLE_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

NORMALIZATION = {
    "kind": "quantile",
    "quantile": 0.99,
    "description": "each 2D magnitude slice is divided by its 99th-percentile magnitude "
    "(at inference: of the initial estimate, zero-filled or SENSE) so tissue sits near 1",
}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename; replaces an existing file)."""
    from ..io.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(data)


def save_bundle(folder: str | Path, model: torch.nn.Module, config: dict[str, Any], dtype: torch.dtype = torch.float16) -> Path:
    """Write config.json + model.safetensors atomically (weights stored in ``dtype``)."""
    from safetensors.torch import save

    folder = Path(folder)
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous() for k, v in model.state_dict().items()}
    cfg = dict(config)
    cfg.setdefault("mrdiff_bundle_version", BUNDLE_VERSION)
    cfg["weights_dtype"] = str(dtype).replace("torch.", "")
    _atomic_write_bytes(folder / WEIGHTS_NAME, save(state))
    _atomic_write_bytes(folder / CONFIG_NAME, (json.dumps(cfg, indent=2) + "\n").encode())
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder}: no {CONFIG_NAME} (not an mrdiff model bundle)") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: invalid JSON ({exc.msg})") from None


def build_model(config: dict[str, Any]) -> torch.nn.Module:
    """Instantiate the network described by ``config['architecture']``."""
    from .edm import EDMConfig, EDMPrior
    from .unet import UNetConfig

    arch = config.get("architecture") or {}
    kind = arch.get("type")
    try:
        if kind == "edm-unet":
            return EDMPrior(UNetConfig.from_dict(arch["unet"]), EDMConfig(**arch.get("edm", {})))
        if kind == "vdm-unet":
            from .vdm import VDM, VDMConfig

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
    if int(config.get("mrdiff_bundle_version", -1)) != BUNDLE_VERSION:
        raise ModelError(f"{folder}: unsupported bundle version {config.get('mrdiff_bundle_version')!r}")
    wpath = folder / WEIGHTS_NAME
    if not wpath.exists():
        raise ModelError(f"{folder}: no {WEIGHTS_NAME}; mrdiff only loads safetensors weights")
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
