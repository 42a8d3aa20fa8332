"""Coil compression (ops.compress) and the shift-free SENSE CG path (samplers.dc.UnshiftedSense)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrdiff_cli.ops.compress import (
    apply_compression,
    auto_virtual_coils,
    compress_coils,
    compression_matrices,
    resolve_virtual_coils,
)
from mrdiff_cli.ops.fft import fft2c
from mrdiff_cli.ops.operators import SenseOp
from mrdiff_cli.samplers.dc import ProximalDC, UnshiftedSense, cg_dc
from mrdiff_cli.tasks.simulate import coil_maps


def _crandn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


def _rel(a, b):
    return float((a - b).abs().norm() / b.abs().norm())


def test_auto_rule_and_resolution():
    assert auto_virtual_coils(8) == 8 and auto_virtual_coils(12) == 12
    assert auto_virtual_coils(13) == 10 and auto_virtual_coils(16) == 10 and auto_virtual_coils(20) == 10
    assert auto_virtual_coils(24) == 12 and auto_virtual_coils(32) == 16
    assert resolve_virtual_coils(None, 16) == 10
    assert resolve_virtual_coils(0, 16) == 16  # off
    assert resolve_virtual_coils(6, 16) == 6
    assert resolve_virtual_coils(40, 16) == 16
    with pytest.raises(ValueError):
        resolve_virtual_coils(1, 16)
    with pytest.raises(ValueError):
        resolve_virtual_coils(-1, 16)


def test_matrices_are_orthonormal_and_keep_the_signal_subspace_exactly():
    # 12 physical coils that are mixtures of 4 underlying coils: 4 virtual coils keep everything
    B, C, H, W = 2, 12, 24, 20
    base = _crandn(B, 4, H, W, seed=1)
    mix = _crandn(C, 4, seed=2)
    y = torch.einsum("ck,bkhw->bchw", mix, base)
    U, retained = compression_matrices(y, 4)
    assert U.shape == (B, C, 4)
    eye = torch.eye(4, dtype=torch.complex64).expand(B, 4, 4)
    assert torch.allclose(U.conj().transpose(1, 2) @ U, eye, atol=1e-5)
    assert torch.all(retained > 1 - 1e-5)
    # back-projection U U^H y reproduces the data
    yc = apply_compression(y, U)
    back = (U.to(y.dtype) @ yc.reshape(B, 4, -1)).reshape(y.shape)
    assert _rel(back, y) < 1e-4
    # fewer virtual coils than the rank lose energy, and retained says how much
    yc2, U2, r2 = compress_coils(y, 2)
    lost = 1 - float(yc2.abs().pow(2).sum() / y.abs().pow(2).sum())
    assert 0.0 < lost < 1.0
    assert abs((1 - float(r2.mean())) - lost) < 0.05


def test_per_slice_matrices_do_not_depend_on_the_batch():
    y = _crandn(3, 10, 16, 16, seed=3)
    U_all, _ = compression_matrices(y, 5)
    U_one, _ = compression_matrices(y[1:2], 5)
    assert torch.allclose(U_all[1:2], U_one, atol=1e-5)


def test_compression_commutes_with_the_forward_model():
    # U^H (M F S x) == M F ((U^H S) x): the compressed maps describe the compressed data exactly
    H, W = 32, 32
    S = torch.from_numpy(coil_maps(16, (H, W)))[None]
    x = _crandn(1, H, W, seed=4)
    mask = (torch.rand(H, W, generator=torch.Generator().manual_seed(5)) > 0.6).float()
    y = SenseOp(mask, S)(x)
    U, _ = compression_matrices(y, 8)
    lhs = apply_compression(y, U)
    rhs = SenseOp(mask, apply_compression(S, U))(x)
    assert _rel(lhs, rhs) < 1e-5


class _Wrapped:
    """The same SENSE operator, hidden from the fast path (type(A) is not SenseOp)."""

    def __init__(self, A):
        self.A, self.mask = A, A.mask

    def __call__(self, x):
        return self.A(x)

    def adjoint(self, y):
        return self.A.adjoint(y)

    def normal(self, x):
        return self.A.normal(x)


@pytest.mark.parametrize("hw", [(16, 16), (15, 18)])
def test_unshifted_sense_matches_the_centred_operator(hw):
    H, W = hw
    S = _crandn(2, 4, H, W, seed=6)
    mask = (torch.rand(H, W, generator=torch.Generator().manual_seed(7)) > 0.5).float()
    A = SenseOp(mask, S)
    op = UnshiftedSense(A)
    x = _crandn(2, H, W, seed=8)
    y = A(x)
    assert _rel(op.from_unshifted(op.normal(op.to_unshifted(x))), A.normal(x)) < 1e-5
    assert _rel(op.from_unshifted(op.adjoint(y)), A.adjoint(y)) < 1e-5
    x0 = _crandn(2, H, W, seed=9)
    for mu in (0.0, 0.3):
        fast = cg_dc(x0, y, A, mu, 6)
        slow = cg_dc(x0, y, _Wrapped(A), mu, 6)
        assert _rel(fast, slow) < 1e-4


def test_proximal_dc_reuses_its_cache_only_for_the_same_operator_and_data():
    H, W = 16, 16
    S = _crandn(1, 3, H, W, seed=10)
    mask = (torch.rand(H, W, generator=torch.Generator().manual_seed(11)) > 0.5).float()
    A = SenseOp(mask, S)
    y1, y2 = A(_crandn(1, H, W, seed=12)), A(_crandn(1, H, W, seed=13))
    dc = ProximalDC(5, 0.0)
    x0 = _crandn(1, H, W, seed=14)
    a = dc(x0, y1, A)
    b = dc(x0, y2, A)  # different data: the cached A^H y must not be reused
    assert _rel(a, cg_dc(x0, y1, _Wrapped(A), 0.0, 5)) < 1e-4
    assert _rel(b, cg_dc(x0, y2, _Wrapped(A), 0.0, 5)) < 1e-4


def test_reconstructor_compresses_sense_above_twelve_coils_and_not_below():
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    H = W = 32
    img = np.zeros((1, H, W), np.float32)
    img[:, 8:24, 10:22] = 1.0
    mask = np.zeros((H, W), np.float32)
    mask[:, ::2] = 1
    mask[:, 12:20] = 1
    for coils, expect in ((8, 8), (16, 10)):
        S = coil_maps(coils, (H, W))
        k = fft2c(torch.from_numpy(img[:, None] * S[None]).to(torch.complex64)).numpy()
        rec = Reconstructor(None, ReconOptions(method="sense"))
        out = rec.reconstruct(k, mask, "sense")
        assert rec.compression["virtual_coils"] == expect
        assert out.images.shape == (1, H, W)
    off = Reconstructor(None, ReconOptions(method="sense", compress_coils=0))
    off.reconstruct(k, mask, "sense")
    assert off.compression["virtual_coils"] == 16
    # ssos is not compressed unless asked for
    ss = Reconstructor(None, ReconOptions(method="zero-filled"))
    ss.reconstruct(k, mask, "ssos")
    assert getattr(ss, "compression", None) is None
