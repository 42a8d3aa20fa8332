"""Magnitude consistency for super-resolution: the low-resolution input is |L x|, not L x (samplers.dc.MagnitudeKspaceDC)."""

from __future__ import annotations

import pytest
import torch

from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.ops.superres import SuperResOp, hermitian_partner, measure_lowres
from mrdiff_cli.samplers.dc import MagnitudeKspaceDC, RealKspaceDC
from mrdiff_cli.tasks.superres import is_magnitude_image, resolve_consistency


def sharp_heads(n: int, H: int, W: int, seed: int = 0) -> torch.Tensor:
    """Real images with hard edges on a zero background: their low-resolution images ring negative."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    head = ((xx / 0.7) ** 2 + (yy / 0.8) ** 2 < 1).float()
    return torch.stack([head * (0.6 + 0.4 * torch.rand(H, W, generator=g)) for _ in range(n)])


def magnitude_measurement(x: torch.Tensor, low: tuple[int, int]):
    """(A, y): y = the k-space of |L x| in A's units (what a magnitude low-resolution NIfTI gives)."""
    A = SuperResOp(tuple(x.shape[-2:]), low)
    k_low = measure_lowres(x, low)
    return A, A.from_lowres(fft2c(ifft2c(k_low).abs().to(torch.complex64)))


def low_image(A: SuperResOp, x: torch.Tensor) -> torch.Tensor:
    return ifft2c(A.to_lowres(A(x)))


@pytest.mark.parametrize("low", [(16, 16), (16, 12)])
def test_the_truth_is_a_fixed_point_of_magnitude_but_not_of_linear_consistency(low):
    x = sharp_heads(2, 32, 32)[:, None]
    A, y = magnitude_measurement(x[:, 0], low)
    assert float((low_image(A, x[:, 0]).real < -1e-3).float().mean()) > 0.05  # it really rings negative
    y = y[:, None]
    x_mag = MagnitudeKspaceDC()(x, y, A)
    x_lin = RealKspaceDC()(x, y, A)
    assert float((x_mag - x).norm() / x.norm()) < 1e-4
    assert float((x_lin - x).norm() / x.norm()) > 1e-2  # linear consistency puts rectified ripples in


def test_magnitude_step_fits_the_magnitude_and_keeps_the_outer_kspace():
    x_true = sharp_heads(2, 32, 32, seed=1)
    A, y = magnitude_measurement(x_true, (16, 16))
    x = sharp_heads(2, 32, 32, seed=2)[:, None] * 0.7 + 0.05  # some other real estimate
    dc = MagnitudeKspaceDC()
    out = dc(x, y[:, None], A)
    assert out.dtype == torch.float32 and out.shape == x.shape
    m_true = low_image(A, x_true).abs()

    def mag_err(v):
        return float((low_image(A, v[:, 0]).abs() - m_true).norm() / m_true.norm())

    # one step is the magnitude projection followed by the projection onto real images (not exact together:
    # the estimate's phase has a small imaginary part at the unpaired Nyquist row); repeated steps converge
    assert mag_err(out) < 0.1 * mag_err(x)
    again = dc(dc(dc(out, y[:, None], A), y[:, None], A), y[:, None], A)
    assert mag_err(again) < 0.5 * mag_err(out)
    # the k-space outside the measured block is that of the estimate (up to the Hermitian Nyquist partners)
    outer = ~A.kmask & ~hermitian_partner(A.kmask)
    k_in, k_out = fft2c(x[:, 0].to(torch.complex64)), fft2c(out[:, 0].to(torch.complex64))
    assert float((k_out - k_in)[:, outer].abs().max()) < 1e-4


def test_noise_aware_weight_mixes_towards_the_magnitude_target():
    x_true = sharp_heads(1, 32, 32, seed=3)
    A, y = magnitude_measurement(x_true, (16, 16))
    x = (x_true * 0.5)[:, None]
    hard = MagnitudeKspaceDC()(x, y[:, None], A)
    soft = MagnitudeKspaceDC(noise_sigma=torch.tensor([0.5]))(x, y[:, None], A, sigma=0.5)  # lam = 1/2
    assert torch.allclose(soft, 0.5 * (x + hard), atol=1e-5)


def test_is_magnitude_image_and_the_auto_rule():
    x = sharp_heads(2, 32, 32)
    k_low = measure_lowres(x, (16, 16))  # a retrospective degradation: rings negative
    k_mag = fft2c(ifft2c(k_low).abs().to(torch.complex64))
    assert not is_magnitude_image(k_low)
    assert is_magnitude_image(k_mag)
    assert not is_magnitude_image(fft2c(ifft2c(k_mag) * 1j))  # complex data are not a magnitude
    assert resolve_consistency("auto", k_mag) == "magnitude"
    assert resolve_consistency("auto", k_low) == "linear"
    assert resolve_consistency("auto", k_mag, retrospective=True) == "linear"
    assert resolve_consistency("magnitude", k_low) == "magnitude"
    assert resolve_consistency("linear", k_mag) == "linear"
