"""Data-consistency steps: functions of ``(x, y, A, ...)`` for any linear operator ``A``.

``A`` is any object with ``A(x)``, ``A.adjoint(y)``, ``A.normal(x)`` and a ``mask`` attribute
(:class:`~mrdiff_cli.ops.operators.CoilwiseOp`, :class:`~mrdiff_cli.ops.operators.SenseOp`, ...).
Everything is batched over the first axis, complex64, device-agnostic; masks are binary and broadcast
against k-space ``(batch, coils, H, W)`` as ``(H, W)``, ``(1, W)`` or ``(batch, 1, H, W)``.

=========================  ==========================================================================
``hard_dc_coilwise``       x <- F^H [(1 - M) F x + M y]                  (seed, SSOS / single coil)
``soft_dc``                x <- x - lam A^H (A x - y)                    (seed, Prop. 1: lam in [0, 1])
``kaczmarz_sense_sweep``   one block-Kaczmarz sweep over the coils of y_c = M F S_c x  (seed, hybrid)
``cg_solve``               batched conjugate gradient for a Hermitian positive (semi-)definite operator
``cg_dc``                  argmin_x ||A x - y||^2 + mu ||x - x0||^2      (proximal DC, fast sampler)
=========================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch

from ..ops.fft import fft2c, ifft2c
from ..ops.operators import LinearOperator, SenseOp
from ..ops.superres import SuperResOp, real_kspace_replace, realisable
from .protocols import DCStep


def _bmask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(mask).to(device=like.device, dtype=torch.float32)
    while m.dim() < like.dim():
        m = m.unsqueeze(0)
    return m


def _per_batch(v: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor | float:
    """A float stays a float; a (batch,) tensor becomes (batch, 1, ..., 1) to broadcast against ``like``."""
    if isinstance(v, torch.Tensor):
        v = v.to(device=like.device, dtype=torch.float32)
        if v.dim() == 0:
            return v
        return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))
    return float(v)


def _bdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-batch inner product <a, b> = sum conj(a) b over every non-batch axis -> (batch,) complex."""
    return torch.linalg.vecdot(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))


def _bnorm2(a: torch.Tensor) -> torch.Tensor:
    """Per-batch squared norm (real), without the square root of ``abs``."""
    if a.is_complex():
        a = torch.view_as_real(a)
    return torch.sum(a.reshape(a.shape[0], -1).square(), dim=1)


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))


def hard_dc_coilwise(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard projection of coil images ``x`` (batch, coils, H, W) onto the measured k-space ``y``.

    ``x <- F^H [(1 - M) F x + M y]``: sampled locations take the measured values, the rest keep the
    k-space of ``x``. Idempotent; for a single coil this is the seed's single-coil projection.
    """
    k = fft2c(x)
    m = _bmask(mask, k)
    return ifft2c(k + m * (y - k))


def soft_dc(x: torch.Tensor, y: torch.Tensor, A: LinearOperator, lam: float | torch.Tensor) -> torch.Tensor:
    """Gradient step ``x <- x - lam A^H (A x - y)`` on ``||A x - y||^2 / 2``.

    ``lam`` is a float or a per-batch tensor. With normalised sensitivities ``I - lam A^H A`` is
    non-expansive for lam in [0, 1] (seed Prop. 1); for ``CoilwiseOp`` and lam = 1 this equals
    :func:`hard_dc_coilwise`.
    """
    return x - _per_batch(lam, x) * A.adjoint(A(x) - y)


def kaczmarz_sense_sweep(
    x_coils: torch.Tensor,
    maps: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    lam: float | torch.Tensor = 1.0,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    """One block-Kaczmarz sweep over the coils (the seed's hybrid mode); returns refreshed coil images.

    The coil images ``x_coils`` (batch, coils, H, W) are merged into one image
    ``x = sum_c conj(S_c) x_c`` (the SENSE least-squares combination for normalised maps). Then, for
    ``c = 0 .. coils-1`` in turn, the block of equations ``A_c x = y_c`` with ``A_c = M F S_c`` is
    enforced with the relaxed, normalised Kaczmarz (Landweber) step

        x <- x + (lam / L_c) A_c^H (y_c - A_c x),     L_c = max_r |S_c(r)|^2  (per batch element).

    Why ``L_c``: F is unitary and M a projection, so ``||A_c||^2 <= max |S_c|^2``. For any image
    ``x*`` consistent with the data, the error ``e = x - x*`` maps to ``(I - lam/L_c A_c^H A_c) e``,
    whose eigenvalues lie in ``[1 - lam, 1]``; hence
    ``||e'||^2 <= ||e||^2 - lam (2 - lam) / L_c ||y_c - A_c x||^2``: the error never grows for
    lam in [0, 2] and strictly drops whenever coil c is inconsistent. When ``|S_c|`` is constant,
    lam = 1 is the exact projection onto ``{A_c x = y_c}``; the exact projection for a general map would
    need ``(A_c A_c^H)^{-1}``, which is not diagonal. ``normalize=False`` uses ``L_c = 1``, the seed's
    plain step ``x + lam A_c^H r_c`` (non-expansive for lam in [0, 2] when ``|S_c| <= 1``).

    Returns ``S_c x`` for every coil, shape (batch, coils, H, W).
    """
    maps = maps.to(x_coils.device)
    if maps.dim() == x_coils.dim() - 1:
        maps = maps.unsqueeze(0)
    maps = maps.expand_as(x_coils) if maps.shape[0] == 1 else maps
    m = _bmask(mask, y)
    y = m * y
    x = torch.sum(maps.conj() * x_coils, dim=-3)  # (batch, H, W)
    lam_b = _per_batch(lam, x)
    C = x_coils.shape[-3]
    for c in range(C):
        s = maps[:, c]  # (batch, H, W)
        mc = m[:, c] if m.shape[1] > 1 else m[:, 0]  # per-coil masks allowed
        r = mc * (y[:, c] - fft2c(s * x))
        if normalize:
            L = torch.amax((s.abs() ** 2).reshape(s.shape[0], -1), dim=1)
            inv = torch.where(L > 0, 1.0 / L.clamp_min(1e-30), torch.zeros_like(L))
            step: torch.Tensor | float = lam_b * _expand(inv, x)
        else:
            step = lam_b
        x = x + step * (s.conj() * ifft2c(r))
    return maps * x.unsqueeze(-3)


def cg_solve(
    normal_fn: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    x0: torch.Tensor | None,
    n_iter: int,
    tol: float = 0.0,
) -> torch.Tensor:
    """Batched conjugate gradient for ``normal_fn(x) = rhs``, a Hermitian positive (semi-)definite operator.

    Every batch element (first axis) has its own step sizes alpha/beta, reduced over all other axes.
    Starts at ``x0`` (zeros when None) and runs ``n_iter`` iterations, or stops earlier once every
    element has ``||r|| <= tol ||rhs||`` (elements that reach ``tol``, or round-off level
    ``10 eps ||rhs||``, are frozen). For a semi-definite
    operator (e.g. ``A^H A`` with undersampling) CG converges to the least-squares solution closest to
    ``x0``.
    """
    x = torch.zeros_like(rhs) if x0 is None else x0.clone()
    if n_iter <= 0:
        return x
    r = rhs - normal_fn(x)
    p = r.clone()
    rs = _bnorm2(r)
    # below ~10 eps relative residual the recursion only amplifies round-off (and for a semi-definite
    # operator the round-off has null-space components with p^H A p ~ 0): freeze such elements
    floor = 10.0 * torch.finfo(rs.dtype).eps
    stop2 = (max(tol, floor) ** 2) * _bnorm2(rhs)
    for _ in range(n_iter):
        active = rs > stop2
        if not bool(active.any()):
            break
        Ap = normal_fn(p)
        pAp = _bdot(p, Ap).real
        alpha = torch.where((pAp > 0) & active, rs / pAp.clamp_min(1e-30), torch.zeros_like(rs))
        x.add_(_expand(alpha, x) * p)  # x, r, p are this function's own tensors: update in place
        r.sub_(_expand(alpha, r) * Ap)
        rs_new = _bnorm2(r)
        beta = torch.where((rs > 0) & active, rs_new / rs.clamp_min(1e-30), torch.zeros_like(rs))
        p.mul_(_expand(beta, p)).add_(r)
        rs = torch.where(active, rs_new, rs)
    return x


class UnshiftedSense:
    """``SenseOp``'s adjoint and normal operator without the centring shifts, for CG (performance only).

    ``fft2c = fftshift . fft2 . ifftshift`` and the shifts are exact inverse permutations (any H, W), so
    ``A^H A x = fftshift(N_u(ifftshift(x)))`` with ``N_u v = sum_c conj(S_c') ifft2(M'^2 fft2(S_c' v))``, where
    ``S' = ifftshift(S)`` and ``M' = ifftshift(M)``; likewise ``A^H y = fftshift(sum_c conj(S_c') ifft2(M'
    ifftshift(y_c)))``. CG is invariant under a permutation of the unknowns, so it runs entirely on
    ifftshift-ed images: the FFTs are the very same, and the four shift copies per normal product are gone (they
    cost about as much as the FFTs themselves on the CPU). Built once per (operator, data) pair.
    """

    def __init__(self, A: SenseOp):
        dims = (-2, -1)
        self.maps = torch.fft.ifftshift(A.maps, dim=dims).contiguous()
        self.maps_conj = self.maps.conj().resolve_conj()  # materialised once, not on every product
        m = torch.fft.ifftshift(_bmask(A.mask, A.maps), dim=dims)
        # complex masks: a complex * float product would copy the mask to complex on every call
        self.mask, self.mask2 = m.to(torch.complex64), (m * m).to(torch.complex64)
        self._dims = dims

    def to_unshifted(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifftshift(x, dim=self._dims)

    def from_unshifted(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fftshift(x, dim=self._dims)

    def _combine(self, z: torch.Tensor) -> torch.Tensor:
        """sum_c conj(S_c') z_c, overwriting z (a temporary of the caller)."""
        return z.mul_(self.maps_conj).sum(dim=-3)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^H y on the unshifted grid."""
        k = self.mask * torch.fft.ifftshift(y, dim=self._dims)
        return self._combine(torch.fft.ifft2(k, norm="ortho"))

    def normal(self, v: torch.Tensor) -> torch.Tensor:
        """A^H A v on the unshifted grid."""
        k = torch.fft.fft2(self.maps * v.unsqueeze(-3), norm="ortho")
        return self._combine(torch.fft.ifft2(k.mul_(self.mask2), norm="ortho"))


def _unshifted_for(A: LinearOperator) -> UnshiftedSense | None:
    return UnshiftedSense(A) if type(A) is SenseOp else None


def cg_dc(
    x0: torch.Tensor, y: torch.Tensor, A: LinearOperator, mu: float | torch.Tensor, n_iter: int, tol: float = 0.0,
    *, _fast: tuple[UnshiftedSense, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Proximal data consistency ``argmin_x ||A x - y||^2 + mu ||x - x0||^2``.

    Solves ``(A^H A + mu I) x = A^H y + mu x0`` with :func:`cg_solve`, warm-started at ``x0``.
    ``mu`` is a float or a per-batch tensor; ``mu = 0`` is plain least-squares CG from ``x0`` (with
    undersampling: the data-consistent image closest to ``x0`` along the Krylov space).
    For a :class:`~mrdiff_cli.ops.operators.SenseOp` the iterations run on the unshifted grid
    (:class:`UnshiftedSense`; same result up to float rounding). ``_fast``: a prebuilt ``(UnshiftedSense, A^H y
    on its grid)`` for this ``(A, y)`` (:class:`ProximalDC` keeps one across sampler steps).
    """
    mu_b = _per_batch(mu, x0)
    if _fast is None and n_iter > 0:
        op = _unshifted_for(A)
        if op is not None:
            _fast = (op, op.adjoint(y))
    if _fast is not None:
        op, ahy = _fast
        xu = op.to_unshifted(x0)

        if isinstance(mu_b, float) and mu_b == 0.0:  # the default: skip the zero term (same values)
            return op.from_unshifted(cg_solve(op.normal, ahy, xu, n_iter, tol))

        def normal_u(v: torch.Tensor) -> torch.Tensor:
            return op.normal(v) + mu_b * v

        return op.from_unshifted(cg_solve(normal_u, ahy + mu_b * xu, xu, n_iter, tol))

    def normal_fn(v: torch.Tensor) -> torch.Tensor:
        return A.normal(v) + mu_b * v

    rhs = A.adjoint(y) + mu_b * x0
    return cg_solve(normal_fn, rhs, x0, n_iter, tol)


# ------------------------------------------------------------------------------------------------ DC steps
#
# The samplers take one data-consistency step object ``dc`` and call it as
#
#     x = dc(x, y, A, step=i, n_steps=n, sigma=sigma_i)
#
# after each denoising step (the fast sampler), or after the predictor and the corrector (pc). ``step`` is the
# index of the sampler step (0 .. n_steps - 1; a final noise-free step repeats n_steps - 1), ``sigma`` its noise
# level. Steps keyed on the index (the hybrid SENSE sweep every m steps) need no hidden counters.


class ProximalDC:
    """argmin_x ||A x - y||^2 + mu ||x - x_d||^2 by ``n_cg`` CG iterations (mu may be a function of sigma:
    DiffPIR's mu_i = lam sigma_n^2 / sigma_i^2); ``n_cg = 0`` leaves x unchanged."""

    def __init__(self, n_cg: int = 5, mu: float | Callable[[float], float | torch.Tensor] = 0.0):
        self.n_cg, self.mu = int(n_cg), mu
        # (A, y, (UnshiftedSense, A^H y)): reused while A and y are the same
        self._cache: tuple[LinearOperator, torch.Tensor, tuple[UnshiftedSense, torch.Tensor] | None] | None = None

    def _fast(self, y: torch.Tensor, A: LinearOperator) -> tuple[UnshiftedSense, torch.Tensor] | None:
        c = self._cache
        if c is not None and c[0] is A and c[1] is y:
            return c[2]
        op = _unshifted_for(A)
        fast = (op, op.adjoint(y)) if op is not None else None
        self._cache = (A, y, fast)
        return fast

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, *, step: int = 0, n_steps: int = 1,
        sigma: float = 0.0,
    ) -> torch.Tensor:
        if self.n_cg <= 0:
            return x
        mu = self.mu(sigma) if callable(self.mu) else self.mu
        return cg_dc(x, y, A, mu, self.n_cg, _fast=self._fast(y, A))


class SoftDC:
    """The seed's x <- x - lam A^H (A x - y) (Prop. 1: non-expansive for lam in [0, 1]); lam = 1 with an
    operator whose A A^H = I (coil-wise masks, the super-resolution crop) is the hard projection."""

    def __init__(self, lam: float = 1.0):
        self.lam = lam

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, *, step: int = 0, n_steps: int = 1,
        sigma: float = 0.0,
    ) -> torch.Tensor:
        return soft_dc(x, y, A, self.lam)


def noise_aware_weight(sigma: float, noise_sigma: float | torch.Tensor) -> torch.Tensor | float:
    """lam_i = sigma_i^2 / (sigma_i^2 + sigma_n^2): the posterior-mean combination of a denoised estimate with
    error ~sigma_i and a measurement with noise sigma_n on each measured k-space value (1 for noise-free data,
    -> 0 once the prior's estimate is better than the measurement). ``noise_sigma``: float or (batch,) tensor."""
    s2 = float(sigma) ** 2
    if isinstance(noise_sigma, torch.Tensor):
        return s2 / (s2 + noise_sigma.float() ** 2).clamp_min(1e-30)
    return s2 / max(s2 + float(noise_sigma) ** 2, 1e-30)


class RealKspaceDC:
    """For real images and a k-space selection operator (``A.kmask``, ``A.pad``; e.g. SuperResOp): the seed's
    guidance x <- Re F^H herm[lam P y + (1 - lam) Lambda F x + (I - Lambda) F x] with lam = 1 (hard
    consistency) or, with ``noise_sigma`` (y's noise std per k-space value, A's units), the noise-aware
    lam_i = sigma_i^2 / (sigma_i^2 + sigma_n^2)."""

    def __init__(self, lam: float = 1.0, noise_sigma: float | torch.Tensor | None = None):
        self.lam, self.noise_sigma = lam, noise_sigma
        # the (y, A, device) that _prepared was built for
        self._for: tuple[torch.Tensor | None, SuperResOp | None, torch.device | None] = (None, None, None)
        self._prepared: tuple[torch.Tensor, torch.Tensor] | None = None

    def _prepare(self, y: torch.Tensor, A: SuperResOp, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """What every step of one sampling run reuses: (kmask, realisable(A.pad(y))) on ``device``."""
        kmask = A.kmask.to(device)
        return kmask, realisable(A.pad(y), kmask)

    def _cached(self, y: torch.Tensor, A: SuperResOp, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_prepare`, built once per sampling run (y and A stay the same across its steps)."""
        fy, fA, fdev = self._for
        if self._prepared is None or fy is not y or fA is not A or fdev != device:
            self._for, self._prepared = (y, A, device), self._prepare(y, A, device)
        return self._prepared

    def _weight(self, sigma: float, x: torch.Tensor) -> float | torch.Tensor:
        """lam (fixed, or noise-aware at this sigma) as a float or a tensor broadcastable to x."""
        lam = self.lam if self.noise_sigma is None else noise_aware_weight(sigma, self.noise_sigma)
        if isinstance(lam, torch.Tensor):
            lam = lam.to(x.device).reshape(-1, *([1] * (x.dim() - 1)))
        return lam

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, *, step: int = 0, n_steps: int = 1,
        sigma: float = 0.0,
    ) -> torch.Tensor:
        # A: a k-space selection operator (kmask, pad: ops.superres.SuperResOp), by the contract of this step
        kmask, target = self._cached(y, cast(SuperResOp, A), x.device)
        return real_kspace_replace(x, target, kmask, self._weight(sigma, x))


class MagnitudeKspaceDC(RealKspaceDC):
    """Consistency with a *magnitude* low-resolution image (a magnitude NIfTI/DICOM or an RSS image).

    The measurement is m = |L x| with L x = F_low^{-1} P^{-1}(Lambda) F x (the low-resolution image of x), not
    L x itself: the low-resolution image of a real image rings negative beside sharp edges, and the magnitude
    rectifies those lobes. Consistency with F |L x| (what :class:`RealKspaceDC` enforces) therefore asks for
    positive ripples in the background. This step projects onto the magnitude constraint instead (a
    Gerchberg-Saxton / error-reduction projection, with the phase of the current estimate):

        z = L x,   target = F_low(m z / |z|),   x <- RealKspaceDC step towards that target

    with lam = 1, or the noise-aware lam_i of :class:`RealKspaceDC` with ``noise_sigma``. For a real x, z is real
    but for the unpaired Nyquist row/column of an even block, so z / |z| is +-1 up to that small imaginary part.
    Where the estimate's own low-resolution image is positive this is the linear step; it differs only where the
    estimate rings negative. ``y`` is the k-space of the magnitude image in A's units, as for :class:`RealKspaceDC`."""

    def _prepare(self, y: torch.Tensor, A: SuperResOp, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(kmask, m = |low-resolution image of y|) on ``device``."""
        return A.kmask.to(device), ifft2c(A.to_lowres(y.to(device))).abs()

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, *, step: int = 0, n_steps: int = 1,
        sigma: float = 0.0,
    ) -> torch.Tensor:
        sr = cast(SuperResOp, A)  # a k-space selection operator, by the contract of this step
        kmask, m = self._cached(y, sr, x.device)
        low = ifft2c(sr.to_lowres(sr(x)))
        mag = low.abs()
        phase = torch.where(mag > 0, low / mag.clamp_min(1e-30), torch.ones_like(low))
        target = realisable(sr.pad(sr.from_lowres(fft2c(m * phase))), kmask)
        return real_kspace_replace(x, target, kmask, self._weight(sigma, x))


class Projected:
    """``dc`` followed by a projection (object support, real part)."""

    def __init__(self, dc: DCStep, project: Callable[[torch.Tensor], torch.Tensor]):
        self.dc, self.project = dc, project

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, *, step: int = 0, n_steps: int = 1,
        sigma: float = 0.0,
    ) -> torch.Tensor:
        return self.project(self.dc(x, y, A, step=step, n_steps=n_steps, sigma=sigma))


class HybridSenseDC:
    """The seed's hybrid mode: ``dc`` (coil-wise, SSOS) every step, plus one block-Kaczmarz SENSE sweep over the
    coils (:func:`kaczmarz_sense_sweep`) every ``every`` steps and always at the last step.

    ``y_raw``/``mask``/``maps`` are in the scan's own scale; the coil images are divided by ``scale`` (per
    coil) for the prior, so the sweep works on ``x * scale``."""

    def __init__(self, dc: DCStep, maps: torch.Tensor, y_raw: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor, every: int):
        self.dc, self.maps, self.y_raw, self.mask, self.scale = dc, maps, y_raw, mask, scale
        self.every = max(1, int(every))

    def sweeps_at(self, step: int, n_steps: int) -> bool:
        return (step + 1) % self.every == 0 or step == n_steps - 1

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, *, step: int = 0, n_steps: int = 1,
        sigma: float = 0.0,
    ) -> torch.Tensor:
        x = self.dc(x, y, A, step=step, n_steps=n_steps, sigma=sigma)
        if not self.sweeps_at(step, n_steps):
            return x
        return kaczmarz_sense_sweep(x * self.scale, self.maps, self.y_raw, self.mask) / self.scale
