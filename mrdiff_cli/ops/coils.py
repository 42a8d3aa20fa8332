"""Coil sensitivity estimation from the fully sampled calibration (ACS) region of k-space.

``estimate_maps(kspace, mask=None, acs=None, method="espirit")`` takes k-space ``(batch, coils, H, W)``
complex64 (batch = slices, each slice calibrated on its own) and returns maps of the same shape,
normalised with :func:`~mrdiff_cli.ops.operators.normalize_maps`: ``sum_c |S_c|^2 = 1`` where there is
signal and ``S = 0`` outside (the seed's Prop. 1 normalisation).

Calibration region: a centred rectangle ``(h, w)`` placed like :func:`~mrdiff_cli.ops.operators.crop_kspace`.
With ``acs=None`` it is detected from ``mask`` (or, without a mask, from the non-zero pattern of the
k-space) by :func:`~mrdiff_cli.ops.masks.acs_shape`: the central run of fully sampled columns (1D masks,
``(H, w)``), rows, or the largest centred fully sampled square. An integer ``acs`` means ``acs`` central
columns over the full height when those columns are fully sampled (1D masks), else an ``acs x acs``
square; a pair ``(h, w)`` is used as is. The region must be fully sampled, else :class:`ValueError`.

Methods
-------
``espirit`` (default)
    A compact ESPIRiT (Uecker et al., MRM 2014). The calibration matrix ``A`` holds every ``k x k``
    patch of the ACS block of all coils as a row (``kernel=6``, reduced to half the calibration extent
    along an axis where that is smaller, e.g. 4 wide for 8 ACS columns; blocks larger than
    ``max_calib=48`` per side are cropped to the centre). Its right singular vectors with
    ``sigma >= sigma_thresh * sigma_max`` (``sigma_thresh=0.02``; taken from the eigen-decomposition of
    the small Gram matrix ``A^H A``) span the signal subspace ``V``. Consistent k-space satisfies
    ``x = (1/k^2) sum_r R_r^H V V^H R_r x``, a convolution; in image space it is a ``coils x coils``
    matrix ``G(r)`` per pixel whose eigenvector with eigenvalue 1 is the sensitivity vector. ``G`` is
    built exactly from the ``(2k-1) x (2k-1)`` correlation kernels of ``V`` (small FFTs; then a separable
    DFT evaluated in row chunks, so memory stays bounded for large matrices and many coils) and
    eigen-decomposed per pixel with ``torch.linalg.eigh``. The top eigenvector is kept
    where its eigenvalue is ``> eig_thresh`` (default 0.8: ~1 inside the object, lower in the
    background) and the map is 0 elsewhere. The arbitrary per-pixel phase is fixed against a virtual
    body coil: the dominant eigenvector ``u`` of ``sum_r s(r) s(r)^H`` (independent of the per-pixel
    phases); each pixel is rotated so that ``u^H s(r)`` is real and positive, which gives smooth maps
    without relying on one physical coil that may be dark in places. About 0.15 s per 128x128 8-coil
    slice on one CPU thread. Needs a calibration region of at least 4 samples along each axis for
    good maps. The eigenvalue map is available from :func:`espirit_eigenvalues`.
``lowres``
    The ratio estimate: the ACS block (cropped to ``max_calib`` per side like above) is apodised with a
    separable Hann window and zero-padded to the full grid; the low-resolution coil images divided by
    their root-sum-of-squares are the maps, kept where the RSS is above ``support_thresh`` (default
    0.05) times its maximum. Cheap, but biased near edges
    of the object and wherever the object is not smooth at the ACS resolution.

A single coil (``coils == 1``) returns ones inside the support of the low-resolution image (same
``support_thresh`` rule; ``support_thresh=0`` gives ones everywhere).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

from .fft import ifft2c
from .masks import acs_shape, mask_from_kspace
from .operators import normalize_maps

METHODS = ("espirit", "lowres")
_CHUNK_ELEMS = 1 << 20  # per-pixel coil-matrix entries evaluated per chunk (1M complex64 = 8 MB)


# ESPIRiT's relative signal-subspace cut without a noise estimate (singular values >= this x the largest)
SIGMA_THRESH = 0.02


def _centre_slice(n: int, size: int) -> slice:
    start = n // 2 - size // 2
    return slice(start, start + size)


def _mask_2d(mask, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().to("cpu", torch.float32).numpy()
    m = np.asarray(mask, dtype=np.float32)
    m = np.broadcast_to(m, (*m.shape[:-2], *shape)) if m.ndim >= 2 else np.broadcast_to(m, shape)
    if m.ndim > 2:  # sampled in every slice / frame
        m = m.reshape(-1, *shape).min(axis=0)
    return m


def calibration_region(
    kspace: torch.Tensor, mask: np.ndarray | torch.Tensor | None = None, acs: int | tuple[int, int] | None = None
) -> tuple[int, int]:
    """The centred, fully sampled calibration rectangle ``(h, w)`` used by :func:`estimate_maps`."""
    H, W = kspace.shape[-2:]
    m = mask_from_kspace(kspace.detach().to("cpu").numpy()) if mask is None else _mask_2d(mask, (H, W))
    sampled = m > 0
    if acs is None:
        h, w = acs_shape(sampled)
    elif isinstance(acs, (tuple, list)):
        h, w = (int(a) for a in acs)
    else:
        a = int(acs)
        cols = _centre_slice(W, a)
        rows = _centre_slice(H, a)
        if 0 < a <= W and sampled[:, cols].all() and a < H:
            h, w = H, a
        elif 0 < a <= H and sampled[rows, :].all() and a < W:
            h, w = a, W
        else:
            h, w = a, a
    if h < 1 or w < 1 or h > H or w > W:
        raise ValueError(
            f"no usable calibration region: got {h}x{w} on a {H}x{W} grid "
            "(is the centre of k-space fully sampled? pass acs=... or other maps)"
        )
    if not sampled[_centre_slice(H, h), _centre_slice(W, w)].all():
        raise ValueError(f"the central {h}x{w} calibration region is not fully sampled")
    return h, w


def _crop_region(h: int, w: int, max_calib: int) -> tuple[int, int]:
    """Limit the calibration block to ``max_calib`` per side when it has more than ``max_calib**2`` points."""
    if h * w > max_calib * max_calib:
        h, w = min(h, max_calib), min(w, max_calib)
    return h, w


def _hann(n: int, device) -> torch.Tensor:
    # symmetric Hann without the zero end points
    return torch.from_numpy(np.hanning(n + 2)[1:-1].astype(np.float32)).to(device)


def _lowres_images(calib: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Hann-apodised calibration block (..., h, w) zero-padded to ``shape`` -> low-res coil images."""
    h, w = calib.shape[-2:]
    H, W = shape
    win = _hann(h, calib.device)[:, None] * _hann(w, calib.device)[None, :]
    k = torch.zeros(*calib.shape[:-2], H, W, dtype=torch.complex64, device=calib.device)
    k[..., _centre_slice(H, h), _centre_slice(W, w)] = calib * win
    return ifft2c(k)


def _support(img: torch.Tensor, thresh: float) -> torch.Tensor:
    """(..., H, W) magnitude/RSS -> boolean support above ``thresh`` times the per-slice maximum."""
    peak = img.flatten(-2).amax(dim=-1)[..., None, None]
    return img > thresh * peak


@contextmanager
def _one_lapack_thread(t: torch.Tensor):
    """Run a small dense CPU eigen-problem on one thread.

    A (C k^2)^2 Hermitian eigen-decomposition takes ~10 ms on one thread, but MKL's threaded solver
    can stall for seconds when the cores are busy (oversubscription). The global thread count is
    restored afterwards; GPU tensors are left alone.
    """
    n = torch.get_num_threads()
    if t.device.type != "cpu" or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _espirit_slice(
    calib: torch.Tensor,
    shape: tuple[int, int],
    kernel: int,
    sigma_thresh: float,
    eig_thresh: float,
    noise_floor: float = 0.0,
    values_only: bool = False,
    raw: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ESPIRiT for one slice. calib (C, h, w) -> maps (C, H, W) and top eigenvalue (H, W). ``noise_floor`` > 0
    (= noise_factor x sigma_n^2): the signal subspace also needs sigma^2 >= noise_floor x (P^0.5 + N^0.5)^2, a
    multiple of the Marchenko-Pastur upper edge of a (P x N) calibration matrix of pure noise. ``values_only``:
    only the eigenvalue map (the maps returned are empty; about half the per-pixel eigen-solver's time). ``raw``:
    the top eigenvectors (H*W, C) before :func:`_align_top_vectors` instead of the maps (``eig_thresh`` unused)."""
    C, h, w = calib.shape
    H, W = shape
    if min(h, w) < 2:
        raise ValueError(f"calibration region {h}x{w} is too small for ESPIRiT (need at least 2x2)")
    # a kernel wider than half the calibration extent sees too few patch positions along that axis and
    # the signal subspace is underestimated (e.g. 8 ACS columns with 6-wide kernels): cap at n // 2
    ky, kx = min(kernel, max(2, h // 2)), min(kernel, max(2, w // 2))
    # calibration matrix: one row per patch position, columns (coil, dy, dx)
    patches = calib.unfold(1, ky, 1).unfold(2, kx, 1)  # (C, h-ky+1, w-kx+1, ky, kx)
    A = patches.permute(1, 2, 0, 3, 4).reshape(-1, C * ky * kx)
    # right singular vectors from the (C k^2)^2 Gram matrix (much cheaper than an SVD of A on CPU)
    gram = A.conj().T @ A
    with _one_lapack_thread(gram):
        ev, evec = torch.linalg.eigh(0.5 * (gram + gram.conj().T))  # ascending, ev = sigma^2
    ev, evec = ev.flip(0), evec.flip(1)
    if float(ev[0]) <= 0.0:
        raise ValueError("calibration region is empty (all zeros)")
    floor = max(float((sigma_thresh**2) * ev[0]), float(noise_floor) * (A.shape[0] ** 0.5 + A.shape[1] ** 0.5) ** 2)
    n = max(1, int((ev >= floor).sum()))
    # rows of A are patches^T and A = U S V^H, so the patches (as vectors) span conj(v_j)
    V = evec[:, :n].conj().reshape(C, ky, kx, n).permute(0, 3, 1, 2)  # (C, n, ky, kx)
    # correlation kernels h_{ab}[m] = sum_j sum_{d'-d=m} v_j[a,d'] conj(v_j[b,d]), exact on a (2k-1) grid
    Ly, Lx = 2 * ky - 1, 2 * kx - 1
    Vf = torch.fft.fft2(V, s=(Ly, Lx))  # (C, n, Ly, Lx)
    # Gs[a, b] = sum_j Vf[a, j] conj(Vf[b, j]): elementwise per coil a (a batched gemm over the tiny
    # (Ly, Lx) grid is slow on busy CPUs, and one broadcast product would hold C^2 n Ly Lx values)
    Vfc = Vf.conj()
    Gs = torch.stack([torch.sum(Vf[a][None] * Vfc, dim=1) for a in range(C)])  # (C, C, Ly, Lx)
    hk = torch.fft.ifft2(Gs)  # h[m] at index m mod L
    # multiplier in image space at centred pixel (i, j):
    #   G(i, j) = (1/(ky kx)) sum_m h[m] exp(+2 pi i (my (i - H//2) / H + mx (j - W//2) / W))
    # evaluated separably (exact: h has only (2ky-1)(2kx-1) taps) and in row chunks to bound memory
    dev = calib.device
    my = torch.arange(-(ky - 1), ky, device=dev)
    mx = torch.arange(-(kx - 1), kx, device=dev)
    taps = hk[:, :, (my % Ly)[:, None], (mx % Lx)[None, :]] / (ky * kx)  # (C, C, 2ky-1, 2kx-1)

    def phasor(m: torch.Tensor, n: int) -> torch.Tensor:  # (len(m), n): exp(+2 pi i m (i - n//2) / n)
        arg = m[:, None].double() * (torch.arange(n, device=dev, dtype=torch.float64) - n // 2)[None, :] / n
        return torch.polar(torch.ones_like(arg), 2.0 * math.pi * arg).to(torch.complex64)

    ex, ey = phasor(mx, W), phasor(my, H)
    nmy = my.numel()
    hx = (taps.reshape(-1, mx.numel()) @ ex).reshape(C, C, nmy, W)  # (C, C, 2ky-1, W)
    hx = hx.permute(0, 1, 3, 2).reshape(C * C * W, nmy)
    rows = min(H, max(1, _CHUNK_ELEMS // (W * C * C)))
    # buffers reused by every chunk (avoids allocator churn / fragmentation on large grids)
    g_mm = torch.empty(C * C * W, rows, dtype=torch.complex64, device=dev)
    g_px = torch.empty(rows * W, C, C, dtype=torch.complex64, device=dev)
    lam = torch.empty(H * W, dtype=torch.float32, device=dev)
    s = torch.empty(0 if values_only else H * W, C, dtype=torch.complex64, device=dev)  # eigenvectors (unused: values)
    for r0 in range(0, H, rows):
        nr = min(rows, H - r0)
        out = g_mm if nr == rows else torch.empty(C * C * W, nr, dtype=torch.complex64, device=dev)
        torch.matmul(hx, ey[:, r0 : r0 + nr], out=out)
        G = g_px[: nr * W]
        G.view(nr, W, C, C).copy_(out.view(C, C, W, nr).permute(3, 2, 0, 1))
        if values_only:
            lam[r0 * W : (r0 + nr) * W] = torch.linalg.eigvalsh(G)[:, -1]
            continue
        evals, evecs = torch.linalg.eigh(G)  # ascending; reads the lower triangle (G is Hermitian)
        lam[r0 * W : (r0 + nr) * W] = evals[:, -1]
        s[r0 * W : (r0 + nr) * W] = evecs[:, :, -1]
        del evals, evecs
    lam = lam.reshape(H, W)  # s: (HW, C) unit-norm top eigenvectors, row-major pixels
    if values_only or raw:
        return s, lam
    return _align_top_vectors(s, lam, eig_thresh), lam


def _align_top_vectors(s: torch.Tensor, lam: torch.Tensor, eig_thresh: float) -> torch.Tensor:
    """ESPIRiT's top eigenvectors ``s`` (H*W, C; row-major pixels) with eigenvalue map ``lam`` (H, W) -> maps (C, H,
    W): zero where ``lam <= eig_thresh``, each kept pixel rotated so that the virtual body coil (the dominant
    direction over the kept pixels) sees it real and positive. Does not modify ``s``."""
    C = s.shape[1]
    H, W = lam.shape
    keep = (lam > eig_thresh).reshape(-1)
    # phase: rotate every pixel so that the virtual body coil u^H s(r) is real positive
    if bool(keep.any()):
        R = s[keep].T @ s[keep].conj()  # sum_r s s^H, (C, C), invariant to per-pixel phase
        u = torch.linalg.eigh(0.5 * (R + R.conj().T))[1][:, -1]
        ref = s @ u.conj()
        phase = torch.where(ref.abs() > 0, ref.conj() / ref.abs().clamp_min(1e-30), torch.ones_like(ref))
        s = s * phase[:, None]
    s = s * keep[:, None]
    return s.T.reshape(C, H, W).to(torch.complex64)


def estimate_maps(
    kspace: torch.Tensor,
    mask: torch.Tensor | np.ndarray | None = None,
    acs: int | tuple[int, int] | None = None,
    method: str = "espirit",
    *,
    kernel: int = 6,
    sigma_thresh: float = SIGMA_THRESH,
    eig_thresh: float = 0.8,
    support_thresh: float = 0.05,
    max_calib: int = 48,
    noise_std: torch.Tensor | float | None = None,
    noise_factor: float = 2.0,
    support_sigma: float | None = None,
) -> torch.Tensor:
    """Estimate coil sensitivities from the calibration region of ``kspace`` (batch, coils, H, W).

    ``noise_std`` (per slice, or one value; complex std of one k-space sample): ESPIRiT keeps only singular
    values above ``noise_factor`` x the largest that a calibration matrix of pure noise reaches (its
    Marchenko-Pastur edge), as well as above ``sigma_thresh`` x the largest: with a small ``sigma_thresh`` the
    subspace then follows the scan's SNR instead of one relative cut. A slice whose ``noise_std`` is 0 (no
    estimate) keeps at least the default relative cut ``SIGMA_THRESH``. ``support_sigma``: the maps' support
    (``eig_thresh``) is taken from a second ESPIRiT pass with that relative cut (and no noise floor) instead of
    from the maps' own subspace, whose eigenvalue a larger subspace raises outside the object.

    Returns complex64 maps (batch, coils, H, W) with ``sum_c |S_c|^2 = 1`` inside the support and 0
    outside; see the module docstring for ``method`` ("espirit" | "lowres") and the keyword options.
    A (coils, H, W) input returns (coils, H, W).
    """
    if method not in METHODS:
        raise ValueError(f"unknown coil-map method {method!r}; choose one of {', '.join(METHODS)}")
    k, calib, squeeze = _calibration_block(kspace, mask, acs, max_calib)
    B, C, H, W = k.shape

    if C == 1 or method == "lowres":
        low = _lowres_images(calib, (H, W))  # (B, C, H, W)
        rss = torch.sqrt(torch.sum(low.abs() ** 2, dim=1, keepdim=True))
        supp = _support(rss, support_thresh) if support_thresh > 0 else torch.ones_like(rss, dtype=torch.bool)
        if C == 1:
            maps = supp.to(torch.complex64)
        else:
            maps = torch.where(supp, low / rss.clamp_min(1e-30), torch.zeros_like(low))
    else:
        vectors = _espirit_vectors(calib, (H, W), kernel, sigma_thresh, noise_std, noise_factor)
        maps = _supported_maps(calib, vectors, kernel, eig_thresh, support_sigma)
    maps = normalize_maps(maps.to(torch.complex64))
    return maps[0] if squeeze else maps


def estimate_maps_supports(
    kspace: torch.Tensor,
    mask: torch.Tensor | np.ndarray | None = None,
    acs: int | tuple[int, int] | None = None,
    *,
    eig_own: float,
    kernel: int = 6,
    sigma_thresh: float = SIGMA_THRESH,
    eig_thresh: float = 0.8,
    max_calib: int = 48,
    noise_std: torch.Tensor | float | None = None,
    noise_factor: float = 2.0,
    support_sigma: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two supports of the same ESPIRiT maps from one eigen-pass per slice: (``estimate_maps(..., eig_thresh=
    eig_thresh, support_sigma=support_sigma)``, ``estimate_maps(..., eig_thresh=eig_own, support_sigma=None)``) —
    the same numbers as the two calls (method "espirit"), at about half their cost. Multi-coil (batch, coils, H, W)
    input; the other options as for :func:`estimate_maps`."""
    k, calib, squeeze = _calibration_block(kspace, mask, acs, max_calib)
    if k.shape[1] == 1:  # no subspace to share: the two calls

        def single(e: float, ss: float | None) -> torch.Tensor:
            return estimate_maps(kspace, mask, acs, kernel=kernel, sigma_thresh=sigma_thresh, eig_thresh=e,
                                 max_calib=max_calib, noise_std=noise_std, noise_factor=noise_factor, support_sigma=ss)

        return single(eig_thresh, support_sigma), single(eig_own, None)
    H, W = int(k.shape[-2]), int(k.shape[-1])
    vectors = _espirit_vectors(calib, (H, W), kernel, sigma_thresh, noise_std, noise_factor)
    out = tuple(normalize_maps(_supported_maps(calib, vectors, kernel, e, ss).to(torch.complex64))
                for e, ss in ((eig_thresh, support_sigma), (eig_own, None)))
    return (out[0][0], out[1][0]) if squeeze else (out[0], out[1])


def _calibration_block(kspace, mask, acs, max_calib: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(k-space (B, C, H, W) complex64, its calibration centre (B, C, h, w), whether the input had no batch axis)."""
    if not isinstance(kspace, torch.Tensor):
        kspace = torch.as_tensor(kspace)
    squeeze = kspace.dim() == 3
    if squeeze:
        kspace = kspace.unsqueeze(0)
    if kspace.dim() != 4:
        raise ValueError(f"k-space must be (batch, coils, H, W), got shape {tuple(kspace.shape)}")
    k = kspace.to(torch.complex64)
    H, W = k.shape[-2:]
    h, w = _crop_region(*calibration_region(k, mask, acs), max_calib)
    return k, k[..., _centre_slice(H, h), _centre_slice(W, w)], squeeze


def _espirit_vectors(calib: torch.Tensor, shape: tuple[int, int], kernel: int, sigma_thresh: float,
                     noise_std: torch.Tensor | float | None, noise_factor: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per slice of ``calib`` (B, C, h, w): ESPIRiT's raw top eigenvectors (H*W, C) and eigenvalue map (H, W), with
    the signal subspace cut as :func:`estimate_maps` documents (``sigma_thresh``, the noise floor)."""
    B = calib.shape[0]
    sn = torch.zeros(B) if noise_std is None else torch.as_tensor(noise_std, dtype=torch.float32).reshape(-1).expand(B)
    # a slice without a noise estimate (sn = 0) keeps at least the release's relative cut
    cut = [sigma_thresh if (noise_std is None or float(sn[b]) > 0) else max(sigma_thresh, SIGMA_THRESH)
           for b in range(B)]
    return [_espirit_slice(calib[b], shape, kernel, cut[b], -math.inf, noise_factor * float(sn[b]) ** 2, raw=True)
            for b in range(B)]


def _supported_maps(calib: torch.Tensor, vectors: list[tuple[torch.Tensor, torch.Tensor]], kernel: int,
                    eig_thresh: float, support_sigma: float | None) -> torch.Tensor:
    """Maps (B, C, H, W), not normalised, from :func:`_espirit_vectors`: supported where their own eigenvalue exceeds
    ``eig_thresh`` or, with ``support_sigma``, where that of a second (eigenvalue-only) pass with that relative cut
    does."""
    own = eig_thresh if support_sigma is None else -math.inf
    maps = torch.stack([_align_top_vectors(s, lam, own) for s, lam in vectors])
    if support_sigma is not None:
        shape = (int(vectors[0][1].shape[0]), int(vectors[0][1].shape[1]))
        supp = torch.stack([_espirit_slice(calib[b], shape, kernel, support_sigma, eig_thresh, values_only=True)[1]
                            > eig_thresh for b in range(calib.shape[0])])
        maps = maps * supp[:, None]
    return maps


def espirit_eigenvalues(
    kspace: torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
    acs: int | tuple[int, int] | None = None,
    *,
    kernel: int = 6,
    sigma_thresh: float = 0.02,
    max_calib: int = 48,
) -> torch.Tensor:
    """Top ESPIRiT eigenvalue map (batch, H, W): ~1 where the data support a sensitivity, lower outside.

    Useful to inspect or tune ``eig_thresh``.
    """
    k, calib, _ = _calibration_block(kspace, mask, acs, max_calib)
    B, C, H, W = k.shape
    return torch.stack(
        [_espirit_slice(calib[b], (H, W), kernel, sigma_thresh, -math.inf)[1] for b in range(B)]
    )
