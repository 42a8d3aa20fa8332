"""Training data for the priors: 2D magnitude slices from NIfTI volumes / fastMRI h5, resampled to the
target matrix and voxel size, normalised per slice, and augmented on the fly (seeded)."""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".h5", ".hdf5", ".npy")


def expand_inputs(items: list[str]) -> list[Path]:
    """Files, folders (recursive) and globs → sorted list of readable volume files."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.name.endswith(VOLUME_SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            hits = sorted(Path(h) for h in glob.glob(item, recursive=True) if Path(h).is_file())
            if not hits:
                raise InputError(f"{item}: no such file, folder or glob match")
            out += hits
    if not out:
        raise InputError("no training volumes found in the given inputs")
    return list(dict.fromkeys(out))  # a file named twice (folder + file) counts once


def split_volumes(paths: list[Path], val_fraction: float) -> tuple[list[Path], list[Path]]:
    """Hold out whole volumes for validation: ``round(val_fraction * n)`` (at least 1) of them, evenly spread over
    the sorted list, so the split is deterministic and no slice of a held-out volume is ever trained on."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"must be between 0 and 1, got {val_fraction:g}", option="val_fraction")
    paths = sorted(paths)
    n = len(paths)
    n_val = max(1, int(round(val_fraction * n)))
    if n - n_val < 1:
        raise InputError(f"cannot hold out {n_val} of {n} volume(s) for validation and still train; add volumes "
                         "or name the validation volumes (`val_inputs`)", option="val_fraction")
    picked = {int((i + 0.5) * n / n_val) for i in range(n_val)}
    return [p for i, p in enumerate(paths) if i not in picked], [p for i, p in enumerate(paths) if i in picked]


def _load_volume(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """→ (volume float32 in RAS-ish (x, y, z) order, voxel size mm); unreadable files → InputError."""
    try:
        return _read_volume(path)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel / h5py / numpy raise many kinds; the user needs one line
        msg = str(exc).strip().splitlines()
        raise InputError(f"{path}: cannot read as a training volume ({msg[0] if msg else type(exc).__name__})") from None


def _read_volume(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    name = path.name
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        img = nib.as_closest_canonical(nib.load(str(path)))
        data = np.asarray(img.dataobj, dtype=np.float32)
        while data.ndim > 3:
            data = data[..., 0]
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
        if data.ndim == 2:
            data, zooms = data[..., None], (zooms + (1.0,))[:3]
        return np.abs(data), zooms  # type: ignore[return-value]
    if name.endswith((".h5", ".hdf5")):
        import h5py

        with h5py.File(path, "r") as f:
            key = "reconstruction_rss" if "reconstruction_rss" in f else "reconstruction_esc" if "reconstruction_esc" in f else None
            if key is None:
                raise InputError(f"{path}: no reconstruction_rss/esc image to train on")
            data = np.asarray(f[key], dtype=np.float32)  # (slices, H, W)
        return np.transpose(data, (1, 2, 0)), (1.0, 1.0, 1.0)
    if name.endswith(".npy"):
        data = np.load(path, allow_pickle=False).astype(np.float32)
        if data.ndim == 2:
            data = data[..., None]
        return np.abs(data), (1.0, 1.0, 1.0)
    raise InputError(f"{path}: unsupported training file (use NIfTI, fastMRI h5 or .npy)")


def _resample(vol: np.ndarray, zooms: tuple[float, float, float], voxel: float, axes_inplane_only: bool) -> torch.Tensor:
    """Resample to isotropic ``voxel`` mm with a light anti-alias blur (torch, trilinear)."""
    t = torch.from_numpy(np.ascontiguousarray(vol))[None, None]
    factors = [z / voxel for z in zooms]
    if axes_inplane_only:
        factors[2] = 1.0
    # anti-alias: separable Gaussian with sigma ~ 0.4 / factor voxels along downsampled axes
    for ax, f in enumerate(factors):
        if f < 0.99:
            sig = 0.45 / f
            r = int(math.ceil(3 * sig))
            k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sig) ** 2)
            k = (k / k.sum()).reshape([1, 1] + [len(k) if i == ax else 1 for i in range(3)])
            pad = [0, 0, 0, 0, 0, 0]
            pad[2 * (2 - ax)] = pad[2 * (2 - ax) + 1] = r
            t = F.conv3d(F.pad(t, pad, mode="replicate"), k)
    size = [max(1, int(round(s * f))) for s, f in zip(vol.shape, factors, strict=False)]
    return F.interpolate(t, size=size, mode="trilinear", align_corners=False)[0, 0]


def _fit(img: torch.Tensor, matrix: int) -> torch.Tensor:
    """Centre crop / zero-pad a 2D slice to matrix × matrix."""
    h, w = img.shape
    out = torch.zeros(matrix, matrix, dtype=img.dtype)
    sh, sw = min(h, matrix), min(w, matrix)
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    Y0, X0 = (matrix - sh) // 2, (matrix - sw) // 2
    out[Y0 : Y0 + sh, X0 : X0 + sw] = img[y0 : y0 + sh, x0 : x0 + sw]
    return out


def normalize_slice(img: torch.Tensor, quantile: float = 0.99) -> tuple[torch.Tensor, float]:
    """Divide a magnitude slice by its q-quantile (the documented normalisation, same at inference)."""
    q = float(torch.quantile(img.abs().flatten().float(), quantile))
    q = q if q > 0 else 1.0
    return img / q, q


def extract_slices(
    paths: list[Path], matrix: int = 128, voxel: float = 2.0, axes: str = "all", min_fraction: float = 0.15
) -> tuple[torch.Tensor, list[int]]:
    """All usable normalised slices → (N, 1, matrix, matrix) float32 and the volume index of each.

    ``matrix`` is the field of view in voxels: slices are centre-cropped / zero-padded to it."""
    slices, vol_ids = [], []
    ax_list = {"all": (0, 1, 2), "axial": (2,), "coronal": (1,), "sagittal": (0,)}[axes]
    for vi, p in enumerate(paths):
        vol, zooms = _load_volume(p)
        # 2D images, fastMRI stacks and thick-slice volumes: in-plane slices only, no through-plane interpolation
        single = vol.shape[2] == 1 or p.name.endswith((".h5", ".hdf5")) or zooms[2] > 1.5 * voxel
        t = _resample(vol, zooms, voxel, axes_inplane_only=single)
        for ax in (ax_list if not single else (2,)):
            for i in range(t.shape[ax]):
                s = t.select(ax, i)
                s = torch.rot90(s, 1) if not single else s  # RAS → radiological-ish display orientation
                s = _fit(s, matrix)
                peak = float(s.max())
                if peak <= 0 or float((s > 0.1 * peak).float().mean()) < min_fraction * 0.25:
                    continue
                s, _ = normalize_slice(s)
                slices.append(s)
                vol_ids.append(vi)
    if not slices:
        raise InputError("no usable (non-empty) slices in the training inputs")
    return torch.stack(slices)[:, None], vol_ids


def field_for_voxel(matrix: int, voxel: float, base_voxel: float = 2.0) -> int:
    """Field of view in voxels at ``voxel`` mm for the FOV ``matrix * base_voxel`` mm (multiple of 8, >= matrix)."""
    return max(matrix, int(math.ceil(matrix * base_voxel / voxel / 8.0)) * 8)


def extract_multiscale(
    paths: list[Path], matrix: int, voxels: list[float], axes: str = "all", base_voxel: float = 2.0
) -> list[torch.Tensor]:
    """Slices resampled at each voxel size (same FOV, ``matrix * base_voxel`` mm) → one (N_v, 1, F_v, F_v)
    float16 tensor per voxel size (F_v = ``field_for_voxel``); training draws ``matrix``² patches from them, so
    one fully convolutional prior learns 2 mm whole slices and sub-millimetre texture alike."""
    groups = []
    for v in voxels:
        x, _ = extract_slices(paths, field_for_voxel(matrix, v, base_voxel), v, axes)
        groups.append(x.half())  # halves the memory of the 0.8 mm group; values are normalised to ~[0, 1.5]
    return groups


def random_patches(
    groups: list[torch.Tensor], batch: int, matrix: int, cfg: AugmentConfig, g: torch.Generator
) -> torch.Tensor:
    """A training batch: per sample a voxel-size group (uniformly), a slice, whole-slice augmentation, then a
    random ``matrix``² patch whose centre lies inside the slice's foreground bounding box."""
    which = torch.randint(0, len(groups), (batch,), generator=g)
    out = torch.empty(batch, 1, matrix, matrix)
    for gi in range(len(groups)):
        sel = (which == gi).nonzero().flatten()
        if len(sel) == 0:
            continue
        data = groups[gi]
        idx = torch.randint(0, len(data), (len(sel),), generator=g)
        x = augment(data[idx].float(), cfg, g)
        f = x.shape[-1]
        if f == matrix:
            out[sel] = x
            continue
        for j, img in enumerate(x):
            fg = (img[0] > 0.1).nonzero()
            lo = fg.min(0).values if len(fg) else torch.tensor([f // 2, f // 2])
            hi = fg.max(0).values if len(fg) else torch.tensor([f // 2, f // 2])
            c = [int(lo[d] + torch.rand(1, generator=g) * (hi[d] - lo[d] + 1)) for d in range(2)]
            y0, x0 = [min(max(0, ci - matrix // 2), f - matrix) for ci in c]
            out[sel[j]] = img[:, y0 : y0 + matrix, x0 : x0 + matrix]
    return out


@dataclass
class AugmentConfig:
    flip: bool = True
    rotate_deg: float = 12.0
    scale: tuple[float, float] = (0.85, 1.15)
    translate_px: float = 8.0
    gamma: tuple[float, float] = (0.7, 1.5)
    bias_field: float = 0.3
    contrast_remap_p: float = 0.25
    # Off by default: with a Rician noise floor in 30 % of the targets the prior learned that clean images may
    # carry a noise floor and put ~2-3 % speckle into reconstructed backgrounds (measured: SSIM 0.89 -> see
    # docs/models.md). Set > 0 to train a prior for noisy magnitude data.
    noise_p: float = 0.0
    noise_max: float = 0.03
    intensity: tuple[float, float] = (0.85, 1.2)
    p_identity: float = 0.1
    # new anatomy from few subjects: a smooth random displacement field (max amplitude, fraction of the image
    # half-width) and independent x/y scaling (atrophy / head-shape variation)
    elastic: float = 0.0
    aniso_scale: float = 0.0


def _u(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def elastic_field(b: int, h: int, w: int, amplitude: float, g: torch.Generator, knots: int = 5) -> torch.Tensor:
    """(b, h, w, 2) smooth random displacement in grid_sample's [-1, 1] units: random offsets on a coarse
    ``knots``² grid, upsampled bicubically; per-sample amplitude uniform in [0, amplitude]."""
    coarse = torch.randn(b, 2, knots, knots, generator=g)
    amp = _u(b, 0.0, amplitude, g).reshape(b, 1, 1, 1)
    field_ = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True) * amp / 2.0
    return field_.permute(0, 2, 3, 1)


def augment(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random geometric + intensity augmentation of a batch (B, 1, H, W) of normalised slices."""
    b, _, h, w = x.shape
    x_orig = x
    x = x.clone()
    if cfg.flip:
        fl = torch.rand(b, generator=g) < 0.5
        x[fl] = x[fl].flip(-1)
        fl = torch.rand(b, generator=g) < 0.2
        x[fl] = x[fl].flip(-2)
    ang = _u(b, -cfg.rotate_deg, cfg.rotate_deg, g) * math.pi / 180
    sc = _u(b, *cfg.scale, g)
    tx, ty = _u(b, -1, 1, g) * cfg.translate_px * 2 / w, _u(b, -1, 1, g) * cfg.translate_px * 2 / h
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(ang) / sc, -torch.sin(ang) / sc
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(ang) / sc, torch.cos(ang) / sc
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    if cfg.aniso_scale:
        ax = 1.0 + _u(b, -cfg.aniso_scale, cfg.aniso_scale, g)
        theta[:, 0, :2] = theta[:, 0, :2] * ax[:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if cfg.elastic:
        grid = grid + elastic_field(b, h, w, cfg.elastic, g)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp_min(0)
    # intensity: gamma
    gam = _u(b, *cfg.gamma, g).reshape(b, 1, 1, 1)
    x = x.clamp_min(0) ** gam
    # contrast remap: random smooth LUT with f(0) = 0 (synthesises other contrasts)
    sel = torch.rand(b, generator=g) < cfg.contrast_remap_p
    if sel.any():
        n = int(sel.sum())
        knots = torch.rand(n, 6, generator=g) * 1.2
        knots[:, 0] = 0
        xs = x[sel].clamp(0, 1.5) / 1.5 * 5
        lo = xs.floor().clamp(0, 4).long()
        fr = xs - lo
        kk = knots.reshape(n, 6, 1, 1)
        v0 = torch.gather(kk.expand(n, 6, h, w), 1, lo.squeeze(1).unsqueeze(1).clamp(0, 5))
        v1 = torch.gather(kk.expand(n, 6, h, w), 1, (lo + 1).squeeze(1).unsqueeze(1).clamp(0, 5))
        x[sel] = v0 * (1 - fr) + v1 * fr
    # bias field: exp of a smooth random low-order field
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    basis = torch.stack([xx, yy, xx * yy, xx**2, yy**2])
    coef = (torch.rand(b, 5, generator=g) * 2 - 1) * cfg.bias_field
    field_ = torch.exp(torch.einsum("bk,khw->bhw", coef, basis))[:, None]
    x = x * field_
    # re-normalise, then a random intensity scale (models normalisation error at inference)
    q = torch.quantile(x.reshape(b, -1), 0.99, dim=1).clamp_min(1e-6).reshape(b, 1, 1, 1)
    x = x / q * _u(b, *cfg.intensity, g).reshape(b, 1, 1, 1)
    # Rician-like noise floor (real scans are noisy, templates are not)
    nsel = (torch.rand(b, generator=g) < cfg.noise_p).float().reshape(b, 1, 1, 1)
    lvl = _u(b, 0, cfg.noise_max, g).reshape(b, 1, 1, 1) * nsel
    n1, n2 = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    x = torch.sqrt((x + lvl * n1) ** 2 + (lvl * n2) ** 2)
    keep = (torch.rand(b, generator=g) < cfg.p_identity).reshape(b, 1, 1, 1)
    return torch.where(keep, x_orig, x)


@dataclass
class PhaseAugment:
    """Random image phase for a complex-valued (two-channel: real, imaginary) prior.

    Every slice gets a uniform global phase; with probability ``poly_p`` a random 2nd-order polynomial (coefficients
    N(0, ``poly_std``) rad at the field-of-view edge, like ``tasks.simulate.smooth_phase``); with probability
    ``field_p`` a Gaussian random field (``tasks.simulate.gaussian_random_field``'s definition) of correlation
    length log-uniform in ``length_px`` and standard deviation uniform in ``std_rad``. The magnitude prior never
    sees phase; the complex prior learns which phase is plausible from these families alone (the air-tissue
    off-resonance family of ``tasks.acquisition`` is kept out: it is a report family)."""

    poly_p: float = 0.7
    poly_std: float = 0.8
    field_p: float = 0.7
    length_px: tuple[float, float] = (2.0, 24.0)
    std_rad: tuple[float, float] = (0.1, 2.0)


def random_phase_fields(b: int, h: int, w: int, cfg: PhaseAugment, g: torch.Generator) -> torch.Tensor:
    """(b, 1, h, w) random phase maps in radians (:class:`PhaseAugment`), all randomness from ``g``."""
    u = torch.linspace(-1.0, 1.0, h).reshape(1, h, 1)
    v = torch.linspace(-1.0, 1.0, w).reshape(1, 1, w)
    phase = _u(b, -math.pi, math.pi, g).reshape(b, 1, 1) + torch.zeros(b, h, w)
    a = torch.randn(b, 5, generator=g) * cfg.poly_std * (torch.rand(b, 1, generator=g) < cfg.poly_p)
    a = a.reshape(b, 5, 1, 1)
    phase = phase + a[:, 0] * u + a[:, 1] * v + a[:, 2] * u**2 + a[:, 3] * v**2 + a[:, 4] * u * v
    lo, hi = math.log(cfg.length_px[0]), math.log(cfg.length_px[1])
    px = torch.exp(_u(b, lo, hi, g)).reshape(b, 1, 1)
    fy = torch.fft.fftfreq(h).reshape(1, h, 1)
    fx = torch.fft.fftfreq(w).reshape(1, 1, w)
    kernel = torch.exp(-2.0 * (math.pi * px) ** 2 * (fy**2 + fx**2))
    field_ = torch.fft.ifft2(torch.fft.fft2(torch.randn(b, h, w, generator=g)) * kernel).real
    field_ = field_ / field_.reshape(b, -1).std(dim=1).clamp_min(1e-12).reshape(b, 1, 1)
    amp = _u(b, *cfg.std_rad, g) * (torch.rand(b, generator=g) < cfg.field_p)
    return (phase + amp.reshape(b, 1, 1) * field_).unsqueeze(1)


def to_complex_channels(mag: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) magnitude and phase -> (B, 2, H, W) real and imaginary channels of mag * exp(i phase)."""
    return torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)


def demodulate_channels(x: torch.Tensor, frac: float) -> torch.Tensor:
    """Two-channel complex images (B, 2, H, W) times exp(-i phi), phi the phase of their low-resolution copy (the
    central ``frac`` x min(H, W) of k-space, Hann-windowed)."""
    from ..samplers.adapters import demod_phase

    z = torch.complex(x[:, 0].float(), x[:, 1].float())
    d = z * torch.exp(-1j * demod_phase(z, frac))
    return torch.stack([d.real, d.imag], dim=1).to(x.dtype)


def complexify(mag: torch.Tensor, cfg: PhaseAugment, g: torch.Generator, demod: float = 0.0) -> torch.Tensor:
    """A batch of magnitude slices (B, 1, H, W) as complex two-channel images with random phase; ``demod`` > 0: then
    demodulated by their own low-resolution phase (:func:`demodulate_channels`)."""
    b, _, h, w = mag.shape
    z = to_complex_channels(mag, random_phase_fields(b, h, w, cfg, g).to(mag.device))
    return demodulate_channels(z, demod) if demod else z


@dataclass
class TrainingSet:
    """The training images of a run: whole slices at one voxel size (``slices``), or, for an any-resolution
    prior, one slice group per voxel size (``groups``) from which patches are drawn."""

    paths: list[Path]
    slices: torch.Tensor | None = None
    groups: list[torch.Tensor] | None = None

    @classmethod
    def load(cls, paths: list[Path], matrix: int, voxel: float, axes: str, voxels: list[float]) -> TrainingSet:
        if voxels:
            return cls(paths, groups=extract_multiscale(paths, matrix, list(voxels), axes, base_voxel=voxel))
        return cls(paths, slices=extract_slices(paths, matrix, voxel, axes)[0])

    @property
    def n_slices(self) -> int:
        return sum(len(x) for x in self.groups) if self.groups is not None else len(self._whole())

    def _whole(self) -> torch.Tensor:
        assert self.slices is not None, "a TrainingSet holds slices or groups"
        return self.slices

    def batch(self, size: int, matrix: int, aug: AugmentConfig, g: torch.Generator) -> torch.Tensor:
        """One augmented training batch (size, 1, matrix, matrix), all randomness from ``g``."""
        if self.groups is not None:
            return random_patches(self.groups, size, matrix, aug, g)
        slices = self._whole()
        idx = torch.randint(0, len(slices), (size,), generator=g)
        return augment(slices[idx], aug, g)
