"""How reliable is the self-tuning pilot's choice, and which selection rule is most robust? (offline study)

Per (condition, volume) of ``benchmarks/suite.py``'s split: the full run (the release's 20 steps) at every fixed
(CG count, phase prior) in {1, 2, 3, 5, 7} x {0.005, 0.05} (PSNR in the head mask), and the hold-out pilot's error
for every pair on two independent hold-out folds (streams 0 and 2) at 10 pilot steps and on fold 0 at 20 steps,
kept per hidden group (a line for 1D masks, a sample otherwise), so that selection rules, their paired standard
errors and fold averages are compared offline (``--rules``), and the worst case against the best fixed pair is what
decides.

    python benchmarks/pilot_study.py --split tune --out benchmarks/results/pilot_study_tune.jsonl
    python benchmarks/pilot_study.py --rules benchmarks/results/pilot_study_tune.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import suite
import torch
from corpus import MAGNITUDE_PRIOR, head_mask, load_split, masked_psnr
from suite import (
    CONDITIONS,
    TUNE_BIG,
    TUNE_BIG2,
    TUNE_LOW,
    TUNE_MORE,
    TUNE_REG,
    TUNE_REG2,
    TUNE_REG3,
    TUNE_REG4,
    cond_name,
)

from mrdiff_cli.ops.compress import apply_compression, compression_matrices
from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.priors.loading import load_prior
from mrdiff_cli.samplers.adapters import is_complex_prior
from mrdiff_cli.samplers.noise import sample_generator
from mrdiff_cli.samplers.selftune import PILOT_LINE_CAP, split_holdout
from mrdiff_cli.tasks.reconstruct import PILOT_SAMPLE, ReconOptions, Reconstructor

COUNTS = (1, 2, 3, 5, 7)
PRIORS = (0.005, 0.05)
FOLDS = ((0, 10), (2, 10), (0, 20))  # (hold-out stream, pilot steps)


def group_errors(rec: Reconstructor, k, mask, stream: int, steps: int, variant: str = "",
                 priors: tuple[float, ...] = PRIORS) -> dict[str, list[float]] | None:
    """{"n/prior": per-group squared residual at the hidden samples, ..., "_y2": per-group |y|^2}. ``variant``:
    another hold-out scheme — "f0.3" hides 30 % instead of 15 %, "points" hides single samples of 1D masks too,
    "lines0.25" whole lines where 15 % of them is fewer than 4 but 4 are at most 25 % (split_holdout's line_cap),
    "acs2" the same centre subsampled on a grid twice as coarse, errors read on "acs"'s hidden lines only (each
    then ~2s lines from a kept one), "gap" the release's split with the nearest kept measured line on either side of each hidden line hidden too
    (the gap around each hidden line doubles) and the errors still read on the release's hidden lines only (None
    where the release's split is not whole lines), "acs" the calibration centre of a regular 1D mask subsampled on
    the mask's own grid (:func:`acs_split`; None for other masks)."""
    import mrdiff_cli.samplers.selftune as selftune
    import mrdiff_cli.tasks.reconstruct as recmod

    lines_of, split_of = selftune._sampled_lines, recmod.split_holdout
    if variant == "points":
        selftune._sampled_lines = lambda m: None  # type: ignore[assignment]
    min_hold = 4
    if variant.startswith("f"):  # "f0.3": hide 30 %; "f0.075m2": 7.5 %, at least 2 (lines or samples)
        frac, _, m = variant[1:].partition("m")
        rec = Reconstructor(rec.prior, ReconOptions(seed=0, holdout_frac=float(frac)))
        min_hold = int(m) if m else 4
    # the recorded folds are the split before whole lines were kept (line_cap 0); "lines0.25" is the release's now
    cap = float(variant[5:]) if variant.startswith("lines") else PILOT_LINE_CAP if variant == "gap" else 0.0
    if min_hold != 4:
        recmod.split_holdout = lambda *a, **kw: split_of(*a, min_hold=min_hold, **kw)  # type: ignore[assignment]
    try:
        prepared = rec._holdout_data(k, mask, "sense", None, compressed=False, stream=stream, line_cap=cap)
    finally:
        selftune._sampled_lines, recmod.split_holdout = lines_of, split_of
    if prepared is None:
        return None
    y, maps, split, fit, hold = prepared
    sig = rec._sigmas("sense", steps)
    lines = split.kind == "lines"
    h = hold.bool()
    if lines:  # group = one hidden line (columns when the mask is made of columns)
        col = bool(h.all(dim=0).any())
        idx = torch.nonzero(h.all(dim=0) if col else h.all(dim=1)).flatten()
    if variant == "gap":
        if not lines:
            return None
        fit = widen_gaps(fit, idx, col)
    if variant in ("acs", "acs2"):
        acs = acs_split(np.asarray(mask, dtype=np.float32))
        if acs is None:
            return None
        fit, hold = (torch.as_tensor(v).to(fit.device) for v in acs[:2])
        if variant == "acs2":
            coarse = acs_split(np.asarray(mask, dtype=np.float32), coarsen=2)
            assert coarse is not None
            fit = torch.as_tensor(coarse[0]).to(fit.device)
        h, lines = hold.bool(), True
        col = bool(h.all(dim=0).any())
        idx = torch.nonzero(h.all(dim=0) if col else h.all(dim=1)).flatten()

    def per_group(v: torch.Tensor) -> list[float]:  # v (C, H, W) real, zero outside hold
        if lines:
            s = v.sum(dim=(0, 1)) if col else v.sum(dim=(0, 2))
            return [float(s[i]) for i in idx]
        return [float(t) for t in v.sum(dim=0)[h]]

    out: dict[str, list[float]] = {"_y2": per_group((y[0] * hold).abs().square())}
    cache: dict = {}
    cplx = is_complex_prior(rec.prior)
    for n, r in itertools.product(COUNTS, priors):
        if cplx and r != priors[0]:  # a complex prior has no phase prior: one run per count, under every key
            out[f"{n}/{r}"] = out[f"{n}/{priors[0]}"]
            continue
        gen = [sample_generator(rec.opts.seed, PILOT_SAMPLE, 0)]
        x = rec._holdout_run(y, fit, "sense", maps, gen, n, r, sig, cache)
        pred = hold * fft2c(maps * x.unsqueeze(-3))
        out[f"{n}/{r}"] = per_group((pred - y * hold)[0].abs().square())
    out["_kind"] = split.kind  # type: ignore[assignment]
    return out


def widen_gaps(fit: torch.Tensor, idx: torch.Tensor, col: bool) -> torch.Tensor:
    """``fit`` (H, W) with the nearest kept line on either side of each hidden line ``idx`` (columns when ``col``)
    hidden as well: each hidden line then sits in the middle of a gap twice as wide as the release's pilot gives it
    (measured lines at distance ~2R instead of ~R on a regular mask)."""
    f = fit.clone()
    kept = torch.nonzero(fit.bool().all(dim=0) if col else fit.bool().all(dim=1)).flatten().tolist()
    for i in idx.tolist():
        below, above = [j for j in kept if j < i], [j for j in kept if j > i]
        for j in ([below[-1]] if below else []) + ([above[0]] if above else []):
            if col:
                f[:, j] = 0
            else:
                f[j, :] = 0
    return f


def acs_split(mask: np.ndarray, coarsen: int = 1) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(fit, hold, s) for a regular 1D mask (H, W) (:func:`~mrdiff_cli.samplers.selftune.regular_line_spacing`,
    s its mean outer line spacing): the calibration centre subsampled on the mask's own grid — every s-th centre
    line kept (``c + round(k s)``, c the DC line) — and ``hold`` the centre lines dropped, each 1 … s-1 lines from a
    kept one as every missing line of the scan is. None for other masks. ``coarsen``: keep only every
    ``coarsen``-th line of that grid in the centre (the DC line always)."""
    from mrdiff_cli.ops.masks import acs_shape
    from mrdiff_cli.samplers.selftune import _sampled_lines, regular_line_spacing

    s = regular_line_spacing(mask)
    if s is None:
        return None
    m = np.asarray(mask) > 0
    axis = _sampled_lines(m)
    mm = m if axis == 1 else m.T
    H, W = mm.shape
    aw = acs_shape(mm)[1]
    c, lo = W // 2, W // 2 - aw // 2
    centre = np.zeros(W, bool)
    centre[lo:lo + aw] = True
    k = np.arange(-int(W / s) - 1, int(W / s) + 2)
    grid = c + np.round(k[k % coarsen == 0] * s).astype(int)
    keep = np.zeros(W, bool)
    keep[grid[(grid >= 0) & (grid < W)]] = True
    hold_l = centre & ~keep
    lines = mm.all(axis=0)
    fit = np.repeat((lines & ~hold_l)[None], H, 0).astype(np.float32)
    hold = np.repeat(hold_l[None], H, 0).astype(np.float32)
    return (fit, hold, s) if axis == 1 else (fit.T.copy(), hold.T.copy(), s)


def scan(ref, cond):
    """The simulated k-space, reference (a tensor) and mask of a (condition, volume): ``suite.scan``."""
    k, truth_np, mask = suite.scan(ref, cond)
    return k, torch.as_tensor(truth_np), mask


def clean_kspace(ref, cond, y_raw: torch.Tensor, n_virtual: int) -> torch.Tensor:
    """The noise-free k-space of :func:`scan`'s acquisition (simulation only), coil-compressed as the measured data
    ``y_raw`` (S, C, H, W) are when the reconstruction keeps ``n_virtual`` of their coils."""
    clean = torch.as_tensor(suite.clean_kspace(ref, cond[0]))
    if n_virtual < clean.shape[1]:
        U, _ = compression_matrices(y_raw, n_virtual)
        clean = apply_compression(clean, U)
    return clean


def run_row(prior, vol, ref, cond, extra: dict | None = None, folds=FOLDS) -> dict:
    """``extra``: ReconOptions overrides for every run and pilot (e.g. phase_cs_lambda)."""
    acq, matrix, kind, R = cond
    extra = extra or {}
    k, truth, mask = scan(ref, cond)
    row: dict = {"condition": cond_name(acq, matrix, kind, R), "volume": vol, "psnr": {}, "pilots": {},
                 "options": extra}
    t = time.time()
    for n, r in itertools.product(COUNTS, PRIORS):
        if is_complex_prior(prior) and r != PRIORS[0]:  # no phase prior: the same run under every key
            row["psnr"][f"{n}/{r}"] = row["psnr"][f"{n}/{PRIORS[0]}"]
            continue
        img = Reconstructor(prior, ReconOptions(n_cg=n, phase_resid=None if is_complex_prior(prior) else r, seed=0, **extra)).reconstruct(k, mask, "sense").images
        x = torch.as_tensor(np.asarray(img), dtype=torch.float32)
        row["psnr"][f"{n}/{r}"] = round(float(np.mean(masked_psnr(x, truth, head_mask(truth)))), 3)
    row["s_full"] = round(time.time() - t, 1)
    rec = Reconstructor(prior, ReconOptions(seed=0, **extra))
    for stream, steps in folds:
        row["pilots"][f"{stream}/{steps}"] = group_errors(rec, k, mask, stream, steps)
    row["s_total"] = round(time.time() - t, 1)
    return row


def add_prior(prior, split: str, out: Path, r: float) -> None:
    """Every row of ``out`` (its split's conditions and suite.TUNE_MORE): the full runs at phase prior ``r`` for every
    count, and the pilot errors at ``r`` on fold 0 at 10 steps (the same split and noise as the recorded ones)."""
    refs = {}
    for cond in CONDITIONS[split] + (TUNE_MORE if split == "tune" else []):
        for vol, ref in load_split(split, cond[1], 256.0 / cond[1], 1).items():
            refs[(cond_name(cond[0], *cond[1:]), vol)] = (ref, cond)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    for row in rows:
        if f"3/{r}" in row["psnr"]:
            continue
        ref, cond = refs[(row["condition"], row["volume"])]
        k, truth, mask = scan(ref, cond)
        extra = row.get("options") or {}
        for n in COUNTS:
            img = Reconstructor(prior, ReconOptions(n_cg=n, phase_resid=None if is_complex_prior(prior) else r, seed=0, **extra)).reconstruct(k, mask, "sense").images
            x = torch.as_tensor(np.asarray(img), dtype=torch.float32)
            row["psnr"][f"{n}/{r}"] = round(float(np.mean(masked_psnr(x, truth, head_mask(truth)))), 3)
        p = group_errors(Reconstructor(prior, ReconOptions(seed=0, **extra)), k, mask, 0, 10, priors=(r,))
        if p is not None and row["pilots"].get("0/10") is not None:
            row["pilots"]["0/10"].update({key: v for key, v in p.items() if not key.startswith("_")})
        print(row["condition"], row["volume"], {n: row["psnr"][f"{n}/{r}"] for n in COUNTS}, flush=True)
        out.write_text("".join(json.dumps(x) + "\n" for x in rows))  # after every row: a cut run keeps what it did


# ------------------------------------------------------------------------------------------------ rules


def full_runs(paths: list[Path]) -> dict[tuple[str, str], dict[str, float]]:
    """(condition, volume) -> the recorded full runs' PSNR per "count/prior" in these results files."""
    out = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[(r["condition"], r["volume"])] = r["psnr"]
    return out


def best_fixed(psnr: dict[str, float], priors: tuple[float, ...] = PRIORS) -> float:
    """The best recorded full run over the pairs whose phase prior is in ``priors``."""
    return max(v for k, v in psnr.items() if float(k.split("/")[1]) in priors)


def rule_row(name: str, d: list[float]) -> str:
    """A markdown row: a rule's worst and mean difference to the best fixed pair, and the rows within 0.3 dB."""
    a = np.asarray(d)
    return f"| {name} | {a.min():+.2f} | {a.mean():+.2f} | {int((a >= -0.3).sum())}/{len(a)} |"


RULE_HEADER = "| rule | worst Δ best fixed pair (dB) | mean Δ | rows within 0.3 dB |\n|---|---|---|---|"


def rel(p: dict, key: str) -> float:
    return float(np.sum(p[key]) / max(np.sum(p["_y2"]), 1e-30))


def current_rule(p: dict, priors: tuple[float, ...] = PRIORS) -> str:
    """The release: the prior with the lower error at 3 CG, then the count with the least error at that prior
    (``priors``: the phase priors it may choose from)."""
    r = min(priors, key=lambda r: rel(p, f"3/{r}"))
    n = min(COUNTS, key=lambda n: rel(p, f"{n}/{r}"))
    return f"{n}/{r}"


def release_fold(row: dict) -> dict:
    """The fold whose split is the release's: the whole-lines split where it was recorded apart, else fold 0."""
    return row["pilots"].get("0/10/lines0.25") or row["pilots"]["0/10"]


def joint_rule(p: dict) -> str:
    return min((f"{n}/{r}" for n, r in itertools.product(COUNTS, PRIORS)), key=lambda k: rel(p, k))


def averaged(ps: list[dict]) -> dict:
    """Two folds pooled: errors and |y|^2 concatenated (the pooled relative error)."""
    keys = [k for k in ps[0] if not k.startswith("_kind") and all(k in p for p in ps)]  # e.g. 0.02 on one fold only
    out = {k: sum((list(p[k]) for p in ps), []) for k in keys}
    return out


def se_rule(p: dict, z: float, prefer: str) -> str:
    """The least-error pair, unless a safer pair is within z paired standard errors of it: ``prefer`` 'more'
    (more CG, then the looser prior) or 'fewer' (fewer CG, tighter prior)."""
    keys = [f"{n}/{r}" for n, r in itertools.product(COUNTS, PRIORS)]
    best = min(keys, key=lambda k: rel(p, k))
    y2 = max(np.sum(p["_y2"]), 1e-30)

    def order(k: str) -> tuple[float, float]:
        n, r = k.split("/")
        return (int(n), float(r)) if prefer == "more" else (-int(n), -float(r))

    ok = []
    for k in keys:
        d = (np.asarray(p[k]) - np.asarray(p[best])) / y2
        se = float(np.sqrt(len(d) * np.var(d))) if len(d) > 1 else 0.0
        if float(d.sum()) <= z * se:
            ok.append(k)
    return max(ok, key=order)


def paired_within(p: dict, a: str, b: str, z: float) -> bool:
    """Is pair ``a``'s hold-out error within ``z`` paired standard errors of pair ``b``'s? (per-group differences:
    their sum against z * sqrt(n) * their std)."""
    d = (np.asarray(p[a]) - np.asarray(p[b])) / max(np.sum(p["_y2"]), 1e-30)
    se = float(np.sqrt(len(d) * np.var(d, ddof=1))) if len(d) > 1 else 0.0
    return float(d.sum()) <= z * se


def se_count_rule(p: dict, z: float, walk: bool = True) -> str:
    """The release's phase prior, then a one-standard-error rule for the count (Breiman's: the fewest iterations
    whose error is within ``z`` paired standard errors of the least). ``walk``: step down from the argmin one
    candidate at a time and stop at the first that is not within (never jumps past a clearly worse count);
    otherwise the smallest count within."""
    r = min(PRIORS, key=lambda r: rel(p, f"3/{r}"))
    best = min(COUNTS, key=lambda n: rel(p, f"{n}/{r}"))
    lower = [n for n in COUNTS if n < best][::-1]
    pick = best
    for n in lower:
        if paired_within(p, f"{n}/{r}", f"{best}/{r}", z):
            pick = n
        elif walk:
            break
    return f"{pick}/{r}"


def rules(paths: list[Path], oracle_priors: tuple[float, ...] = PRIORS) -> None:
    """Replay the selection rules; each against the best fixed (count, prior) pair over ``oracle_priors`` (the
    release's two by default, so rows that also carry --add-prior runs give the same tables as before)."""
    rows = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    cands = {
        "release (fold 0, 10 steps)": lambda r: current_rule(r["pilots"]["0/10"]),
        "joint argmin (fold 0)": lambda r: joint_rule(r["pilots"]["0/10"]),
        "release, 20-step pilots": lambda r: current_rule(r["pilots"]["0/20"]),
        "release, 6-step pilots": lambda r: current_rule(r["pilots"]["0/6"]) if "0/6" in r["pilots"] else None,
        "joint argmin, 6-step pilots": lambda r: joint_rule(r["pilots"]["0/6"]) if "0/6" in r["pilots"] else None,
        "release, 30 % hidden": lambda r: current_rule(r["pilots"]["0/10/f0.3"]) if "0/10/f0.3" in r["pilots"] else None,
        "release, 1D masks: points": (lambda r: current_rule(r["pilots"]["0/10/points"])
                                      if "0/10/points" in r["pilots"] else None),
        "release, 2 folds pooled": lambda r: current_rule(averaged([r["pilots"]["0/10"], r["pilots"]["2/10"]])),
        "joint, 2 folds pooled": lambda r: joint_rule(averaged([r["pilots"]["0/10"], r["pilots"]["2/10"]])),
    }
    for z in (0.5, 1.0):
        for pref in ("more", "fewer"):
            cands[f"SE rule z={z} prefer {pref} (fold 0)"] = lambda r, z=z, pref=pref: se_rule(r["pilots"]["0/10"], z, pref)
            cands[f"SE rule z={z} prefer {pref} (2 folds)"] = lambda r, z=z, pref=pref: se_rule(
                averaged([r["pilots"]["0/10"], r["pilots"]["2/10"]]), z, pref)
    for ps in ((0.005, 0.02, 0.05), (0.005, 0.02)):  # rows with a third phase prior (--add-prior 0.02)
        cands[f"release, priors {'/'.join(map(str, ps))}"] = (
            lambda r, ps=ps: current_rule(r["pilots"]["0/10"], ps) if f"3/{ps[1]}" in r["pilots"]["0/10"] else None)
    cands["release, 2 lines hidden x 2 folds pooled (f0.075m2)"] = (
        lambda r: current_rule(averaged([r["pilots"]["0/10/f0.075m2"], r["pilots"]["2/10/f0.075m2"]]))
        if r["pilots"].get("0/10/f0.075m2") and r["pilots"].get("2/10/f0.075m2") else None)
    cands["release, whole lines (line_cap 0.25)"] = (
        lambda r: current_rule(r["pilots"]["0/10/lines0.25"]) if "0/10/lines0.25" in r["pilots"] else None)
    def acs_or_release(r: dict, prior_from_release: bool) -> str | None:
        acs = r["pilots"].get("0/10/acs")
        if acs is None:
            return None  # not recorded
        if acs is False:  # not a regular 1D mask: the release's split
            return current_rule(release_fold(r))
        if not prior_from_release:
            return current_rule(acs)
        pr = current_rule(release_fold(r)).split("/")[1]
        return f"{min(COUNTS, key=lambda n: rel(acs, f'{n}/{pr}'))}/{pr}"

    def ratio_rule(r: dict) -> str | None:
        acs, acs2 = r["pilots"].get("0/10/acs"), r["pilots"].get("0/10/acs2")
        if acs is None or acs2 is None:
            return None
        if acs is False:
            return current_rule(release_fold(r))
        rf = release_fold(r)
        corrected = {"_y2": [1.0]}
        for key in (k for k in rf if not k.startswith("_") and k in acs and k in acs2):
            corrected[key] = [rel(rf, key) * float(np.sum(acs[key])) / max(float(np.sum(acs2[key])), 1e-30)]
        return current_rule(corrected)

    cands["release (its split: whole lines where recorded apart, else fold 0)"] = lambda r: current_rule(release_fold(r))
    cands["release, regular 1D: geometry-corrected (release x acs / acs2)"] = ratio_rule
    cands["release, regular 1D: ACS-subsampled centre (0/10/acs)"] = lambda r: acs_or_release(r, False)
    cands["release, regular 1D: release's prior, count on the ACS split"] = lambda r: acs_or_release(r, True)
    for z in (0.5, 1.0, 2.0):
        cands[f"count 1-SE walk-down z={z} (fold 0)"] = lambda r, z=z: se_count_rule(r["pilots"]["0/10"], z)
    cands["count 1-SE smallest within z=1.0 (fold 0)"] = lambda r: se_count_rule(r["pilots"]["0/10"], 1.0, walk=False)
    cands["fixed 7/0.05"] = lambda r: "7/0.05"
    cands["fixed 5/0.05"] = lambda r: "5/0.05"
    print(f"{len(rows)} rows: {', '.join(map(str, paths))}")
    print(RULE_HEADER)
    for name, f in cands.items():
        d = []
        for r in rows:
            if any(v is None for k, v in r["pilots"].items() if k not in ("0/10/acs", "0/10/acs2")):
                continue
            best = best_fixed(r["psnr"], oracle_priors)
            try:
                pick = f(r)
            except KeyError:  # a fold this file did not record
                pick = None
            if pick is not None:
                d.append(r["psnr"][pick] - best)
        if d:
            print(rule_row(name, d))
    pooled = "release, 2 lines hidden x 2 folds pooled (f0.075m2)"
    picks = [(r, cands[pooled](r)) for r in rows]
    vs = [r["psnr"][pick] - r["psnr"][current_rule(r["pilots"].get("0/10/lines0.25") or r["pilots"]["0/10"])]
          for r, pick in picks if pick is not None]
    if vs:
        print(f"\n{pooled} against the release (whole-lines split) per row: mean {np.mean(vs):+.2f} dB, worst "
              f"{min(vs):+.2f}, {sum(v < -0.3 for v in vs)} of {len(vs)} rows more than 0.3 dB below")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "report"], default="tune")
    ap.add_argument("--conditions", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--rules", default=None, help="replay the selection rules on these results files (comma list)")
    ap.add_argument("--folds", default="0/10,2/10,0/20", help="pilot folds STREAM/STEPS of new rows")
    ap.add_argument("--opts", default="", help="ReconOptions overrides for every run, e.g. phase_cs_lambda=1e-3")
    ap.add_argument("--add-fold", default=None, help="STREAM/STEPS: add that pilot fold to every row of --out")
    ap.add_argument("--more", action="store_true", help="tune split: the extra conditions (suite.TUNE_MORE) instead")
    ap.add_argument("--low", action="store_true", help="tune split: the low-SNR conditions (suite.TUNE_LOW) instead")
    ap.add_argument("--reg", action="store_true", help="tune split: the regular-1D-mask rows (suite.TUNE_REG) instead")
    ap.add_argument("--reg2", action="store_true", help="tune split: the fresh regular rows (suite.TUNE_REG2) instead")
    ap.add_argument("--reg3", action="store_true", help="tune split: the third fresh set (suite.TUNE_REG3) instead")
    ap.add_argument("--reg4", action="store_true", help="tune split: the fourth fresh set (suite.TUNE_REG4) instead")
    ap.add_argument("--big", action="store_true", help="tune split: the 256²/320² rows (suite.TUNE_BIG) instead")
    ap.add_argument("--big2", action="store_true", help="tune split: the fresh 256²/320² rows (suite.TUNE_BIG2) instead")
    ap.add_argument("--model", default=None,
                    help="another prior (a complex-valued bundle: its counts only, no phase prior; default: the bundled one)")
    ap.add_argument("--oracle-priors", default=",".join(map(str, PRIORS)),
                    help="with --rules: the phase priors of the best fixed pair (add 0.02 where rows carry it)")
    ap.add_argument("--add-prior", type=float, default=None,
                    help="add this phase prior to every row of --out: its full runs and its fold-0 10-step pilot errors")
    a = ap.parse_args()
    if a.rules:
        rules([Path(p) for p in a.rules.split(",")], tuple(float(v) for v in a.oracle_priors.split(",")))
        return
    torch.set_num_threads(1)
    prior, _ = load_prior(a.model or MAGNITUDE_PRIOR, "score", offline=True)
    out = Path(a.out or f"benchmarks/results/pilot_study_{a.split}.jsonl")
    if a.add_prior is not None:
        add_prior(prior, a.split, out, a.add_prior)
        return
    if a.add_fold:
        stream, steps = (int(v) for v in a.add_fold.split("/")[:2])
        variant = a.add_fold.split("/")[2] if a.add_fold.count("/") == 2 else ""
        refs = {}
        for cond in CONDITIONS[a.split] + (TUNE_MORE + TUNE_LOW + TUNE_REG + TUNE_REG2 + TUNE_REG3 + TUNE_REG4 + TUNE_BIG + TUNE_BIG2 if a.split == "tune" else []):
            for vol, ref in load_split(a.split, cond[1], 256.0 / cond[1], 1).items():
                refs[(cond_name(cond[0], *cond[1:]), vol)] = (ref, cond)
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        rec = Reconstructor(prior, ReconOptions(seed=0))
        for row in rows:
            ref, cond = refs[(row["condition"], row["volume"])]
            k, _, mask = scan(ref, cond)
            m, frac = np.asarray(mask, dtype=np.float32), rec.opts.holdout_frac
            if (variant.startswith("lines") and (stream, steps) == (0, 10) and "0/10" in row["pilots"]
                    and split_holdout(m, frac, 0, line_cap=float(variant[5:])).kind
                    == split_holdout(m, frac, 0).kind):  # the same split as the recorded fold: the same errors
                row["pilots"][a.add_fold] = row["pilots"]["0/10"]
                continue
            if ("m" in variant and variant.startswith("f")
                    and split_holdout(m, frac, 0, line_cap=PILOT_LINE_CAP).kind != "lines"):
                row["pilots"][a.add_fold] = row["pilots"].get(f"{stream}/{steps}")  # only line masks are probed
                continue
            if (variant == "gap" and split_holdout(m, frac, 0, line_cap=PILOT_LINE_CAP).kind != "lines"
                    or variant in ("acs", "acs2") and acs_split(m) is None):
                row["pilots"][a.add_fold] = False  # only line masks are probed (False: not None, rules keep the row)
                continue
            row["pilots"][a.add_fold] = group_errors(rec, k, mask, stream, steps, variant)
            print(row["condition"], row["volume"], flush=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return
    done = {(r["condition"], r["volume"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    conds = ((TUNE_MORE if a.more else TUNE_LOW if a.low else TUNE_REG if a.reg else TUNE_REG2 if a.reg2
              else TUNE_REG3 if a.reg3 else TUNE_REG4 if a.reg4 else TUNE_BIG if a.big else TUNE_BIG2 if a.big2 else CONDITIONS[a.split])
             if a.split == "tune" else CONDITIONS[a.split])
    for i in [int(c) for c in a.conditions.split(",")] if a.conditions else range(len(conds)):
        cond = conds[i]
        for vol, ref in load_split(a.split, cond[1], 256.0 / cond[1], 1).items():
            if (cond_name(cond[0], *cond[1:]), vol) in done:
                continue
            extra = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in filter(None, a.opts.split(","))}
            folds = [tuple(int(v) for v in f.split("/")) for f in a.folds.split(",")]
            row = run_row(prior, vol, ref, cond, extra, folds)
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(row["condition"], vol, row["psnr"], row["s_total"], flush=True)


if __name__ == "__main__":
    main()
