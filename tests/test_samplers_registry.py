"""One registry of samplers (mrdiff_cli.samplers): the names each command offers match it everywhere."""

from __future__ import annotations

import pytest

from mrdiff_cli.samplers import SAMPLER_NAMES, TASK_SAMPLERS, SamplerName, get_sampler


def test_every_registered_sampler_resolves_to_its_function():
    for name in SAMPLER_NAMES:
        fn = get_sampler(name)
        assert callable(fn) and fn.__name__ == f"{name}_sample"
        assert get_sampler(SamplerName(name)) is fn


def test_unknown_sampler():
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        get_sampler("nope")


def test_task_samplers_are_registered():
    for names in TASK_SAMPLERS.values():
        assert set(names) <= set(SAMPLER_NAMES)


def test_cli_choices_and_task_checks_match_the_registry():
    from mrdiff_cli.cli.reconstruct import Sampler
    from mrdiff_cli.cli.superres import SRSampler
    from mrdiff_cli.tasks.reconstruct import SAMPLERS
    from mrdiff_cli.tasks.superres import DEFAULT_STEPS, SR_SAMPLERS

    assert tuple(s.value for s in Sampler) == TASK_SAMPLERS["reconstruct"] == tuple(SAMPLERS)
    assert tuple(s.value for s in SRSampler) == TASK_SAMPLERS["superres"] == tuple(SR_SAMPLERS)
    assert set(DEFAULT_STEPS) == set(SR_SAMPLERS)


def test_reconstruction_choices_are_one_list_each():
    """One enum per choice (samplers.modes), reused by the CLI; a row of samplers.posterior.MODES per coil mode."""
    import json

    from mrdiff_cli.cli import recon_options
    from mrdiff_cli.samplers.modes import CoilMode, ComplexMode, Method, NoiseConsistency
    from mrdiff_cli.samplers.posterior import MODES, mode_spec
    from mrdiff_cli.tasks.reconstruct import ReconOptions

    assert (recon_options.CoilMode, recon_options.ComplexMode, recon_options.Method, recon_options.NoiseConsistency) \
        == (CoilMode, ComplexMode, Method, NoiseConsistency)
    assert set(MODES) == set(CoilMode) - {CoilMode.auto}
    with pytest.raises(ValueError, match="not a resolved coil mode"):
        mode_spec("auto")
    for member in (*CoilMode, *Method, *NoiseConsistency, *ComplexMode, *SamplerName):
        assert member == member.value and str(member) == f"{member}" == member.value
        assert json.dumps({"k": member}) == json.dumps({"k": member.value})
    opts = ReconOptions(method="sense", sampler="pc", coil_mode="ssos", complex_mode="realimag", noise_dc="both")
    assert (opts.method, opts.sampler, opts.coil_mode, opts.complex_mode, opts.noise_dc) == \
        (Method.sense, SamplerName.pc, CoilMode.ssos, ComplexMode.realimag, NoiseConsistency.both)
    assert type(opts.sampler) is SamplerName and type(ReconOptions().coil_mode) is CoilMode
    from mrdiff_cli.errors import UsageError

    with pytest.raises(UsageError, match="unknown sampler 'vdm'"):  # registered, but not a reconstruction sampler
        ReconOptions(sampler="vdm")
