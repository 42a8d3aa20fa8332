"""Super-resolution benchmark on held-out images (never used for training the prior).

For each input the 128x128 reference is the image itself (128 matrix) or its k-space crop to 128 (larger
matrices, same field of view). It is degraded retrospectively to 64x64 and 32x32 by keeping the centre of its
k-space (the seed's y_0 = P^{-1}(Lambda) F x_0) and brought back to 128x128 with

  * zero-padding (sinc): k-space zero-filled outside the measured block,
  * bilinear / bicubic: torch ``interpolate`` of the low-resolution magnitude image,
  * mrdiff: the k-space-guided VDM (``mrdiff superres``), lambda = 1, and a lambda sweep (0, 0.1, 0.5, 1).

Metrics: PSNR / SSIM against the reference (data range = the reference volume's maximum, fastMRI convention),
mean over slices; seconds per slice (wall clock, this machine). Prints a markdown table, writes it to
``--out-md`` and a PNG figure (middle slice of each input and factor) to ``--png``.

    python benchmarks/superres.py --model /work/runs/score128/bundle --steps 100 \\
        --out-md docs/benchmarks_superres.md --png docs/figures/superres.png
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mrdiff_cli.metrics import volume_metrics
from mrdiff_cli.ops.operators import resize_image
from mrdiff_cli.ops.superres import measure_lowres
from mrdiff_cli.tasks.superres import SuperresOptions, baselines, load_superres_input, load_superres_model, superres_slices

DEFAULT_INPUTS = ["/work/data/val/S0_10slices.nii.gz", "/work/data/val/t1_coronal_slice.npy"]


def reference_at(vol: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
    """The input at the target matrix: itself, or its k-space crop (same FOV) when it is larger."""
    t = torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))
    if tuple(t.shape[-2:]) == tuple(hw):
        return t
    if t.shape[-2] < hw[0] or t.shape[-1] < hw[1]:
        raise SystemExit(f"input matrix {tuple(t.shape[-2:])} is smaller than the target {hw}")
    return resize_image(t, hw).abs().float()


def run(args) -> tuple[list[dict], list[tuple[str, list[tuple[str, np.ndarray]]]]]:
    model, info = load_superres_model(args.model, offline=True, device=args.device)
    to_hw = tuple(info["resolution"])
    rows: list[dict] = []
    figure_rows = []
    lambdas = sorted(set(args.lambdas) | {args.guidance})
    for path in args.inputs:
        vol, _, _ = load_superres_input(path)
        start = args.first_slice if args.first_slice < len(vol) else len(vol) // 2  # short inputs: the middle slice
        vol = vol[start : start + args.max_slices] if args.max_slices else vol[start:]
        ref = reference_at(vol, to_hw)
        n = ref.shape[0]
        ref_np = ref.numpy()
        name = Path(path).name
        for f in args.from_sizes:
            from_hw = (f, f)
            y = measure_lowres(ref, from_hw)
            label = f"{f}→{to_hw[0]}"
            panels = [("reference", ref_np[n // 2])]
            t0 = time.time()
            base = baselines(y, to_hw)
            t_base = (time.time() - t0) / n
            for meth in ("sinc", "bilinear", "bicubic"):
                m = volume_metrics(base[meth].numpy(), ref_np)["mean"]
                rows.append({"input": name, "factor": label, "method": meth if meth != "sinc" else "zero-pad (sinc)",
                             "lambda": None, "psnr": m["psnr"], "ssim": m["ssim"], "s_per_slice": t_base})
                panels.append((meth, base[meth][n // 2].numpy()))
            for lam in lambdas:
                opts = SuperresOptions(steps=args.steps, guidance=lam, samples=1, seed=args.seed,
                                       batch_size=args.batch_size, device=args.device)
                t0 = time.time()
                x, _, _ = superres_slices(model, y, to_hw, opts)
                dt = (time.time() - t0) / n
                m = volume_metrics(x.numpy(), ref_np)["mean"]
                rows.append({"input": name, "factor": label, "method": "mrdiff", "lambda": lam,
                             "psnr": m["psnr"], "ssim": m["ssim"], "s_per_slice": dt})
                panels.append((f"mrdiff l={lam:g}", x[n // 2].numpy()))
                print(f"{name} {label} mrdiff lambda={lam:g}: PSNR {m['psnr']:.2f} SSIM {m['ssim']:.4f} ({dt:.1f} s/slice)", flush=True)
            figure_rows.append((f"{name} {f}->{to_hw[0]}", panels))  # ASCII: PIL's default font has no arrow
    return rows, figure_rows


def markdown(rows: list[dict], args, info_line: str) -> str:
    lines = [
        f"Super-resolution, held-out inputs, {args.steps} VDM steps, seed {args.seed}; {info_line}",
        "",
        "| input | matrix | method | λ | PSNR (dB) | SSIM | s/slice |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lam = "" if r["lambda"] is None else f"{r['lambda']:g}"
        lines.append(f"| {r['input']} | {r['factor']} | {r['method']} | {lam} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['s_per_slice']:.3f} |")
    return "\n".join(lines) + "\n"


def figure(path: Path, figure_rows) -> None:
    from PIL import Image, ImageDraw

    from mrdiff_cli.io.png import render_preview

    imgs = []
    for title, panels in figure_rows:
        row = render_preview(panels)
        canvas = Image.new("L", (row.width, row.height + 14), color=0)
        canvas.paste(row, (0, 14))
        ImageDraw.Draw(canvas).text((2, 1), title, fill=255)
        imgs.append(canvas)
    width = max(i.width for i in imgs)
    out = Image.new("L", (width, sum(i.height for i in imgs)), color=0)
    y = 0
    for i in imgs:
        out.paste(i, (0, y))
        y += i.height
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*", default=DEFAULT_INPUTS, help="held-out images (NIfTI / DICOM / .npy)")
    ap.add_argument("--model", default=None, help="model bundle (default: the bundled VDM / score model)")
    ap.add_argument("--from-sizes", type=int, nargs="+", default=[64, 32])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--guidance", type=float, default=1.0, help="lambda of the main mrdiff row")
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1, 0.5, 1.0])
    ap.add_argument("--max-slices", type=int, default=0, help="slices per input (0 = all)")
    ap.add_argument("--first-slice", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--out-md", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, fig = run(args)
    info_line = f"{platform.processor() or platform.machine()}, device {args.device}, torch {torch.__version__}"
    md = markdown(rows, args, info_line)
    print(md)
    if args.out_md:
        args.out_md.parent.mkdir(parents=True, exist_ok=True)
        args.out_md.write_text(md)
    if args.png:
        figure(args.png, fig)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
