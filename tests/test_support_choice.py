"""The per-scan choice of the adaptive coil maps' support (--maps-support; Reconstructor.choose_support)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cli_reconstruct import _eight_coil_disc

from mrdiff_cli.samplers.modes import MapsSupport
from mrdiff_cli.tasks.reconstruct import ReconOptions, Reconstructor


def _fake_pilots(monkeypatch, errors: list[float]) -> list[float]:
    """Reconstructor.pilot replaced: the k-th call's evaluate returns errors[k] (and records the maps' support
    fraction and the count / phase prior it was asked for)."""
    calls: list = []

    def pilot(self, kspace, mask, mode, maps=None, slice_ids=(0,), *, compressed=False, steps=None):
        k = len(calls)
        calls.append([round(float((maps.abs().sum(1) > 0).float().mean()), 4)])
        return (lambda n, r=None: calls[k].extend([n, r]) or errors[k]), {"kind": "points"}

    monkeypatch.setattr(Reconstructor, "pilot", pilot)
    return calls


@pytest.mark.parametrize("errors,chosen", [([1.0, 0.85], "own"), ([1.0, 0.95], "release"), ([1.0, 1.2], "release")])
def test_own_support_only_when_the_holdout_says_so_by_the_margin(monkeypatch, errors, chosen):
    """One pilot per support, release first, at the run's count and phase prior; own only when its hold-out error
    is more than the margin (10 %) below the release support's; the choice sets the maps the run uses."""
    k, m = _eight_coil_disc()
    calls = _fake_pilots(monkeypatch, errors)
    rec = Reconstructor(None, ReconOptions(n_cg=5, phase_resid=0.05))
    assert rec.wants_support_choice("sense") and rec.support_kind() == MapsSupport.release
    rec.choose_support(k, m.numpy(), "sense", compressed=True)
    c = rec.support_choice
    assert c["support"] == chosen and c["chosen_by"] == "k-space hold-out cross-validation"
    assert c["holdout_error"] == {"release": errors[0], "own": errors[1]} and c["at_cg"] == 5
    assert [call[0] for call in calls] == [c["support_fraction"]["release"], c["support_fraction"]["own"]]
    assert all(call[1:] == [5, 0.05] for call in calls)
    assert c["support_fraction"]["release"] != c["support_fraction"]["own"]
    assert rec.support_kind() == MapsSupport(chosen) and not rec.wants_support_choice("sense")
    forced = Reconstructor(None, ReconOptions(maps_support=chosen)).estimate_maps(k * m, m)
    assert torch.equal(rec.estimate_maps(k * m, m), forced)
    assert rec.consistency_report("sense")["coil_map_support"] == c


def test_no_pilot_when_the_supports_agree_or_nothing_to_choose(monkeypatch):
    """Identical supports: release, no pilot. Forced support, espirit maps (--coil-maps espirit, --method sense) or
    a mode without hold-out runs: no choice at all. K > 1 samples choose like one sample (adaptive maps)."""
    k, m = _eight_coil_disc()
    calls = _fake_pilots(monkeypatch, [1.0, 0.1])
    rec = Reconstructor(None, ReconOptions(support_margin=0.1))
    release = rec.estimate_maps(k * m, m, support=MapsSupport.release)
    monkeypatch.setattr(Reconstructor, "support_maps", lambda self, y, mm: (release, release))
    rec.choose_support(k, m.numpy(), "sense", compressed=True)
    assert rec.support_choice["support"] == "release" and "agree" in rec.support_choice["chosen_by"] and not calls
    for o in ({"maps_support": "own"}, {"maps_support": "release"}, {"coil_maps": "espirit"},
              {"method": "sense"}, {"sampler": "pc"}):
        r = Reconstructor(None, ReconOptions(**o))
        assert not r.wants_support_choice("sense"), o
        r.choose_support(k, m.numpy(), "sense", compressed=True)
        assert r.support_choice is None and not calls
    assert Reconstructor(None, ReconOptions(samples=4, coil_maps="espirit")).support_kind() is None
    k4 = Reconstructor(None, ReconOptions(samples=4))
    assert k4.wants_support_choice("sense") and k4.support_kind() == MapsSupport.release
    assert Reconstructor(None, ReconOptions(maps_support="own")).support_kind() == MapsSupport.own
    rep = Reconstructor(None, ReconOptions(maps_support="own")).consistency_report("sense")
    assert rep["coil_map_support"] == {"support": "own", "chosen_by": "fixed (--maps-support)"}
    with pytest.raises(Exception, match="maps support"):
        ReconOptions(maps_support="wider")


def test_python_api_reconstruct_chooses_like_the_cli_path(bundled_prior):
    """Reconstructor.reconstruct() without tune() beforehand: the count pilots estimate the release maps (the
    pilots' preset), then the support is chosen; the same as tune() + choose_support() first (the CLI's order); an
    auto run equals the forced run of the support it chose."""
    k, m = _eight_coil_disc()
    kn, mn = k.numpy(), m.numpy()
    o = {"steps": 3, "pilot_steps": 2, "bootstrap_steps": 2, "seed": 3}
    a = Reconstructor(bundled_prior, ReconOptions(**o))
    img_a = a.reconstruct(kn, mn, "sense").images
    b = Reconstructor(bundled_prior, ReconOptions(**o))
    b.tune(kn, mn, "sense")
    b.choose_support(kn, mn, "sense")
    img_b = b.reconstruct(kn, mn, "sense").images
    assert a.tuning.summary() == b.tuning.summary() and a.support_choice == b.support_choice
    assert a.support_choice["chosen_by"] == "k-space hold-out cross-validation"
    assert np.array_equal(img_a, img_b)
    forced = Reconstructor(bundled_prior, ReconOptions(**o, maps_support=a.support_choice["support"]))
    forced.tuning = a.tuning
    assert np.array_equal(forced.reconstruct(kn, mn, "sense").images, img_a)


def test_release_support_where_nothing_can_be_hidden(monkeypatch):
    """A mask that leaves nothing to hide (the pilot is None): the release support, and the record says why."""
    k, m = _eight_coil_disc()
    monkeypatch.setattr(Reconstructor, "pilot", lambda self, *a, **kw: None)
    rec = Reconstructor(None, ReconOptions(n_cg=3))
    rec.choose_support(k, m.numpy(), "sense", compressed=True)
    assert rec.support_choice["support"] == "release" and rec.support_choice["chosen_by"].startswith("fallback")
    assert rec.support_kind() == MapsSupport.release and "holdout_error" not in rec.support_choice


def test_summary_names_the_maps_and_the_support():
    """The summary's maps line: the maps, the support and, when the pilot chose it, both hold-out errors."""
    from mrdiff_cli.cli.jobs import maps_caption

    chosen = {"input": "/d/scan.h5", "consistency": {"coil_maps": "adaptive", "coil_map_support": {
        "support": "own", "chosen_by": "k-space hold-out cross-validation",
        "holdout_error": {"release": 0.0956, "own": 0.066}}}}
    assert maps_caption(chosen) == ("scan.h5: coil maps adaptive, own support (k-space hold-out error 0.066 with own, "
                                    "0.0956 with release)")
    agree = {"input": "a.h5", "consistency": {"coil_maps": "adaptive", "coil_map_support": {
        "support": "release", "chosen_by": "the supports agree: no pilot"}}}
    assert maps_caption(agree) == "a.h5: coil maps adaptive, release support (the supports agree: no pilot)"
    forced = {"input": "a.h5", "consistency": {"coil_maps": "adaptive", "coil_map_support": {
        "support": "own", "chosen_by": "fixed (--maps-support)"}}}
    assert maps_caption(forced) == "a.h5: coil maps adaptive, own support"
    assert maps_caption({"input": "a.h5", "consistency": {"coil_maps": "espirit"}}) == "a.h5: coil maps espirit"
    assert maps_caption({"input": "a.h5"}) is None


@pytest.mark.parametrize("n,next_err,want", [(5, 0.5, 7), (5, 0.9, 5), (7, 0.1, 10), (7, 0.75, 7), (3, 0.5, 5)])
def test_count_recheck_on_the_own_maps(monkeypatch, n, next_err, want):
    """count_recheck (the default): when own is chosen and the self-tuned count is below the top candidate, one more
    pilot on the own maps at the next count; the higher count is kept only if it predicts the hidden samples better
    (above 7 CG: by more than upper_count_margin, 10 %)."""
    from mrdiff_cli.samplers.selftune import Tuning

    k, m = _eight_coil_disc()
    asked: list = []

    def pilot(self, kspace, mask, mode, maps=None, slice_ids=(0,), *, compressed=False, steps=None):
        j = len(asked)
        asked.append([])
        errs = [{n: 1.0}, {n: 0.8, {3: 5, 5: 7, 7: 10}[n]: next_err}][j]
        return (lambda c, r=None: asked[j].append(c) or errs[c]), {"kind": "points"}

    monkeypatch.setattr(Reconstructor, "pilot", pilot)
    rec = Reconstructor(None, ReconOptions())  # the default
    rec.tuning = Tuning(n, {n: 1.0}, {}, [0], 10)
    rec.choose_support(k, m.numpy(), "sense", compressed=True)
    assert rec.support_choice["support"] == "own" and rec.n_cg() == want
    assert asked[0] == [n] and asked[1] == [n, {3: 5, 5: 7, 7: 10}[n]]
    assert rec.support_choice["count_recheck"]["cg_iters"] == want
    off = Reconstructor(None, ReconOptions(count_recheck=False))
    asked.clear()
    off.tuning = Tuning(n, {n: 1.0}, {}, [0], 10)
    off.choose_support(k, m.numpy(), "sense", compressed=True)
    assert off.n_cg() == n and asked[1] == [n] and "count_recheck" not in off.support_choice


@pytest.mark.parametrize("spread_maps,kind", [("pilot", "espirit"), ("own", "adaptive")])
def test_k_samples_spread_is_measured_on_the_pilots_maps(monkeypatch, spread_maps, kind):
    """K > 1 with adaptive maps: the hold-out spread draws its samples with the pilots' preset (espirit) maps by
    default (spread_maps "pilot"), with the samples' own maps under "own"; the record names them; an espirit run
    measures on its own maps either way; a bad value is a usage error."""
    from mrdiff_cli.errors import UsageError

    k, m = _eight_coil_disc()
    seen: list[torch.Tensor] = []

    def run(self, y, fit, mode, maps, gen, n, resid, sigmas, cache=None):
        seen.append(maps)
        return torch.randn(y.shape[0], *y.shape[-2:], dtype=torch.complex64, generator=torch.Generator().manual_seed(1))

    monkeypatch.setattr(Reconstructor, "_holdout_run", run)
    rec = Reconstructor(None, ReconOptions(samples=4, n_cg=3, spread_maps=spread_maps))
    rec.measure_spread(k, m.numpy(), "sense", compressed=True, samples=2)
    assert rec.spread is not None and rec.spread.holdout["coil_maps"] == kind
    want = Reconstructor(None, ReconOptions(coil_maps=kind)).estimate_maps(k * m, m)
    assert torch.equal(seen[0], want.repeat(2, 1, 1, 1))
    esp = Reconstructor(None, ReconOptions(samples=4, n_cg=3, coil_maps="espirit", spread_maps=spread_maps))
    esp.measure_spread(k, m.numpy(), "sense", compressed=True, samples=2)
    assert esp.spread.holdout["coil_maps"] == "espirit"
    with pytest.raises(UsageError):
        ReconOptions(spread_maps="adaptive")


def test_both_supports_from_one_espirit_pass_equal_the_separate_estimates():
    """Reconstructor.support_maps (ops.coils.estimate_maps_supports: one eigen-pass per slice) gives the release- and
    own-support maps bit for bit as estimate_maps(support=...) does, for a batch of slices and for a single slice."""
    from mrdiff_cli.ops.coils import estimate_maps, estimate_maps_supports

    k, m = _eight_coil_disc()
    kk = torch.cat([k, torch.roll(k, 3, dims=-1) * 0.7])  # two different slices
    rec = Reconstructor(None, ReconOptions())
    for y in (k * m, kk * m):
        release, own = rec.support_maps(y, m)
        assert torch.equal(release, rec.estimate_maps(y, m, support=MapsSupport.release))
        assert torch.equal(own, rec.estimate_maps(y, m, support=MapsSupport.own))
        assert not torch.equal(release, own)
    r2, o2 = estimate_maps_supports((k * m)[0], m, eig_own=0.9, sigma_thresh=0.01, support_sigma=None)
    assert torch.equal(r2, estimate_maps((k * m)[0], m, sigma_thresh=0.01, eig_thresh=0.8))
    assert torch.equal(o2, estimate_maps((k * m)[0], m, sigma_thresh=0.01, eig_thresh=0.9))


@pytest.mark.parametrize("next_err,margin,want", [(0.75, 0.1, 7), (0.75, 0.0, 10), (0.6, 0.1, 10)])
def test_count_recheck_above_seven_needs_the_margin(monkeypatch, next_err, margin, want):
    """With cg_candidates reaching 10 / 15, the own-support re-check at 7 CG may step to 10; a step above 7 needs
    upper_count_margin (the hold-out error that much lower than at 7)."""
    from mrdiff_cli.samplers.selftune import Tuning

    k, m = _eight_coil_disc()
    calls = [0]

    def pilot(self, kspace, mask, mode, maps=None, slice_ids=(0,), *, compressed=False, steps=None):
        j = calls[0]
        calls[0] += 1
        errs = [{7: 1.0}, {7: 0.8, 10: next_err}][j]
        return (lambda c, r=None: errs[c]), {"kind": "points"}

    monkeypatch.setattr(Reconstructor, "pilot", pilot)
    rec = Reconstructor(None, ReconOptions(cg_candidates=(1, 2, 3, 5, 7, 10, 15), upper_count_margin=margin))
    rec.tuning = Tuning(7, {7: 1.0}, {}, [0], 10)
    rec.choose_support(k, m.numpy(), "sense", compressed=True)
    assert rec.support_choice["support"] == "own" and rec.n_cg() == want


def test_count_recheck_keeps_the_bootstraps_range(monkeypatch):
    """A count the parametric bootstrap chose is re-checked only within the bootstrap's candidates (here 1-7)."""
    from mrdiff_cli.samplers.selftune import Tuning

    k, m = _eight_coil_disc()
    asked: list = []

    def pilot(self, kspace, mask, mode, maps=None, slice_ids=(0,), *, compressed=False, steps=None):
        j = len(asked)
        asked.append([])
        errs = [{7: 1.0}, {7: 0.8, 10: 0.1}][j]
        return (lambda c, r=None: asked[j].append(c) or errs[c]), {"kind": "points"}

    monkeypatch.setattr(Reconstructor, "pilot", pilot)
    rec = Reconstructor(None, ReconOptions(bootstrap_candidates=(1, 2, 3, 5, 7)))
    rec.tuning = Tuning(7, {7: 1.0}, {}, [0], 20, method="parametric bootstrap", bootstrap={7: 1.0})
    rec.choose_support(k, m.numpy(), "sense", compressed=True)
    assert rec.support_choice["support"] == "own" and rec.n_cg() == 7 and asked[1] == [7]
