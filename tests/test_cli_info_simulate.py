"""`mrdiff info` and `mrdiff simulate` through the real Typer app, plus the simulation model itself."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from fastmri_layouts import ifft2c_np
from typer.testing import CliRunner

from mrdiff_cli.cli.main import app
from mrdiff_cli.io.detect import open_input
from mrdiff_cli.tasks.simulate import analytic_phantom, coil_maps, reslice, simulate_kspace
from mrdiff_cli.types import Geometry

runner = CliRunner()


def _json(args):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_info_fastmri_table_and_json(tiny_fastmri_undersampled_file):
    res = runner.invoke(app, ["info", str(tiny_fastmri_undersampled_file)])
    assert res.exit_code == 0, res.output
    for needle in ("fastmri", "undersampled", "ACS lines", "reconstruction_rss", "Voxel size"):
        assert needle in res.stdout
    d = _json(["info", tiny_fastmri_undersampled_file, "--json"])
    assert d["format"] == "fastmri" and d["shape"] == [2, 4, 32, 32] and d["coils"] == 4
    assert d["sampling"]["undersampled"] and d["sampling"]["acceleration"] == pytest.approx(4.0)
    assert d["sampling"]["mask_source"] == "mask dataset"
    assert d["sampling"]["acs_lines"] >= 4 and d["reference"]["name"] == "reconstruction_rss"
    assert d["header"]["recon_matrix"] == [32, 32, 1] and d["values_finite"] is True


def test_info_ismrmrd_and_nifti(tiny_ismrmrd_file, tiny_nifti_file):
    d = _json(["info", tiny_ismrmrd_file, "--json"])
    assert d["format"] == "ismrmrd" and d["slices"] == 2 and not d["sampling"]["undersampled"]
    d = _json(["info", tiny_nifti_file, "--json"])
    assert d["format"] == "nifti" and d["kind"] == "image" and d["shape"] == [2, 32, 32]
    assert d["geometry"]["voxel_size_mm"] == [1.5, 1.5, 3.0]
    res = runner.invoke(app, ["info", str(tiny_nifti_file)])
    assert res.exit_code == 0 and "nifti" in res.stdout


def test_simulate_fastmri_cli_deterministic(tmp_path, tiny_nifti_file):
    args = ["simulate", tiny_nifti_file, "--matrix", "16", "--coils", "3", "--snr", "25", "--seed", "5",
            "--mask", "equispaced", "--accel", "2"]
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    assert runner.invoke(app, [str(x) for x in args + ["-o", a]]).exit_code == 0
    quiet = runner.invoke(app, [str(x) for x in args + ["-o", b, "--quiet"]])
    assert quiet.exit_code == 0 and quiet.output == ""  # pipelines: nothing on stdout or stderr
    args[args.index("--seed") + 1] = "6"
    assert runner.invoke(app, [str(x) for x in args + ["-o", c]]).exit_code == 0
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb, h5py.File(c, "r") as fc:
        ka = fa["kspace"][()]
        assert ka.shape == (2, 3, 16, 16) and ka.dtype == np.complex64
        np.testing.assert_array_equal(ka, fb["kspace"][()])
        assert not np.allclose(ka, fc["kspace"][()])
        assert fa["mask"].shape == (16,) and fa["reconstruction_rss"].shape == (2, 16, 16)
        assert fa.attrs["acquisition"] == "SIMULATED" and "ismrmrd_header" in fa
        assert float(fa.attrs["max"]) == pytest.approx(float(fa["reconstruction_rss"][()].max()))
    with open_input(a) as r:
        assert r.undersampled and r.mask.size / r.mask.sum() == pytest.approx(2.0)
        # 32 px at 1.5 mm resampled to 16 → 3 mm
        assert r.geometry.voxel_size == pytest.approx((3.0, 3.0, 3.0))


def test_simulate_ismrmrd_and_single_coil(tmp_path, tiny_nifti_file):
    out = tmp_path / "mrd.h5"
    res = runner.invoke(app, ["simulate", str(tiny_nifti_file), "-o", str(out), "--format", "ismrmrd", "--matrix",
                              "16", "--coils", "2", "--mask", "uniform1d", "--accel", "2", "--slices", "1:2", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["slices"] == 1 and summary["format"] == "ismrmrd"
    with open_input(out) as r:
        assert r.format == "ismrmrd" and r.shape == (1, 2, 16, 16)
        assert r.undersampled and r.geometry.known
        # slice 1 of the input sits one 3 mm slice above the centred default of 2 slices
        assert r.geometry.affine[2, 3] == pytest.approx(1.5)
    sc = tmp_path / "sc.h5"
    res = runner.invoke(app, ["simulate", str(tiny_nifti_file), "-o", str(sc), "--coils", "1", "--matrix", "32",
                              "--snr", "inf"])
    assert res.exit_code == 0, res.output
    with h5py.File(sc, "r") as f:
        k = f["kspace"][()]
        ref = f["reconstruction_rss"][()]
    assert k.shape == (2, 32, 32)
    np.testing.assert_allclose(np.abs(ifft2c_np(k)), ref, atol=1e-5)


def test_simulate_from_npy_axis(tmp_path):
    vol = np.zeros((3, 20, 24), np.float32)
    vol[:, 5:15, 6:18] = 1.0
    src = tmp_path / "v.npy"
    np.save(src, vol)
    out = tmp_path / "o.h5"
    res = runner.invoke(app, ["simulate", str(src), "-o", str(out), "--matrix", "24", "--coils", "2", "--axis", "1"])
    assert res.exit_code == 0, res.output
    with h5py.File(out, "r") as f:
        assert f["kspace"].shape == (20, 2, 24, 24)  # 20 slices along array axis 1


def test_simulation_model_properties():
    maps = coil_maps(8, (32, 32))
    np.testing.assert_allclose(np.sum(np.abs(maps) ** 2, axis=0), 1.0, atol=1e-5)
    img = analytic_phantom(32)
    k0, _, phase = simulate_kspace(img, coils=8, snr_db=None, seed=2)
    assert k0.shape == (8, 32, 32) and phase.shape == (32, 32)
    # noise-free: coil combination recovers magnitude and phase exactly
    x = np.sum(np.conj(maps) * ifft2c_np(k0), axis=0)
    np.testing.assert_allclose(np.abs(x), img, atol=1e-5)
    # SNR definition: noise power = mean signal k-space power / 10^(snr/10)
    k20, _, _ = simulate_kspace(img, coils=8, snr_db=20.0, seed=2)
    noise = k20 - k0
    ratio = np.mean(np.abs(k0) ** 2) / np.mean(np.abs(noise) ** 2)
    assert 10 * np.log10(ratio) == pytest.approx(20.0, abs=0.3)
    k20b, _, _ = simulate_kspace(img, coils=8, snr_db=20.0, seed=2)
    np.testing.assert_array_equal(k20, k20b)
    # mask zeroes the unsampled entries exactly
    m = np.zeros((32, 32), np.float32)
    m[:, ::2] = 1
    km, _, _ = simulate_kspace(img, coils=2, snr_db=30.0, seed=0, mask=m)
    assert np.all(km[:, :, 1::2] == 0) and np.all(km[:, :, ::2] != 0)


def test_phase_detail_adds_fine_phase_and_keeps_the_default_stream():
    img = analytic_phantom(64)
    _, _, smooth = simulate_kspace(img, coils=2, snr_db=None, seed=4)
    _, _, again = simulate_kspace(img, coils=2, snr_db=None, seed=4, phase_detail=0.0)
    np.testing.assert_array_equal(smooth, again)  # phase_detail = 0 draws nothing extra
    _, _, rough = simulate_kspace(img, coils=2, snr_db=None, seed=4, phase_detail=0.5)
    detail = rough - smooth
    assert detail.std() == pytest.approx(0.5, rel=1e-3) and abs(detail.mean()) < 0.2
    # fine: neighbouring pixels correlate (4-pixel correlation length), pixels 32 apart do not
    c1 = np.corrcoef(detail[:, :-1].ravel(), detail[:, 1:].ravel())[0, 1]
    c32 = np.corrcoef(detail[:, :-32].ravel(), detail[:, 32:].ravel())[0, 1]
    assert c1 > 0.9 and abs(c32) < 0.3


def test_reslice_axis_and_slices():
    vol = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (k, i, j)
    g = Geometry(voxel_size=(1.0, 2.0, 3.0))
    d, g2 = reslice(vol, g, 0, "1:3")  # slice along i: in-plane (j, k)
    assert d.shape == (2, 4, 2)
    np.testing.assert_array_equal(d[0], vol[:, 1, :].T)
    assert g2.voxel_size == pytest.approx((2.0, 3.0, 1.0))
    full = g.affine_for((3, 4, 2))
    np.testing.assert_allclose(g2.affine[:3, 3], full[:3, 3] + full[:3, 0] * 1)


def test_simulate_acquisition_families(tmp_path, cli_env):
    """--coil-model / --phase-model / --noise-corr use tasks.acquisition: the coils' receive profile stays in the
    reference (a loop array is not flat), the phase is not the default polynomial, bad names are usage errors."""
    import h5py
    from typer.testing import CliRunner

    from mrdiff_cli.cli.main import app

    runner = CliRunner()
    out = {}
    for name, extra in (("ring", []), ("loops", ["--coil-model", "loops", "--phase-model", "offres",
                                                  "--phase-std", "3", "--noise-corr", "0.2"])):
        p = tmp_path / f"{name}.h5"
        res = runner.invoke(app, ["simulate", "example", "-o", str(p), "--matrix", "64", "--json", *extra])
        assert res.exit_code == 0, res.output
        with h5py.File(p) as f:
            out[name] = (f["kspace"][()], f["reconstruction_rss"][()])
    assert out["ring"][0].shape == out["loops"][0].shape
    assert not np.allclose(out["ring"][0], out["loops"][0])
    ref_ring, ref_loops = out["ring"][1][0], out["loops"][1][0]
    head = ref_ring > 0.2 * ref_ring.max()
    ratio = ref_loops[head] / ref_ring[head]
    assert ratio.max() / ratio.min() > 2.0  # receive bias of surface loops (ring coils are normalised: flat)
    res = runner.invoke(app, ["simulate", "example", "-o", str(tmp_path / "x.h5"), "--coil-model", "bogus"])
    assert res.exit_code == 2 and "--coil-model" in res.stderr
