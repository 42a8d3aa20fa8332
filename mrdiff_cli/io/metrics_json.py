"""JSON output that accepts numpy (and torch) values, written atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path


def to_jsonable(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays, tensors, paths, tuples and sets to JSON types.

    Non-finite floats become ``null`` (strict JSON has no NaN/Infinity).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (complex, np.complexfloating)):
        return {"real": to_jsonable(obj.real), "imag": to_jsonable(obj.imag)}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (str, type(None))):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor, without importing torch
        return to_jsonable(obj.detach().cpu().numpy())
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    return str(obj)


def dumps(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any, overwrite: bool = False, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (numpy-safe, NaN → null) atomically."""
    text = dumps(obj, indent=indent) + "\n"
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
