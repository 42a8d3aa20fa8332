"""benchmarks/gpu.py, benchmarks/scaling.py and tasks.resources on the CPU with tiny sizes (the GPU run is a benchmark)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_gpu_benchmark_tiny_on_cpu(tmp_path):
    gpu = _load("gpu")
    js, md = tmp_path / "gpu.json", tmp_path / "gpu.md"
    r = gpu.main(["--tiny", "--device", "cpu", "--out-json", str(js), "--out-md", str(md)])
    saved = json.loads(js.read_text())
    assert saved["device_type"] == "cpu" and saved["tiny"] is True
    rows = saved["throughput"]
    assert {(t["sampler"], t["batch"]) for t in rows} == {("fast", 1), ("fast", 2), ("pc", 1), ("pc", 2)}
    for t in rows:
        assert t["seconds"] > 0 and t["slices_per_s"] > 0 and t["peak_mb"] > 0
        assert t["slices_per_s"] == pytest.approx(t["batch"] / t["seconds"], rel=1e-2)
    fast = [t for t in rows if t["sampler"] == "fast"]
    assert all(t["psnr"] > 20 for t in fast)  # a real reconstruction, not noise
    u = saved["uncertainty"]
    assert u["K"] == 2 and u["K_batched_s"] > 0 and u["K_sequential_s"] > 0
    p = saved["precision_psnr"]
    assert p["bf16_minus_fp32_db"] == pytest.approx(p["bf16"] - p["fp32"], abs=2e-3)
    assert abs(p["bf16_minus_fp32_db"]) < 1.0
    text = md.read_text()
    assert "Device: CPU" in text and "| fast | 32² | 4 | 2 |" in text
    assert r["throughput"] == rows


def test_resources_threads_and_batch(monkeypatch):
    from mrdiff_cli.tasks import resources

    monkeypatch.setenv("MRDIFF_THREADS", "3")
    assert resources.default_threads() == 3
    monkeypatch.delenv("MRDIFF_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert resources.default_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= resources.default_threads() <= max(1, len(__import__("os").sched_getaffinity(0)))
    assert resources.auto_batch_size("cpu", (320, 320), 16) == resources.CPU_BATCH
    # memory per image grows with the matrix and the coils
    assert resources.bytes_per_image((320, 320), 16) > resources.bytes_per_image((128, 128), 16)
    assert resources.bytes_per_image((128, 128), 16) > resources.bytes_per_image((128, 128), 8)
    assert resources.peak_rss_mb() > 10


def test_auto_batch_size_from_free_gpu_memory(monkeypatch):
    import torch

    from mrdiff_cli.tasks import resources

    per = resources.bytes_per_image((320, 320), 8)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (int(10 * per / 0.6) + 1, 10**12))
    assert resources.auto_batch_size("cuda", (320, 320), 8) == 10
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (10**13, 10**13))
    assert resources.auto_batch_size("cuda", (320, 320), 8) == resources.GPU_BATCH_MAX
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (1000, 10**13))
    assert resources.auto_batch_size("cuda", (320, 320), 8) == 1


def test_scaling_benchmark_tiny(tmp_path):
    pytest.importorskip("sigpy")
    scaling = _load("scaling")
    example = ROOT / "mrdiff_cli" / "data" / "example_t1.nii.gz"
    png, js = tmp_path / "scaling.png", tmp_path / "scaling.json"
    rows = scaling.main(["--matrices", "32", "--coils", "1", "14", "--steps", "2", "--cs-iters", "3",
                         "--volume", str(example), "--png", str(png), "--out-json", str(js)])
    assert [(r["matrix"], r["coils"]) for r in rows] == [(32, 1), (32, 14)]
    assert rows[1]["virtual_coils"] == 10  # auto coil compression above 12 coils
    for r in rows:
        assert r["mrdiff_s"] > 0 and r["cs_s"] > 0
    assert png.stat().st_size > 1000 and json.loads(js.read_text()) == rows


def test_apply_threads_never_raises_the_callers_choice(monkeypatch):
    import torch

    from mrdiff_cli.tasks import resources

    n0 = torch.get_num_threads()
    try:
        monkeypatch.delenv("MRDIFF_THREADS", raising=False)
        torch.set_num_threads(1)
        assert resources.apply_threads(None) == 1 and torch.get_num_threads() == 1
        assert resources.apply_threads(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("MRDIFF_THREADS", "1")
        assert resources.apply_threads(None) == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            resources.apply_threads(0)
    finally:
        torch.set_num_threads(n0)


def test_prepare_prior_channels_last_on_cpu_only_when_asked_or_auto():
    import torch

    from mrdiff_cli.tasks.resources import prepare_prior

    class P:
        def __init__(self):
            self.net = torch.nn.Conv2d(3, 4, 3)

    def nhwc(p):
        return p.net.weight.is_contiguous(memory_format=torch.channels_last) and not p.net.weight.is_contiguous()

    assert nhwc(prepare_prior(P(), "cpu"))  # auto on the CPU
    assert not nhwc(prepare_prior(P(), "cpu", channels_last=False))
    assert nhwc(prepare_prior(P(), "cpu", channels_last=True))
    plain = object()
    assert prepare_prior(plain, "cpu") is plain  # no network: unchanged
    # same function, same outputs (layout only)
    p = P()
    x = torch.randn(2, 3, 8, 8)
    ref = p.net(x)
    assert torch.allclose(prepare_prior(p, "cpu").net(x), ref, atol=1e-5)
