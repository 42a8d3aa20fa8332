"""A small DDPM/NCSN++-family UNet: residual blocks, GroupNorm, self-attention at low resolution,
sinusoidal/Fourier noise-level embedding. Used by both the score prior (EDM/VE) and the VDM (VP)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UNetConfig:
    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 32
    channel_mults: list[int] = field(default_factory=lambda: [1, 2, 2, 4])
    num_res_blocks: int = 1
    attn_resolutions: list[int] = field(default_factory=lambda: [16])
    dropout: float = 0.0
    emb_dim: int = 128
    fourier_features: bool = False  # VDM: extra input channels sin/cos(2^n pi x)
    fourier_n: list[int] = field(default_factory=lambda: [6, 7, 8])
    resolution: int = 128
    # complex prior (in_channels 2) only: its input is demodulated by the phase of a low-resolution copy, the
    # central demod_frac x matrix of k-space (0: none; the denoiser then sees the residual phase only)
    demod_frac: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        unknown = set(d) - set(known) - {"type"}
        if unknown:
            raise ValueError(f"unknown UNet config keys: {sorted(unknown)}")
        return cls(**known)


def _groups(ch: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if ch % g == 0 and ch // g >= 2:
            return g
    return 1


def noise_embedding(c: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a scalar noise conditioning value per batch element."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=c.device, dtype=torch.float32) / half)
    args = 250.0 * c.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _zero_init(layer: nn.Conv2d) -> None:
    """Zero weight and bias: the layer starts as the zero map (residual branches start as the identity)."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        _zero_init(self.conv2)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return (self.skip(x) + h) / math.sqrt(2.0)


class Attention(nn.Module):
    def __init__(self, ch: int, heads: int = 1):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        _zero_init(self.proj)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return (x + self.proj(out)) / math.sqrt(2.0)


class UNet(nn.Module):
    """F_theta(x, c_noise): (B, in_channels, H, W), (B,) → (B, out_channels, H, W)."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        cin = cfg.in_channels * (1 + 2 * len(cfg.fourier_n) if cfg.fourier_features else 1)
        ch = cfg.base_channels
        self.emb = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.emb_dim * 2), nn.SiLU(), nn.Linear(cfg.emb_dim * 2, cfg.emb_dim))
        self.stem = nn.Conv2d(cin, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch]
        res = cfg.resolution
        cur = ch
        for li, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.num_res_blocks):
                blk = nn.ModuleList([ResBlock(cur, ch * mult, cfg.emb_dim, cfg.dropout)])
                cur = ch * mult
                if res in cfg.attn_resolutions:
                    blk.append(Attention(cur))
                self.down.append(blk)
                skips.append(cur)
            if li != len(cfg.channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(cur, cur, 3, stride=2, padding=1)]))
                skips.append(cur)
                res //= 2
        self.mid1 = ResBlock(cur, cur, cfg.emb_dim, cfg.dropout)
        self.mid_attn = Attention(cur)
        self.mid2 = ResBlock(cur, cur, cfg.emb_dim, cfg.dropout)
        self.up = nn.ModuleList()
        for li, mult in reversed(list(enumerate(cfg.channel_mults))):
            for _ in range(cfg.num_res_blocks + 1):
                blk = nn.ModuleList([ResBlock(cur + skips.pop(), ch * mult, cfg.emb_dim, cfg.dropout)])
                cur = ch * mult
                if res in cfg.attn_resolutions:
                    blk.append(Attention(cur))
                self.up.append(blk)
            if li != 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cur, cur, 3, padding=1)]))
                res *= 2
        self.out_norm = nn.GroupNorm(_groups(cur), cur)
        self.out = nn.Conv2d(cur, cfg.out_channels, 3, padding=1)
        _zero_init(self.out)

    def _fourier(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for n in self.cfg.fourier_n:
            f = (2.0**n) * math.pi * x
            feats += [torch.sin(f), torch.cos(f)]
        return torch.cat(feats, dim=1)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        emb = self.emb(noise_embedding(c_noise, self.cfg.emb_dim))
        if self.cfg.fourier_features:
            x = self._fourier(x)
        h = self.stem(x)
        hs = [h]
        for blk in cast(list[nn.ModuleList], self.down):
            if isinstance(blk[0], ResBlock):
                h = blk[0](h, emb)
                for extra in blk[1:]:
                    h = extra(h)
            else:
                h = blk[0](h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for blk in cast(list[nn.ModuleList], self.up):
            if isinstance(blk[0], ResBlock):
                h = blk[0](torch.cat([h, hs.pop()], dim=1), emb)
                for extra in blk[1:]:
                    h = extra(h)
            else:
                h = blk[1](blk[0](h))
        return self.out(F.silu(self.out_norm(h)))
