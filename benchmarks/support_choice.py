"""The pre-registered test of the per-scan coil-map support choice (``--maps-support auto``; docs/benchmarks.md
"Pre-registered test: the coil-map support chosen per scan").

Per row: the self-tuned default run (count pilot on the release maps, 40 steps) with the adaptive maps' release
support and with their own support (eigenvalue 0.95 of the adaptive subspace), both forced; the choice
(``Reconstructor.choose_support``: one 10-step hold-out pilot per support at the chosen count, own only when its
error is > 10 % lower); "auto" is the forced run of the chosen support (the same computation: the choice only sets
the maps). PSNR in the head mask against the noise-free magnitude.

    cd benchmarks && python support_choice.py --part suite --sets TUNE_REG11,TUNE_MAPS5 --out results/support_choice_tune_suite.jsonl
    cd benchmarks && python support_choice.py --part files --out results/support_choice_tune_files.jsonl
    cd benchmarks && python support_choice.py --part suite --split report --sets report:0-5 --out results/support_choice_report_suite.jsonl
    cd benchmarks && python support_choice.py --part files --split report --out results/support_choice_report_files.jsonl
    cd benchmarks && python support_choice.py --table results/support_choice_tune_suite.jsonl [--margins 0.1,0.02]

``--part files``: fastMRI test-layout files (``fastmri_test_layout.simulate_test_layout``: readout oversampled x2,
cropped as the reader does, equispaced mask with its fully sampled centre), 3 slices each, 256²; tune: ``FILES`` x the
two tune volumes; report: ``REPORT_FILES`` on ``pyradiomics_brain2``. Rows already in ``--out`` are skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from corpus import load_split
from fastmri_test_layout import score, simulate_test_layout
from sampler_variants import emit

from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

# (coil family, coils, phase family, SNR dB, acceleration, centre fraction or None = 8 %, seed): written down with
# the rule before anything ran on them
FILES = [
    ("ring", 12, "poly", 30.0, 4.0, None, 21),
    ("wires", 20, "random", 40.0, 4.0, None, 22),
    ("ring", 8, "random", 44.0, 8.0, 0.04, 23),
    ("wires", 16, "poly", 27.0, 4.0, None, 24),
]
# fresh tune-volume file settings for the pre-registered test of the bootstrap's walk above 7 CG, written down before
# any run on them
FRESH_FILES = [
    ("ring", 16, "random", 36.0, 4.0, None, 31),
    ("wires", 12, "poly", 42.0, 4.0, None, 32),
    ("ring", 20, "poly", 32.0, 4.0, None, 33),
    ("wires", 16, "random", 38.0, 8.0, 0.04, 34),
]
# fresh tune-volume file settings for the test of the bootstrap's 7 -> 10 step, written down before any run on them
FRESH_FILES2 = [
    ("ring", 16, "poly", 33.0, 4.0, None, 41),
    ("wires", 14, "random", 30.0, 4.0, None, 42),
]
# the two report files of docs/benchmarks.md (fastmri_test_layout.py's defaults: 16 coils, 35 dB, seed 7)
REPORT_FILES = [("ring", 16, "poly", 35.0, 4.0, None, 7), ("loops", 16, "offres", 35.0, 4.0, None, 7)]


def file_scan(ref: np.ndarray, spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y (S, C, 256, 256) undersampled as the reader gives it, mask (256, 256), truth (S, 256, 256))."""
    coil_model, coils, phase_model, snr, accel, acs_frac, seed = spec
    w = ref.shape[-1]
    sim = simulate_test_layout(ref, coils=coils, snr_db=snr, accel=accel, seed=seed, coil_model=coil_model,
                               phase_model=phase_model, acs=None if acs_frac is None else int(round(acs_frac * w)))
    img = ifft2c(torch.as_tensor(sim["kspace"]))
    h = img.shape[-2]
    y = fft2c(img[..., h // 4 : h // 4 + ref.shape[-2], :]).numpy().astype(np.complex64)
    mask = np.broadcast_to(np.asarray(sim["mask"], np.float32)[None, :], y.shape[-2:]).copy()
    return y * mask, mask, sim["truth"]


def file_name(spec) -> str:
    return f"{spec[0]}{spec[1]}/{spec[2]}/{spec[3]:g}dB/equispacedx{spec[4]:g}/seed{spec[6]}"


def file_specs(split: str, seeds: str | None = None, fresh: int = 0) -> list:
    """The fastMRI-layout file settings of ``split`` (``fresh`` 1 / 2: FRESH_FILES / FRESH_FILES2, tune volumes);
    ``seeds`` (comma list): the same settings with these seeds."""
    specs = [FILES if split == "tune" else REPORT_FILES, FRESH_FILES, FRESH_FILES2][int(fresh)]
    return [(*s[:6], int(sd)) for s, sd in zip(specs, seeds.split(","), strict=True)] if seeds else list(specs)


def scans(split: str, files: bool, sets: str, specs: list | None = None):
    """Yield (row name, volume, y, mask, truth, slice ids, pilot index) for the rows of ``--part files`` (``files``;
    ``specs``: the file settings, default :func:`file_specs`) or ``--part suite`` (``sets``: SET or SET:a-b, comma
    separated; report:a-b = the report conditions) as :func:`main` runs them."""
    if files:
        specs = file_specs(split) if specs is None else specs
        refs = load_split(split, 256, 1.0, 3)
        vols = list(refs) if split == "tune" else ["pyradiomics_brain2"]
        for spec in specs:
            for vol in vols:
                y, mask, truth = file_scan(refs[vol].numpy(), spec)
                yield file_name(spec), vol, y, mask, truth, list(range(y.shape[0])), y.shape[0] // 2
        return
    import suite
    from pilot_study import scan
    from suite import CONDITIONS, cond_name

    for item in sets.split(","):
        name, _, rng = item.partition(":")
        conds = CONDITIONS["report"] if name == "report" else getattr(suite, name)
        lo, _, hi = rng.partition("-")
        chosen = range(int(lo), int(hi or lo) + 1) if rng else range(len(conds))
        for i in chosen:
            cond = conds[i]
            for vol, ref in load_split(split, cond[1], 256.0 / cond[1], 1).items():
                k, truth, mask = scan(ref, cond)
                y = (np.asarray(k) * np.asarray(mask, np.float32)).astype(np.complex64)
                yield cond_name(cond[0], *cond[1:]), vol, y, np.asarray(mask, np.float32), truth, [0], 0


def psnr_of(prior, y, mask, truth, ids: list[int], **opts) -> float:
    """PSNR (head mask) of the 40-step run with these ReconOptions overrides (seed 0)."""
    img = Reconstructor(prior, ReconOptions(seed=0, **opts)).reconstruct(y, mask, "sense", slice_ids=ids).images
    return round(score(img, np.asarray(truth))["psnr"], 3)


def run_row(prior, y, mask, truth, ids: list[int], pilot: int, recheck: bool = False,
            oracle: tuple[int, ...] = ()) -> dict:
    """The three runs of one row (see the module docstring). ``recheck``: the choice with ``count_recheck`` (the
    count moved on the own maps: one more run at that count, ``psnr["recheck"]``); ``oracle``: where own is chosen,
    the own-support run at each of these fixed counts (``psnr_fixed_own``)."""
    auto = Reconstructor(prior, ReconOptions(seed=0, count_recheck=recheck))
    t = time.time()
    auto.tune(y[pilot : pilot + 1], mask, "sense", slice_ids=[ids[pilot]])
    t_tune = time.time() - t
    t = time.time()
    auto.choose_support(y[pilot : pilot + 1], mask, "sense", slice_ids=[ids[pilot]])
    t_choice = time.time() - t
    row: dict = {"count": auto.tuning.n_cg if auto.tuning is not None else auto.n_cg(), "choice": auto.support_choice, "s_tune": round(t_tune, 1),
                 "s_choice": round(t_choice, 1), "psnr": {}, "s_run": {}}
    for support in ("release", "own"):
        rec = Reconstructor(prior, ReconOptions(seed=0, maps_support=support))
        rec.tuning = auto.tuning  # the count pilot runs on the release maps whatever the support: the same choice
        t = time.time()
        img = rec.reconstruct(y, mask, "sense", slice_ids=ids).images
        row["s_run"][support] = round(time.time() - t, 1)
        row["psnr"][support] = round(score(img, np.asarray(truth))["psnr"], 3)
    chosen = auto.support_choice["support"] if auto.support_choice else "release"
    row["psnr"]["auto"] = row["psnr"][chosen]
    if recheck:
        if auto.count_recheck is not None and chosen == "own":
            row["psnr"]["recheck"] = psnr_of(prior, y, mask, truth, ids, maps_support="own", n_cg=auto.count_recheck)
        else:
            row["psnr"]["recheck"] = row["psnr"]["auto"]
        row["recheck_count"] = auto.n_cg()
    if oracle and chosen == "own":
        row["psnr_fixed_own"] = {str(n): psnr_of(prior, y, mask, truth, ids, maps_support="own", n_cg=n)
                                 for n in oracle}
    row["delta_auto_minus_release"] = round(row["psnr"]["auto"] - row["psnr"]["release"], 3)
    row["picked_better"] = (row["psnr"][chosen] >= max(row["psnr"]["release"], row["psnr"]["own"]) - 1e-9)
    return row


def done_keys(out: str | None) -> set:
    if not out or not Path(out).exists():
        return set()
    return {(r["name"], r["volume"]) for r in map(json.loads, filter(str.strip, Path(out).read_text().splitlines()))}


def recorded_rows(description: str, extra: tuple = ()):
    """The command line of a study of this script's recorded rows (``--results FILE``, ``--files`` or ``--sets``,
    ``--split``, and ``extra`` (name, kwargs) arguments): yield (arguments, recorded row, y, mask, truth, slice ids,
    pilot slice index) for each row of the file, rebuilt by :func:`scans`."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--results", required=True)
    ap.add_argument("--sets", default="TUNE_REG11,TUNE_MAPS5")
    ap.add_argument("--files", action="store_true")
    ap.add_argument("--split", default="tune", choices=["tune", "report"])
    for name, kw in extra:
        ap.add_argument(name, **kw)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = {(r["name"], r["volume"]): r for r in map(json.loads, filter(str.strip, Path(a.results).read_text().splitlines()))}
    for name, vol, y, mask, truth, ids, i in scans(a.split, a.files, a.sets):
        if (name, vol) in rows:
            yield a, rows[(name, vol)], y, mask, truth, ids, i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["suite", "files"], default="suite")
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--sets", default="TUNE_REG11,TUNE_MAPS5", help="suite lists (SET or SET:a-b); report:0-5 = the "
                    "report conditions 0..5")
    ap.add_argument("--files", default=None, help="comma list of indices into FILES / REPORT_FILES (default all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recheck", action="store_true", help="also the count re-check on the own maps (count_recheck)")
    ap.add_argument("--oracle", default="", help="fixed counts run with the own support where own is chosen")
    ap.add_argument("--seeds", default=None, help="files: replace each FILES setting's seed by these (comma list)")
    ap.add_argument("--volume", default=None, help="files: only this volume")
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", default=None)
    ap.add_argument("--recheck-table", default=None)
    ap.add_argument("--margins", default=None, help="with --table: also score these margins on the recorded errors "
                    "(the first is the reference of the paired differences)")
    a = ap.parse_args()
    if a.recheck_table:
        recheck_table(Path(a.recheck_table))
        return None
    if a.table:
        table(Path(a.table))
        if a.margins:
            margins_table(Path(a.table), [float(v) for v in a.margins.split(",")])
        return None
    torch.set_num_threads(a.threads)
    prior = load_prior(None, "score", offline=True)[0]
    seen = done_keys(a.out)
    specs = file_specs(a.split, a.seeds)
    keep = None if not a.files else {file_name(specs[int(i)]) for i in a.files.split(",")}
    for name, vol, y, mask, truth, ids, pilot in scans(a.split, a.part == "files", a.sets, specs):
        if (name, vol) in seen or (keep is not None and name not in keep):
            continue
        if a.volume and vol != a.volume:
            continue
        oracle = tuple(int(v) for v in a.oracle.split(",") if v.strip())
        emit({"name": name, "volume": vol, **run_row(prior, y, mask, truth, ids, pilot, a.recheck, oracle)}, a.out)
    return None


def table(path: Path) -> None:
    rows = [json.loads(r) for r in path.read_text().splitlines() if r.strip()]
    print("| row | volume | count | supports (release / own) | hold-out error (release / own) | choice | release | own | auto − release |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["choice"] or {}
        fr = c.get("support_fraction", {})
        he = c.get("holdout_error", {})
        err = f"{he['release']:.4f} / {he['own']:.4f}" if he else "— (supports agree)"
        print(f"| {r['name']} | {r['volume']} | {r['count']} | {fr.get('release', float('nan')):.2f} / "
              f"{fr.get('own', float('nan')):.2f} | {err} | {c.get('support', 'release')} | {r['psnr']['release']:.2f} | "
              f"{r['psnr']['own']:.2f} | {r['delta_auto_minus_release']:+.2f} |")
    d = np.array([r["delta_auto_minus_release"] for r in rows])
    better = sum(bool(r["picked_better"]) for r in rows)
    pilots = [r["s_choice"] for r in rows]
    print(f"\n{len(rows)} rows: auto − release mean {d.mean():+.3f} dB, worst {d.min():+.3f}; the choice picked the "
          f"support with the better PSNR on {better}/{len(rows)}; own support chosen on "
          f"{sum((r['choice'] or {}).get('support') == 'own' for r in rows)}; choice pilots {np.mean(pilots):.1f} s "
          f"mean (tune pilots {np.mean([r['s_tune'] for r in rows]):.1f} s)")


def recheck_table(path: Path) -> None:
    """The count re-check test (``--recheck --oracle``): re-check − default per row, and on the rows where own was
    chosen how many are within 0.3 dB of the best fixed own-support count, for each."""
    rows = [json.loads(r) for r in path.read_text().splitlines() if r.strip()]
    d = np.array([r["psnr"]["recheck"] - r["psnr"]["auto"] for r in rows])
    print("| row | volume | count (default → re-check) | default | re-check | fixed own (3 / 5 / 7) |")
    print("|---|---|---|---|---|---|")
    within = {"auto": 0, "recheck": 0}
    own_rows = [r for r in rows if "psnr_fixed_own" in r]
    for r in rows:
        fx = r.get("psnr_fixed_own")
        cells = " / ".join(f"{fx[c]:.2f}" for c in sorted(fx, key=int)) if fx else "—"
        print(f"| {r['name']} | {r['volume']} | {r['count']} → {r['recheck_count']} | {r['psnr']['auto']:.2f} | "
              f"{r['psnr']['recheck']:.2f} | {cells} |")
        if fx:
            best = max(fx.values())
            for k in within:
                within[k] += int(r["psnr"][k] >= best - 0.3)
    print(f"\n{len(rows)} rows: re-check − default mean {d.mean():+.3f} dB, worst {d.min():+.3f}, best {d.max():+.3f}; "
          f"own chosen on {len(own_rows)}: within 0.3 dB of the best fixed own count default {within['auto']}, "
          f"re-check {within['recheck']}")


def with_margin(r: dict, margin: float) -> float:
    """The PSNR the choice would give with ``margin`` (from the row's recorded hold-out errors)."""
    he = (r["choice"] or {}).get("holdout_error")
    own = he is not None and he["own"] < (1.0 - margin) * he["release"]
    return r["psnr"]["own" if own else "release"]


def margins_table(path: Path, margins: list[float]) -> None:
    rows = [json.loads(r) for r in path.read_text().splitlines() if r.strip()]
    ref = np.array([with_margin(r, margins[0]) for r in rows])
    for m in margins:
        got = np.array([with_margin(r, m) for r in rows])
        rel = np.array([with_margin(r, m) - r["psnr"]["release"] for r in rows])
        print(f"margin {m:g}: − release mean {rel.mean():+.3f}, worst {rel.min():+.3f}; − margin {margins[0]:g} "
              f"mean {(got - ref).mean():+.3f}, worst {(got - ref).min():+.3f}, best {(got - ref).max():+.3f}")


if __name__ == "__main__":
    main()
