"""The calibration shipped with a model: noise estimate, variance pooling, split-conformal fit and its application."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mrdiff_cli.tasks.calibration import (
    LEVELS,
    Calibration,
    calibration_report,
    conformal_quantile,
    estimate_kspace_noise,
    fit_calibration,
    local_error_oracle,
    local_rms_error,
    pool_variance,
    sparsification,
)


def test_conformal_quantile_finite_sample_coverage():
    rng = np.random.default_rng(0)
    for n in (7, 50, 999, 1000):
        sc = rng.exponential(size=n)
        for level in (0.68, 0.9, 0.95):
            q = conformal_quantile(sc, level)
            cov = float(np.mean(sc <= q))
            # at least `level`, and at most one order statistic more than ceil((n + 1) level) / n
            assert level <= cov <= min(1.0, math.ceil((n + 1) * level) / n) + 1e-12
    assert conformal_quantile(np.array([3.0, 1.0, 2.0]), 0.99) == 3.0  # rank beyond n: the largest
    with pytest.raises(ValueError):
        conformal_quantile(np.array([]), 0.9)


def test_pool_variance_box_mean():
    v = np.zeros((1, 5, 5), np.float32)
    v[0, 2, 2] = 9.0
    p = pool_variance(v, 3)
    assert p.shape == v.shape and p[0, 2, 2] == pytest.approx(1.0) and p[0, 1, 1] == pytest.approx(1.0)
    assert p[0, 0, 0] == 0.0 and p.sum() == pytest.approx(9.0)
    corner = np.zeros((1, 4, 4), np.float32)
    corner[0, 0, 0] = 4.0
    assert pool_variance(corner, 3)[0, 0, 0] == pytest.approx(1.0)  # edges average the 4 pixels inside
    np.testing.assert_array_equal(pool_variance(v, 1), v)


def test_noise_estimate_coil_redundancy():
    """Smooth coil maps x an image + white noise: the estimate follows the noise (not the image), scales with it,
    is ~0 without noise, and is 0 (exact data) for a single coil."""
    import torch

    from mrdiff_cli.tasks.simulate import analytic_phantom, simulate_kspace

    img = analytic_phantom(64)
    rng = np.random.default_rng(1)
    img = img * (1 + 0.3 * rng.standard_normal(img.shape))  # noise-like image texture (a real scan's own noise)
    k0, _, _ = simulate_kspace(np.stack([img, img]), coils=8, snr_db=None, seed=0)
    p = float(np.mean(np.abs(k0) ** 2))
    mask = np.zeros((64, 64), np.float32)
    mask[:, 26:38] = 1.0  # 12 ACS columns
    mask[:, ::4] = 1.0
    for snr_db in (25.0, 35.0):
        sigma = math.sqrt(p / 10 ** (snr_db / 10))
        n = (rng.standard_normal(k0.shape) + 1j * rng.standard_normal(k0.shape)) * sigma / math.sqrt(2)
        est = estimate_kspace_noise(torch.as_tensor((k0 + n) * mask), mask)
        assert est.shape == (2,)
        assert 0.9 * sigma < float(est.min()) and float(est.max()) < 1.35 * sigma
    assert float(estimate_kspace_noise(torch.as_tensor(k0 * mask), mask).max()) < 0.05 * sigma
    assert float(estimate_kspace_noise(torch.as_tensor(k0[:, :1] * mask), mask).max()) == 0.0  # one coil
    tiny = np.zeros((64, 64), np.float32)
    tiny[30:34, 30:34] = 1.0  # a 4 x 4 centre is too small for 5 x 5 kernels
    assert float(estimate_kspace_noise(torch.as_tensor(k0 * tiny), tiny).max()) == 0.0


def _data(seed: int, S: int = 6, scale: float = 1.0):
    """Synthetic volumes whose error is N(0, (0.7 sqrt(var) + 0.02 mean)^2): known shape, known scale."""
    rng = np.random.default_rng(seed)
    H = W = 32
    yy, xx = np.mgrid[:H, :W]
    head = ((yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 13**2).astype(np.float64)
    ref = np.stack([head * (0.5 + rng.random((H, W))) for _ in range(S)]) * scale
    var = (rng.random((S, H, W)) * 0.05 * scale) ** 2
    sd = 0.7 * np.sqrt(var) + 0.02 * ref
    mean = ref + rng.standard_normal((S, H, W)) * sd
    return mean, var, ref


def test_factor_fit_hits_nominal_coverage_on_its_data():
    mean, var, ref = _data(1)
    cal = fit_calibration([mean], [var], [ref], method="factor", pool=1, fitted_on=["synthetic"])
    rep = calibration_report(mean, cal.std(mean, var), ref)
    n = rep["overall"]["support_pixels"]
    cov = rep["overall"]["coverage"]["95"]
    assert 0.95 <= cov <= math.ceil((n + 1) * 0.95) / n + 1e-12  # split-conformal, every slice used
    assert cal.fitted_on == ["synthetic"] and cal.info["calibration_pixels"] == n


def test_loglinear_fit_recovers_shape_and_covers_the_held_back_half():
    mean, var, ref = _data(2, S=8)
    cal = fit_calibration([mean], [var], [ref], method="loglinear", pool=1)
    assert cal.params["a"] > 0.2 and cal.params["b"] > 0.05  # both the spread and the intensity matter here
    std = cal.std(mean, var)
    odd = slice(1, None, 2)  # the calibration half (even slices fitted the shape)
    rep = calibration_report(mean[odd], std[odd], ref[odd])
    n = rep["overall"]["support_pixels"]
    assert 0.95 <= rep["overall"]["coverage"]["95"] <= math.ceil((n + 1) * 0.95) / n + 1e-12
    # better ranking than the raw spread alone, since the error also grows with intensity
    raw = calibration_report(mean, np.sqrt(var), ref)["overall"]["spearman"]
    assert calibration_report(mean, std, ref)["overall"]["spearman"] > raw
    # fresh data from the same distribution: coverage near nominal
    m2, v2, r2 = _data(3, S=8)
    assert calibration_report(m2, cal.std(m2, v2), r2)["overall"]["coverage"]["95"] == pytest.approx(0.95, abs=0.02)


def test_loglinear_is_scale_equivariant():
    mean, var, ref = _data(4)
    cal = fit_calibration([mean], [var], [ref], method="loglinear", pool=3)
    np.testing.assert_allclose(cal.std(7.0 * mean, 49.0 * var), 7.0 * cal.std(mean, var), rtol=1e-5)


def test_dict_round_trip_and_validation():
    mean, var, ref = _data(5)
    cal = fit_calibration([mean], [var], [ref], method="loglinear", pool=3, fitted_on=["a", "b"], info={"samples": 8})
    d = json.loads(json.dumps(cal.to_dict()))
    back = Calibration.from_dict(d)
    np.testing.assert_array_equal(back.std(mean, var), cal.std(mean, var))
    assert d["method"] == "loglinear" and d["fitted_on"] == ["a", "b"] and d["info"]["samples"] == 8
    for bad in ({"method": "isotonic", "params": {"factor": 1.0}}, {"method": "factor", "params": {}},
                {"method": "factor", "params": {"factor": -1.0}}, {"params": {"factor": 1.0}}, [1, 2],
                {"method": "factor", "params": {"factor": float("nan")}}):
        with pytest.raises(ValueError):
            Calibration.from_dict(bad)


def test_report_has_three_levels():
    mean, var, ref = _data(6)
    ov = calibration_report(mean, np.sqrt(var), ref)["overall"]
    assert set(ov["coverage"]) == set(LEVELS) == {"68", "90", "95"}
    assert ov["coverage"]["68"] <= ov["coverage"]["90"] <= ov["coverage"]["95"] == ov["coverage_1.96"]


def test_local_error_oracle_leaves_the_pixel_out():
    err = np.zeros((1, 9, 9))
    err[0, 4, 4] = 3.0
    o = local_error_oracle(err)
    assert o[0, 4, 4] == 0.0  # its own error is not used
    assert np.isclose(o[0, 3, 3], 3.0 / math.sqrt(8))  # one of 8 neighbours carries 9
    assert np.isclose(local_error_oracle(np.ones((1, 5, 5)))[0, 0, 0], 1.0)  # corner: 3 neighbours


def test_report_oracle_tracks_error_structure():
    """The local-error oracle's Spearman is high when the error's scale varies smoothly, ~0 when it is white."""
    rng = np.random.default_rng(0)
    ref = np.ones((2, 64, 64))
    scale = np.repeat(np.linspace(0.01, 1.0, 64)[None, None, :], 64, axis=1).repeat(2, axis=0)
    smooth = calibration_report(ref + scale * rng.standard_normal(ref.shape), np.ones_like(ref), ref)
    white = calibration_report(ref + 0.1 * rng.standard_normal(ref.shape), np.ones_like(ref), ref)
    assert smooth["overall"]["spearman_local_oracle"] > 0.4
    assert abs(white["overall"]["spearman_local_oracle"]) < 0.05


def test_local_error_oracle_is_not_an_upper_bound():
    """White error, std = |err|: the std ranks the pixel error perfectly, the oracle (neighbours' error) not at all;
    the report keeps the oracle's value, but it bounds nothing."""
    rng = np.random.default_rng(3)
    ref = np.ones((1, 48, 48))
    mean = ref + 0.1 * rng.standard_normal(ref.shape)
    ov = calibration_report(mean, np.abs(mean - ref), ref)["overall"]
    assert ov["spearman"] == pytest.approx(1.0)
    assert ov["spearman_local_oracle"] < 0.1 < ov["spearman"]


def test_local_rms_error_by_hand():
    err = np.arange(1.0, 13.0).reshape(3, 4)  # [[1 2 3 4] [5 6 7 8] [9 10 11 12]]
    r3 = local_rms_error(err, 3)
    assert isinstance(r3, np.ndarray) and r3.shape == (3, 4)
    assert r3[1, 1] == pytest.approx(math.sqrt((1 + 4 + 9 + 25 + 36 + 49 + 81 + 100 + 121) / 9))  # inside: 9 pixels
    assert r3[0, 0] == pytest.approx(math.sqrt((1 + 4 + 25 + 36) / 4))  # corner: the 4 pixels inside the image
    assert r3[0, 2] == pytest.approx(math.sqrt((4 + 9 + 16 + 36 + 49 + 64) / 6))  # top edge: 6 pixels
    r5 = local_rms_error(err)  # 5 x 5 by default
    assert r5[1, 1] == pytest.approx(math.sqrt(sum(v * v for v in range(1, 13)) / 12))  # the whole 3 x 4 image
    assert r5[0, 0] == pytest.approx(math.sqrt((1 + 4 + 9 + 25 + 36 + 49 + 81 + 100 + 121) / 9))  # rows 0-2, cols 0-2
    # (S, H, W): slice by slice, nothing crosses slices; size 1 is |err|
    vol = np.stack([err, 2 * err])
    np.testing.assert_allclose(local_rms_error(vol, 3), np.stack([r3, 2 * r3]))
    np.testing.assert_allclose(local_rms_error(-err, 1), err)
    with pytest.raises(ValueError):
        local_rms_error(err, 4)  # no centred window


def test_spearman_local_is_one_when_std_is_the_local_error():
    mean, var, ref = _data(7, S=3)
    std = local_rms_error(np.abs(mean - ref), 5)
    rep = calibration_report(mean, std, ref)
    assert rep["overall"]["spearman_local"] == pytest.approx(1.0)
    assert all(p["spearman_local"] == pytest.approx(1.0) for p in rep["per_slice"])
    assert rep["overall"]["spearman"] < 0.9  # the pixel error is one noisy draw of that scale
    # the raw spread of _data predicts the error's scale only in part
    assert calibration_report(mean, np.sqrt(var), ref)["overall"]["spearman_local"] < 0.9


def test_sparsification_by_hand_and_limits():
    sp = sparsification(np.array([4.0, 3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0, 4.0]), n=2)  # std ranks backwards
    assert sp["fraction_removed"] == [0.0, 0.5]
    total = math.sqrt((1 + 4 + 9 + 16) / 4)
    assert sp["rmse_by_std"] == pytest.approx([total, math.sqrt((9 + 16) / 2)])  # removed the errors 1 and 2
    assert sp["rmse_oracle"] == pytest.approx([total, math.sqrt((1 + 4) / 2)])  # removed the errors 3 and 4
    assert sp["ause"] == pytest.approx((math.sqrt(12.5) - math.sqrt(2.5)) / 2 / total)

    rng = np.random.default_rng(0)
    err = np.abs(rng.standard_normal(5000))
    exact = sparsification(err, err)
    assert exact["ause"] == pytest.approx(0.0, abs=1e-12)  # the std ranks like the error: no gap
    assert exact["rmse_by_std"] == exact["rmse_oracle"]
    rand = sparsification(rng.random(5000), err)
    assert rand["ause"] > 0.3 and rand["ause"] == pytest.approx(rand["ause_random"], abs=0.05)
    for sp in (exact, rand):
        assert len(sp["rmse_oracle"]) == 20 and sp["fraction_removed"][-1] == pytest.approx(0.95)
        assert np.all(np.diff(sp["rmse_oracle"]) <= 1e-12)  # removing the largest errors never raises the RMSE
        assert np.all(np.array(sp["rmse_by_std"]) >= np.array(sp["rmse_oracle"]) - 1e-12)
    # a constant std knows nothing: tied pixels count with their mean error, whatever order the sort left them in
    flat = sparsification(np.ones(5000), err)
    assert flat["rmse_by_std"] == pytest.approx([flat["rmse_by_std"][0]] * 20)
    assert flat["ause"] == pytest.approx(flat["ause_random"])
    empty = sparsification(np.array([]), np.array([]))
    assert empty["ause"] is None and empty["rmse_by_std"] == []


def test_report_carries_sparsification_and_ause():
    mean, var, ref = _data(8, S=2)
    err = np.abs(mean - ref)
    rep = calibration_report(mean, np.sqrt(var), ref)
    ov = rep["overall"]
    supp = ref > 0.05 * ref.max()
    assert ov["sparsification"] == sparsification(np.sqrt(var)[supp], err[supp], 20)
    assert ov["ause"] == ov["sparsification"]["ause"] > 0
    assert calibration_report(mean, err, ref)["overall"]["ause"] == pytest.approx(0.0, abs=1e-12)
    json.dumps(rep)


def test_single_coil_block_round_trip_and_selection():
    main = {"method": "factor", "params": {"factor": 1.5, "pool": 1}}
    single = {"method": "factor", "params": {"factor": 4.0, "pool": 3}, "fitted_on": ["x"]}
    cal = Calibration.from_dict({**main, "single_coil": single})
    assert cal.for_coils(8) is cal and cal.for_coils(1).params["factor"] == 4.0 and cal.for_coils(1).pool == 3
    assert Calibration.from_dict(cal.to_dict()).to_dict() == cal.to_dict()  # survives config.json
    assert Calibration.from_dict(main).for_coils(1).params["factor"] == 1.5  # no block: the main one
    with pytest.raises(ValueError, match="not nested"):
        Calibration.from_dict({**main, "single_coil": {**single, "single_coil": single}})
