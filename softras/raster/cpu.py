"""The ``cpu`` backend: fused, tile-binned Numba kernels for forward and backward.

Same semantics as :mod:`softras.raster.reference` (tested against it option by option), but
each (pixel, face) pair is evaluated in registers and never stored: memory is
O(B·H·W + B·F·tiles-per-face), and the backward recomputes pair terms.

Threads: the kernels use Numba's ``workqueue`` threading layer (no OpenMP, so no spin-wait
stalls next to PyTorch's OpenMP pool) and as many threads as ``torch.get_num_threads()``
(capped by ``NUMBA_NUM_THREADS``). Set ``NUMBA_THREADING_LAYER`` yourself to override the
layer. Compiled kernels are cached on disk (``__pycache__`` or ``NUMBA_CACHE_DIR``): the first
call in a fresh environment compiles for ~20–40 s, later processes load them in about a second.
"""

from __future__ import annotations

import math
import os
import threading

import numba
import numpy as np
import torch

from ._transitional import run_rgba_backend
from .contract import RasterInputs, RasterResult
from .reference import _DET_EPS as DET_EPS
from .reference import pixel_centers, softmax_constants
from .settings import RasterSettings

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

from . import cpu_kernels as K

__all__ = ["DEFAULT_TILE", "rasterize_cpu"]

DEFAULT_TILE = 32
_LOCK = threading.Lock()  # the workqueue layer is not re-entrant across Python threads
_DIST = {"hard": 0, "barycentric": 1, "euclidean": 2}
_RGB = {"hard": 0, "softmax": 1}
_ALPHA = {"hard": 0, "sum": 1, "prod": 2}
_TEX = {"surface": 0, "vertex": 1}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _threads() -> int:
    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


class _Prepared:
    """Per-call face data, binning and options, shared by forward and backward."""

    def __init__(self, face_vertices: torch.Tensor, textures: torch.Tensor, s: RasterSettings, tile: int) -> None:
        b, f = face_vertices.shape[:2]
        h, w = s.image_height, s.image_width
        self.shape = (b, f, h, w)
        self.fv = _np(face_vertices)
        dt = self.fv.dtype
        self.inv = np.empty((b, f, 3, 3), dtype=np.float64)
        self.box = np.empty((b, f, 4), dtype=dt)
        self.front = np.empty((b, f), dtype=np.bool_)
        self.pr = np.empty((b, f, 4), dtype=np.int64)
        self.xs = _np(pixel_centers(w, flip=False, dtype=face_vertices.dtype, device=torch.device("cpu")))
        self.ys = _np(pixel_centers(h, flip=True, dtype=face_vertices.dtype, device=torch.device("cpu")))
        # float64 pixel centres for the kernels' arithmetic (the dtype ones decide the box cull)
        self.xs64 = _np(pixel_centers(w, flip=False, dtype=torch.float64, device=torch.device("cpu")))
        self.ys64 = _np(pixel_centers(h, flip=True, dtype=torch.float64, device=torch.device("cpu")))
        consts = np.array([s.cull_radius], dtype=dt)
        K.prepare_faces(self.fv, consts, self.xs, self.ys, self.inv, self.box, self.front, self.pr)
        self.tile = tile
        self.ntx, self.nty = math.ceil(w / tile), math.ceil(h / tile)
        self.tile_start, self.tile_faces, self.face_start, self.face_entries = K.bin_faces(
            self.pr[..., 0], self.pr[..., 1], self.pr[..., 2], self.pr[..., 3], tile, self.ntx, self.nty
        )
        self.tex = _np(textures)
        r = math.isqrt(textures.shape[2]) if s.texture_type == "surface" else 1
        self.opts = np.array(
            [_DIST[s.dist_func], _RGB[s.aggr_func_rgb], _ALPHA[s.aggr_func_alpha], _TEX[s.texture_type], r,
             int(s.fill_back), 0, 0],
            dtype=np.int64,
        )  # fmt: skip
        inv_scale, zp_bg = softmax_constants(s)
        self.fp = np.array(
            [s.sigma_val, s.cull_threshold, s.near, s.far, inv_scale, zp_bg, *s.background_color], dtype=np.float64
        )

    def args(self) -> tuple:
        return (
            self.xs64, self.ys64, self.fv, self.inv, self.front, self.tex, self.pr,
            self.tile_start, self.tile_faces, self.tile, self.ntx, self.nty,
        )  # fmt: skip


class _SoftRasterizeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face_vertices, textures, settings, tile):  # type: ignore[override]
        with _LOCK:
            numba.set_num_threads(_threads())
            prep = _Prepared(face_vertices, textures, settings, tile)
            b, _, h, w = prep.shape
            out = np.empty((b, 4, h, w), dtype=prep.fv.dtype)
            # Every entry the backward reads is written by the forward kernel: no zero-fill.
            state = np.empty((b, 3, h, w), dtype=np.float64)
            winner = np.empty((b, h, w), dtype=np.int64)
            K.forward(*prep.args(), prep.opts, prep.fp, out, state, winner)
        ctx.prep = prep
        ctx.state = (out, state, winner)
        ctx.texture_shape = textures.shape
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad_images):  # type: ignore[override]
        need_v, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        prep: _Prepared = ctx.prep
        b, f, _, _ = prep.shape
        out, state, winner = ctx.state
        t = ctx.texture_shape[2]
        opts = prep.opts.copy()
        opts[6], opts[7] = int(need_v), int(need_t)
        # Every slot the reduction reads is written by the backward kernel: no zero-fill.
        grad_entries = np.empty((prep.tile_faces.shape[0], K.G_TEX + (3 * t if need_t else 0)), dtype=np.float64)
        grad_out = _np(grad_images)  # any float dtype: the kernel reads it as float64
        grad_v = np.empty((b, f, 3, 3) if need_v else (0, 0, 3, 3), dtype=prep.fv.dtype)
        grad_t = np.empty((b, f, t if need_t else 0, 3), dtype=prep.fv.dtype)
        with _LOCK:
            numba.set_num_threads(_threads())
            K.backward(*prep.args(), opts, prep.fp, out, state, winner, grad_out, grad_entries)
            K.reduce_faces(prep.fv, DET_EPS, grad_entries, prep.face_start, prep.face_entries, need_v, grad_v, grad_t)
        return (
            torch.from_numpy(grad_v) if need_v else None,
            torch.from_numpy(grad_t) if need_t else None,
            None,
            None,
        )


def rasterize_cpu(
    face_vertices: torch.Tensor, textures: torch.Tensor, settings: RasterSettings, *, tile: int = DEFAULT_TILE
) -> torch.Tensor:
    """Soft-rasterize on the CPU with the fused kernels (same contract as ``rasterize_reference``).

    Args:
        face_vertices: [B, F, 3, 3] float32/float64 CPU tensor (screen space).
        textures: [B, F, R*R, 3] or [B, F, 3, 3], same dtype and device.
        settings: validated :class:`RasterSettings`.
        tile: screen tile size in pixels used for binning faces.

    Returns:
        [B, 4, H, W] images, differentiable w.r.t. ``face_vertices`` and ``textures``.
    """
    if face_vertices.device.type != "cpu":
        raise ValueError(f"face_vertices: the 'cpu' backend needs CPU tensors, got device {face_vertices.device}")
    if face_vertices.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"face_vertices: the 'cpu' backend supports float32 and float64, got {face_vertices.dtype}")
    return _SoftRasterizeCPU.apply(face_vertices, textures.to(face_vertices.dtype), settings, tile)


def rasterize(inputs: RasterInputs, settings: RasterSettings) -> RasterResult:
    """The backend entry point of the contract (see :mod:`softras.raster.contract`)."""
    return run_rgba_backend(rasterize_cpu, "cpu", inputs, settings)
