"""CPU time per slice against matrix size and coil count: mrdiff's default reconstruction beside L1-wavelet CS.

    python benchmarks/scaling.py --png docs/figures/scaling.png --out-json docs/figures/scaling.json

One slice per point (the middle slice of a tune volume, simulated at each matrix and coil count, x8 Poisson),
one torch thread, the CLI's default precision. mrdiff: fast sampler, 21 NFE, SENSE with ESPIRiT maps (coil
compression auto: above 12 coils to max(10, ceil(C/2)) virtual coils), single-coil mode for one coil; the time
includes the coil maps. CS: sigpy ``L1WaveletRecon`` (60 iterations, the same ESPIRiT maps on the same
(compressed) coils, lambda = 1e-3 x the 99th percentile of the zero-filled image; time of the solver only).
On a shared machine absolute times are inflated; both methods ran in the same process, point after point.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from profile_recon import TUNE_VOLUME, peak_rss_mb, resolve_autocast, simulated_scan  # noqa: E402


def cs_seconds(y: np.ndarray, maps: np.ndarray, mask: np.ndarray, lam: float, iters: int) -> tuple[float, np.ndarray]:
    import sigpy.mri.app as app

    t = time.perf_counter()
    x = app.L1WaveletRecon(y, maps, lam, weights=mask, max_iter=iters, show_pbar=False).run()
    return time.perf_counter() - t, np.abs(np.asarray(x))


def run(args) -> list[dict]:
    from mrdiff_cli.metrics import volume_metrics
    from mrdiff_cli.ops.compress import apply_compression, compression_matrices, resolve_virtual_coils
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor, choose_coil_mode, zero_filled

    torch.set_num_threads(args.threads)
    autocast = resolve_autocast(args.precision)
    prior, _ = load_prior(args.model, "score", offline=True)
    rows = []
    for matrix in args.matrices:
        for coils in args.coils:
            k, mask, ref = simulated_scan(matrix, coils, 1, volume=args.volume)
            mode = choose_coil_mode("auto", coils)
            rec = Reconstructor(prior, ReconOptions(batch_size=4, autocast=autocast, steps=args.steps))
            t = time.perf_counter()
            img = rec.reconstruct(k, mask, mode).images
            t_mr = time.perf_counter() - t
            row = {"matrix": matrix, "coils": coils, "virtual_coils": getattr(rec, "compression", {}).get("virtual_coils", coils),
                   "mrdiff_s": round(t_mr, 2), "mrdiff_psnr": round(volume_metrics(img, ref)["mean"]["psnr"], 2)}
            if not args.no_cs:
                y = torch.as_tensor(k * mask).to(torch.complex64)
                m = torch.as_tensor(mask)
                if coils > 1:
                    n = resolve_virtual_coils(None, coils)
                    if n < coils:
                        y = apply_compression(y, compression_matrices(y, n)[0])
                    maps = rec.estimate_maps(y, m).numpy()[0]
                else:
                    maps = np.ones((1, matrix, matrix), np.complex64)
                scale = float(np.percentile(zero_filled(y).numpy()[0], 99))
                t_cs, x = cs_seconds(y.numpy()[0], maps, mask, 1e-3 * scale, args.cs_iters)
                row.update({"cs_s": round(t_cs, 2), "cs_psnr": round(volume_metrics(x[None], ref)["mean"]["psnr"], 2)})
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def plot(rows: list[dict], path: str, title: str) -> None:
    """Log-y line plot with PIL (no matplotlib dependency): seconds per slice vs matrix, a colour per coil count,
    solid = mrdiff, dashed = CS."""
    import math

    from PIL import Image, ImageDraw

    W, H, L, R, T, B = 760, 470, 70, 200, 34, 50
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    mats = sorted({r["matrix"] for r in rows})
    vals = [r[k] for r in rows for k in ("mrdiff_s", "cs_s") if r.get(k)]
    lo, hi = math.floor(math.log10(max(min(vals), 1e-3))), math.ceil(math.log10(max(vals)))
    hi = hi if hi > lo else lo + 1

    def xy(m: float, v: float) -> tuple[float, float]:
        fx = (m - mats[0]) / max(1, mats[-1] - mats[0]) if len(mats) > 1 else 0.5
        fy = (math.log10(max(v, 10.0**lo)) - lo) / (hi - lo)
        return L + fx * (W - L - R), H - B - fy * (H - T - B)

    d.rectangle([L, T, W - R, H - B], outline="black")
    for e in range(lo, hi + 1):
        _, y = xy(mats[0], 10.0**e)
        d.line([L, y, W - R, y], fill=(225, 225, 225))
        d.text((8, y - 6), f"{10.0**e:g} s", fill="black")
    for m in mats:
        x, _ = xy(m, 10.0**lo)
        d.line([x, T, x, H - B], fill=(235, 235, 235))
        d.text((x - 10, H - B + 6), f"{m}", fill="black")
    d.text((L + (W - L - R) // 2 - 60, H - 20), "matrix (N x N)", fill="black")
    d.text((L, 10), title, fill="black")
    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
    for i, c in enumerate(sorted({r["coils"] for r in rows})):
        col = colors[i % len(colors)]
        rs = sorted((r for r in rows if r["coils"] == c), key=lambda r: r["matrix"])
        for key, dashed in (("mrdiff_s", False), ("cs_s", True)):
            pts = [xy(r["matrix"], r[key]) for r in rs if r.get(key)]
            for a, b in zip(pts, pts[1:]):
                if dashed:
                    n = 12
                    for k in range(0, n, 2):
                        p0 = (a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n)
                        p1 = (a[0] + (b[0] - a[0]) * (k + 1) / n, a[1] + (b[1] - a[1]) * (k + 1) / n)
                        d.line([p0, p1], fill=col, width=2)
                else:
                    d.line([a, b], fill=col, width=3)
            for x, y in pts:
                (d.rectangle if dashed else d.ellipse)([x - 4, y - 4, x + 4, y + 4], fill=col)
        ly = T + 10 + 36 * i
        d.line([W - R + 12, ly, W - R + 40, ly], fill=col, width=3)
        d.text((W - R + 46, ly - 6), f"mrdiff, {c} coil{'s' if c > 1 else ''}", fill="black")
        for k in range(0, 28, 8):
            d.line([W - R + 12 + k, ly + 16, W - R + 16 + k, ly + 16], fill=col, width=2)
        d.text((W - R + 46, ly + 10), f"CS, {c} coil{'s' if c > 1 else ''}", fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def to_markdown(rows: list[dict], argv: list[str]) -> str:
    lines = [f"Command: `python benchmarks/scaling.py {' '.join(argv)}`  ",
             f"Machine: {platform.machine()} CPU (shared), 1 torch thread, torch {torch.__version__}; peak RSS {peak_rss_mb():.0f} MiB.", "",
             "| matrix | coils | virtual coils | mrdiff s/slice | mrdiff PSNR | CS s/slice | CS PSNR |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['matrix']}² | {r['coils']} | {r['virtual_coils']} | {r['mrdiff_s']:.1f} | {r['mrdiff_psnr']:.2f} | "
                     f"{r.get('cs_s', float('nan')):.1f} | {r.get('cs_psnr', float('nan')):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrices", nargs="+", type=int, default=[128, 256, 320])
    ap.add_argument("--coils", nargs="+", type=int, default=[1, 8, 16, 20])
    ap.add_argument("--volume", default=TUNE_VOLUME)
    ap.add_argument("--steps", type=int, default=None, help="fast sampler steps (default: the CLI's 20, 21 NFE)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--cs-iters", type=int, default=60)
    ap.add_argument("--no-cs", action="store_true")
    ap.add_argument("--model", default=None)
    ap.add_argument("--png", default=None)
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--out-md", default=None)
    ap.add_argument("--from-json", default=None, help="re-plot / re-tabulate the rows of an earlier --out-json")
    args = ap.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    rows = json.loads(Path(args.from_json).read_text()) if args.from_json else run(args)
    md = to_markdown(rows, argv)
    print(md)
    if args.png:
        plot(rows, args.png, "time per slice vs matrix (one slice per point, shared 2-core CPU)")
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(rows, indent=1))
    if args.out_md:
        Path(args.out_md).write_text(md)
    return rows


if __name__ == "__main__":
    main()
