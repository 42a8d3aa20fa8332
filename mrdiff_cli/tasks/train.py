"""Training of the priors (score: EDM denoising score matching; vdm: the VDM VLB).

Resumable (checkpoints = safetensors + JSON, no pickles), seeded, bf16 autocast, torchrun/DDP ready.
Progress goes through a callback: ``callback(event: dict)`` with event["type"] in {"start", "step", "val",
"checkpoint", "done"}.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from ..errors import ModelError, UsageError
from ..io.grid import save_grid
from ..priors.bundle import NORMALIZATION, load_bundle, read_config, save_bundle
from ..priors.edm import EDMConfig, EDMPrior, dsm_loss, sample_sigmas
from ..priors.hub import resolve_model
from ..priors.unet import UNetConfig
from ..priors.vdm import VDM, VDMConfig, vdm_architecture, vlb_loss, vlb_terms
from ..samplers.unconditional import unconditional_sample
from .train_checkpoint import (
    check_resumable,
    checkpoint_path,
    gather_rng,
    load_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
)
from .train_data import (
    AugmentConfig,
    PhaseAugment,
    TrainingSet,
    complexify,
    expand_inputs,
    extract_slices,
)

Prior = EDMPrior | VDM  # the networks this module trains

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
    # task "vdm" only: train gamma alone (the network from init_from stays fixed), the loss's T (0 = continuous
    # time) and the initial end points of the learned schedule (sigma_ve = exp(gamma / 2))
    freeze_net: bool = False
    vdm_timesteps: int = 0
    gamma_min: float = -13.3
    gamma_max: float = 5.0
    # any-resolution prior: slices resampled at each of these voxel sizes (same FOV as matrix x voxel) and
    # matrix² patches drawn from them; empty = whole slices at ``voxel`` only
    voxels: list[float] = field(default_factory=list)
    elastic: float = 0.0
    aniso_scale: float = 0.0
    # task "score" only: a complex-valued prior (two channels, real and imaginary) trained on the magnitude slices
    # with random phase (train_data.PhaseAugment); reconstruction then needs no phase estimate
    complex: bool = False
    # with complex: the network sees the image demodulated by the phase of its low-resolution copy (this fraction
    # of the matrix; 0 = the raw complex image), i.e. it models the residual phase only (UNetConfig.demod_frac)
    complex_demod: float = 0.0

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(elastic=self.elastic, aniso_scale=self.aniso_scale)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema ← decay · ema + (1 − decay) · model, for every floating-point parameter and buffer."""
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values(), strict=False):
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


def build_model_and_config(cfg: TrainConfig) -> tuple[Prior, dict[str, Any]]:
    if cfg.complex and cfg.task != "score":
        raise UsageError("is for task 'score' (a complex-valued score prior)", option="complex")
    if cfg.complex_demod and not cfg.complex:
        raise UsageError("needs `complex` (it demodulates a complex prior's input)", option="complex_demod")
    if not 0.0 <= cfg.complex_demod <= 1.0:
        raise UsageError(f"must be in [0, 1] (a fraction of the matrix; got {cfg.complex_demod:g})", option="complex_demod")
    ucfg = UNetConfig(
        in_channels=2 if cfg.complex else 1,
        out_channels=2 if cfg.complex else 1,
        base_channels=cfg.base_channels,
        channel_mults=list(cfg.channel_mults),
        num_res_blocks=cfg.num_res_blocks,
        attn_resolutions=list(cfg.attn_resolutions),
        resolution=cfg.matrix,
        fourier_features=cfg.task == "vdm",
        demod_frac=float(cfg.complex_demod) if cfg.complex else 0.0,
    )
    if cfg.task == "score":
        ecfg = EDMConfig(sigma_data=cfg.sigma_data, p_mean=cfg.p_mean, p_std=cfg.p_std)
        model: Prior = EDMPrior(ucfg, ecfg)
        arch = {"type": "edm-unet", "unet": ucfg.to_dict(), "edm": ecfg.to_dict()}
        tasks = ["score"] if cfg.complex else ["score", "vdm"]  # superres works on magnitudes
    elif cfg.task == "vdm":
        vcfg = VDMConfig(gamma_min=cfg.gamma_min, gamma_max=cfg.gamma_max, n_timesteps_train=cfg.vdm_timesteps)
        ecfg = EDMConfig(sigma_data=cfg.sigma_data, p_mean=cfg.p_mean, p_std=cfg.p_std)
        tasks = ["vdm"]
        if cfg.init_from:
            # the network's architecture is the init_from bundle's (a score bundle, or a VDM bundle to continue)
            src = read_config(cfg.init_from)
            src_arch = src.get("architecture") or {}
            if src_arch.get("type") not in ("edm-unet", "vdm-unet"):
                raise UsageError(f"{cfg.init_from}: unknown architecture {src_arch.get('type')!r}", option="init_from")
            ucfg = UNetConfig.from_dict(src_arch["unet"])
            ecfg = EDMConfig(**src_arch.get("edm", {}))
            if list(src.get("resolution") or []) not in ([], [cfg.matrix, cfg.matrix]):
                raise UsageError(f"{cfg.init_from} was trained at {src['resolution']}; `matrix` is {cfg.matrix}",
                                 option="init_from")
            if src_arch.get("type") == "edm-unet" or "score" in (src.get("tasks") or []):
                tasks = ["vdm", "score"]  # the network is a trained VE denoiser: the bundle also serves reconstruct
        elif cfg.freeze_net:
            raise UsageError("needs `init_from` (a trained score or VDM bundle): it trains gamma only",
                             option="freeze_net")
        model = VDM(ucfg, vcfg, ecfg)
        if cfg.freeze_net:
            model.score.requires_grad_(False)
        arch = vdm_architecture(ucfg, ecfg, vcfg)
    else:
        raise UsageError(f"unknown training task {cfg.task!r} (use 'score' or 'vdm')")
    if cfg.freeze_net and cfg.task != "vdm":
        raise UsageError("is for task 'vdm' (train the noise schedule of a trained network)", option="freeze_net")
    config = {
        "mrdiff_bundle_version": 1,
        "task": cfg.task,
        "tasks": tasks,
        "resolution": [cfg.matrix, cfg.matrix],
        "voxel_size_mm": cfg.voxel,
        **({"voxel_sizes_mm": list(cfg.voxels), "fully_convolutional": True} if cfg.voxels else {}),
        "architecture": arch,
        "normalization": NORMALIZATION,
        **({"image": "complex"} if cfg.complex else {}),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model, config


def _clip_groups(model: torch.nn.Module, task: str) -> list[list[torch.nn.Parameter]]:
    """Parameters clipped together. VDM: the network and gamma separately (gamma's variance-minimisation
    gradients live on another scale and must not shrink the network's step); otherwise all together."""
    if task == "vdm" and hasattr(model, "gamma") and hasattr(model, "score"):
        score, gamma = cast(torch.nn.Module, model.score), cast(torch.nn.Module, model.gamma)
        return [list(score.parameters()), list(gamma.parameters())]
    return [list(model.parameters())]


class _ThroughForward:
    """Duck-typed EDMPrior whose ``denoise`` goes through ``model(...)`` (EDMPrior.forward = denoise).

    Under DDP the gradient all-reduce hooks are armed only by ``DistributedDataParallel.forward``; calling
    ``prior.denoise`` directly would silently skip the averaging and let the ranks drift apart."""

    def __init__(self, model: torch.nn.Module, edm: Any):
        self.model, self.edm = model, edm

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.model(x, sigma)


def _loss(model: torch.nn.Module, task: str, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    if task == "score":
        prior: Any = getattr(model, "module", model)  # unwrap DDP for attributes
        sig = sample_sigmas(x0.shape[0], prior.edm, generator=g).to(x0.device)
        noise = torch.randn(x0.shape, generator=g).to(x0.device)
        return dsm_loss(_ThroughForward(model, prior.edm), x0, sig, noise)

    return vlb_loss(model, x0, g).mean()


@torch.no_grad()
def validate(model: Prior, task: str, val: torch.Tensor, seed: int = 1234, chunk: int = 32) -> dict[str, Any]:
    """Held-out denoising loss per noise level (fixed noise), and the mean."""
    if val is None or len(val) == 0:
        return {}
    g = torch.Generator().manual_seed(seed)
    val = val.to(next(model.parameters()).device)
    if task == "score":
        per = {}
        for s in VAL_SIGMAS:
            noise = torch.randn(val.shape, generator=g).to(val.device)
            sq = 0.0
            for i in range(0, len(val), chunk):  # chunked: a whole held-out volume need not fit in one batch
                x = val[i : i + chunk]
                d = model.denoise(x + s * noise[i : i + chunk], torch.full((len(x),), s))  # EDMPrior
                sq += float(((d - x) ** 2).sum())
            mse = sq / val.numel()
            per[f"{s:g}"] = {"mse": mse, "psnr_db": float(10 * math.log10(1.0 / max(mse, 1e-12)))}
            del noise
        return {"denoise_per_sigma": per, "mean_mse": sum(v["mse"] for v in per.values()) / len(per)}

    sums: dict[str, float] = {}
    for i in range(0, len(val), chunk):  # chunked, fixed noise from the seeded generator
        for k, v in vlb_terms(model, val[i : i + chunk], g).items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
    n = len(val)
    return {
        "vlb_bpd": sums["total"] / n,
        "vlb_terms_bpd": {k: v / n for k, v in sums.items() if k != "total"},
        "gamma_min": float(cast(VDM, model).gamma.gamma_min),
        "gamma_max": float(cast(VDM, model).gamma.gamma_max),
    }


def _param_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for v in model.state_dict().values():
        h.update(v.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _embed_channels(src: torch.Tensor, like: torch.Tensor) -> torch.Tensor | None:
    """``src`` placed into the first channel of a zero tensor shaped like ``like`` when the two differ only in one
    channel axis (0: a layer's outputs, 1: its inputs) where ``src`` has one channel; else None. A magnitude
    prior's stem and output layers then act on (and produce) the real part of a complex prior's two channels:
    at zero phase the complex prior starts as the magnitude prior."""
    if src.dim() != like.dim() or src.dim() == 0:
        return None
    diff = [d for d in range(src.dim()) if src.shape[d] != like.shape[d]]
    if len(diff) != 1 or diff[0] > 1 or src.shape[diff[0]] != 1:
        return None
    out = torch.zeros_like(like)
    out.narrow(diff[0], 0, 1).copy_(src)
    return out


def _init_from_bundle(model: torch.nn.Module, bundle: str) -> dict[str, int]:
    """Copy every tensor of ``bundle`` whose name and shape match (a score bundle can seed a VDM's UNet)."""
    src, _ = load_bundle(bundle)
    own = model.state_dict()
    src_state = src.state_dict()
    if hasattr(model, "gamma") and hasattr(model, "score") and not any(k.startswith("score.") for k in src_state):
        src_state = {f"score.{k}": v for k, v in src_state.items()}  # a score bundle → the VDM's inner prior
    take = {k: v for k, v in src_state.items() if k in own and own[k].shape == v.shape}
    for k, v in src_state.items():  # a magnitude prior seeding a complex one: its channel becomes the real one
        if k in own and k not in take and (embedded := _embed_channels(v, own[k])) is not None:
            take[k] = embedded
    if not take:
        raise ModelError(f"{bundle}: no tensor of this bundle fits the model being trained")
    model.load_state_dict(take, strict=False)
    return {"copied": len(take), "total": len(own)}


def sample_grid_png(model: Prior, task: str, path: Path, n: int = 8, seed: int = 0, steps: int = 32) -> None:
    """Unconditional prior samples (a quick look at what the prior believes) → PNG grid."""
    c = model.unet_cfg.in_channels  # 2: a complex prior (real, imaginary); its grid shows the magnitude
    x = unconditional_sample(model, (n, c, model.unet_cfg.resolution, model.unet_cfg.resolution), steps=steps, seed=seed)
    save_grid(path, (x[:, 0] if c == 1 else x.square().sum(dim=1).sqrt()).cpu().numpy())


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
        "voxels_mm": list(cfg.voxels) or [cfg.voxel],
        "patches": bool(cfg.voxels),
        "augmentation": asdict(cfg.augment_config()),
        "seed": cfg.seed,
    }
    config["validation"] = val
    was_training = ema.training
    ema.eval()
    save_bundle(out / "bundle", ema, config)
    ema.train(was_training)


def _init_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """(world size, rank, device): joins the process group under torchrun (cuda: this rank's LOCAL_RANK GPU)."""
    world, rank, local = _dist_info()
    device = torch.device(cfg.device)
    if world > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
    return world, rank, device


@dataclass
class _Run:
    """What one training process holds: the model, its EMA and optimiser, the data stream and the counters."""

    cfg: TrainConfig
    world: int
    rank: int
    device: torch.device
    data: TrainingSet
    val: torch.Tensor | None
    model: Prior
    config: dict[str, Any]
    ema: Prior
    opt: torch.optim.Optimizer
    g: torch.Generator
    step: int = 0
    init_info: dict[str, int] | None = None
    ddp_model: torch.nn.Module | None = None
    last_val: dict[str, Any] = field(default_factory=dict)
    loss_ema: float | None = None
    loss_sum: float = 0.0


def _setup_run(cfg: TrainConfig, world: int, rank: int, device: torch.device, resume_meta: dict | None) -> _Run:
    """Data, model (fresh / init_from / resumed from the checkpoint), EMA, optimiser and the rank's generator."""
    torch.manual_seed(cfg.seed)
    data = TrainingSet.load(expand_inputs(cfg.inputs), cfg.matrix, cfg.voxel, cfg.axes, list(cfg.voxels))
    val = extract_slices(expand_inputs(cfg.val_inputs), cfg.matrix, cfg.voxel, "axial")[0] if cfg.val_inputs else None
    if val is not None and cfg.complex:  # the same random phase at every validation
        val = complexify(val, PhaseAugment(), torch.Generator().manual_seed(4321), cfg.complex_demod)
    model, config = build_model_and_config(cfg)
    init_info = _init_from_bundle(model, cfg.init_from) if cfg.init_from else None
    model.to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
    run = _Run(cfg, world, rank, device, data, val, model, config, ema, opt,
               torch.Generator().manual_seed(cfg.seed * 1000 + rank), init_info=init_info)
    if resume_meta is not None:
        meta = load_checkpoint(Path(cfg.out), model, ema, opt, run.g, rank)
        run.step = int(meta["step"])
        if not meta["rng_restored"]:  # no saved stream for this rank: a fresh one that differs from step 0's
            run.g.manual_seed(cfg.seed * 1000 + rank + 7919 * run.step)
    run.ddp_model = model
    if world > 1:
        run.ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    return run


def _train_step(run: _Run, aug: AugmentConfig) -> tuple[float, float]:
    """One optimiser step (warm-up learning rate, bf16 autocast, per-group clipping, EMA); returns (loss, lr)."""
    cfg, step, opt = run.cfg, run.step, run.opt
    x0 = run.data.batch(cfg.batch_size, cfg.matrix, aug, run.g)
    if cfg.complex:
        x0 = complexify(x0, PhaseAugment(), run.g, cfg.complex_demod)
    x0 = x0.to(run.device)
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
    for pg in opt.param_groups:
        pg["lr"] = lr
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        net = run.ddp_model if run.world > 1 else run.model
        assert net is not None  # _setup_run sets ddp_model
        loss = _loss(net, cfg.task, x0, run.g)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        for group in _clip_groups(run.model, cfg.task):
            torch.nn.utils.clip_grad_norm_(group, cfg.grad_clip)
    opt.step()
    ema_update(run.ema, run.model, ema_decay_at(step, cfg.ema_decay))
    run.step = step + 1
    lv = float(loss.detach())
    run.loss_sum += lv
    run.loss_ema = lv if run.loss_ema is None else 0.98 * run.loss_ema + 0.02 * lv
    return lv, lr


def _checkpoint_and_validate(run: _Run, cb: Callable[[dict], None]) -> None:
    """Every ``checkpoint_every`` steps (and at the last): checkpoint + bundle; every ``val_every``: validation."""
    cfg, step, out = run.cfg, run.step, Path(run.cfg.out)
    if step % cfg.checkpoint_every == 0 or step == cfg.steps:
        rank_rng = gather_rng(run.g, run.world)  # collective: every rank takes part, rank 0 writes
        if run.rank == 0:
            extra = {"train_config": asdict(cfg), "world_size": run.world}
            save_checkpoint(out, step, run.model, run.ema, run.opt, run.g, extra, rank_rng)
            _write_bundle(out, run.ema, run.config, cfg, run.data.paths, step, run.world, run.last_val)
            cb({"type": "checkpoint", "step": step, "path": str(out / "checkpoint")})
    if run.rank == 0 and run.val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
        run.ema.eval()
        run.last_val = validate(run.ema, cfg.task, run.val)
        run.ema.train()
        cb({"type": "val", "step": step, **run.last_val})


def _finish(run: _Run, summary: dict[str, Any]) -> None:
    """DDP sanity check (same weights on every rank), then rank 0 exports the bundle and the sample grid."""
    out = Path(run.cfg.out)
    if run.world > 1:
        # sanity check of the DDP contract: same weights everywhere (gradients averaged), different data per rank
        ranks: list = [None] * run.world
        dist.all_gather_object(ranks, {"rank": run.rank, "param_digest": _param_digest(run.model), "loss_sum": run.loss_sum})
        summary["ranks"] = ranks
        summary["params_in_sync"] = len({r["param_digest"] for r in ranks}) == 1
    if run.rank == 0:
        _write_bundle(out, run.ema, run.config, run.cfg, run.data.paths, run.step, run.world, run.last_val)
        summary["bundle"] = str(out / "bundle")
        if run.cfg.sample_grid:
            try:
                sample_grid_png(run.ema, run.cfg.task, out / "samples.png")
                summary["samples_png"] = str(out / "samples.png")
            except ImportError:
                pass


def train(cfg: TrainConfig, resume: bool = False, callback: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run (or resume) a training job; returns a summary dict. Writes ``cfg.out/bundle`` (EMA weights)."""
    cb = callback or (lambda e: None)
    world, rank, device = _init_distributed(cfg)
    out = Path(cfg.out)
    resume_meta = read_checkpoint_meta(out) if resume else None
    if resume_meta is not None:  # fail before the (slow) data loading when the options do not fit
        check_resumable(resume_meta, cfg, checkpoint_path(out))
    out.mkdir(parents=True, exist_ok=True)
    run = _setup_run(cfg, world, rank, device, resume_meta)
    start_step = run.step
    aug = cfg.augment_config()
    cb({"type": "start", "step": run.step, "steps": cfg.steps, "n_slices": run.data.n_slices, "n_volumes": len(run.data.paths),
        "n_val_slices": 0 if run.val is None else len(run.val), "parameters": run.config["parameters"], "world_size": world,
        "rank": rank, "resume_requested": resume, "resumed": resume_meta is not None, "init_from": run.init_info})
    t0 = time.time()
    while run.step < cfg.steps:
        lv, lr = _train_step(run, aug)
        cb({"type": "step", "step": run.step, "steps": cfg.steps, "loss": lv, "loss_smooth": run.loss_ema, "lr": lr,
            "elapsed_s": time.time() - t0})
        _checkpoint_and_validate(run, cb)
    summary: dict[str, Any] = {"steps": run.step, "start_step": start_step, "elapsed_s": time.time() - t0,
                               "validation": run.last_val, "world_size": world}
    _finish(run, summary)
    cb({"type": "done", **summary})
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def resolve_init_from(spec: str, offline: bool | None = None) -> str:
    """The local folder of the bundle that ``init_from`` names (a folder, bundled:NAME or a Hub repo id). Its
    ModelErrors name ``init_from``, not the resolver's ``model``."""
    try:
        return str(resolve_model(spec, None, offline=offline).path)
    except ModelError as exc:
        raise ModelError(exc.message.replace("`model`", "`init_from`"),
                         option="init_from" if exc.option == "model" else exc.option) from None
