"""Where a model comes from: the ``--model`` value → a validated bundle folder, plus listing and publishing.

A *model bundle* is a folder with exactly two files that mrdiff reads, ``config.json`` and
``model.safetensors`` (never a pickle; see :mod:`mrdiff_cli.priors.bundle`). It can come from

* the bundled defaults (``mrdiff_cli/weights/<name>/``; override the folder with ``MRDIFF_WEIGHTS_DIR``),
* a local folder (``--model path/to/bundle``),
* a Hugging Face Hub model repo (``org/name``, ``org/name@revision``, ``hf://org/name@revision/subfolder``),
  downloaded with ``huggingface_hub.snapshot_download`` into the standard Hugging Face cache
  (``HF_HUB_CACHE`` / ``HF_HOME``), so it is shared with every other Hugging Face tool.

Modules, one reason to change each (imports point down this list):

========================  ==========================================================================
:mod:`.env`               environment read at call time (cache folder, endpoint, offline switches), probe
:mod:`.spec`              the ``--model`` grammar → :class:`ModelSpec`
:mod:`.bundled`           bundled models and the default per task
:mod:`.cache`             what the Hugging Face cache holds (``try_to_load_from_cache``, ``scan_cache_dir``)
:mod:`.error_map`         huggingface_hub exceptions → one-line :class:`~mrdiff_cli.errors.ModelError`
:mod:`.fetch`             ``snapshot_download`` with offline mode and the unreachable-Hub fallback
:mod:`.resolve`           :func:`resolve_model` (+ ``download_model``, ``model_info``)
:mod:`.listing`           :func:`list_models` (``mrdiff models list``)
:mod:`.card`              the model card (``ModelCard`` / ``ModelCardData``)
:mod:`.publish`           :func:`push_model` (``HfApi.create_repo`` / ``create_commit``)
========================  ==========================================================================

Offline use: ``offline=True`` (``--offline``), ``HF_HUB_OFFLINE=1`` or ``MRDIFF_OFFLINE=1`` read only the cache.
When online but the Hub cannot be reached, a cached snapshot is used (with a warning) and otherwise a one-line
ModelError is raised within about a second.

Importing this package imports neither torch nor huggingface_hub, so the CLI starts fast. It prints nothing:
warnings are returned on :class:`ResolvedModel` and logged on the ``mrdiff_cli.priors.hub`` logger.
"""

from __future__ import annotations

import logging

from ..bundle import check_bundle
from ..format import DEFAULT_BUNDLES, SUPPORTED_BUNDLE_VERSIONS, TASKS, bundle_tasks
from . import env
from .bundled import bundled_names
from .card import card_body, render_model_card
from .env import bundled_dir, hf_cache_dir, hub_reachable, is_offline
from .listing import format_size, list_models
from .publish import push_model
from .resolve import ResolvedModel, download_model, model_info, resolve_model
from .spec import ModelSpec, parse_model_spec

logging.getLogger(__name__).addHandler(logging.NullHandler())  # warnings reach users via ResolvedModel.warning

__all__ = [
    "DEFAULT_BUNDLES",
    "SUPPORTED_BUNDLE_VERSIONS",
    "TASKS",
    "ModelSpec",
    "ResolvedModel",
    "bundle_tasks",
    "bundled_dir",
    "bundled_names",
    "card_body",
    "check_bundle",
    "download_model",
    "env",
    "format_size",
    "hf_cache_dir",
    "hub_reachable",
    "is_offline",
    "list_models",
    "model_info",
    "parse_model_spec",
    "push_model",
    "render_model_card",
    "resolve_model",
]
