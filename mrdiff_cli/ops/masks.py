"""Seeded k-space sampling masks (pure numpy; 1 = sampled).

Every mask is a float32 array of shape ``(H, W)`` on the *centred* k-space grid used by
:func:`mrdiff_cli.ops.fft.fft2c` (DC at index ``(H // 2, W // 2)``). 1D masks select phase-encode
columns along the LAST axis (W) and are replicated over the readout axis H.

Kinds (:data:`MASK_KINDS`)
--------------------------
``poisson``     2D variable-density Poisson disc. Dart throwing over the grid in a seeded random order;
                a candidate is rejected when it lies closer than ``r(p) = r0 * (1 + rho(p))`` to an
                already accepted sample (``rho`` = elliptical radius, 0 at DC, 1 at the edge), and points
                closer than ``r`` to the ACS block are rejected too. ``r0`` is found by bisection; the
                surplus darts of the last bracket are dropped in reverse acceptance order, so the sample
                count is exact (``round(H W / R)``) and the minimum-distance property is kept.
``gaussian2d``  2D random sampling without replacement from a Gaussian density
                ``exp(-rho^2 / (2 * 0.5^2))``, exact count ``round(H W / R)``.
``gaussian1d``  random columns from a Gaussian density over W (same width), exact count ``round(W / R)``.
``uniform1d``   random columns with uniform density, exact count ``round(W / R)``.
``equispaced``  every ``s``-th column placed symmetrically around DC, plus the ACS columns. The spacing
                (integer ``s`` preferred, fractional otherwise) is chosen so the total is as close as
                possible to ``round(W / R)``; the remaining difference (at most a few columns) is fixed
                by dropping the outermost or filling the widest gap. Does not depend on the seed.

Every kind samples exactly ``round(H W / R)`` locations (2D) or ``round(W / R)`` columns (1D), ACS
included, so the achieved acceleration ``H W / mask.sum()`` differs from ``R`` only by that rounding:
within +-5 % whenever the budget is at least 10 columns / samples (exact for R = 4, 8 at 128 x 128).

Calibration (ACS) region defaults
---------------------------------
Every mask has a fully sampled centre: ``acs`` central columns (1D kinds) or an ``acs x acs`` square
(2D kinds), placed like :func:`mrdiff_cli.ops.operators.crop_kspace` (start ``H//2 - acs//2``).

* 1D: ``acs = max(8, round(0.08 * W))`` columns (10 at W = 128, 8 at W = 96), but at most half the
  column budget ``round(W / R)`` (R = 8 gives 8 ACS columns of 16 at W = 128, 6 of 12 at W = 96).
* 2D: ``acs = max(8, round(0.16 * min(H, W)))`` (20 at 128 x 128, 15 at 128 x 96), but the square holds
  at most half the sample budget (``acs <= floor(sqrt(H W / (2 R)))``).
* An acceleration that would cut the default below ``MIN_ACS = 4`` (1D: R > W / 8; 2D: R > H W / 32) is refused
  with :class:`ValueError`: the matrix cannot support it (R = 1000 on 256 x 256 is not a reconstruction).

An explicit ``acs`` is used as given; ``acs = 0`` means no calibration region. An explicit ``acs`` that
does not fit the budget (more ACS samples than ``H W / R``) or the grid raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

MASK_KINDS: tuple[str, ...] = ("poisson", "gaussian2d", "gaussian1d", "uniform1d", "equispaced")
_KINDS_1D = ("gaussian1d", "uniform1d", "equispaced")

_GAUSS_SIGMA = 0.5  # width of the Gaussian densities in units of the half-extent of k-space
_POISSON_SLOPE = 1.0  # Poisson-disc radius grows as r0 * (1 + slope * rho)


@dataclass
class MaskResult:
    """A sampling mask and how it was made."""

    mask: np.ndarray  # (H, W) float32, 1 = sampled
    kind: str
    target_accel: float
    achieved_accel: float  # H * W / mask.sum()
    acs: int  # ACS size actually used (columns for 1D kinds, square side for 2D kinds)
    seed: int


# ----------------------------------------------------------------------------------------------
# helpers


def _centre_slice(n: int, size: int) -> slice:
    start = n // 2 - size // 2
    return slice(start, start + size)


def _rho(shape: tuple[int, int]) -> np.ndarray:
    """Elliptical k-space radius: 0 at DC, 1 at the middle of each edge."""
    H, W = shape
    ky = (np.arange(H) - H // 2) / (H / 2.0)
    kx = (np.arange(W) - W // 2) / (W / 2.0)
    return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


MIN_ACS = 4  # smallest default calibration: 4 central columns (1D) or a 4 x 4 square (2D); ESPIRiT needs this much


def _default_acs(kind: str, shape: tuple[int, int], accel: float) -> int:
    """The default calibration size; ValueError when the budget at this acceleration holds less than MIN_ACS
    calibration lines next to as many outer ones (the matrix cannot support the acceleration)."""
    H, W = shape
    if kind in _KINDS_1D:
        budget = round(W / accel)
        acs = min(max(8, round(0.08 * W)), budget // 2, W)
        max_r, unit = W / (2 * MIN_ACS), f"{budget} of {W} columns"
    else:
        budget = round(H * W / accel)
        acs = min(max(8, round(0.16 * min(H, W))), int(math.floor(math.sqrt(budget / 2.0))), H, W)
        max_r, unit = H * W / (2 * MIN_ACS**2), f"{budget} samples of {H}x{W}"
    if acs < min(MIN_ACS, H, W):
        raise ValueError(
            f"acceleration {accel:g} leaves {unit}: too few for a calibration region of {MIN_ACS} lines plus outer "
            f"k-space; this matrix supports R <= {max_r:.3g} with the default calibration"
        )
    return acs


def _check_args(kind: str, shape, accel: float, acs: int | None) -> tuple[str, tuple[int, int], float]:
    if not isinstance(kind, str) or kind.lower() not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASK_KINDS)}")
    kind = kind.lower()
    try:
        H, W = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"mask shape must be two integers (H, W), got {shape!r}") from None
    if H < 1 or W < 1:
        raise ValueError(f"mask shape must be positive, got {(H, W)}")
    accel = float(accel)
    if not math.isfinite(accel) or accel <= 1.0:
        raise ValueError(f"acceleration must be a finite number > 1, got {accel}")
    n_units = W if kind in _KINDS_1D else H * W
    if round(n_units / accel) < 1:
        unit = "column" if kind in _KINDS_1D else "sample"
        raise ValueError(f"acceleration {accel} leaves less than one {unit} of a {H}x{W} grid")
    if acs is not None and (not isinstance(acs, (int, np.integer)) or acs < 0):
        raise ValueError(f"acs must be a non-negative integer, got {acs!r}")
    return kind, (H, W), accel


def _result(mask: np.ndarray, kind: str, accel: float, acs: int, seed: int) -> MaskResult:
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    return MaskResult(
        mask=mask, kind=kind, target_accel=accel, achieved_accel=acceleration(mask), acs=int(acs), seed=seed
    )


# ----------------------------------------------------------------------------------------------
# 1D kinds (columns)


def _columns_random(W: int, n_cols: int, acs_cols: np.ndarray, density: np.ndarray, rng) -> np.ndarray:
    chosen = np.zeros(W, dtype=bool)
    chosen[acs_cols] = True
    n_extra = n_cols - int(chosen.sum())
    if n_extra > 0:
        free = np.flatnonzero(~chosen)
        p = density[free] / density[free].sum()
        chosen[rng.choice(free, size=n_extra, replace=False, p=p)] = True
    return chosen


def _equispaced_columns(W: int, n_cols: int, acs_cols: np.ndarray) -> np.ndarray:
    c = W // 2
    base = np.zeros(W, dtype=bool)
    base[acs_cols] = True

    def pattern(s: float) -> np.ndarray:
        kmax = int(W / s) + 1
        k = np.arange(-kmax, kmax + 1)
        pos = c + np.round(k * s).astype(int)
        pos = pos[(pos >= 0) & (pos < W)]
        cols = base.copy()
        cols[pos] = True
        return cols

    best = pattern(1.0)  # integer spacings first ("every s-th column")
    best_err = abs(int(best.sum()) - n_cols)
    for s in range(2, W + 1):
        cols = pattern(float(s))
        err = abs(int(cols.sum()) - n_cols)
        if err < best_err:
            best, best_err = cols, err
    if best_err > 0.02 * n_cols:  # fractional spacing when no integer one is close enough
        for s in np.linspace(1.0, float(W), 8 * W):
            cols = pattern(float(s))
            err = abs(int(cols.sum()) - n_cols)
            if err < best_err:
                best, best_err = cols, err
    cols = best
    # exact count: drop outermost non-ACS columns or fill the widest gaps (deterministic)
    while cols.sum() > n_cols:
        extra = np.flatnonzero(cols & ~base)
        cols[extra[np.argmax(np.abs(extra - c))]] = False
    while cols.sum() < n_cols:
        idx = np.concatenate(([-1], np.flatnonzero(cols), [W]))
        gaps = np.diff(idx)
        g = int(np.argmax(gaps))
        cols[(idx[g] + idx[g + 1]) // 2] = True
    return cols


# ----------------------------------------------------------------------------------------------
# 2D kinds


def _poisson_darts(
    order: list[int],
    keys: list[int],
    stencils: dict[int, np.ndarray],
    shape_padded: tuple[int, int],
    pad: int,
    blocked: np.ndarray,
    width: int,
) -> list[int]:
    """One dart-throwing pass; returns the accepted flat grid indices in acceptance order."""
    Hp, Wp = shape_padded
    buf = bytearray(Hp * Wp)
    excl = np.frombuffer(buf, dtype=np.uint8).reshape(Hp, Wp)
    excl[pad : Hp - pad, pad : Wp - pad] = blocked
    accepted = []
    for idx in order:
        y, x = divmod(idx, width)
        if buf[(y + pad) * Wp + x + pad]:
            continue
        accepted.append(idx)
        st = stencils[keys[idx]]
        h = st.shape[0] // 2
        excl[y + pad - h : y + pad + h + 1, x + pad - h : x + pad + h + 1] |= st
    return accepted


def _poisson_mask(shape: tuple[int, int], n_target: int, acs: int, rng) -> np.ndarray:
    H, W = shape
    acs_mask = np.zeros(shape, dtype=bool)
    acs_mask[_centre_slice(H, acs), _centre_slice(W, acs)] = True
    n_acs = int(acs_mask.sum())
    n_darts = n_target - n_acs
    if n_darts <= 0:
        return acs_mask
    rho = _rho(shape)
    # distance of every grid point to the ACS block (0 inside)
    yy, xx = np.arange(H)[:, None], np.arange(W)[None, :]
    if acs > 0:
        ys, xs = _centre_slice(H, acs), _centre_slice(W, acs)
        dy = np.maximum(0, np.maximum(ys.start - yy, yy - (ys.stop - 1)))
        dx = np.maximum(0, np.maximum(xs.start - xx, xx - (xs.stop - 1)))
        d_acs = np.sqrt(dy**2 + dx**2).astype(np.float64)
    else:
        d_acs = np.full(shape, np.inf)
    order = rng.permutation(H * W).tolist()  # one random order for every pass: deterministic bisection
    quant = 4.0  # radii quantised to 1/4 sample for stencil caching

    def throw(r0: float) -> list[int]:
        radius = r0 * (1.0 + _POISSON_SLOPE * rho)
        keys_arr = np.round(radius * quant).astype(np.int64)
        stencils = {}
        for key in np.unique(keys_arr).tolist():
            r = key / quant
            h = max(int(math.ceil(r)) - 1, 0)
            o = np.arange(-h, h + 1)
            stencils[key] = ((o[:, None] ** 2 + o[None, :] ** 2) < r * r).astype(np.uint8)
        pad = max(st.shape[0] // 2 for st in stencils.values())
        blocked = (acs_mask | (d_acs < radius)).astype(np.uint8)
        return _poisson_darts(
            order, keys_arr.ravel().tolist(), stencils, (H + 2 * pad, W + 2 * pad), pad, blocked, W
        )

    # bracket: r_lo gives >= n_darts darts, r_hi fewer
    # (r0 = 0.25 keeps every radius below one sample: no exclusion, all free points accepted)
    r_lo, r_hi = 0.25, max(1.0, math.sqrt(H * W / max(n_target, 1)))
    while len(throw(r_hi)) >= n_darts:
        r_lo, r_hi = r_hi, 2.0 * r_hi
    acc_lo = throw(r_lo)
    for _ in range(30):
        if len(acc_lo) - n_darts <= max(1, int(0.01 * n_target)) or r_hi / r_lo < 1.0005:
            break
        r_mid = math.sqrt(r_lo * r_hi)
        acc = throw(r_mid)
        if len(acc) >= n_darts:
            r_lo, acc_lo = r_mid, acc
        else:
            r_hi = r_mid
    mask = acs_mask.ravel().copy()
    mask[np.asarray(acc_lo[:n_darts], dtype=np.int64)] = True  # drop the surplus, last accepted first
    return mask.reshape(shape)


# ----------------------------------------------------------------------------------------------
# public API


def make_mask(
    kind: str, shape: tuple[int, int], accel: float, acs: int | None = None, seed: int = 0
) -> MaskResult:
    """Make a seeded sampling mask of ``kind`` for a ``shape = (H, W)`` grid at acceleration ``accel``.

    ``acs`` is the calibration size (central columns for 1D kinds, square side for 2D kinds); ``None``
    picks the module default. Raises :class:`ValueError` for an unknown kind, ``accel <= 1``, or an
    ``acs`` that does not fit the grid or the sample budget. Same ``seed`` -> identical mask.
    """
    kind, (H, W), accel = _check_args(kind, shape, accel, acs)
    acs_used = _default_acs(kind, (H, W), accel) if acs is None else int(acs)
    rng = np.random.default_rng(seed)
    if kind in _KINDS_1D:
        n_cols = round(W / accel)
        if acs_used > W:
            raise ValueError(f"acs={acs_used} columns does not fit a grid {W} columns wide")
        if acs_used > n_cols:
            raise ValueError(
                f"acs={acs_used} columns exceed the budget of {n_cols} columns at R={accel:g} "
                f"(W={W}); lower acs or the acceleration"
            )
        acs_cols = np.arange(W)[_centre_slice(W, acs_used)]
        u = (np.arange(W) - W // 2) / (W / 2.0)
        if kind == "gaussian1d":
            cols = _columns_random(W, n_cols, acs_cols, np.exp(-(u**2) / (2 * _GAUSS_SIGMA**2)), rng)
        elif kind == "uniform1d":
            cols = _columns_random(W, n_cols, acs_cols, np.ones(W), rng)
        else:
            cols = _equispaced_columns(W, n_cols, acs_cols)
        mask = np.broadcast_to(cols[None, :], (H, W))
    else:
        n_target = round(H * W / accel)
        if acs_used > min(H, W):
            raise ValueError(f"acs={acs_used} does not fit a {H}x{W} grid")
        if acs_used * acs_used > n_target:
            raise ValueError(
                f"acs={acs_used} ({acs_used ** 2} samples) exceeds the budget of {n_target} samples "
                f"at R={accel:g} on {H}x{W}; lower acs or the acceleration"
            )
        if kind == "gaussian2d":
            acs_mask = np.zeros((H, W), dtype=bool)
            acs_mask[_centre_slice(H, acs_used), _centre_slice(W, acs_used)] = True
            density = np.exp(-(_rho((H, W)) ** 2) / (2 * _GAUSS_SIGMA**2)).ravel()
            flat = acs_mask.ravel().copy()
            free = np.flatnonzero(~flat)
            n_extra = n_target - int(flat.sum())
            if n_extra > 0:
                p = density[free] / density[free].sum()
                flat[rng.choice(free, size=n_extra, replace=False, p=p)] = True
            mask = flat.reshape(H, W)
        else:
            mask = _poisson_mask((H, W), n_target, acs_used, rng)
    return _result(mask, kind, accel, acs_used, seed)


def mask_from_kspace(k: npt.ArrayLike, tol: float = 0.0) -> np.ndarray:
    """Sampling pattern (H, W) float32 of k-space ``(..., H, W)``: sampled where any coil/slice has |k| > tol.

    Accepts numpy arrays or CPU tensors (anything ``np.asarray`` takes). A 1D (column) pattern is
    returned as the full ``(H, W)`` array as well.
    """
    a = np.asarray(k)
    if a.ndim < 2:
        raise ValueError(f"k-space needs at least 2 dimensions (H, W), got shape {a.shape}")
    hit = np.abs(a) > tol
    if a.ndim > 2:
        hit = hit.reshape(-1, *a.shape[-2:]).any(axis=0)
    return hit.astype(np.float32)


def acceleration(mask: npt.ArrayLike) -> float:
    """Acceleration ``H * W / number of sampled locations`` of an (H, W) (or broadcastable) mask."""
    m = np.asarray(mask, dtype=np.float64)
    n = float((m > 0).sum())
    if n == 0:
        raise ValueError("mask samples nothing: acceleration is undefined")
    return float(m.size) / n


def is_undersampled(mask: npt.ArrayLike) -> bool:
    """True when at least one k-space location is not sampled."""
    m = np.asarray(mask)
    return bool((m <= 0).any())


def acs_shape(mask: npt.ArrayLike) -> tuple[int, int]:
    """Largest centred, fully sampled calibration rectangle ``(h, w)`` of an (H, W) mask.

    Candidates: the central run of fully sampled columns (``(H, w)``, 1D masks), the central run of
    fully sampled rows (``(h, W)``) and the largest centred fully sampled square; the largest area wins.
    ``(0, 0)`` when not even DC is sampled.
    """
    m = np.asarray(mask) > 0
    if m.ndim != 2:
        raise ValueError(f"acs_shape needs an (H, W) mask, got shape {m.shape}")
    H, W = m.shape
    cy, cx = H // 2, W // 2

    def run(full: np.ndarray, c: int) -> int:
        if not full[c]:
            return 0
        lo, hi = c, c
        while lo - 1 >= 0 and full[lo - 1]:
            lo -= 1
        while hi + 1 < full.size and full[hi + 1]:
            hi += 1
        # centred like crop_kspace: start = c - n // 2, so the run must be (almost) symmetric
        n = hi - lo + 1
        while n > 0 and not (c - n // 2 >= lo and c - n // 2 + n - 1 <= hi):
            n -= 1
        return n

    wc = run(np.asarray(m.all(axis=0)), cx)
    hr = run(np.asarray(m.all(axis=1)), cy)
    a = 0
    while a < min(H, W) and m[_centre_slice(H, a + 1), _centre_slice(W, a + 1)].all():
        a += 1
    cands = [(H, wc) if wc else (0, 0), (hr, W) if hr else (0, 0), (a, a)]
    return max(cands, key=lambda hw: (hw[0] * hw[1], hw[1]))
