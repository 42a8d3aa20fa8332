"""Super-resolution orchestration: image (or raw k-space) → low-resolution k-space → k-space-guided VDM → image.

No printing and no argument parsing: the job comes in a :class:`SuperresJob`, progress goes out through
``progress(event: dict)`` with event["type"] in {"progress", "slices"}.

Inputs (:func:`load_superres_input`): a NIfTI / DICOM magnitude image or ``.npy`` array (``io.detect.load_image``),
or raw k-space (fastMRI / ISMRMRD h5), which is turned into the zero-filled root-sum-of-squares image of its
k-space (readout oversampling removed, fastMRI's recon crop applied) and then treated like an image.

Resolution plan (:func:`plan_resolution`), per in-plane axis:
  * input matrix == ``--from``: the input *is* the low-resolution acquisition; its k-space y_0 = F_{hw} x_low is the
    centre block of the unknown high-resolution k-space (intensity-scaled, see ``samplers.vdm``). No reference.
  * input matrix larger: it is degraded retrospectively to ``--from`` (k-space crop, y_0 = P^{-1}(Lambda) F x),
    and, when the input is at least the ``--to`` matrix, the output is compared with it (the input itself, or
    its k-space crop to ``--to`` when it is larger): PSNR / SSIM of mrdiff and of the sinc (zero-pad), bicubic and
    bilinear baselines.
Any target matrix: the prior is fully convolutional (images are zero-padded to a multiple of its downsampling
factor inside the denoiser); it was trained at the voxel sizes its config.json lists ("voxel_sizes_mm").

Normalisation: each slice is divided by the 99th percentile of its sinc (zero-padded) estimate — the prior's
documented normalisation applied to the initial estimate — and multiplied back at the end.
Output geometry: ``Geometry.for_slices(...).scaled(fy, fx)`` of the input geometry (same field of view, voxel size
/ factor). Outputs go through the shared writer :class:`~mrdiff_cli.io.outputs.Outputs` (NIfTI / DICOM, variance /
std / samples, metrics JSON and previews; DICOM sidecars inside the series folder).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..errors import InputError, UsageError
from ..io.base import crop_image
from ..io.calibration_png import write_calibration_png
from ..io.detect import RAW_FORMATS, detect_format, load_image, open_input
from ..io.outputs import Outputs
from ..metrics import volume_metrics
from ..ops.fft import fft2c, ifft2c, rss
from ..ops.operators import resize_image
from ..ops.superres import SuperResOp, estimate_image_noise, measure_lowres, zero_pad_upsample
from ..priors.bundle import read_config
from ..priors.loading import load_prior
from ..priors.vdm import VDM, vdm_from_score
from ..samplers import TASK_SAMPLERS, get_sampler
from ..samplers.adapters import VDMDenoiser
from ..samplers.dc import MagnitudeKspaceDC, RealKspaceDC
from ..samplers.noise import running_mean_var, sample_generator
from ..samplers.schedules import karras_sigmas, vdm_sigmas
from ..types import Geometry, SliceSpec
from .calibration import calibration_report
from .superres_calibration import (
    CALIBRATIONS,
    calibrate_variance,
    calibration_from_bundle,
    calibration_slices,
    measure_ring_spread,
    uncertainty_block,
)

DEFAULT_STEPS = {"fast": 20, "vdm": 100}
SR_SAMPLERS = TASK_SAMPLERS["superres"]
CONSISTENCY = ("auto", "magnitude", "linear")
RAW_DESCRIPTION = "zero-filled root-sum-of-squares of the raw k-space"


@dataclass(frozen=True)
class SuperresOptions:
    """The sampler settings of a super-resolution run: checked and completed once, when built (UsageError naming
    the parameter at fault); ``steps`` None becomes the sampler's default there, so every SuperresOptions holds an
    int. Frozen: derive a changed one with :func:`dataclasses.replace` (which checks the result again; it keeps the
    resolved ``steps``, so pass ``steps=None`` with a new ``sampler`` to take that sampler's default)."""

    sampler: str = "fast"  # fast: denoise -> consistency on the measured block -> renoise; vdm: the seed's sampler
    steps: int | None = None  # None: DEFAULT_STEPS[sampler] (resolved in __post_init__)
    guidance: float = 1.0  # vdm: the seed's lambda
    noise: str | float = "auto"  # "auto" (estimated from the data), "none" (hard consistency) or the image noise std
    sigma_max: float = 1.0  # fast: start level of the Karras schedule (normalised intensities)
    sigma_min: float = 0.01
    zeta: float | str | None = None  # fast: renoise mix, a number or "ancestral" (None: renoise_zeta)
    # fast: "magnitude" (the low-resolution image is a magnitude: consistency with |L x|), "linear" (with L x),
    # or "auto": magnitude when the low-resolution image is real and non-negative (magnitude / RSS inputs)
    consistency: str = "auto"
    nonneg: bool = True  # magnitude output: clip the (ringing) negatives; False keeps exact low-k consistency
    samples: int = 1
    seed: int = 0
    batch_size: int = 16
    device: str = "cpu"
    # K > 1: "model" scales the spread per volume by the extrapolation-ring hold-out (tasks.superres_calibration,
    # the bundle's constants or the defaults); "none" keeps the raw sample spread
    calibration: str = "model"

    def __post_init__(self) -> None:
        _check_options(self)
        if self.steps is None:  # frozen: the one derived value is set here, once
            object.__setattr__(self, "steps", DEFAULT_STEPS[self.sampler])


@dataclass(frozen=True)
class SuperresJob:
    input: str
    output: str
    from_hw: tuple[int, int]
    to_hw: tuple[int, int]
    fmt: str | None = None
    save_samples: bool = False
    metrics: bool = True
    preview: bool = False
    overwrite: bool = False
    slices: SliceSpec | None = None
    options: SuperresOptions = field(default_factory=SuperresOptions)


@dataclass
class ResolutionPlan:
    mode: str  # "acquisition" | "retrospective"
    input_hw: tuple[int, int]
    from_hw: tuple[int, int]
    to_hw: tuple[int, int]
    factors: tuple[float, float]  # output / input matrix per axis (for the geometry)
    reference: str | None  # None | "input" | "input k-space cropped to --to"


def parse_matrix(spec: str | int | tuple[int, int], option: str | None = None) -> tuple[int, int]:
    """'64' → (64, 64); '64x48' → (64, 48) (rows x columns, i.e. H x W). ``option``: the parameter the spec came
    from (``from_hw`` / ``to_hw``), named by the UsageError of a bad spec."""
    what = "" if option else "matrix "
    if isinstance(spec, tuple):
        h, w = spec
    elif isinstance(spec, int):
        h = w = spec
    else:
        parts = str(spec).lower().replace("×", "x").split("x")
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise UsageError(f"{what}{spec!r}: expected N or HxW, e.g. 64 or 64x48", option=option) from None
        if len(vals) == 1:
            h = w = vals[0]
        elif len(vals) == 2:
            h, w = vals
        else:
            raise UsageError(f"{what}{spec!r}: expected N or HxW, e.g. 64 or 64x48", option=option)
    if h < 2 or w < 2:
        raise UsageError(f"{what}{spec!r}: matrix sizes must be >= 2", option=option)
    return int(h), int(w)


def plan_resolution(input_hw: tuple[int, int], from_hw: tuple[int, int], to_hw: tuple[int, int],
                    model_hw: tuple[int, int] | None = None) -> ResolutionPlan:
    """Decide how the input is used (see the module docstring); UsageError for impossible combinations."""
    ih, iw = input_hw
    fh, fw = from_hw
    th, tw = to_hw
    if fh > th or fw > tw or (fh, fw) == (th, tw):
        raise UsageError(f"{fh}x{fw} must be smaller than `to_hw` {th}x{tw} (per axis, not equal)", option="from_hw")
    if (ih, iw) == (fh, fw):
        return ResolutionPlan("acquisition", (ih, iw), (fh, fw), (th, tw), (th / ih, tw / iw), None)
    if ih < fh or iw < fw:
        raise UsageError(f"input matrix {ih}x{iw} is smaller than `from_hw` {fh}x{fw}")
    if (ih, iw) == (th, tw):
        ref = "input"
    elif ih >= th and iw >= tw:
        ref = "input k-space cropped to --to"
    else:
        ref = None
    return ResolutionPlan("retrospective", (ih, iw), (fh, fw), (th, tw), (th / ih, tw / iw), ref)


# ------------------------------------------------------------------------------------------------ model / input


def load_superres_model(spec: str | None, *, offline: bool = False, device: str = "cpu"):
    """Resolve and load a 'vdm' model → (VDM, info). A score bundle that lists 'vdm' in its tasks is wrapped with
    :func:`~mrdiff_cli.priors.vdm.vdm_from_score`: its noise schedule is a fresh gamma, linear in t from gamma_min
    to gamma_max (sigma_ve geometric from 0.0013 to 12.2), since a score bundle has no learned schedule."""
    model, info = load_prior(spec, "vdm", offline=offline, device=device)
    config = read_config(info["path"])
    if isinstance(model, VDM):
        info["schedule"] = "learned gamma (VDM bundle)"
    else:
        model = vdm_from_score(model)
        info["schedule"] = "linear gamma (score bundle wrapped as a VDM)"
    with torch.no_grad():
        info["gamma_min"] = float(model.gamma.gamma_min)
        info["gamma_max"] = float(model.gamma.gamma_max)
    info["resolution"] = [int(v) for v in config.get("resolution", [model.unet_cfg.resolution] * 2)]
    return model, info


def load_superres_input(path: str | Path) -> tuple[np.ndarray, Geometry, str]:
    """→ ((slices, H, W) float32 magnitude, Geometry, description of what the image is). Format from the content."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    is_npy = False
    if p.is_file():
        with open(p, "rb") as fh:
            is_npy = fh.read(6) == b"\x93NUMPY"
    fmt = "npy" if is_npy else detect_format(p)
    if fmt in RAW_FORMATS:
        return _raw_to_image(p, fmt)  # raw k-space with NaN/Inf is refused by its reader
    vol, geom = load_image(p)
    bad = int(vol.size - np.count_nonzero(np.isfinite(vol)))
    if bad:  # the rule (docs/superres.md): non-finite voxels become 0, with a warning
        warnings.warn(f"{p.name}: {bad} NaN/Inf voxel(s) set to 0", stacklevel=2)
        vol = np.where(np.isfinite(vol), vol, 0).astype(np.float32)
        return vol, geom, f"magnitude image ({bad} NaN/Inf voxels set to 0)"
    return vol, geom, "magnitude image"


def _raw_to_image(p: Path, fmt: str) -> tuple[np.ndarray, Geometry, str]:
    with open_input(p, fmt) as reader:  # k-space at the recon readout; images cropped to the file's recon matrix
        for note in reader.info.notes:
            warnings.warn(note, stacklevel=2)
        out = []
        for _, k in reader.iter_slices(4):  # undersampled files hold zeros where nothing was sampled
            out.append(crop_image(rss(ifft2c(torch.as_tensor(k)), dim=1).numpy(), reader.info.image_shape))
        vol = np.concatenate(out).astype(np.float32)
        desc = RAW_DESCRIPTION + (" (undersampled, zero-filled)" if reader.undersampled else "")
        return np.ascontiguousarray(vol, dtype=np.float32), reader.geometry, desc


# ------------------------------------------------------------------------------------------------ core


def lowres_kspace(vol: torch.Tensor, plan: ResolutionPlan) -> torch.Tensor:
    """y_0 (S, h, w) complex: the k-space of the low-resolution image — the input's own (acquisition) or that of
    its retrospective degradation (centre crop of its k-space, same intensity)."""
    if plan.mode == "acquisition":
        return fft2c(vol.to(torch.complex64))
    return measure_lowres(vol, plan.from_hw)


def baselines(y: torch.Tensor, to_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Classical upsamplings of the low-resolution data: sinc (k-space zero-padding), bicubic and bilinear
    (torch ``interpolate`` of the low-resolution magnitude image, align_corners=False)."""
    low = ifft2c(y).abs()[:, None].float()
    return {
        "sinc": zero_pad_upsample(y, to_hw).float(),
        "bicubic": F.interpolate(low, size=tuple(to_hw), mode="bicubic", align_corners=False)[:, 0],
        "bilinear": F.interpolate(low, size=tuple(to_hw), mode="bilinear", align_corners=False)[:, 0],
    }


def quantile_scale(img: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Per-slice q-quantile of |img| (S,) — the prior's normalisation; 1 where it is 0."""
    s = torch.quantile(img.abs().reshape(img.shape[0], -1).float(), q, dim=1)
    return torch.where(s > 0, s, torch.ones_like(s))


def lowres_noise_sigma(y: torch.Tensor, noise: str | float) -> torch.Tensor | None:
    """Noise std of the low-resolution images (S,) in their intensity units: estimated from the data
    (``"auto"``: Donoho's MAD of the finest diagonal Haar detail of the low-resolution image), given, or None
    (``"none"``: hard consistency)."""
    if noise == "none":
        return None
    if noise == "auto":
        return estimate_image_noise(ifft2c(y).abs())
    return torch.full((y.shape[0],), float(noise))


def is_magnitude_image(y: torch.Tensor, tol: float = 1e-4) -> bool:
    """True when every low-resolution image ifft2c(y) (S, h, w) is real and non-negative (to ``tol`` of its
    peak): a magnitude image or an RSS combination, whose low-resolution image cannot hold the negative ringing
    lobes of a real image's — the case for :class:`~mrdiff_cli.samplers.dc.MagnitudeKspaceDC`."""
    img = ifft2c(y)
    peak = img.abs().reshape(img.shape[0], -1).amax(dim=1).clamp_min(1e-30).reshape(-1, 1, 1)
    return bool(((img.imag.abs() <= tol * peak) & (img.real >= -tol * peak)).all())


def resolve_consistency(consistency: str, y: torch.Tensor, retrospective: bool = False) -> str:
    """"auto" → "linear" for a retrospective degradation (its low-resolution image is L x itself, negative lobes
    included) and otherwise "magnitude" when :func:`is_magnitude_image` holds; an explicit choice is kept."""
    if consistency != "auto":
        return consistency
    return "linear" if retrospective or not is_magnitude_image(y) else "magnitude"


def renoise_zeta(opts: SuperresOptions) -> float | str:
    """The fast sampler's renoise mix: ``opts.zeta``, else fresh noise every step (zeta = 1) for one sample and for
    K > 1 alike, as reconstruction does. DDPM-ancestral renoising (``zeta="ancestral"``) keeps more of the posterior
    spread, but on the tune split (64->128 and 32->128, noise-free and 35 dB, 4 slices of each tune volume,
    ``benchmarks/superres_uncertainty.py``) the mean of 8 ancestral samples was 0.0-0.2 dB *below* one zeta = 1
    sample and 0.3-0.7 dB below the mean of 8 zeta = 1 samples, for 0.00-0.04 more Spearman local of the
    ring-calibrated std (docs/superres.md, "Uncertainty")."""
    return opts.zeta if opts.zeta is not None else 1.0


def _sample_chunk(model: VDM, yc: torch.Tensor, A: SuperResOp, opts: SuperresOptions, K: int,
                  gens: list[torch.Generator], noise_k: torch.Tensor | None, cb: Callable[[int, int], None] | None,
                  magnitude: bool = False) -> torch.Tensor:
    """K samples of each measurement in yc (n, h, w) (A's units, normalised) → (K * n, 1, H, W), sample-major."""
    n = yc.shape[0]
    H, W = A.out_hw
    steps = opts.steps  # resolved when the options were built
    assert steps is not None
    den = VDMDenoiser(model, opts.batch_size)
    if opts.sampler == "vdm":
        x_init = torch.zeros(K * n, 1, H, W, device=yc.device)
        return get_sampler("vdm")(den, yc, A, vdm_sigmas(model.gamma, steps), x_init, lam=opts.guidance,
                                  generator=gens[0], callback=cb)
    x_init = zero_pad_upsample(A.to_lowres(yc), (H, W)).repeat(K, 1, 1)[:, None]
    dc_cls = MagnitudeKspaceDC if magnitude else RealKspaceDC
    dc = dc_cls(1.0, None if noise_k is None else noise_k.repeat(K))
    sigmas = karras_sigmas(steps, opts.sigma_min, opts.sigma_max)
    return get_sampler("fast")(den, yc.repeat(K, 1, 1)[:, None], A, sigmas, x_init, dc=dc,
                               zeta=renoise_zeta(opts),
                               generator=gens, callback=cb)


def superres_slices(
    model: VDM,
    y: torch.Tensor,
    to_hw: tuple[int, int],
    opts: SuperresOptions,
    progress: Callable[[int, int, int, int], None] | None = None,
    keep_samples: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Super-resolve low-resolution k-space y (S, h, w) → (mean (S, H, W), variance or None, samples (K, S, H, W) or None).

    The measurement model is y = P^{-1}(Lambda) F x + n (:class:`~mrdiff_cli.ops.superres.SuperResOp`); the
    sampler is ``opts.sampler`` through the common sampler contract. Each slice is normalised by the 99th
    percentile of its sinc estimate. Slices go in chunks of max(1, batch_size // K) slices x K samples. fast:
    sample k of slice s draws from its own generator (seed, k, s), so batching does not change the result; vdm:
    chunk c uses one generator seeded with ``seed + 1_000_003 * first_slice``. The variance is the raw sample
    variance (:mod:`.superres_calibration` calibrates it).
    """
    K = max(1, int(opts.samples))
    noise = lowres_noise_sigma(y, opts.noise)

    def gens_for(c0: int, n: int) -> list[torch.Generator]:
        if opts.sampler == "vdm":
            return [torch.Generator().manual_seed(int(opts.seed) + 1_000_003 * c0)]
        return [sample_generator(opts.seed, k, c0 + j) for k in range(K) for j in range(n)]

    means, vars_, kept = [], [], []
    for _, x in sample_chunks(model, y, to_hw, opts, K, noise, gens_for, progress):
        mean, var, _ = running_mean_var(iter(x))
        means.append(mean.cpu())
        vars_.append(var.cpu())
        if keep_samples:
            kept.append(x.cpu())
    mean = torch.cat(means)
    var_all = torch.cat(vars_) if K > 1 else None
    samples = torch.cat(kept, dim=1) if keep_samples else None
    return mean, var_all, samples


def sample_chunks(
    model: VDM,
    y: torch.Tensor,
    to_hw: tuple[int, int],
    opts: SuperresOptions,
    K: int,
    noise: torch.Tensor | None,
    gens_for: Callable[[int, int], list[torch.Generator]],
    progress: Callable[[int, int, int, int], None] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """The samples of :func:`superres_slices`, chunk by chunk: (first slice c0, (K, n, H, W) in the input's
    intensity units, clipped at 0 with ``opts.nonneg``). ``noise``: the low-resolution images' noise std (S,)
    (:func:`lowres_noise_sigma`; None: hard consistency); ``gens_for(c0, n)``: the generators of a chunk (fast:
    K * n, sample-major; vdm: one). The ring hold-out (:mod:`.superres_calibration`) runs through here too."""
    dev = next(model.parameters()).device
    S, h, w = y.shape
    H, W = to_hw
    A = SuperResOp((H, W), (h, w), dev)
    chunk = max(1, opts.batch_size // K)
    magnitude = opts.sampler == "fast" and resolve_consistency(opts.consistency, y) == "magnitude"  # vdm: unused
    for c0 in range(0, S, chunk):
        yc = y[c0 : c0 + chunk].to(dev)
        n = yc.shape[0]
        q = quantile_scale(zero_pad_upsample(yc, (H, W)))
        ys = A.from_lowres(yc) / q.reshape(-1, 1, 1).to(dev)
        noise_k = None if noise is None else (noise[c0 : c0 + n].to(dev) / q.to(dev)) * A.scale
        cb = None
        if progress is not None:
            cb = lambda i, T, c0=c0: progress(c0, S, i, T)  # noqa: E731
        x = _sample_chunk(model, ys, A, opts, K, gens_for(c0, n), noise_k, cb, magnitude=magnitude)
        x = x[:, 0].reshape(K, n, H, W) * q.reshape(1, -1, 1, 1).to(x.device)
        yield c0, (x.clamp_min(0) if opts.nonneg else x)


def _check_options(opts: SuperresOptions) -> None:
    """UsageError, naming the parameter, for options out of range (SuperresOptions.__post_init__)."""
    def need(ok: bool, option: str, text: str) -> None:
        if not ok:
            raise UsageError(text, option=option)

    need(opts.sampler in SR_SAMPLERS, "sampler",
         f"unknown super-resolution sampler {opts.sampler!r} (choose from {', '.join(SR_SAMPLERS)})")
    need(opts.steps is None or opts.steps >= 1, "steps", f"must be >= 1, got {opts.steps}")
    need(0.0 <= opts.guidance <= 1.0, "guidance", f"lambda must be in [0, 1], got {opts.guidance}")
    need(opts.noise in ("auto", "none") or (isinstance(opts.noise, (int, float)) and opts.noise >= 0), "noise",
         f"expected 'auto', 'none' or a number >= 0, got {opts.noise!r}")
    need(opts.consistency in CONSISTENCY, "consistency",
         f"unknown consistency {opts.consistency!r} (choose from {', '.join(CONSISTENCY)})")
    need(opts.samples >= 1, "samples", f"must be >= 1, got {opts.samples}")
    need(opts.seed >= 0, "seed", f"must be >= 0, got {opts.seed}")
    need(opts.batch_size >= 1, "batch_size", f"must be >= 1, got {opts.batch_size}")
    need(opts.calibration in CALIBRATIONS, "calibration",
         f"unknown calibration {opts.calibration!r} (choose from {', '.join(CALIBRATIONS)})")


def prepare_superres(job: SuperresJob) -> None:
    """Everything that can fail before the model loads (the options were checked when built): the input's
    existence, the outputs (new or overwritten when asked, folders writable)."""
    if not Path(job.input).exists():
        raise InputError(f"{job.input}: file not found")
    _outputs(job)


def _outputs(job: SuperresJob) -> Outputs:
    """The shared writer of this job, checked up front (fail before any work when outputs exist)."""
    outputs = Outputs(job.output, job.fmt, job.overwrite)
    k = job.options.samples
    suffixes = (["_variance", "_std"] if k > 1 else []) + ([f"_sample{i:03d}" for i in range(k)] if job.save_samples else [])
    outputs.check(suffixes, (["metrics"] if job.metrics else []) + (["preview"] if job.preview else []))
    return outputs


def run_superres(job: SuperresJob, model: VDM, model_info: dict[str, Any], progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run one super-resolution job; write the outputs; return the summary (what ``--json`` prints)."""
    emit = progress or (lambda e: None)
    opts = job.options
    outputs = _outputs(job)
    src = Path(job.input)
    vol_np, geom, input_kind = load_superres_input(src)
    n_all = vol_np.shape[0]
    idx = job.slices.indices(n_all) if job.slices else list(range(n_all))
    res = model_info.get("resolution")
    plan = plan_resolution(tuple(vol_np.shape[-2:]), job.from_hw, job.to_hw, tuple(res) if res else None)
    vol = torch.from_numpy(np.ascontiguousarray(vol_np[idx], dtype=np.float32))
    y = lowres_kspace(vol, plan)
    if opts.sampler == "fast":
        opts = replace(opts, consistency=resolve_consistency(opts.consistency, y, plan.mode == "retrospective"))
        job = replace(job, options=opts)
    t0 = time.time()
    batch = max(1, opts.batch_size // max(1, opts.samples))

    def on_step(done_slices: int, n: int, i: int, steps: int) -> None:
        emit({"type": "progress", "input": str(src), "slices_done": done_slices, "slices": n, "step": i, "steps": steps,
              "batch": batch})

    cal, source, spread = None, None, None
    if opts.samples > 1 and opts.calibration == "model":  # the ring hold-out first (its own noise streams)
        cal, source = calibration_from_bundle(model_info.get("path"))
        emit({"type": "tuning", "input": str(src), "slices_done": 0, "slices": len(idx), "pilot": "calibration"})
        pos = calibration_slices(len(idx))
        spread = measure_ring_spread(model, y, plan.to_hw, opts, pos, slice_ids=[idx[p] for p in pos],
                                     inner=cal.inner, samples=cal.samples)
    mean, var, samples = superres_slices(model, y, plan.to_hw, opts, on_step, keep_samples=job.save_samples)
    applied = "none (raw sample spread)"
    if var is not None and cal is not None:
        var, applied = calibrate_variance(var, y, opts, cal, spread)
    elapsed = time.time() - t0
    emit({"type": "slices", "input": str(src), "slices_done": len(idx), "slices": len(idx)})
    geom_out = geom.for_slices(idx, (vol_np.shape[1], vol_np.shape[2], n_all)).scaled(*plan.factors)
    summary = _summary(job, model, model_info, plan, geom, geom_out, idx, input_kind, elapsed)
    if var is not None:
        summary["uncertainty"] = uncertainty_block(opts, cal, source, spread, applied)
    arrays = {"mean": mean.numpy().astype(np.float32), "var": None if var is None else var.numpy().astype(np.float32),
              "samples": None if samples is None else samples.numpy(), "baselines": baselines(y, plan.to_hw)}
    arrays["ref"] = _compare(summary, plan, vol, arrays)
    _write(job, outputs, plan, geom_out, arrays, summary)
    return summary


def _summary(job: SuperresJob, model: VDM, model_info: dict[str, Any], plan: ResolutionPlan, geom: Geometry, geom_out: Geometry,
             idx: list[int], input_kind: str, elapsed: float) -> dict[str, Any]:
    opts = job.options
    assert opts.steps is not None  # resolved when the options were built
    return {
        "mrdiff_version": __version__, "input": str(job.input), "input_kind": input_kind, "output": {},
        "mode": plan.mode, "input_matrix": list(plan.input_hw), "from": list(plan.from_hw), "to": list(plan.to_hw),
        "factor": [plan.to_hw[0] / plan.from_hw[0], plan.to_hw[1] / plan.from_hw[1]],
        "voxel_size_mm_in": [float(v) for v in geom.voxel_size],
        "voxel_size_mm_out": [float(v) for v in geom_out.voxel_size],
        "slices": idx, "sampler": opts.sampler, "steps": opts.steps, "nfe": opts.steps + 1,
        "guidance": opts.guidance, "noise": opts.noise if opts.sampler == "fast" else None,
        "consistency": opts.consistency if opts.sampler == "fast" else None,
        "samples": opts.samples, "seed": opts.seed, "batch_size": opts.batch_size,
        "normalization": {"kind": "quantile", "quantile": 0.99, "of": "sinc (zero-padded) estimate, per slice"},
        "seconds_total": elapsed, "seconds_per_slice": elapsed / len(idx),
        "device": str(next(model.parameters()).device), "model": model_info,
    }


def _compare(summary: dict[str, Any], plan: ResolutionPlan, vol: torch.Tensor, arrays: dict[str, Any]) -> np.ndarray | None:
    """Metrics of mrdiff and the baselines against the reference, when the plan has one (and calibration for K > 1)."""
    if plan.reference is None:
        return None
    ref = (vol if plan.reference == "input" else resize_image(vol, plan.to_hw).abs()).numpy().astype(np.float32)
    summary["reference"] = plan.reference
    summary["metrics"] = volume_metrics(arrays["mean"], ref)
    summary["baselines"] = {k: volume_metrics(v.numpy(), ref)["mean"] for k, v in arrays["baselines"].items()}
    if arrays["var"] is not None:
        lowk = np.zeros(plan.to_hw, dtype=np.float32)  # the measured (low-frequency) block of k-space
        (th, tw), (fh, fw) = plan.to_hw, plan.from_hw
        lowk[th // 2 - fh // 2: th // 2 - fh // 2 + fh, tw // 2 - fw // 2: tw // 2 - fw // 2 + fw] = 1
        summary["calibration"] = calibration_report(arrays["mean"], np.sqrt(arrays["var"]), ref, lowk)
    return ref


def _write(job: SuperresJob, outputs: Outputs, plan: ResolutionPlan, geom_out: Geometry, arrays: dict[str, Any],
           summary: dict[str, Any]) -> None:
    """Every file through the shared writer (io.outputs); the metrics JSON last."""
    opts = job.options
    (fh, fw), (th, tw) = plan.from_hw, plan.to_hw
    desc = f"mrdiff {__version__} superres {fh}x{fw}->{th}x{tw} {opts.sampler}" + (f" lam{opts.guidance:g}" if opts.sampler == "vdm" else "")
    outputs.volume("image", arrays["mean"], geom_out, desc)
    if arrays["var"] is not None:
        outputs.spread(arrays["var"], geom_out, desc)
    if arrays["samples"] is not None:
        outputs.samples(arrays["samples"], geom_out, desc)
    if job.metrics and "calibration" in summary:
        outputs.sidecar("calibration", "calibration_png",
                        lambda path, ow: write_calibration_png(path, summary["calibration"], overwrite=ow))
    if job.preview:
        mid = arrays["mean"].shape[0] // 2
        panels = [("bicubic", arrays["baselines"]["bicubic"][mid].numpy()),
                  ("sinc", arrays["baselines"]["sinc"][mid].numpy()), ("mrdiff", arrays["mean"][mid])]
        if arrays["ref"] is not None:
            panels.append(("reference", arrays["ref"][mid]))
        if arrays["var"] is not None:
            panels.append(("std", np.sqrt(arrays["var"][mid])))
        outputs.preview(panels)
    summary["output"] = outputs.written
    if job.metrics:
        outputs.metrics_json(summary)
