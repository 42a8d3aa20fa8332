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
