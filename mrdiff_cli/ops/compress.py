"""Coil compression: project many receive coils onto a few virtual coils (SVD / PCA over coils, like BART's ``cc``).

Per slice, the coil covariance of the measured k-space ``G = sum_k y(k) y(k)^H`` (``coils x coils``, over the
sampled locations; undersampling zeros add nothing) is eigen-decomposed; the ``n`` eigenvectors with the
largest eigenvalues form ``U`` (``coils x n``, orthonormal columns) and the virtual coils are ``U^H y``. Because
``U`` has orthonormal columns, white noise stays white with the same variance, the mask is unchanged, and the
model ``y = M F (S x)`` becomes ``U^H y = M F ((U^H S) x)`` exactly: only the energy in the discarded directions
(reported as ``retained``) is lost. Coil sensitivities are smooth and a brain fills a small part of the
field of view, so 16-20 physical coils usually carry almost all of their energy in 10 virtual ones.

Each slice gets its own ``U`` (the result of a slice does not depend on which slices share its batch). The
per-NFE cost of SENSE data consistency and of ESPIRiT (a ``coils x coils`` eigen-problem per pixel) scales with
the number of coils, so this is the main lever at 16-20 coils.
"""

from __future__ import annotations

import math

import torch

AUTO_ABOVE = 12  # auto: compress when a scan has more coils than this
AUTO_MIN = 10  # ... to max(AUTO_MIN, ceil(coils / 2)) virtual coils (8 lost up to 0.12 dB at 16 coils; 10 <= 0.09 dB)


def auto_virtual_coils(n_coils: int) -> int:
    """The default number of virtual coils: ``max(10, ceil(C / 2))`` above 12 coils, else ``C`` (no compression)."""
    n_coils = int(n_coils)
    if n_coils <= AUTO_ABOVE:
        return n_coils
    return max(AUTO_MIN, math.ceil(n_coils / 2))


def resolve_virtual_coils(requested: int | None, n_coils: int) -> int:
    """``requested``: None = auto (:func:`auto_virtual_coils`), 0 = off, N = N virtual coils (at most ``n_coils``)."""
    if requested is None:
        return auto_virtual_coils(n_coils)
    r = int(requested)
    if r < 0:
        raise ValueError(f"number of virtual coils must be >= 0, got {r}")
    if r == 0 or r >= n_coils:
        return n_coils
    if r < 2:
        raise ValueError("coil compression needs at least 2 virtual coils (1 would turn the scan into single-coil data)")
    return r


def compression_matrices(y: torch.Tensor, n_virtual: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-slice compression matrices for k-space ``y`` (batch, coils, H, W).

    Returns ``U`` (batch, coils, n_virtual) with orthonormal columns (largest singular directions first) and the
    retained energy fraction (batch,) in [0, 1].
    """
    if y.dim() != 4:
        raise ValueError(f"k-space must be (batch, coils, H, W), got shape {tuple(y.shape)}")
    B, C = y.shape[:2]
    if not 1 <= n_virtual <= C:
        raise ValueError(f"n_virtual must be in [1, {C}], got {n_virtual}")
    flat = y.reshape(B, C, -1).to(torch.complex64)
    gram = flat @ flat.conj().transpose(1, 2)  # (B, C, C), Hermitian PSD
    gram = 0.5 * (gram + gram.conj().transpose(1, 2))
    ev, vec = torch.linalg.eigh(gram)  # ascending
    ev, vec = ev.flip(-1).clamp_min(0.0), vec.flip(-1)
    U = vec[..., :n_virtual]
    # fix the sign/phase of each virtual coil (eigh's is arbitrary): the largest-magnitude entry real positive,
    # so the same data always give the same virtual coils
    idx = U.abs().argmax(dim=1, keepdim=True)
    ph = torch.gather(U, 1, idx)
    U = U * (ph.conj() / ph.abs().clamp_min(1e-30))
    total = ev.sum(-1)
    retained = torch.where(total > 0, ev[..., :n_virtual].sum(-1) / total.clamp_min(1e-30), torch.ones_like(total))
    return U, retained


def apply_compression(x: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Virtual coils ``U^H x`` of coil data ``x`` (batch, coils, H, W) (k-space, coil images or sensitivities)."""
    B, C, H, W = x.shape
    out = U.conj().transpose(1, 2).to(x.dtype) @ x.reshape(B, C, H * W)
    return out.reshape(B, U.shape[-1], H, W)


def compress_coils(y: torch.Tensor, n_virtual: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k-space (batch, coils, H, W) → (virtual-coil k-space (batch, n_virtual, H, W), U, retained energy (batch,))."""
    U, retained = compression_matrices(y, n_virtual)
    return apply_compression(y, U), U, retained
