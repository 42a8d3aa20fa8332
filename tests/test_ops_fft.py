"""Centered orthonormal FFTs: Parseval, inverse, centring, dtype, batching."""

import numpy as np
import pytest
import torch

from mrdiff_cli.ops.fft import fft2c, ifft2c, rss


def _randc(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=torch.complex64, generator=g)


@pytest.mark.parametrize("shape", [(16, 16), (3, 32, 24), (2, 4, 15, 17)])
def test_parseval(shape):
    x = _randc(shape)
    k = fft2c(x)
    assert torch.allclose(torch.linalg.norm(k), torch.linalg.norm(x), rtol=1e-5)
    # per-image too (the transform acts on the last two axes only)
    nx = torch.linalg.norm(x.reshape(-1, *shape[-2:]), dim=(-2, -1))
    nk = torch.linalg.norm(k.reshape(-1, *shape[-2:]), dim=(-2, -1))
    assert torch.allclose(nk, nx, rtol=1e-5)


@pytest.mark.parametrize("shape", [(32, 32), (2, 3, 20, 13)])
def test_round_trip(shape):
    x = _randc(shape, seed=1)
    assert torch.allclose(ifft2c(fft2c(x)), x, atol=1e-5)
    assert torch.allclose(fft2c(ifft2c(x)), x, atol=1e-5)


@pytest.mark.parametrize("H,W", [(16, 16), (15, 12), (9, 7)])
def test_centred_delta_is_flat_kspace(H, W):
    x = torch.zeros(H, W, dtype=torch.complex64)
    x[H // 2, W // 2] = 1.0
    k = fft2c(x)
    assert torch.allclose(k, torch.full_like(k, 1.0 / np.sqrt(H * W)), atol=1e-6)
    # and back: flat k-space is a delta at the image centre
    d = ifft2c(torch.ones(H, W, dtype=torch.complex64))
    assert torch.argmax(d.abs()).item() == (H // 2) * W + W // 2
    assert abs(d[H // 2, W // 2].item() - np.sqrt(H * W)) < 1e-4


@pytest.mark.parametrize("H,W", [(16, 16), (15, 12)])
def test_dc_at_centre_index(H, W):
    x = torch.full((H, W), 2.0 + 1.0j, dtype=torch.complex64)
    k = fft2c(x)
    dc = k[H // 2, W // 2]
    assert abs(dc.item() - (2.0 + 1.0j) * np.sqrt(H * W)) < 1e-4
    k_rest = k.clone()
    k_rest[H // 2, W // 2] = 0
    assert k_rest.abs().max() < 1e-5


def test_matches_numpy_reference():
    x = _randc((12, 10), seed=2)
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy()), norm="ortho"))
    assert np.allclose(fft2c(x).numpy(), ref, atol=1e-5)


def test_dtype_and_shape_preserved():
    x = _randc((2, 3, 8, 6))
    k = fft2c(x)
    assert k.dtype == torch.complex64 and k.shape == x.shape
    assert ifft2c(k).dtype == torch.complex64
    # batched transform == transform of each element
    assert torch.allclose(k[1, 2], fft2c(x[1, 2]), atol=1e-6)


def test_rss():
    x = _randc((2, 4, 8, 8))
    r = rss(x, dim=1)
    assert r.shape == (2, 8, 8)
    assert torch.allclose(r**2, (x.abs() ** 2).sum(1), rtol=1e-5)
