"""L1-wavelet regularised SENSE (compressed sensing) in torch: a complex image estimate without a learned prior.

    x* = argmin_x  1/2 ||A x - y||^2 + lam ||W x||_1          (A = M F S: SENSE, W: orthonormal 2D Haar wavelets)

solved by FISTA (Beck & Teboulle 2009) with step 1 (||A|| <= 1 for maps normalised to sum_c |S_c|^2 <= 1 and the
orthonormal FFT), the complex soft threshold z max(0, 1 - lam / |z|) on the detail coefficients (the coarsest
approximation band is not thresholded) and cycle spinning: every iteration shifts the image by another of the
2^levels x 2^levels offsets before the transform (a deterministic sequence), which removes the Haar transform's
block artefacts at no extra cost per iteration.

mrdiff uses it, opt-in, for the phase a magnitude prior demodulates (``--phase-ref l1``,
``ReconOptions.phase_cs_lambda``): the phase of an L1-wavelet reconstruction resolves phase detail that the
low-resolution centre misses, and unlike the sampler's own output it is not pulled towards a phase estimate
(docs/science.md, "Why the phase reference matters").
"""

from __future__ import annotations

import torch

from .operators import SenseOp


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph))
    return x, (H, W)


def haar2(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Orthonormal 2D Haar transform of (..., H, W) (H, W multiples of 2^levels): the detail bands of each level,
    (..., 3, h, w), finest first, then the approximation (..., h, w)."""
    out = []
    a = x
    for _ in range(levels):
        p, q = a[..., 0::2, 0::2], a[..., 0::2, 1::2]
        r, s = a[..., 1::2, 0::2], a[..., 1::2, 1::2]
        out.append(torch.stack([(p - q + r - s) / 2, (p + q - r - s) / 2, (p - q - r + s) / 2], dim=-3))
        a = (p + q + r + s) / 2
    out.append(a)
    return out


def ihaar2(coeffs: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`haar2`."""
    a = coeffs[-1]
    for d in reversed(coeffs[:-1]):
        h, v, g = d.unbind(dim=-3)
        p, q = (a + h + v + g) / 2, (a - h + v - g) / 2
        r, s = (a + h - v - g) / 2, (a - h - v + g) / 2
        out = torch.empty(*a.shape[:-2], 2 * a.shape[-2], 2 * a.shape[-1], dtype=a.dtype, device=a.device)
        out[..., 0::2, 0::2], out[..., 0::2, 1::2], out[..., 1::2, 0::2], out[..., 1::2, 1::2] = p, q, r, s
        a = out
    return a


def soft_threshold(z: torch.Tensor, lam: float) -> torch.Tensor:
    """Complex soft threshold z max(0, 1 - lam / |z|)."""
    mag = z.abs()
    return z * torch.clamp(1.0 - lam / mag.clamp_min(1e-12), min=0.0)


def wavelet_shrink(x: torch.Tensor, lam: float, levels: int, shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """prox of lam ||W x||_1 for the Haar transform of ``x`` shifted by ``shift`` (cycle spinning); (..., H, W) any
    size (zero-padded to a multiple of 2^levels inside)."""
    xp, (H, W) = _pad_to(x, 2**levels)
    xs = torch.roll(xp, shifts=shift, dims=(-2, -1)) if any(shift) else xp
    c = haar2(xs, levels)
    c = [soft_threshold(d, lam) for d in c[:-1]] + [c[-1]]
    out = ihaar2(c)
    if any(shift):
        out = torch.roll(out, shifts=(-shift[0], -shift[1]), dims=(-2, -1))
    return out[..., :H, :W]


def l1_wavelet_sense(y: torch.Tensor, A: SenseOp, lam: float, iters: int = 40, levels: int = 4,
                     x0: torch.Tensor | None = None) -> torch.Tensor:
    """FISTA for min_x 1/2 ||A x - y||^2 + lam ||W x||_1 (module docstring); y (B, C, H, W), returns (B, H, W)
    complex. ``lam``: the threshold (units of the image); ``x0``: the start (default A^H y). Deterministic."""
    x = A.adjoint(y) if x0 is None else x0
    z, t = x, 1.0
    n = 2**levels
    for k in range(int(iters)):
        g = z - A.adjoint(A(z) - y)  # gradient step, step size 1 (||A|| <= 1)
        shift = ((k * 5) % n, (k * 3) % n)
        x_new = wavelet_shrink(g, lam, levels, shift)
        t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        z = x_new + ((t - 1.0) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x
