"""The two kinds of hold-out calibration (reconstruction's k-space hold-out, tasks.scan_calibration, and
super-resolution's extrapolation ring, tasks.superres_calibration) share one implementation; each keeps its own
config.json form and summary keys. Also: a bundle whose ``calibration`` block holds only super-resolution's
constants loads for both tasks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mrdiff_cli.errors import ModelError
from mrdiff_cli.samplers.selftune import HoldoutSpread
from mrdiff_cli.tasks.recon_job import resolve_calibration
from mrdiff_cli.tasks.scan_calibration import HoldoutCalibration, HoldoutConstants, HoldoutRecord, ScanSpread
from mrdiff_cli.tasks.superres_calibration import RingCalibration, RingSpread, calibration_from_bundle

TOTAL = HoldoutSpread(3.7, 1.3, 0.4, 123, 4)


def test_the_kinds_share_the_base_classes():
    scan = ScanSpread(TOTAL, 0.3, {"fraction": 0.15}, [2], [1.5])
    ring = RingSpread(TOTAL, 0.3, {"inner": [54, 54]}, [2], [1.5])
    assert isinstance(scan, HoldoutRecord) and isinstance(ring, HoldoutRecord)
    assert isinstance(HoldoutCalibration(), HoldoutConstants) and isinstance(RingCalibration(), HoldoutConstants)
    assert scan.holdout == {"fraction": 0.15} and ring.ring == {"inner": [54, 54]}
    assert scan != ring  # same fields, different kinds
    # same numbers, each kind's keys (the metrics JSON's uncertainty.holdout block)
    s, r = scan.summary(8), ring.summary(8)
    assert list(s) == ["method", "samples", "slices", "holdout", "hidden_values", "rms_error", "rms_spread",
                       "rms_error_of_posterior_mean", "kspace_noise_std", "ratio", "ratio_per_slice"]
    assert list(r) == ["method", "samples", "slices", "ring", "ring_values", "rms_error", "rms_spread",
                       "rms_error_of_posterior_mean", "image_noise_std", "ratio", "ratio_per_slice"]
    assert s["ratio"] == r["ratio"] == pytest.approx(math.sqrt(TOTAL.ratio2(8)))
    assert s["hidden_values"] == r["ring_values"] == 123 and s["kspace_noise_std"] == r["image_noise_std"] == 0.3


def test_each_kind_keeps_its_config_json_form():
    h = HoldoutCalibration(1.3, 3, 0.5, False, fitted_on=["x"], info={"a": 1})
    r = RingCalibration(1.5, 3, 1.0, False, 0.7, 3, fitted_on=["y"])
    assert list(h.to_dict()) == ["factor", "pool", "noise_weight", "remove_noise", "level", "z", "fitted_on", "info"]
    assert list(r.to_dict()) == ["factor", "pool", "noise_weight", "remove_noise", "inner", "samples", "level", "z",
                                 "fitted_on"]
    assert (r.inner, r.samples) == (0.7, 3)
    for c in (h, r, HoldoutCalibration(), RingCalibration()):
        assert type(c).from_dict(c.to_dict()) == c
        assert type(c).from_dict(json.loads(json.dumps(c.to_dict()))) == c
    # the defaults of each kind fill what a block lacks
    assert HoldoutCalibration.from_dict({"factor": 2}) == HoldoutCalibration(2.0)
    assert RingCalibration.from_dict({"factor": 2}) == RingCalibration(2.0)
    assert (HoldoutCalibration().noise_weight, RingCalibration().noise_weight) == (1.0, 0.0)
    with pytest.raises(ValueError, match="inner"):
        RingCalibration(inner=1.0)
    with pytest.raises(ValueError, match="superres calibration"):
        RingCalibration.from_dict({})
    with pytest.raises(ValueError, match="holdout"):
        HoldoutCalibration.from_dict({"factor": 1, "pool": 0})


def test_std_differs_only_in_the_noise_term():
    var = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)
    scan, ring = ScanSpread(TOTAL, 0.4, {}, [0]), RingSpread(TOTAL, 0.4, {}, [0])
    h, r = HoldoutCalibration(1.3, 1, 0.0), RingCalibration(1.3, 1, 0.0)
    assert np.array_equal(h.std(var, scan, 4), r.std(var, ring, 4))
    # with the noise: sigma_n^2 / 2 everywhere (reconstruction) against each slice's sigma^2 (super-resolution)
    h, r = HoldoutCalibration(1.3, 1, 1.0), RingCalibration(1.3, 1, 1.0)
    np.testing.assert_allclose(h.std(var, scan, 4) ** 2, 1.69 * (TOTAL.ratio2(4) * var + 0.08), rtol=1e-5)
    np.testing.assert_allclose(r.std(var, ring, 4, np.array([0.0, 0.5])) ** 2,
                               1.69 * (TOTAL.ratio2(4) * var + np.array([0.0, 0.25])[:, None, None]), rtol=1e-5)


def _bundle(tmp_path, calibration):
    folder = tmp_path / "b"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"calibration": calibration}))
    return folder


def test_a_calibration_block_with_only_superres_constants_loads(tmp_path):
    bundle = _bundle(tmp_path, {"superres": RingCalibration(2.5, 3).to_dict()})
    assert resolve_calibration(str(bundle)) is None  # nothing for reconstruction: the raw spread
    cal, source = calibration_from_bundle(bundle)
    assert cal == RingCalibration(2.5, 3) and source == "bundle config.json calibration.superres"
    # a hold-out part alone is not a reconstruction calibration (its fallback, the fixed map, would be missing)
    with pytest.raises(ModelError, match="method"):
        resolve_calibration(str(_bundle(tmp_path, {"holdout": HoldoutCalibration().to_dict()})))
    with pytest.raises(ModelError, match="method"):
        resolve_calibration(str(_bundle(tmp_path, {"superres": {"factor": 2}, "pool": 3})))
