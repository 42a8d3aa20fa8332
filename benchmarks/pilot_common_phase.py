"""Does a magnitude-aware hold-out error choose the phase prior better? (offline study, tune first)

The pilot's hold-out error measures the complex image in k-space; PSNR measures the magnitude. On rows with phase
that varies over a few pixels the loose phase prior predicts the hidden samples better and gives the worse
magnitude (docs/benchmarks.md, "A larger tune study"). Here every pilot estimate x_(n,r) is also scored with a
*common* phase: x' = |x_(n,r)| exp(i angle(x_ref)), x_ref the estimate with the least ordinary hold-out error, so
that candidates differ only by their magnitude. Selection rules on both errors are replayed against the full runs
recorded by ``benchmarks/pilot_study.py`` (same rows, same fold 0 at 10 steps).

    python benchmarks/pilot_common_phase.py --split tune --out OUT.jsonl [--more] [--conditions 0,1]
    python benchmarks/pilot_common_phase.py --rules OUT.jsonl --psnr benchmarks/results/pilot_study_tune.jsonl,...
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch
from corpus import MAGNITUDE_PRIOR, load_split
from pilot_study import COUNTS, PRIORS, RULE_HEADER, best_fixed, full_runs, rule_row, scan
from suite import CONDITIONS, TUNE_MORE, cond_name

from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.noise import sample_generator
from mrdiff_cli.tasks.reconstruct import PILOT_SAMPLE, ReconOptions, Reconstructor


def errors(prior, k, mask, stream: int = 0, steps: int = 10) -> dict | None:
    rec = Reconstructor(prior, ReconOptions(seed=0))
    prepared = rec._holdout_data(k, mask, "sense", None, compressed=False, stream=stream)
    if prepared is None:
        return None
    y, maps, split, fit, hold = prepared
    sig = rec._sigmas("sense", steps)
    yh = y * hold
    y2 = float(yh.abs().square().sum())

    def rel(x: torch.Tensor) -> float:
        return float((hold * fft2c(maps * x.unsqueeze(-3)) - yh).abs().square().sum()) / y2

    xs, cache = {}, {}
    for n, r in itertools.product(COUNTS, PRIORS):
        gen = [sample_generator(0, PILOT_SAMPLE, 0)]
        xs[f"{n}/{r}"] = rec._holdout_run(y, fit, "sense", maps, gen, n, r, sig, cache)
    plain = {key: rel(x) for key, x in xs.items()}
    ref = min(plain, key=plain.get)
    rot = torch.exp(1j * torch.angle(xs[ref]))
    common = {key: rel(x.abs() * rot) for key, x in xs.items()}
    return {"plain": plain, "common": common, "phase_from": ref, "kind": split.kind}


# ------------------------------------------------------------------------------------------------ rules


def release(e: dict) -> str:
    r = min(PRIORS, key=lambda r: e[f"3/{r}"])
    n = min(COUNTS, key=lambda n: e[f"{n}/{r}"])
    return f"{n}/{r}"


def joint(e: dict) -> str:
    return min(e, key=e.get)


RULES = {
    "release (plain error)": lambda p: release(p["plain"]),
    "joint (plain)": lambda p: joint(p["plain"]),
    "release (common-phase error)": lambda p: release(p["common"]),
    "joint (common-phase)": lambda p: joint(p["common"]),
    # the prior by the common-phase error at 3 CG, the count by the plain error at that prior
    "prior by common phase, count by plain": lambda p: (lambda r: f"{min(COUNTS, key=lambda n: p['plain'][f'{n}/{r}'])}/{r}")(
        min(PRIORS, key=lambda r: p["common"][f"3/{r}"])),
}


def rules(path: Path, psnr_paths: list[Path]) -> None:
    psnr = full_runs(psnr_paths)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if (r["condition"], r["volume"]) in psnr and r["pilot"] is not None]
    print(f"{len(rows)} rows")
    print(RULE_HEADER)
    for name, f in RULES.items():
        print(rule_row(name, [psnr[(r["condition"], r["volume"])][f(r["pilot"])] - best_fixed(psnr[(r["condition"], r["volume"])])
                              for r in rows]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--more", action="store_true")
    ap.add_argument("--conditions", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--rules", default=None)
    ap.add_argument("--psnr", default=None, help="with --rules: pilot_study results files (comma list) with the full runs")
    a = ap.parse_args()
    if a.rules:
        rules(Path(a.rules), [Path(p) for p in a.psnr.split(",")])
        return
    torch.set_num_threads(1)
    prior, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    out = Path(a.out)
    conds = TUNE_MORE if a.more else CONDITIONS[a.split]
    idx = [int(c) for c in a.conditions.split(",")] if a.conditions else [i for i, c in enumerate(conds) if c[1] == 128]
    for i in idx:
        cond = conds[i]
        for vol, ref in load_split(a.split, cond[1], 256.0 / cond[1], 1).items():
            k, _, mask = scan(ref, cond)
            row = {"condition": cond_name(cond[0], *cond[1:]), "volume": vol, "pilot": errors(prior, k, mask)}
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(row["condition"], vol, row["pilot"] and row["pilot"]["phase_from"], flush=True)


if __name__ == "__main__":
    main()
