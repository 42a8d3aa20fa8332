"""Running a reconstruction job from the CLI: options → ReconJob, model + progress + run, summary table.

Shared by `reconstruct` and `uncertainty` (commands never call each other; both call these). No torch import at
module level.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import console, parse_slices, print_json, print_warnings
from .progress import Reporter

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def parse_zeta(spec: str | None) -> float | str | None:
    if spec is None or spec == "ancestral":
        return spec
    try:
        z = float(spec)
    except ValueError:
        raise UsageError(f"--zeta {spec!r}: expected a number in [0, 1] or 'ancestral'") from None
    if not 0.0 <= z <= 1.0:
        raise UsageError(f"--zeta {spec!r}: must be in [0, 1]")
    return z


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def recon_job_from_options(kw: dict[str, Any]):
    """The `reconstruct` / `uncertainty` options (by parameter name) → a validated ReconJob."""
    from ..tasks.recon_job import ReconJob, parse_shard
    from ..tasks.reconstruct import ReconOptions

    if kw["samples"] < 1:
        raise UsageError("--samples must be >= 1")
    if kw["batch_size"] is not None and kw["batch_size"] < 1:
        raise UsageError("--batch-size must be >= 1")
    if kw["precision"] not in PRECISIONS:
        raise UsageError(f"--precision {kw['precision']!r}: choose auto, fp32, bf16 or fp16")
    if kw["cg_iters"] is not None and kw["cg_iters"] < 1:
        raise UsageError("--cg-iters must be >= 1")
    if kw.get("phase_resid", 0.0) < 0:
        raise UsageError("--phase-resid must be >= 0")
    opts = ReconOptions(
        method=_value(kw["method"]), sampler=_value(kw["sampler"]), coil_mode=_value(kw["coil_mode"]),
        complex_mode=_value(kw["complex_mode"]), steps=kw["steps"], sigma_max=kw["sigma_max"], n_cg=kw["cg_iters"],
        zeta=parse_zeta(kw["zeta"]), snr=kw["snr"], phase_resid=kw.get("phase_resid", ReconOptions.phase_resid),
        sense_every=kw["sense_every"], samples=kw["samples"],
        batch_size=kw["batch_size"] or 0,  # 0: chosen for the device when the model is loaded
        seed=kw["seed"], autocast=None if kw["precision"] in ("fp32", "auto") else kw["precision"],
    )
    return ReconJob(
        inputs=[str(p) for p in kw["inputs"]], output=str(kw["output"]), fmt=_value(kw["fmt"]),
        input_format=_value(kw["input_format"]), mask=_value(kw["mask"]), accel=kw["accel"], acs=kw["acs"],
        model=kw["model"], offline=kw["offline"], save_zero_filled=kw["save_zero_filled"],
        save_samples=kw["save_samples"], metrics=kw["metrics"], preview=kw["preview"], overwrite=kw["overwrite"],
        shard=parse_shard(kw["shard"]), slices=parse_slices(kw["slices"]), options=opts,
    )


def run_recon(job, *, quiet: bool, json_out: bool, device: str, precision: str, title: str) -> dict:
    """Load the model, run the job with progress on stderr, print the summary (table or JSON on stdout)."""
    from ..tasks.recon_job import load_model, run_job

    return _run_reported(lambda: load_model(job, device, precision),
                         lambda prior, info, progress: run_job(job, prior, info, progress),
                         lambda summary: print_recon_table(summary, title), quiet=quiet, json_out=json_out)


def _run_reported(load, run, print_table, *, quiet: bool, json_out: bool) -> dict:
    """Shared by the commands: ``load()`` the model and ``run(prior, info, progress)`` with progress on stderr
    (warnings collected and printed as one line each), then the summary on stdout (JSON or ``print_table``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prior, info = load()
        with Reporter(quiet, console) as progress:
            summary = run(prior, info, progress)
    print_warnings(caught, quiet)
    if json_out:
        print_json(summary)
    elif not quiet:
        print_table(summary)
    return summary


def reference_caption(r: dict[str, Any]) -> str:
    ref = r.get("reference") or {}
    if not r.get("metrics"):
        return f"{Path(r['input']).name}: no metrics ({ref.get('description', 'no reference')})"
    text = f"{Path(r['input']).name}: PSNR/SSIM against {ref.get('description')}"
    if ref.get("noisy"):
        text += "; a noisy reference penalises denoising, so SSIM can rank a cleaner image lower"
    return text


def print_recon_table(summary: dict, title: str) -> None:
    """One row per input (fits 80 columns; folds, never truncates, when narrower); below it, per input, the
    reference the metrics compare against and the output path."""
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for col in ("input", "mode", "R", "NFE", "s/slice", "PSNR", "SSIM", "ZF PSNR"):
        t.add_column(col, overflow="fold", no_wrap=col not in ("input", "mode"))
    for r in summary["results"]:
        m = (r.get("metrics") or {}).get("mean", {})
        zf = r.get("metrics_zero_filled") or {}
        t.add_row(
            Path(r["input"]).name, f"{r.get('method')}/{r.get('coil_mode')}",
            f"{r['mask']['achieved_accel']:.2f}" if r.get("mask") else "-", str(r.get("nfe", "-")),
            f"{r.get('seconds_per_slice', 0):.2f}", f"{m['psnr']:.2f}" if m else "-",
            f"{m['ssim']:.4f}" if m else "-", f"{zf['psnr']:.2f}" if zf else "-",
        )
    console.print(t)
    for r in summary["results"]:
        if r.get("mask"):
            console.print(reference_caption(r), highlight=False, overflow="fold")
            console.print(f"→ {(r.get('output') or {}).get('image', '-')}", highlight=False, overflow="fold")


# ------------------------------------------------------------------------------------------------ super-resolution


def parse_noise(noise: str | float) -> str | float:
    if noise in ("auto", "none"):
        return noise
    try:
        value = float(noise)
    except ValueError:
        raise UsageError(f"--noise {noise!r}: expected auto, none or a number >= 0") from None
    if not value >= 0:
        raise UsageError(f"--noise {noise}: must be >= 0")
    return value


def superres_job_from_options(kw: dict[str, Any]):
    """The `superres` options (and `uncertainty --task superres`'s) by parameter name → a validated SuperresJob."""
    from ..tasks.superres import SuperresJob, SuperresOptions, parse_matrix

    if kw["samples"] < 1:
        raise UsageError("--samples must be >= 1")
    if kw.get("steps") is not None and kw["steps"] < 1:
        raise UsageError("--steps must be >= 1")
    if kw["batch_size"] < 1:
        raise UsageError("--batch-size must be >= 1")
    if not 0.0 <= kw["guidance"] <= 1.0:
        raise UsageError(f"--guidance {kw['guidance']}: lambda must be in [0, 1]")
    options = SuperresOptions(sampler=_value(kw.get("sampler", "fast")), steps=kw.get("steps"), guidance=kw["guidance"],
                              noise=parse_noise(kw.get("noise", "auto")), samples=kw["samples"], seed=kw["seed"],
                              batch_size=kw["batch_size"], consistency=_value(kw.get("consistency", "auto")))
    return SuperresJob(
        input=str(kw["input"]), output=str(kw["output"]), from_hw=parse_matrix(kw["from_"], "--from"),
        to_hw=parse_matrix(kw["to"], "--to"), fmt=_value(kw["fmt"]), save_samples=kw["save_samples"],
        metrics=kw["metrics"], preview=kw["preview"], overwrite=kw["overwrite"], slices=parse_slices(kw["slices"]),
        options=options,
    )


def run_superres_job(job, *, model: str | None, offline: bool, device: str, quiet: bool, json_out: bool) -> dict:
    """Load the VDM, run with progress on stderr, print the summary (table or JSON on stdout)."""
    from ..tasks.reconstruct import resolve_device
    from ..tasks.superres import load_superres_model, run_superres

    dev = resolve_device(device)
    job.options.device = str(dev)
    return _run_reported(lambda: load_superres_model(model, offline=offline, device=str(dev)),
                         lambda prior, info, progress: run_superres(job, prior, info, progress),
                         print_superres_table, quiet=quiet, json_out=json_out)


def print_superres_table(s: dict) -> None:
    from rich.table import Table

    if s.get("metrics"):
        t = Table(title="mrdiff superres", show_lines=False)
        for col in ("method", "PSNR", "SSIM"):
            t.add_column(col, overflow="fold")
        m = s["metrics"]["mean"]
        t.add_row("mrdiff", f"{m['psnr']:.2f}", f"{m['ssim']:.4f}")
        for name, b in (s.get("baselines") or {}).items():
            t.add_row(name, f"{b['psnr']:.2f}", f"{b['ssim']:.4f}")
        console.print(t)
        console.print(f"PSNR/SSIM against the {s['reference']}", highlight=False)
    (fh, fw), (th, tw) = s["from"], s["to"]
    console.print(
        f"{Path(s['input']).name}: {s['mode']} {fh}x{fw} → {th}x{tw}, {len(s['slices'])} slice(s), "
        f"{s['sampler']} sampler, {s['steps']} steps, {s['seconds_per_slice']:.2f} s/slice → {s['output']['image']}",
        highlight=False, overflow="fold",
    )
