"""benchmarks/train_gpu.sh runs end to end on the CPU with a tiny step count and model (the GPU run is the
same command with its defaults), writes a loadable any-resolution bundle, and resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_gpu.sh"


def _head(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n),) * 3, indexing="ij")
    r = (x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.85) ** 2
    return ((r < 1) * (0.6 + 0.4 * (r < 0.6)) * (1 + 0.05 * rng.standard_normal(r.shape))).astype(np.float32)


@pytest.fixture()
def corpus(tmp_path):
    import nibabel as nib

    for split, seed in (("train", 0), ("train", 1), ("tune", 2)):
        d = tmp_path / "corpus" / split
        d.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(_head(16, seed), np.diag([4.0, 4.0, 4.0, 1.0])), str(d / f"v{seed}.nii.gz"))
    return tmp_path / "corpus"


def test_train_gpu_script_runs_tiny_on_cpu_and_resumes(tmp_path, corpus):
    env = {**os.environ, "CORPUS": str(corpus), "STEPS": "2", "BATCH": "2", "CH": "8", "DEVICE": "cpu", "VOXELS": "3,4",
           "MRDIFF": f"{sys.executable} -m mrdiff_cli.cli.main", "EXTRA": "--matrix 32 --no-sample-grid",
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    r = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    done = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")][-1]
    assert done["type"] == "done" and done["steps"] == 2
    cfg = json.loads((out / "bundle" / "config.json").read_text())
    assert cfg["voxel_sizes_mm"] == [3.0, 4.0] and cfg["fully_convolutional"] is True
    assert cfg["architecture"]["unet"]["base_channels"] == 8
    env["STEPS"] = "3"  # run again: continues from the checkpoint
    r = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    done = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")][-1]
    assert done["start_step"] == 2 and done["steps"] == 3
