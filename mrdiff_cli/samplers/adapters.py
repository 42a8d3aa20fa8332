"""Adapters that let a real-valued magnitude prior act on complex MRI images.

A prior is anything with ``denoise(x, sigma)`` for real x (B, 1, H, W) (the EDM prior, or the
closed-form ``GaussianPrior`` in tests/closed_form.py). The adapters return ``denoise_fn(x, sigma)`` for complex
images x of shape (..., H, W), batched through the network in chunks of ``batch_size``.

- ``real``:     x is real-valued (seed's real-valued single-coil case); imaginary part is dropped.
- ``realimag``: real and imaginary parts pass separately through the prior (seed's complex / SSOS modes).
- ``phase``:    demodulate a smooth phase estimate phi, denoise Re(x e^{-i phi}) with the prior and shrink
                the small residual Im(x e^{-i phi}) with a zero-mean Gaussian prior of std ``resid_std``
                (MMSE: v s^2 / (s^2 + sigma^2)); re-modulate. mrdiff's default for SENSE / single-coil data.
                At the last noise levels (sigma < ``refine_below``) phi is re-estimated from the iterate at a
                finer resolution.
- ``complex``:  a complex-valued prior (two channels: real and imaginary, ``mrdiff train score --complex``)
                denoises the complex image itself; no phase estimate. Chosen automatically for such a prior.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from ..ops.fft import fft2c, ifft2c
from .protocols import Denoiser, ScorePrior


def size_multiple(prior: ScorePrior) -> int:
    """The UNet's downsampling factor 2^(levels - 1): image sides must be multiples of it."""
    cfg = getattr(prior, "unet_cfg", None)
    return 2 ** (len(cfg.channel_mults) - 1) if cfg is not None else 1


def on_padded(net_fn: Callable[..., torch.Tensor], multiple: int, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
    """``net_fn(x, *args)`` for images (B, C, H, W) of any size: zero-padded (centred; MR backgrounds are ~0) to
    a multiple of the network's downsampling factor, then cropped back. The prior is fully convolutional."""
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if not ph and not pw:
        return net_fn(x, *args)
    xp = torch.nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    return net_fn(xp, *args)[..., ph // 2 : ph // 2 + H, pw // 2 : pw // 2 + W]


def padded_denoise(prior: ScorePrior, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """prior.denoise on (B, 1, H, W) of any size (:func:`on_padded`)."""
    return on_padded(prior.denoise, size_multiple(prior), x, sigma)


def prior_channels(prior: ScorePrior) -> int:
    """Image channels the prior denoises: 1 (magnitude prior) or 2 (complex prior: real, imaginary)."""
    cfg = getattr(prior, "unet_cfg", None)
    return int(getattr(cfg, "in_channels", 1)) if cfg is not None and not getattr(cfg, "fourier_features", False) else 1


def prior_demod_frac(prior: ScorePrior | None) -> float:
    """A complex prior's input demodulation: the fraction of the matrix whose low-resolution phase is removed before
    the network (``UNetConfig.demod_frac``; 0: it sees the raw complex image)."""
    cfg = getattr(prior, "unet_cfg", None)
    return float(getattr(cfg, "demod_frac", 0.0) or 0.0) if is_complex_prior(prior) else 0.0


def is_complex_prior(prior: ScorePrior | None) -> bool:
    """Whether ``prior`` is a complex-valued (two-channel) score prior."""
    return prior is not None and prior_channels(prior) == 2


def batched_real_denoise(prior: ScorePrior, x: torch.Tensor, sigma: float, batch_size: int, autocast: torch.dtype | None = None,
                         channels: int = 1) -> torch.Tensor:
    """Denoise a stack of real images (..., H, W) through the prior in chunks; ``channels`` = 2: the stack is
    (..., 2, H, W), each pair one two-channel image of a complex prior."""
    shape = x.shape
    flat = x.reshape(-1, channels, shape[-2], shape[-1]).float()
    outs = []
    for i in range(0, flat.shape[0], batch_size):
        chunk = flat[i : i + batch_size]
        sig = torch.full((chunk.shape[0],), float(sigma), device=chunk.device)
        with torch.no_grad(), torch.autocast(chunk.device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            outs.append(padded_denoise(prior, chunk, sig).float())
    return torch.cat(outs).reshape(shape)


def make_denoiser(
    prior: ScorePrior,
    mode: str = "phase",
    phase: torch.Tensor | None = None,
    resid_std: float = 0.005,
    batch_size: int = 32,
    autocast: torch.dtype | None = None,
    refine_below: float = 0.0,
    refine_frac: float = 0.5,
) -> Denoiser:
    """Return denoise_fn(x complex (..., H, W), sigma) -> x0 complex, for the given complex mode.

    Phase mode: ``phase`` (the low-resolution phase of the initial image) is demodulated while sigma >=
    ``refine_below``; below it the phase of the current input itself, low-passed to a centre block of
    ``refine_frac`` x the matrix (:func:`lowres_phase`), so phase detail that the initial estimate misses leaves the
    imaginary residual once the iterate has resolved it (0 = off)."""

    def joint(x: torch.Tensor, sigma: float) -> torch.Tensor:
        d = batched_real_denoise(prior, torch.stack([x.real, x.imag], dim=-3), sigma, batch_size, autocast, channels=2)
        return torch.complex(d[..., 0, :, :], d[..., 1, :, :])

    if is_complex_prior(prior):
        if mode == "realimag":
            raise ValueError("complex mode 'realimag' needs a magnitude prior; this prior is complex-valued")
        if mode == "real":  # a real image: the complex prior sees it with zero imaginary part
            return lambda x, sigma: joint(torch.complex(x.real, torch.zeros_like(x.real)), sigma).real.to(torch.complex64)
        if phase is not None:  # a demodulating complex prior (prior_demod_frac): it sees the residual phase only
            rot = torch.exp(-1j * phase).to(torch.complex64)
            return lambda x, sigma: joint(x * rot, sigma) * rot.conj()
        return joint
    if mode == "complex":
        raise ValueError("complex mode 'complex' needs a complex-valued prior (two channels)")

    def real(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return batched_real_denoise(prior, x.real, sigma, batch_size, autocast).to(torch.complex64)

    def realimag(x: torch.Tensor, sigma: float) -> torch.Tensor:
        both = torch.stack([x.real, x.imag])
        d = batched_real_denoise(prior, both, sigma, batch_size, autocast)
        return torch.complex(d[0], d[1])

    def phase_mode(x: torch.Tensor, sigma: float) -> torch.Tensor:
        ph = phase
        if refine_below > 0 and sigma < refine_below:  # late steps: the iterate's own, finer phase
            H, W = x.shape[-2:]
            ph = lowres_phase(x, max(1, int(round(refine_frac * min(H, W)))))
        rot = torch.exp(-1j * ph).to(torch.complex64) if ph is not None else None
        xd = x * rot if rot is not None else x
        r = batched_real_denoise(prior, xd.real, sigma, batch_size, autocast)
        im = xd.imag * (resid_std**2 / (resid_std**2 + sigma**2))
        out = torch.complex(r, im)
        return out * rot.conj() if rot is not None else out

    try:
        return {"real": real, "realimag": realimag, "phase": phase_mode}[mode]
    except KeyError:
        raise ValueError(f"unknown complex mode {mode!r}") from None


def lowres_image(x: torch.Tensor, width: int = 24) -> torch.Tensor:
    """Low-resolution complex image from a Hann-windowed central width × width k-space block (alias-free
    when the k-space centre is fully sampled)."""
    H, W = x.shape[-2:]
    wy = torch.hann_window(min(width, H) + 2, periodic=False, device=x.device)[1:-1]
    wx = torch.hann_window(min(width, W) + 2, periodic=False, device=x.device)[1:-1]
    win = torch.zeros(H, W, device=x.device)
    y0, x0 = H // 2 - len(wy) // 2, W // 2 - len(wx) // 2
    win[y0 : y0 + len(wy), x0 : x0 + len(wx)] = wy[:, None] * wx[None, :]
    return ifft2c(fft2c(x.to(torch.complex64)) * win)


def lowres_phase(x: torch.Tensor, width: int = 24) -> torch.Tensor:
    """Smooth phase estimate: phase of :func:`lowres_image`."""
    return torch.angle(lowres_image(x, width))


def demod_phase(x: torch.Tensor, frac: float) -> torch.Tensor:
    """The phase a demodulating complex prior removes (:func:`prior_demod_frac`): :func:`lowres_phase` over the
    central ``frac`` x min(H, W) of k-space (at least one pixel). Shared by training and reconstruction."""
    return lowres_phase(x, max(1, int(round(frac * min(x.shape[-2:])))))


class VDMLike(ScorePrior, Protocol):
    """What :class:`VDMDenoiser` needs of a model: ``denoise`` and the eps-prediction from log-SNR ``gamma``."""

    def eps_from_gamma(self, z: torch.Tensor, g: torch.Tensor, /) -> torch.Tensor: ...


class VDMDenoiser:
    """A VDM (or any model with ``denoise`` and ``eps_from_gamma``) as a sampler denoiser for real images
    (N, 1, H, W): ``D(x; sigma)`` and the cancellation-free ``eps(z, gamma)``, chunked by ``batch_size``."""

    def __init__(self, model: VDMLike, batch_size: int | None = None):
        self.model, self.batch_size = model, batch_size

    def _map(self, net_fn: Callable[..., torch.Tensor], x: torch.Tensor, per_item: torch.Tensor) -> torch.Tensor:
        """net_fn(x_chunk, per_item_chunk) over chunks of ``batch_size`` images, each padded (:func:`on_padded`)."""
        n = x.shape[0]
        step = n if not self.batch_size else max(1, int(self.batch_size))
        m = size_multiple(self.model)
        return torch.cat([on_padded(net_fn, m, x[i : i + step], per_item[i : i + step]) for i in range(0, n, step)])

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return self._map(self.model.denoise, x, torch.full((x.shape[0],), float(sigma), device=x.device))

    def eps(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        g = gamma.reshape(1).expand(z.shape[0]) if gamma.dim() == 0 else gamma
        return self._map(self.model.eps_from_gamma, z, g)
