"""Training checkpoints: one safetensors file (weights, EMA, optimiser state, every rank's RNG streams and the
step counter, with a JSON metadata block), written atomically so its parts can never disagree; no pickles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_file, save

from ..errors import UsageError
from ..io.atomic import atomic_write_bytes

# TrainConfig fields that fix the network's tensors: a checkpoint only resumes under the same values
ARCH_FIELDS = ("task", "matrix", "base_channels", "channel_mults", "num_res_blocks", "attn_resolutions", "complex", "complex_demod")


def checkpoint_path(out: str | Path) -> Path:
    return Path(out) / "checkpoint" / "last.safetensors"


def save_checkpoint(
    out: Path, step: int, model: torch.nn.Module, ema: torch.nn.Module, opt: torch.optim.Optimizer, g: torch.Generator,
    extra: dict, rank_rng: list | None = None,
) -> None:
    """``rank_rng``: [(generator state, torch RNG state)] of every rank (DDP), so each rank resumes its own stream."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    osd = opt.state_dict()
    for idx, st in osd["state"].items():
        for name, val in st.items():
            tensors[f"opt.{idx}.{name}"] = torch.as_tensor(val).detach().cpu().contiguous()
    tensors["rng.generator"] = g.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    for r, (gs, ts) in enumerate(rank_rng or []):
        tensors[f"rng.generator.{r}"] = gs
        tensors[f"rng.torch.{r}"] = ts
    meta = {"step": step, "param_groups": osd["param_groups"], **extra}
    # one file, written atomically: weights, optimizer, RNG and the step counter can never disagree
    atomic_write_bytes(checkpoint_path(out), save(tensors, metadata={"meta": json.dumps(meta)}))


def read_checkpoint_meta(out: str | Path) -> dict | None:
    """The checkpoint's metadata (step, train_config, ...) or None when there is no checkpoint."""
    path = checkpoint_path(out)
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as fh:
            return json.loads((fh.metadata() or {})["meta"])
    except Exception as exc:  # noqa: BLE001 - any corruption → one clear message
        raise UsageError(f"{path}: unreadable checkpoint ({exc}); delete it or choose another output folder") from None


def check_resumable(meta: dict, cfg: Any, path: Path) -> None:
    """Refuse to resume a checkpoint whose model options (:data:`ARCH_FIELDS`) differ from ``cfg``'s."""
    old = meta.get("train_config") or {}
    diff = [f"{k}: checkpoint {old[k]!r} vs now {getattr(cfg, k)!r}" for k in ARCH_FIELDS if k in old and old[k] != getattr(cfg, k)]
    if diff:
        raise UsageError(f"{path} was trained with other model options ({'; '.join(diff)}); use the same options to resume")


def load_checkpoint(out: Path, model: torch.nn.Module, ema: torch.nn.Module, opt: torch.optim.Optimizer,
                    g: torch.Generator, rank: int = 0) -> dict:
    """Restore weights, EMA, optimizer and RNG in place; meta["rng_restored"] says whether this rank's own
    generator state was in the file (checkpoints from an older version or another world size may lack it)."""
    path = checkpoint_path(out)
    meta = read_checkpoint_meta(out)
    assert meta is not None, f"{path}: no checkpoint (callers check that it exists)"
    t = load_file(str(path))
    try:
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise UsageError(f"{path} does not fit this model ({first[-1].strip() if first else exc}); use the options it was trained with") from None
    state: dict[int, dict] = {}
    for k, v in t.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    gen_key = f"rng.generator.{rank}" if f"rng.generator.{rank}" in t else ("rng.generator" if rank == 0 else None)
    meta["rng_restored"] = gen_key is not None
    if gen_key is not None:
        g.set_state(t[gen_key])
        torch.set_rng_state(t[f"rng.torch.{rank}"] if f"rng.torch.{rank}" in t else t["rng.torch"])
    return meta


def gather_rng(g: torch.Generator, world: int) -> list:
    """Every rank's (generator, torch RNG) state; a collective under DDP (all ranks must call it)."""
    mine = (g.get_state(), torch.get_rng_state())
    if world == 1:
        return [mine]
    states: list = [None] * world
    dist.all_gather_object(states, mine)
    return states
