"""fastMRI HDF5 reader: the dataset's own layouts (brain/knee, multi-/single-coil, train/test), lazy access, masks,
references, header geometry (schema-valid and rejected headers), readout oversampling."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from fastmri_layouts import LAYOUTS, centre_crop, fft2c_np, ifft2c_np, rss_image, write_layout

from mrdiff_cli.io.detect import detect_format, load_input, open_input
from mrdiff_cli.io.fastmri import load_scan, open_scan
from mrdiff_cli.io.header import minimal_ismrmrd_header
from mrdiff_cli.types import Scan


@pytest.fixture(scope="module")
def layout_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    return {name: (root / f"{name}.h5", write_layout(root / f"{name}.h5", name)) for name in LAYOUTS}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_dataset_layouts_read_to_the_recon_matrix(layout_files, name):
    path, truth = layout_files[name]
    h, w, recon, single, ref_name, undersampled = LAYOUTS[name]
    with open_scan(path) as r:
        info = r.info
        assert info.stored_shape == (1, 1 if single else 2, h, w)
        assert info.shape == (1, 1 if single else 2, 320, w)  # readout oversampling removed on reading
        assert info.image_shape == recon and info.readout_oversampling == 2
        assert info.single_coil is single and info.header.parsed_by == "schema" and info.notes == []
        assert info.geometry.voxel_size == pytest.approx((0.6875, 0.6875, 5.0))
        k = r.read_slices()
        assert k.shape == info.shape and k.dtype == np.complex64
        # the zero-filled image, cropped to the recon matrix, is the object (fully sampled) or close to it
        img = centre_crop(rss_image(k), recon)
        if undersampled:
            assert r.undersampled and info.sampling.source == "mask dataset" and info.reference is None
            assert r.mask.shape == (320, w)  # the file's (W,) mask on the k-space grid actually read
            np.testing.assert_array_equal(r.mask[0], truth["mask"])
            assert info.sampling.stated_acceleration == 4 and info.sampling.stated_acs == 24
        else:
            assert r.mask is None and info.reference.name == ref_name and info.reference.noisy
            peak = float(truth["image"].max())
            np.testing.assert_allclose(img, truth["image"], atol=1e-5 * peak)
            ref = r.reference_slices(0, 1)
            assert ref.shape == (1, *recon)
            np.testing.assert_allclose(img, ref, atol=1e-5 * peak)


def test_single_coil_reference_is_esc_and_multicoil_rss(tmp_path):
    path = tmp_path / "sc.h5"
    write_layout(path, "knee_singlecoil")
    with h5py.File(path, "a") as f:  # fastMRI single-coil files carry both; ESC is the single-coil reference
        f.create_dataset("reconstruction_rss", data=np.zeros((1, 320, 320), np.float32))
    with open_scan(path) as r:
        assert r.info.reference.name == "reconstruction_esc" and "single-coil" in r.info.reference.description


def test_schema_rejected_header_is_read_leniently_with_a_note(tmp_path):
    path = tmp_path / "lenient.h5"
    write_layout(path, "brain_test", valid_header=False)
    with open_scan(path) as r:
        assert r.info.header.parsed_by == "lenient" and r.info.header.recon_matrix == (320, 320, 1)
        assert r.info.shape[2:] == (320, 320) and r.info.image_shape == (320, 320)
        assert r.info.geometry.voxel_size == pytest.approx((0.6875, 0.6875, 5.0))  # not the 1 mm default
        assert len(r.info.notes) == 1 and "rejected the header" in r.info.notes[0]
        assert "\n" not in r.info.notes[0]


def test_unreadable_header_says_so_and_falls_back_to_the_reference(tmp_path):
    path = tmp_path / "junk.h5"
    write_layout(path, "knee_multicoil")
    with h5py.File(path, "a") as f:
        del f["ismrmrd_header"]
        f.create_dataset("ismrmrd_header", data=np.bytes_(b"<<not xml"))
    with open_scan(path) as r:
        assert r.info.header.parsed_by == "unreadable"
        assert r.info.image_shape == (320, 320) and r.info.shape[2] == 320  # recon matrix from the reference
        assert any("unreadable" in n for n in r.info.notes) and any("1 mm" in n for n in r.info.notes)


# ------------------------------------------------------------------------------------------------------
# small simulated files: lazy access and the mask variants


def test_open_scan_is_lazy_and_consistent(tiny_fastmri_file, tiny_sim):
    with open_scan(tiny_fastmri_file) as r:
        assert r.format == "fastmri"
        assert r.shape == (2, 4, 32, 32) and r.n_slices == 2 and r.n_coils == 4
        blk = r.read_slices(1, 2)
        assert blk.shape == (1, 4, 32, 32) and blk.dtype == np.complex64
        np.testing.assert_allclose(blk, tiny_sim.kspace[1:2], atol=1e-6)
        assert r.mask is None and not r.undersampled
        assert r.has_reference and r.reference_slices(0, 1).shape == (1, 32, 32)
        assert not r.info.reference.noisy  # a simulated file's reference is the noise-free RSS
        assert r.geometry.voxel_size == pytest.approx((1.0, 1.0, 1.0))
        assert r.info.readout_oversampling == 1
        assert [s for s, _ in r.iter_slices(1)] == [0, 1]
    scan = load_scan(tiny_fastmri_file)
    assert isinstance(scan, Scan) and scan.kspace.shape == (2, 4, 32, 32)
    assert detect_format(tiny_fastmri_file) == "fastmri"
    assert load_input(tiny_fastmri_file).kspace.shape == scan.kspace.shape


def test_zero_filled_rss_matches_reference(tiny_fastmri_file):
    scan = load_scan(tiny_fastmri_file)
    err = np.abs(rss_image(scan.kspace) - scan.reference).max() / scan.reference.max()
    assert err < 1e-5


def test_mask_dataset_1d(tiny_fastmri_undersampled_file):
    with open_input(tiny_fastmri_undersampled_file) as r:
        assert r.mask.shape == (32, 32) and r.mask.dtype == np.float32
        assert r.undersampled and r.info.sampling.source == "mask dataset"
        assert float(r.mask.size / r.mask.sum()) == pytest.approx(4.0)
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
        assert r.shape == (2, 1, 32, 32) and r.info.single_coil
        assert r.info.sampling.source == "zero lines in k-space" and r.undersampled
        np.testing.assert_array_equal(r.mask[0] > 0, np.arange(32) % 3 != 1)
        assert r.read_slices(0, 2).shape == (2, 1, 32, 32)
        assert any("1 mm" in n for n in r.info.notes)  # no header: the default geometry is announced


def test_mask_dataset_2d_and_its_limits(tmp_path, tiny_sim):
    m = np.zeros((32, 32), np.float32)
    m[::2, :] = 1
    p = _write(tmp_path / "m2.h5", tiny_sim.kspace * m, mask=m)
    with open_scan(p) as r:
        np.testing.assert_array_equal(r.mask, m)
    from mrdiff_cli.errors import InputError

    q = _write(tmp_path / "bad.h5", tiny_sim.kspace, mask=np.ones(31, np.float32))
    with pytest.raises(InputError, match="mask length 31"):
        open_scan(q)


def test_readout_oversampling_from_the_header(tmp_path, tiny_sim):
    # k-space with a 64-sample readout (2x oversampled) and a header saying recon x = 32
    img = ifft2c_np(tiny_sim.kspace)
    big = np.zeros((2, 4, 64, 32), np.complex64)
    big[:, :, 16:48] = img
    xml = minimal_ismrmrd_header((32, 32), (2.0, 2.0, 5.0), 4, n_slices=2, encoded_x=64)
    p = _write(tmp_path / "os.h5", fft2c_np(big), ismrmrd_header=np.bytes_(xml.encode()))
    with open_scan(p) as r:
        assert r.info.stored_shape == (2, 4, 64, 32) and r.shape == (2, 4, 32, 32)
        assert r.info.readout_oversampling == 2 and r.info.image_shape == (32, 32)
        assert r.geometry.voxel_size == pytest.approx((2.0, 2.0, 5.0))
        np.testing.assert_allclose(r.read_slices(), tiny_sim.kspace, atol=1e-5)
