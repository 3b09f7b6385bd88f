"""The machine's measured float32 peak, for the roofline line of ``softras bench``.

:func:`peak_gflops` times a small Numba loop of fused multiply-adds in this very process, on
the threads Numba uses (``numba.get_num_threads()``, which ``softras bench --threads`` sets),
and returns GFLOP/s (2 flops per FMA lane). The loop is written to be throughput-bound:

* every thread runs its own task (``prange`` over the threads);
* the innermost loop runs over independent elements, so LLVM vectorises it to packed FMAs
  (``fastmath=True`` allows the contraction of ``a * x + c`` into one FMA);
* each element carries :data:`CHAINS` independent Horner chains of :data:`STEPS` FMAs (a
  compile-time count, fully unrolled), so that enough FMAs are in flight to cover the FMA
  latency on every FMA port (8 chains ≥ latency 4 × 2 ports), with no loads or stores in
  the loop body. Each chain has its own x, so that no reassociation can merge chains.

:func:`fma_asm` returns the loop's machine code (the dispatcher's ``inspect_asm()``) and
:func:`packed_fma_counts` counts its packed FMAs by vector register (``ymm``: AVX2, ``zmm``:
AVX-512); the tests check that the loop really runs packed FMAs. The figure is cached per
process and thread count; a measurement takes 0.2–0.5 s once the loop is compiled (Numba's disk
cache keeps it between processes).
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections import Counter

import numpy as np
from numba import prange

__all__ = [
    "CHAINS",
    "STEPS",
    "choose_threading_layer",
    "fma_asm",
    "host_simd",
    "measure_peak_gflops",
    "packed_fma_counts",
    "peak_gflops",
]

CHAINS = 8
"""Independent FMA chains per element (per SIMD lane once vectorised)."""
STEPS = 16
"""FMAs per chain per element."""

_PACKED_FMA = re.compile(r"\bvfn?m(?:add|sub)\d{3}ps\s+[^\n]*%(ymm|zmm)\d+")


def _fma_loop(n_tasks: int, n: int, c: float) -> np.ndarray:  # pragma: no cover - compiled
    """``n_tasks`` tasks of ``n`` elements × CHAINS × STEPS float32 FMAs; a sum per task."""
    out = np.zeros(n_tasks, dtype=np.float32)
    c32 = np.float32(c)
    h = np.float32(1e-3)
    for t in prange(n_tasks):
        s = np.float32(0.0)
        for j in range(n):
            x0 = np.float32(0.5) + np.float32(j + t) * np.float32(1e-9)
            x1 = x0 + h
            x2 = x1 + h
            x3 = x2 + h
            x4 = x3 + h
            x5 = x4 + h
            x6 = x5 + h
            x7 = x6 + h
            a0, a1, a2, a3, a4, a5, a6, a7 = x0, x1, x2, x3, x4, x5, x6, x7
            for _ in range(STEPS):
                a0 = a0 * x0 + c32
                a1 = a1 * x1 + c32
                a2 = a2 * x2 + c32
                a3 = a3 * x3 + c32
                a4 = a4 * x4 + c32
                a5 = a5 * x5 + c32
                a6 = a6 * x6 + c32
                a7 = a7 * x7 + c32
            s += ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        out[t] = s
    return out


def choose_threading_layer() -> None:
    """Use the threading layer of the ``cpu`` backend (:mod:`softras.raster.cpu`): ``workqueue``
    unless ``NUMBA_THREADING_LAYER`` is set. It must be chosen before Numba first starts its
    threads (afterwards this does nothing): otherwise Numba may start its OpenMP layer, which
    shares libgomp with PyTorch and resets the calling thread's ``torch.get_num_threads()``."""
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"


@functools.cache
def _kernel(cache: bool = True):
    """The FMA loop compiled by Numba on first use; ``cache``: kept in softras's Numba disk cache
    (where the folder next to this module is not writable, compiled in every process instead).
    Numba cannot show the machine code of a kernel loaded from its cache: :func:`fma_asm`
    compiles its own, uncached."""
    from numba import njit

    from softras._jit_cache import configure_numba_cache

    choose_threading_layer()
    options = {"parallel": True, "fastmath": True, "nogil": True}
    if cache:
        try:
            return njit(cache=configure_numba_cache(), **options)(_fma_loop)
        except RuntimeError:  # no locator: no writable cache folder
            pass
    return njit(cache=False, **options)(_fma_loop)


def _run(n_tasks: int, n: int) -> float:
    """Seconds of one call of the loop."""
    fn = _kernel()
    t0 = time.perf_counter()
    fn(n_tasks, n, 1e-3)
    return time.perf_counter() - t0


def measure_peak_gflops(
    threads: int | None = None, *, call_seconds: float = 0.02, budget_seconds: float = 0.15
) -> float:
    """Measure the float32 FMA throughput of ``threads`` Numba threads (default: Numba's count), GFLOP/s.

    The element count per thread grows ×4 per step until the fastest of two calls lasts at least
    ``call_seconds`` *and* twice the previous step's: the time then follows the work, not a
    fixed cost (a parallel launch, or on a busy machine a thread's wait for its time slice,
    ~16 ms seen on 2 loaded cores). Calibration stops after 0.5 s whatever the times. Then calls
    are repeated for ``budget_seconds`` (at least three) and the fastest one gives the figure.
    """
    import numba

    n_tasks = int(threads or numba.get_num_threads())
    _run(n_tasks, 64)  # compile (or load from the cache) outside the timing
    n = 1 << 16
    previous = min(_run(n_tasks, n), _run(n_tasks, n))
    give_up = time.perf_counter() + 0.5
    while n < 1 << 28:
        n *= 4
        t = min(_run(n_tasks, n), _run(n_tasks, n))
        if (t >= call_seconds and t >= 2 * previous) or time.perf_counter() > give_up:
            break
        previous = t
    times: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    while len(times) < 3 or time.perf_counter() < deadline:
        times.append(_run(n_tasks, n))
    flops = 2.0 * n_tasks * n * CHAINS * STEPS
    return flops / min(times) / 1e9


@functools.cache
def _peak(threads: int) -> float:
    return measure_peak_gflops(threads)


def peak_gflops(threads: int | None = None) -> float:
    """The measured float32 peak (GFLOP/s) of ``threads`` Numba threads, measured once per process
    and thread count (default: ``numba.get_num_threads()``, read at each call)."""
    import numba

    return _peak(int(threads or numba.get_num_threads()))


def fma_asm() -> str:
    """The machine code of the compiled FMA loop (every signature it was compiled for)."""
    fn = _kernel(cache=False)
    if not fn.signatures:
        fn(1, 64, 1e-3)
    return "\n".join(fn.inspect_asm().values())


def packed_fma_counts(asm: str) -> dict[str, int]:
    """How many packed float32 FMA instructions ``asm`` has, by vector register kind
    (``'ymm'``: 8 lanes, AVX2; ``'zmm'``: 16 lanes, AVX-512)."""
    return dict(Counter(_PACKED_FMA.findall(asm)))


def host_simd() -> str | None:
    """The widest SIMD the host CPU offers for float32 FMAs: ``'avx512'``, ``'avx2'`` or None."""
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    if features.get("avx512f"):
        return "avx512"
    if features.get("avx2") and features.get("fma"):
        return "avx2"
    return None
