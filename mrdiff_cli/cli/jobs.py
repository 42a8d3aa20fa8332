"""Running a reconstruction job from the CLI: options → ReconJob, model + progress + run, summary table.

Shared by `reconstruct` and `uncertainty` (commands never call each other; both call these). No torch import at
module level.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from ..errors import MrdiffError, UsageError
from .common import (
    check_device,
    cli_text,
    console,
    one_line,
    parse_slices,
    print_json,
    print_table,
    print_warnings,
    say,
)
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


def check_recon_numbers(kw: dict[str, Any]) -> None:
    """Out-of-range numbers of `reconstruct` / `uncertainty` (by parameter name): UsageError before anything loads."""
    def need(ok: bool, text: str) -> None:
        if not ok:
            raise UsageError(text)

    def finite(name: str) -> bool:
        return kw.get(name) is None or math.isfinite(kw[name])

    need(kw["samples"] >= 1, f"--samples {kw['samples']}: must be >= 1")
    need(kw["steps"] is None or kw["steps"] >= 1, f"--steps {kw['steps']}: must be >= 1")
    need(finite("sigma_max") and (kw["sigma_max"] is None or kw["sigma_max"] > 0),
         f"--sigma-max {kw['sigma_max']}: must be a number > 0")
    need(kw["cg_iters"] is None or kw["cg_iters"] >= 1, f"--cg-iters {kw['cg_iters']}: must be >= 1")
    need(kw["sense_every"] >= 1, f"--sense-every {kw['sense_every']}: must be >= 1")
    need(finite("snr") and kw["snr"] > 0, f"--snr {kw['snr']}: must be a number > 0")
    need(finite("phase_resid") and (kw.get("phase_resid") is None or kw["phase_resid"] >= 0),
         "--phase-resid must be >= 0")
    need(finite("accel") and (kw["accel"] is None or kw["accel"] > 1),
         f"--accel {kw['accel']}: the acceleration must be a number > 1")
    need(kw["acs"] is None or kw["acs"] >= 0, f"--acs {kw['acs']}: must be >= 0 (0 = no fully sampled centre)")
    need(kw["seed"] >= 0, f"--seed {kw['seed']}: must be >= 0")
    need(kw["batch_size"] is None or kw["batch_size"] >= 1, "--batch-size must be >= 1")
    need(kw["precision"] in PRECISIONS, f"--precision {kw['precision']!r}: choose auto, fp32, bf16 or fp16")
    check_device(kw["device"])


def recon_job_from_options(kw: dict[str, Any]):
    """The `reconstruct` / `uncertainty` options (by parameter name) → a validated ReconJob."""
    check_recon_numbers(kw)  # before torch is imported: a usage error is instant
    zeta = parse_zeta(kw["zeta"])
    from ..tasks.recon_job import ReconJob, parse_shard
    from ..tasks.reconstruct import L1_PHASE_LAMBDA, ReconOptions

    opts = ReconOptions(
        method=_value(kw["method"]), sampler=_value(kw["sampler"]), coil_mode=_value(kw["coil_mode"]),
        complex_mode=_value(kw["complex_mode"]), steps=kw["steps"], sigma_max=kw["sigma_max"], n_cg=kw["cg_iters"],
        zeta=zeta, snr=kw["snr"], phase_resid=kw.get("phase_resid", ReconOptions.phase_resid),
        phase_cs_lambda=L1_PHASE_LAMBDA if _value(kw.get("phase_ref")) == "l1" else 0.0,
        sense_every=kw["sense_every"], samples=kw["samples"],
        batch_size=kw["batch_size"] or 0,  # 0: chosen for the device when the model is loaded
        seed=kw["seed"], autocast=None if kw["precision"] in ("fp32", "auto") else kw["precision"],
        compress_coils=kw.get("coils"), count_pilot=_value(kw.get("count_pilot", ReconOptions.count_pilot)),
        coil_maps=_value(kw.get("coil_maps", ReconOptions.coil_maps)),
        maps_support=_value(kw.get("maps_support", ReconOptions.maps_support)),
    )
    return ReconJob(
        inputs=[str(p) for p in kw["inputs"]], output=str(kw["output"]), fmt=_value(kw["fmt"]),
        input_format=_value(kw["input_format"]), mask=_value(kw["mask"]), accel=kw["accel"], acs=kw["acs"],
        model=kw["model"], offline=kw["offline"], save_zero_filled=kw["save_zero_filled"],
        save_samples=kw["save_samples"], metrics=kw["metrics"], preview=kw["preview"], overwrite=kw["overwrite"],
        shard=parse_shard(kw["shard"]), slices=parse_slices(kw["slices"]), keep_going=kw.get("keep_going", False),
        options=opts,
    )


def recon_job_from_cli(kw: dict[str, Any]):
    """`reconstruct` / `uncertainty` parameters as Typer passes them → a validated ReconJob (coil compression set,
    torch threads applied). Raises UsageError before anything loads."""
    from .options import parse_batch_size

    coils, threads = kw.get("coils"), kw.get("threads")
    if coils is not None and (coils < 0 or coils == 1):
        raise UsageError(f"--coils {coils}: 0 (off) or at least 2 virtual coils")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads}: must be >= 1")
    kw = {**kw, "batch_size": parse_batch_size(kw["batch_size"])}
    check_recon_numbers(kw)
    parse_slices(kw["slices"])
    job = recon_job_from_options(kw)
    from ..tasks.resources import apply_threads

    apply_threads(threads)
    return job


class BatchFailed(MrdiffError):
    """Some inputs of a --keep-going batch failed (each was named on stderr; the summary was printed)."""

    json_reported = True  # the summary JSON (with its "error" field) is already on stdout


def run_recon(job, *, quiet: bool, json_out: bool, device: str, precision: str, title: str,
              after=None) -> dict:
    """Check inputs and outputs, load the model, run the job with progress on stderr, print the summary (table or
    JSON on stdout; ``after(summary)`` prints more below the table). With --keep-going, failed inputs are named on
    stderr as they happen and the run ends in BatchFailed (exit 2) after the summary."""
    from ..tasks.recon_job import load_model, plan_outputs, run_job

    plan = plan_outputs(job)  # inputs exist, outputs free and writable: before the model loads (unless keep_going)
    nothing_to_run = all(isinstance(o, Exception) for _, o in plan)  # --keep-going and every input already failed
    summary = _run_reported(lambda: (None, {"name": None}) if nothing_to_run else load_model(job, device, precision),
                            lambda prior, info, progress: _flag_errors(run_job(job, prior, info, progress)),
                            lambda summary: print_recon_table(summary, title), quiet=quiet, json_out=json_out)
    if after is not None and not quiet and not json_out:
        after(summary)
    if summary.get("failed"):
        names = ", ".join(Path(f["input"]).name for f in summary["failed"])
        raise BatchFailed(f"{summary['error']} ({names})")
    return summary


def _flag_errors(summary: dict) -> dict:
    """The --keep-going failures of a summary as the command line shows errors (library messages name parameters,
    ``cli_text`` turns them into flags)."""
    for r in summary.get("results", []) + summary.get("failed", []):
        if r.get("error"):
            r["error"] = cli_text(r["error"])
    return summary


def _run_reported(load, run, print_table, *, quiet: bool, json_out: bool) -> dict:
    """Shared by the commands: ``load()`` the model and ``run(prior, info, progress)`` with progress on stderr
    (warnings collected and printed as one line each; ``{"type": "error"}`` events as one ``mrdiff: error:`` line
    each, even with --quiet), then the summary on stdout (JSON or ``print_table``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prior, info = load()
        with Reporter(quiet, console) as progress:
            def on_event(e: dict) -> None:
                if e.get("type") == "error":  # a --keep-going failure: one line, even with --quiet
                    console.print(f"mrdiff: error: {one_line(cli_text(e['error']))}", markup=False, highlight=False,
                                  soft_wrap=True, emoji=False)
                elif progress is not None:
                    progress(e)

            summary = run(prior, info, on_event)
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


def maps_caption(r: dict[str, Any]) -> str | None:
    """The summary's line on the coil maps of a diffusion run: which maps, and the support with who chose it (the
    hold-out errors when the pilot chose); None without a consistency record."""
    c = r.get("consistency") or {}
    if "coil_maps" not in c:
        return None
    text = f"{Path(r['input']).name}: coil maps {c['coil_maps']}"
    sup = c.get("coil_map_support")
    if sup:
        text += f", {sup['support']} support"
        err = sup.get("holdout_error")
        if err:
            text += f" (k-space hold-out error {err['own']:.4g} with own, {err['release']:.4g} with release)"
        elif not str(sup.get("chosen_by", "")).startswith("fixed"):
            text += f" ({sup.get('chosen_by')})"
    return text


def method_label(r: dict[str, Any]) -> str:
    """The table's 'mode' cell: diffusion/<coil mode>, sense (CG-SENSE) or zero-filled (RSS of the coil images)."""
    if r.get("method") == "diffusion":
        return f"diffusion/{r.get('coil_mode')}"
    return str(r.get("method"))


def cg_label(r: dict[str, Any]) -> str:
    """The table's 'CG' cell: consistency iterations per step, 'N auto' when the hold-out pilot chose it."""
    c = r.get("consistency")
    if not c:
        return "-"
    chosen_by = str(c.get("chosen_by", "fixed"))  # "fixed…" unless a pilot chose it (hold-out, bootstrap)
    return str(c["cg_iters"]) if chosen_by.startswith("fixed") else f"{c['cg_iters']} auto"


def print_recon_table(summary: dict, title: str) -> None:
    """One row per reconstructed input (a rich table on a terminal, folded to its width; plain unwrapped columns
    in logs); below it, per input, the reference the metrics compare against and the output path. An input whose
    shard holds no slices, or that failed (--keep-going), gets one line instead of a row."""
    done = [r for r in summary["results"] if r.get("slices") and not r.get("error")]
    rows = []
    for r in done:
        m = (r.get("metrics") or {}).get("mean", {})
        zf = r.get("metrics_zero_filled") or {}
        rows.append([
            Path(r["input"]).name, method_label(r),
            f"{r['mask']['achieved_accel']:.2f}" if r.get("mask") else "-", str(r.get("nfe", "-")), cg_label(r),
            f"{r.get('seconds_per_slice', 0):.2f}", f"{m['psnr']:.2f}" if m else "-",
            f"{m['ssim']:.4f}" if m else "-", f"{zf['psnr']:.2f}" if zf else "-",
        ])
    if rows:
        print_table(console, ["input", "mode", "R", "NFE", "CG", "s/slice", "PSNR", "SSIM", "ZF PSNR"], rows,
                    title=title, no_wrap=("R", "NFE", "CG", "s/slice", "PSNR", "SSIM", "ZF PSNR"))
    for r in summary["results"]:
        if r.get("error"):
            continue  # named on stderr when it failed
        if not r.get("slices"):
            say(f"{Path(r['input']).name}: {r.get('note', 'no slices')}")
        elif r.get("mask"):
            say(reference_caption(r))
            maps = maps_caption(r)
            if maps:
                say(maps)
            say(f"→ {(r.get('output') or {}).get('image', '-')}")


# ------------------------------------------------------------------------------------------------ super-resolution


def parse_noise(noise: str | float) -> str | float:
    """--noise: 'auto', 'none' or a number (its range is SuperresOptions' to check)."""
    if noise in ("auto", "none"):
        return noise
    try:
        return float(noise)
    except ValueError:
        raise UsageError(f"--noise {noise!r}: expected auto, none or a number >= 0") from None


def superres_job_from_options(kw: dict[str, Any]):
    """The `superres` options (and `uncertainty --task superres`'s) by parameter name → a validated SuperresJob.
    The options check their own ranges when built (their UsageError names the parameter: ``--samples: …``)."""
    from ..io.outputs import resolve_output
    from ..tasks.superres import SuperresJob, SuperresOptions, parse_matrix

    check_device(kw.get("device", "auto"))
    options = SuperresOptions(sampler=_value(kw.get("sampler", "fast")), steps=kw.get("steps"), guidance=kw["guidance"],
                              noise=parse_noise(kw.get("noise", "auto")), samples=kw["samples"], seed=kw["seed"],
                              batch_size=kw["batch_size"], consistency=_value(kw.get("consistency", "auto")),
                              calibration=_value(kw.get("calibration", "model")))
    return SuperresJob(
        input=str(kw["input"]), output=str(resolve_output(kw["output"], _value(kw["fmt"]), kw["input"])),
        from_hw=parse_matrix(kw["from_"], "from_hw"), to_hw=parse_matrix(kw["to"], "to_hw"), fmt=_value(kw["fmt"]),
        save_samples=kw["save_samples"],
        metrics=kw["metrics"], preview=kw["preview"], overwrite=kw["overwrite"], slices=parse_slices(kw["slices"]),
        options=options,
    )


def run_superres_job(job, *, model: str | None, offline: bool, device: str, quiet: bool, json_out: bool) -> dict:
    """Check the input and outputs, load the VDM, run with progress on stderr, print the summary (table or JSON on
    stdout)."""
    from dataclasses import replace

    from ..tasks.reconstruct import resolve_device
    from ..tasks.superres import load_superres_model, prepare_superres, run_superres

    prepare_superres(job)  # input exists, outputs free and writable: before the model loads
    dev = resolve_device(check_device(device))
    job = replace(job, options=replace(job.options, device=str(dev)))  # frozen: the resolved device replaces it
    return _run_reported(lambda: load_superres_model(model, offline=offline, device=str(dev)),
                         lambda prior, info, progress: run_superres(job, prior, info, progress),
                         print_superres_table, quiet=quiet, json_out=json_out)


def print_superres_table(s: dict) -> None:
    if s.get("metrics"):
        m = s["metrics"]["mean"]
        rows = [["mrdiff", f"{m['psnr']:.2f}", f"{m['ssim']:.4f}"]]
        rows += [[name, f"{b['psnr']:.2f}", f"{b['ssim']:.4f}"] for name, b in (s.get("baselines") or {}).items()]
        print_table(console, ["method", "PSNR", "SSIM"], rows, title="mrdiff superres", no_wrap=("method", "PSNR", "SSIM"))
        say(f"PSNR/SSIM against the {s['reference']}")
    (fh, fw), (th, tw) = s["from"], s["to"]
    say(f"{Path(s['input']).name}: {s['mode']} {fh}x{fw} → {th}x{tw}, {len(s['slices'])} slice(s), "
        f"{s['sampler']} sampler, {s['steps']} steps, {s['seconds_per_slice']:.2f} s/slice → {s['output']['image']}")
    unc = s.get("uncertainty")
    if unc:
        ho = unc.get("holdout") or {}
        if unc.get("calibration_applied") == "ring" and ho.get("ratio") is not None:
            cal = unc["calibration"]
            say(f"std: calibrated by the extrapolation ring ({ho['ring']['inner'][0]}x{ho['ring']['inner'][1]} of "
                f"{ho['ring']['measured'][0]}x{ho['ring']['measured'][1]} predicts the rest): ratio {ho['ratio']:.2f}, "
                f"factor {cal['factor']:.2f}")
        else:
            say(f"std: {unc.get('calibration_applied')}")
