"""Per-scan uncertainty calibration by k-space hold-out (samplers.selftune.holdout_spread,
tasks.scan_calibration, Reconstructor.measure_spread): the closed-form Gaussian case and real scans with the
bundled prior."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.samplers.selftune import HoldoutSpread, holdout_spread
from mrdiff_cli.tasks.calibration import LEVELS
from mrdiff_cli.tasks.scan_calibration import HoldoutCalibration, ScanSpread


def _gaussian_case(K: int, shrink: float, n: int = 64, noise: float = 0.3, seed: int = 0):
    """A Gaussian model whose posterior is known in closed form: x ~ N(0, p) per pixel (p varies smoothly over
    the image), y = x + complex noise of std ``noise`` on every pixel (the 'k-space' here is the identity). The
    hidden half of the pixels gets no information from the rest, so its posterior is the prior. ``shrink``
    scales the samples' deviation from the posterior mean (1: exact samples; < 1: an over-confident sampler).
    Returns the per-pixel truth, the K samples, the data and the hidden mask."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    p = 0.2 + (xx + 1.0) ** 2  # prior variance per pixel (complex: E|x|^2 = p)

    def cn(*shape):
        return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)) / math.sqrt(2.0)

    truth = cn(n, n) * p.sqrt()
    y = truth + noise * cn(n, n)
    hold = (torch.rand(n, n, generator=g) < 0.5).float()
    samples = cn(K, n, n) * p.sqrt() * shrink  # posterior at the hidden pixels = the prior (mean 0)
    return truth, samples, y, hold, p


@pytest.mark.parametrize("K", [4, 8])
def test_exact_posterior_samples_give_the_closed_form_ratio(K):
    """Exact samples of a calibrated posterior: the truth is one more draw around the posterior mean, so the
    error of the K'-sample mean is (1 + 1/K') x the spread: ratio^2 = 1 + 1/K'."""
    truth, samples, y, hold, _ = _gaussian_case(K, 1.0)
    sp = holdout_spread(samples[:, None, None], (y * hold)[None, None], hold, torch.tensor([0.3]))[0]
    assert sp.samples == K and sp.n_values == int(hold.sum())
    assert sp.ratio2(8) == pytest.approx(1 + 1 / 8, rel=0.08)
    assert sp.ratio2(1) == pytest.approx(2.0, rel=0.08)
    # the noise is removed: without it the noise would count as error and the ratio would be larger
    no_noise = holdout_spread(samples[:, None, None], (y * hold)[None, None], hold, None)[0]
    assert no_noise.ratio2(8) > sp.ratio2(8) * 1.05


def test_over_confident_samples_are_scaled_back_up():
    """Samples 3x too narrow: the hold-out ratio measures it (ratio ~ 3), and the calibrated std then covers the
    nominal fraction of the true errors at 68 / 90 / 95 %, where the raw spread covers far less."""
    K = 8
    truth, samples, y, hold, p = _gaussian_case(K, 1 / 3, seed=1)
    sp = holdout_spread(samples[:, None, None], (y * hold)[None, None], hold, torch.tensor([0.3]))[0]
    assert math.sqrt(sp.ratio2(K)) == pytest.approx(3.0 * math.sqrt(1 + 1 / K / 9), rel=0.08)
    # image domain (real parts: the magnitude-like scalar error per pixel), everywhere
    mean = samples.real.mean(0).numpy()
    var = samples.real.var(0, unbiased=True).numpy()
    err = np.abs(mean - truth.real.numpy())
    scan = ScanSpread(sp, 0.0, {}, [0])
    std = HoldoutCalibration(factor=1.0, pool=5, noise_weight=0.0).std(var, scan, K)
    for level, z in LEVELS.items():
        cov = float(np.mean(err <= z * std))
        assert abs(cov - int(level) / 100) < 0.03, (level, cov)
    assert float(np.mean(err <= 1.96 * np.sqrt(var))) < 0.6  # the raw spread: over-confident


def test_holdout_calibration_roundtrip_and_validation():
    c = HoldoutCalibration(1.3, 5, 0.5, fitted_on=["x"], info={"a": 1})
    assert HoldoutCalibration.from_dict(c.to_dict()) == c
    for bad in ({"factor": 0}, {"factor": float("nan")}, {"factor": 1, "pool": 0}, {"factor": 1, "noise_weight": -1}, {}):
        with pytest.raises(ValueError):
            HoldoutCalibration.from_dict(bad)
    # no spread at the hidden samples: the ratio is undefined and the scan's spread is not usable
    flat = ScanSpread(HoldoutSpread(1.0, 0.0, 0.0, 10, 4), 0.0, {}, [0])
    assert not flat.usable() and math.isinf(flat.ratio2(8))


# ------------------------------------------------------------------------------------ real scans, bundled prior


def _uncertainty(prior, image, snr, seed=0):
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import simulate_volume

    sim = simulate_volume(image, None, matrix=64, coils=8, snr_db=snr, seed=1)
    mask = make_mask("poisson", (64, 64), 6, seed=2).mask
    cal = {"method": "factor", "params": {"factor": 1.0, "pool": 1},
           "holdout": HoldoutCalibration(1.0, 3, 1.0).to_dict()}
    rec = Reconstructor(prior, ReconOptions(steps=8, pilot_steps=4, n_cg=3, samples=3, seed=seed,
                                            calibration=cal))
    out = rec.reconstruct(sim.kspace, mask, "sense")
    return rec, out, sim


def test_scale_grows_with_the_noise_in_the_data(bundled_prior, example_slice):
    """The same anatomy and mask at 45 and 15 dB: the hold-out run sees a larger residual at the hidden samples
    and a larger noise level, and the calibrated std (per scan) grows with them; the run is deterministic."""
    clean, out_c, _ = _uncertainty(bundled_prior, example_slice, 45)
    noisy, out_n, _ = _uncertainty(bundled_prior, example_slice, 15)
    assert clean.calibration_applied(8) == noisy.calibration_applied(8) == "holdout"
    sc, sn = clean.spread.summary(3), noisy.spread.summary(3)
    assert sn["kspace_noise_std"] > 3 * sc["kspace_noise_std"]
    assert sn["rms_error"] > 2 * sc["rms_error"]
    head = example_slice[0] > 0.05 * example_slice.max()
    head = torch.nn.functional.interpolate(torch.as_tensor(head[None, None], dtype=torch.float32), size=(64, 64))[0, 0] > 0.5
    rms = [float(np.sqrt(o.variance[0][head.numpy()].mean())) for o in (out_c, out_n)]
    assert rms[1] > 1.5 * rms[0], rms
    # with the hold-out run, the std is not the raw spread
    assert not np.allclose(out_n.variance, out_n.raw_variance)
    again, out_again, _ = _uncertainty(bundled_prior, example_slice, 15)
    assert again.spread == noisy.spread and np.array_equal(out_again.variance, out_n.variance)


def test_fixed_map_is_the_fallback_where_no_holdout_is_possible(bundled_prior, example_slice):
    """A fully sampled scan has nothing to hide: the fixed map applies, and the reason is recorded."""
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import simulate_volume

    sim = simulate_volume(example_slice, None, matrix=32, coils=4, snr_db=30, seed=1)
    cal = {"method": "factor", "params": {"factor": 2.0, "pool": 1}, "holdout": HoldoutCalibration(1.0).to_dict()}
    rec = Reconstructor(bundled_prior, ReconOptions(steps=2, n_cg=2, samples=2, calibration=cal))
    out = rec.reconstruct(sim.kspace, np.ones((32, 32), np.float32), "sense")
    assert rec.spread is None and "too few measured samples" in rec.spread_note
    assert rec.calibration_applied(4) == "main"
    np.testing.assert_allclose(out.variance, 4.0 * out.raw_variance, rtol=1e-5)


def test_bundled_calibration_covers_where_the_raw_spread_does_not(bundled_prior, example_slice):
    """The shipped constants (config.json calibration.holdout) on a scan with coil and phase physics the tune
    suite did not have (Biot-Savart loops, air-tissue off-resonance phase): the 95 % intervals cover most head
    pixels of the noise-free truth, the raw sample spread far fewer."""
    from mrdiff_cli.priors.bundle import read_config
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.acquisition import Acquisition, simulate_acquisition
    from mrdiff_cli.tasks.recon_job import resolve_calibration
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import resample_slices

    info = load_prior(None, "score", offline=True)[1]
    assert "holdout" in read_config(info["path"])["calibration"]
    img, _, _ = resample_slices(np.asarray(example_slice, np.float32), 96)
    k, truth = simulate_acquisition(img / img.max(), Acquisition("loops", 8, "offres", 3.0, snr_db=30), seed=5)
    mask = make_mask("poisson", (96, 96), 6, seed=11).mask
    rec = Reconstructor(bundled_prior, ReconOptions(samples=4, seed=0, calibration=resolve_calibration(info["path"])))
    out = rec.reconstruct(k, mask, "sense")
    assert rec.calibration_applied(8) == "holdout"
    head = truth > 0.05 * truth.max()
    err = np.abs(out.images - truth)[head]
    cov = float(np.mean(err <= 1.96 * np.sqrt(out.variance)[head]))
    raw = float(np.mean(err <= 1.96 * np.sqrt(out.raw_variance)[head]))
    assert 0.85 <= cov <= 1.0 and raw < 0.75, (cov, raw)
