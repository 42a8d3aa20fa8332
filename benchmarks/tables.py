"""Markdown tables for docs/benchmarks.md from the JSON files the benchmarks write (no number is typed by hand).

    python benchmarks/tables.py recon benchmarks/results/reconstruct_report_8coil.json
    python benchmarks/tables.py superres benchmarks/results/superres_report.json
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict

import numpy as np


def recon(res: dict) -> str:
    by = defaultdict(list)
    for r in res["rows"]:
        by[r["setting"]].append(r)
    out = ["| setting (coils:matrix:mask:R) | volume (slices) | zero-filled | CG-SENSE | CS, λ from tune | mrdiff | mrdiff − CS | s/slice mrdiff / CS |",
           "|---|---|---|---|---|---|---|---|"]
    for setting, rows in by.items():
        for r in rows + ([_mean_row(rows)] if len(rows) > 1 else []):
            cs = next(k for k in r if k.startswith("CS ("))
            sense = r.get("CG-SENSE")
            out.append(
                f"| {setting} (R {r['achieved_R']:.2f}) | {r['volume']} ({r['slices']}) | {r['zero-filled']['psnr']:.2f} | "
                f"{sense['psnr']:.2f} | " if sense else f"| {setting} (R {r['achieved_R']:.2f}) | {r['volume']} ({r['slices']}) | {r['zero-filled']['psnr']:.2f} | – | "
            )
            out[-1] += (f"{r[cs]['psnr']:.2f} / {r[cs]['ssim']:.3f} ({cs[4:-1]}) | {r['mrdiff']['psnr']:.2f} / {r['mrdiff']['ssim']:.3f} | "
                        f"**{r['mrdiff']['psnr'] - r[cs]['psnr']:+.2f}** | {r['mrdiff_s_per_slice']:.1f} / {r['cs_s_per_slice']:.1f} |")
    return "\n".join(out)


def _mean_row(rows: list[dict]) -> dict:
    """Slice-weighted mean over volumes."""
    w = np.array([r["slices"] for r in rows], float)
    cs = next(k for k in rows[0] if k.startswith("CS ("))
    avg = lambda key, m: float(np.average([r[key][m] for r in rows], weights=w))  # noqa: E731
    out = {"volume": "**mean**", "slices": int(w.sum()), "achieved_R": rows[0]["achieved_R"],
           "zero-filled": {"psnr": avg("zero-filled", "psnr")}, cs: {"psnr": avg(cs, "psnr"), "ssim": avg(cs, "ssim")},
           "mrdiff": {"psnr": avg("mrdiff", "psnr"), "ssim": avg("mrdiff", "ssim")},
           "mrdiff_s_per_slice": float(np.average([r["mrdiff_s_per_slice"] for r in rows], weights=w)),
           "cs_s_per_slice": float(np.average([r["cs_s_per_slice"] for r in rows], weights=w))}
    if "CG-SENSE" in rows[0]:
        out["CG-SENSE"] = {"psnr": avg("CG-SENSE", "psnr")}
    return out


def superres(res: dict) -> str:
    methods = [k for k in res["rows"][0] if isinstance(res["rows"][0][k], dict)]
    out = ["| factor | input | volume (slices) | " + " | ".join(methods) + " | mrdiff − sinc | s/slice |",
           "|" + "---|" * (5 + len(methods))]
    for r in res["rows"]:
        snr = "noise-free" if not math.isfinite(r["snr_db"]) else f"{r['snr_db']:g} dB"
        cells = " | ".join(f"{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f}" for m in methods)
        t = next((v for k, v in r.items() if k.endswith("_s_per_slice")), float("nan"))
        out.append(f"| {r['factor']} | {snr} | {r['volume']} ({r['n']}) | {cells} | **{r['mrdiff']['psnr'] - r['sinc']['psnr']:+.2f}** | {t:.1f} |")
    return "\n".join(out)


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    data = json.loads(open(path).read())
    print({"recon": recon, "superres": superres}[kind](data))
