"""benchmarks/gpu_complex.sh (the one-command GPU run that trains and evaluates a complex-valued prior) runs end
to end on the CPU with a tiny step count, writes a complex bundle and returns its weights in fp16 parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file
from test_bench_train_gpu import corpus  # noqa: F401  (fixture)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_complex.sh"


def test_gpu_complex_script_runs_tiny_on_cpu(tmp_path, corpus):  # noqa: F811
    out, run = tmp_path / "out", tmp_path / "run"
    env = {**os.environ, "MRDIFF_CORPUS": str(corpus), "STEPS": "2", "BATCH": "2", "DEVICE": "cpu", "OUT": str(out),
           "RUN": str(run), "EXTRA": "--matrix 32", "EVAL_S": "1", "CONDITIONS": "0", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    r = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:] + (out / "train.err").read_text()[-2000:]
    machine = (out / "machine.txt").read_text()
    assert "training exit 0" in machine and "evaluation exit" in machine
    events = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines() if line.startswith("{")]
    assert events[-1]["type"] == "done" and events[-1]["steps"] == 2
    assert events[0]["init_from"]["copied"] > 0  # seeded from the bundled complex default
    cfg = json.loads((out / "candidate_config.json").read_text())
    assert cfg["image"] == "complex" and cfg["architecture"]["unet"]["in_channels"] == 2
    assert cfg["architecture"]["unet"]["demod_frac"] == 0.1875
    parts = sorted(out.glob("model.fp16.safetensors.part-*"))
    assert parts
    whole = tmp_path / "model.safetensors"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    t = load_file(str(whole))
    assert {str(v.dtype) for v in t.values() if v.is_floating_point()} == {"torch.float16"}
