"""CG count schedules: many iterations early, fewer in the last steps (offline study; docs/benchmarks.md "Count
selection at low SNR").

On regular masks the full run loses from 5 to 7 CG iterations per step because the last steps amplify the noise
into the missing lines while the bias has already flattened (``bv_study.py``'s rows). The early steps set the
structure the prior cannot, the last steps decide how much measured noise is unfolded into the image. A schedule
"E iterations per step, then L in the last fraction q of the steps (and the final step)" might keep the bias of E
and the variance of L. Each schedule is run in full (the release's 20 steps) on every tune row of
``pilot_study_tune{,_more,_low,_reg}.jsonl`` at the release's phase prior for that row, and compared with that
row's recorded full runs at fixed counts (same seeds).

    python benchmarks/count_schedule.py --only 0::2 &  python benchmarks/count_schedule.py --only 1::2
    python benchmarks/count_schedule.py --rules
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from corpus import MAGNITUDE_PRIOR, head_mask, load_split, masked_psnr
from pilot_study import COUNTS, best_fixed, current_rule, release_fold, rule_row, scan
from suite import CONDITIONS, TUNE_LOW, TUNE_MORE, TUNE_REG, cond_name

import mrdiff_cli.samplers.dc as dcmod
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

RESULTS = Path(__file__).parent / "results"
SETS = ("", "_more", "_low", "_reg")
SCHEDULES = ((7, 3, 0.25), (7, 5, 0.25), (7, 3, 0.5))  # (early count, late count, late fraction of the steps)


def schedule_name(s: tuple[int, int, float]) -> str:
    return f"{s[0]}>{s[1]}@{s[2]}"


def with_schedule(late: int, frac: float):
    """Patch ProximalDC so that its count is ``late`` in the last ``frac`` of the steps (the final step included);
    returns the undo function."""
    orig = dcmod.ProximalDC.__call__

    def call(self, x, y, A, *, step=0, n_steps=1, sigma=0.0):
        if step >= (1.0 - frac) * n_steps:
            saved, self.n_cg = self.n_cg, min(self.n_cg, late)
            try:
                return orig(self, x, y, A, step=step, n_steps=n_steps, sigma=sigma)
            finally:
                self.n_cg = saved
        return orig(self, x, y, A, step=step, n_steps=n_steps, sigma=sigma)

    dcmod.ProximalDC.__call__ = call  # type: ignore[method-assign]
    return lambda: setattr(dcmod.ProximalDC, "__call__", orig)


def rows_of(suffix: str = "", sets: tuple[str, ...] = SETS) -> list[dict]:
    """The recorded tune rows of ``pilot_study_tune{SET}{suffix}.jsonl`` (sets whose file exists), each with its set."""
    return [dict(json.loads(line), set=s) for s in sets if (RESULTS / f"pilot_study_tune{s}{suffix}.jsonl").exists()
            for line in (RESULTS / f"pilot_study_tune{s}{suffix}.jsonl").read_text().splitlines() if line.strip()]


def pending(rows: list[dict], only: str | None, out: Path):
    """The rows of the slice ``only`` (START::STEP, for two processes) not yet in ``out``, re-read before each
    row (the other process appends to the same file)."""
    if only:
        start, _, step = only.partition("::")
        rows = rows[int(start)::int(step or 1)]
    for row in rows:
        done = {(r["condition"], r["volume"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
        if (row["condition"], row["volume"]) not in done:
            yield row


def run(prior, row: dict, conds: dict) -> dict[str, float]:
    cond = conds[row["condition"]]
    ref = load_split("tune", cond[1], 256.0 / cond[1], 1)[row["volume"]]
    k, truth, mask = scan(ref, cond)
    resid = float(current_rule(release_fold(row)).split("/")[1])
    out = {}
    for early, late, frac in SCHEDULES:
        undo = with_schedule(late, frac)
        try:
            img = Reconstructor(prior, ReconOptions(n_cg=early, phase_resid=resid, seed=0)).reconstruct(k, mask, "sense").images
        finally:
            undo()
        x = torch.as_tensor(np.asarray(img), dtype=torch.float32)
        out[schedule_name((early, late, frac))] = round(float(np.mean(masked_psnr(x, truth, head_mask(truth)))), 3)
    return out


def rules(path: Path) -> None:
    got = {(r["condition"], r["volume"]): r["psnr"] for r in map(json.loads, path.read_text().splitlines())}
    rows = [r for r in rows_of() if (r["condition"], r["volume"]) in got]
    print(f"{len(rows)} tune rows (magnitude prior), against the best fixed pair")
    print("| rule | worst Δ best fixed pair (dB) | mean Δ | rows within 0.3 dB |\n|---|---|---|---|")
    print(rule_row("release (self-tuned count)", [r["psnr"][current_rule(release_fold(r))] - best_fixed(r["psnr"])
                                                  for r in rows]))
    for n in (5, 7):
        d = [r["psnr"][f"{n}/{current_rule(release_fold(r)).split('/')[1]}"] - best_fixed(r["psnr"]) for r in rows]
        print(rule_row(f"fixed {n} at the release's prior", d))
    for s in map(schedule_name, SCHEDULES):
        print(rule_row(f"schedule {s} at the release's prior",
                       [got[(r["condition"], r["volume"])][s] - best_fixed(r["psnr"]) for r in rows]))
    print("\nper row: best fixed count at the release's prior, its PSNR; the schedules' PSNR")
    for r in rows:
        pr = current_rule(release_fold(r)).split("/")[1]
        best = max(COUNTS, key=lambda n: r["psnr"][f"{n}/{pr}"])
        g = got[(r["condition"], r["volume"])]
        print(f"{r['condition']} {r['volume'][:6]} release {current_rule(release_fold(r))} best {best} "
              f"{r['psnr'][f'{best}/{pr}']:.2f} | " + " ".join(f"{k} {v:.2f}" for k, v in g.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(RESULTS / "count_schedule_tune.jsonl"))
    ap.add_argument("--only", default=None, help="a slice START::STEP of the tune rows (two processes)")
    ap.add_argument("--rules", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    if a.rules:
        rules(out)
        return
    torch.set_num_threads(1)
    prior, _ = load_prior(MAGNITUDE_PRIOR, "score", offline=True)
    conds = {cond_name(c[0], *c[1:]): c for c in CONDITIONS["tune"] + TUNE_MORE + TUNE_LOW + TUNE_REG}
    for row in pending(rows_of(), a.only, out):
        psnr = run(prior, row, conds)
        with out.open("a") as fh:
            fh.write(json.dumps({"condition": row["condition"], "volume": row["volume"], "psnr": psnr}) + "\n")
        print(row["condition"], row["volume"], psnr, flush=True)


if __name__ == "__main__":
    main()
