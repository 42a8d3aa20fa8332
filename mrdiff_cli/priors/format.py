"""The model-bundle format in constants: file names, version, tasks, normalisation, refused weight formats.

A leaf module (imports nothing from mrdiff): the networks (``vdm.py``) write bundle configs with these values,
``bundle.py`` validates, reads and writes bundles, and ``hub/`` finds them, so none of those import each other
just to share a constant.
"""

from __future__ import annotations

from typing import Any

#: Bundle format version this build writes.
BUNDLE_VERSION = 1
#: Bundle format versions this build reads.
SUPPORTED_BUNDLE_VERSIONS = (1,)
#: Tasks a bundle can serve.
TASKS = ("score", "vdm")
#: Task -> name of the bundled default (a folder under the weights dir).
DEFAULT_BUNDLES = {"score": "score-brain-complex", "vdm": "vdm-brain-128"}

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
#: The only files ever fetched from a Hub repo (relative to the bundle's subfolder).
BUNDLE_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)
#: Weight formats that are pickles underneath; found alone, they are refused with a clear message.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

NORMALIZATION = {
    "kind": "quantile",
    "quantile": 0.99,
    "description": "each 2D magnitude slice is divided by its 99th-percentile magnitude "
    "(at inference: of the initial estimate, zero-filled or SENSE) so tissue sits near 1",
}


def bundle_tasks(config: dict[str, Any]) -> list[str]:
    """Tasks a bundle serves: its ``task`` plus any listed in ``tasks`` (one network serving both)."""
    tasks: list[str] = []
    for t in [config.get("task"), *(config.get("tasks") or [])]:
        if isinstance(t, str) and t not in tasks:
            tasks.append(t)
    return tasks
