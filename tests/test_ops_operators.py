"""Forward operators: adjointness, normal operator, Prop. 1, map normalisation, resolution change."""

import pytest
import torch

from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.ops.operators import (
    CoilwiseOp,
    SenseOp,
    crop_kspace,
    normalize_maps,
    pad_kspace,
    resize_image,
    sense_combine,
)


def _randc(shape, g):
    return torch.randn(shape, dtype=torch.complex64, generator=g)


def _mask(H, W, g, frac=0.35):
    m = (torch.rand(H, W, generator=g) < frac).float()
    m[H // 2 - 2 : H // 2 + 2, W // 2 - 2 : W // 2 + 2] = 1
    return m


def _dot(a, b):
    return torch.sum(a.conj() * b)


@pytest.mark.parametrize("coils", [1, 4])
def test_coilwise_adjoint(coils):
    g = torch.Generator().manual_seed(0)
    A = CoilwiseOp(_mask(24, 20, g))
    x = _randc((2, coils, 24, 20), g)
    y = _randc((2, coils, 24, 20), g)
    lhs, rhs = _dot(A(x), y), _dot(x, A.adjoint(y))
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)
    assert torch.allclose(A.normal(x), A.adjoint(A(x)), atol=1e-5)


@pytest.mark.parametrize("mask_shape", ["2d", "1d", "batched"])
def test_sense_adjoint(mask_shape):
    g = torch.Generator().manual_seed(1)
    B, C, H, W = 2, 5, 20, 24
    if mask_shape == "2d":
        mask = _mask(H, W, g)
    elif mask_shape == "1d":
        mask = (torch.rand(1, W, generator=g) < 0.4).float()
    else:
        mask = (torch.rand(B, 1, H, W, generator=g) < 0.4).float()
    maps = _randc((B, C, H, W), g)  # random complex maps, not normalised: adjointness holds regardless
    A = SenseOp(mask, maps)
    x = _randc((B, H, W), g)
    y = _randc((B, C, H, W), g)
    lhs, rhs = _dot(A(x), y), _dot(x, A.adjoint(y))
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)
    assert A(x).shape == (B, C, H, W) and A.adjoint(y).shape == (B, H, W)
    assert torch.allclose(A.normal(x), A.adjoint(A(x)), atol=1e-5)


def test_projection_idempotent_on_mask():
    g = torch.Generator().manual_seed(2)
    A = CoilwiseOp(_mask(16, 16, g))
    y = _randc((1, 3, 16, 16), g)
    Ay = A(A.adjoint(y))
    assert torch.allclose(A(A.adjoint(Ay)), Ay, atol=1e-5)
    assert torch.allclose(Ay, A.mask * y, atol=1e-5)


def test_normalize_maps():
    g = torch.Generator().manual_seed(3)
    maps = _randc((2, 6, 16, 16), g)
    maps[:, :, :3] = 0  # background rows
    S = normalize_maps(maps)
    ss = (S.abs() ** 2).sum(1)
    assert torch.allclose(ss[:, 3:], torch.ones_like(ss[:, 3:]), atol=1e-5)
    assert torch.all(ss[:, :3] == 0)
    assert S.dtype == torch.complex64
    # the direction per pixel is unchanged
    ratio = S[:, :, 5:] / maps[:, :, 5:]
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)


def _prop1_setup(seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = 2, 6, 16, 16
    maps = normalize_maps(_randc((B, C, H, W), g)) * scale
    return SenseOp(_mask(H, W, g), maps), _randc((B, H, W), g), g


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_prop1_nonexpansive(lam):
    A, _, g = _prop1_setup(4)
    for _ in range(5):
        x = _randc((2, 16, 16), g)
        out = x - lam * A.normal(x)
        assert torch.linalg.norm(out) <= torch.linalg.norm(x) * (1 + 1e-5)


def _power_iteration(A, x, n=25):
    for _ in range(n):
        x = A.normal(x)
        x = x / torch.linalg.norm(x)
    return torch.real(_dot(x, A.normal(x))).item()


def _dense_normal(A, H, W):
    n = H * W
    basis = torch.eye(n, dtype=torch.complex64).reshape(n, H, W)
    maps = A.maps[:1]
    return SenseOp(A.mask, maps).normal(basis).reshape(n, n).T  # column i = A^H A e_i


def test_prop1_largest_eigenvalue():
    A, x, _ = _prop1_setup(5)
    lmax = _power_iteration(A, x)
    assert 0.5 < lmax <= 1.0 + 1e-5
    # exact spectrum of A^H A for the first slice: within [0, 1]
    ev = torch.linalg.eigvalsh(_dense_normal(A, 16, 16))
    assert ev.min() > -1e-5 and ev.max() <= 1.0 + 1e-5
    assert lmax <= ev.max() + 1e-4  # the power iteration is a lower bound of the true maximum
    # negative control: without the normalisation (maps x 1.5) the bound fails
    A2, x2, _ = _prop1_setup(5, scale=1.5)
    assert _power_iteration(A2, x2) > 1.5


def test_sense_combine_inverts_full_sampling():
    g = torch.Generator().manual_seed(6)
    maps = normalize_maps(_randc((1, 4, 12, 12), g))
    x = _randc((1, 12, 12), g)
    A = SenseOp(torch.ones(12, 12), maps)
    assert torch.allclose(sense_combine(ifft2c(A(x)), maps), x, atol=1e-5)


def test_crop_pad_roundtrip():
    g = torch.Generator().manual_seed(7)
    k = _randc((2, 3, 32, 24), g)
    c = crop_kspace(k, (16, 12))
    assert c.shape == (2, 3, 16, 12)
    assert torch.equal(c[..., 8, 6], k[..., 16, 12])  # DC stays at the centre index
    p = pad_kspace(c, (32, 24))
    assert torch.equal(crop_kspace(p, (16, 12)), c)
    assert torch.allclose(torch.linalg.norm(p), torch.linalg.norm(c))
    with pytest.raises(ValueError):
        crop_kspace(k, (64, 12))
    with pytest.raises(ValueError):
        pad_kspace(k, (16, 24))


def test_resize_round_trip_is_lowpass():
    g = torch.Generator().manual_seed(8)
    x = _randc((2, 128, 128), g)
    small = resize_image(x, (64, 64))
    back = resize_image(small, (128, 128))
    lowpass = ifft2c(pad_kspace(crop_kspace(fft2c(x), (64, 64)), (128, 128)))
    assert small.shape == (2, 64, 64) and back.shape == (2, 128, 128)
    assert torch.allclose(back, lowpass, atol=1e-5)
    # going up then down is exact
    assert torch.allclose(resize_image(resize_image(small, (128, 128)), (64, 64)), small, atol=1e-5)


@pytest.mark.parametrize(
    "src,dst", [((128, 128), (64, 64)), ((64, 64), (128, 128)), ((128, 96), (63, 47)), ((48, 64), (64, 48))]
)
def test_resize_keeps_constant_intensity(src, dst):
    x = torch.full((1, *src), 3.0 - 1.0j, dtype=torch.complex64)
    r = resize_image(x, dst)
    assert r.shape == (1, *dst)
    assert torch.allclose(r, torch.full_like(r, 3.0 - 1.0j), atol=1e-5)
    # a real input is accepted and gives complex64
    assert resize_image(torch.ones(*src), dst).dtype == torch.complex64


# ------------------------------------------------------------------------------------------------------
# super-resolution operator (ops/superres.py)


@pytest.mark.parametrize("out_hw, low_hw", [((32, 32), (16, 16)), ((32, 24), (15, 8)), ((17, 20), (8, 11))])
def test_superres_operator_adjoint_normal_and_projection(out_hw, low_hw):
    from mrdiff_cli.ops.operators import CoilwiseOp, LinearOperator, SenseOp
    from mrdiff_cli.ops.superres import SuperResOp

    g = torch.Generator().manual_seed(3)
    A = SuperResOp(out_hw, low_hw)
    x = torch.complex(torch.randn(2, *out_hw, generator=g), torch.randn(2, *out_hw, generator=g))
    y = torch.complex(torch.randn(2, *low_hw, generator=g), torch.randn(2, *low_hw, generator=g))
    lhs = torch.sum(A(x) * y.conj())
    rhs = torch.sum(x * A.adjoint(y).conj())
    assert abs(lhs - rhs) < 1e-4 * abs(lhs)
    assert torch.allclose(A.normal(x), A.adjoint(A(x)), atol=1e-5)
    assert torch.allclose(A(A.adjoint(y)), y, atol=1e-5)  # A A^H = I: a crop of an orthonormal transform
    n = A.normal(x)
    assert torch.allclose(A.normal(n), n, atol=1e-5)  # A^H A is a projection
    assert all(isinstance(op, LinearOperator) for op in (A, CoilwiseOp(torch.ones(4, 4)), SenseOp(torch.ones(4, 4), torch.ones(1, 2, 4, 4))))


def test_superres_operator_units_match_a_lowres_image():
    from mrdiff_cli.ops.fft import fft2c
    from mrdiff_cli.ops.operators import resize_image
    from mrdiff_cli.ops.superres import SuperResOp

    x = torch.rand(1, 32, 32)
    A = SuperResOp((32, 32), (16, 16))
    low = resize_image(x, (16, 16))  # same FOV, same intensity
    assert torch.allclose(A.to_lowres(A(x)), fft2c(low), atol=1e-5)
    assert torch.allclose(A.from_lowres(fft2c(low)), A(x), atol=1e-5)
