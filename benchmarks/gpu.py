"""Batched reconstruction throughput on one device (GPU, or the CPU with --tiny): one command, JSON + markdown.

    python benchmarks/gpu.py --out-json docs/figures/gpu.json --out-md docs/benchmarks_gpu.md   # ~3-5 min on a GPU
    python benchmarks/gpu.py --tiny                                                              # seconds, CPU

Measures, with the bundled score model and the CLI's default precision (bf16 where the device runs it natively):

1. slices/s of the fast (21 NFE) and pc (``--pc-steps``, 2n-1 NFE) samplers, SENSE mode, at 128²/8 coils and
   320²/16 coils (compressed to 10 virtual coils by default, as the CLI does), batch 1 / 8 / 32 slices, and
   the cost of a batch relative to one slice (goal: 8 slices <= 3x one slice);
2. K = 8 posterior samples batched (one sampler run on 8 x the batch) against K x 1 sequential runs, and
   against one sample (goal: K = 8 <= 2.5x one sample);
3. bf16 against fp32: PSNR of the same slice, same seed (the difference the precision makes);
4. peak memory of every row: torch.cuda.max_memory_allocated on a GPU (reset per row), peak RSS on the CPU
   (a process-wide high-water mark: it only grows from row to row).

Data: the bundled example T1 slice (``mrdiff_cli/data``, present wherever the package is), simulated as
raw k-space with smooth phase, birdcage coils, 30 dB noise, resampled to each matrix; x8 Poisson mask. The
k-space, mask and everything the sampler touches (coil maps, FFTs, CG, masks) live on the device during the
timed loop. Timings use torch.cuda.synchronize; each configuration runs once after one warm-up per size.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "mrdiff_cli" / "data" / "example_t1.nii.gz"

FULL = {"sizes": [(128, 8), (320, 16)], "batches": [1, 8, 32], "pc_steps": 50, "fast_steps": None, "K": 8,
        "unc_size": (128, 8)}
TINY = {"sizes": [(32, 4)], "batches": [1, 2], "pc_steps": 2, "fast_steps": 2, "K": 2, "unc_size": (32, 4)}


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        return f"{p.name} ({p.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}, torch {torch.__version__}"
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def scan(matrix: int, coils: int, slices: int, dev: torch.device, seed: int = 7):
    """(k-space (S, C, H, W) on dev, mask (H, W) on dev, reference (S, H, W) numpy): the example slice repeated
    with a different phase/noise draw per slice."""
    from mrdiff_cli.io.detect import load_image
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.tasks.simulate import simulate_volume

    img, geom = load_image(str(EXAMPLE))
    vol = np.repeat(np.asarray(img[:1], np.float32), slices, axis=0)
    sim = simulate_volume(vol, geom, matrix=matrix, coils=coils, snr_db=30.0, seed=seed)
    mask = make_mask("poisson", (matrix, matrix), 8.0, seed=11).mask
    k = torch.as_tensor(sim.kspace).to(dev)
    return k, torch.as_tensor(mask).to(dev), sim.reference


def timed_recon(prior, opts, k, mask, dev, maps=None):
    from mrdiff_cli.tasks.reconstruct import Reconstructor

    rec = Reconstructor(prior, opts)
    sync(dev)
    reset_peak(dev)
    t = time.perf_counter()
    res = rec.reconstruct(k, mask, "sense", maps=maps)
    sync(dev)
    return res, time.perf_counter() - t


def peak_mb(dev: torch.device) -> float:
    from mrdiff_cli.tasks.resources import peak_memory_mb

    return round(peak_memory_mb(dev), 1)


def psnr(img: np.ndarray, ref: np.ndarray) -> float:
    from mrdiff_cli.metrics import volume_metrics

    return float(volume_metrics(img, ref[: img.shape[0]])["mean"]["psnr"])


def run(args) -> dict:
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, nfe, resolve_device
    from mrdiff_cli.tasks.recon_job import native_bf16

    cfg = TINY if args.tiny else FULL
    dev = resolve_device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    autocast = None if args.precision == "fp32" else (args.precision if args.precision != "auto" else native_bf16(dev))
    prior, info = load_prior(args.model, "score", offline=True, device=str(dev))
    t_start = time.perf_counter()
    out = {"device": device_name(dev), "device_type": dev.type, "precision": autocast or "fp32",
           "model": info.get("name"), "tiny": bool(args.tiny), "throughput": [], "uncertainty": {}, "precision_psnr": {}}

    def opts(**kw):
        base = dict(batch_size=max(cfg["batches"]) * cfg["K"], autocast=autocast, seed=0)
        if cfg["fast_steps"] is not None and kw.get("sampler", "fast") == "fast":
            base["steps"] = cfg["fast_steps"]
        base.update(kw)
        return ReconOptions(**base)

    # 1. throughput
    for matrix, coils in cfg["sizes"]:
        k_all, mask, ref = scan(matrix, coils, max(cfg["batches"]), dev)
        timed_recon(prior, opts(steps=2), k_all[:1], mask, dev)  # warm-up: kernels, cuFFT plans, allocator
        for sampler in ("fast", "pc"):
            one = None
            for b in cfg["batches"]:
                o = opts(sampler=sampler, steps=cfg["pc_steps"] if sampler == "pc" else opts().steps)
                res, sec = timed_recon(prior, o, k_all[:b], mask, dev)
                one = sec if b == 1 else one
                row = {"sampler": sampler, "matrix": matrix, "coils": coils, "batch": b, "nfe": nfe(o, "sense"),
                       "seconds": round(sec, 4), "slices_per_s": round(b / sec, 3),
                       "cost_vs_one_slice": round(sec / one, 3) if one else None,
                       "peak_mb": peak_mb(dev), "psnr": round(psnr(res.images, ref), 2)}
                out["throughput"].append(row)
                print(json.dumps(row), flush=True)
    # 2. uncertainty: K samples batched vs K x 1
    matrix, coils = cfg["unc_size"]
    K = cfg["K"]
    k1, mask, ref = scan(matrix, coils, 1, dev)
    _, t_one = timed_recon(prior, opts(samples=1, batch_size=1), k1, mask, dev)
    _, t_batched = timed_recon(prior, opts(samples=K, batch_size=K), k1, mask, dev)
    mem_batched = peak_mb(dev)
    _, t_seq = timed_recon(prior, opts(samples=K, batch_size=1), k1, mask, dev)
    out["uncertainty"] = {"K": K, "matrix": matrix, "coils": coils, "one_sample_s": round(t_one, 4),
                          "K_batched_s": round(t_batched, 4), "K_sequential_s": round(t_seq, 4),
                          "batched_vs_one": round(t_batched / t_one, 3),
                          "sequential_vs_batched": round(t_seq / t_batched, 3), "peak_mb_batched": mem_batched}
    print(json.dumps(out["uncertainty"]), flush=True)
    # 3. bf16 vs fp32 (same slice, same seed)
    kp, mask, ref = scan(cfg["unc_size"][0], cfg["unc_size"][1], 2, dev)
    r32, _ = timed_recon(prior, opts(autocast=None), kp, mask, dev)
    r16, _ = timed_recon(prior, opts(autocast="bf16"), kp, mask, dev)
    p32, p16 = psnr(r32.images, ref), psnr(r16.images, ref)
    out["precision_psnr"] = {"fp32": round(p32, 3), "bf16": round(p16, 3), "bf16_minus_fp32_db": round(p16 - p32, 3)}
    print(json.dumps(out["precision_psnr"]), flush=True)
    out["total_s"] = round(time.perf_counter() - t_start, 1)
    return out


def to_markdown(r: dict, argv: list[str]) -> str:
    lines = [f"Command: `python benchmarks/gpu.py {' '.join(argv)}`  ",
             f"Device: {r['device']}; precision {r['precision']}; model {r['model']}; total {r['total_s']} s.", "",
             "| sampler | matrix | coils | batch | NFE | s/batch | slices/s | cost vs 1 slice | peak MiB | PSNR (dB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t in r["throughput"]:
        lines.append(f"| {t['sampler']} | {t['matrix']}² | {t['coils']} | {t['batch']} | {t['nfe']} | {t['seconds']:.3f} | "
                     f"{t['slices_per_s']:.2f} | {t['cost_vs_one_slice']:.2f}× | {t['peak_mb']:.0f} | {t['psnr']:.2f} |")
    u = r["uncertainty"]
    lines += ["", f"Uncertainty, {u['matrix']}²/{u['coils']} coils: one sample {u['one_sample_s']:.3f} s; K = {u['K']} "
              f"batched {u['K_batched_s']:.3f} s (**{u['batched_vs_one']:.2f}×** one sample, peak {u['peak_mb_batched']:.0f} MiB); "
              f"K × 1 sequential {u['K_sequential_s']:.3f} s ({u['sequential_vs_batched']:.2f}× the batched run).", ""]
    p = r["precision_psnr"]
    lines.append(f"Precision: PSNR fp32 {p['fp32']:.2f} dB, bf16 {p['bf16']:.2f} dB (bf16 − fp32 = {p['bf16_minus_fp32_db']:+.3f} dB).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (32², 4 coils, batch 1/2, 2 steps): a CPU smoke run")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (CPU runs only)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--out-md", default=None)
    args = ap.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    r = run(args)
    md = to_markdown(r, argv)
    print(md)
    if args.out_json:
        Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_json).write_text(json.dumps(r, indent=1))
    if args.out_md:
        Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_md).write_text(md)
    return r


if __name__ == "__main__":
    main()
