"""The ``cpu`` backend: fused, tile-binned Numba kernels for forward and backward.

It implements the contract of :mod:`softras.raster.contract` natively: attribute channels of
any width (surface texels, vertex attributes and UV textures, any of them may be 0 wide), soft
depth, the z-buffer outputs and exact gradients (the UV texture's atlas gradient accumulated in
fixed point, :func:`~softras.raster.uv.fixed_point_scale`, so bit-identical run to run). Each
(pixel, face) pair is evaluated in registers and never stored: memory is O(B·H·W·C +
B·F·tiles-per-face), and the backward recomputes pair terms. Pixel ranges and binning follow
the contract's rule (:func:`~softras.raster.contract.pixel_ranges`,
:func:`~softras.raster.contract.bin_faces`), compiled in ``cpu_binning``; the kernels live in
``cpu_kernels``. Both are imported only from here.

Threads: the kernels use Numba's ``workqueue`` threading layer (no OpenMP, so no spin-wait
stalls next to PyTorch's OpenMP pool) and as many threads as ``torch.get_num_threads()``
(capped by ``NUMBA_NUM_THREADS`` and by the CPUs the process may use: affinity, cgroup quota).
Set ``NUMBA_THREADING_LAYER`` yourself to override the layer. Compiled kernels are cached on
disk (``__pycache__`` or ``NUMBA_CACHE_DIR``): the first call in a fresh environment compiles for
about a minute per option combination, later processes load them in about a second.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import threading

import numba
import numpy as np
import torch

from .contract import (
    KernelParams,
    RasterInputs,
    RasterResult,
    RgbAggregation,
    kernel_params,
    pixel_centers,
)
from .first_order import first_order_only
from .settings import RasterSettings
from .uv import TextureFilter, UVMaps, fixed_point_scale

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

from . import cpu_binning, cpu_kernels

__all__ = ["DEFAULT_TILE", "rasterize", "rasterize_cpu", "rasterize_rgba"]

DEFAULT_TILE = 32
_LOCK = threading.Lock()  # the workqueue layer is not re-entrant across Python threads


def _np(t: torch.Tensor, dtype: np.dtype | None = None) -> np.ndarray:
    """A C-contiguous numpy view or copy, made by numpy: a PyTorch copy would run on its intra-op
    pool, whose parallel passes can each wait a scheduler quantum on a loaded machine."""
    return np.ascontiguousarray(t.detach().numpy(), dtype=dtype)


def _flat(a: np.ndarray) -> np.ndarray:
    """[B, F, T, C] -> the [B, F, T·C] view."""
    return a.reshape(a.shape[0], a.shape[1], a.shape[2] * a.shape[3])


@functools.lru_cache(maxsize=64)
def _centres(n: int, flip: bool, dtype: torch.dtype) -> np.ndarray:
    """The contract's pixel centres (:func:`~softras.raster.contract.pixel_centers`) as a numpy array,
    made once per (size, flip, dtype) and shared: read, never written (a read-only flag would
    make Numba compile every kernel once more, for read-only arrays)."""
    return _np(pixel_centers(n, flip=flip, dtype=dtype, device=torch.device("cpu")))


@functools.cache
def _cgroup_cpu_quota() -> float | None:
    """The CPUs' worth of time a cgroup quota grants this process (cgroup v2 ``cpu.max``, or v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), or None without a quota."""
    candidates = (
        ("/sys/fs/cgroup/cpu.max", None),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )
    for quota_path, period_path in candidates:
        try:
            with open(quota_path) as fh:
                fields = fh.read().split()
            if period_path is not None:
                with open(period_path) as fh:
                    fields.append(fh.read().strip())
        except OSError:
            continue
        if len(fields) < 2 or fields[0] == "max" or int(fields[0]) <= 0:
            return None
        return int(fields[0]) / int(fields[1])
    return None


def usable_cpus() -> int:
    """How many CPUs this process may really use: its affinity mask (``taskset``, container
    cpusets), capped by a cgroup CPU quota (``docker --cpus``), rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _threads() -> int:
    """The kernels' thread count: PyTorch's, capped by NUMBA_NUM_THREADS and :func:`usable_cpus`
    (more threads than CPUs only wait for each other)."""
    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS, usable_cpus()))


class _Prepared:
    """Per-call geometry (barycentric matrices, pixel ranges, bins) and parameters, shared by forward
    and backward."""

    def __init__(self, inputs: RasterInputs, settings: RasterSettings, tile: int) -> None:
        fv = inputs.face_vertices.detach()
        b, f = fv.shape[:2]
        h, w = settings.image_height, settings.image_width
        self.shape = (b, f, h, w)
        self.fv = _np(fv)
        dt = fv.dtype
        # The contract's pixel-range rule and binning, compiled (cpu_binning; tested equal), and
        # the barycentric matrices: one pass over the faces, one for the bins (each parallel
        # only for calls big enough to pay for a parallel launch).
        self.ranges = np.empty((b, f, 4), dtype=np.int64)
        front = np.empty((b, f), dtype=np.bool_)
        inv = np.empty((b, f, 9), dtype=np.float64)
        cpu_kernels.prepare_faces(
            self.fv,
            np.array([settings.cull_radius], dtype=self.fv.dtype),
            _centres(w, False, dt),
            _centres(h, True, dt),
            self.ranges,
            front,
            inv,
        )
        ntx, nty = math.ceil(w / tile), math.ceil(h / tile)
        tile_start, tile_faces, self.face_start, self.entry_slot = cpu_binning.bin_faces(self.ranges, tile, ntx, nty)
        self.geo = cpu_kernels.Geometry(
            xs=_centres(w, False, torch.float64),
            ys=_centres(h, True, torch.float64),
            face_vertices=self.fv,
            inv=inv,
            front=front,
            ranges=self.ranges,
            tile_start=tile_start,
            tile_faces=tile_faces,
            tile=tile,
            ntx=ntx,
            nty=nty,
        )
        self.params: KernelParams = kernel_params(inputs, settings)
        self.surface = _np(inputs.surface)
        self.vertex = _np(inputs.vertex)
        self.uv = _uv_arrays(inputs.uv, self.fv.dtype)
        self.background = np.asarray(inputs.background, dtype=np.float64).reshape(-1)


def _uv_arrays(maps: UVMaps | None, dtype: np.dtype) -> cpu_kernels.UVArrays:
    """The kernels' view of a UV texture (empty arrays of the same types without one, so that a call
    with and one without a texture share the compiled kernels' argument types)."""
    if maps is None:
        return cpu_kernels.UVArrays(
            uv=np.empty((0, 0, 3, 2), dtype=dtype),
            material=np.empty((0, 0), dtype=np.int64),
            atlas=np.empty(0, dtype=dtype),
            levels=np.empty((0, 0, 3), dtype=np.int64),
            level_count=np.empty(0, dtype=np.int64),
        )
    return cpu_kernels.UVArrays(
        uv=_np(maps.uv, dtype),
        material=_np(maps.material, np.int64),
        atlas=_np(maps.atlas, dtype),
        levels=_np(maps.levels, np.int64),
        level_count=_np(maps.level_count, np.int64),
    )


class _RasterizeCPU(torch.autograd.Function):
    """Forward and backward of one call. With ``rgba`` (the original's call) the first output is
    one [B, C + 1, H, W] image, channels then alpha, written by the kernel in place (a
    concatenation afterwards would be one more pass, on PyTorch's thread pool), and the alpha
    output is empty. ``uv`` and ``atlas`` are the UV texture's tensors (None without one): inputs
    of the function so that autograd returns their gradients."""

    @staticmethod
    def forward(ctx, face_vertices, surface, vertex, uv, atlas, inputs, settings, tile, rgba):  # type: ignore[override]
        with _LOCK:
            numba.set_num_threads(_threads())
            prep = _Prepared(inputs, settings, tile)
            p = prep.params
            b, _, h, w = prep.shape
            dt = prep.fv.dtype
            nc = p.num_surface + p.num_vertex + p.num_uv
            softmax = p.rgb_aggregation == int(RgbAggregation.SOFTMAX)
            track_winner = not softmax or p.with_zbuffer
            zb = p.with_zbuffer != 0
            if rgba:  # the kernel writes alpha to the last channel of its alpha array
                channels = alpha = np.empty((b, nc + 1, h, w), dtype=dt)
            else:
                channels = np.empty((b, nc, h, w), dtype=dt)
                alpha = np.empty((b, 1, h, w), dtype=dt)
            depth = np.empty((b, 1, h, w) if p.with_depth else (0, 1, 1, 1), dtype=dt)
            # Every entry the backward reads is written by the forward kernel: no zero-fill.
            state = np.empty((b, 4, h, w), dtype=np.float64)
            values = np.empty((b, nc + p.with_depth, h, w) if softmax else (0, 0, 1, 1), dtype=np.float64)
            winner = np.empty((b, h, w) if track_winner else (0, 1, 1), dtype=np.int64)
            bary = np.empty((b, 3, h, w) if zb else (0, 3, 1, 1), dtype=dt)
            hard_depth = np.empty((b, 1, h, w) if zb else (0, 1, 1, 1), dtype=dt)
            cpu_kernels.forward(
                prep.geo, prep.surface, prep.vertex, prep.uv, prep.background, p,
                channels, alpha, depth, state, values, winner, bary, hard_depth,
            )  # fmt: skip
        ctx.prep = prep
        ctx.state = (state, values, winner)
        ctx.rgba = rgba
        ctx.inputs = (face_vertices, surface, vertex, uv, atlas)  # for first_order_only (not read by the kernels)
        if rgba:
            alpha = np.empty((0, 1, h, w), dtype=dt)
        outs = tuple(torch.from_numpy(a) for a in (channels, alpha, depth, winner, bary, hard_depth))
        ctx.mark_non_differentiable(*outs[3:])
        return outs

    @staticmethod
    def backward(ctx, grad_channels, grad_alpha, grad_depth, *_):  # type: ignore[override]
        prep: _Prepared = ctx.prep
        p = prep.params
        need_v, need_s, need_a, need_uv, need_atlas = ctx.needs_input_grad[:5]
        need_s = need_s and p.num_surface > 0
        need_a = need_a and p.num_vertex > 0
        # a nearest lookup is piecewise constant in the UVs: no gradient (as the reference: None)
        need_uv = need_uv and p.texture_filter != int(TextureFilter.NEAREST)
        if not (need_v or need_s or need_a or need_uv or need_atlas):
            return (None,) * 9
        b, f, _, _ = prep.shape
        state, values, winner = ctx.state
        t = prep.surface.shape[2]
        dt = prep.fv.dtype
        width = (
            cpu_kernels.G_ATTR
            + (t * p.num_surface if need_s else 0)
            + (3 * p.num_vertex if need_a else 0)
            + (6 if need_uv else 0)
        )
        # Every slot the reduction reads is written by the backward kernel: no zero-fill.
        grad_entries = np.empty((prep.geo.tile_faces.shape[0], width), dtype=np.float64)
        grad_v = np.empty((b, f, 3, 3) if need_v else (0, 0, 3, 3), dtype=dt)
        grad_s = np.empty((b, f, t, p.num_surface) if need_s else (0, 0, 0, p.num_surface), dtype=dt)
        grad_a = np.empty((b, f, 3, p.num_vertex) if need_a else (0, 0, 0, p.num_vertex), dtype=dt)
        grad_uv = np.empty((b, f, 3, 2) if need_uv else (0, 0, 3, 2), dtype=dt)
        # Upstream gradients in the input dtype (the kernel reads them as float64); alpha's is the
        # last channel of g_alpha, which is the RGBA gradient itself for an RGBA call.
        g_channels = _np(grad_channels, dt)
        g_alpha = g_channels if ctx.rgba else _np(grad_alpha, dt)
        g_depth = _np(grad_depth, dt) if p.with_depth else np.zeros((0, 1, 1, 1), dtype=dt)
        # A loss that does not read the channels (or depth) gives them an all-zero gradient:
        # their pair terms would add exact zeros, so the kernel skips them.
        nc = p.num_surface + p.num_vertex + p.num_uv
        need_values = bool(g_channels[:, :nc].any()) or bool(g_depth.any())
        need = (int(need_v), int(need_s), int(need_a), int(need_values), int(need_uv), int(need_atlas))
        grad_atlas, scale = _fixed_point_atlas(g_channels[:, nc - p.num_uv : nc], prep.uv.atlas.shape[0], need_atlas)
        with _LOCK:
            numba.set_num_threads(_threads())
            cpu_kernels.backward(
                prep.geo, prep.surface, prep.vertex, prep.uv, p, state, values, winner,
                g_channels, g_alpha, g_depth, need, grad_entries, grad_atlas, scale,
            )  # fmt: skip
            cpu_kernels.reduce_faces(
                prep.fv,
                grad_entries,
                prep.face_start,
                prep.entry_slot,
                need,
                grad_v,
                _flat(grad_s),
                _flat(grad_a),
                _flat(grad_uv),
            )
        grads = (
            torch.from_numpy(grad_v) if need_v else None,
            torch.from_numpy(grad_s) if need_s else None,
            torch.from_numpy(grad_a) if need_a else None,
            torch.from_numpy(grad_uv) if need_uv else None,
            torch.from_numpy((grad_atlas / scale).astype(prep.uv.atlas.dtype)) if need_atlas else None,
        )
        # A second derivative through the kernel would be wrong: make it raise instead.
        grads = first_order_only("cpu", grads, (*ctx.inputs, grad_channels, grad_alpha, grad_depth))
        return (*grads, None, None, None, None)


def _fixed_point_atlas(grad_uv_channels: np.ndarray, size: int, need: bool) -> tuple[np.ndarray, float]:
    """The int64 accumulator [size] of the atlas gradient (zeros; [0] unless ``need``) and its
    fixed-point scale (:func:`~softras.raster.uv.fixed_point_scale`) for the UV channels' upstream
    gradient [B, Cu, H, W]: the contributions' magnitudes sum to at most its absolute sum (a pair's
    lookup weights, and a pixel's pair weights, each sum to at most 1)."""
    if not need:
        return np.zeros(0, dtype=np.int64), 1.0
    return np.zeros(size, dtype=np.int64), fixed_point_scale(float(np.abs(grad_uv_channels, dtype=np.float64).sum()))


def _check_call(fv: torch.Tensor, tile: int) -> None:
    """What this backend needs of the face vertices (CPU, float32/float64) and of ``tile``."""
    if fv.device.type != "cpu":
        raise ValueError(f"face_vertices: the 'cpu' backend needs CPU tensors, got device {fv.device}")
    if fv.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"face_vertices: the 'cpu' backend supports float32 and float64, got {fv.dtype}")
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile: expected a positive int, got {tile!r}")


def rasterize(inputs: RasterInputs, settings: RasterSettings, *, tile: int = DEFAULT_TILE) -> RasterResult:
    """The backend entry point of the contract (see :mod:`softras.raster.contract`).

    Args:
        inputs: validated :class:`RasterInputs` (float32/float64 CPU tensors).
        settings: validated :class:`RasterSettings`.
        tile: screen tile size in pixels used for binning faces.

    Returns:
        :class:`RasterResult`: ``channels`` [B, Cs + Cv + Cu, H, W], ``alpha`` [B, 1, H, W] and
        ``depth`` [B, 1, H, W] differentiable w.r.t. face_vertices, surface, vertex and the UV
        texture's uv and atlas; the z-buffer outputs detached.
    """
    _check_call(inputs.face_vertices, tile)
    channels, alpha, depth, face_id, bary, hard_depth = _apply(inputs, settings, tile, rgba=False)
    return RasterResult.asked(settings, channels, alpha, depth, face_id, bary, hard_depth)


def rasterize_rgba(inputs: RasterInputs, settings: RasterSettings, *, tile: int = DEFAULT_TILE) -> torch.Tensor:
    """:func:`rasterize`'s channels and alpha as one [B, Cs + Cv + 1, H, W] tensor, written in place
    (the original's RGBA call; the depth and z-buffer outputs are not made)."""
    _check_call(inputs.face_vertices, tile)
    if settings.with_depth or settings.with_zbuffer:
        settings = dataclasses.replace(settings, with_depth=False, with_zbuffer=False)
    return _apply(inputs, settings, tile, rgba=True)[0]


def _apply(inputs: RasterInputs, settings: RasterSettings, tile: int, rgba: bool) -> tuple[torch.Tensor, ...]:
    """Run :class:`_RasterizeCPU` on ``inputs`` (attributes and UV texture cast to the vertices' dtype)."""
    fv = inputs.face_vertices
    surface, vertex = inputs.surface.to(fv.dtype), inputs.vertex.to(fv.dtype)
    maps = None if inputs.uv is None else inputs.uv.to(fv.dtype)
    inputs = inputs._replace(surface=surface, vertex=vertex, uv=maps)
    uv, atlas = (None, None) if maps is None else (maps.uv, maps.atlas)
    return _RasterizeCPU.apply(fv, surface, vertex, uv, atlas, inputs, settings, tile, rgba)


def rasterize_cpu(
    face_vertices: torch.Tensor, textures: torch.Tensor, settings: RasterSettings, *, tile: int = DEFAULT_TILE
) -> torch.Tensor:
    """The original's RGBA call on the fused kernels (colour = 3 surface or vertex channels).

    Args:
        face_vertices: [B, F, 3, 3] float32/float64 CPU tensor (screen space).
        textures: [B, F, R*R, 3] (``settings.texture_type='surface'``) or [B, F, 3, 3] ('vertex').
        settings: validated :class:`RasterSettings`.
        tile: screen tile size in pixels used for binning faces.

    Returns:
        [B, 4, H, W] images, differentiable w.r.t. ``face_vertices`` and ``textures``.
    """
    _check_call(face_vertices, tile)
    inputs = RasterInputs.from_textures(face_vertices, textures.to(face_vertices.dtype), settings)
    return rasterize_rgba(inputs, settings, tile=tile)
