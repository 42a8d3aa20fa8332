"""fastMRI HDF5 reader: lazy access, masks, reference, header geometry, readout oversampling."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from mrdiff_cli.io.base import fftc, ifftc
from mrdiff_cli.io.detect import detect_format, load_input, open_input
from mrdiff_cli.io.fastmri import (
    crop_to_recon,
    load_scan,
    minimal_ismrmrd_header,
    open_scan,
    remove_readout_oversampling,
)
from mrdiff_cli.types import Scan


def _rss(k: np.ndarray) -> np.ndarray:
    img = ifftc(ifftc(k, -2), -1)
    return np.sqrt(np.sum(np.abs(img) ** 2, axis=1))


def test_open_scan_is_lazy_and_consistent(tiny_fastmri_file, tiny_sim):
    with open_scan(tiny_fastmri_file) as r:
        assert r.format == "fastmri"
        assert r.shape == (2, 4, 32, 32) and r.n_slices == 2 and r.n_coils == 4
        blk = r.read_slices(1, 2)
        assert blk.shape == (1, 4, 32, 32) and blk.dtype == np.complex64
        np.testing.assert_allclose(blk, tiny_sim.kspace[1:2], atol=1e-6)
        assert r.mask is None and not r.undersampled
        assert r.metadata["undersampled_in_file"] is False
        assert r.has_reference and r.reference_slices(0, 1).shape == (1, 32, 32)
        # voxel size from the header FOV / matrix (simulation: 1 mm default)
        assert r.geometry.voxel_size == pytest.approx((1.0, 1.0, 1.0))
        assert r.metadata["readout_oversampling"] == 1
        assert [s for s, _ in r.iter_slices(1)] == [0, 1]
    scan = load_scan(tiny_fastmri_file)
    assert isinstance(scan, Scan) and scan.kspace.shape == (2, 4, 32, 32)
    assert detect_format(tiny_fastmri_file) == "fastmri"
    assert load_input(tiny_fastmri_file).kspace.shape == scan.kspace.shape


def test_zero_filled_rss_matches_reference(tiny_fastmri_file):
    scan = load_scan(tiny_fastmri_file)
    rss = _rss(scan.kspace)
    err = np.abs(rss - scan.reference).max() / scan.reference.max()
    assert err < 1e-5


def test_mask_dataset_1d(tiny_fastmri_undersampled_file):
    with open_input(tiny_fastmri_undersampled_file) as r:
        assert r.mask.shape == (32, 32) and r.mask.dtype == np.float32
        assert r.undersampled and r.metadata["undersampled_in_file"] is True
        assert r.metadata["mask_source"] == "dataset"
        assert r.metadata["sampling_acceleration"] == pytest.approx(4.0)
        assert r.metadata["sampling_acs_lines"] >= 4
        k = r.read_slices()
        assert np.all(k[..., r.mask[0] == 0] == 0)


def _write(path, kspace, **extra):
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        for k, v in extra.items():
            f.create_dataset(k, data=v)
    return path


def test_mask_from_zero_lines_and_single_coil(tmp_path, tiny_sim):
    k = tiny_sim.kspace[:, 0].copy()  # single-coil (slices, H, W)
    k[..., 1::3] = 0
    p = _write(tmp_path / "sc.h5", k)
    with open_scan(p) as r:
        assert r.shape == (2, 1, 32, 32) and r.metadata["single_coil"]
        assert r.metadata["mask_source"] == "kspace" and r.metadata["undersampled_in_file"]
        np.testing.assert_array_equal(r.mask[0] > 0, np.arange(32) % 3 != 1)
        assert r.read_slices(0, 2).shape == (2, 1, 32, 32)


def test_mask_dataset_2d(tmp_path, tiny_sim):
    m = np.zeros((32, 32), np.float32)
    m[::2, :] = 1
    p = _write(tmp_path / "m2.h5", tiny_sim.kspace * m, mask=m)
    with open_scan(p) as r:
        np.testing.assert_array_equal(r.mask, m)
        assert r.metadata["sampling_mask_type"] == "2d"


def test_readout_oversampling_header_and_crop(tmp_path, tiny_sim):
    # k-space with a 64-sample readout (2x oversampled) and a header saying recon x = 32
    img = ifftc(ifftc(tiny_sim.kspace, -2), -1)
    big = np.zeros((2, 4, 64, 32), np.complex64)
    big[:, :, 16:48] = img
    k64 = fftc(fftc(big, -2), -1).astype(np.complex64)
    xml = minimal_ismrmrd_header((32, 32), (2.0, 2.0, 5.0), 4, n_slices=2, encoded_x=64)
    p = _write(tmp_path / "os.h5", k64, ismrmrd_header=np.bytes_(xml.encode()))
    with open_scan(p) as r:
        assert r.shape == (2, 4, 64, 32)
        assert r.metadata["readout_oversampling"] == 2
        assert r.metadata["recon_shape"] == [32, 32]
        assert r.geometry.voxel_size == pytest.approx((2.0, 2.0, 5.0))
        k = r.read_slices()
    k32 = remove_readout_oversampling(k, 2)
    assert k32.shape == (2, 4, 32, 32)
    np.testing.assert_allclose(k32, tiny_sim.kspace, atol=1e-5)
    # image-space crop (fastMRI's way) gives the same image
    cropped = crop_to_recon(ifftc(ifftc(k, -2), -1), (32, 32))
    np.testing.assert_allclose(cropped, img, atol=1e-5)
