"""Super-resolution benchmark on held-out volumes: mrdiff vs sinc (k-space zero-padding) vs k-space-aligned bicubic.

Volumes come from the corpus built by ``benchmarks/corpus.py`` (``--split tune`` to choose settings,
``--split report`` for the docs tables only). Each volume's axial slices are resampled to the target voxel size
(2 mm → 128², 1 mm → 256², same 256 mm FOV) and normalised to their 99th percentile (the reference x). The
low-resolution input is the *magnitude* image of the centre k-space block, y_0 = P^{-1}(Lambda) F x (+ complex
Gaussian noise at ``--snr`` dB, relative to the mean reference intensity inside the head), as a magnitude
NIfTI from a scanner would hold it. Methods:

  * sinc: the zero-padded k-space of the low-resolution magnitude image;
  * bicubic: bicubic interpolation of the low-resolution image on the k-space-aligned grid (low-res pixel j sits
    at high-res position (j - h/2) * H/h + H/2, the grid the FFT convention implies; torch's align_corners=False
    grid is shifted by half a high-res pixel against it);
  * mrdiff: ``tasks.superres.superres_slices`` with the given sampler settings (``--config`` repeatable:
    ``name:key=value,key=value`` with SuperresOptions fields).

Metrics: PSNR inside the head mask (reference > 5 % of its 99th percentile, holes filled by a 7-pixel closing;
data range = the slice's reference maximum) and whole-slice SSIM (``mrdiff_cli.metrics.ssim``); mean over
slices. Prints a markdown table; ``--json`` writes every number; ``--png`` a figure with zoomed crops.

    python benchmarks/superres.py --split tune --factors 64:128,32:128 --snr inf,35 \\
        --config fast20:sampler=fast,steps=20 --config vdm100:sampler=vdm,steps=100 --json /tmp/sr_tune.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from corpus import head_mask, load_split, masked_psnr
from mrdiff_cli.metrics import ssim
from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.ops.superres import measure_lowres, zero_pad_upsample
from mrdiff_cli.tasks.superres import SuperresOptions, load_superres_model, superres_slices



def degrade(ref: torch.Tensor, low: tuple[int, int], snr_db: float, seed: int) -> torch.Tensor:
    """Low-resolution magnitude image → its k-space (what `mrdiff superres` computes from a magnitude input)."""
    img = ifft2c(measure_lowres(ref, low))
    if math.isfinite(snr_db):
        g = torch.Generator().manual_seed(seed)
        level = float(ref[head_mask(ref)].mean()) / 10 ** (snr_db / 20)
        img = img + level * torch.complex(torch.randn(img.shape, generator=g), torch.randn(img.shape, generator=g)) / math.sqrt(2)
    return fft2c(img.abs().to(torch.complex64))


def bicubic_aligned(y: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    low = ifft2c(y).abs()[:, None].float()
    h, w = low.shape[-2:]
    H, W = out_hw
    ys = ((torch.arange(H) - H // 2) * h / H + h // 2 + 0.5) / h * 2 - 1  # grid_sample, align_corners=False
    xs = ((torch.arange(W) - W // 2) * w / W + w // 2 + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None].expand(low.shape[0], H, W, 2)
    return F.grid_sample(low, grid, mode="bicubic", padding_mode="border", align_corners=False)[:, 0].clamp_min(0)


def parse_config(spec: str) -> tuple[str, dict]:
    name, _, kv = spec.partition(":")
    opts = {}
    for item in filter(None, kv.split(",")):
        k, v = item.split("=")
        opts[k] = v if k in ("sampler", "noise", "consistency") else (float(v) if "." in v or "e" in v else int(v))
    return name, opts


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    model, info = load_superres_model(args.model, offline=True)
    configs = [parse_config(c) for c in args.config]
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}",
                     "model": str(info.get("path")), "split": args.split, "rows": []}
    for factor in args.factors.split(","):
        lo, hi = (int(v) for v in factor.split(":"))
        voxel = 256.0 / hi
        data = load_split(args.split, hi, voxel, args.per_volume)
        for snr in [float(s) for s in args.snr.split(",")]:
            for vol, ref in data.items():
                mask = head_mask(ref)
                y = degrade(ref, (lo, lo), snr, seed=zlib.crc32(f"{vol}:{lo}:{hi}".encode()))  # stable across runs
                row = {"volume": vol, "factor": f"{lo}->{hi}", "snr_db": snr, "n": len(ref)}
                methods = {"sinc": zero_pad_upsample(y, (hi, hi)).clamp_min(0), "bicubic": bicubic_aligned(y, (hi, hi))}
                for name, o in configs:
                    t0 = time.time()
                    mean, _, _ = superres_slices(model, y, (hi, hi), SuperresOptions(batch_size=args.batch_size, **o))
                    row[f"{name}_s_per_slice"] = (time.time() - t0) / len(ref)
                    methods[name] = mean
                for name, x in methods.items():
                    row[name] = {"psnr": float(np.mean(masked_psnr(x, ref, mask))),
                                 "ssim": float(np.mean([ssim(a.numpy(), r.numpy()) for a, r in zip(x, ref)]))}
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
                if args.png and vol == args.png_volume:
                    results.setdefault("figure", []).append((f"{vol} {lo}->{hi} snr {snr:g}", {k: v[len(v) // 2] for k, v in methods.items()}, ref[len(ref) // 2]))
    return results


def table(results: dict, names: list[str]) -> str:
    lines = ["| factor | SNR | volume | " + " | ".join(names) + " |", "|" + "---|" * (3 + len(names))]
    for r in results["rows"]:
        snr = "noise-free" if not math.isfinite(r["snr_db"]) else f"{r['snr_db']:g} dB"
        cells = [f"{r[n]['psnr']:.2f} / {r[n]['ssim']:.3f}" for n in names]
        lines.append(f"| {r['factor']} | {snr} | {r['volume']} ({r['n']} sl.) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict, path: str) -> None:
    from PIL import Image

    tiles = []
    for title, methods, ref in results.get("figure", []):
        row = []
        H = ref.shape[-1]
        c0, c1 = H // 4, H // 4 + H // 3
        for img in list(methods.values()) + [ref]:
            full = (img / max(float(ref.max()), 1e-6)).clamp(0, 1).numpy()
            crop = np.kron(full[c0:c1, c0:c1], np.ones((3, 3)))[:H, :H]
            crop = np.pad(crop, ((0, H - crop.shape[0]), (0, H - crop.shape[1])))
            row.append(np.concatenate([full, crop], 0))
        tiles.append(np.concatenate(row, 1))
    if tiles:
        w = max(t.shape[1] for t in tiles)
        img = np.concatenate([np.pad(t, ((0, 4), (0, w - t.shape[1]))) for t in tiles], 0)
        Image.fromarray((img * 255).astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--factors", default="64:128,32:128")
    ap.add_argument("--snr", default="inf,35")
    ap.add_argument("--per-volume", type=int, default=4)
    ap.add_argument("--config", action="append", default=[])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--png")
    ap.add_argument("--png-volume", default="")
    a = ap.parse_args()
    if not a.config:
        a.config = ["mrdiff:sampler=fast"]
    res = run(a)
    names = ["sinc", "bicubic"] + [parse_config(c)[0] for c in a.config]
    print(table(res, names))
    fig = res.pop("figure", None)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    if a.png:
        figure({"figure": fig or []}, a.png)


if __name__ == "__main__":
    main()
