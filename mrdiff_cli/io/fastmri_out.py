"""Reconstructions as fastMRI submission / evaluation files: HDF5 with a ``reconstruction`` dataset.

fastMRI's own tools (``fastmri.save_reconstructions``, ``fastmri.evaluate``) write and read exactly one dataset,
``reconstruction``, of shape (slices, height, width), and compare it slice by slice with the target file's
``reconstruction_rss`` (multi-coil) or ``reconstruction_esc`` (single-coil) after a centre crop to the target's
size; the file name must be the input's (``-o out/`` with several inputs gives ``out/<input stem>.h5``). mrdiff
writes that dataset as float32 in the input's slice order (only the slices reconstructed: ``--slices`` or
``--shard`` make a partial volume, recorded in ``mrdiff_slices``), and file attributes:

==========================  ====================================================================================
``max``, ``norm``           of this file's ``reconstruction`` (volume maximum, L2 norm): fastMRI's meaning for its
                            reference volumes
``acquisition``,            copied from the input fastMRI file's attributes when it has them
``patient_id``
``mrdiff_version``          the mrdiff version
``mrdiff_input``            input file name
``mrdiff_slices``           input slice index of each stored slice
``mrdiff_volume``           what the volume is: ``image`` (reconstruction or posterior mean), ``variance``, …
``mrdiff_voxel_size_mm``    the geometry's voxel size (fastMRI files have no orientation)
``mrdiff_options``          JSON: method, sampler, coil mode, samples, NFE, mask (kind, accelerations, ACS, seed),
                            seed, model
==========================  ====================================================================================

Written atomically (temporary sibling, renamed when complete).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .base import as_real_volume

DATASET = "reconstruction"


def write_reconstruction_h5(path: str | os.PathLike, volume: np.ndarray, attrs: dict[str, Any] | None = None,
                            overwrite: bool = False) -> Path:
    """Write a (slices, H, W) real volume as ``reconstruction`` float32 with ``max``/``norm`` and ``attrs``."""
    import h5py

    v = np.ascontiguousarray(as_real_volume(volume, "a fastMRI reconstruction writer"), dtype=np.float32)
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(DATASET, data=v)
        f.attrs["max"] = float(v.max()) if v.size else 0.0
        f.attrs["norm"] = float(np.linalg.norm(v.astype(np.float64)))
        for key, val in (attrs or {}).items():
            if val is None:
                continue
            f.attrs[key] = _attr_value(val)
    return Path(path)


def _attr_value(val: Any) -> Any:
    if isinstance(val, (dict, list, tuple)) and not _numeric_list(val):
        from .metrics_json import dumps

        return dumps(val, indent=None)
    if isinstance(val, (list, tuple)):
        return np.asarray(val)
    return val


def _numeric_list(val: Any) -> bool:
    return isinstance(val, (list, tuple)) and all(isinstance(x, (int, float, np.integer, np.floating)) and
                                                  not isinstance(x, bool) for x in val)


def read_reconstruction_h5(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """(``reconstruction`` as float32, attributes) of a file written by :func:`write_reconstruction_h5`."""
    import h5py

    with h5py.File(path, "r") as f:
        data = np.asarray(f[DATASET][()], dtype=np.float32)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    if isinstance(attrs.get("mrdiff_options"), str):
        attrs["mrdiff_options"] = json.loads(attrs["mrdiff_options"])
    return data, attrs


def recon_attrs(info, summary: dict[str, Any], volume: str = "image") -> dict[str, Any]:
    """File attributes of a reconstruction of the input described by ``info`` (a ScanInfo) and the job ``summary``
    (``tasks.recon_job.summarize``)."""
    from .. import __version__

    src = (info.facts.get("attributes") or {}) if info is not None else {}
    out: dict[str, Any] = {k: src[k] for k in ("acquisition", "patient_id") if src.get(k) not in (None, "")}
    out.update(
        mrdiff_version=__version__,
        mrdiff_input=Path(str(summary.get("input", ""))).name,
        mrdiff_slices=[int(s) for s in summary.get("slices", [])],
        mrdiff_volume=volume,
        mrdiff_options=options_record(summary),
    )
    if info is not None:
        out["mrdiff_voxel_size_mm"] = [float(v) for v in info.geometry.voxel_size]
    return out


def options_record(summary: dict[str, Any]) -> dict[str, Any]:
    """The reconstruction settings of a job summary, for file attributes and sidecars."""
    model = summary.get("model") or {}
    return {
        "method": summary.get("method"), "sampler": summary.get("sampler"), "coil_mode": summary.get("coil_mode"),
        "samples": summary.get("samples"), "nfe": summary.get("nfe"), "mask": summary.get("mask"),
        "seed": summary.get("seed"),
        "model": {k: model.get(k) for k in ("name", "source", "revision") if model.get(k) is not None} or None,
    }
