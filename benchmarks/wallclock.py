"""Wall-clock budgets that tests must not assert (a shared, busy machine fails them at random):

* ``mrdiff --help`` (the real entry point, a fresh interpreter): budget 1 s. No torch import on this path is a
  test (tests/test_cli_reconstruct.py); the time also depends on the disk cache and the machine's load.
* ESPIRiT coil maps of one 128 x 128 8-coil slice (x4 Poisson, 20 x 20 ACS) on one and on two torch threads:
  budget 2 s each. The maps being equal on both thread counts is a test (tests/test_ops_coils.py).
* `mrdiff superres` with its defaults, 64 -> 128, on the bundled example slice (resampled to 2 mm, its centre
  k-space block as a 4 mm magnitude NIfTI), 1 slice and 4 identical slices, through the real CLI (a fresh
  interpreter): the ``seconds_per_slice`` it reports (model loaded, sampling and writing); budget 10 s per slice
  (issue #14, on 2 CPU cores).

    python benchmarks/wallclock.py [--repeats 3] [--out-json results/wallclock.json]

Prints one line per measurement (best of ``--repeats``) and exits 1 when a budget is exceeded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HELP_BUDGET_S = 1.0
ESPIRIT_BUDGET_S = 2.0
SUPERRES_BUDGET_S = 10.0


def best_of(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def help_seconds(repeats: int) -> float:
    env = {**os.environ, "COLUMNS": "200"}

    def run() -> None:
        r = subprocess.run([sys.executable, "-m", "mrdiff_cli.cli.main", "--help"], capture_output=True, env=env, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"mrdiff --help failed: {r.stderr.decode(errors='replace')}")

    return best_of(run, repeats)


def espirit_seconds(repeats: int) -> dict[str, float]:
    import numpy as np
    import torch
    from sigpy.mri import birdcage_maps

    from mrdiff_cli.ops.coils import estimate_maps
    from mrdiff_cli.ops.fft import fft2c
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.ops.operators import normalize_maps

    n, coils = 128, 8
    yy, xx = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    img = ((yy / 0.8) ** 2 + (xx / 0.65) ** 2 < 1) * (1.0 + 0.4 * np.cos(3 * xx)) * np.exp(0.5j * yy)
    maps = normalize_maps(torch.from_numpy(birdcage_maps((coils, n, n), r=1.5).astype(np.complex64)))
    k = fft2c(maps * torch.from_numpy(img.astype(np.complex64)))[None]
    mask = torch.from_numpy(make_mask("poisson", (n, n), 4, seed=0).mask)
    out = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out[f"espirit_{threads}thread_s"] = best_of(lambda: estimate_maps(k * mask, mask), repeats)
    finally:
        torch.set_num_threads(before)
    return out


def superres_seconds_per_slice(repeats: int) -> dict[str, float]:
    import tempfile

    import nibabel as nib
    import numpy as np
    import torch

    from mrdiff_cli.ops.fft import ifft2c
    from mrdiff_cli.ops.superres import measure_lowres
    from mrdiff_cli.tasks.simulate import resample_slices

    src = Path(__file__).resolve().parent.parent / "mrdiff_cli" / "data" / "example_t1.nii.gz"
    v = np.asarray(nib.load(str(src)).dataobj, dtype=np.float32)[:, :, 0]
    ref, _, _ = resample_slices(v[None], 128)  # 256 mm FOV at 2 mm
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 4):
            low = ifft2c(measure_lowres(torch.as_tensor(ref).repeat(n, 1, 1), (64, 64))).abs().numpy()
            inp = Path(tmp) / f"low{n}.nii.gz"
            nib.save(nib.Nifti1Image(np.transpose(low, (1, 2, 0)), np.diag([4.0, 4.0, 4.0, 1.0])), str(inp))
            best = math.inf
            for _ in range(repeats):
                r = subprocess.run([sys.executable, "-m", "mrdiff_cli.cli.main", "superres", str(inp), "--from", "64",
                                    "--to", "128", "-o", str(Path(tmp) / "sr.nii.gz"), "--overwrite", "--json",
                                    "--quiet", "--offline"], capture_output=True, timeout=600)
                if r.returncode != 0:
                    raise SystemExit(f"mrdiff superres failed: {r.stderr.decode(errors='replace')}")
                best = min(best, float(json.loads(r.stdout)["seconds_per_slice"]))
            out[f"superres_64to128_{n}slice_s_per_slice"] = best
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-json", type=Path)
    args = ap.parse_args()
    res = {"help_s": help_seconds(args.repeats), **espirit_seconds(args.repeats),
           **superres_seconds_per_slice(args.repeats)}
    budgets = {"help_s": HELP_BUDGET_S, "espirit_1thread_s": ESPIRIT_BUDGET_S, "espirit_2thread_s": ESPIRIT_BUDGET_S,
               "superres_64to128_1slice_s_per_slice": SUPERRES_BUDGET_S,
               "superres_64to128_4slice_s_per_slice": SUPERRES_BUDGET_S}
    over = [k for k, v in res.items() if v > budgets[k]]
    for k, v in res.items():
        print(f"{k:20s} {v:6.3f} s  (budget {budgets[k]:.1f} s){'  OVER' if k in over else ''}")
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps({"seconds": res, "budgets_s": budgets}, indent=2) + "\n")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
