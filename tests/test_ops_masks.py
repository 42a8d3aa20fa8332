"""Sampling masks: acceleration, calibration region, determinism, 1D structure, recovery from k-space."""

import numpy as np
import pytest

from mrdiff_cli.ops.masks import (
    MASK_KINDS,
    MaskResult,
    acceleration,
    acs_shape,
    is_undersampled,
    make_mask,
    mask_from_kspace,
)

KINDS_1D = ("gaussian1d", "uniform1d", "equispaced")
CASES = [(kind, shape, R) for kind in MASK_KINDS for shape in ((128, 128), (128, 96)) for R in (4, 8)]
_cache: dict = {}


def _mask(kind, shape, R, seed=0, acs=None) -> MaskResult:
    key = (kind, shape, R, seed, acs)
    if key not in _cache:
        _cache[key] = make_mask(kind, shape, R, acs=acs, seed=seed)
    return _cache[key]


def _acs_block(res: MaskResult):
    H, W = res.mask.shape
    a = res.acs
    cols = slice(W // 2 - a // 2, W // 2 - a // 2 + a)
    if res.kind in KINDS_1D:
        return res.mask[:, cols]
    return res.mask[H // 2 - a // 2 : H // 2 - a // 2 + a, cols]


@pytest.mark.parametrize("kind,shape,R", CASES)
def test_acceleration_and_acs(kind, shape, R):
    res = _mask(kind, shape, R)
    m = res.mask
    assert m.shape == shape and m.dtype == np.float32
    assert set(np.unique(m)) <= {0.0, 1.0}
    assert abs(res.achieved_accel - R) <= 0.05 * R
    assert res.achieved_accel == pytest.approx(m.size / m.sum())
    assert res.target_accel == R and res.kind == kind
    # fully sampled calibration region of the documented default size
    assert res.acs >= 6
    assert np.all(_acs_block(res) == 1)
    assert is_undersampled(m)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_same_seed_same_mask(kind):
    a = _mask(kind, (128, 128), 8, seed=3)
    b = make_mask(kind, (128, 128), 8, seed=3)
    assert np.array_equal(a.mask, b.mask)
    c = make_mask(kind, (128, 128), 8, seed=4)
    if kind == "equispaced":
        assert np.array_equal(a.mask, c.mask)
    else:
        assert not np.array_equal(a.mask, c.mask)


@pytest.mark.parametrize("kind", KINDS_1D)
def test_1d_masks_are_columns(kind):
    m = _mask(kind, (128, 96), 4).mask
    assert np.all(m == m[:1, :])  # constant along H (readout)
    assert 0 < m[0].sum() < 96


def test_equispaced_is_regular():
    m = _mask("equispaced", (128, 128), 8).mask[0]
    outside = np.flatnonzero(m)
    res = _mask("equispaced", (128, 128), 8)
    acs_cols = set(range(64 - res.acs // 2, 64 - res.acs // 2 + res.acs))
    gaps = np.diff([c for c in outside if c not in acs_cols])
    # every R-th column (the ACS block removes a few); at most one gap differs
    assert np.sum(gaps != np.median(gaps)) <= 2


def test_variable_density_2d():
    """2D kinds sample the centre of k-space more densely than the periphery."""
    rho = np.hypot(*np.meshgrid(np.arange(128) - 64, np.arange(128) - 64, indexing="ij"))
    for kind in ("poisson", "gaussian2d"):
        m = _mask(kind, (128, 128), 8).mask
        inner = m[(rho > 15) & (rho < 35)].mean()
        outer = m[rho > 50].mean()
        assert inner > 1.5 * outer, kind


def test_poisson_min_distance():
    """Poisson disc: no two samples are direct neighbours away from the centre.

    (At R=4 the disc radius near DC is below one sample, so the centre is densely sampled.)
    """
    for R in (4, 8):
        m = _mask("poisson", (128, 128), R).mask.astype(bool)
        m[40:88, 40:88] = False
        assert not np.any(m[1:] & m[:-1]) and not np.any(m[:, 1:] & m[:, :-1])
        # while a random mask with the same count has many neighbour pairs
        g = _mask("gaussian2d", (128, 128), R).mask.astype(bool)
        g[40:88, 40:88] = False
        assert np.sum(g[1:] & g[:-1]) > 20


def test_explicit_acs_and_defaults():
    res = make_mask("gaussian1d", (128, 128), 4, acs=16, seed=1)
    assert res.acs == 16 and np.all(_acs_block(res) == 1)
    assert _mask("gaussian1d", (128, 128), 4).acs == 10
    assert _mask("gaussian1d", (128, 128), 8).acs == 8  # capped at half of the 16-column budget
    assert _mask("poisson", (128, 128), 4).acs == 20
    res = make_mask("gaussian2d", (128, 128), 4, acs=0, seed=1)
    assert res.acs == 0 and abs(res.achieved_accel - 4) < 0.2


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_mask("radial", (64, 64), 4)
    for R in (1.0, 0.5, -2):
        with pytest.raises(ValueError):
            make_mask("poisson", (64, 64), R)
    with pytest.raises(ValueError, match="budget"):
        make_mask("uniform1d", (128, 128), 8, acs=40)  # 40 ACS columns > 16-column budget
    with pytest.raises(ValueError, match="budget"):
        make_mask("poisson", (128, 128), 8, acs=60)
    with pytest.raises(ValueError):
        make_mask("poisson", (64,), 4)


def test_mask_from_kspace_recovers_mask():
    rng = np.random.default_rng(0)
    for kind in ("poisson", "uniform1d"):
        m = _mask(kind, (128, 96), 4).mask
        shape = (2, 4, 128, 96)
        k = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
        km = k * m
        got = mask_from_kspace(km)
        assert got.shape == (128, 96) and got.dtype == np.float32
        assert np.array_equal(got, m)
        # a location counts as sampled if any coil has signal there
        km2 = km.copy()
        km2[:, 1:] = 0
        assert np.array_equal(mask_from_kspace(km2), m)
        assert acceleration(got) == pytest.approx(acceleration(m))
    # a tolerance hides tiny values
    k = np.zeros((8, 8), dtype=np.complex64)
    k[2, 3] = 1e-3
    k[4, 4] = 1.0
    assert mask_from_kspace(k).sum() == 2 and mask_from_kspace(k, tol=1e-2).sum() == 1


def test_acs_shape_and_acceleration_helpers():
    assert acs_shape(_mask("uniform1d", (128, 96), 4).mask)[0] == 128
    assert acs_shape(_mask("gaussian2d", (128, 128), 8).mask) == (20, 20)
    assert acs_shape(np.ones((16, 16))) == (16, 16)
    assert acceleration(np.ones((4, 4))) == 1.0 and not is_undersampled(np.ones((4, 4)))
    with pytest.raises(ValueError):
        acceleration(np.zeros((4, 4)))
