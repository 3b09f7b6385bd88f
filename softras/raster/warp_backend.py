"""The ``warp`` backend (also registered as ``cuda``): tile-binned NVIDIA Warp kernels.

The GPU counterpart of the ``cpu`` backend, implementing :mod:`softras.raster.contract`
natively: attribute channels of any width (surface texels, vertex attributes and a UV-mapped,
mip-mapped texture, any of them may be absent), soft depth and the z-buffer outputs. Faces are
binned with the contract's :func:`~softras.raster.contract.pixel_ranges` and
:func:`~softras.raster.contract.bin_faces`;
the forward kernel runs one thread per pixel over its tile's faces and keeps only per-pixel
state; the backward kernel runs one thread per (face, tile) entry, recomputes the pair terms
and sums the entry's gradient. The kernels are written in Python with `NVIDIA Warp
<https://github.com/NVIDIA/warp>`_ (``pip install 'softras[gpu]'``): Warp compiles them at
first use (CUDA through NVRTC, so no CUDA toolkit is needed; the CPU through its bundled
Clang) and caches them on disk. The same source runs on CPU tensors, which is how the tests
run it on machines without a GPU. The binning itself is vectorised PyTorch on the tensors'
device.

Every coverage family runs here: SoftRas's sigmoid of sign·d²/σ on its own path, the other
distributions and T-conorms from the model's one source (:mod:`softras.raster.model`), with
exact gradients.

Precision: the kernels compute in the inputs' dtype (float32 or float64); ``compute_dtype=
torch.float64`` computes float32 inputs in float64 (the ``cpu`` backend's accuracy, slower on
GPUs with few float64 units). Per-face constants and the final chain rule to the vertices are
computed in float64 whatever the dtype. The depth softmax is taken relative to the running
maximum with depth differences formed before the division by γ (as the reference).

Determinism: by default each (face, tile) entry writes its gradient into its own slot and the
slots of each face are added in a fixed order, so the backward is bit-identical from run to
run; it costs one extra small kernel and E × (18 + T·Cs + 3·Cv + 6) numbers of memory (E
entries, only the attribute and corner-UV gradients that are needed). ``deterministic=False``
(or the environment variable ``SOFTRAS_WARP_DETERMINISTIC=0``) adds into the per-face gradients
with float atomics instead: less memory, slightly faster, but the summation order — hence the
last bits — varies between runs on a GPU. ``torch.use_deterministic_algorithms(True)`` forces
the deterministic mode. The UV texture's atlas gradient is summed in fixed point in both modes
(int64 atomics, :func:`softras.raster.uv.fixed_point_scale`): bit-identical whatever the order.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import NamedTuple

import torch

try:
    import warp as wp
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the 'warp' backend needs NVIDIA Warp (warp-lang), which is not installed: pip install 'softras[gpu]'"
    ) from exc

from .._jit_cache import warp_cache_dir
from . import warp_kernels
from .contract import (
    FaceConst,
    KernelParams,
    RasterInputs,
    RasterResult,
    RgbAggregation,
    bin_faces,
    kernel_params,
    pixel_centers,
    pixel_ranges,
)
from .first_order import first_order_only
from .settings import RasterSettings
from .uv import UVMaps, fixed_point_scale

__all__ = ["DEFAULT_TILE", "rasterize", "rasterize_warp"]

#: Screen tile size (pixels) of the binning: 8×8 did the least total work on W1 and W2 on Warp's
#: CPU device (vs 16 and 32; docs/gpu.md), and a 32-thread warp stays inside one tile. Not tuned
#: on a GPU (none was available).
DEFAULT_TILE = 8
_WP_DTYPE = {torch.float32: wp.float32, torch.float64: wp.float64}
_INT32_MAX = 2**31 - 1
_FLOAT32_INT_MAX = 2**24  # the largest count of consecutive integers float32 holds exactly
_initialised = False


def _init() -> None:
    """Configure and initialise Warp once (every ``wp.config`` setting of softras lives here).

    Warp's start-up banner and per-module load lines are silenced unless
    ``SOFTRAS_WARP_VERBOSE=1`` (they would otherwise interleave with training logs).
    """
    global _initialised
    if _initialised:
        return
    if os.environ.get("SOFTRAS_WARP_VERBOSE", "0") in ("", "0"):
        if hasattr(wp.config, "log_level") and hasattr(wp, "LOG_WARNING"):
            wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
        else:  # pragma: no cover - Warp < 1.19
            wp.config.quiet = True
    if getattr(wp.config, "kernel_cache_dir", None) is None and (cache := warp_cache_dir()) is not None:
        wp.config.kernel_cache_dir = cache
    wp.init()
    _initialised = True


def _default_deterministic() -> bool:
    if torch.are_deterministic_algorithms_enabled():
        return True
    return os.environ.get("SOFTRAS_WARP_DETERMINISTIC", "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def _torch_stream(device: torch.device) -> Iterator[None]:
    """Launch Warp kernels on PyTorch's current stream of ``device`` (CUDA), so that they are
    ordered with the surrounding PyTorch work without synchronisation."""
    if device.type == "cuda":
        # sync_enter=False: everything the kernels read was produced on this very stream.
        with wp.ScopedStream(wp.stream_from_torch(device), sync_enter=False):
            yield
    else:
        yield


def _wp(t: torch.Tensor | None, dtype: type | None = None, *, stand_in: tuple | None = None) -> wp.array:
    """Zero-copy Warp view of a contiguous tensor. Empty tensors, and ``None`` (an output not
    asked for; ``stand_in`` = (ndim, torch dtype, device)), get a one-element stand-in that the
    kernels never read or write."""
    if t is None:
        return _stand_in(*stand_in)
    t = t.detach()
    if t.numel() == 0:
        return _stand_in(t.ndim, t.dtype, t.device)
    return wp.from_torch(t, dtype=dtype, requires_grad=False)


@functools.lru_cache(maxsize=64)
def _stand_in(ndim: int, dtype: torch.dtype, device: torch.device) -> wp.array:
    return wp.from_torch(torch.zeros((1,) * ndim, dtype=dtype, device=device), requires_grad=False)


def _check_int32(what: str, n: int) -> None:
    if n > _INT32_MAX:
        raise ValueError(f"{what}: {n} exceeds the 32-bit indices of the 'warp' backend; render in smaller batches")


@functools.lru_cache(maxsize=32)
def _background(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The background values as a [C] tensor on ``device`` (cached: a renderer's background rarely
    changes, and a host-to-device copy per call would synchronise). Read-only."""
    return torch.tensor(values, dtype=dtype).to(device)


@functools.lru_cache(maxsize=64)
def _params(dtype: type, params: KernelParams) -> object:
    """The kernels' ``wp.struct`` filled from ``params`` (cached per value; never mutated)."""
    struct = warp_kernels.kernels(dtype).Params()
    for name, value in params._asdict().items():
        setattr(struct, name, value)
    return struct


class _Forward(NamedTuple):
    """The forward kernel's outputs in the compute dtype (``None``: not asked for)."""

    channels: torch.Tensor  # [B, Cs + Cv + Cu, H, W]
    alpha: torch.Tensor  # [B, 1, H, W]
    depth: torch.Tensor | None  # [B, 1, H, W]
    state: torch.Tensor  # [B, 4 or 5, H, W], see warp_kernels.forward
    winner: torch.Tensor | None  # [B, H, W] int32 flat face index b·F + f, or -1
    barycentrics: torch.Tensor | None  # [B, 3, H, W]
    hard_depth: torch.Tensor | None  # [B, 1, H, W]


class _Gradients(NamedTuple):
    """What :meth:`_Prepared.backward` returns, in the inputs' dtypes (``None``: not needed)."""

    face_vertices: torch.Tensor | None  # [B, F, 3, 3]
    surface: torch.Tensor | None  # [B, F, T, Cs]
    vertex: torch.Tensor | None  # [B, F, 3, Cv]
    uv: torch.Tensor | None  # [B, F, 3, 2]
    atlas: torch.Tensor | None  # [A]


class _UVArrays(NamedTuple):
    """The UV texture as the kernels read it (one-element stand-ins without one)."""

    uvs: torch.Tensor  # [N, 3, 2] compute dtype
    material: torch.Tensor  # [N] int32
    atlas: torch.Tensor  # [A] compute dtype
    levels: torch.Tensor  # [M, L, 3] int32 (offset, height, width)
    level_count: torch.Tensor  # [M] int32


def _uv_arrays(maps: UVMaps | None, n: int, cd: torch.dtype, dev: torch.device) -> _UVArrays:
    """The kernels' view of ``maps`` for N = B·F faces, in the compute dtype ``cd``."""
    if maps is None:
        return _UVArrays(
            torch.zeros(1, 1, 1, dtype=cd, device=dev), torch.zeros(1, dtype=torch.int32, device=dev),
            torch.zeros(1, dtype=cd, device=dev), torch.zeros(1, 1, 3, dtype=torch.int32, device=dev),
            torch.ones(1, dtype=torch.int32, device=dev),
        )  # fmt: skip
    _check_int32("UV atlas entries", maps.atlas.numel())
    return _UVArrays(
        maps.uv.detach().reshape(n, 3, 2).to(cd).contiguous(),
        maps.material.reshape(n).to(torch.int32).contiguous(),
        maps.atlas.detach().to(cd).contiguous(),
        maps.levels.to(torch.int32).contiguous(),
        maps.level_count.to(torch.int32).contiguous(),
    )


class _Prepared:
    """Per-call face data, binning and parameters, shared by forward and backward."""

    def __init__(
        self,
        inputs: RasterInputs,
        s: RasterSettings,
        tile: int,
        compute_dtype: torch.dtype,
        deterministic: bool,
    ) -> None:
        fv = inputs.face_vertices.detach()
        dev, dt = fv.device, fv.dtype
        b, f = fv.shape[:2]
        h, w = s.image_height, s.image_width
        n = b * f
        self.shape = (b, f, h, w)
        self.num_surface, self.num_vertex = int(inputs.surface.shape[3]), int(inputs.vertex.shape[3])
        self.num_texels = int(inputs.surface.shape[2])
        self.num_uv = inputs.num_uv
        self.atlas_size = 0 if inputs.uv is None else int(inputs.uv.atlas.numel())
        self.settings = s
        self.device = dev
        self.wp_device = wp.device_from_torch(dev)
        self.dtype = dt
        self.cdtype = compute_dtype
        self.deterministic = deterministic
        self.tile = tile
        self.kernels = warp_kernels.kernels(_WP_DTYPE[compute_dtype])

        with torch.no_grad():
            # ---- decisions shared with every backend, in the input dtype ----------------------
            ranges = pixel_ranges(fv, s.cull_radius, (h, w))
            bins = bin_faces(ranges, tile, (h, w))
            self.ntx, self.nty = bins.ntx, bins.nty
            self.nt = bins.ntx * bins.nty
            _check_int32("pixels (batch × tiles × tile²)", b * self.nt * tile * tile)
            _check_int32("(face, tile) entries", bins.num_entries)
            self.num_entries = bins.num_entries
            self.pr = torch.stack([ranges.c0, ranges.c1, ranges.r0, ranges.r1], -1).reshape(n, 4).to(torch.int32)
            self.front = ranges.front.reshape(n).to(torch.int32)
            self.tile_start = bins.tile_start.to(torch.int32)
            self.tile_faces = bins.tile_faces.to(torch.int32)
            self.entry_face = bins.entry_face.to(torch.int32)
            self.entry_tile = bins.entry_tile.to(torch.int32)
            self.face_start = bins.face_start.to(torch.int32)

            # ---- kernel inputs in the compute dtype -------------------------------------------
            cd = compute_dtype
            self.fv = fv.reshape(n, 3, 3).to(cd).contiguous()
            self.surface = inputs.surface.detach().reshape(n, self.num_texels, self.num_surface).to(cd).contiguous()
            self.vertex = inputs.vertex.detach().reshape(n, 3, self.num_vertex).to(cd).contiguous()
            self.background = _background(tuple(inputs.background), cd, dev)
            self.xs = pixel_centers(w, flip=False, dtype=torch.float64, device=dev).to(cd)
            self.ys = pixel_centers(h, flip=True, dtype=torch.float64, device=dev).to(cd)
            self.fc = torch.empty(n, int(FaceConst.COUNT), dtype=cd, device=dev)
            self.uv = _uv_arrays(inputs.uv, n, cd, dev)

        # Warp views of the inputs both kernels read (made once per call).
        self.arrays = [_wp(t) for t in (self.xs, self.ys, self.fc, self.front, self.surface, self.vertex)]
        self.wp_fv, self.wp_pr = _wp(self.fv), _wp(self.pr)
        self.uv_arrays = [_wp(t) for t in self.uv]
        self.params = _params(_WP_DTYPE[compute_dtype], kernel_params(inputs, s))
        self.softmax = s.aggr_func_rgb == RgbAggregation.SOFTMAX.name.lower()
        with _torch_stream(dev):
            wp.launch(self.kernels.prepare, dim=n, inputs=[self.wp_fv, self.arrays[2]], device=self.wp_device)

    def forward(self) -> _Forward:
        """Run the forward kernel (compute dtype outputs)."""
        b, _, h, w = self.shape
        s = self.settings
        cd, dev = self.cdtype, self.device
        new = torch.empty
        channels = new(b, self.num_surface + self.num_vertex + self.num_uv, h, w, dtype=cd, device=dev)
        alpha = new(b, 1, h, w, dtype=cd, device=dev)
        # the max T-conorm keeps the face holding the largest D in a fifth channel
        state = new(b, 5 if s.aggr_func_alpha == "max" else 4, h, w, dtype=cd, device=dev)
        depth = new(b, 1, h, w, dtype=cd, device=dev) if s.with_depth else None
        zbuffer = s.with_zbuffer or not self.softmax
        winner = new(b, h, w, dtype=torch.int32, device=dev) if zbuffer else None
        bary = new(b, 3, h, w, dtype=cd, device=dev) if s.with_zbuffer else None
        hard_depth = new(b, 1, h, w, dtype=cd, device=dev) if s.with_zbuffer else None
        inputs = [
            self.params, *self.arrays[:4], _wp(self.surface.view(-1)), _wp(self.vertex.view(-1)), *self.uv_arrays,
            _wp(self.background), self.wp_pr, _wp(self.tile_start), _wp(self.tile_faces), self.tile, self.ntx,
            self.nt, _wp(channels.view(-1)), _wp(alpha),
            _wp(depth, stand_in=(4, cd, dev)), _wp(state), _wp(winner, stand_in=(3, torch.int32, dev)),
            _wp(bary, stand_in=(4, cd, dev)), _wp(hard_depth, stand_in=(4, cd, dev)),
        ]  # fmt: skip
        with _torch_stream(dev):
            dim = b * self.nt * self.tile * self.tile  # one thread per pixel of every tile
            wp.launch(self.kernels.forward, dim=dim, inputs=inputs, device=self.wp_device)
        return _Forward(channels, alpha, depth, state, winner, bary, hard_depth)

    def backward(
        self,
        saved: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None],
        grad_channels: torch.Tensor,
        grad_alpha: torch.Tensor,
        grad_depth: torch.Tensor | None,
        needs: tuple[bool, bool, bool, bool, bool],
        dtypes: tuple[torch.dtype, torch.dtype],
    ) -> _Gradients:
        """Gradients w.r.t. face vertices, surface, vertex, the corner UVs and the atlas (the
        inputs' dtypes, ``dtypes`` = those of uv and atlas; None where ``needs`` says not needed).
        ``saved``: the forward's channels, depth, state and winner (compute dtype, see :class:`_Forward`)."""
        b, f, _, _ = self.shape
        n = b * f
        cd, dev = self.cdtype, self.device
        need_v, need_s, need_a, need_uv, need_atlas = needs
        layout = self._row_layout(need_s, need_a, need_uv)
        width = layout["width"]
        e = self.num_entries
        _check_int32("gradient slots (entries × row width)", e * width)
        if self.deterministic:
            slots = torch.zeros(e, width, dtype=cd, device=dev)
            per_face = torch.empty(n, width, dtype=cd, device=dev)
        else:
            slots = torch.zeros(1, width, dtype=cd, device=dev)
            per_face = torch.zeros(n, width, dtype=cd, device=dev)
        grads = [None if g is None else g.to(cd).contiguous() for g in (grad_channels, grad_alpha, grad_depth)]
        grad_atlas, atlas_scale = self._atlas_accumulator(grad_channels) if need_atlas else (None, 1.0)
        wp_slots, wp_per_face = _wp(slots), _wp(per_face)
        channels, depth, state, winner = saved
        inputs = [
            self.params, *self.arrays, *self.uv_arrays, self.wp_pr, _wp(self.entry_face), _wp(self.entry_tile),
            self.tile, self.ntx, int(need_v), layout["surface"], layout["vertex"], layout["uv"], int(need_atlas),
            atlas_scale, int(self.deterministic), _wp(channels), _wp(depth, stand_in=(4, cd, dev)), _wp(state),
            _wp(winner, stand_in=(3, torch.int32, dev)), _wp(grads[0]), _wp(grads[1]),
            _wp(grads[2], stand_in=(4, cd, dev)), wp_slots, wp_per_face,
            _wp(grad_atlas, stand_in=(1, torch.int64, dev)),
        ]  # fmt: skip
        grad_v = None
        with _torch_stream(dev):
            if e > 0:
                wp.launch(self.kernels.backward, dim=e, inputs=inputs, device=self.wp_device)
            if self.deterministic:
                wp.launch(
                    self.kernels.reduce, dim=(n, width), inputs=[_wp(self.face_start), wp_slots, wp_per_face],
                    device=self.wp_device,
                )  # fmt: skip
            if need_v:
                grad_fv = torch.empty(n, 3, 3, dtype=cd, device=dev)
                wp.launch(
                    self.kernels.chain, dim=n, inputs=[self.wp_fv, wp_per_face, _wp(grad_fv)],
                    device=self.wp_device,
                )  # fmt: skip
                grad_v = grad_fv.reshape(b, f, 3, 3).to(self.dtype)

        def part(name: str, size: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
            if layout[name] < 0:
                return None
            return per_face[:, layout[name] : layout[name] + size].reshape(b, f, *shape).to(dtype)

        ts, tv = self.num_texels * self.num_surface, 3 * self.num_vertex
        return _Gradients(
            grad_v,
            part("surface", ts, (self.num_texels, self.num_surface), self.dtype),
            part("vertex", tv, (3, self.num_vertex), self.dtype),
            part("uv", warp_kernels.UV_GRAD_WIDTH, (3, 2), dtypes[0]),
            None if grad_atlas is None else (grad_atlas.to(torch.float64) / atlas_scale).to(dtypes[1]),
        )

    def _atlas_accumulator(self, grad_channels: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The atlas gradient's int64 accumulators [A] (zeros) and the fixed-point scale of its
        contributions, from the call's Σ |upstream gradient of the UV channels| (float64; one
        device-to-host copy)."""
        first_uv = self.num_surface + self.num_vertex
        bound = grad_channels[:, first_uv:].abs().sum(dtype=torch.float64).item()
        return torch.zeros(self.atlas_size, dtype=torch.int64, device=self.device), fixed_point_scale(bound)

    def _row_layout(self, need_s: bool, need_a: bool, need_uv: bool) -> dict[str, int]:
        """Offsets of the surface, vertex and corner-UV gradients in the per-face gradient row
        (−1: not needed; :data:`warp_kernels.G_ATTR` on) and the row's ``width``."""
        layout, at = {}, warp_kernels.G_ATTR
        sizes = {
            "surface": self.num_texels * self.num_surface,
            "vertex": 3 * self.num_vertex,
            "uv": warp_kernels.UV_GRAD_WIDTH,
        }
        for name, need in (("surface", need_s), ("vertex", need_a), ("uv", need_uv)):
            layout[name] = at if need else -1
            at += sizes[name] if need else 0
        layout["width"] = at
        return layout


class _RasterizeWarp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face_vertices, surface, vertex, uv, atlas, prep):  # type: ignore[override]
        fwd = prep.forward()
        dt = face_vertices.dtype
        channels, alpha = fwd.channels.to(dt), fwd.alpha.to(dt)
        depth = face_vertices.new_empty(0) if fwd.depth is None else fwd.depth.to(dt)
        if prep.settings.with_zbuffer:
            b, f = prep.shape[:2]
            offset = torch.arange(b, device=prep.device)[:, None, None] * f
            win = fwd.winner.long()
            face_id = torch.where(win >= 0, win - offset, win)
            bary, hard_depth = fwd.barycentrics.to(dt), fwd.hard_depth.to(dt)
        else:
            # Distinct placeholders (not asked for; the entry point returns None for them).
            face_id, bary, hard_depth = (face_vertices.new_empty(0) for _ in range(3))
        ctx.prep = prep
        # for first_order_only (not read by the kernels); uv and atlas are None without a UV texture
        ctx.inputs = (face_vertices, surface, vertex, uv, atlas)
        ctx.uv_dtypes = (dt, dt) if uv is None else (uv.dtype, atlas.dtype)
        # Saved as returned when the dtypes agree, so that in-place changes to the outputs are caught.
        ctx.save_for_backward(
            channels if channels.dtype == fwd.channels.dtype else fwd.channels,
            None if fwd.depth is None else (depth if depth.dtype == fwd.depth.dtype else fwd.depth),
            fwd.state,
            fwd.winner,
        )
        ctx.mark_non_differentiable(face_id, bary, hard_depth)
        return channels, alpha, depth, face_id, bary, hard_depth

    @staticmethod
    def backward(ctx, grad_channels, grad_alpha, grad_depth, *_):  # type: ignore[override]
        saved = ctx.saved_tensors
        needs = tuple(bool(x) for x in ctx.needs_input_grad[:5])
        if not any(needs):
            return None, None, None, None, None, None
        prep: _Prepared = ctx.prep
        with_depth = saved[1] is not None
        with torch.no_grad():
            grads = prep.backward(
                saved, grad_channels, grad_alpha, grad_depth if with_depth else None, needs, ctx.uv_dtypes
            )
        # A second derivative through the kernels would be wrong: make it raise instead.
        grads = first_order_only("warp", grads, (*ctx.inputs, grad_channels, grad_alpha, grad_depth))
        return (*grads, None)


def rasterize(
    inputs: RasterInputs,
    settings: RasterSettings,
    *,
    tile: int = DEFAULT_TILE,
    deterministic: bool | None = None,
    compute_dtype: torch.dtype | None = None,
) -> RasterResult:
    """The backend entry point of the contract (see :mod:`softras.raster.contract`).

    Args:
        inputs: validated :class:`RasterInputs` (float32/float64 on a cpu or cuda device).
        settings: validated :class:`RasterSettings`.
        tile: screen tile size in pixels used for binning faces.
        deterministic: bit-identical backward (per-entry slots reduced in a fixed order)
            instead of float atomics. ``None``: True unless ``SOFTRAS_WARP_DETERMINISTIC=0``
            (always True under ``torch.use_deterministic_algorithms(True)``).
        compute_dtype: arithmetic of the per-pixel kernels, ``None`` for the inputs' dtype;
            ``torch.float64`` for float32 inputs gives float64 accuracy.

    Returns:
        :class:`RasterResult` in the inputs' dtype: ``channels`` [B, Cs + Cv + Cu, H, W], ``alpha``,
        ``depth`` (with_depth) differentiable w.r.t. face_vertices, surface, vertex and the UV
        texture's uv and atlas; the z-buffer outputs (with_zbuffer) detached.
    """
    fv = inputs.face_vertices
    if fv.dtype not in _WP_DTYPE:
        raise TypeError(f"face_vertices: the 'warp' backend supports float32 and float64, got {fv.dtype}")
    if fv.device.type not in ("cpu", "cuda"):
        raise ValueError(f"face_vertices: the 'warp' backend runs on cpu or cuda tensors, got {fv.device}")
    if compute_dtype is None:
        compute_dtype = fv.dtype
    if compute_dtype not in _WP_DTYPE:
        raise TypeError(f"compute_dtype: expected torch.float32 or torch.float64, got {compute_dtype}")
    if compute_dtype == torch.float32 and fv.dtype == torch.float64:
        raise ValueError("compute_dtype: float32 arithmetic for float64 inputs is not supported")
    if settings.aggr_func_alpha == "max" and compute_dtype == torch.float32 and fv.shape[1] > _FLOAT32_INT_MAX:
        raise ValueError(
            f"face_vertices: aggr_func_alpha='max' keeps face indices in float32 state, exact up to "
            f"{_FLOAT32_INT_MAX} faces, got {fv.shape[1]}; use compute_dtype=torch.float64"
        )
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile: expected a positive int, got {tile!r}")
    if deterministic is None:
        deterministic = _default_deterministic()
    elif torch.are_deterministic_algorithms_enabled():
        deterministic = True
    _init()
    fv = fv.contiguous()
    surface, vertex = inputs.surface.to(fv.dtype), inputs.vertex.to(fv.dtype)
    maps = inputs.uv
    prep = _Prepared(RasterInputs(fv, surface, vertex, inputs.background, maps), settings, tile, compute_dtype,
                     bool(deterministic))  # fmt: skip
    uv, atlas = (None, None) if maps is None else (maps.uv, maps.atlas)
    channels, alpha, depth, face_id, bary, hard_depth = _RasterizeWarp.apply(fv, surface, vertex, uv, atlas, prep)
    return RasterResult.asked(settings, channels, alpha, depth, face_id, bary, hard_depth)


def rasterize_warp(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    settings: RasterSettings,
    *,
    tile: int = DEFAULT_TILE,
    deterministic: bool | None = None,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Soft-rasterize colours with the Warp kernels into [B, 4, H, W] RGBA (the original's
    colour-only signature over :func:`rasterize`; options as there).

    Args:
        face_vertices: [B, F, 3, 3] float32/float64 screen-space triangles.
        textures: [B, F, R*R, 3] (``settings.texture_type='surface'``) or [B, F, 3, 3]
            (``'vertex'``), same device.
        settings: validated :class:`RasterSettings` (its ``background_color`` is the background).

    Returns:
        [B, 4, H, W] images in the inputs' dtype, differentiable w.r.t. ``face_vertices`` and
        ``textures``.
    """
    if textures.device != face_vertices.device:
        raise ValueError(f"textures: expected device {face_vertices.device} (as face_vertices), got {textures.device}")
    inputs = RasterInputs.from_textures(face_vertices, textures.to(face_vertices.dtype), settings)
    result = rasterize(inputs, settings, tile=tile, deterministic=deterministic, compute_dtype=compute_dtype)
    return torch.cat([result.channels, result.alpha], dim=1)
