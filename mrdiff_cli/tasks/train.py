"""Training of the priors (score: EDM denoising score matching; vdm: the VDM VLB).

Resumable (checkpoints = safetensors + JSON, no pickles), seeded, bf16 autocast, torchrun/DDP ready.
Progress goes through a callback: ``callback(event: dict)`` with event["type"] in {"start", "step", "val",
"checkpoint", "done"}.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import UsageError
from ..priors.bundle import NORMALIZATION, _atomic_write_bytes, save_bundle
from .train_data import AugmentConfig, augment, expand_inputs, extract_slices

VAL_SIGMAS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]


@dataclass
class TrainConfig:
    task: str = "score"
    inputs: list[str] = field(default_factory=list)
    val_inputs: list[str] = field(default_factory=list)
    out: str = "run"
    steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-4
    warmup: int = 200
    ema_decay: float = 0.999
    seed: int = 0
    matrix: int = 128
    voxel: float = 2.0
    axes: str = "all"
    checkpoint_every: int = 500
    val_every: int = 1000
    bf16: bool = True
    grad_clip: float = 1.0
    base_channels: int = 32
    channel_mults: list[int] = field(default_factory=lambda: [1, 2, 2, 4])
    num_res_blocks: int = 1
    attn_resolutions: list[int] = field(default_factory=lambda: [16])
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_data: float = 0.5
    init_from: str | None = None
    device: str = "cpu"
    sample_grid: bool = True


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema ← decay · ema + (1 − decay) · model, for every floating-point parameter and buffer."""
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                e.mul_(decay).add_(m.detach(), alpha=1.0 - decay)
            else:
                e.copy_(m)


def ema_decay_at(step: int, decay: float) -> float:
    """EMA warm-up: early steps average over fewer past models."""
    return min(decay, (1.0 + step) / (10.0 + step))


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def build_model_and_config(cfg: TrainConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    from ..priors.edm import EDMConfig, EDMPrior
    from ..priors.unet import UNetConfig

    ucfg = UNetConfig(
        base_channels=cfg.base_channels,
        channel_mults=list(cfg.channel_mults),
        num_res_blocks=cfg.num_res_blocks,
        attn_resolutions=list(cfg.attn_resolutions),
        resolution=cfg.matrix,
        fourier_features=cfg.task == "vdm",
    )
    if cfg.task == "score":
        ecfg = EDMConfig(sigma_data=cfg.sigma_data, p_mean=cfg.p_mean, p_std=cfg.p_std)
        model = EDMPrior(ucfg, ecfg)
        arch = {"type": "edm-unet", "unet": ucfg.to_dict(), "edm": ecfg.to_dict()}
        tasks = ["score", "vdm"]
    elif cfg.task == "vdm":
        from ..priors.vdm import VDM, VDMConfig

        vcfg = VDMConfig()
        model = VDM(ucfg, vcfg)
        arch = {"type": "vdm-unet", "unet": ucfg.to_dict(), "vdm": vcfg.to_dict()}
        tasks = ["vdm"]
    else:
        raise UsageError(f"unknown training task {cfg.task!r} (use 'score' or 'vdm')")
    config = {
        "mrdiff_bundle_version": 1,
        "task": cfg.task,
        "tasks": tasks,
        "resolution": [cfg.matrix, cfg.matrix],
        "voxel_size_mm": cfg.voxel,
        "architecture": arch,
        "normalization": NORMALIZATION,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model, config


def _loss(model: torch.nn.Module, task: str, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    if task == "score":
        from ..priors.edm import dsm_loss, sample_sigmas

        sig = sample_sigmas(x0.shape[0], model.edm, generator=g)
        noise = torch.randn(x0.shape, generator=g)
        return dsm_loss(model, x0, sig, noise)
    from ..priors.vdm import vlb_loss

    return vlb_loss(model, x0, g).mean()


@torch.no_grad()
def validate(model: torch.nn.Module, task: str, val: torch.Tensor, seed: int = 1234) -> dict[str, Any]:
    """Held-out denoising loss per noise level (fixed noise), and the mean."""
    if val is None or len(val) == 0:
        return {}
    g = torch.Generator().manual_seed(seed)
    if task == "score":
        from ..priors.edm import dsm_loss

        per = {}
        for s in VAL_SIGMAS:
            noise = torch.randn(val.shape, generator=g)
            x = val
            d = model.denoise(x + s * noise, torch.full((len(x),), s))
            mse = float(((d - x) ** 2).mean())
            per[f"{s:g}"] = {"mse": mse, "psnr_db": float(10 * math.log10(1.0 / max(mse, 1e-12)))}
            del noise
        return {"denoise_per_sigma": per, "mean_mse": sum(v["mse"] for v in per.values()) / len(per)}
    from ..priors.vdm import vlb_loss

    bpd = vlb_loss(model, val, g).mean()
    return {"vlb_bpd": float(bpd)}


def _save_checkpoint(out: Path, step: int, model, ema, opt, g: torch.Generator, extra: dict) -> None:
    from safetensors.torch import save

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    osd = opt.state_dict()
    for idx, st in osd["state"].items():
        for name, val in st.items():
            tensors[f"opt.{idx}.{name}"] = torch.as_tensor(val).detach().cpu().contiguous()
    tensors["rng.generator"] = g.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"step": step, "param_groups": osd["param_groups"], **extra}
    # one file, written atomically: weights, optimizer, RNG and the step counter can never disagree
    _atomic_write_bytes(out / "checkpoint" / "last.safetensors", save(tensors, metadata={"meta": json.dumps(meta)}))


def _load_checkpoint(out: Path, model, ema, opt, g: torch.Generator) -> dict:
    from safetensors.torch import load_file

    from safetensors import safe_open

    path = str(out / "checkpoint" / "last.safetensors")
    t = load_file(path)
    with safe_open(path, "pt") as fh:
        meta = json.loads(fh.metadata()["meta"])
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
    state: dict[int, dict] = {}
    for k, v in t.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    g.set_state(t["rng.generator"])
    torch.set_rng_state(t["rng.torch"])
    return meta


def sample_grid_png(model: torch.nn.Module, task: str, path: Path, n: int = 8, seed: int = 0, steps: int = 32) -> None:
    """Unconditional prior samples (a quick look at what the prior believes) → PNG grid."""
    from ..samplers.unconditional import unconditional_sample
    from ..io.grid import save_grid

    x = unconditional_sample(model, (n, 1, model.unet_cfg.resolution, model.unet_cfg.resolution), steps=steps, seed=seed)
    save_grid(path, x[:, 0].cpu().numpy())


def _write_bundle(out: Path, ema, config: dict, cfg: TrainConfig, paths: list[Path], step: int, world: int, val: dict) -> None:
    """Export the EMA weights as a loadable bundle (out/bundle) with its training description."""
    config = dict(config)
    config["training"] = {
        "data": [p.name for p in paths],
        "validation_data": [Path(v).name for v in cfg.val_inputs],
        "steps": step,
        "batch_size": cfg.batch_size * world,
        "lr": cfg.lr,
        "ema_decay": cfg.ema_decay,
        "matrix": cfg.matrix,
        "voxel_mm": cfg.voxel,
        "axes": cfg.axes,
        "augmentation": asdict(AugmentConfig()),
        "seed": cfg.seed,
    }
    config["validation"] = val
    was_training = ema.training
    ema.eval()
    save_bundle(out / "bundle", ema, config)
    ema.train(was_training)


def train(cfg: TrainConfig, resume: bool = False, callback: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run (or resume) a training job; returns a summary dict. Writes ``cfg.out/bundle`` (EMA weights)."""
    cb = callback or (lambda e: None)
    world, rank, local = _dist_info()
    device = torch.device(cfg.device)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    paths = expand_inputs(cfg.inputs)
    data, _ = extract_slices(paths, cfg.matrix, cfg.voxel, cfg.axes)
    val = extract_slices(expand_inputs(cfg.val_inputs), cfg.matrix, cfg.voxel, "axial")[0] if cfg.val_inputs else None
    model, config = build_model_and_config(cfg)
    if cfg.init_from:
        from ..priors.bundle import load_bundle

        src, _ = load_bundle(cfg.init_from)
        missing = model.load_state_dict(src.state_dict(), strict=False)
        del src, missing
    model.to(device)
    import copy

    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(cfg.seed * 1000 + rank)
    step = 0
    if resume and (out / "checkpoint" / "last.safetensors").exists():
        meta = _load_checkpoint(out, model, ema, opt, g)
        step = int(meta["step"])
    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model)
    augcfg = AugmentConfig()
    cb({"type": "start", "step": step, "steps": cfg.steps, "n_slices": len(data), "n_volumes": len(paths),
        "parameters": config["parameters"], "world_size": world, "rank": rank})
    t0 = time.time()
    last_val: dict[str, Any] = {}
    loss_ema = None
    while step < cfg.steps:
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=g)
        x0 = augment(data[idx], augcfg, g).to(device)
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
        for pg in opt.param_groups:
            pg["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = _loss(ddp_model if world > 1 else model, cfg.task, x0, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ema_update(ema, model, ema_decay_at(step, cfg.ema_decay))
        step += 1
        lv = float(loss.detach())
        loss_ema = lv if loss_ema is None else 0.98 * loss_ema + 0.02 * lv
        el = time.time() - t0
        cb({"type": "step", "step": step, "steps": cfg.steps, "loss": lv, "loss_smooth": loss_ema, "lr": lr, "elapsed_s": el})
        if rank == 0 and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
            _save_checkpoint(out, step, model, ema, opt, g, {"train_config": asdict(cfg)})
            _write_bundle(out, ema, config, cfg, paths, step, world, last_val)
            cb({"type": "checkpoint", "step": step, "path": str(out / "checkpoint")})
        if rank == 0 and val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
            ema.eval()
            last_val = validate(ema, cfg.task, val)
            ema.train()
            cb({"type": "val", "step": step, **last_val})
    summary: dict[str, Any] = {"steps": step, "elapsed_s": time.time() - t0, "validation": last_val}
    if rank == 0:
        _write_bundle(out, ema, config, cfg, paths, step, world, last_val)
        summary["bundle"] = str(out / "bundle")
        if cfg.sample_grid:
            try:
                sample_grid_png(ema, cfg.task, out / "samples.png")
                summary["samples_png"] = str(out / "samples.png")
            except ImportError:
                pass
    cb({"type": "done", **summary})
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return summary
