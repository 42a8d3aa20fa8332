"""File-level reconstruction job: inputs → sharded slices → Reconstructor → outputs + metrics JSON.

Shared by `mrdiff reconstruct` and `mrdiff uncertainty`. Emits progress through ``progress(event)``.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..errors import InputError, UsageError
from .reconstruct import ReconOptions, Reconstructor, choose_coil_mode, nfe


@dataclass
class ReconJob:
    inputs: list[str]
    output: str
    fmt: str | None = None
    input_format: str | None = None
    mask: str | None = None
    accel: float | None = None
    acs: int | None = None
    model: str | None = None
    offline: bool = False
    save_zero_filled: bool = False
    save_samples: bool = False
    metrics: bool = True
    preview: bool = False
    overwrite: bool = False
    shard: tuple[int, int] = (0, 1)
    slices: tuple[int, int | None] | None = None
    uncertainty: bool = False
    options: ReconOptions = field(default_factory=ReconOptions)


def parse_shard(spec: str | None) -> tuple[int, int]:
    """'i/n' (0-based i) or SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT from the environment."""
    if not spec:
        tid, cnt = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_ARRAY_TASK_COUNT")
        if tid is not None and cnt is not None:
            spec = f"{int(tid) - int(os.environ.get('SLURM_ARRAY_TASK_MIN', '0'))}/{cnt}"
        else:
            return (0, 1)
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {spec!r}: need 0 <= I < N")
    return (i, n)


def shard_items(n_items: int, shard: tuple[int, int]) -> list[int]:
    """Deterministic split of item indices into n contiguous, nearly equal blocks (block i for shard i), so each
    shard's output is a contiguous sub-volume with a correct affine."""
    i, n = shard
    q, r = divmod(n_items, n)
    start = i * q + min(i, r)
    return list(range(start, start + q + (1 if i < r else 0)))


def output_for(job: ReconJob, src: Path, n_inputs: int) -> Path:
    out = Path(job.output)
    if n_inputs == 1 and not (out.exists() and out.is_dir() and job.fmt != "dicom"):
        return out
    stem = src.name.split(".")[0]
    ext = "" if job.fmt == "dicom" else ".nii.gz"
    return out / f"{stem}{ext}"


def _stem(p: Path) -> Path:
    name = p.name
    for ext in (".nii.gz", ".nii", ".dcm"):
        if name.endswith(ext):
            return p.with_name(name[: -len(ext)])
    return p


def resolve_sampling(reader, job: ReconJob, shape_hw: tuple[int, int]) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    """The mask to reconstruct with, a description of it, and warnings for the user."""
    from ..ops.masks import make_mask

    notes: list[str] = []
    file_mask = reader.mask if reader.undersampled else None
    info: dict[str, Any] = {}
    if job.mask:
        if job.accel is None:
            raise UsageError("--mask needs --accel R")
        res = make_mask(job.mask, shape_hw, job.accel, acs=job.acs, seed=job.options.seed)
        mask = res.mask
        info.update({"kind": res.kind, "target_accel": res.target_accel, "acs": res.acs, "seed": res.seed})
        if file_mask is not None:
            notes.append(f"{reader.path.name} is already undersampled; --mask {job.mask} is applied on top of its own pattern")
            mask = mask * np.broadcast_to(file_mask, shape_hw)
    elif file_mask is not None:
        mask = np.broadcast_to(file_mask, shape_hw).astype(np.float32)
        info.update({"kind": "from-file"})
    else:
        raise UsageError(
            f"{reader.path}: k-space is fully sampled; pass --mask KIND --accel R to undersample it retrospectively"
        )
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    info["achieved_accel"] = float(mask.size / max(mask.sum(), 1))
    return mask, info, notes


def check_outputs(out: Path, job: ReconJob) -> None:
    """Refuse existing outputs / unwritable folders up front (OutputError, exit 2), not after the work."""
    from ..io.atomic import check_output_path

    if len(job.inputs) > 1 or (out.parent != Path(job.output) and Path(job.output).is_dir()):
        Path(job.output).mkdir(parents=True, exist_ok=True)
    is_dicom = job.fmt == "dicom" or (job.fmt is None and not str(out).endswith((".nii", ".nii.gz")))
    check_output_path(out, job.overwrite, kind="dir" if is_dicom else "file")
    if job.metrics:
        check_output_path(Path(f"{_stem(out)}_metrics.json"), job.overwrite)


def run_job(job: ReconJob, prior, model_info: dict[str, Any], progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Reconstruct every input (this shard's part); write outputs; return the summary."""
    from ..io.detect import open_input

    emit = progress or (lambda e: None)
    paths = [Path(p) for p in job.inputs]
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: file not found")
    summaries = []
    outs = [output_for(job, src, len(paths)) for src in paths]
    for out in outs:  # fail before any compute when an output exists (and --overwrite is not given)
        check_outputs(out, job)
    for src in paths:
        with open_input(src, job.input_format) as reader:
            summaries.append(_run_one(job, reader, src, output_for(job, src, len(paths)), prior, model_info, emit))
    return {"mrdiff_version": __version__, "results": summaries}


def _run_one(job, reader, src: Path, out: Path, prior, model_info, emit) -> dict[str, Any]:
    from ..io.fastmri import crop_to_recon, remove_readout_oversampling
    from ..io.metrics_json import write_json
    from ..io.writers import write_volume
    from ..metrics import volume_metrics

    opts = job.options
    n_slices, n_coils, H, W = reader.shape
    # fastMRI keeps readout oversampling in its k-space (removed here); the ISMRMRD reader already removed it
    os_factor = 1 if reader.metadata.get("readout_oversampling_removed") else int(reader.metadata.get("readout_oversampling", 1) or 1)
    Hr = H // os_factor if os_factor > 1 else H
    mask, mask_info, notes = resolve_sampling(reader, job, (Hr, W))
    for n in notes:
        warnings.warn(n)
    mode = choose_coil_mode(opts.coil_mode, n_coils)
    if opts.method != "diffusion" and opts.samples > 1:
        raise UsageError("--samples > 1 needs --method diffusion")
    lo, hi = job.slices if job.slices else (0, n_slices)
    hi = n_slices if hi is None else min(hi, n_slices)
    idx = [lo + i for i in shard_items(hi - lo, job.shard)]
    if not idx:
        return {"input": str(src), "output": None, "slices": [], "note": "no slices in this shard"}
    keep_samples = job.save_samples
    recon = Reconstructor(prior, opts)
    per_item = n_coils if mode in ("ssos", "hybrid") else 1
    slice_batch = max(1, opts.batch_size // max(1, per_item))
    outs, vars_, zfs, refs, samples = [], [], [], [], []
    t0 = time.time()
    total = len(idx)
    for b0 in range(0, len(idx), slice_batch):
        sel = idx[b0 : b0 + slice_batch]
        k = reader.read_slices(sel[0], sel[-1] + 1)  # shards and --slices are contiguous
        if os_factor > 1:
            k = remove_readout_oversampling(k, os_factor)
        full = not reader.undersampled
        res = recon.reconstruct(
            k, mask, mode, sample_seed_offset=0, keep_samples=keep_samples, slice_ids=sel,
            callback=lambda d, n, b0=b0: emit({"type": "progress", "input": str(src), "slices_done": b0, "slices": total, "step": d, "steps": n}),
        )
        outs.append(res.images)
        zfs.append(res.zero_filled)
        if res.variance is not None:
            vars_.append(res.variance)
        if res.samples is not None:
            samples.append(res.samples)
        if full:
            from ..ops.fft import ifft2c, rss
            import torch

            refs.append(rss(ifft2c(torch.as_tensor(k)), dim=1).numpy())
        elif reader.has_reference:
            refs.append(reader.reference_slices(sel[0], sel[-1] + 1))
        emit({"type": "slices", "input": str(src), "slices_done": b0 + len(sel), "slices": total})
    elapsed = time.time() - t0
    vol = np.concatenate(outs).astype(np.float32)
    zf = np.concatenate(zfs).astype(np.float32)
    recon_shape = reader.metadata.get("recon_shape")
    if recon_shape and tuple(recon_shape) != vol.shape[-2:]:
        vol, zf = crop_to_recon(vol, tuple(recon_shape)), crop_to_recon(zf, tuple(recon_shape))
    desc_model = model_info.get("name", "model")
    desc = f"mrdiff {__version__} {opts.method}" + (f" {opts.sampler} {desc_model}" if opts.method == "diffusion" else "") + f" R{mask_info['achieved_accel']:.1f}"
    geom = reader.geometry.from_slice(idx[0], (vol.shape[1], vol.shape[2], n_slices))
    written = {"image": str(write_volume(out, vol, geom, job.fmt, desc, overwrite=job.overwrite))}
    base = _stem(out)
    fmt_ext = "" if (job.fmt == "dicom" or (job.fmt is None and not str(out).endswith((".nii", ".nii.gz")))) else ".nii.gz"
    if job.save_zero_filled:
        written["zero_filled"] = str(write_volume(Path(f"{base}_zero_filled{fmt_ext}"), zf, geom, job.fmt, f"mrdiff {__version__} zero-filled", overwrite=job.overwrite))
    if vars_:
        var = np.concatenate(vars_).astype(np.float32)
        if recon_shape and tuple(recon_shape) != var.shape[-2:]:
            var = crop_to_recon(var, tuple(recon_shape))
        extra = {"series_number": 2} if job.fmt == "dicom" else {}
        written["variance"] = str(write_volume(Path(f"{base}_variance{fmt_ext}"), var, geom, job.fmt, desc + " variance", overwrite=job.overwrite, **extra))
        written["std"] = str(write_volume(Path(f"{base}_std{fmt_ext}"), np.sqrt(var), geom, job.fmt, desc + " std", overwrite=job.overwrite))
    else:
        var = None
    if samples:
        allk = np.concatenate(samples, axis=1).astype(np.float32)  # (K, slices, H, W)
        written["samples"] = []
        for kk in range(allk.shape[0]):
            written["samples"].append(str(write_volume(Path(f"{base}_sample{kk:03d}{fmt_ext}"), allk[kk], geom, job.fmt, desc + f" sample {kk}", overwrite=job.overwrite)))
    summary: dict[str, Any] = {
        "input": str(src),
        "output": written,
        "slices": idx,
        "shard": f"{job.shard[0]}/{job.shard[1]}",
        "method": opts.method,
        "sampler": opts.sampler if opts.method == "diffusion" else None,
        "coil_mode": mode,
        "coils": n_coils,
        "samples": opts.samples,
        "nfe": nfe(opts, mode) if opts.method == "diffusion" else 0,
        "mask": mask_info,
        "seconds_total": elapsed,
        "seconds_per_slice": elapsed / len(idx),
        "device": str(recon.device),
        "model": model_info,
        "seed": opts.seed,
    }
    ref = None
    if refs:
        ref = np.concatenate(refs).astype(np.float32)
        if ref.shape[-2:] != vol.shape[-2:]:
            hh, ww = min(ref.shape[-2], vol.shape[-2]), min(ref.shape[-1], vol.shape[-1])
            ref = crop_to_recon(ref, (hh, ww))
            cmp_vol, cmp_zf = crop_to_recon(vol, (hh, ww)), crop_to_recon(zf, (hh, ww))
        else:
            cmp_vol, cmp_zf = vol, zf
        summary["reference"] = "fully-sampled RSS" if not reader.undersampled else "file reconstruction_rss"
        summary["metrics"] = volume_metrics(cmp_vol, ref)
        summary["metrics_zero_filled"] = volume_metrics(cmp_zf, ref)["mean"]
        if var is not None:
            from .calibration import calibration_report, write_calibration_png

            summary["calibration"] = calibration_report(cmp_vol, crop_to_recon(np.sqrt(var), cmp_vol.shape[-2:]), ref, mask)
            written["calibration_png"] = str(write_calibration_png(Path(f"{base}_calibration.png"), summary["calibration"], overwrite=job.overwrite))
    if job.metrics:
        from ..io.grid import save_grid

        mask_png = Path(f"{base}_mask.png")
        if job.overwrite or not mask_png.exists():
            save_grid(mask_png, mask[None], vmax=1.0)
            written["mask_png"] = str(mask_png)
    if job.preview:
        from ..io.png import write_preview

        mid = vol.shape[0] // 2
        panels = [("zero-filled", zf[mid]), (f"mrdiff {opts.method}", vol[mid])]
        if ref is not None:
            panels.append(("reference", ref[mid]))
        if var is not None:
            panels.append(("std", np.sqrt(var[mid])))
        written["preview"] = str(write_preview(Path(f"{base}_preview.png"), panels, overwrite=job.overwrite))
    if job.metrics:  # last, so it lists every file written
        metrics_path = Path(f"{base}_metrics.json")
        written["metrics"] = str(metrics_path)
        write_json(metrics_path, summary, overwrite=job.overwrite)
    return summary
