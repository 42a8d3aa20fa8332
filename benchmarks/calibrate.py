"""Fit the uncertainty calibration of a score model on the TUNE split and write it into the bundle's config.json.

    python benchmarks/calibrate.py --model mrdiff_cli/weights/score-brain-128            # fit + write
    python benchmarks/calibrate.py --model DIR --dry-run                                 # fit, print only
    python benchmarks/calibrate.py --model DIR --coils 1 --block single_coil             # the single-coil block

What it does (every choice here is made on the tune split only; the report split is never read):

1. Data: the tune volumes of the corpus manifest (``benchmarks/corpus.py``), ``--slices-per-volume`` slices each
   (evenly spaced among the slices holding signal), resampled to 128 x 128 and simulated as raw k-space
   (``tasks.simulate.simulate_volume``: smooth phase, coil maps, complex Gaussian noise at ``--snr`` dB).
2. For every ``--settings`` mask (kind:R) it draws K = ``--samples`` posterior samples with the CLI's defaults
   for K > 1 (fast sampler, fresh renoise zeta = 1, exact-data consistency) and keeps the
   posterior mean, the raw sample variance and the noise-free reference.
3. ``tasks.calibration.fit_calibration`` fits the calibration map (default ``loglinear`` with 3 x 3 variance
   pooling) by split conformal: shape on alternate slices, conformal factor on the others, so that
   ``|mean - ref| <= 1.96 std`` holds for 95 % of the held-back head pixels.
4. The block is written to ``config.json`` under ``"calibration"`` (atomically; every other key kept), unless
   ``--dry-run``. ``--block single_coil`` writes it under ``"calibration"."single_coil"`` instead (fit it with
   ``--coils 1``): one-coil scans then use it; refitting the main block keeps an existing single-coil block.
   ``mrdiff uncertainty`` / ``reconstruct --samples K`` apply it by default.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CORPUS = Path("/work/data/corpus")


def split_volumes(split: str, corpus: Path = CORPUS) -> list[tuple[str, Path]]:
    """(name, file) of one split of the corpus manifest."""
    man = json.loads((corpus / "manifest.json").read_text())
    by_name = {v["name"]: v for v in man["volumes"]}
    return [(n, corpus / by_name[n]["file"]) for n in man["split"][split]]


def pick_slices(vol: np.ndarray, n: int) -> list[int]:
    """``n`` evenly spaced slices among those whose mean intensity is >= 30 % of the brightest slice's."""
    means = vol.reshape(vol.shape[0], -1).mean(axis=1)
    ok = [i for i in range(vol.shape[0]) if means[i] >= 0.3 * means.max()]
    if len(ok) <= n:
        return ok
    return [ok[int(round(j))] for j in np.linspace(0, len(ok) - 1, n + 2)[1:-1]]


def simulate(name: str, path: Path, n_slices: int, coils: int, snr_db: float, seed: int):
    from mrdiff_cli.io.detect import load_image
    from mrdiff_cli.tasks.simulate import simulate_volume

    vol, geom = load_image(path)
    idx = pick_slices(vol, n_slices)
    sim = simulate_volume(vol[idx], geom, matrix=128, coils=coils, snr_db=snr_db, seed=seed)
    return sim, idx


def run_setting(prior, sim, kind: str, R: float, *, samples: int, opts_kw: dict[str, Any], keep: bool = False,
                mask_seed: int = 11):
    """K posterior samples of every slice of ``sim`` under one mask → BatchResult (+ mask, seconds)."""
    import torch

    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor, choose_coil_mode

    mask = make_mask(kind, tuple(sim.kspace.shape[-2:]), float(R), seed=mask_seed).mask
    opts = ReconOptions(samples=samples, **opts_kw)
    rec = Reconstructor(prior, opts)
    mode = choose_coil_mode("auto", sim.kspace.shape[1])
    maps = rec.estimate_maps(torch.as_tensor(sim.kspace * mask), torch.as_tensor(mask)) if mode == "sense" else None
    t = time.time()
    res = rec.reconstruct(sim.kspace, mask, mode, maps=maps, keep_samples=keep)
    return res, mask, time.time() - t


def default_opts(batch_size: int = 4) -> dict[str, Any]:
    import torch

    autocast = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None  # the CLI's --precision auto
    return {"batch_size": batch_size, "autocast": autocast}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="bundle folder (its config.json receives the block)")
    ap.add_argument("--samples", "-K", type=int, default=8)
    ap.add_argument("--settings", nargs="+", default=["poisson:8", "uniform1d:4"])
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--slices-per-volume", type=int, default=4)
    ap.add_argument("--method", default="loglinear", choices=["loglinear", "factor"])
    ap.add_argument("--pool", type=int, default=3)
    ap.add_argument("--level", type=float, default=0.95)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--block", choices=["main", "single_coil"], default="main",
                    help="write the fit as the main block, or as the single-coil block inside it")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--out-json", default=None, help="also write the fit and the tune-set figures here")
    args = ap.parse_args(argv)

    import torch

    from mrdiff_cli.io.atomic import atomic_write_bytes
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.calibration import Calibration, calibration_report, fit_calibration

    model_dir = Path(args.model)
    cfg_path = model_dir / "config.json"
    if not cfg_path.exists():
        print(f"calibrate: {cfg_path} not found", file=sys.stderr)
        return 2
    prior, _ = load_prior(str(model_dir), "score", offline=True)
    opts_kw = default_opts(args.batch_size)
    means, variances, refs, names, rows = [], [], [], [], []
    for vi, (name, path) in enumerate(split_volumes("tune", Path(args.corpus))):
        sim, idx = simulate(name, path, args.slices_per_volume, args.coils, args.snr, seed=100 + vi)
        for setting in args.settings:
            kind, R = setting.split(":")
            res, mask, secs = run_setting(prior, sim, kind, float(R), samples=args.samples, opts_kw=opts_kw)
            means.append(res.images)
            variances.append(res.raw_variance)
            refs.append(sim.reference)
            names.append(f"{name}[{','.join(map(str, idx))}] {setting}")
            raw = calibration_report(res.images, np.sqrt(res.raw_variance), sim.reference)["overall"]
            rows.append({"volume": name, "slices": idx, "setting": setting, "seconds": secs, "raw": raw,
                         "noise_sigma": None if res.noise_sigma is None else [float(v) for v in res.noise_sigma]})
            print(json.dumps({"volume": name, "setting": setting, "seconds": round(secs, 1),
                              "raw_spearman": raw["spearman"], "raw_coverage_95": raw["coverage"]["95"]}), flush=True)
    info = {"samples": args.samples, "settings": args.settings, "coils": args.coils, "snr_db": args.snr,
            "sampler": "fast, defaults for K > 1: renoise zeta = 1.0, exact-data consistency (noise_dc none)",
            "command": "python benchmarks/calibrate.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads",
            "fitted": time.strftime("%Y-%m-%d")}
    cal = fit_calibration(means, variances, refs, method=args.method, pool=args.pool, level=args.level,
                          fitted_on=[n for n, _ in split_volumes("tune", Path(args.corpus))], info=info)
    tune = []
    for n, mean, var, ref in zip(names, means, variances, refs):
        ov = calibration_report(mean, cal.std(mean, var), ref)["overall"]
        tune.append({"data": n, "spearman": ov["spearman"], "coverage": ov["coverage"]})
        print(json.dumps(tune[-1]), flush=True)
    block = cal.to_dict()
    print(json.dumps({"calibration": block}, indent=1))
    if args.out_json:
        Path(args.out_json).write_text(json.dumps({"calibration": block, "raw": rows, "calibrated_tune": tune},
                                                  indent=1))
    if not args.dry_run:
        cfg = json.loads(cfg_path.read_text())
        old = cfg.get("calibration")
        if args.block == "single_coil":
            if not old:
                print("calibrate: --block single_coil needs a main calibration block first", file=sys.stderr)
                return 2
            cfg["calibration"] = {**old, "single_coil": block}
        else:
            cfg["calibration"] = {**block, **({"single_coil": old["single_coil"]} if old and "single_coil" in old else {})}
        Calibration.from_dict(cfg["calibration"])  # round trip before writing
        atomic_write_bytes(cfg_path, (json.dumps(cfg, indent=2) + "\n").encode())
        print(f"wrote the calibration block into {cfg_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
