"""Data consistency: hard projection, soft step, Kaczmarz SENSE sweep, batched CG, proximal CG-DC."""

import pytest
import torch

from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.ops.operators import CoilwiseOp, SenseOp, normalize_maps
from mrdiff_cli.samplers.dc import cg_dc, cg_solve, hard_dc_coilwise, kaczmarz_sense_sweep, soft_dc


def _randc(shape, g):
    return torch.randn(shape, dtype=torch.complex64, generator=g)


def _mask(H, W, g, frac=0.3):
    m = (torch.rand(H, W, generator=g) < frac).float()
    m[H // 2 - 3 : H // 2 + 3, W // 2 - 3 : W // 2 + 3] = 1
    return m


def _smooth_maps(B, C, H, W, g):
    """Random but smooth complex maps (low-pass random k-space), normalised."""
    k = torch.zeros(B, C, H, W, dtype=torch.complex64)
    k[..., H // 2 - 2 : H // 2 + 3, W // 2 - 2 : W // 2 + 3] = _randc((B, C, 5, 5), g)
    return normalize_maps(ifft2c(k))


def _rel(a, b):
    return (torch.linalg.norm(a - b) / torch.linalg.norm(b)).item()


def test_hard_dc_exact_and_idempotent():
    g = torch.Generator().manual_seed(0)
    m = _mask(24, 20, g)
    x = _randc((2, 3, 24, 20), g)
    y = m * _randc((2, 3, 24, 20), g)
    out = hard_dc_coilwise(x, y, m)
    k = fft2c(out)
    assert torch.allclose(m * k, y, atol=1e-5)  # measured values are reproduced exactly
    assert torch.allclose((1 - m) * k, (1 - m) * fft2c(x), atol=1e-5)  # the rest is untouched
    assert torch.allclose(hard_dc_coilwise(out, y, m), out, atol=1e-5)  # projection: idempotent
    assert _rel(out, x) > 0.1  # and it did change something


def test_soft_dc_lambda1_single_coil_equals_hard_dc():
    g = torch.Generator().manual_seed(1)
    m = _mask(16, 16, g)
    A = CoilwiseOp(m)
    x = _randc((3, 1, 16, 16), g)
    y = m * _randc((3, 1, 16, 16), g)
    soft = soft_dc(x, y, A, 1.0)
    hard = hard_dc_coilwise(x, y, m)
    assert torch.allclose(m * fft2c(soft), m * fft2c(hard), atol=1e-5)
    assert torch.allclose(soft, hard, atol=1e-5)
    # lambda = 0.5 only moves half way on the sampled locations
    half = soft_dc(x, y, A, 0.5)
    assert torch.allclose(m * fft2c(half), m * (0.5 * fft2c(x) + 0.5 * y), atol=1e-5)
    # per-batch lambda tensor
    lam = torch.tensor([0.0, 1.0, 0.5])
    mix = soft_dc(x, y, A, lam)
    assert torch.allclose(mix[0], x[0]) and torch.allclose(mix[1], hard[1], atol=1e-5)
    assert torch.allclose(mix[2], half[2], atol=1e-5)


def test_soft_dc_sense_decreases_residual():
    g = torch.Generator().manual_seed(2)
    A = SenseOp(_mask(16, 16, g), _smooth_maps(1, 4, 16, 16, g))
    x_true = _randc((1, 16, 16), g)
    y = A(x_true)
    x = _randc((1, 16, 16), g)
    r0 = torch.linalg.norm(A(x) - y)
    x1 = soft_dc(x, y, A, 1.0)
    assert torch.linalg.norm(A(x1) - y) < 0.9 * r0


def _spd(B, n, g):
    Q = _randc((B, n, n), g)
    return Q @ Q.conj().transpose(-2, -1) / n + 0.5 * torch.eye(n, dtype=torch.complex64)


def test_cg_solve_matches_dense_solve_batched():
    g = torch.Generator().manual_seed(3)
    B, n = 4, 12
    M = _spd(B, n, g)
    b = _randc((B, n), g)

    def normal(v):
        return (M @ v.unsqueeze(-1)).squeeze(-1)

    ref = torch.linalg.solve(M, b)
    x = cg_solve(normal, b, None, n_iter=40)
    assert x.dtype == torch.complex64
    assert _rel(x, ref) < 1e-4
    # each batch element is solved on its own: same answer alone as in the batch
    x2 = cg_solve(lambda v: (M[2:3] @ v.unsqueeze(-1)).squeeze(-1), b[2:3], None, n_iter=40)
    assert _rel(x2[0], ref[2]) < 1e-4
    # a few iterations are not enough (the test can fail), and a warm start at the answer stays there
    assert _rel(cg_solve(normal, b, None, n_iter=2), ref) > 1e-2
    assert _rel(cg_solve(normal, b, ref, n_iter=5), ref) < 1e-4


def test_cg_solve_tolerance_stops_early():
    g = torch.Generator().manual_seed(4)
    M = _spd(2, 10, g)
    b = _randc((2, 10), g)
    calls = []

    def normal(v):
        calls.append(1)
        return (M @ v.unsqueeze(-1)).squeeze(-1)

    x = cg_solve(normal, b, torch.zeros_like(b), n_iter=200, tol=1e-3)
    res = torch.linalg.norm(normal(x) - b, dim=1) / torch.linalg.norm(b, dim=1)
    assert torch.all(res < 2e-3)
    assert len(calls) < 60


def test_cg_dc_full_sampling_returns_exact_image():
    g = torch.Generator().manual_seed(5)
    maps = normalize_maps(_randc((2, 4, 16, 16), g))
    A = SenseOp(torch.ones(16, 16), maps)
    x_true = _randc((2, 16, 16), g)
    y = A(x_true)
    x0 = _randc((2, 16, 16), g)
    for mu in (0.0, 1e-6):
        assert _rel(cg_dc(x0, y, A, mu, 3), x_true) < 1e-4


def test_cg_dc_matches_closed_form_coilwise():
    """For A = M F the normal equations are diagonal in k-space: x = F^H[(M y + mu F x0) / (M + mu)]."""
    g = torch.Generator().manual_seed(6)
    m = _mask(16, 16, g)
    A = CoilwiseOp(m)
    x0 = _randc((2, 3, 16, 16), g)
    y = m * _randc((2, 3, 16, 16), g)
    mu = torch.tensor([0.1, 2.0])
    ref = ifft2c((m * y + mu.view(2, 1, 1, 1) * fft2c(x0)) / (m + mu.view(2, 1, 1, 1)))
    assert _rel(cg_dc(x0, y, A, mu, 10), ref) < 1e-4
    assert _rel(cg_dc(x0, y, A, 0.1, 10)[0], ref[0]) < 1e-4
    # mu = 0 from x0: data are matched, unsampled k-space keeps x0's values
    out = cg_dc(x0, y, A, 0.0, 5)
    assert torch.allclose(fft2c(out), m * y + (1 - m) * fft2c(x0), atol=1e-4)


def test_cg_dc_sense_least_squares():
    g = torch.Generator().manual_seed(7)
    B, C, H, W = 1, 4, 10, 10
    maps = _smooth_maps(B, C, H, W, g)
    A = SenseOp(_mask(H, W, g, frac=0.5), maps)
    x_true = _randc((B, H, W), g)
    y = A(x_true)
    x0 = torch.zeros(B, H, W, dtype=torch.complex64)
    mu = 0.05
    # dense reference for (A^H A + mu I) x = A^H y
    n = H * W
    E = A.normal(torch.eye(n, dtype=torch.complex64).reshape(n, H, W)).reshape(n, n).T  # one batched call
    ref = torch.linalg.solve(E + mu * torch.eye(n), A.adjoint(y).reshape(n)).reshape(1, H, W)
    assert _rel(cg_dc(x0, y, A, mu, 60), ref) < 1e-3


def _kaczmarz_setup(seed):
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = 2, 4, 24, 24
    maps = _smooth_maps(B, C, H, W, g)
    m = _mask(H, W, g)
    x_true = _randc((B, H, W), g)
    y = m * fft2c(maps * x_true.unsqueeze(1))
    return maps, m, x_true, y, g


def _residual(coils_img, maps, y, m):
    x = torch.sum(maps.conj() * coils_img, dim=1)
    return torch.linalg.norm(m * fft2c(maps * x.unsqueeze(1)) - y).item()


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_kaczmarz_sweep_reduces_residual_and_error(lam):
    maps, m, x_true, y, g = _kaczmarz_setup(8)
    x_coils = maps * _randc((2, 24, 24), g).unsqueeze(1)
    out = kaczmarz_sense_sweep(x_coils, maps, y, m, lam)
    assert out.shape == x_coils.shape and out.dtype == torch.complex64
    assert _residual(out, maps, y, m) < 0.8 * _residual(x_coils, maps, y, m)
    # the error to any data-consistent image never grows (non-expansive Kaczmarz steps)
    err_in = torch.linalg.norm(torch.sum(maps.conj() * x_coils, 1) - x_true)
    err_out = torch.linalg.norm(torch.sum(maps.conj() * out, 1) - x_true)
    assert err_out < err_in
    # more sweeps keep going down
    out2 = kaczmarz_sense_sweep(out, maps, y, m, lam)
    assert _residual(out2, maps, y, m) < _residual(out, maps, y, m)


def test_kaczmarz_normalised_step_beats_plain_step():
    maps, m, _, y, g = _kaczmarz_setup(9)
    x_coils = maps * _randc((2, 24, 24), g).unsqueeze(1)
    r_norm = _residual(kaczmarz_sense_sweep(x_coils, maps, y, m, 1.0), maps, y, m)
    r_plain = _residual(kaczmarz_sense_sweep(x_coils, maps, y, m, 1.0, normalize=False), maps, y, m)
    assert r_norm < r_plain


def test_kaczmarz_keeps_consistent_image():
    maps, m, x_true, y, _ = _kaczmarz_setup(10)
    x_coils = maps * x_true.unsqueeze(1)
    out = kaczmarz_sense_sweep(x_coils, maps, y, m, 1.0)
    assert torch.allclose(out, x_coils, atol=1e-4)
    # also with an unbatched (coils, H, W) map set broadcast over a batch of one
    out1 = kaczmarz_sense_sweep(x_coils[:1], maps[0], y[:1], m, 1.0)
    assert torch.allclose(out1, x_coils[:1], atol=1e-4)


# ------------------------------------------------------------------------------------------------------
# DC step objects (the sampler contract)


def test_hybrid_sweep_every_m_steps_and_always_the_last():
    from mrdiff_cli.samplers.dc import HybridSenseDC

    h = HybridSenseDC(None, None, None, None, None, every=3)
    assert [i for i in range(10) if h.sweeps_at(i, 10)] == [2, 5, 8, 9]
    assert [i for i in range(9) if h.sweeps_at(i, 9)] == [2, 5, 8]
    assert [i for i in range(4) if HybridSenseDC(None, None, None, None, None, every=1).sweeps_at(i, 4)] == [0, 1, 2, 3]


@pytest.mark.parametrize("every", [1, 3, 7])
def test_pc_hybrid_ends_with_a_sweep_for_every_m(every):
    """The PC sampler's output has had the Kaczmarz sweep applied at its last step, whatever m (the old hook
    counter skipped it for m > 1)."""
    import torch

    from mrdiff_cli.ops.operators import CoilwiseOp
    from mrdiff_cli.samplers.dc import HybridSenseDC, SoftDC
    from mrdiff_cli.samplers.pc import pc_sample

    calls = []

    class Spy(HybridSenseDC):
        def __call__(self, x, y, A, *, step=0, n_steps=1, sigma=0.0):
            if self.sweeps_at(step, n_steps):
                calls.append(step)
            return x

    x0 = torch.zeros(1, 2, 8, 8, dtype=torch.complex64)
    n = 8
    pc_sample(lambda x, s: x * 0, x0, CoilwiseOp(torch.ones(8, 8)), torch.linspace(1.0, 0.1, n), x0,
              dc=Spy(SoftDC(1.0), None, None, None, None, every=every), snr=0.1, generator=torch.Generator().manual_seed(0))
    assert n - 1 in calls
    assert sorted(set(calls)) == [i for i in range(n) if (i + 1) % every == 0 or i == n - 1]
