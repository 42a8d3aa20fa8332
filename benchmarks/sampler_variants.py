"""Fast-sampler variants of the complex default on the acquisition-diverse suite, at fixed CG counts.

Per (condition, volume) of ``benchmarks/suite.py`` (one middle slice, simulated as every study here,
``pilot_study.scan``) and per CG count in ``--counts``: PSNR in the head mask of each variant in ``--variants``
(``name=key:value,key:value`` ReconOptions overrides; ``default`` = none) and of the mean of ``--mean-of`` samples
of the default (what averaging posterior samples would buy, at that many times the cost).

    python benchmarks/sampler_variants.py --split tune --conditions 0,1,2,3 --out OUT.jsonl
    python benchmarks/sampler_variants.py --table OUT.jsonl
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
from suite import CONDITIONS, cond_name, score

from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

VARIANTS = "default,zeta0.5=zeta:0.5,zeta0=zeta:0,steps30=steps:30"


def parse_variants(spec: str, float_keys: tuple[str, ...] = ("zeta", "sigma_max", "sigma_min")) -> dict[str, dict]:
    """``name=key:value;key:value,...`` → {name: ReconOptions overrides}; ``float_keys`` are floats, the rest ints
    (or strings where not a number: ``pilot_maps:espirit``)."""
    out: dict[str, dict] = {}
    for item in spec.split(","):
        name, _, kv = item.partition("=")
        opts: dict = {}
        for pair in filter(None, kv.split(";")):
            k, v = pair.split(":")
            opts[k] = float(v) if k in float_keys else int(v) if v.lstrip("-").isdigit() else v
        out[name] = opts
    return out


def emit(row: dict, out: str | None) -> None:
    """Print one result row as a JSON line and append it to ``out`` (when given)."""
    print(json.dumps(row), flush=True)
    if out:
        with open(out, "a") as fh:
            fh.write(json.dumps(row) + "\n")


def pilot_tuning(prior, k, mask, **opts) -> Reconstructor:
    """The self-tuning pilot run on this one-slice scan (pilots only, no full run; the same choice as
    ``reconstruct`` makes: one pilot slice): the tuned Reconstructor (``n_cg()``, ``tuning``)."""
    rec = Reconstructor(prior, ReconOptions(seed=0, **opts))
    rec.tune(k, mask, "sense", slice_ids=[0])
    return rec


def pilot_count(prior, k, mask, **opts) -> int:
    """The CG count the self-tuning pilot picks for this one-slice scan (see :func:`pilot_tuning`)."""
    return pilot_tuning(prior, k, mask, **opts).n_cg()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--conditions", default=None)
    ap.add_argument("--set", default=None, help="a condition list of benchmarks/suite.py instead of the split's "
                    "(e.g. TUNE_LOW, TUNE_MORE); its volumes are the split's")
    ap.add_argument("--counts", default="3,5,7", help="comma list, 'self': only the count the default pilot picks, or 'none': pilots only")
    ap.add_argument("--variants", default=VARIANTS, help="name=key:value;key:value,... (default: %(default)s)")
    ap.add_argument("--mean-of", type=int, default=4)
    ap.add_argument("--bootstrap-steps", default="", help="comma list: record the count the default pilot picks with "
                    "the bootstrap's pilots at each of these step counts (ReconOptions.bootstrap_steps; pilots only)")
    ap.add_argument("--bootstrap-refs", default="", help="comma list: record the count the default pilot picks with "
                    "the bootstrap's reference at each of these CG counts (the module's BOOTSTRAP_REF_CG, 7, patched)")
    ap.add_argument("--self-count", action="store_true",
                    help="also record the count the default self-tuning pilot picks (the default options: a 40-step "
                         "run's pilots; a variant's self-tuned result is its fixed-count result at that count) and, "
                         "where the bootstrap scored the counts, its error of every count tried")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", default=None)
    a = ap.parse_args()
    if a.table:
        return table(Path(a.table))
    torch.set_num_threads(a.threads)
    prior, _ = load_prior(a.model, "score", offline=True)
    variants = parse_variants(a.variants)
    only_self = a.counts == "self"  # only the count the default pilot picks (needs --self-count)
    counts = [] if only_self or a.counts == "none" else [int(c) for c in a.counts.split(",")]
    if only_self and not a.self_count:
        raise SystemExit("--counts self needs --self-count")
    import suite

    conds = getattr(suite, a.set) if a.set else CONDITIONS[a.split]
    idx = [int(i) for i in a.conditions.split(",")] if a.conditions else [i for i, c in enumerate(conds) if c[1] == 128]
    for i in idx:
        cond = conds[i]
        for vol, ref in load_split(a.split, cond[1], 256.0 / cond[1], 1).items():
            k, truth, mask = scan(ref, cond)
            row: dict = {"condition": cond_name(cond[0], *cond[1:]), "volume": vol, "psnr": {}, "s": {}}
            if a.self_count:
                tuned = pilot_tuning(prior, k, mask)
                row["self_count"] = tuned.n_cg()
                boot = tuned.tuning.bootstrap if tuned.tuning is not None else None
                if boot:  # the bootstrap's error of every count its search tried (regular 1D masks)
                    row["bootstrap_error"] = {str(n): round(e, 6) for n, e in sorted(boot.items())}
            for bs in [int(b) for b in a.bootstrap_steps.split(",") if b.strip()]:
                tuned = pilot_tuning(prior, k, mask, bootstrap_steps=bs)
                row[f"count_bootstrap{bs}"] = tuned.n_cg()
                if tuned.tuning is not None and tuned.tuning.bootstrap:
                    row[f"bootstrap_error_steps{bs}"] = {str(n): round(e, 6) for n, e in sorted(tuned.tuning.bootstrap.items())}
            for ref_cg in [int(b) for b in a.bootstrap_refs.split(",") if b.strip()]:
                import mrdiff_cli.tasks.reconstruct as recmod

                saved, recmod.BOOTSTRAP_REF_CG = recmod.BOOTSTRAP_REF_CG, ref_cg
                try:
                    row[f"count_ref{ref_cg}"] = pilot_count(prior, k, mask)
                finally:
                    recmod.BOOTSTRAP_REF_CG = saved
            for n in ([row["self_count"]] if only_self else counts):
                for name, opts in variants.items():
                    rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=n, **opts))
                    t = time.time()
                    row["psnr"][f"{name}/{n}"] = score(rec.reconstruct(k, mask, "sense").images, truth)["psnr"]
                    row["s"][f"{name}/{n}"] = round(time.time() - t, 2)
                if a.mean_of > 1:
                    rec = Reconstructor(prior, ReconOptions(seed=0, n_cg=n, samples=a.mean_of, calibration=None))
                    row["psnr"][f"mean{a.mean_of}/{n}"] = score(rec.reconstruct(k, mask, "sense").images, truth)["psnr"]
            emit(row, a.out)


def table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    names = sorted({k.split("/")[0] for r in rows for k in r["psnr"]}, key=lambda s: (s != "default", s))
    print("| condition | volume | " + " | ".join(f"{n}: best count" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    diffs: dict[str, list[float]] = {n: [] for n in names}
    same: dict[str, list[float]] = {n: [] for n in names}
    selfd: dict[str, list[float]] = {n: [] for n in names}
    for r in rows:
        best = {n: max(v for k, v in r["psnr"].items() if k.split("/")[0] == n) for n in names}
        for n in names:
            diffs[n].append(best[n] - best["default"])
            same[n] += [v - r["psnr"][f"default/{k.split('/')[1]}"] for k, v in r["psnr"].items() if k.split("/")[0] == n]
        if "self_count" in r:
            for n in names:
                selfd[n].append(r["psnr"][f"{n}/{r['self_count']}"] - r["psnr"][f"default/{r['self_count']}"])
        print(f"| {r['condition']} | {r['volume']} | " + " | ".join(f"{best[n]:.2f}" for n in names) + " |")
    for n in names[1:]:
        d, s = np.asarray(diffs[n]), np.asarray(same[n])
        line = (f"{n} − default, best count each: worst {d.min():+.2f}, mean {d.mean():+.2f} dB; "
                f"same count: worst {s.min():+.2f}, mean {s.mean():+.2f} dB")
        if selfd[n]:
            line += f"; at the self-tuned count: worst {min(selfd[n]):+.2f}, mean {np.mean(selfd[n]):+.2f} dB"
        print(line)


if __name__ == "__main__":
    main()
