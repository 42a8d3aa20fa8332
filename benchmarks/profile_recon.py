"""Profile the default reconstruction (fast sampler, SENSE, 21 NFE) against one bare network evaluation.

Per-NFE overhead = (wall time of one ``Reconstructor.reconstruct`` call on ``--slices`` slices) / NFE, divided by
the time of one bare network evaluation of the same model at the same batch (the slices), precision and
threads. Bare evaluations are timed right before and right after the reconstruction in the same process (the
mean of the two medians is used), so a busy, shared machine inflates both sides alike.

    python benchmarks/profile_recon.py --matrix 128 --coils 8
    python benchmarks/profile_recon.py --matrix 256 --coils 16 --cprofile 25

``--cprofile N`` also prints the N most expensive functions (cumulative) of one more reconstruction run; the
per-phase breakdown (coil maps, initial CG-SENSE, network, data consistency, rest) is always printed. Peak
RSS of the process is reported (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import platform
import pstats
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

TUNE_VOLUME = "/work/data/corpus/tune/itk_kmeans_t1.nii.gz"


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports ru_maxrss in KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


def simulated_scan(matrix: int, coils: int, slices: int, volume: str = TUNE_VOLUME, seed: int = 7,
                   accel: float = 8.0, mask_kind: str = "poisson"):
    """Middle slices of a tune volume → (full k-space (S, C, H, W), mask (H, W), reference (S, H, W))."""
    from mrdiff_cli.io.detect import load_image
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.tasks.simulate import simulate_volume

    vol, geom = load_image(volume)
    mid = vol.shape[0] // 2
    sel = vol[max(0, mid - slices // 2): max(0, mid - slices // 2) + slices]
    sim = simulate_volume(sel, geom, matrix=matrix, coils=coils, snr_db=30.0, seed=seed)
    mask = make_mask(mask_kind, (matrix, matrix), accel, seed=11).mask
    return sim.kspace, mask, sim.reference


def resolve_autocast(precision: str) -> str | None:
    if precision == "fp32":
        return None
    if precision == "bf16":
        return "bf16"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def bare_eval_seconds(prior, batch: int, hw: tuple[int, int], autocast: str | None, repeats: int = 5
                      ) -> tuple[float, float]:
    """Median (wall, process CPU) time of one network evaluation on (batch, channels, H, W), the way the sampler
    calls it. With one thread, CPU time does not count the time other processes hold the cores."""
    from mrdiff_cli.samplers.adapters import batched_real_denoise, prior_channels

    dt = {"bf16": torch.bfloat16, None: None}[autocast]
    ch = prior_channels(prior)  # 2 for the complex prior: (batch, 2, H, W)
    x = torch.randn(batch, *((ch,) if ch > 1 else ()), *hw, generator=torch.Generator().manual_seed(0))
    batched_real_denoise(prior, x, 0.5, batch, dt, channels=ch)  # warm-up (oneDNN primitive cache)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        batched_real_denoise(prior, x, 0.5, batch, dt, channels=ch)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


class PhaseTimer:
    """Wall time per phase by wrapping module functions (restored on exit)."""

    def __init__(self):
        self.t: dict[str, float] = {}
        self.n: dict[str, int] = {}
        self._undo = []

    def wrap(self, owner, name: str, label: str):
        fn = getattr(owner, name)

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.t[label] = self.t.get(label, 0.0) + time.perf_counter() - t
                self.n[label] = self.n.get(label, 0) + 1

        setattr(owner, name, timed)
        self._undo.append((owner, name, fn))

    def restore(self):
        for owner, name, fn in reversed(self._undo):
            setattr(owner, name, fn)
        self._undo.clear()


def phase_timer() -> PhaseTimer:
    import mrdiff_cli.samplers.adapters as adapters
    import mrdiff_cli.samplers.dc as dc
    import mrdiff_cli.samplers.posterior as posterior
    import mrdiff_cli.tasks.reconstruct as rec

    pt = PhaseTimer()
    pt.wrap(rec.Reconstructor, "estimate_maps", "coil maps (ESPIRiT)")
    pt.wrap(posterior, "cg_sense", "initial CG-SENSE")  # the SENSE start (samplers.posterior.SenseProblem)
    pt.wrap(rec, "cg_sense", "initial CG-SENSE")  # the --method sense baseline
    pt.wrap(adapters, "batched_real_denoise", "network (incl. chunking)")
    pt.wrap(dc.ProximalDC, "__call__", "data consistency (CG)")
    return pt


def run_once(prior, opts, k, mask, mode: str):
    from mrdiff_cli.tasks.reconstruct import Reconstructor

    rec = Reconstructor(prior, opts)
    t, c = time.perf_counter(), time.process_time()
    res = rec.reconstruct(k, mask, mode)
    rec.cpu_seconds = time.process_time() - c
    return res, time.perf_counter() - t, rec


def profile(args) -> dict:
    from mrdiff_cli.metrics import volume_metrics
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, nfe

    torch.set_num_threads(args.threads)
    autocast = resolve_autocast(args.precision)
    prior, _ = load_prior(args.model, "score", offline=True)
    from mrdiff_cli.tasks.resources import prepare_prior

    prepare_prior(prior, "cpu", args.channels_last)  # the bare evaluation runs the reconstruction's model
    k, mask, ref = simulated_scan(args.matrix, args.coils, args.slices)
    hw = (args.matrix, args.matrix)
    opts_kw = dict(batch_size=max(args.batch_size, args.slices), autocast=autocast, seed=0,
                   channels_last=args.channels_last)
    if args.compress is not None:
        opts_kw["compress_coils"] = args.compress
    opts = ReconOptions(**opts_kw)
    mode = "sense"
    n = nfe(opts, mode)
    with torch.inference_mode() if args.inference_mode else contextlib.nullcontext():
        bare0 = bare_eval_seconds(prior, args.slices, hw, autocast)
        pt = phase_timer()
        try:
            res, wall, rec = run_once(prior, opts, k, mask, mode)
        finally:
            pt.restore()
        bare1 = bare_eval_seconds(prior, args.slices, hw, autocast)
        cpu = rec.cpu_seconds
        prof_text = None
        if args.cprofile:
            pr = cProfile.Profile()
            pr.enable()
            run_once(prior, opts, k, mask, mode)
            pr.disable()
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(args.cprofile)
            prof_text = s.getvalue()
    bare = 0.5 * (bare0[0] + bare1[0])
    bare_cpu = 0.5 * (bare0[1] + bare1[1])
    psnr = volume_metrics(res.images, ref)["mean"]["psnr"]
    phases = {name: {"seconds": round(v, 3), "calls": pt.n[name], "share": round(v / wall, 3)} for name, v in pt.t.items()}
    rest = wall - sum(pt.t.values())
    phases["rest (sampler arithmetic, phase, support, bookkeeping)"] = {"seconds": round(rest, 3), "calls": 1,
                                                                         "share": round(rest / wall, 3)}
    out = {
        "matrix": args.matrix, "coils": args.coils, "slices": args.slices, "nfe": n, "precision": autocast or "fp32",
        "threads": torch.get_num_threads(), "compress_coils": args.compress, "channels_last": args.channels_last is not False, "compression": getattr(rec, "compression", None),
        "wall_s": round(wall, 3), "per_nfe_s": round(wall / n, 4), "bare_eval_s": round(bare, 4),
        "bare_eval_before_after_s": [round(bare0[0], 4), round(bare1[0], 4)],
        "overhead_ratio": round(wall / n / bare, 3),
        # process CPU time (one thread): not inflated by other processes holding the cores
        "cpu_s": round(cpu, 3), "bare_eval_cpu_s": round(bare_cpu, 4), "overhead_ratio_cpu": round(cpu / n / bare_cpu, 3),
        # the same ratio against the network calls timed inside this very run (robust to load changes)
        "overhead_ratio_inloop": round(wall / pt.t["network (incl. chunking)"], 3),
        "psnr_db": round(psnr, 3), "phases": phases,
        "peak_rss_mb": round(peak_rss_mb(), 1), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
    }
    if prof_text:
        out["cprofile"] = prof_text
    return out


def compression_quality(args) -> list[dict]:
    """PSNR with coil compression off vs the default (auto) on the tune volumes, same seed, same slices."""
    from mrdiff_cli.metrics import volume_metrics
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    torch.set_num_threads(args.threads)
    autocast = resolve_autocast(args.precision)
    prior, _ = load_prior(args.model, "score", offline=True)
    rows = []
    for vol in args.tune:
        for coils in args.quality_coils:
            k, mask, ref = simulated_scan(args.matrix, coils, args.slices, volume=vol)
            row = {"volume": Path(vol).name, "matrix": args.matrix, "coils": coils, "slices": args.slices}
            variants = [("off", 0)] + [(str(n), n) for n in args.quality_n if 2 <= n < coils]
            variants += [] if args.quality_n else [("auto", None)]
            for method in args.quality_methods:
                for label, cc in variants:
                    rec = Reconstructor(prior, ReconOptions(method=method, batch_size=max(4, args.slices),
                                                            autocast=autocast, compress_coils=cc))
                    t = time.perf_counter()
                    img = rec.reconstruct(k, mask, "sense").images
                    row[f"{method}_{label}_psnr"] = round(volume_metrics(img, ref)["mean"]["psnr"], 3)
                    row[f"{method}_{label}_s"] = round(time.perf_counter() - t, 2)
                    if label != "off":
                        row[f"virtual_coils_{label}"] = rec.compression["virtual_coils"]
                        row[f"retained_min_{label}"] = round(rec.compression["retained_min"], 5)
                        row[f"{method}_{label}_delta_db"] = round(row[f"{method}_{label}_psnr"] - row[f"{method}_off_psnr"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


_CHILD = """
import resource, sys
from mrdiff_cli.cli.main import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print("PEAK_RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
"""


def memory_check(args) -> list[dict]:
    """Peak RSS of `mrdiff reconstruct` (own process each) on files with few and many slices, same batch size:
    memory should be flat in the number of slices."""
    import subprocess
    import tempfile

    from mrdiff_cli.io.detect import load_image
    from mrdiff_cli.tasks.simulate import simulate_volume, write_simulated

    vol, geom = load_image(TUNE_VOLUME)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.memory_slices:
            mid = vol.shape[0] // 2
            sim = simulate_volume(vol[mid - n // 2: mid - n // 2 + n], geom, matrix=args.matrix, coils=args.coils,
                                  snr_db=30.0, seed=7)
            src = write_simulated(sim, Path(tmp) / f"s{n}.h5", "fastmri")
            cmd = [sys.executable, "-c", _CHILD, "reconstruct", str(src), "-o", str(Path(tmp) / f"o{n}.nii.gz"),
                   "--mask", "poisson", "--accel", "8", "--steps", str(args.memory_steps), "--batch-size",
                   str(args.batch_size), "--threads", str(args.threads), "--quiet", "--offline", "--overwrite"]
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True)
            peak = [float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("PEAK_RSS_MB")]
            row = {"slices": n, "matrix": args.matrix, "coils": args.coils, "batch_size": args.batch_size,
                   "steps": args.memory_steps, "peak_rss_mb": round(peak[0], 1) if peak else None,
                   "seconds": round(time.perf_counter() - t, 1), "rc": out.returncode}
            if out.returncode:
                row["stderr"] = out.stderr[-500:]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrix", type=int, default=128)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--slices", type=int, default=4, help="slices reconstructed in one batch (CPU default batch: 4)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--compress", type=int, default=None, help="virtual coils (0: off; default: the library's)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--nchw", dest="channels_last", action="store_const", const=False, default=None,
                    help="keep the network in NCHW (default: the library's choice, NHWC on the CPU)")
    ap.add_argument("--inference-mode", action="store_true", help="run under torch.inference_mode()")
    ap.add_argument("--cprofile", type=int, default=0, metavar="N", help="print the N top cumulative functions")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--quality", action="store_true",
                    help="instead: PSNR with coil compression off vs auto on the tune volumes (--tune, --quality-coils)")
    ap.add_argument("--tune", nargs="+", default=["/work/data/corpus/tune/dipy_S0_10slices.nii.gz", TUNE_VOLUME])
    ap.add_argument("--quality-coils", nargs="+", type=int, default=[16, 20])
    ap.add_argument("--quality-n", nargs="*", type=int, default=[], help="virtual coil counts to compare (default: auto)")
    ap.add_argument("--quality-methods", nargs="+", default=["diffusion", "sense"])
    ap.add_argument("--memory", action="store_true",
                    help="instead: peak RSS of `mrdiff reconstruct` on --memory-slices slices at --batch-size")
    ap.add_argument("--memory-slices", nargs="+", type=int, default=[4, 32])
    ap.add_argument("--memory-steps", type=int, default=2)
    args = ap.parse_args(argv)
    if args.memory:
        rows = memory_check(args)
        if args.out_json:
            Path(args.out_json).write_text(json.dumps(rows, indent=1))
        return {"memory": rows}
    if args.quality:
        rows = compression_quality(args)
        if args.out_json:
            Path(args.out_json).write_text(json.dumps(rows, indent=1))
        return {"quality": rows}
    out = profile(args)
    text = out.pop("cprofile", None)
    print(json.dumps(out, indent=1))
    if text:
        print(text)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
