"""Shared fixtures. io/simulate fixtures: tiny simulated scans written as real fastMRI / ISMRMRD files.

Fixture names are prefixed by what they hold (``tiny_*``, ``shepp_logan_*``) so other suites can add their own.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

HAVE_SHEPP_LOGAN = shutil.which("ismrmrd_generate_cartesian_shepp_logan") is not None


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    """Tests use tiny tensors: one torch thread is much faster than an (oversubscribed) pool on 2 cores."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CLI_ENV_UNSET = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "MRDIFF_PROGRESS_INTERVAL",
                 "MRDIFF_THREADS")


@pytest.fixture()
def cli_env(monkeypatch):
    """CLI tests run offline (no Hub) and ignore the caller's SLURM array / progress / thread settings."""
    monkeypatch.setenv("MRDIFF_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in CLI_ENV_UNSET:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def tiny_phantom() -> np.ndarray:
    """(2, 32, 32) float32 analytic phantom volume (second slice scaled by 0.5)."""
    from mrdiff_cli.tasks.simulate import analytic_phantom

    p = analytic_phantom(32)
    return np.stack([p, 0.5 * p]).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_sim(tiny_phantom):
    """In-memory noise-free 4-coil simulation of ``tiny_phantom`` at 32x32 (fully sampled)."""
    from mrdiff_cli.tasks.simulate import simulate_volume

    return simulate_volume(tiny_phantom, matrix=None, coils=4, snr_db=None, seed=3)


@pytest.fixture(scope="session")
def tiny_fastmri_file(tmp_path_factory, tiny_sim) -> Path:
    """Fully sampled, noise-free 4-coil fastMRI-style file (2 slices, 32x32) with reconstruction_rss."""
    from mrdiff_cli.tasks.simulate import write_simulated

    path = tmp_path_factory.mktemp("tiny_fastmri") / "tiny_fastmri.h5"
    return write_simulated(tiny_sim, path, "fastmri")


@pytest.fixture(scope="session")
def tiny_fastmri_undersampled_file(tmp_path_factory, tiny_phantom) -> Path:
    """Equispaced R=4 (ACS 4) 4-coil fastMRI-style file with a 1D ``mask`` dataset, SNR 40 dB."""
    from mrdiff_cli.tasks.simulate import simulate_volume, write_simulated

    sim = simulate_volume(tiny_phantom, matrix=None, coils=4, snr_db=40.0, seed=1, mask_kind="equispaced",
                          accel=4, acs=4)
    path = tmp_path_factory.mktemp("tiny_fastmri_us") / "tiny_fastmri_us.h5"
    return write_simulated(sim, path, "fastmri")


@pytest.fixture(scope="session")
def tiny_ismrmrd_file(tmp_path_factory, tiny_sim) -> Path:
    """The ``tiny_sim`` scan as an ISMRMRD dataset (one acquisition per line, default geometry)."""
    from mrdiff_cli.tasks.simulate import write_simulated

    path = tmp_path_factory.mktemp("tiny_ismrmrd") / "tiny_ismrmrd.h5"
    return write_simulated(tiny_sim, path, "ismrmrd")


@pytest.fixture(scope="session")
def tiny_nifti_file(tmp_path_factory, tiny_phantom) -> Path:
    """``tiny_phantom`` as a NIfTI volume (1.5 mm in-plane, 3 mm slices)."""
    from mrdiff_cli.io.nifti import write_nifti
    from mrdiff_cli.types import Geometry

    path = tmp_path_factory.mktemp("tiny_nifti") / "tiny_phantom.nii.gz"
    return write_nifti(path, tiny_phantom, Geometry(voxel_size=(1.5, 1.5, 3.0)), "tiny phantom")


@pytest.fixture(scope="session")
def shepp_logan_file(tmp_path_factory):
    """Factory: ``shepp_logan_file(*args)`` runs ismrmrd_generate_cartesian_shepp_logan -m 64 -c 4 ARGS once."""
    if not HAVE_SHEPP_LOGAN:
        pytest.skip("ismrmrd_generate_cartesian_shepp_logan not installed")
    root = tmp_path_factory.mktemp("shepp_logan")
    cache: dict[tuple[str, ...], Path] = {}

    def make(*args: str) -> Path:
        key = tuple(args)
        if key not in cache:
            out = root / f"sl_{len(cache)}.h5"
            subprocess.run(
                ["ismrmrd_generate_cartesian_shepp_logan", "-m", "64", "-c", "4", *args, "-o", str(out)],
                check=True, capture_output=True, cwd=root,
            )
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """Tiny untrained score bundle (base 8 channels, 32x32): enough to run every code path."""
    import torch

    from mrdiff_cli.priors.bundle import save_bundle
    from mrdiff_cli.tasks.train import TrainConfig, build_model_and_config

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model, config = build_model_and_config(TrainConfig(base_channels=8, channel_mults=[1, 2], matrix=32))
    return save_bundle(tmp_path_factory.mktemp("model") / "tiny-score", model, config)


@pytest.fixture(scope="session")
def bundled_prior():
    """The bundled default score model (real weights: for tests whose point is quality)."""
    from mrdiff_cli.priors.loading import load_prior

    return load_prior(None, "score", offline=True)[0]


@pytest.fixture(scope="session")
def magnitude_prior():
    """The bundled magnitude score model (``score-brain-128``, the default before the complex prior): for tests of
    what only a magnitude prior has (phase mode, the phase prior and its choice, the L1 phase reference)."""
    from mrdiff_cli.priors.loading import load_prior

    return load_prior("bundled:score-brain-128", "score", offline=True)[0]


@pytest.fixture(scope="session")
def example_slice():
    """The middle slice (1, H, W) of the bundled example volume."""
    from mrdiff_cli.cli.simulate import example_image
    from mrdiff_cli.io.detect import load_image

    vol, _ = load_image(example_image())
    return vol[vol.shape[0] // 2: vol.shape[0] // 2 + 1]
