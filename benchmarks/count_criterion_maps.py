"""The count criterion under the default coil maps: on TUNE_REG5 / TUNE_REG6 (equispaced, 22-34 dB; the sets the
bootstrap tolerance was tested on), is the count the self-tuning pilot chooses (it runs on the release's
``espirit`` maps, so it is the count recorded in ``results/bootstrap_tol_tune_reg{5,6}.jsonl``: the adopted
tolerance 0.15 applied to the recorded bootstrap errors) within 0.3 dB of the best fixed count of {1, 2, 3, 5, 7}
when the final run uses the release maps, and when it uses today's default (``adaptive``) maps?

    python benchmarks/coil_maps.py --split tune --set TUNE_REG5 --counts 1,2,3,5,7 --variants "auto=coil_maps:auto" \\
        --out benchmarks/results/coil_maps_counts_auto_reg5.jsonl          # and TUNE_REG6 / ..._reg6.jsonl
    python benchmarks/count_criterion_maps.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrdiff_cli.samplers.selftune import choose_count
from mrdiff_cli.tasks.reconstruct import BOOTSTRAP_TOLERANCE

RESULTS = Path(__file__).resolve().parent / "results"


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    rows = []
    for s in ("reg5", "reg6"):
        base = {(r["condition"], r["volume"]): r for r in jsonl(RESULTS / f"bootstrap_tol_tune_{s}.jsonl")}
        for r in jsonl(RESULTS / f"coil_maps_counts_auto_{s}.jsonl"):
            b = base[(r["condition"], r["volume"])]
            c = choose_count({int(k): v for k, v in b["bootstrap_error"].items()}, BOOTSTRAP_TOLERANCE)
            old = {int(k.split("/")[1]): v for k, v in b["psnr"].items()}
            new = {int(k.split("/")[1]): v for k, v in r["psnr"].items()}
            rows.append((r["condition"], r["volume"], c, old[c] - max(old.values()), max(old, key=old.__getitem__),
                         new[c] - max(new.values()), max(new, key=new.__getitem__), new[c] - old[c]))
    print("| condition | volume | chosen | espirit maps: vs best (best) | adaptive maps: vs best (best) | gain at the chosen count |")
    print("|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x[0]} | {x[1]} | {x[2]} | {x[3]:+.2f} ({x[4]}) | {x[5]:+.2f} ({x[6]}) | {x[7]:+.2f} |")
    a, b, g = (np.array([x[i] for x in rows]) for i in (3, 5, 7))
    print(f"\n{len(rows)} rows: within 0.3 dB of the best fixed count: espirit maps {(a >= -0.3).sum()}, adaptive maps "
          f"{(b >= -0.3).sum()}; worst {a.min():+.2f} / {b.min():+.2f} dB; the adaptive maps' gain at the chosen count: "
          f"mean {g.mean():+.2f}, worst {g.min():+.2f} dB")


if __name__ == "__main__":
    main()
