"""samplers/vdm.py: k-space helpers and the k-space-guided VDM sampler.

Tolerance for "exact" low-k consistency: ||P^{-1}(Lambda) F x_out - y_0|| <= 1e-4 ||y_0|| (float32 FFTs give ~1e-7).
"""

from __future__ import annotations

import math

import pytest
import torch

from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.ops.operators import resize_image
from mrdiff_cli.priors.unet import UNetConfig
from mrdiff_cli.priors.vdm import VDM, VDMConfig
from mrdiff_cli.ops.superres import (
    SuperResOp,
    centre_mask,
    hermitian_partner,
    measure_lowres,
    real_kspace_replace,
    zero_pad_upsample,
)
from mrdiff_cli.samplers.adapters import VDMDenoiser
from mrdiff_cli.samplers.schedules import vdm_sigmas
from mrdiff_cli.samplers.vdm import vdm_sample


def pad_lowres(y_low, out_hw):
    A = SuperResOp(out_hw, tuple(y_low.shape[-2:]))
    return A.pad(A.from_lowres(y_low))


def kspace_guidance(x, y_pad, mask, lam):
    return real_kspace_replace(x, y_pad, mask, lam)


def vdm_guided_sample(model, y_low, low, high, steps, guidance=1.0, generator=None, callback=None, x_shape=None, batch_size=None):
    """The sampler contract wired as tasks/superres wires it: A = SuperResOp, sigmas from the learned gamma."""
    A = SuperResOp(high, low)
    y = A.from_lowres(torch.as_tensor(y_low))
    x_init = torch.zeros(x_shape or (y.shape[0], 1, *high))
    return vdm_sample(VDMDenoiser(model, batch_size), y, A, vdm_sigmas(model.gamma, steps), x_init, lam=guidance,
                      generator=generator, callback=callback)

TOL = 1e-4


@pytest.fixture(scope="module")
def model() -> VDM:
    """Tiny untrained VDM with a non-zero output layer (so the prior really adds content)."""
    torch.manual_seed(0)
    m = VDM(UNetConfig(base_channels=8, channel_mults=[1, 2], attn_resolutions=[], resolution=32, emb_dim=32), VDMConfig())
    with torch.no_grad():
        for p in m.score.net.out.parameters():
            p.normal_(0, 0.05)
    return m.eval().requires_grad_(False)


def images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    head = ((xx / 0.8) ** 2 + (yy / 0.9) ** 2 < 1).float()
    return torch.stack([head * (0.5 + torch.rand(h, w, generator=g)) for _ in range(n)])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (8, 5)])
def test_hermitian_partner_of_a_real_image(shape):
    k = fft2c(torch.randn(2, *shape).to(torch.complex64))
    assert torch.allclose(k, hermitian_partner(k).conj(), atol=1e-5)


def test_pad_and_measure_conventions():
    x = images(2, 32, 32)
    y = measure_lowres(x, (16, 16))
    # the low-res image of the same intensity: P^{-1} F x equals the k-space of resize_image(x, low)
    assert rel(y, fft2c(resize_image(x, (16, 16)))) < 1e-5
    # P P^{-1} = Lambda (on the kept block)
    mask = centre_mask((32, 32), (16, 16))
    assert rel(pad_lowres(y, (32, 32)), torch.where(mask, fft2c(x.to(torch.complex64)), 0)) < 1e-5
    # the sinc baseline is real and exactly consistent
    zp = zero_pad_upsample(y, (32, 32))
    assert zp.dtype == torch.float32 and rel(measure_lowres(zp, (16, 16)), y) < TOL


@pytest.mark.parametrize("lam", [0.3, 1.0])
def test_guidance_step_keeps_the_outside_and_mixes_the_block(lam):
    x = images(1, 16, 16, 1)
    y = measure_lowres(images(1, 16, 16, 2), (8, 8))
    mask = centre_mask((16, 16), (8, 8))
    out = kspace_guidance(x, pad_lowres(y, (16, 16)), mask, lam)
    kx, ko = fft2c(x.to(torch.complex64)), fft2c(out.to(torch.complex64))
    want = (1 - lam) * measure_lowres(x, (8, 8)) + lam * y
    assert rel(measure_lowres(out, (8, 8)), want) < TOL
    # outside Lambda and its mirror (the Hermitian completion of the Nyquist line) nothing changes
    untouched = ~(mask | hermitian_partner(mask))
    assert torch.allclose(ko[..., untouched], kx[..., untouched], atol=1e-5)


@pytest.mark.parametrize(
    "low, high, mode",
    [((16, 16), (32, 32), "retrospective"), ((8, 8), (32, 32), "acquisition"), ((16, 8), (32, 32), "retrospective")],
)
def test_lambda_one_gives_exact_low_k_consistency(model, low, high, mode):
    if mode == "retrospective":
        y = measure_lowres(images(2, *high), low)
    else:  # a real low-resolution image is the acquisition
        y = fft2c(images(2, *low).to(torch.complex64))
    out = vdm_guided_sample(model, y, low, high, steps=4, guidance=1.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, *high) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert rel(measure_lowres(out[:, 0], low), y) < TOL
    # and the prior filled in the outer k-space (not just the sinc image)
    assert rel(out[:, 0], zero_pad_upsample(y, high)) > 1e-3


def test_lambda_zero_ignores_the_data(model):
    y1 = measure_lowres(images(1, 32, 32, 1), (16, 16))
    y2 = measure_lowres(images(1, 32, 32, 2), (16, 16))
    a = vdm_guided_sample(model, y1, (16, 16), (32, 32), 4, guidance=0.0, generator=torch.Generator().manual_seed(5))
    b = vdm_guided_sample(model, y2, (16, 16), (32, 32), 4, guidance=0.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    c = vdm_guided_sample(model, y1, (16, 16), (32, 32), 4, guidance=0.5, generator=torch.Generator().manual_seed(5))
    d_half = rel(measure_lowres(c[:, 0], (16, 16)), y1)
    d_zero = rel(measure_lowres(a[:, 0], (16, 16)), y1)
    assert d_half < d_zero  # partial guidance pulls the low frequencies towards the data


def test_same_seed_same_output_and_batching_is_invisible(model):
    y = measure_lowres(images(2, 32, 32), (16, 16))
    kw = dict(steps=3, guidance=1.0, x_shape=(6, 1, 32, 32))
    a = vdm_guided_sample(model, y, (16, 16), (32, 32), generator=torch.Generator().manual_seed(1), **kw)
    b = vdm_guided_sample(model, y, (16, 16), (32, 32), generator=torch.Generator().manual_seed(1), batch_size=2, **kw)
    c = vdm_guided_sample(model, y, (16, 16), (32, 32), generator=torch.Generator().manual_seed(2), **kw)
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c)
    # 3 samples per measurement, sample-major: each is consistent with its own y, and they differ
    for k in range(3):
        assert rel(measure_lowres(a[2 * k : 2 * k + 2, 0], (16, 16)), y) < TOL
    assert rel(a[0], a[2]) > 1e-3


def test_callback_and_argument_checks(model):
    y = measure_lowres(images(1, 32, 32), (16, 16))
    seen = []
    vdm_guided_sample(model, y, (16, 16), (32, 32), 3, callback=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(ValueError):
        vdm_guided_sample(model, y, (16, 16), (32, 32), 3, guidance=1.5)
    with pytest.raises(ValueError):
        vdm_guided_sample(model, y, (8, 8), (32, 32), 3)
    with pytest.raises(ValueError):  # 3 samples cannot be shared out over 2 measurements
        vdm_guided_sample(model, torch.cat([y, y]), (16, 16), (32, 32), 3, x_shape=(3, 1, 32, 32))
    assert math.isfinite(float(vdm_guided_sample(model, y, (16, 16), (32, 32), 1).sum()))
