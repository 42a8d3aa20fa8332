"""ISMRMRD reader: assembly from acquisitions, flags, averaging, geometry, and the Shepp-Logan ground truth."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fastmri_layouts import ifft2c_np
from mrdiff_cli.io.detect import detect_format, open_input
from mrdiff_cli.io.ismrmrd_io import load_scan, open_scan, read_stored_images, write_ismrmrd
from mrdiff_cli.types import Geometry

needs_sl = pytest.mark.skipif(shutil.which("ismrmrd_generate_cartesian_shepp_logan") is None, reason="ismrmrd_generate_cartesian_shepp_logan not installed")


def _rss(k):
    img = ifft2c_np(k)
    return np.sqrt(np.sum(np.abs(img) ** 2, axis=1))


def _oblique_affine():
    rot = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    c, s = np.cos(0.3), np.sin(0.3)
    rot = rot @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([2.0, 2.5, 4.0])
    aff[:3, 3] = [10.0, -20.0, 30.0]
    return aff


def test_roundtrip_with_geometry(tmp_path, tiny_sim):
    geom = Geometry(voxel_size=(2.0, 2.5, 4.0), affine=_oblique_affine(), known=True)
    p = write_ismrmrd(tmp_path / "g.h5", tiny_sim.kspace, geom)
    assert detect_format(p) == "ismrmrd"
    with open_input(p) as r:
        assert r.format == "ismrmrd" and r.shape == (2, 4, 32, 32)
        np.testing.assert_allclose(r.read_slices(), tiny_sim.kspace, atol=1e-6)
        assert r.mask is None and r.info.readout_oversampling == 1
        assert r.geometry.known
        np.testing.assert_allclose(r.geometry.affine, geom.affine, atol=1e-3)
        assert r.geometry.voxel_size == pytest.approx((2.0, 2.5, 4.0), abs=1e-4)


def test_undersampled_lines_and_calibration(tmp_path, tiny_sim):
    mask = np.zeros((32, 32), np.float32)
    mask[:, ::4] = 1
    mask[:, 14:18] = 1
    p = write_ismrmrd(tmp_path / "u.h5", tiny_sim.kspace * mask, Geometry(), mask=mask,
                      calibration_lines=[14, 15, 16, 17])
    scan = load_scan(p)
    np.testing.assert_array_equal(scan.mask, mask)
    assert scan.undersampled and scan.info.facts["calibration_lines"] == [14, 15, 16, 17]
    assert scan.info.sampling.stated_acs == 4 and scan.info.sampling.source == "acquisitions"
    np.testing.assert_allclose(scan.kspace, tiny_sim.kspace * mask, atol=1e-6)


def test_skips_noise_and_averages_repeated_lines(tmp_path, tiny_sim):
    import ismrmrd

    p = write_ismrmrd(tmp_path / "n.h5", tiny_sim.kspace[:1], Geometry())
    ds = ismrmrd.Dataset(str(p), "dataset", create_if_needed=False)
    try:
        noise = ismrmrd.Acquisition.from_array(np.full((4, 32), 1e3, np.complex64))
        noise.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
        ds.append_acquisition(noise)
        nav = ismrmrd.Acquisition.from_array(np.full((4, 32), 1e3, np.complex64))
        nav.set_flag(ismrmrd.ACQ_IS_NAVIGATION_DATA)
        ds.append_acquisition(nav)
        # line 5 measured a second time (average 1) with an offset: the reader averages the two
        extra = ismrmrd.Acquisition.from_array(np.ascontiguousarray(tiny_sim.kspace[0, :, :, 5] + 2.0))
        extra.idx.kspace_encode_step_1 = 5
        extra.idx.average = 1
        extra.center_sample = 16
        ds.append_acquisition(extra)
    finally:
        ds.close()
    with open_scan(p) as r:
        assert r.info.facts["skipped_acquisitions"] == 2 and r.info.facts["averages"] == 2
        k = r.read_slices()
    np.testing.assert_allclose(k[0, :, :, 5], tiny_sim.kspace[0, :, :, 5] + 1.0, atol=1e-5)
    np.testing.assert_allclose(k[0, :, :, 6], tiny_sim.kspace[0, :, :, 6], atol=1e-6)


# ------------------------------------------------------------------------------------------------------
# ismrmrd_generate_cartesian_shepp_logan ground truth
#
# The file stores the phantom (dataset/phantom, (1, y, x)), the coil maps (dataset/csm, (1, c, y, x)) and
# the noise-free oversampled coil images (dataset/coil_images, (1, c, y, 2x)). Our H axis is the readout x,
# so images are compared transposed. The zero-filled RSS equals |phantom| * sqrt(sum |csm|^2) (the maps are
# not normalised: sum |csm|^2 ranges 1.8-4.8), so that product is the ground truth compared against.
# ------------------------------------------------------------------------------------------------------


def _truth(path):
    ph = np.abs(read_stored_images(path, "phantom")[0]).T
    csm = read_stored_images(path, "csm")[0]
    return ph * np.sqrt(np.sum(np.abs(csm) ** 2, axis=0)).T


def _norm_max_err(a, b):
    return float(np.max(np.abs(a / a.max() - b / b.max())))


@needs_sl
def test_shepp_logan_noise_free_matches_phantom(shepp_logan_file):
    p = shepp_logan_file("-n", "0")
    with open_scan(p) as r:
        assert r.shape == (1, 4, 64, 64)  # readout oversampling (128 → 64) removed
        assert r.info.readout_oversampling == 2 and r.mask is None
        assert r.geometry.voxel_size == pytest.approx((300 / 64, 300 / 64, 6.0))
        k = r.read_slices()
    assert _norm_max_err(_rss(k)[0], _truth(p)) < 1e-5  # measured 2.4e-7
    # coil by coil against the stored noise-free coil images (centre of the oversampled readout)
    ci = read_stored_images(p, "coil_images")[0][:, :, 32:96].transpose(0, 2, 1)
    img = ifft2c_np(k)[0]
    assert np.max(np.abs(img - ci)) / np.abs(ci).max() < 1e-5


@needs_sl
def test_shepp_logan_default_noise(shepp_logan_file):
    p = shepp_logan_file()  # default noise level 0.05
    k = load_scan(p).kspace
    ci = read_stored_images(p, "coil_images")[0][:, :, 32:96].transpose(0, 2, 1)
    resid = ifft2c_np(k)[0] - ci
    # the residual is the generator's complex white noise: std 0.05 per real/imag part
    assert np.std(resid) == pytest.approx(0.05 * np.sqrt(2), rel=0.15)
    assert np.corrcoef(_rss(k)[0].ravel(), _truth(p).ravel())[0, 1] > 0.95


@needs_sl
@pytest.mark.parametrize("accel", ["2", "4"])
def test_shepp_logan_interleaved_union(shepp_logan_file, accel):
    p = shepp_logan_file("-a", accel, "-n", "0")
    with open_scan(p) as r:
        assert r.info.facts["repetitions"] == int(accel)
        assert r.mask is None  # the union of the interleaved repetitions is fully sampled
        k = r.read_slices()
    assert _norm_max_err(_rss(k)[0], _truth(p)) < 1e-5
    with open_scan(p, repetition=1) as r:
        assert r.undersampled and r.mask.size / r.mask.sum() == pytest.approx(float(accel))
        cols = np.flatnonzero(r.mask[0])
        assert np.all(cols % int(accel) == 1)


@needs_sl
def test_shepp_logan_calibration_lines(shepp_logan_file):
    p = shepp_logan_file("-a", "4", "-w", "16", "-C")
    with open_scan(p) as r:
        assert r.info.facts["skipped_acquisitions"] == 1  # the noise calibration acquisition
        assert r.info.facts["calibration_lines"] == list(range(24, 40))
        assert r.info.facts["max_times_sampled"] == 4  # calibration lines repeat in every repetition
        assert r.mask is None
    with open_scan(p, repetition=0) as r:
        assert r.undersampled and r.info.sampling.stated_acs == 16
        assert int(r.mask[0].sum()) == 16 + 12  # every 4th line + 12 calibration-only lines


def test_noise_scan_is_read_and_reported(tmp_path):
    """Noise-measurement acquisitions are skipped for imaging but measured: per-coil std and correlation."""
    from mrdiff_cli.io.ismrmrd_io import open_scan, write_ismrmrd
    from mrdiff_cli.types import Geometry

    rng = np.random.default_rng(0)
    k = (rng.standard_normal((1, 4, 16, 16)) + 1j * rng.standard_normal((1, 4, 16, 16))).astype(np.complex64)
    stds = np.array([0.5, 1.0, 1.5, 2.0])
    noise = (stds[:, None] * (rng.standard_normal((4, 16 * 64)) + 1j * rng.standard_normal((4, 16 * 64))) / np.sqrt(2))
    p = write_ismrmrd(tmp_path / "n.h5", k, Geometry(), noise=noise)
    with open_scan(p) as r:
        ns = r.info.facts["noise_scan"]
        assert ns["acquisitions"] == 64 and ns["samples_per_coil"] == 16 * 64
        np.testing.assert_allclose(ns["std_per_coil"], stds, rtol=0.1)
        assert ns["max_coil_correlation"] < 0.15
        np.testing.assert_allclose(ns["kspace_std"], np.sqrt(np.mean(stds**2)), rtol=0.1)
        np.testing.assert_allclose(r.read_slices(0, 1), k, atol=1e-6)  # imaging data untouched
    with open_scan(write_ismrmrd(tmp_path / "plain.h5", k, Geometry())) as r:
        assert "noise_scan" not in r.info.facts


def test_info_shows_the_noise_scan(tmp_path, cli_env):
    from typer.testing import CliRunner

    from mrdiff_cli.cli.main import app
    from mrdiff_cli.io.ismrmrd_io import write_ismrmrd
    from mrdiff_cli.types import Geometry

    rng = np.random.default_rng(1)
    k = (rng.standard_normal((1, 4, 16, 16)) + 1j * rng.standard_normal((1, 4, 16, 16))).astype(np.complex64)
    p = write_ismrmrd(tmp_path / "n.h5", k, Geometry(), noise=2.0 * rng.standard_normal((4, 16 * 32)).astype(np.complex64))
    res = CliRunner().invoke(app, ["info", str(p), "--json"])
    assert res.exit_code == 0, res.output
    import json

    ns = json.loads(res.stdout)["noise_scan"]
    assert ns["acquisitions"] == 32 and abs(ns["kspace_std"] - 2.0) < 0.2
