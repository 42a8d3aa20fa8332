"""Wall-clock of the L1-wavelet phase reference (ops.sparse.l1_wavelet_sense, 40 FISTA iterations) per slice.

    python benchmarks/sparse_time.py            # 128² with 8 coils and 256² with 16 coils, 1 and 2 threads
"""

from __future__ import annotations

import time

import torch

from mrdiff_cli.ops.operators import SenseOp, normalize_maps
from mrdiff_cli.ops.sparse import l1_wavelet_sense


def main() -> None:
    g = torch.Generator().manual_seed(0)
    for n, coils in ((128, 8), (256, 16)):
        maps = normalize_maps(torch.randn(1, coils, n, n, dtype=torch.complex64, generator=g))
        A = SenseOp((torch.rand(n, n, generator=g) < 0.15).float(), maps)
        y = A(torch.randn(1, n, n, dtype=torch.complex64, generator=g))
        for threads in (1, 2):
            torch.set_num_threads(threads)
            l1_wavelet_sense(y, A, 1e-3, 5)  # warm-up
            best = min(_timed(y, A) for _ in range(3))
            print(f"{n}² {coils} coils, {threads} thread(s): {best:.2f} s per slice")


def _timed(y: torch.Tensor, A: SenseOp) -> float:
    t = time.perf_counter()
    l1_wavelet_sense(y, A, 1e-3, 40)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
