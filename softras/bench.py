"""Benchmark harness for the rasterization backends (``softras bench``, ``benchmarks/run.py``).

What is timed: :func:`softras.raster.rasterize` alone, on screen-space face vertices and
face textures precomputed once per workload by the public pipeline
(:class:`~softras.SoftRenderer`'s lighting and camera transform, run outside the timed
region). The forward+backward time includes the backward through the rasterizer's inputs
(the face vertices, and the textures for the colour workloads), driven by a fixed upstream
gradient, i.e. ``rasterize(...).backward(grad)``.

Every backend registered for the device (``cpu``/``cuda`` when installed, ``reference``
always) runs the same workloads. The reference backend is slow, so it renders a part of each
row sized to about :data:`REFERENCE_PAIRS` (pixel, face) pairs (``reference_subset``): the
first ``k`` of the ``B`` items of a batch, its times scaled by ``B / k``, or every ``s``-th face
of a single image, its times scaled by the ratio of the pair counts. Speed-ups of the other
backends are relative to that scaled time, measured in the same run.

Roofline: for a backend with a flop model (``Backend.flops_entry``, e.g.
:func:`softras.raster.cpu_kernels.flops_per_pair`) each row also gets the achieved GFLOP/s,
kept pairs × flops per kept pair / forward time, and its fraction of the float32 peak measured
in the same process (:func:`softras.roofline.peak_gflops`).

Python API::

    from softras.bench import run_benchmarks, format_report, write_json

    report = run_benchmarks(["W1"], backends=["reference"], quick=True, repeat=2)
    print(format_report(report))
    write_json(report, "bench.json")
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from softras._errors import UsageError
from softras._validation import resolve_device
from softras.mesh import Mesh
from softras.progress import progress
from softras.raster import BACKENDS, RasterSettings, available_backends, rasterize
from softras.raster.backends import get_backend
from softras.raster.contract import RasterInputs, kernel_params
from softras.raster.reference import count_box_pairs, count_kept_pairs
from softras.renderer import SoftRenderer
from softras.shapes import bumpy_sphere, icosphere, torus

__all__ = [
    "REFERENCE_BUDGET_S",
    "REFERENCE_PAIRS",
    "REFERENCE_PAIRS_QUICK",
    "WORKLOADS",
    "BenchCase",
    "BenchReport",
    "BenchResult",
    "PeakRSS",
    "add_arguments",
    "backends_for_device",
    "build_cases",
    "count_kept_pairs",
    "count_pairs",
    "format_report",
    "load_optional_backends",
    "machine_info",
    "main",
    "measure_case",
    "run",
    "run_benchmarks",
    "set_threads",
    "write_json",
]

WORKLOADS = {
    "W1": "recon step: 1280-face icosphere, 256 views at 64², hard RGB, loss on alpha",
    "W2": "colour: 5120-face bumpy sphere, R=5 textures, lit, 256², softmax RGB + prod alpha",
    "W3": "scale: 280 / 3360 / 40000-face tori, R=5 textures, lit, 1024², softmax RGB + prod alpha",
}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_DISTANCE = 2.732
_ELEVATION = 30.0
_SEED = 0
REFERENCE_PAIRS = 300_000
"""(pixel, face) pairs the reference backend renders per row by default (``--quick``:
:data:`REFERENCE_PAIRS_QUICK`): a few seconds per row for the default timings (W1: 8 of its
256 views), so that the default run stays within ~1–3 minutes on 2 cores."""
REFERENCE_PAIRS_QUICK = 20_000
REFERENCE_BUDGET_S = 3.0
"""Seconds of timed reference calls per measurement after which no more are made (at least one):
idle, the reference's ~300 000 pairs take well under it, so it only bounds a loaded machine's run,
where PyTorch's OpenMP threads can make each call 10–30× slower."""


# ---------------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------------
@dataclass
class BenchCase:
    """One row of a workload: rasterizer inputs, settings and the upstream gradient.

    Attributes:
        workload: ``'W1'``, ``'W2'`` or ``'W3'``.
        name: short label of the row (e.g. ``'W3 40000 faces'``).
        description: what the scene is.
        face_vertices: [B, F, 3, 3] screen-space triangles (float64, CPU; cast when run).
        textures: [B, F, T, 3] face textures (lit).
        settings: the rasterizer's options.
        grad_output: [B, 4, H, W] upstream gradient of the loss w.r.t. the images.
        texture_grad: whether the backward also goes to the textures.
        reference_batch: how many of the B items the reference backend renders.
        batch_unit: what one item is (``'views'`` or ``'images'``).
        reference_face_step: the reference renders every ``reference_face_step``-th face.
        pairs: (pixel, face) pairs of the whole row (:func:`count_pairs`).
        reference_pairs: the pairs of the part the reference renders.
    """

    workload: str
    name: str
    description: str
    face_vertices: torch.Tensor
    textures: torch.Tensor
    settings: RasterSettings
    grad_output: torch.Tensor
    texture_grad: bool
    reference_batch: int
    batch_unit: str = "views"
    reference_face_step: int = 1
    pairs: int = 0
    reference_pairs: int = 0

    @property
    def batch(self) -> int:
        """B, the number of images rendered per call."""
        return int(self.face_vertices.shape[0])

    @property
    def num_faces(self) -> int:
        """F, faces per image."""
        return int(self.face_vertices.shape[1])

    @property
    def reference_scale(self) -> float:
        """What the reference's times are multiplied by: ``B / k`` for the first k of B items,
        for a face subset of a single image the ratio of its pairs to the subset's."""
        if self.reference_face_step > 1:  # a single image (see build_cases): by the pairs
            return self.pairs / max(self.reference_pairs, 1)
        return self.batch / self.reference_batch

    def reference_part(self, t: torch.Tensor) -> torch.Tensor:
        """The items and faces of a [B, F, ...] tensor that the reference renders."""
        return t[: self.reference_batch, :: self.reference_face_step]


def _screen_space(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    textures: torch.Tensor | None,
    azimuths: torch.Tensor,
    *,
    image_size: int,
    viewing_angle: float = 30.0,
    **raster_options: Any,
) -> tuple[torch.Tensor, torch.Tensor, RasterSettings]:
    """Lighting and look-at transform of one mesh seen from ``len(azimuths)`` cameras (float64).

    Returns ``(face_vertices [B, F, 3, 3], face_textures [B, F, T, 3], settings)``.
    """
    b = int(azimuths.numel())
    renderer = SoftRenderer(
        image_size=image_size, camera_mode="look_at", viewing_angle=viewing_angle, **raster_options
    ).double()
    renderer.transform.set_eyes_from_angles(
        torch.full((b,), _DISTANCE, dtype=torch.float64),
        torch.full((b,), _ELEVATION, dtype=torch.float64),
        azimuths.to(torch.float64),
    )
    v = vertices.to(torch.float64)[None].expand(b, -1, -1)
    t = None if textures is None else textures.to(torch.float64)[None]
    with torch.no_grad():
        mesh = renderer.transform(renderer.lighting(Mesh(v, faces[None], t)))
        fv = mesh.face_vertices.contiguous()
        tex = mesh.face_textures.expand(b, -1, -1, -1).contiguous()
    return fv, tex, renderer.rasterizer.settings()


def _random(shape: Sequence[int], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen, dtype=torch.float64)


def _colour_case(
    workload: str, name: str, description: str, vertices: torch.Tensor, faces: torch.Tensor, image_size: int
) -> BenchCase:
    """A W2/W3 row: random R=5 textures, lit, one view, softmax RGB + prod alpha, loss on RGBA."""
    textures = _random((faces.shape[0], 25, 3), _SEED)
    fv, tex, settings = _screen_space(
        vertices,
        faces,
        textures,
        torch.tensor([45.0]),
        image_size=image_size,
        sigma_val=1e-5,
        gamma_val=1e-4,
        dist_eps=1e-4,
        aggr_func_rgb="softmax",
        aggr_func_alpha="prod",
    )
    grad = _random((1, 4, image_size, image_size), _SEED + 1)
    return BenchCase(workload, name, description, fv, tex, settings, grad, True, 1, "images")


def build_cases(workload: str, *, quick: bool = False, reference_subset: float | None = None) -> list[BenchCase]:
    """The rows of a standard workload (``quick``: fewer views, smaller images and meshes).

    Args:
        workload: ``'W1'``, ``'W2'`` or ``'W3'``.
        quick: shrink the workload (for tests and smoke runs).
        reference_subset: fraction F of each row the reference backend renders: the first
            round(F·B) items of a batch, or every round(1/F)-th face of a single image
            (``None``: F = :data:`REFERENCE_PAIRS` / the row's pairs, at most 1).
    """
    if workload == "W1":
        views, size = (8, 32) if quick else (256, 64)
        v, f = icosphere(level=3)
        fv, tex, settings = _screen_space(
            v * 0.5,
            f,
            None,
            torch.arange(views, dtype=torch.float64) * 15.0,
            image_size=size,
            viewing_angle=15.0,
            fill_back=True,
            sigma_val=1e-4,
            dist_eps=1e-10,
            aggr_func_rgb="hard",
        )
        grad = torch.zeros(views, 4, size, size, dtype=torch.float64)
        grad[:, 3] = 1.0  # loss = images[:, 3].sum()
        desc = (
            f"icosphere(3)×0.5, {f.shape[0]} faces, {views} views (azimuth 15°·i) at {size}², "
            "σ=1e-4, dist_eps=1e-10, hard RGB, loss = alpha.sum() w.r.t. face vertices"
        )
        cases = [BenchCase("W1", "W1 recon step", desc, fv, tex, settings, grad, False, views)]
    elif workload == "W2":
        level, size = (3, 64) if quick else (4, 256)
        v, f = bumpy_sphere(level=level)
        desc = (
            f"bumpy_sphere({level}), {f.shape[0]} faces, random R=5 textures, lit, 1 view at {size}², "
            "σ=1e-5, γ=1e-4, softmax RGB + prod alpha, loss on RGBA w.r.t. face vertices and textures"
        )
        cases = [_colour_case("W2", "W2 colour", desc, v * 0.9, f, size)]
    elif workload == "W3":
        size = 128 if quick else 1024
        grids = [(14, 10), (30, 14), (60, 28)] if quick else [(14, 10), (60, 28), (200, 100)]
        cases = []
        for m, n in grids:
            v, f = torus(major_segments=m, minor_segments=n)
            desc = (
                f"torus {m}×{n}, {f.shape[0]} faces, random R=5 textures, lit, 1 view at {size}², "
                "as W2"
            )
            cases.append(_colour_case("W3", f"W3 {f.shape[0]} faces", desc, v, f, size))
    else:
        raise UsageError(f"workload: expected one of {sorted(WORKLOADS)}, got {workload!r}")
    target = REFERENCE_PAIRS_QUICK if quick else REFERENCE_PAIRS
    for case in cases:
        case.pairs = count_pairs(case.face_vertices, case.settings)
        fraction = min(1.0, target / max(case.pairs, 1)) if reference_subset is None else reference_subset
        if case.batch > 1:
            case.reference_batch = min(case.batch, max(1, round(fraction * case.batch)))
        else:
            case.reference_face_step = max(1, round(1 / fraction))
        case.reference_pairs = count_pairs(case.reference_part(case.face_vertices), case.settings)
    return cases


def count_pairs(face_vertices: torch.Tensor, settings: RasterSettings) -> int:
    """Number of (pixel, face) pairs inside the faces' grown bounding boxes (what a backend visits)."""
    return count_box_pairs(face_vertices, settings)


# ---------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------
def load_optional_backends() -> dict[str, str]:
    """``{name: why}`` for the backends (by name and alias) whose requirements are missing."""
    return {n: why for b in BACKENDS.values() if (why := b.missing()) for n in (b.name, *b.aliases)}


def set_threads(n: int) -> None:
    """Use ``n`` threads in PyTorch and, when a backend has loaded it, in Numba."""
    if n < 1:
        raise UsageError(f"threads: expected >= 1, got {n}")
    torch.set_num_threads(n)
    load_optional_backends()
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            numba.set_num_threads(min(n, int(numba.config.NUMBA_NUM_THREADS)))
        except (AttributeError, ValueError):
            pass


def _applies(name: str, device: torch.device) -> bool:
    return any(name in (b.name, *b.aliases) and b.runs_on(device) for b in BACKENDS.values())


def backends_for_device(device: torch.device) -> list[str]:
    """The available backends benchmarked by default on ``device``, by priority (reference last),
    each by the name it has there (``cuda`` for the Warp kernels on CUDA)."""
    chosen = [b for b in BACKENDS.values() if b.available() and device.type in b.benchmark_on]
    chosen.sort(key=lambda b: -b.priority)
    names = [device.type if device.type in b.aliases else b.name for b in chosen if b.name != "reference"]
    return [*names, "reference"]


# ---------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------
def _rss_bytes() -> int | None:
    """Current resident set size from /proc/self/statm (``None`` where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _hwm_bytes() -> int | None:
    """The kernel's peak resident set size (``VmHWM`` in /proc/self/status), or ``None``."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak RSS to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _hwm_bytes() is not None


class PeakRSS:
    """Context manager: peak resident memory above the value on entry.

    On Linux the kernel's own high-water mark is reset on entry (``/proc/self/clear_refs``) and
    read on exit (``VmHWM``), which sees every page the block touched, however briefly. Where
    that is not allowed, RSS is sampled from ``/proc/self/statm`` every ``interval`` seconds in a
    thread (and once more on exit), which can miss a short-lived peak. ``peak_mb`` is ``None``
    where /proc is unavailable. Memory the allocator kept from earlier calls is reused without
    raising RSS, so this is the *extra* memory the call needed, a lower bound on its working set.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.before: int | None = None
        self.peak: int | None = None
        self.exact = False  # True when the kernel's high-water mark was used
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _rss_bytes()
            if rss is not None and (self.peak is None or rss > self.peak):
                self.peak = rss

    def __enter__(self) -> PeakRSS:
        self.before = self.peak = _rss_bytes()
        if self.before is None:
            return self
        self.exact = _reset_hwm()
        if self.exact:
            self.before = self.peak = _rss_bytes()  # the reset may follow a free; re-read
        else:
            self._thread = threading.Thread(target=self._sample, name="softras-bench-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for rss in (_rss_bytes(), _hwm_bytes() if self.exact else None):
            if rss is not None and self.peak is not None:
                self.peak = max(self.peak, rss)

    @property
    def peak_mb(self) -> float | None:
        """Peak minus the RSS on entry, in MiB."""
        if self.before is None or self.peak is None:
            return None
        return max(0, self.peak - self.before) / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _times(
    fn: Callable[[], None], warmup: int, repeat: int, device: torch.device, budget: float | None = None
) -> list[float]:
    """Wall time in seconds of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones; with a
    ``budget``, fewer (at least one) once the timed calls have taken ``budget`` seconds.

    Not ``torch.utils.benchmark.Timer``: its ``timeit`` runs two more untimed calls before every
    measurement and its ``*_autorange`` choose the number of calls, while ``--warmup``/``--repeat``
    fix both and every run is reported (slow reference-backend calls would take 3x as long).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if budget is not None and sum(times) >= budget:
            break
    return times


def _release_free_memory() -> None:
    """Give memory the C allocator keeps from earlier calls back to the OS (glibc only).

    Without it, a call reuses heap pages that earlier calls freed and its RSS barely rises,
    so the measured peak would depend on what ran before.
    """
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _peak_mb(fn: Callable[[], None], device: torch.device) -> float | None:
    """Peak memory (MiB) of one call above the memory in use before it."""
    if device.type == "cuda":
        _sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return max(0, torch.cuda.max_memory_allocated(device) - before) / 2**20
    _release_free_memory()
    with PeakRSS() as sampler:
        fn()
    return sampler.peak_mb


@dataclass
class BenchResult:
    """One (case, backend) measurement. Times are for the full batch (scaled when ``scale > 1``).

    ``forward_ms``/``forward_backward_ms`` are medians, ``*_min`` the fastest run and ``*_runs``
    every timed run (in ms, *not* scaled: as measured on ``measured_batch`` items).

    ``speedup_*`` are ``reference time / this time`` (1.0 for the reference itself);
    ``peak_mb_*`` are for the batch actually measured (``measured_batch`` items), not scaled.

    Roofline (None for a backend without a flop model): ``kept_pairs`` of the ``pairs`` pass the
    cull; ``flops_per_pair`` is the backend's count per kept pair, ``gflops`` = kept pairs ×
    flops per pair / forward time (median), ``peak_gflops`` the measured float32 peak and
    ``peak_fraction`` = gflops / peak_gflops.
    """

    workload: str
    case: str
    backend: str
    device: str
    dtype: str
    batch: int
    measured_batch: int
    scale: float
    faces: int
    image_size: list[int]
    pairs: int
    forward_ms: float
    forward_backward_ms: float
    forward_ms_runs: list[float]
    forward_backward_ms_runs: list[float]
    forward_ms_min: float
    forward_backward_ms_min: float
    pairs_per_s: float
    peak_mb_forward: float | None
    peak_mb_forward_backward: float | None
    speedup_forward: float | None = None
    speedup_forward_backward: float | None = None
    threads: int = 0
    loadavg_1min: float | None = None
    repeat: int = 0
    warmup: int = 0
    kept_pairs: int | None = None
    flops_per_pair: float | None = None
    gflops: float | None = None
    peak_gflops: float | None = None
    peak_fraction: float | None = None
    error: str | None = None


def _loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return None


def measure_case(
    case: BenchCase,
    backend: str,
    *,
    repeat: int = 5,
    warmup: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    pairs: int | None = None,
    budget: float | None = None,
) -> BenchResult:
    """Time one backend on one case: forward (no autograd) and forward+backward, medians
    (``budget``: seconds of timed calls per measurement after which no more are made).

    The reference backend renders only its part of the case (:meth:`BenchCase.reference_part`)
    and its times are multiplied by :attr:`BenchCase.reference_scale`.
    """
    device = torch.device(device)
    reference = backend == "reference"
    k = case.reference_batch if reference else case.batch
    scale = case.reference_scale if reference else 1.0
    fv = (case.reference_part(case.face_vertices) if reference else case.face_vertices).to(device=device, dtype=dtype)
    tex = (case.reference_part(case.textures) if reference else case.textures).to(device=device, dtype=dtype)
    grad = case.grad_output[:k].to(device=device, dtype=dtype)
    fv_leaf = fv.detach().requires_grad_(True)
    tex_leaf = tex.detach().requires_grad_(case.texture_grad)
    settings = case.settings

    def forward() -> None:
        with torch.no_grad():
            rasterize(fv, tex, settings, backend=backend)

    def forward_backward() -> None:
        fv_leaf.grad = None
        tex_leaf.grad = None
        rasterize(fv_leaf, tex_leaf, settings, backend=backend).backward(grad)

    if pairs is None:
        pairs = case.pairs or count_pairs(case.face_vertices, settings)
    t_fwd = _times(forward, warmup, repeat, device, budget)
    t_fb = _times(forward_backward, warmup, repeat, device, budget)
    fwd_ms = statistics.median(t_fwd) * 1e3 * scale
    fb_ms = statistics.median(t_fb) * 1e3 * scale
    load = _loadavg()
    return BenchResult(
        workload=case.workload,
        case=case.name,
        backend=backend,
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
        batch=case.batch,
        measured_batch=k,
        scale=scale,
        faces=case.num_faces,
        image_size=[settings.image_height, settings.image_width],
        pairs=pairs,
        forward_ms=fwd_ms,
        forward_backward_ms=fb_ms,
        forward_ms_runs=[t * 1e3 for t in t_fwd],
        forward_backward_ms_runs=[t * 1e3 for t in t_fb],
        forward_ms_min=min(t_fwd) * 1e3 * scale,
        forward_backward_ms_min=min(t_fb) * 1e3 * scale,
        pairs_per_s=pairs / (fwd_ms / 1e3) if fwd_ms > 0 else math.inf,
        peak_mb_forward=_peak_mb(forward, device),
        peak_mb_forward_backward=_peak_mb(forward_backward, device),
        threads=torch.get_num_threads(),
        loadavg_1min=None if load is None else load[0],
        repeat=repeat,
        warmup=warmup,
    )


# ---------------------------------------------------------------------------------------------
# whole runs
# ---------------------------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _numba_threads() -> int | None:
    """Numba's thread count, or None when Numba has not been imported (by a backend)."""
    return int(sys.modules["numba"].get_num_threads()) if "numba" in sys.modules else None


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Versions, threads, CPU/GPU and load average: what is needed to compare two runs."""
    device = torch.device(device)
    numba_threads = _numba_threads()
    info: dict[str, Any] = {
        "softras": _version("softras"),
        "torch": torch.__version__,
        "numba": _version("numba"),
        "warp": _version("warp-lang"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba_threads,
        "loadavg": _loadavg(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


@dataclass
class BenchReport:
    """Everything one run measured: settings, machine info, results and notes per case."""

    meta: dict[str, Any]
    results: list[BenchResult] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``meta``, ``cases``, ``results``)."""
        return {"meta": self.meta, "cases": self.cases, "results": [asdict(r) for r in self.results]}


def _reference_note(case: BenchCase) -> str:
    if case.reference_face_step > 1:
        return (
            f"reference: 1 face in {case.reference_face_step} ({case.reference_pairs:,} of {case.pairs:,} pairs), "
            f"scaled ×{case.reference_scale:.3g}"
        )
    if case.reference_batch == case.batch:
        return f"reference: all {case.batch} {case.batch_unit}"
    return (
        f"reference: {case.reference_batch}/{case.batch} {case.batch_unit}, "
        f"scaled ×{case.batch / case.reference_batch:g}"
    )


def _add_roofline(res: BenchResult, flops_per_pair: float | None, kept_pairs: int | None, peak: float | None) -> None:
    """Fill the roofline fields of ``res``: kept pairs × flops per kept pair / forward time (median)."""
    if res.error is not None or flops_per_pair is None or kept_pairs is None or not math.isfinite(flops_per_pair):
        return
    res.kept_pairs = kept_pairs
    res.flops_per_pair = flops_per_pair
    res.gflops = kept_pairs * flops_per_pair / (res.forward_ms / 1e3) / 1e9 if res.forward_ms > 0 else math.inf
    res.peak_gflops = peak
    res.peak_fraction = res.gflops / peak if peak else None


def _error_result(
    case: BenchCase, backend: str, device: torch.device, dtype: torch.dtype, exc: Exception
) -> BenchResult:
    nan = math.nan
    return BenchResult(
        workload=case.workload, case=case.name, backend=backend, device=str(device),
        dtype=str(dtype).removeprefix("torch."), batch=case.batch, measured_batch=0, scale=nan,
        faces=case.num_faces, image_size=[case.settings.image_height, case.settings.image_width],
        pairs=0, forward_ms=nan, forward_backward_ms=nan, forward_ms_runs=[], forward_backward_ms_runs=[],
        forward_ms_min=nan, forward_backward_ms_min=nan,
        pairs_per_s=nan, peak_mb_forward=None, peak_mb_forward_backward=None,
        threads=torch.get_num_threads(), error=f"{type(exc).__name__}: {exc}",
    )  # fmt: skip


def run_benchmarks(
    workloads: Sequence[str] = ("W1", "W2", "W3"),
    backends: Sequence[str] | None = None,
    *,
    repeat: int = 5,
    warmup: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    quick: bool = False,
    reference_subset: float | None = None,
    reference_repeat: int | None = None,
    reference_budget: float | None = REFERENCE_BUDGET_S,
    echo: Callable[[str], None] | None = None,
    quiet: bool = False,
) -> BenchReport:
    """Run the workloads on the backends; the reference is always measured (it is the baseline).

    Args:
        workloads: any of ``'W1'``, ``'W2'``, ``'W3'``.
        backends: names to benchmark (``None``: every standard backend registered for ``device``).
        repeat: timed calls per measurement (the median is reported).
        warmup: untimed calls before them.
        dtype: working precision of the inputs.
        device: where the tensors live.
        quick: shrunken workloads (see :func:`build_cases`).
        reference_subset: fraction of each row the reference renders (``None``: sized to
            :data:`REFERENCE_PAIRS` pairs, see :func:`build_cases`).
        reference_repeat: timed calls for the reference (``None``: ``repeat``).
        reference_budget: seconds of timed reference calls per measurement after which no
            more are made (at least one; ``None``: no limit).
        echo: called with each printable line as soon as it is known (``None``: silent).
        quiet: no progress bar (it is shown on stderr when that is a terminal, one step per
            case and backend).

    The float32 peak (:func:`softras.roofline.peak_gflops`, on Numba's threads) is measured
    first when a benchmarked backend has a flop model (``Backend.flops_entry``); the kept pairs
    of each row (:func:`count_kept_pairs`) are counted then too.

    Returns:
        A :class:`BenchReport`; backends that raise get a result with ``error`` set.
    """
    device = torch.device(device)
    if repeat < 1 or warmup < 0:
        raise UsageError(f"repeat/warmup: expected repeat >= 1 and warmup >= 0, got {repeat}/{warmup}")
    if reference_subset is not None and not 0 < reference_subset <= 1:
        raise UsageError(f"reference-subset: expected a fraction in (0, 1], got {reference_subset}")
    missing = load_optional_backends()
    if backends is None:
        names = backends_for_device(device)
    else:
        names = list(dict.fromkeys(backends))
        for name in names:
            if name not in available_backends():
                why = f" ({missing[name]})" if name in missing else ""
                raise UsageError(f"backend: {name!r} is not available{why}; available: {available_backends()}")
            if not _applies(name, device):
                raise UsageError(f"backend: {name!r} does not run on device {device.type!r}")
    # The reference is the baseline: measure it first, whether or not it was asked for.
    names = ["reference"] + [n for n in names if n != "reference"]
    from softras.roofline import choose_threading_layer, peak_gflops  # imports Numba

    choose_threading_layer()  # before machine_info or the peak loop start Numba's threads
    models = {name: model for name in names if (model := get_backend(name).load_flops()) is not None}
    cases = [c for w in workloads for c in build_cases(w, quick=quick, reference_subset=reference_subset)]
    bar = progress(total=len(cases) * len(names), desc="bench", unit="run", quiet=quiet)

    def say(line: str) -> None:
        if echo is not None:
            with bar.external_write_mode():
                echo(line)

    meta = machine_info(device)
    meta.update(
        dtype=str(dtype).removeprefix("torch."), repeat=repeat, warmup=warmup, quick=quick,
        reference_repeat=reference_repeat or repeat, reference_budget=reference_budget, backends=names,
        missing_backends=missing,
        timed="softras.raster.rasterize on precomputed screen-space faces (lighting/transform untimed)",
    )  # fmt: skip
    report = BenchReport(meta)
    load = meta["loadavg"]
    load_txt = "n/a" if load is None else " ".join(f"{x:.2f}" for x in load)
    say(
        f"softras bench: torch {meta['torch']}, numba {meta['numba'] or 'not installed'}, "
        f"torch threads {meta['torch_threads']}, load average {load_txt}"
    )
    say(f"machine: {meta['cpu']} ({meta['cpu_count']} CPUs), {meta['platform']}")
    say(
        f"device {device}, dtype {meta['dtype']}, median of {repeat} after {warmup} warm-up"
        + (f" (reference: at most {reference_budget:g} s of timed calls each)" if reference_budget else "")
        + f"; timed: {meta['timed']}"
    )
    for name, why in missing.items():
        if _applies(name, device):
            say(f"note: backend {name!r} not available ({why})")
    peak = None
    if models:
        t0 = time.perf_counter()
        peak = peak_gflops()
        meta.update(peak_gflops=peak, peak_threads=_numba_threads(), peak_seconds=time.perf_counter() - t0)
        say(
            f"float32 peak: {peak:.1f} GFLOP/s (packed-FMA loop on {meta['peak_threads']} Numba threads, "
            f"measured in {meta['peak_seconds']:.2f} s)"
        )
    for case in cases:
        kept = count_kept_pairs(case.face_vertices.to(dtype), case.settings) if models else None
        note = _reference_note(case)
        report.cases.append(
            {"workload": case.workload, "case": case.name, "description": case.description,
             "batch": case.batch, "reference_batch": case.reference_batch,
             "reference_face_step": case.reference_face_step, "pairs": case.pairs,
             "reference_pairs": case.reference_pairs, "kept_pairs": kept, "reference_note": note}
        )  # fmt: skip
        say("")
        say(f"{case.name}: {case.description}")
        say(_table_header())
        baseline: BenchResult | None = None
        rows: list[BenchResult] = []
        for name in names:
            bar.set_postfix_str(f"{case.name}, {name}")
            reference = name == "reference"
            reps = (reference_repeat or repeat) if reference else repeat
            budget = reference_budget if reference else None
            try:
                res = measure_case(
                    case, name, repeat=reps, warmup=warmup, dtype=dtype, device=device, pairs=case.pairs, budget=budget
                )
                if name in models:
                    inputs = RasterInputs.from_textures(case.face_vertices, case.textures, case.settings)
                    _add_roofline(res, models[name](kernel_params(inputs, case.settings)), kept, peak)
            except Exception as exc:  # report and go on with the other backends
                res = _error_result(case, name, device, dtype, exc)
            if name == "reference":
                baseline = res
            if baseline is not None and res.error is None and baseline.error is None:
                res.speedup_forward = baseline.forward_ms / res.forward_ms
                res.speedup_forward_backward = baseline.forward_backward_ms / res.forward_backward_ms
            report.results.append(res)
            rows.append(res)
            say(_table_row(res))
            bar.update(1)
        say(note)
        for res in rows:
            say(_roofline_line(res))
    bar.close()
    end = _loadavg()
    meta["loadavg_after"] = end
    say("")
    say(f"load average after: {'n/a' if end is None else ' '.join(f'{x:.2f}' for x in end)}")
    return report


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------
_COLUMNS = (
    ("backend", 10), ("batch", 9), ("fwd ms", 10), ("fwd+bwd ms", 11), ("pairs", 13),
    ("Mpairs/s", 9), ("peak MB", 8), ("speed-up", 9), ("f+b speed-up", 12),
)  # fmt: skip


def _table_header() -> str:
    return "  ".join(f"{name:>{w}}" if i else f"{name:<{w}}" for i, (name, w) in enumerate(_COLUMNS))


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _table_row(r: BenchResult) -> str:
    widths = [w for _, w in _COLUMNS]
    if r.error is not None:
        return f"{r.backend:<{widths[0]}}  error: {r.error}"
    batch = f"{r.measured_batch}/{r.batch}" + ("*" if r.scale != 1 else "")
    cells = [
        batch,
        _fmt(r.forward_ms, ".1f"),
        _fmt(r.forward_backward_ms, ".1f"),
        f"{r.pairs:,}",
        _fmt(r.pairs_per_s / 1e6, ".2f"),
        _fmt(r.peak_mb_forward_backward, ".0f" if (r.peak_mb_forward_backward or 0) >= 10 else ".1f"),
        _fmt(r.speedup_forward, ".1f") + ("×" if r.speedup_forward is not None else ""),
        _fmt(r.speedup_forward_backward, ".1f") + ("×" if r.speedup_forward_backward is not None else ""),
    ]
    return "  ".join([f"{r.backend:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(cells, widths[1:], strict=True)])


def _roofline_line(r: BenchResult) -> str:
    """``roofline <backend>: ...``: flops per kept pair, achieved GFLOP/s and fraction of the peak, or n/a."""
    if r.gflops is None or r.flops_per_pair is None or r.kept_pairs is None:
        why = "error" if r.error is not None else "no flop model for this backend"
        return f"roofline {r.backend}: n/a ({why})"
    line = (
        f"roofline {r.backend}: {r.flops_per_pair:g} flops/kept pair × {r.kept_pairs:,} kept pairs "
        f"(of {r.pairs:,} in the boxes) / {r.forward_ms:.1f} ms = {r.gflops:.2f} GFLOP/s"
    )
    if r.peak_fraction is not None and r.peak_gflops is not None:
        line += f", {100 * r.peak_fraction:.2f}% of the measured float32 peak {r.peak_gflops:.1f} GFLOP/s"
    return line


def format_report(report: BenchReport) -> str:
    """The report as text tables (one per case), as printed while running."""
    lines: list[str] = []
    for case in report.cases:
        rows = [r for r in report.results if r.case == case["case"]]
        lines += ["", f"{case['case']}: {case['description']}", _table_header()]
        lines += [_table_row(r) for r in rows]
        lines.append(case["reference_note"])
        lines += [_roofline_line(r) for r in rows]
    return "\n".join(lines[1:])


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(report: BenchReport, path: str | os.PathLike) -> Path:
    """Write the report as JSON (NaN/inf become null). Returns the path."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(report.to_dict()), indent=2) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# command line (shared by ``softras bench`` and ``benchmarks/run.py``)
# ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``softras bench``."""
    parser.add_argument(
        "--workload", default="all", choices=[*sorted(WORKLOADS), "all"],
        help="which standard workload to run (default: all). "
        + "; ".join(f"{k}: {v}" for k, v in WORKLOADS.items()),
    )
    parser.add_argument(
        "--backend", nargs="+", default=None, metavar="NAME",
        help="backends to benchmark (default: the installed ones benchmarked on the device, see raster.backends); "
        "the reference is always measured as the speed-up baseline",
    )
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per measurement (default 5, quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing (default 1)")
    parser.add_argument(
        "--reference-repeat", type=int, default=None, metavar="N",
        help="timed calls for the (slow) reference backend (default: --repeat)",
    )
    parser.add_argument(
        "--reference-subset", type=float, default=None, metavar="F",
        help="fraction of each row rendered by the reference backend: the first F·B items of a batch, or "
        f"every (1/F)-th face of a single image, its times scaled up (default: about {REFERENCE_PAIRS:,} pairs "
        f"per row, {REFERENCE_PAIRS_QUICK:,} with --quick)",
    )
    parser.add_argument(
        "--reference-budget", type=float, default=REFERENCE_BUDGET_S, metavar="S",
        help=f"stop timing the reference after S seconds of timed calls per measurement, at least one call "
        f"(default {REFERENCE_BUDGET_S:g}; 0: no limit)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=None, metavar="N",
        help="set torch (and numba, when loaded) threads first (default: leave them; on a loaded machine "
        "fewer threads than cores avoid oversubscription stalls)",
    )  # fmt: skip
    parser.add_argument("--dtype", default="float32", choices=sorted(_DTYPES), help="working precision")
    parser.add_argument("--device", default="cpu", help="torch device of the inputs (default cpu)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--quick", action="store_true", help="shrunken workloads (fewer views, smaller images) for smoke tests"
    )  # fmt: skip
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """``softras bench``: print a table per workload row; returns 1 if a backend failed."""
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    repeat = args.repeat if args.repeat is not None else (2 if args.quick else 5)
    if args.threads is not None:
        set_threads(args.threads)
    workloads = sorted(WORKLOADS) if args.workload == "all" else [args.workload]
    report = run_benchmarks(
        workloads,
        args.backend,
        repeat=repeat,
        warmup=args.warmup,
        dtype=_DTYPES[args.dtype],
        device=device,
        quick=args.quick,
        reference_subset=args.reference_subset,
        reference_repeat=args.reference_repeat,
        reference_budget=args.reference_budget or None,
        echo=lambda line: print(line, flush=True),
        quiet=args.quiet,
    )
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    return 1 if any(r.error for r in report.results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m softras.bench`` / ``benchmarks/run.py``: the same options as ``softras bench``."""
    parser = argparse.ArgumentParser(prog="softras bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"softras bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
