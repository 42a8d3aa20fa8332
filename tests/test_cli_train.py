"""`mrdiff train score|vdm` through the real entry point (Typer CliRunner), plus a 2-process gloo/DDP run
through torchrun (subprocess). Tiny models (8 channels, 2 levels, 32×32) on tiny synthetic heads."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrdiff_cli.cli import train as train_cli
from mrdiff_cli.cli.main import app
from synthetic import head_volume

TINY = ["--matrix", "32", "--voxel", "2", "--base-channels", "8", "--channel-mults", "1,2", "--batch-size", "4",
        "--warmup", "2", "--device", "cpu", "--no-bf16"]


@pytest.fixture(autouse=True)
def _single_process_env(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def heads(tmp_path_factory) -> Path:
    import nibabel as nib

    root = tmp_path_factory.mktemp("cli_heads")
    for i in range(3):
        nib.save(nib.Nifti1Image(head_volume(seed=i), np.diag([2.0, 2.0, 2.0, 1.0])), str(root / f"head{i}.nii.gz"))
    return root


def invoke(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------------
# option set
# ---------------------------------------------------------------------------------------------------------------


def test_score_and_vdm_share_one_option_set_with_trainconfig_defaults():
    import typer.main

    from mrdiff_cli.tasks.train import TrainConfig

    group = typer.main.get_command(train_cli.app)
    score, vdm = group.commands["score"], group.commands["vdm"]
    assert [p.name for p in score.params] == [p.name for p in vdm.params]
    opts = {o for p in score.params for o in getattr(p, "opts", [])}
    for flag in ("--steps", "--batch-size", "--lr", "--ema-decay", "--seed", "--resume", "--checkpoint-every",
                 "--val-every", "--val", "--val-fraction", "--matrix", "--voxel", "--axes", "--base-channels",
                 "--channel-mults", "--res-blocks", "--bf16", "--device", "--init-from", "--json", "--quiet", "--out"):
        assert flag in opts, flag
    # CLI defaults are TrainConfig's (the CLI cannot import it at module level: torch)
    sig = inspect.signature(train_cli._make_command("score"))
    d = {k: v.default for k, v in sig.parameters.items()}
    cfg = TrainConfig()
    for k in ("steps", "batch_size", "lr", "warmup", "ema_decay", "seed", "checkpoint_every", "val_every", "matrix",
              "voxel", "base_channels", "sample_grid", "freeze_net", "vdm_timesteps", "gamma_min", "gamma_max"):
        assert d[k] == getattr(cfg, k), k
    assert d["axes"].value == cfg.axes
    assert d["res_blocks"] == cfg.num_res_blocks
    assert [int(v) for v in d["channel_mults"].split(",")] == cfg.channel_mults
    assert [int(v) for v in d["attn_resolutions"].split(",")] == cfg.attn_resolutions


def test_train_help_lists_both_tasks_without_importing_torch():
    r = invoke("--help")
    assert r.exit_code == 0 and "score" in r.stdout and "vdm" in r.stdout
    code = "import sys, mrdiff_cli.cli.train, mrdiff_cli.cli.main; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------------------------


def test_train_score_json_then_resume(heads, tmp_path):
    out = tmp_path / "run"
    r = invoke("score", str(heads), "--out", str(out), "--steps", "6", "--checkpoint-every", "3", "--json", *TINY)
    assert r.exit_code == 0, r.output
    ev = json_lines(r.stdout)
    assert [e["type"] for e in ev] == ["start"] + ["step"] * 3 + ["checkpoint"] + ["step"] * 3 + ["checkpoint", "done"]
    assert ev[0]["n_volumes"] == 3 and ev[0]["resumed"] is False
    assert [e["step"] for e in ev if e["type"] == "step"] == [1, 2, 3, 4, 5, 6]
    done = ev[-1]
    assert done["steps"] == 6 and done["bundle"] == str(out / "bundle") and done["samples_png"] == str(out / "samples.png")
    assert (out / "bundle" / "config.json").is_file() and (out / "bundle" / "model.safetensors").is_file()
    assert (out / "checkpoint" / "last.safetensors").is_file()
    from PIL import Image

    assert Image.open(out / "samples.png").size == (96, 96)  # 8 samples of 32×32 on a 3×3 grid
    from mrdiff_cli.priors.bundle import load_bundle

    model, config = load_bundle(out / "bundle")
    assert config["task"] == "score" and config["resolution"] == [32, 32] and config["training"]["steps"] == 6
    assert config["architecture"]["unet"]["base_channels"] == 8

    # without --resume an existing checkpoint is protected
    r = invoke("score", str(heads), "--out", str(out), "--steps", "8", *TINY)
    assert r.exit_code == 2 and "already holds a checkpoint (step 6)" in r.output

    # --resume continues to a larger --steps
    r = invoke("score", str(heads), "--out", str(out), "--steps", "8", "--checkpoint-every", "3", "--json",
               "--resume", "--no-sample-grid", *TINY)
    assert r.exit_code == 0, r.output
    ev = json_lines(r.stdout)
    assert ev[0]["type"] == "start" and ev[0]["resumed"] is True and ev[0]["step"] == 6
    assert [e["step"] for e in ev if e["type"] == "step"] == [7, 8]
    assert ev[-1]["type"] == "done" and ev[-1]["steps"] == 8 and ev[-1]["start_step"] == 6 and ev[-1]["resumed"]
    assert json.loads((out / "bundle" / "config.json").read_text())["training"]["steps"] == 8

    # changed architecture on resume → one-line error
    r = invoke("score", str(heads), "--out", str(out), "--steps", "9", "--resume", *TINY[:4], "--base-channels", "16",
               *TINY[6:])
    assert r.exit_code == 2 and "base_channels: checkpoint 8 vs now 16" in r.output


def test_resume_without_checkpoint_says_fresh_start_and_val_is_held_out(heads, tmp_path):
    out = tmp_path / "fresh"
    r = invoke("score", str(heads), "--out", str(out), "--steps", "2", "--resume", "--val", str(heads / "head1.nii.gz"),
               "--no-sample-grid", *TINY)
    assert r.exit_code == 0, r.output
    assert "no checkpoint" in r.stderr and "starting a fresh run" in r.stderr
    assert "removed from the training set" in r.stderr
    assert "done" in r.stderr and r.stdout.strip() == ""  # human output goes to stderr only
    training = json.loads((out / "bundle" / "config.json").read_text())["training"]
    assert training["data"] == ["head0.nii.gz", "head2.nii.gz"] and training["validation_data"] == ["head1.nii.gz"]

    r = invoke("score", str(heads), "--out", str(tmp_path / "frac"), "--steps", "1", "--val-fraction", "0.34",
               "--no-sample-grid", "--json", "--quiet", *TINY)
    assert r.exit_code == 0, r.output
    ev = json_lines(r.stdout)
    assert ev[0]["n_volumes"] == 2 and ev[0]["n_val_slices"] > 0
    assert ev[-1]["validation"]["mean_mse"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["MISSING/*.nii.gz"], "no such file, folder or glob match"),
        (["EMPTY"], "no training volumes found"),
        (["BAD"], "cannot read as a training volume"),
        (["HEADS", "--channel-mults", "1,x"], "--channel-mults '1,x'"),
        (["HEADS", "--matrix", "30", "--channel-mults", "1,2,2"], "--matrix 30: must be >= 8 and divisible by 4"),
        (["HEADS", "--val", "HEADS/head0.nii.gz", "--val-fraction", "0.5"], "either --val or --val-fraction"),
        (["HEADS", "--steps", "0"], "--steps must be >= 1"),
        (["HEADS", "--ema-decay", "1.5"], "--ema-decay must be in [0, 1)"),
        (["HEADS", "--init-from", "NOBUNDLE"], "no-bundle' does not exist"),
        (["HEADS", "--resume", "--overwrite"], "pass only one"),
        (["HEADS", "--gamma-max", "4"], "--gamma-max: only for 'mrdiff train vdm'"),
        (["HEADS", "--p-std", "0"], "--p-std must be > 0"),
    ],
)
def test_bad_input_is_a_one_line_error_exit_2(heads, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"definitely not nifti")
    subst = {"MISSING": str(tmp_path / "missing"), "EMPTY": str(tmp_path / "empty"), "BAD": str(bad),
             "HEADS": str(heads), "NOBUNDLE": str(tmp_path / "no-bundle")}
    args = [next((a.replace(k, v) for k, v in subst.items() if k in a), a) for a in args]
    steps = [] if "--steps" in args else ["--steps", "1"]
    r = invoke("score", "--out", str(tmp_path / "o"), *steps, *TINY, *args)  # the options under test come last
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mrdiff: error:") and message in lines[0], r.stderr
    assert not (tmp_path / "o" / "checkpoint").exists()


def test_noise_level_distribution_is_recorded(heads, tmp_path):
    """--p-mean/--p-std set the training noise levels (EDM log-normal) and are stored in the bundle."""
    out = tmp_path / "low"
    r = invoke("score", str(heads), "--out", str(out), "--steps", "1", "--no-sample-grid", "--quiet",
               "--p-mean", "-2.3", "--p-std", "1.3", *TINY)
    assert r.exit_code == 0, r.output
    edm = json.loads((out / "bundle" / "config.json").read_text())["architecture"]["edm"]
    assert edm["p_mean"] == -2.3 and edm["p_std"] == 1.3


def test_no_data_argument_exits_2(tmp_path):
    r = invoke("score", "--out", str(tmp_path / "o"))
    assert r.exit_code == 2


# ---------------------------------------------------------------------------------------------------------------
# torchrun / DDP (gloo, CPU)
# ---------------------------------------------------------------------------------------------------------------


def torchrun(heads: Path, out: Path, steps: int, *extra: str) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "mrdiff_cli.cli.main", "train", "score", str(heads), "--out", str(out), "--steps", str(steps),
           "--checkpoint-every", "2", "--no-sample-grid", "--json", *TINY, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_torchrun_two_processes_gloo(heads, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "ddp"
    ev = torchrun(heads, out, 4)
    assert [e["type"] for e in ev].count("start") == 1  # only rank 0 prints
    done = ev[-1]
    assert done["type"] == "done" and done["world_size"] == 2 and done["steps"] == 4
    # both ranks finished, with identical weights (gradients averaged) ...
    assert sorted(r["rank"] for r in done["ranks"]) == [0, 1]
    assert done["ranks"][0]["param_digest"] == done["ranks"][1]["param_digest"] and done["params_in_sync"] is True
    # ... from different batches / noise (a per-rank generator)
    assert done["ranks"][0]["loss_sum"] != done["ranks"][1]["loss_sum"]
    assert (out / "bundle" / "model.safetensors").is_file()
    config = json.loads((out / "bundle" / "config.json").read_text())
    assert config["training"]["batch_size"] == 8  # global batch = 4 per process × 2

    ck = load_file(str(out / "checkpoint" / "last.safetensors"))
    assert not torch.equal(ck["rng.generator.0"], ck["rng.generator.1"])  # each rank resumes its own stream
    # the checkpoint (rank 0's weights) is the state both ranks agreed on
    from mrdiff_cli.tasks.train import TrainConfig, _param_digest, build_model_and_config

    model, _ = build_model_and_config(TrainConfig(matrix=32, base_channels=8, channel_mults=[1, 2]))
    model.load_state_dict({k[6:]: v for k, v in ck.items() if k.startswith("model.")})
    assert _param_digest(model) == done["ranks"][1]["param_digest"]


@pytest.mark.slow  # three torchrun launches (~20-40 s on 2 busy cores); the per-rank RNG logic has a fast unit test
def test_torchrun_resume_is_bit_identical(heads, tmp_path):
    """A DDP run stopped at step 2 and resumed to 4 ends bit-identical to the straight run."""
    from safetensors.torch import load_file

    torchrun(heads, tmp_path / "straight", 4)
    torchrun(heads, tmp_path / "split", 2)
    ev = torchrun(heads, tmp_path / "split", 4, "--resume")
    assert ev[0]["resumed"] and ev[-1]["start_step"] == 2 and ev[-1]["params_in_sync"]
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "last.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoint" / "last.safetensors"))
    assert set(a) == set(b)
    assert not [k for k in a if not torch.equal(a[k], b[k])]


def test_vdm_shares_the_checks(heads, tmp_path):
    r = invoke("vdm", str(heads), "--out", str(tmp_path / "v"), "--freeze-net", *TINY)
    assert r.exit_code == 2 and "--freeze-net" in r.stderr and "--init-from" in r.stderr
    r = invoke("vdm", str(heads), "--out", str(tmp_path / "v"), "--gamma-min", "3", "--gamma-max", "2", *TINY)
    assert r.exit_code == 2 and "--gamma-min must be below --gamma-max" in r.stderr
    assert not (tmp_path / "v").exists()


def test_init_from_errors_name_init_from(heads, tmp_path):
    """The model resolver's messages name the option the user typed (--init-from, not --model)."""
    pt = tmp_path / "weights.pt"
    pt.write_bytes(b"not a bundle")
    res = invoke("score", str(heads), "--out", str(tmp_path / "run"), "--init-from", str(pt), "--steps", "1")
    assert res.exit_code == 2, res.output
    assert "--init-from" in res.stderr and "--model" not in res.stderr
