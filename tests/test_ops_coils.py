"""Coil sensitivity estimation (ESPIRiT and low-res ratio) on simulated 8-coil data."""

import numpy as np
import pytest
import torch

from mrdiff_cli.ops.coils import calibration_region, espirit_eigenvalues, estimate_maps
from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.ops.masks import make_mask
from mrdiff_cli.ops.operators import normalize_maps, sense_combine

sigpy_mri = pytest.importorskip("sigpy.mri")

H = W = 128
C = 8


def _phantom():
    yy, xx = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
    body = ((yy / 0.8) ** 2 + (xx / 0.65) ** 2 < 1) * (1.0 + 0.4 * np.cos(3 * xx))
    blob = 0.6 * (((yy - 0.2) / 0.3) ** 2 + ((xx + 0.1) / 0.2) ** 2 < 1)
    img = body + blob
    # mild smoothing (3x3 box) and a smooth phase: a complex object as in real scans
    k = np.fft.fft2(img)
    fy, fx = np.meshgrid(np.fft.fftfreq(H), np.fft.fftfreq(W), indexing="ij")
    img = np.real(np.fft.ifft2(k * np.exp(-((fy**2 + fx**2) * 400))))
    support = (yy / 0.75) ** 2 + (xx / 0.6) ** 2 < 1
    return (img * np.exp(0.5j * yy)).astype(np.complex64), support


@pytest.fixture(scope="module")
def sim():
    img, support = _phantom()
    maps = normalize_maps(torch.from_numpy(sigpy_mri.birdcage_maps((C, H, W), r=1.5).astype(np.complex64)))
    x = torch.from_numpy(img)
    k = fft2c(maps * x)[None]  # (1, C, H, W)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(k.shape, dtype=torch.complex64, generator=g) * (1e-3 * k.abs().max())
    return {"k": k + noise, "maps": maps[None], "x": x, "support": torch.from_numpy(support)}


def _map_error(est, true, support):
    """||S_est - S_true e^{i theta}|| / ||S_true|| inside the support, theta aligning coil 0 per pixel."""
    phase = torch.exp(1j * (torch.angle(true[:, :1]) - torch.angle(est[:, :1])))
    d = (est * phase - true)[..., support]
    return (torch.linalg.norm(d) / torch.linalg.norm(true[..., support])).item()


MASKS = {
    "full": None,
    "poisson": ("poisson", 4),  # 20x20 ACS block
    "uniform1d": ("uniform1d", 4),  # 10 central columns x full height
    "gaussian1d_r8": ("gaussian1d", 8),  # only 8 central columns: the kernel must shrink to 4 wide
}


def _kspace(sim, which):
    if MASKS[which] is None:
        return sim["k"], None
    kind, R = MASKS[which]
    m = torch.from_numpy(make_mask(kind, (H, W), R, seed=0).mask)
    return sim["k"] * m, m


@pytest.mark.parametrize("which", list(MASKS))
def test_espirit_reproduces_truth(sim, which):
    k, m = _kspace(sim, which)
    est = estimate_maps(k, m)
    supp = sim["support"]
    assert est.shape == (1, C, H, W) and est.dtype == torch.complex64
    assert _map_error(est, sim["maps"], supp) < 0.1
    ss = (est.abs() ** 2).sum(1)[0]
    assert torch.allclose(ss[supp], torch.ones_like(ss[supp]), atol=1e-4)
    # 0 or 1 everywhere, and the background far from the object is cut
    assert torch.all((ss == 0) | ((ss - 1).abs() < 1e-4))
    corners = torch.zeros(H, W, dtype=torch.bool)
    corners[:8, :8] = corners[:8, -8:] = corners[-8:, :8] = corners[-8:, -8:] = True
    assert ss[corners].max() == 0


def test_espirit_maps_are_not_trivial(sim):
    """Negative control: a wrong map set (coils permuted) fails the same error metric."""
    est = estimate_maps(*_kspace(sim, "poisson"))
    assert _map_error(est[:, torch.roll(torch.arange(C), 1)], sim["maps"], sim["support"]) > 0.3


@pytest.mark.parametrize("which", ["full", "uniform1d"])
def test_sense_combine_with_estimated_maps(sim, which):
    k, m = _kspace(sim, which)
    est = estimate_maps(k, m)
    coil_imgs = ifft2c(sim["k"])  # fully sampled coil images
    comb = sense_combine(coil_imgs, est)[0]
    supp = sim["support"]
    x = sim["x"]
    err = torch.linalg.norm(comb.abs()[supp] - x.abs()[supp]) / torch.linalg.norm(x[supp])
    assert err < 0.05
    # the phase is smooth: equal to the object's phase up to a smooth (map) phase, no per-pixel jumps
    ph = torch.angle(comb * x.conj())
    jumps = torch.angle(torch.exp(1j * (ph[1:, :] - ph[:-1, :])))[supp[1:, :] & supp[:-1, :]]
    assert jumps.abs().max() < 0.3


@pytest.mark.parametrize("which", ["poisson", "uniform1d"])
def test_lowres_method(sim, which):
    k, m = _kspace(sim, which)
    est = estimate_maps(k, m, method="lowres")
    supp = sim["support"]
    assert est.shape == (1, C, H, W) and est.dtype == torch.complex64
    assert _map_error(est, sim["maps"], supp) < 0.15
    ss = (est.abs() ** 2).sum(1)[0]
    assert torch.allclose(ss[supp], torch.ones_like(ss[supp]), atol=1e-4)


def test_batch_of_slices_and_acs_detection(sim):
    k, m = _kspace(sim, "uniform1d")
    assert calibration_region(k, m) == (H, 10)
    assert calibration_region(k, None) == (H, 10)  # from the zero pattern of k-space
    assert calibration_region(k, m, acs=8) == (H, 8)
    kp, mp = _kspace(sim, "poisson")
    assert calibration_region(kp, mp) == (20, 20)
    # two slices, the second with a different (mirrored) object: each slice is calibrated on its own
    k_other = fft2c(sim["maps"] * sim["x"].flip(-1)) * mp
    est = estimate_maps(torch.cat([kp, k_other], 0), mp)
    assert est.shape == (2, C, H, W)
    single = estimate_maps(kp, mp)
    assert torch.allclose(est[:1], single, atol=1e-4)
    supp_other = sim["support"].flip(-1)
    assert _map_error(est[1:], sim["maps"], supp_other) < 0.1
    # unbatched (coils, H, W) input and a numpy mask
    assert torch.allclose(estimate_maps(kp[0], mp.numpy()), single[0], atol=1e-4)


def test_chunked_evaluation_is_identical(sim, monkeypatch):
    import mrdiff_cli.ops.coils as coils

    k, m = _kspace(sim, "uniform1d")
    ref = estimate_maps(k, m)
    monkeypatch.setattr(coils, "_CHUNK_ELEMS", 7 * W * C * C)  # 7 rows per chunk, ragged last chunk
    assert torch.allclose(estimate_maps(k, m), ref, atol=1e-5)


def test_single_coil_and_errors(sim):
    k1 = sim["k"][:, :1]
    maps = estimate_maps(k1)
    assert maps.shape == (1, 1, H, W)
    vals = torch.unique(maps.real)
    assert set(vals.tolist()) <= {0.0, 1.0} and torch.all(maps.imag == 0)
    assert torch.all(maps[0, 0][sim["support"]] == 1) and maps[0, 0, 0, 0] == 0
    assert torch.all(estimate_maps(k1, support_thresh=0) == 1)
    with pytest.raises(ValueError):
        estimate_maps(sim["k"], method="magic")
    m = torch.from_numpy(make_mask("poisson", (H, W), 4, seed=0).mask)
    with pytest.raises(ValueError, match="not fully sampled"):
        estimate_maps(sim["k"] * m, m, acs=40)


def test_eigenvalues_separate_object_from_background(sim):
    lam = espirit_eigenvalues(sim["k"])[0]
    assert lam[sim["support"]].min() > 0.95
    assert lam[:8, :8].max() < 0.8


def test_espirit_restores_the_thread_setting_and_does_not_depend_on_it(sim):
    """The one-thread LAPACK section of ESPIRiT restores torch's thread count, and the maps are the same on one
    thread and on two (the default here). Its speed is measured in benchmarks/wallclock.py."""
    k, m = _kspace(sim, "poisson")
    maps = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        maps.append(estimate_maps(k, m))
        assert torch.get_num_threads() == threads
    torch.set_num_threads(1)
    torch.testing.assert_close(maps[0], maps[1], rtol=0, atol=1e-5)


def _model_error(est, maps, x, support):
    """Relative error of the best SENSE fit of the true coil images c = S x with the estimated maps."""
    c = maps[0] * x
    fit = est[0] * (est[0].conj() * c).sum(0)
    r = (c - fit)[..., support]
    return float(torch.linalg.norm(r) / torch.linalg.norm(c[..., support]))


def test_noise_floor_keeps_noise_out_of_the_espirit_subspace(sim):
    """A tiny relative cut lets noise singular vectors into the signal subspace at low SNR and the maps break; the
    scan's noise level (Marchenko-Pastur floor) keeps them out, and at high SNR the small cut models the coils
    better than the default 0.02. A slice without a noise estimate (0) keeps the default relative cut."""
    from mrdiff_cli.tasks.calibration import estimate_kspace_noise

    clean = fft2c(sim["maps"][0] * sim["x"])[None]
    g = torch.Generator().manual_seed(3)
    m = torch.from_numpy(make_mask("uniform1d", (H, W), 4, seed=0).mask)
    for level, want_gain in ((3.0, False), (0.3, True)):
        k = (clean + torch.randn(clean.shape, dtype=torch.complex64, generator=g) * (level * clean.abs().mean())) * m
        sn = estimate_kspace_noise(k, m)
        assert float(sn[0]) > 0
        default = _model_error(estimate_maps(k, m), sim["maps"], sim["x"], sim["support"])
        no_floor = _model_error(estimate_maps(k, m, sigma_thresh=1e-3), sim["maps"], sim["x"], sim["support"])
        floored = _model_error(estimate_maps(k, m, sigma_thresh=1e-3, noise_std=sn, noise_factor=2.0),
                               sim["maps"], sim["x"], sim["support"])
        if want_gain:  # high SNR: the finer subspace is better than the default cut
            assert floored < 0.7 * default, (floored, default)
        else:  # low SNR: without the floor the maps break, with it they are as good as the default's
            assert no_floor > 3 * floored and floored < 1.5 * default, (no_floor, floored, default)
    assert torch.equal(estimate_maps(k, m, sigma_thresh=1e-3, noise_std=0.0), estimate_maps(k, m))


def test_support_from_a_second_cut(sim):
    """support_sigma: the maps come from their own subspace, their support from the ESPIRiT eigenvalue of a second
    pass at that relative cut (the support the default cut gives), so a larger subspace keeps the default support."""
    from mrdiff_cli.tasks.calibration import estimate_kspace_noise

    m = torch.from_numpy(make_mask("uniform1d", (H, W), 4, seed=0).mask)
    k = sim["k"] * m
    sn = estimate_kspace_noise(k, m)
    default = estimate_maps(k, m)
    big = estimate_maps(k, m, sigma_thresh=1e-3, noise_std=sn, eig_thresh=-1.0)
    mixed = estimate_maps(k, m, sigma_thresh=1e-3, noise_std=sn, support_sigma=0.02)
    keep = default.abs().sum(1) > 0
    assert torch.equal(mixed.abs().sum(1) > 0, keep)
    assert torch.allclose(mixed[:, :, keep[0]], normalize_maps(big)[:, :, keep[0]], atol=1e-5)
