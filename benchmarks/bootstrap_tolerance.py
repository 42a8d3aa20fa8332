"""A tolerance on the bootstrap count pilot's errors: the fewest CG iterations whose bootstrap error is within
(1 + t) x the least one the search saw (``samplers.selftune.choose_count``, as the hold-out pilot's ``cv_tolerance``
does), replayed offline on recorded rows.

The bootstrap scores each count by how well a pilot recovers a reference reconstruction (7 CG) from the scan
simulated from it; a reference built with many iterations is easiest to reproduce with many, so near ties lean
to the larger count, and with 40 sampler steps one count too many costs 0.6–1.6 dB on regular masks. The rule is
a pure function of the errors the search recorded (the search itself does not depend on t), so every tolerance is
replayed from one pilot run per row.

Inputs: JSON-lines rows with the bootstrap's errors (``bootstrap_error``: ``sampler_variants.py --self-count``)
and rows with the 40-step PSNR at fixed counts (``psnr`` or ``psnr_40steps``, keys ``steps40/N``), joined on
(condition, volume); a row may carry both.

    python benchmarks/bootstrap_tolerance.py --errors E1.jsonl E2.jsonl --psnr P1.jsonl P2.jsonl --tol 0,0.05,0.1,0.15,0.2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mrdiff_cli.samplers.selftune import choose_count


def load(paths: list[str]) -> list[dict]:
    rows = []
    for p in paths:
        rows += [json.loads(line) for line in Path(p).read_text().splitlines() if line.strip()]
    return rows


def fixed_psnr(row: dict) -> dict[int, float]:
    """{count: PSNR} of the 40-step fixed-count runs in a recorded row."""
    out: dict[int, float] = {}
    for key in ("psnr_40steps", "psnr"):
        for k, v in (row.get(key) or {}).items():
            name, _, n = k.partition("/")
            if name == "steps40":
                out[int(n)] = float(v)
    return out


def join(err_rows: list[dict], psnr_rows: list[dict], key: str | None = None) -> list[dict]:
    """One record per (condition, volume) with both the bootstrap errors (``key``: which record of them; default
    ``bootstrap_error``, else ``bootstrap_error_pilot20``) and the fixed-count PSNR."""
    psnr: dict[tuple[str, str], dict[int, float]] = {}
    for r in psnr_rows + err_rows:
        psnr.setdefault((r["condition"], r["volume"]), {}).update(fixed_psnr(r))
    out = []
    for r in err_rows:
        errs = r.get(key) if key else (r.get("bootstrap_error") or r.get("bootstrap_error_pilot20"))
        if not errs:
            continue
        out.append({"condition": r["condition"], "volume": r["volume"],
                    "errors": {int(n): float(e) for n, e in errs.items()},
                    "psnr": psnr.get((r["condition"], r["volume"]), {})})
    return out


def replay(rows: list[dict], tols: list[float], near: float = 0.3) -> dict[float, dict]:
    """Per tolerance: the chosen counts, their PSNR against the best fixed count and against t = 0."""
    res: dict[float, dict] = {}
    for t in tols:
        loss, vs0, missing = [], [], 0
        for r in rows:
            p = r["psnr"]
            c, c0 = choose_count(r["errors"], t), choose_count(r["errors"], 0.0)
            if c not in p or c0 not in p:
                missing += 1
                continue
            loss.append(p[c] - max(p.values()))
            vs0.append(p[c] - p[c0])
        a, b = np.array(loss), np.array(vs0)
        res[t] = {"rows": len(a), "missing": missing, "worst_vs_best": float(a.min()), "mean_vs_best": float(a.mean()),
                  "within": int((a >= -near).sum()), "mean_vs_t0": float(b.mean()), "worst_vs_t0": float(b.min()),
                  "changed": int((b != 0).sum())}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--errors", nargs="+", required=True, help="rows with bootstrap_error")
    ap.add_argument("--psnr", nargs="*", default=[], help="rows with the 40-step fixed-count PSNR")
    ap.add_argument("--tol", default="0,0.05,0.1,0.15,0.2,0.3")
    ap.add_argument("--rows", action="store_true", help="also print every row's choices")
    ap.add_argument("--key", default=None, help="the errors' record in the rows (e.g. bootstrap_error_steps40 from "
                    "sampler_variants.py --bootstrap-steps 40)")
    a = ap.parse_args()
    rows = join(load(a.errors), load(a.psnr), a.key)
    tols = [float(t) for t in a.tol.split(",")]
    if a.rows:
        for r in rows:
            p = r["psnr"]
            best = max(p, key=lambda n: p[n]) if p else None
            picks = " ".join(f"t{t:g}:{choose_count(r['errors'], t)}" for t in tols)
            rel = {n: round(e / min(r["errors"].values()), 3) for n, e in sorted(r["errors"].items())}
            print(f"{r['condition'][:44]:44s} {r['volume'][:12]:12s} best {best} {picks} errors/min {rel}")
    print("| tolerance | rows | worst vs best fixed | mean vs best | within 0.3 dB | mean vs t=0 | worst vs t=0 | "
          "choices changed |")
    print("|---|---|---|---|---|---|---|---|")
    for t, m in replay(rows, tols).items():
        print(f"| {t:g} | {m['rows']} | {m['worst_vs_best']:+.2f} | {m['mean_vs_best']:+.2f} | {m['within']}/{m['rows']} "
              f"| {m['mean_vs_t0']:+.3f} | {m['worst_vs_t0']:+.2f} | {m['changed']} |")


if __name__ == "__main__":
    main()
