"""Training task (tasks/train.py, tasks/train_data.py) on tiny synthetic heads: EMA math, data extraction and
augmentation, that the DSM loss goes down, and that a resumed run is bit-identical to an uninterrupted one."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mrdiff_cli.errors import InputError, UsageError
from mrdiff_cli.tasks.train import (
    TrainConfig,
    build_model_and_config,
    ema_decay_at,
    ema_update,
    read_checkpoint_meta,
    train,
    validate,
)
from mrdiff_cli.tasks.train_data import AugmentConfig, augment, expand_inputs, extract_slices, split_volumes
from synthetic import head_volume

TINY = dict(matrix=32, base_channels=8, channel_mults=[1, 2], attn_resolutions=[16], batch_size=4, bf16=False,
            sample_grid=False, warmup=2, voxel=2.0)


def write_nifti(path: Path, vol: np.ndarray, voxel=(2.0, 2.0, 2.0)) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(vol, np.diag([*voxel, 1.0])), str(path))
    return path


@pytest.fixture(scope="module")
def heads(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("heads")
    for i in range(3):
        write_nifti(root / f"head{i}.nii.gz", head_volume(seed=i))
    return root


# ---------------------------------------------------------------------------------------------------------------
# EMA
# ---------------------------------------------------------------------------------------------------------------


class WithCounter(torch.nn.Module):
    def __init__(self, w: float, n: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((2, 3), w))
        self.register_buffer("count", torch.tensor(n))


def test_ema_update_math():
    ema, model = WithCounter(1.0, 3), WithCounter(3.0, 7)
    ema_update(ema, model, 0.9)
    assert torch.allclose(ema.w, torch.full((2, 3), 0.9 * 1.0 + 0.1 * 3.0))
    assert int(ema.count) == 7  # integer buffers are copied, not averaged
    ema_update(ema, model, 0.9)
    assert torch.allclose(ema.w, torch.full((2, 3), 0.9 * 1.2 + 0.1 * 3.0))
    assert torch.equal(model.w, torch.full((2, 3), 3.0))  # the source is untouched
    ema_update(ema, model, 0.0)
    assert torch.equal(ema.w, model.w)


def test_ema_decay_warm_up():
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(10, 0.999) == pytest.approx(11 / 20)
    assert ema_decay_at(100_000, 0.999) == 0.999
    assert ema_decay_at(3, 0.2) == 0.2  # never above the requested decay
    seq = [ema_decay_at(t, 0.999) for t in range(0, 20_000, 37)]
    assert all(b >= a for a, b in zip(seq, seq[1:]))


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------


def test_extract_slices_skips_empty_and_normalises(tmp_path):
    vol = np.zeros((20, 20, 8), np.float32)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:20, :20]
    disk = ((yy - 10) ** 2 + (xx - 9) ** 2 < 49).astype(np.float32)
    for z in range(2, 7):
        vol[:, :, z] = disk * (1 + rng.random((20, 20))) * (z + 1)
    vol[5, 5, 1] = 10.0  # a single bright voxel: not a usable slice
    path = write_nifti(tmp_path / "v.nii.gz", vol)  # voxel 2 mm = target: no resampling
    slices, vol_ids = extract_slices([path], matrix=32, voxel=2.0, axes="axial")
    assert slices.shape == (5, 1, 32, 32)  # z = 0, 1, 7 skipped
    assert vol_ids == [0] * 5
    q = torch.quantile(slices.reshape(5, -1), 0.99, dim=1)
    torch.testing.assert_close(q, torch.ones(5), rtol=1e-5, atol=1e-5)
    assert float(slices.min()) >= 0
    all_axes, _ = extract_slices([path], matrix=32, voxel=2.0, axes="all")
    assert len(all_axes) > len(slices)


def test_extract_slices_reads_fastmri_reconstruction_rss(tiny_fastmri_file):
    slices, ids = extract_slices([tiny_fastmri_file], matrix=32, voxel=1.0)
    assert slices.shape == (2, 1, 32, 32) and ids == [0, 0]
    torch.testing.assert_close(torch.quantile(slices.reshape(2, -1), 0.99, dim=1), torch.ones(2), rtol=1e-5, atol=1e-5)


def test_expand_inputs_and_errors(heads, tmp_path):
    files = expand_inputs([str(heads)])
    assert [p.name for p in files] == ["head0.nii.gz", "head1.nii.gz", "head2.nii.gz"]
    assert expand_inputs([str(heads / "head*.nii.gz"), str(heads / "head1.nii.gz")]) == files  # glob + duplicate
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([str(tmp_path / "missing.nii.gz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no training volumes"):
        expand_inputs([str(tmp_path / "empty")])
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="bad.nii.gz: cannot read"):
        extract_slices([bad], matrix=32)
    blank = write_nifti(tmp_path / "blank.nii.gz", np.zeros((8, 8, 4), np.float32))
    with pytest.raises(InputError, match="no usable"):
        extract_slices([blank], matrix=32)


def test_split_volumes_holds_out_whole_volumes_deterministically():
    paths = [Path(f"v{i:02d}.nii.gz") for i in range(10)]
    tr, va = split_volumes(list(reversed(paths)), 0.2)
    assert len(va) == 2 and len(tr) == 8 and not set(tr) & set(va) and set(tr) | set(va) == set(paths)
    assert split_volumes(paths, 0.2) == (tr, va)
    assert len(split_volumes(paths[:2], 0.01)[1]) == 1  # at least one
    with pytest.raises(InputError):
        split_volumes(paths[:1], 0.5)


def test_augment_shapes_determinism_and_range(heads):
    x, _ = extract_slices(expand_inputs([str(heads)]), matrix=32, voxel=2.0)
    x = x[:8]
    cfg = AugmentConfig()
    a = augment(x, cfg, torch.Generator().manual_seed(3))
    b = augment(x, cfg, torch.Generator().manual_seed(3))
    c = augment(x, cfg, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.isfinite(a).all() and float(a.min()) >= 0
    assert not torch.equal(a, x)  # something happened
    assert torch.equal(x, extract_slices(expand_inputs([str(heads)]), matrix=32, voxel=2.0)[0][:8])  # input untouched


# ---------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------


def _fixed_dsm(model, x0: torch.Tensor) -> float:
    from mrdiff_cli.priors.edm import dsm_loss

    g = torch.Generator().manual_seed(99)
    sig = torch.tensor([0.05, 0.2, 0.5, 1.0, 2.0]).repeat(len(x0) // 5 + 1)[: len(x0)]
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        return float(dsm_loss(model, x0, sig, noise))


def test_dsm_loss_decreases(heads, tmp_path):
    cfg = TrainConfig(inputs=[str(heads)], out=str(tmp_path / "run"), steps=40, lr=2e-3, warmup=5, batch_size=8,
                      checkpoint_every=40, **{k: v for k, v in TINY.items() if k not in ("batch_size", "warmup")})
    torch.manual_seed(cfg.seed)  # train() initialises the network from the same seed
    before, _ = build_model_and_config(cfg)
    losses: list[float] = []
    summary = train(cfg, callback=lambda e: losses.append(e["loss"]) if e["type"] == "step" else None)
    assert summary["steps"] == 40 and len(losses) == 40

    from safetensors.torch import load_file

    after, _ = build_model_and_config(cfg)
    ck = load_file(str(tmp_path / "run" / "checkpoint" / "last.safetensors"))
    after.load_state_dict({k[6:]: v for k, v in ck.items() if k.startswith("model.")})
    x0, _ = extract_slices(expand_inputs([str(heads)]), matrix=32, voxel=2.0)
    x0 = x0[::6][:20]
    l0, l1 = _fixed_dsm(before, x0), _fixed_dsm(after, x0)
    assert l1 < 0.8 * l0, (l0, l1)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_resume_is_bit_identical_to_an_uninterrupted_run(heads, tmp_path):
    from safetensors.torch import load_file

    n = 3
    base = TrainConfig(inputs=[str(heads)], checkpoint_every=n, **TINY)
    train(replace(base, out=str(tmp_path / "straight"), steps=2 * n))
    train(replace(base, out=str(tmp_path / "killed"), steps=n))  # "killed" after its step-n checkpoint
    events: list[dict] = []
    summary = train(replace(base, out=str(tmp_path / "killed"), steps=2 * n), resume=True, callback=events.append)
    assert events[0]["type"] == "start" and events[0]["resumed"] and events[0]["step"] == n
    assert [e["step"] for e in events if e["type"] == "step"] == [n + 1, n + 2, n + 3]
    assert summary["start_step"] == n and summary["steps"] == 2 * n

    a = load_file(str(tmp_path / "straight" / "checkpoint" / "last.safetensors"))
    b = load_file(str(tmp_path / "killed" / "checkpoint" / "last.safetensors"))
    assert set(a) == set(b)
    for prefix in ("model.", "ema.", "opt.", "rng."):  # weights, EMA, optimizer moments + step, data/noise RNG
        keys = [k for k in a if k.startswith(prefix)]
        assert keys, prefix
        diff = [k for k in keys if not torch.equal(a[k], b[k])]
        assert not diff, f"{prefix}* differ after resume: {diff[:3]}"
    assert read_checkpoint_meta(tmp_path / "killed")["step"] == 2 * n
    # and the exported bundles agree as well
    assert (tmp_path / "straight" / "bundle" / "model.safetensors").read_bytes() == (
        tmp_path / "killed" / "bundle" / "model.safetensors"
    ).read_bytes()


def test_resume_without_checkpoint_starts_fresh_and_mismatch_is_refused(heads, tmp_path):
    base = TrainConfig(inputs=[str(heads)], out=str(tmp_path / "r"), steps=1, checkpoint_every=1, **TINY)
    events: list[dict] = []
    train(base, resume=True, callback=events.append)
    assert events[0]["resume_requested"] and not events[0]["resumed"] and events[0]["step"] == 0
    with pytest.raises(UsageError, match="base_channels: checkpoint 8 vs now 16"):
        train(replace(base, steps=2, base_channels=16), resume=True)
    (tmp_path / "r" / "checkpoint" / "last.safetensors").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="unreadable checkpoint"):
        train(replace(base, steps=2), resume=True)


def test_validation_is_chunk_independent_and_init_from_copies_weights(heads, tmp_path):
    cfg = TrainConfig(inputs=[str(heads)], out=str(tmp_path / "src"), steps=2, checkpoint_every=2,
                      val_inputs=[str(heads / "head2.nii.gz")], **TINY)
    summary = train(cfg)
    assert set(summary["validation"]["denoise_per_sigma"]) == {"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"}
    bundle = json.loads((tmp_path / "src" / "bundle" / "config.json").read_text())
    assert bundle["training"]["validation_data"] == ["head2.nii.gz"] and bundle["training"]["steps"] == 2

    from mrdiff_cli.priors.bundle import load_bundle

    model, _ = load_bundle(tmp_path / "src" / "bundle")
    val, _ = extract_slices([heads / "head2.nii.gz"], matrix=32, voxel=2.0, axes="axial")
    small, whole = validate(model, "score", val, chunk=3), validate(model, "score", val, chunk=1000)
    assert len(val) > 3
    assert small["mean_mse"] == pytest.approx(whole["mean_mse"], rel=1e-5)
    for k, v in whole["denoise_per_sigma"].items():
        assert small["denoise_per_sigma"][k]["mse"] == pytest.approx(v["mse"], rel=1e-5)

    # --init-from: a new run starts from the bundle's weights
    events: list[dict] = []
    train(replace(cfg, out=str(tmp_path / "dst"), steps=1, lr=1e-12, init_from=str(tmp_path / "src" / "bundle"),
                  val_inputs=[]), callback=events.append)
    assert events[0]["init_from"]["copied"] == events[0]["init_from"]["total"]
    from safetensors.torch import load_file

    ck = load_file(str(tmp_path / "dst" / "checkpoint" / "last.safetensors"))
    src = model.state_dict()
    assert all(torch.allclose(ck[f"model.{k}"], v, atol=1e-6) for k, v in src.items())


def test_checkpoint_restores_each_ranks_own_rng_stream(heads, tmp_path):
    """DDP: rank r must resume generator stream r (else all ranks would draw rank 0's batches after a resume)."""
    from mrdiff_cli.tasks.train_checkpoint import load_checkpoint, save_checkpoint

    cfg = TrainConfig(inputs=[str(heads)], **TINY)
    model, _ = build_model_and_config(cfg)
    ema = copy.deepcopy(model)
    opt = torch.optim.AdamW(model.parameters())
    gens = [torch.Generator().manual_seed(s) for s in (10, 11)]
    for g in gens:
        torch.rand(5, generator=g)
    rank_rng = [(g.get_state(), torch.get_rng_state()) for g in gens]
    save_checkpoint(tmp_path, 7, model, ema, opt, gens[0], {"train_config": {}}, rank_rng)
    for rank in (0, 1):
        g = torch.Generator().manual_seed(123)
        meta = load_checkpoint(tmp_path, model, ema, opt, g, rank)
        assert meta["step"] == 7 and meta["rng_restored"]
        assert torch.equal(g.get_state(), gens[rank].get_state())
    # an older single-process checkpoint (no per-rank states): rank 0 restores, rank 1 is told it could not
    save_checkpoint(tmp_path, 7, model, ema, opt, gens[0], {"train_config": {}})
    assert load_checkpoint(tmp_path, model, ema, opt, torch.Generator(), 0)["rng_restored"]
    assert not load_checkpoint(tmp_path, model, ema, opt, torch.Generator(), 1)["rng_restored"]
