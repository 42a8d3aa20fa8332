"""Diagnostic: the share of the head-mask pixels outside the coil maps' support (``espirit`` maps; adaptive maps with
the release and the own support) on the rows of ``support_choice.py`` (no reconstruction).

    cd benchmarks && python support_headcut.py --split tune --sets TUNE_REG11,TUNE_MAPS5
    cd benchmarks && python support_headcut.py --split report --sets report:0-5
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from corpus import head_mask
from support_choice import scans

from mrdiff_cli.samplers.modes import MapsSupport
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="tune", choices=["tune", "report"])
    ap.add_argument("--sets", default="TUNE_REG11,TUNE_MAPS5")
    a = ap.parse_args()
    torch.set_num_threads(2)
    out = []
    for name, vol, y, mask, truth, _, i in scans(a.split, False, a.sets):
        m = torch.as_tensor(mask)
        yy = torch.as_tensor(y[i : i + 1]) * m
        head = head_mask(torch.as_tensor(np.asarray(truth))[i : i + 1])[0].bool()
        r = {}
        for label, o, sup in (("espirit", ReconOptions(coil_maps="espirit"), None),
                              ("release", ReconOptions(), MapsSupport.release), ("own", ReconOptions(), MapsSupport.own)):
            rec = Reconstructor(None, o)
            yc, _ = rec._compress(yy, None, "sense")
            maps = rec.estimate_maps(yc, m, support=sup) if sup else rec.estimate_maps(yc, m)
            r[label] = round(float((head & ~(maps.abs().sum(1) > 0)[0]).sum() / head.sum()), 4)
        out.append(r)
        print(name, vol, r, flush=True)
    print("mean:", {k: round(float(np.mean([o[k] for o in out])), 4) for k in out[0]},
          "max:", {k: max(o[k] for o in out) for k in out[0]})


if __name__ == "__main__":
    main()
