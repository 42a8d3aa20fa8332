"""Compute resources for reconstruction: CPU threads, batch size from free memory, peak-memory readings.

No printing, no argument parsing. torch is imported inside the functions (the CLI imports this module late).
"""

from __future__ import annotations

import os
import resource
import sys

CPU_BATCH = 4  # measured on the 2-core build machine: 0.98 samples/s at 4 images per batch, 0.72 at 16
GPU_BATCH_MAX = 64
# Rough memory per image in a batch (bytes per pixel): the network's live activations in bf16 (base 32 channels,
# a few tensors alive at full resolution) plus the complex64 coil arrays of SENSE data consistency (k-space, maps
# and ~6 CG temporaries per coil). Deliberately generous; benchmarks/gpu.py reports the measured peak per batch.
NET_BYTES_PER_PIXEL = 2048
COIL_BYTES_PER_PIXEL = 64


def cpu_quota() -> int | None:
    """CPUs granted by a cgroup v2/v1 quota (containers, SLURM), or None when unlimited / unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            q, p = f.read().split()[:2]
        if q != "max":
            return max(1, int(int(q) // int(p)))
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return max(1, quota // period)
    except (OSError, ValueError):
        pass
    return None


def default_threads() -> int:
    """Threads for torch on the CPU: ``MRDIFF_THREADS`` or ``OMP_NUM_THREADS`` when set, else the CPUs this
    process may run on (affinity mask, and a cgroup quota when smaller). torch's own default counts the
    machine's physical cores, which oversubscribes a container or a SLURM job granted fewer."""
    for var in ("MRDIFF_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    q = cpu_quota()
    return max(1, min(n, q) if q else n)


def apply_threads(n: int | None) -> int:
    """Set torch's intra-op threads; returns the number in use.

    ``n`` given, or ``MRDIFF_THREADS`` set: exactly that. Otherwise torch's current setting (its default, which
    honours ``OMP_NUM_THREADS``, or what the caller chose) is only lowered to :func:`default_threads` when it
    exceeds the CPUs this process may use; it is never raised (a caller that chose one thread keeps one)."""
    import torch

    env = os.environ.get("MRDIFF_THREADS", "").strip()
    if n is None and env.isdigit() and int(env) > 0:
        n = int(env)
    if n is None:
        n = min(torch.get_num_threads(), default_threads())
    n = int(n)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def bytes_per_image(hw: tuple[int, int], coils: int) -> int:
    """Estimated peak memory of one image in a reconstruction batch (see the constants above)."""
    H, W = hw
    return int(H * W * (NET_BYTES_PER_PIXEL + COIL_BYTES_PER_PIXEL * max(1, coils)))


def auto_batch_size(device, hw: tuple[int, int] = (320, 320), coils: int = 16, fraction: float = 0.6) -> int:
    """Images per batch: on a GPU from its free memory (``fraction`` of it, at most 64); on the CPU the measured
    default of 4 (larger batches were slower per image there). ``hw``/``coils``: the largest scan expected
    (default: fastMRI brain size after coil compression)."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(dev)
    return int(max(1, min(GPU_BATCH_MAX, (fraction * free) // bytes_per_image(hw, coils))))


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024.0


def peak_memory_mb(device) -> float:
    """torch.cuda.max_memory_allocated on a GPU, else the process's peak RSS (MiB)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return peak_rss_mb()


def prepare_prior(prior, device, channels_last: bool | None = None):
    """Put the prior's network in the memory format that runs fastest on ``device`` (in place; same weights).

    ``channels_last`` None = auto: NHWC on the CPU, where oneDNN's bf16 convolutions ran 1.7x (128², batch 4)
    to 2.2x (256², batch 2) faster than NCHW on the build machine (one thread, same process, interleaved);
    left alone on a GPU (not measured there). Priors without a ``net`` module are returned unchanged.
    """
    import torch

    net = getattr(prior, "net", None)
    if not isinstance(net, torch.nn.Module):
        return prior
    use = torch.device(device).type == "cpu" if channels_last is None else bool(channels_last)
    if use:
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
    return prior
