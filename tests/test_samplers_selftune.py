"""Self-tuning consistency (samplers.selftune, Reconstructor.tune): hold-out splits, the search, and the choice
on real simulated scans with the bundled prior."""

from __future__ import annotations

import numpy as np
import torch

from mrdiff_cli.ops.masks import acs_shape, make_mask
from mrdiff_cli.samplers.selftune import choose_count, holdout_error, regular_line_spacing, split_holdout, unimodal_search


def test_split_2d_mask_hides_points_outside_the_centre():
    mask = make_mask("poisson", (64, 64), 6, seed=1).mask
    s = split_holdout(mask, 0.15, seed=0)
    assert s is not None and s.kind == "points"
    m = mask > 0
    hold, fit = s.hold > 0, s.fit > 0
    assert not (hold & ~m).any(), "only measured samples are hidden"
    assert np.array_equal(hold | fit, m) and not (hold & fit).any()
    ah, aw = acs_shape(m)
    assert not hold[32 - ah // 2: 32 - ah // 2 + ah, 32 - aw // 2: 32 - aw // 2 + aw].any(), "the centre is kept"
    assert abs(hold.sum() - 0.15 * s.n_candidates) <= 1


def test_split_1d_mask_hides_whole_lines_and_falls_back_to_points():
    mask = make_mask("equispaced", (64, 96), 3, acs=8, seed=1).mask
    s = split_holdout(mask, 0.2, seed=0)
    assert s.kind == "lines"
    cols = np.flatnonzero(s.hold.any(axis=0))
    assert len(cols) == s.n_hold >= 4 and s.hold[:, cols].all(), "hidden lines are whole phase-encode lines"
    few = make_mask("gaussian1d", (64, 64), 8, seed=1).mask  # a handful of lines outside the centre
    s2 = split_holdout(few, 0.15, seed=0)
    assert s2 is not None and s2.kind == "points on lines"


def test_split_line_cap_hides_whole_lines_where_few_are_a_small_share():
    mask = make_mask("equispaced", (128, 128), 4, acs=10, seed=11).mask  # ~21 lines outside the centre
    plain = split_holdout(mask, 0.15, seed=0)
    capped = split_holdout(mask, 0.15, seed=0, line_cap=0.25)
    assert plain.kind == "points on lines"  # 15 % of the lines is fewer than 4
    assert capped.kind == "lines" and capped.n_hold == 4 <= 0.25 * capped.n_candidates
    cols = np.flatnonzero(capped.hold.any(axis=0))
    assert len(cols) == 4 and capped.hold[:, cols].all()
    few = make_mask("gaussian1d", (128, 128), 8, seed=11).mask  # 4 lines would be more than a quarter of them
    assert split_holdout(few, 0.15, seed=0, line_cap=0.25).kind == "points on lines"


def test_count_pilot_hides_whole_lines_where_few_lines_allow_it(bundled_prior):
    """The CG-count pilot uses the line cap (equispaced x4 at 128²: 4 whole lines of ~21, not single samples);
    the uncertainty calibration's split (another stream) keeps the fallback it was fitted with."""
    from mrdiff_cli.samplers.selftune import PILOT_LINE_CAP
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    assert 0 < PILOT_LINE_CAP <= 0.5
    g = torch.Generator().manual_seed(0)
    k = torch.randn(1, 4, 128, 128, dtype=torch.complex64, generator=g).numpy()
    mask = make_mask("equispaced", (128, 128), 4, acs=10, seed=11).mask
    rec = Reconstructor(bundled_prior, ReconOptions(seed=0))
    _, info = rec.pilot(k, mask, "sense")
    assert info["kind"] == "lines" and info["hidden"] == 4
    *_, split, _, _ = rec._holdout_data(k, mask, "sense", None, compressed=False, stream=1)
    assert split.kind == "points on lines"


def test_split_is_seeded_and_none_when_nothing_to_hide():
    mask = make_mask("poisson", (48, 48), 4, seed=3).mask
    a, b, c = split_holdout(mask, 0.15, 7), split_holdout(mask, 0.15, 7), split_holdout(mask, 0.15, 8)
    assert np.array_equal(a.hold, b.hold) and not np.array_equal(a.hold, c.hold)
    assert split_holdout(np.ones((32, 32), np.float32), 0.15, 0) is None  # fully sampled: all centre


def test_unimodal_search_finds_the_minimum_without_trying_everything():
    for best in (1, 2, 3, 5, 7, 10):
        calls = []

        def f(n, best=best):
            calls.append(n)
            return (np.log(n) - np.log(best)) ** 2

        got, seen = unimodal_search(f, (1, 2, 3, 5, 7, 10), start=3)
        assert got == best and set(seen) == set(calls) and len(calls) <= 4


def test_holdout_error_is_zero_for_the_truth_and_grows_with_the_error():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 16, dtype=torch.complex64, generator=g)
    maps = torch.randn(1, 4, 16, 16, dtype=torch.complex64, generator=g)
    hold = torch.zeros(16, 16)
    hold[::3, ::2] = 1
    from mrdiff_cli.ops.fft import fft2c

    y_hold = hold * fft2c(maps * x.unsqueeze(-3))
    assert float(holdout_error(x, maps, hold, y_hold)) < 1e-10
    e1 = float(holdout_error(x + 0.01 * torch.randn_like(x), maps, hold, y_hold))
    e2 = float(holdout_error(x + 0.1 * torch.randn_like(x), maps, hold, y_hold))
    assert 0 < e1 < e2


def _tuned(prior, image, snr, seed=0):
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import simulate_volume

    sim = simulate_volume(image, None, matrix=64, coils=8, snr_db=snr, seed=1)
    mask = make_mask("poisson", (64, 64), 6, seed=2).mask
    rec = Reconstructor(prior, ReconOptions(steps=8, pilot_steps=4, seed=seed))
    out = rec.reconstruct(sim.kspace, mask, "sense")
    return rec, out


def test_selection_follows_the_noise_and_is_deterministic(bundled_prior, example_slice):
    """Noisier data → fewer CG iterations (weaker consistency); cleaner data → more. Same seed → same choice
    and the same image."""
    noisy, _ = _tuned(bundled_prior, example_slice, 15)
    clean, img = _tuned(bundled_prior, example_slice, 50)
    assert noisy.tuning.n_cg < clean.tuning.n_cg, (noisy.tuning.errors, clean.tuning.errors)
    assert noisy.tuning.n_cg <= 3 and clean.tuning.n_cg >= 5
    again, img2 = _tuned(bundled_prior, example_slice, 50)
    assert again.tuning.errors == clean.tuning.errors
    assert np.array_equal(img.images, img2.images)
    rep = clean.consistency_report("sense")
    assert rep["chosen_by"] == "k-space hold-out cross-validation" and rep["cg_iters"] == clean.tuning.n_cg


def test_fixed_count_skips_the_pilot(bundled_prior, magnitude_prior, example_slice):
    """--cg-iters (and, for a magnitude prior, --phase-resid) fixed: no pilot runs. The default (complex-valued)
    prior has no phase prior, so a fixed count alone skips it."""
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import simulate_volume

    sim = simulate_volume(example_slice, None, matrix=32, coils=4, snr_db=30, seed=1)
    mask = make_mask("poisson", (32, 32), 3, seed=2).mask
    rec = Reconstructor(magnitude_prior, ReconOptions(steps=2, n_cg=3, phase_resid=0.005))
    rec.reconstruct(sim.kspace, mask, "sense")
    rep = rec.consistency_report("sense")
    # the maps' support is still chosen per scan (at the fixed count): a separate choice (test_support_choice.py)
    assert rep.pop("coil_map_support")["at_cg"] == 3
    assert rec.tuning is None and rep == {
        "cg_iters": 3, "chosen_by": "fixed (--cg-iters)", "coil_maps": "adaptive", "phase_resid": 0.005,
        "phase_resid_chosen_by": "fixed (--phase-resid)",
        "phase_reference": "centre (24-pixel low-resolution phase of the start)"}
    rec = Reconstructor(bundled_prior, ReconOptions(steps=2, n_cg=3))
    rec.reconstruct(sim.kspace, mask, "sense")
    rep = rec.consistency_report("sense")
    assert rec.tuning is None and rep["cg_iters"] == 3 and rep["chosen_by"] == "fixed (--cg-iters)", rep
    assert "phase_resid" not in rep and rep["phase_reference"].startswith("complex-valued prior"), rep


def test_phase_prior_follows_the_phase_structure(magnitude_prior, example_slice):
    """Smooth (polynomial) phase → the tight phase prior 0.005; air-tissue off-resonance phase (steep, wrapping
    near a cavity) → the loose one, 0.05."""
    from mrdiff_cli.tasks.acquisition import Acquisition, simulate_acquisition
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import resample_slices

    img = resample_slices(example_slice, 64)[0]
    mask = make_mask("poisson", (64, 64), 6, seed=2).mask
    chosen = {}
    for phase in ("poly", "offres"):
        k, _ = simulate_acquisition(img, Acquisition("loops", 8, phase, 3.0, snr_db=40), seed=1)
        rec = Reconstructor(magnitude_prior, ReconOptions(steps=8, pilot_steps=4, seed=0, n_cg=5))
        rec.reconstruct(k, mask, "sense")
        chosen[phase] = rec.phase_resid()
        assert rec.tuning.n_cg == 5  # --cg-iters forces the count; the phase prior is still chosen
    assert chosen == {"poly": 0.005, "offres": 0.05}, chosen


def test_l1_phase_reference_is_opt_in_and_computed_once_for_the_pilots(magnitude_prior, example_slice, monkeypatch):
    """ReconOptions.phase_cs_lambda > 0: the L1-wavelet phase reference runs once for all hold-out pilots (they share
    the kept samples) and once for the full run; 0 (the default): never."""
    import mrdiff_cli.samplers.posterior as posterior
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import simulate_volume

    calls = []
    real = posterior.l1_wavelet_sense
    monkeypatch.setattr(posterior, "l1_wavelet_sense", lambda *a, **k: calls.append(1) or real(*a, **k))
    sim = simulate_volume(example_slice, None, matrix=32, coils=4, snr_db=30, seed=1)
    mask = make_mask("poisson", (32, 32), 3, seed=2).mask
    images = []
    for lam in (0.0, 1e-3):
        calls.clear()
        # (the support choice's pilots see other maps, so each computes its own reference: forced off here)
        rec = Reconstructor(magnitude_prior, ReconOptions(steps=2, pilot_steps=2, seed=0, phase_cs_lambda=lam,
                                                          maps_support="release"))
        images.append(rec.reconstruct(sim.kspace, mask, "sense").images)
        pilots = len(rec.tuning.errors) + len(rec.tuning.extra["phase_resid_holdout_error"]) - 1
        assert pilots >= 3
        assert len(calls) == (2 if lam else 0), (lam, len(calls), pilots)
    assert np.isfinite(images[1]).all() and not np.array_equal(images[0], images[1])
    # K > 1: one L1 solve per slice for all samples (the pilot's slice, then the run's), not one per sample
    sizes = []
    monkeypatch.setattr(posterior, "l1_wavelet_sense", lambda y, *a, **k: sizes.append(y.shape[0]) or real(y, *a, **k))
    rec = Reconstructor(magnitude_prior, ReconOptions(steps=2, pilot_steps=2, seed=0, phase_cs_lambda=1e-3, samples=3,
                                                      maps_support="release"))
    out = rec.reconstruct(sim.kspace, mask, "sense")
    assert sizes == [1, 1] and out.variance is not None and np.isfinite(out.variance).all()


def test_regular_line_spacing_tells_equispaced_from_random_masks():
    eq = make_mask("equispaced", (128, 128), 3.3, acs=10, seed=11).mask
    s = regular_line_spacing(eq)
    assert s is not None and 3.3 <= s <= 4.5  # the outer spacing (the centre takes part of the line budget)
    assert regular_line_spacing(np.asarray(eq).T) == s  # lines along either axis
    for kind in ("gaussian1d", "poisson", "uniform1d"):
        assert regular_line_spacing(make_mask(kind, (128, 128), 4, seed=11).mask) is None, kind


def _bootstrapped(prior, image, snr, count_pilot="auto"):
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor
    from mrdiff_cli.tasks.simulate import simulate_volume

    sim = simulate_volume(image, None, matrix=64, coils=8, snr_db=snr, seed=1)
    mask = make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask
    rec = Reconstructor(prior, ReconOptions(steps=8, pilot_steps=4, seed=0, count_pilot=count_pilot))
    rec.reconstruct(sim.kspace, mask, "sense")
    return rec, sim, mask


def test_bootstrap_count_follows_the_noise_on_a_regular_mask(bundled_prior, example_slice):
    """count_pilot auto on an equispaced mask: the bootstrap scores the counts; noisier data → fewer CG iterations,
    cleaner → more; its error is seeded (the same value twice)."""
    noisy, _, _ = _bootstrapped(bundled_prior, example_slice, 15)
    clean, sim, mask = _bootstrapped(bundled_prior, example_slice, 50)
    for rec in (noisy, clean):
        assert rec.tuning.method == "parametric bootstrap" and rec.tuning.bootstrap
        assert rec.tuning.n_cg == choose_count(rec.tuning.bootstrap, rec.bootstrap_tolerance("sense"))
    assert noisy.tuning.n_cg < clean.tuning.n_cg, (noisy.tuning.bootstrap, clean.tuning.bootstrap)
    evaluate = clean.bootstrap_pilot(sim.kspace[:1], mask, "sense", resid=0.005)
    assert evaluate(3) == evaluate(3) > 0


def test_count_pilot_auto_keeps_the_holdout_on_random_masks(bundled_prior):
    from mrdiff_cli.errors import UsageError
    from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor

    rec = Reconstructor(bundled_prior, ReconOptions(count_pilot="auto"))
    assert rec.uses_bootstrap(make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask)
    assert not rec.uses_bootstrap(make_mask("poisson", (64, 64), 6, seed=2).mask)
    assert not Reconstructor(bundled_prior, ReconOptions(count_pilot="holdout")).uses_bootstrap(
        make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask)
    import pytest

    with pytest.raises(UsageError):
        ReconOptions(count_pilot="sure")


def test_bootstrap_tolerance_keeps_the_fewest_count_within_it(bundled_prior, monkeypatch):
    """The bootstrap's near ties: the fewest CG count whose bootstrap error is within (1 + tol) x the least the
    search saw; tol 0 keeps the argmin; the tolerance applied is recorded with the evidence."""
    from mrdiff_cli.tasks.reconstruct import Reconstructor, ReconOptions

    errors = {1: 2.0, 2: 1.5, 3: 1.1, 5: 1.0, 7: 1.04}
    seen: list[int] = []

    def fake_boot(self, *a, **kw):
        return lambda n: seen.append(n) or errors[n]

    monkeypatch.setattr(Reconstructor, "pilot", lambda self, *a, **kw: (lambda n, r=None: 1.0, {"kind": "lines"}))
    monkeypatch.setattr(Reconstructor, "bootstrap_pilot", fake_boot)
    mask = make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask
    k = np.zeros((1, 4, 64, 64), np.complex64)
    picks = {}
    for tol in (0.0, 0.05, 0.15):
        seen.clear()
        rec = Reconstructor(bundled_prior, ReconOptions(bootstrap_tolerance=tol))
        rec.tune(k, mask, "sense", maps=torch.ones(1, 4, 64, 64, dtype=torch.complex64))
        assert rec.tuning.method == "parametric bootstrap" and sorted(seen) == [3, 5, 7]  # the search ignores tol
        assert rec.tuning.summary()["tolerance"] == tol
        picks[tol] = rec.n_cg()
    assert picks == {0.0: 5, 0.05: 5, 0.15: 3}


def test_bootstrap_tolerance_default_follows_the_steps():
    """0.15 for runs of 40 steps or more (where it was tested), the plain argmin for shorter runs (K > 1 samples,
    --steps 20); an explicit value wins."""
    from mrdiff_cli.tasks.reconstruct import BOOTSTRAP_TOLERANCE, Reconstructor, ReconOptions

    def tol(**kw) -> float:
        return Reconstructor(None, ReconOptions(**kw)).bootstrap_tolerance("sense")

    assert tol() == BOOTSTRAP_TOLERANCE == 0.15 and tol(steps=50) == 0.15
    assert tol(steps=20) == 0.0 and tol(samples=4) == 0.0 and tol(steps=8) == 0.0
    assert tol(bootstrap_tolerance=0.3) == 0.3 and tol(steps=20, bootstrap_tolerance=0.1) == 0.1


def test_cg_candidates_extend_the_holdout_search_not_the_bootstrap(monkeypatch, bundled_prior):
    """ReconOptions.cg_candidates: the hold-out pilot's search walks up to 10 / 15 while the error keeps falling
    (and stops where it rises); the bootstrap of regular masks keeps CG_CANDIDATES (its reference is 7 CG)."""
    from mrdiff_cli.samplers.selftune import CG_CANDIDATES, HOLDOUT_CG_CANDIDATES
    from mrdiff_cli.tasks.reconstruct import Reconstructor, ReconOptions

    k = np.zeros((1, 4, 64, 64), np.complex64)
    maps = torch.ones(1, 4, 64, 64, dtype=torch.complex64)
    poisson = make_mask("poisson", (64, 64), 4, seed=1).mask
    for errors, want in (({1: 5, 2: 4, 3: 3, 5: 2, 7: 1.5, 10: 1.2, 15: 1.0}, 15),
                         ({1: 5, 2: 4, 3: 3, 5: 2, 7: 1.5, 10: 1.2, 15: 1.3}, 10)):
        seen: list[int] = []
        monkeypatch.setattr(Reconstructor, "pilot", lambda self, *a, e=errors, s=seen, **kw: (
            (lambda n, r=None: s.append(n) or e[n]), {"kind": "points"}))
        rec = Reconstructor(bundled_prior, ReconOptions(cg_candidates=(15, 1, 2, 3, 5, 7, 10), upper_count_margin=0))
        assert rec.holdout_candidates() == (1, 2, 3, 5, 7, 10, 15)
        rec.tune(k, poisson, "sense", maps=maps)
        assert rec.n_cg() == want and max(seen) == 15
        default = Reconstructor(bundled_prior, ReconOptions())  # one sample: up to 15, steps above 7 need 10 %
        default.tune(k, poisson, "sense", maps=maps)
        assert default.holdout_candidates() == HOLDOUT_CG_CANDIDATES and default.n_cg() == want
        k_samples = Reconstructor(bundled_prior, ReconOptions(samples=4))  # K > 1: the counts its constants know
        k_samples.tune(k, poisson, "sense", maps=maps)
        assert k_samples.holdout_candidates() == CG_CANDIDATES and k_samples.n_cg() == 7
    boot_seen: list[int] = []
    monkeypatch.setattr(Reconstructor, "bootstrap_pilot", lambda self, *a, **kw: (lambda n: boot_seen.append(n) or 1.0 / n))
    rec = Reconstructor(bundled_prior, ReconOptions(cg_candidates=(1, 2, 3, 5, 7), bootstrap_candidates=(1, 2, 3, 5, 7, 10)))
    rec.tune(k, make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask, "sense", maps=maps)
    assert rec.tuning.method == "parametric bootstrap" and max(boot_seen) == 10  # its own list, not cg_candidates


def test_upper_count_margin_needs_a_clear_gain_above_seven(monkeypatch, bundled_prior):
    """upper_count_margin: a step above 7 CG is taken only while each higher count's hold-out error is more than the
    margin below the previous count's; within {1 .. 7} the argmin is unchanged."""
    from mrdiff_cli.tasks.reconstruct import Reconstructor, ReconOptions

    k = np.zeros((1, 4, 64, 64), np.complex64)
    maps = torch.ones(1, 4, 64, 64, dtype=torch.complex64)
    poisson = make_mask("poisson", (64, 64), 4, seed=1).mask
    base = {1: 5.0, 2: 4.0, 3: 3.0, 5: 2.0, 7: 1.0}
    for upper, margin, want in (({10: 0.95, 15: 0.9}, 0.1, 7), ({10: 0.95, 15: 0.9}, 0.0, 15),
                                ({10: 0.85, 15: 0.80}, 0.1, 10), ({10: 0.85, 15: 0.70}, 0.1, 15),
                                ({10: 1.1, 15: 0.5}, 0.1, 7)):
        errors = {**base, **upper}
        monkeypatch.setattr(Reconstructor, "pilot", lambda self, *a, e=errors, **kw: (
            (lambda n, r=None: e[n]), {"kind": "points"}))
        rec = Reconstructor(bundled_prior, ReconOptions(cg_candidates=(1, 2, 3, 5, 7, 10, 15), upper_count_margin=margin))
        rec.tune(k, poisson, "sense", maps=maps)
        assert rec.n_cg() == want, (upper, margin, rec.n_cg())


def test_bootstrap_searches_up_to_fifteen_for_one_sample(monkeypatch, bundled_prior):
    """The bootstrap pilot of regular masks searches 1-15 for one-sample runs (1-7 for K > 1, or
    ReconOptions.bootstrap_candidates); a step above 7 is taken only on a clear gain (upper_count_margin)."""
    from mrdiff_cli.tasks.reconstruct import Reconstructor, ReconOptions

    k = np.zeros((1, 4, 64, 64), np.complex64)
    maps = torch.ones(1, 4, 64, 64, dtype=torch.complex64)
    mask = make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask
    monkeypatch.setattr(Reconstructor, "pilot", lambda self, *a, **kw: (lambda n, r=None: 1.0, {"kind": "lines"}))
    for upper, want_ext in (({10: 0.6, 15: 0.3}, 15), ({10: 0.95, 15: 0.9}, 7)):
        errors = {1: 5.0, 2: 4.0, 3: 3.0, 5: 2.0, 7: 1.0, **upper}
        monkeypatch.setattr(Reconstructor, "bootstrap_pilot", lambda self, *a, e=errors, **kw: (lambda n: e[n]))
        default = Reconstructor(bundled_prior, ReconOptions(seven_up=False))
        default.tune(k, mask, "sense", maps=maps)
        assert default.tuning.method == "parametric bootstrap" and default.n_cg() == want_ext
        # the default also moves a choice of 7 to 10 (seven_up); the top check keeps 10 on these errors
        seven = Reconstructor(bundled_prior, ReconOptions())
        seven.tune(k, mask, "sense", maps=maps)
        assert seven.n_cg() == (10 if want_ext == 7 else want_ext)
        assert default.tuning.summary()["upper_count_margin"] == 0.1  # the rule the choice above 7 went through
        for opts in (ReconOptions(samples=4), ReconOptions(bootstrap_candidates=(1, 2, 3, 5, 7))):
            capped = Reconstructor(bundled_prior, opts)
            capped.tune(k, mask, "sense", maps=maps)
            assert capped.n_cg() == 7 and "upper_count_margin" not in capped.tuning.summary()


def test_top_check_raises_to_the_top_only_on_a_clear_gain(monkeypatch, bundled_prior):
    """ReconOptions.top_check: where the bootstrap chose 7 CG or more (but not the top), a second bootstrap whose
    reference runs at the top count scores the top and the count below it; the top is taken only if its error is
    more than top_check_margin lower. Counts below 7, K > 1 samples (top 7) and top_check=False run no check; the
    check and its errors are in the evidence."""
    from mrdiff_cli.tasks.reconstruct import Reconstructor, ReconOptions

    k = np.zeros((1, 4, 64, 64), np.complex64)
    maps = torch.ones(1, 4, 64, 64, dtype=torch.complex64)
    mask = make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask
    monkeypatch.setattr(Reconstructor, "pilot", lambda self, *a, **kw: (lambda n, r=None: 1.0, {"kind": "lines"}))
    first = {1: 5.0, 2: 4.0, 3: 3.0, 5: 2.0, 7: 1.0, 10: 0.85, 15: 0.9}  # the 7-CG reference: 10
    low = {1: 5.0, 2: 4.0, 3: 2.0, 5: 1.0, 7: 1.5, 10: 2.0, 15: 3.0}  # the 7-CG reference: 5
    for stage1, top_errors, opts, want, checked in (
            (first, {10: 1.0, 15: 0.6}, dict(top_check=True), 15, True),
            (first, {10: 1.0, 15: 0.8}, dict(top_check=True), 10, True),  # 20 % lower: within the 30 % margin
            (first, {10: 1.0, 15: 0.8}, dict(top_check=True, top_check_margin=0.1), 15, True),
            (first, {10: 1.0, 15: 0.6}, dict(top_check=False), 10, False),
            (low, {10: 1.0, 15: 0.1}, dict(top_check=True), 5, False),  # below 7: no check
            (first, {10: 1.0, 15: 0.1}, dict(top_check=True, samples=4), 7, False)):  # K > 1: top 7
        refs: list = []

        def fake_boot(self, *a, ref_cg=None, s1=stage1, s2=top_errors, **kw):
            refs.append(ref_cg)
            return (lambda n: s1[n]) if ref_cg is None else (lambda n: s2[n])

        monkeypatch.setattr(Reconstructor, "bootstrap_pilot", fake_boot)
        rec = Reconstructor(bundled_prior, ReconOptions(**opts))
        rec.tune(k, mask, "sense", maps=maps)
        assert rec.n_cg() == want, (opts, rec.n_cg())
        ev = rec.tuning.summary()
        assert (refs == [None, 15]) == checked and ("top_check" in ev) == checked
        if checked:
            assert ev["top_check"]["to"] == want and ev["top_check"]["reference_cg"] == 15
            assert set(ev["top_check"]["bootstrap_error"]) == {"10", "15"}


def test_seven_up_moves_a_bootstrap_choice_of_seven_to_ten(monkeypatch, bundled_prior):
    """ReconOptions.seven_up: a bootstrap choice of exactly 7 CG (its reference's count) moves to 10, then the top
    check runs from 10; other choices, K > 1 samples (no count above 7) and seven_up=False are left alone."""
    from mrdiff_cli.tasks.reconstruct import Reconstructor, ReconOptions

    k = np.zeros((1, 4, 64, 64), np.complex64)
    maps = torch.ones(1, 4, 64, 64, dtype=torch.complex64)
    mask = make_mask("equispaced", (64, 64), 3, acs=8, seed=1).mask
    monkeypatch.setattr(Reconstructor, "pilot", lambda self, *a, **kw: (lambda n, r=None: 1.0, {"kind": "lines"}))
    at7 = {1: 5.0, 2: 4.0, 3: 3.0, 5: 2.0, 7: 1.0, 10: 1.05, 15: 1.2}  # the 7-CG reference: 7
    at5 = {1: 5.0, 2: 4.0, 3: 3.0, 5: 1.0, 7: 1.2, 10: 1.5, 15: 2.0}
    for stage1, top_errors, opts, want, up in (
            (at7, {10: 1.0, 15: 0.9}, dict(seven_up=True), 10, True),
            (at7, {10: 1.0, 15: 0.5}, dict(seven_up=True), 15, True),  # then the top check from 10
            (at7, {10: 1.0, 15: 0.9}, dict(seven_up=False), 7, False),
            (at5, {10: 1.0, 15: 0.5}, dict(seven_up=True), 5, False),
            (at7, {10: 1.0, 15: 0.5}, dict(seven_up=True, samples=4), 7, False)):
        monkeypatch.setattr(Reconstructor, "bootstrap_pilot", lambda self, *a, ref_cg=None, s1=stage1, s2=top_errors,
                            **kw: (lambda n: s1[n]) if ref_cg is None else (lambda n: s2[n]))
        rec = Reconstructor(bundled_prior, ReconOptions(**opts))
        rec.tune(k, mask, "sense", maps=maps)
        ev = rec.tuning.summary()
        assert rec.n_cg() == want and ("seven_up" in ev) == up, (opts, rec.n_cg(), ev.get("seven_up"))
        if up:
            assert ev["seven_up"] == {"from": 7, "to": 10} and ev["top_check"]["from"] == 10
