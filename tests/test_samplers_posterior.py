"""Posterior sampling checked exactly against a closed-form Gaussian prior, plus the Reconstructor's sampling
contracts (hard DC after the last step, same seed -> same output, per-slice seeding).

Closed form (GaussianPrior, ``realimag`` adapter): real and imaginary parts of every pixel are iid
N(mu, s^2), so x ~ CN(mu (1 + i), 2 s^2 I). The orthonormal F keeps white noise white: k = F x is
CN(F mu (1 + i), 2 s^2 I). With noiseless y = M F x the posterior factorises over k-space locations:

    sampled k   = y exactly,
    unsampled k ~ CN(F mu (1 + i), 2 s^2) independently,
    => posterior mean  = F^H [M y + (1 - M) F mu (1 + i)]       (= F^H (M y) for mu = 0)
       per-pixel E|x - mean|^2 = 2 s^2 (N_u / N) = 2 s^2 (1 - 1/R)   (|F_jk|^2 = 1/N for every j, k)

Both samplers act diagonally in k-space on this problem (the denoiser is a per-pixel affine shrink applied
equally to Re and Im, which commutes with F; DC and white noise are diagonal too), so each unsampled
location follows a scalar recursion that we can evaluate exactly (``_fast_factor``, ``_pc_factor``) next to
the analytic posterior. Measured on this problem (16x16, R ~ 3.3-4.3, 256 samples):

* ``pc_sample`` (the seed's reverse-diffusion predictor + hard DC) samples the posterior up to the
  Euler-Maruyama discretisation: variance x1.023 of the analytic value at 300 geometric steps 10 -> 0.01
  (measured x1.0227, the recursion predicts x1.0228); the Langevin corrector at snr 0.16 adds up to ~ +2.6 %
  (unadjusted Langevin with step 2 snr^2 V has stationary variance V / (1 - snr^2)): measured x1.024 in the
  test below, x1.042 on another mask/seed.
* ``fast_sample`` with zeta = 1 (fresh noise each step, the DDS/DiffPIR choice) is NOT a posterior sampler:
  re-noising the MMSE estimate x0 with sigma' z forgets that x0 is shrunk, losing s^2 sigma^2/(s^2+sigma^2) of
  variance at every step. Its mean is right but its spread is ~ half the posterior's (measured x0.464, the
  recursion predicts x0.465, at 50 Karras steps 10 -> 0.01; x0.49 at 200; x0.45 at the CLI default 20 steps
  1 -> 0.01; the recursion's fixed point is exactly 1/2). Uncertainty maps drawn with
  ``--sampler fast`` are therefore too small by about sqrt(2) in std on this model.

Sampling error used for the tolerances (K samples, N pixels, N_u unsampled locations, sampler variance
v_s per pixel): per k-location the K draws are iid complex Gaussian, so

* pixel-averaged unbiased sample variance = (1/N) sum_k sample-var_k ~ v_s chi2_{2 (K-1) N_u} / (2 (K-1) N_u):
  relative std 1 / sqrt((K - 1) N_u) (~0.5 % here). We allow 5 of those.
* per-pixel sample variance ~ v_s chi2_{2 (K-1)} / (2 (K-1)): relative std 1 / sqrt(K - 1) (~6 %); over 256
  pixels we allow 5.5 of those.
* ||mean_hat - mean||^2 summed over pixels = sum over unsampled k of |mean of K draws|^2
  ~ (v_s N / K) Gamma(N_u, 1) / N_u: ratio to v_s N / K has mean 1 and relative std 1 / sqrt(N_u) (~7 %);
  we allow 5 of those, and the sampled locations of the mean must equal y to float32 round-off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mrdiff_cli.ops.fft import fft2c, ifft2c
from mrdiff_cli.ops.operators import CoilwiseOp
from mrdiff_cli.samplers.adapters import make_denoiser
from mrdiff_cli.samplers.dc import hard_dc_coilwise
from mrdiff_cli.samplers.dc import ProximalDC, SoftDC
from mrdiff_cli.samplers.fast import fast_sample
from mrdiff_cli.samplers.pc import pc_sample
from mrdiff_cli.samplers.schedules import geometric_sigmas, karras_sigmas
from closed_form import GaussianPrior

H = W = 16
K = 256
S = 1.0  # prior std of each real channel


# ------------------------------------------------------------------------------------------------------
# the closed-form problem


class Problem:
    def __init__(self, prior_mean: str, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        m = (torch.rand(H, W, generator=g) < 0.25).float()
        m[H // 2 - 1 : H // 2 + 2, W // 2 - 1 : W // 2 + 2] = 1.0
        self.mask = m
        self.n_u = int((1 - m).sum())
        self.R = H * W / float(m.sum())
        mu = torch.zeros(H, W) if prior_mean == "zero" else 0.7 * torch.randn(H, W, generator=g)
        self.prior = GaussianPrior(mean=mu, std=S)
        mu_c = torch.complex(mu, mu)
        x_true = mu_c + S * torch.complex(torch.randn(H, W, generator=g), torch.randn(H, W, generator=g))
        self.y1 = (m * fft2c(x_true))[None, None]  # (1, 1, H, W)
        self.y = self.y1.repeat(K, 1, 1, 1)  # K posterior samples of the same measurement, one batch
        self.post_mean = ifft2c(m * self.y1[0, 0] + (1 - m) * fft2c(mu_c))
        self.post_var = 2 * S**2 * (1 - 1 / self.R)  # E|x - mean|^2 per pixel
        self.den = make_denoiser(self.prior, "realimag", batch_size=4 * K)

    def stats(self, x: torch.Tensor) -> dict:
        x = x[:, 0]
        mean = x.mean(0)
        var = ((x - mean).abs() ** 2).sum(0) / (K - 1)
        k = fft2c(x)
        return {
            "mean": mean,
            "var": var,
            "var_rel": var.mean().item() / self.post_var,
            "mean_err2": ((mean - self.post_mean).abs() ** 2).sum().item(),
            "dc_err": (self.mask * (k - self.y1[0, 0])).abs().max().item(),
            "y_max": self.y1.abs().max().item(),
        }


def _fast_factor(sigmas, s2: float = S**2) -> float:
    """Variance of an unsampled k-coefficient after fast_sample(zeta=1), relative to the prior's s^2.

    x starts at x_init (0 there) + sigma_0 z: w = sigma_0^2. Each step: x0 = a x with a = s^2/(s^2+sigma^2)
    (DC keeps unsampled locations), then x = x0 + sigma' z. Returns the variance of the last x0.
    """
    sig = [float(v) for v in sigmas]
    w = sig[0] ** 2
    for i, sg in enumerate(sig):
        x0 = (s2 / (s2 + sg**2)) ** 2 * w
        if i + 1 < len(sig):
            w = x0 + sig[i + 1] ** 2
    return x0 / s2


def _pc_factor(sigmas, s2: float = S**2) -> float:
    """Same for pc_sample without corrector: x <- (1 - g2/(s^2+sigma^2)) x + sqrt(g2) z, g2 = sigma^2 - sigma'^2;
    the last step (sigma' = 0) returns the noise-free mean (Tweedie)."""
    sig = [float(v) for v in sigmas] + [0.0]
    w = sig[0] ** 2
    for i in range(len(sig) - 1):
        g2 = sig[i] ** 2 - sig[i + 1] ** 2
        c = 1 - g2 / (s2 + sig[i] ** 2)
        w = c * c * w + (g2 if sig[i + 1] > 0 else 0.0)
    return w / s2


def _check(p: Problem, st: dict, factor: float, var_tol: float | None = None) -> None:
    """Mean and variance against the analytic posterior whose variance the sampler scales by ``factor``."""
    n = H * W
    # data consistency of every sample (and so of the mean) on the sampled locations
    assert st["dc_err"] <= 1e-5 * st["y_max"]
    # mean: ||mean_hat - mean||^2 / (v_s N / K) ~ Gamma(N_u)/N_u
    ratio = st["mean_err2"] / (factor * p.post_var * n / K)
    assert abs(ratio - 1) < 5 / math.sqrt(p.n_u), ratio
    # pixel-averaged variance
    tol = 5 / math.sqrt((K - 1) * p.n_u) if var_tol is None else var_tol
    assert abs(st["var_rel"] / factor - 1) < tol, (st["var_rel"], factor)
    # every pixel: the posterior variance is the same everywhere
    per_pixel = st["var"] / (factor * p.post_var)
    band = 5.5 / math.sqrt(K - 1) + (0.0 if var_tol is None else var_tol)
    assert float((per_pixel - 1).abs().max()) < band


# ------------------------------------------------------------------------------------------------------
# pc_sample: the seed's sampler is a posterior sampler up to discretisation


@pytest.mark.parametrize("prior_mean", ["zero", "random"])
def test_pc_predictor_matches_gaussian_posterior(prior_mean):
    p = Problem(prior_mean)
    sig = geometric_sigmas(300, 0.01, 10.0)
    x = pc_sample(
        p.den, p.y, CoilwiseOp(p.mask), sig, ifft2c(p.y), dc=SoftDC(1.0), snr=0.0, n_corrector=0,
        generator=torch.Generator().manual_seed(1),
    )
    st = p.stats(x)
    f = _pc_factor(sig)
    assert abs(f - 1) < 0.03  # Euler-Maruyama bias of this schedule: +2.3 %
    _check(p, st, f)  # ... and the sampler does exactly that
    _check(p, st, 1.0, var_tol=0.03 + 5 / math.sqrt((K - 1) * p.n_u))  # within 3 % of the true posterior


def test_pc_with_langevin_corrector_close_to_gaussian_posterior():
    p = Problem("random", seed=2)
    sig = geometric_sigmas(300, 0.01, 10.0)
    x = pc_sample(
        p.den, p.y, CoilwiseOp(p.mask), sig, ifft2c(p.y), dc=SoftDC(1.0), snr=0.16, n_corrector=1,
        generator=torch.Generator().manual_seed(3),
    )
    st = p.stats(x)
    # measured x1.024 here, x1.042 on another seed (EM +2.3 %, corrector <= +2.6 %): a few percent over
    assert 0.99 < st["var_rel"] < 1.07, st["var_rel"]
    _check(p, st, st["var_rel"], var_tol=0.0 + 5 / math.sqrt((K - 1) * p.n_u))


# ------------------------------------------------------------------------------------------------------
# fast_sample: right mean, about half the posterior variance (zeta = 1 renoising)


@pytest.mark.parametrize("prior_mean", ["zero", "random"])
def test_fast_sampler_mean_exact_variance_halved(prior_mean):
    p = Problem(prior_mean, seed=4)
    A = CoilwiseOp(p.mask)
    sig = karras_sigmas(50, 0.01, 10.0)
    x = fast_sample(
        p.den, p.y, A, sig, ifft2c(p.y), dc=ProximalDC(10, 0.0), zeta=1.0, generator=torch.Generator().manual_seed(5)
    )
    st = p.stats(x)
    f = _fast_factor(sig)
    assert 0.44 < f < 0.5  # 0.465 for this schedule; -> 1/2 as the schedule gets denser
    _check(p, st, f)  # the sampler follows its recursion exactly: right mean, variance x f
    assert st["var_rel"] < 0.55  # documented deviation from the true posterior (see module docstring)


def test_fast_sampler_ancestral_renoise_recovers_posterior_variance():
    """zeta='ancestral' (zeta_i = 1 - sigma_{i+1}^2/sigma_i^2) keeps the spread: the variance is close to the
    analytic posterior's (measured within a few % at 50 steps), unlike zeta = 1 (x0.46 above)."""
    p = Problem("random", seed=6)
    A = CoilwiseOp(p.mask)
    sig = karras_sigmas(50, 0.01, 10.0)
    x = fast_sample(
        p.den, p.y, A, sig, ifft2c(p.y), dc=ProximalDC(10, 0.0), zeta="ancestral", generator=torch.Generator().manual_seed(7)
    )
    st = p.stats(x)
    assert 0.8 < st["var_rel"] < 1.1, st["var_rel"]
    _check(p, st, st["var_rel"], var_tol=5 / math.sqrt((K - 1) * p.n_u))


def test_fast_variance_factor_tends_to_one_half():
    # the recursion's fixed point for a dense schedule: w = sigma^2 / (1 - a^2) -> s^2 / 2
    assert abs(_fast_factor(karras_sigmas(2000, 0.001, 10.0)) - 0.5) < 0.01
    assert _fast_factor(karras_sigmas(20, 0.01, 1.0)) < 0.5


def test_per_item_generators_give_batch_independent_noise():
    from mrdiff_cli.samplers.noise import randn_like as _randn_like

    x = torch.zeros(3, 2, 4, 4, dtype=torch.complex64)
    gens = lambda: [torch.Generator().manual_seed(s) for s in (7, 8, 9)]  # noqa: E731
    full = _randn_like(x, gens())
    alone = _randn_like(x[1:2], [torch.Generator().manual_seed(8)])
    assert torch.equal(full[1:2], alone)
    with pytest.raises(ValueError):
        _randn_like(x, gens()[:2])


# ------------------------------------------------------------------------------------------------------
# Reconstructor contracts with a tiny (untrained) network


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    from mrdiff_cli.priors.bundle import save_bundle
    from mrdiff_cli.priors.loading import load_prior
    from mrdiff_cli.tasks.train import TrainConfig, build_model_and_config

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model, config = build_model_and_config(TrainConfig(base_channels=8, channel_mults=[1, 2], matrix=32))
    folder = save_bundle(tmp_path_factory.mktemp("tiny_model") / "tiny-score", model, config)
    prior, _ = load_prior(str(folder), "score", offline=True)
    return prior


@pytest.fixture(scope="module")
def scans():
    from mrdiff_cli.ops.masks import make_mask
    from mrdiff_cli.tasks.simulate import analytic_phantom, simulate_kspace

    p = analytic_phantom(32)
    vol = np.stack([p, 0.6 * p, 0.3 * p]).astype(np.float32)
    single, _, _ = simulate_kspace(vol, coils=1, snr_db=None, seed=1)
    multi, _, _ = simulate_kspace(vol, coils=4, snr_db=None, seed=2)
    return {
        "single": single,
        "multi": multi,
        "mask2d": make_mask("gaussian2d", (32, 32), 4.0, seed=0).mask,
        "mask1d": make_mask("equispaced", (32, 32), 4.0, acs=4).mask,
    }


@pytest.mark.parametrize("sampler", ["pc", "fast"])
def test_reconstructor_single_coil_dc_exact_after_last_step(tiny_prior, scans, sampler, monkeypatch):
    from mrdiff_cli.samplers import posterior as rec_mod  # the final step and the RSS run there
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    seen = []
    real_rss = rec_mod.rss

    def spy(x, dim=1):  # the last call receives the final (rescaled) complex coil images of the sampler
        seen.append(x.detach().clone())
        return real_rss(x, dim=dim)

    monkeypatch.setattr(rec_mod, "rss", spy)
    k, m = scans["single"][:2], scans["mask2d"]
    res = Reconstructor(tiny_prior, ReconOptions(sampler=sampler, steps=3, seed=0)).reconstruct(k, m, "single")
    x = seen[-1]
    assert x.shape == (2, 1, 32, 32) and x.is_complex()
    y = torch.as_tensor(k) * torch.as_tensor(m)
    err = (torch.as_tensor(m) * fft2c(x) - y).abs().max().item()
    assert err <= 2e-5 * y.abs().max().item()  # hard DC: measured k-space reproduced to float32 round-off
    assert np.allclose(res.images, x.abs()[:, 0].numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode,sampler", [("sense", "fast"), ("ssos", "pc"), ("single", "fast")])
def test_reconstructor_same_seed_same_output(tiny_prior, scans, mode, sampler):
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    k = scans["single" if mode == "single" else "multi"][:2]
    opts = dict(sampler=sampler, steps=3, samples=2)
    a = Reconstructor(tiny_prior, ReconOptions(seed=11, **opts)).reconstruct(k, scans["mask1d"], mode)
    b = Reconstructor(tiny_prior, ReconOptions(seed=11, **opts)).reconstruct(k, scans["mask1d"], mode)
    c = Reconstructor(tiny_prior, ReconOptions(seed=12, **opts)).reconstruct(k, scans["mask1d"], mode)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.variance, b.variance)
    assert not np.array_equal(a.images, c.images)


@pytest.mark.parametrize("mode,sampler", [("sense", "fast"), ("sense", "pc"), ("ssos", "fast"), ("single", "pc")])
def test_reconstructor_batch_equals_one_by_one(tiny_prior, scans, mode, sampler):
    """Per-slice seeding: a slice's samples do not depend on its batch mates, the batch size or the grouping
    of samples (noise comes from one generator per (sample, slice); the network still sees whole batches)."""
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    k = scans["single" if mode == "single" else "multi"]
    m = scans["mask1d"]
    opts = dict(sampler=sampler, steps=3, samples=3, seed=7)
    rec = Reconstructor(tiny_prior, ReconOptions(**opts))
    batch = rec.reconstruct(k, m, mode)
    singles = [rec.reconstruct(k[i : i + 1], m, mode, slice_ids=[i]) for i in range(k.shape[0])]
    small = Reconstructor(tiny_prior, ReconOptions(batch_size=1, **opts)).reconstruct(k, m, mode)  # 1 sample/group
    tail = rec.reconstruct(k[1:], m, mode, slice_ids=[1, 2])
    scale = float(np.abs(batch.images).max())
    for other_img, other_var in (
        (np.concatenate([s.images for s in singles]), np.concatenate([s.variance for s in singles])),
        (small.images, small.variance),
        (np.concatenate([batch.images[:1], tail.images]), np.concatenate([batch.variance[:1], tail.variance])),
    ):
        assert np.allclose(batch.images, other_img, rtol=1e-4, atol=1e-5 * scale)
        assert np.allclose(batch.variance, other_var, rtol=1e-3, atol=1e-5 * scale**2)
    # and different slices do get different noise (slice index enters the seed)
    r0 = rec.reconstruct(k[:1], m, mode, slice_ids=[0])
    r5 = rec.reconstruct(k[:1], m, mode, slice_ids=[5])
    assert not np.array_equal(r0.variance, r5.variance)


class _IdentityPrior:
    """denoise(x, sigma) = x: isolates what the complex adapter does around the prior."""

    def denoise(self, x, sigma):
        return x


def test_phase_mode_refines_the_phase_from_the_iterate_at_low_sigma():
    from mrdiff_cli.samplers.adapters import lowres_phase

    H = W = 32
    u = torch.arange(W) / W  # periodic coordinates: the FFT-based low-pass has no edge effects
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    mag = 1.0 + 0.2 * torch.cos(2 * math.pi * xx)
    fine = 0.6 * torch.sin(2 * math.pi * 3 * xx) * torch.cos(2 * math.pi * 2 * yy)  # finer than the given phase
    x = (mag * torch.exp(1j * fine)).to(torch.complex64)[None]
    smooth = torch.zeros(1, H, W)
    fixed = make_denoiser(_IdentityPrior(), "phase", phase=smooth, resid_std=0.0)
    refined = make_denoiser(_IdentityPrior(), "phase", phase=smooth, resid_std=0.0, refine_below=0.05, refine_frac=1.0)
    # above the switch both demodulate the given phase: the imaginary residual (the fine phase) is removed
    assert torch.allclose(refined(x, 0.5), fixed(x, 0.5))
    err_fixed = float((fixed(x, 0.01) - x).abs().mean())
    err_refined = float((refined(x, 0.01) - x).abs().mean())
    # below it the phase of the iterate itself (Hann-windowed over the whole k-space) is used: most of the fine
    # phase is kept (the identity prior would return x exactly with the exact phase)
    assert err_refined < 0.5 * err_fixed, (err_refined, err_fixed)
    ph_err = (torch.angle(x * torch.exp(-1j * lowres_phase(x, 32)))).abs().mean()
    assert float(ph_err) < 0.5 * float(fine.abs().mean())
