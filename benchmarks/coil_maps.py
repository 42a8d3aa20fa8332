"""Coil-map estimation settings, end to end: per (condition, volume) of a ``benchmarks/suite.py`` set, the
default self-tuned reconstruction (pilot + 40-step run, one middle slice as every study here) with each ESPIRiT
setting, and the maps' model error against the simulator's true coil images.

Model error (dB): ``10 log10 ||c - S x'||^2 / ||c||^2`` over the head, c = the true noise-free coil images
(simulator's maps x the phased image), S the estimated maps, ``x' = sum_c conj(S_c) c_c`` (the best image the SENSE
model with those maps can offer; ``sum_c |S_c|^2 = 1``): how far the SENSE model itself is from the data, apart
from noise and the prior.

    python benchmarks/coil_maps.py --split tune --set TUNE_MAPS --variants "release=,adaptive=espirit_sigma:0.001;espirit_noise:2" --out OUT.jsonl
    python benchmarks/coil_maps.py --table OUT.jsonl
    python benchmarks/coil_maps.py --set TUNE_REG6 --conditions 5 --true-maps 5,7 --out T.jsonl
    python benchmarks/coil_maps.py --proxy-only --set TUNE_LOW --variants "release=,s0.005=espirit_sigma:0.005" --out P.jsonl

A variant that does not name ``coil_maps`` runs with ``coil_maps: espirit`` (its espirit_* options, pilots on the
same maps unless ``pilot_maps`` says otherwise): the commands keep the meaning they had when the default was espirit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from corpus import load_split
from pilot_study import scan
from sampler_variants import emit, parse_variants
from suite import CONDITIONS, cond_name, score

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.acquisition import simulate_acquisition_full
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

FLOAT_KEYS = ("espirit_sigma", "espirit_noise", "espirit_eig", "espirit_support_sigma")


def model_error_db(y: torch.Tensor, m: torch.Tensor, coil_images: torch.Tensor, head: torch.Tensor, opts: dict) -> float:
    """The SENSE model error of the maps the reconstruction estimates from y with the ReconOptions overrides
    ``opts`` (``Reconstructor.estimate_maps``; see the module docstring)."""
    S = Reconstructor(None, ReconOptions(**opts)).estimate_maps(y, m)[0]
    x = (S.conj() * coil_images).sum(0)
    r = coil_images - S * x
    e = float((r.abs() ** 2 * head).sum() / (coil_images.abs() ** 2 * head).sum())
    return round(10 * float(np.log10(max(e, 1e-12))), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--set", default=None, help="a condition list of benchmarks/suite.py (default: the split's)")
    ap.add_argument("--conditions", default=None)
    ap.add_argument("--variants", default="release=,adaptive=espirit_sigma:0.001;espirit_noise:2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--proxy-only", action="store_true", help="only the maps' model error (no reconstructions)")
    ap.add_argument("--counts", default=None, help="comma list of fixed CG counts: each variant's 40-step run at each "
                    "(keys VARIANT/N) instead of its self-tuned run")
    ap.add_argument("--true-maps", default=None, help="comma list of fixed CG counts: also the 40-step run at each "
                    "with the release's estimated maps and with the simulator's true maps (no variants)")
    ap.add_argument("--table", default=None)
    a = ap.parse_args()
    if a.table:
        return table(Path(a.table))
    torch.set_num_threads(a.threads)
    prior = None if a.proxy_only else load_prior(None, "score", offline=True)[0]
    import suite

    conds = getattr(suite, a.set) if a.set else CONDITIONS[a.split]
    idx = [int(i) for i in a.conditions.split(",")] if a.conditions else [i for i, c in enumerate(conds) if c[1] == 128]
    # a variant without coil_maps is an ESPIRiT setting (espirit_* options; "release=": the release's maps), as when
    # these commands were first run (the default is now "auto"); "default=coil_maps:auto" gives today's default
    variants = {name: {"coil_maps": "espirit", **o} for name, o in parse_variants(a.variants, FLOAT_KEYS).items()}
    for i in idx:
        cond = conds[i]
        for vol, ref in load_split(a.split, cond[1], 256.0 / cond[1], 1).items():
            k, truth, mask = scan(ref, cond)
            _, _, maps, ph = simulate_acquisition_full(ref.numpy(), cond[0], seed=5)
            coil_images = torch.as_tensor((maps * (ref.numpy()[0] * np.exp(1j * ph[0]))[None]).astype(np.complex64))
            head = torch.as_tensor(truth[0].numpy() > 0.05 * float(truth.max()))
            m = torch.as_tensor(np.asarray(mask, np.float32))
            y = torch.as_tensor(k[:1]).to(torch.complex64) * m
            row: dict = {"condition": cond_name(cond[0], *cond[1:]), "volume": vol, "psnr": {}, "count": {},
                         "model_error_db": {}, "s": {}}
            if a.true_maps:
                true = maps / np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True)).clip(1e-8)
                true_t = torch.as_tensor(true[None].astype(np.complex64))
                for n in [int(c) for c in a.true_maps.split(",")]:
                    for name, mp in (("estimated", None), ("true", true_t)):
                        rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=n))
                        row["psnr"][f"{name}/{n}"] = round(score(rec.reconstruct(k, mask, "sense", maps=mp).images,
                                                                 truth)["psnr"], 3)
                emit(row, a.out)
                continue
            for name, opts in variants.items():
                row["model_error_db"][name] = model_error_db(y, m, coil_images, head, opts)
                if a.proxy_only:
                    continue
                if a.counts:
                    for n in [int(c) for c in a.counts.split(",")]:
                        rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=n, **opts))
                        row["psnr"][f"{name}/{n}"] = round(score(rec.reconstruct(k, mask, "sense").images, truth)["psnr"], 3)
                    continue
                rec = Reconstructor(prior, ReconOptions(seed=0, **opts))
                t = time.time()
                rec.tune(k, mask, "sense", slice_ids=[0])
                row["psnr"][name] = round(score(rec.reconstruct(k, mask, "sense").images, truth)["psnr"], 3)
                row["s"][name] = round(time.time() - t, 2)
                row["count"][name] = rec.n_cg()
            emit(row, a.out)


def table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows[0]["psnr"]:  # --proxy-only rows: the model error's gain over the first variant
        names = list(rows[0]["model_error_db"])
        for n in names[1:]:
            g = np.array([r["model_error_db"][names[0]] - r["model_error_db"][n] for r in rows])
            print(f"{n}: model error lower than {names[0]} by worst {g.min():+.2f}, mean {g.mean():+.2f}, best "
                  f"{g.max():+.2f} dB over {len(g)} rows")
        return
    if any("/" in k for k in rows[0]["psnr"]):  # --counts rows: each variant's best fixed count against the first's
        variants = list(dict.fromkeys(k.split("/")[0] for k in rows[0]["psnr"]))
        best = [{v: max(x for k, x in r["psnr"].items() if k.split("/")[0] == v) for v in variants} for r in rows]
        for v in variants[1:]:
            d = np.array([b[v] - b[variants[0]] for b in best])
            print(f"{v} - {variants[0]}, best fixed count each: worst {d.min():+.2f}, mean {d.mean():+.2f}, best "
                  f"{d.max():+.2f} dB over {len(d)} rows; below -0.1: {int((d < -0.1).sum())}")
        return
    names = list(rows[0]["psnr"])
    base = names[0]
    print("| condition | volume | " + " | ".join(f"{n}: PSNR (count, model error dB)" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for r in rows:
        cells = [f"{r['psnr'][n]:.2f} ({r['count'][n]}, {r['model_error_db'][n]:.1f})" for n in names]
        print(f"| {r['condition']} | {r['volume']} | " + " | ".join(cells) + " |")
    for n in names[1:]:
        d = np.array([r["psnr"][n] - r["psnr"][base] for r in rows])
        print(f"\n{n} - {base}: worst {d.min():+.2f}, mean {d.mean():+.2f}, best {d.max():+.2f} dB over {len(d)} rows; "
              f"below -0.1: {int((d < -0.1).sum())}")


if __name__ == "__main__":
    main()
