"""The ``warp`` backend (also registered as ``cuda``): tile-binned NVIDIA Warp kernels.

The GPU counterpart of the ``cpu`` backend, with the same semantics (tested against the
reference backend option by option) and the same structure: faces are binned by their
bounding box grown by √θ into screen tiles; the forward kernel runs one thread per pixel
over its tile's faces and keeps only per-pixel state; the backward kernel runs one thread
per (face, tile) entry, recomputes the pair terms and sums the entry's gradient in registers.
The kernels are written in Python with `NVIDIA Warp <https://github.com/NVIDIA/warp>`_
(``pip install 'softras[gpu]'``): Warp compiles them at first use (CUDA through NVRTC, so no
CUDA toolkit is needed; the CPU through its bundled Clang) and caches them on disk
(``~/.cache/warp``). The same source runs on CPU tensors, which is how the tests run it on
machines without a GPU. The binning itself is vectorised PyTorch on the tensors' device.

Precision: the kernels compute in the inputs' dtype (float32 or float64); ``compute_dtype=
torch.float64`` computes float32 inputs in float64 (the ``cpu`` backend's accuracy, slower on
GPUs with few float64 units). Per-face constants and the final chain rule to the vertices are
computed in float64 whatever the dtype. The depth softmax is taken relative to the running
maximum with depth differences formed before the division by γ (as the reference).

Determinism: by default each (face, tile) entry writes its gradient into its own slot and the
slots of each face are added in a fixed order, so the backward is bit-identical from run to
run; it costs one extra small kernel and E × (18 + 3·T) numbers of memory (E entries, T
texels or vertex colours per face). ``deterministic=False`` (or the environment variable
``SOFTRAS_WARP_DETERMINISTIC=0``) adds into the per-face gradients with float atomics instead:
less memory, slightly faster, but the summation order — hence the last bits — varies between
runs on a GPU. ``torch.use_deterministic_algorithms(True)`` forces the deterministic mode.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import torch
from torch.autograd.function import once_differentiable

try:
    import warp as wp
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the 'warp' backend needs NVIDIA Warp (warp-lang), which is not installed: pip install 'softras[gpu]'"
    ) from exc

from .._jit_cache import warp_cache_dir
from . import warp_kernels as K
from ._transitional import run_rgba_backend
from .contract import RasterInputs, RasterResult
from .reference import pixel_centers, softmax_constants
from .settings import RasterSettings

__all__ = ["DEFAULT_TILE", "rasterize_warp"]

#: Screen tile size (pixels) of the binning: 8×8 did the least total work on W1 and W2 on Warp's
#: CPU device (vs 16 and 32; docs/gpu.md), and a 32-thread warp stays inside one tile. Not tuned
#: on a GPU (none was available).
DEFAULT_TILE = 8
_DIST = {"hard": 0, "barycentric": 1, "euclidean": 2}
_RGB = {"hard": 0, "softmax": 1}
_ALPHA = {"hard": 0, "sum": 1, "prod": 2}
_TEX = {"surface": 0, "vertex": 1}
_WP_DTYPE = {torch.float32: wp.float32, torch.float64: wp.float64}
_INT32_MAX = 2**31 - 1
_initialised = False


def _init() -> None:
    """Initialise Warp once; its start-up banner and per-module load lines are silenced unless
    ``SOFTRAS_WARP_VERBOSE=1`` (they would otherwise interleave with training logs)."""
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


def _wp(t: torch.Tensor, dtype: type | None = None) -> wp.array:
    """Zero-copy Warp view of a contiguous tensor (empty tensors get a one-element stand-in)."""
    t = t.detach()
    if t.numel() == 0:
        t = torch.zeros((1,) * t.ndim, dtype=t.dtype, device=t.device)
    return wp.from_torch(t, dtype=dtype, requires_grad=False)


def _check_int32(what: str, n: int) -> None:
    if n > _INT32_MAX:
        raise ValueError(f"{what}: {n} exceeds the 32-bit indices of the 'warp' backend; render in smaller batches")


class _Prepared:
    """Per-call face data, binning and options, shared by forward and backward."""

    def __init__(
        self,
        face_vertices: torch.Tensor,
        textures: torch.Tensor,
        s: RasterSettings,
        tile: int,
        compute_dtype: torch.dtype,
        deterministic: bool,
    ) -> None:
        dev, dt = face_vertices.device, face_vertices.dtype
        b, f = face_vertices.shape[:2]
        h, w = s.image_height, s.image_width
        n = b * f
        self.shape = (b, f, h, w)
        self.device = dev
        self.wp_device = wp.device_from_torch(dev)
        self.dtype = dt
        self.cdtype = compute_dtype
        self.deterministic = deterministic
        self.tile = tile
        self.ntx, self.nty = math.ceil(w / tile), math.ceil(h / tile)
        self.nt = self.ntx * self.nty
        _check_int32("pixels (batch × tiles × tile²)", b * self.nt * tile * tile)
        self.kernels = K.kernels(_WP_DTYPE[compute_dtype])

        with torch.no_grad():
            fv = face_vertices.detach()
            # ---- decisions shared with the reference, in the input dtype --------------------
            xs_, ys_ = fv[..., 0].reshape(n, 3), fv[..., 1].reshape(n, 3)
            g = torch.tensor(s.cull_radius, dtype=dt, device=dev)
            xmin, xmax = xs_.amin(1) - g, xs_.amax(1) + g
            ymin, ymax = ys_.amin(1) - g, ys_.amax(1) + g
            x0, y0 = xs_[:, 0], ys_[:, 0]
            x1, y1 = xs_[:, 1], ys_[:, 1]
            x2, y2 = xs_[:, 2], ys_[:, 2]
            front = (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0)
            # Exact pixel ranges: the pixel centres inside the grown box (as the reference's
            # per-pair box test); rows count from the top, y centres are ascending here.
            xc = pixel_centers(w, flip=False, dtype=dt, device=dev)
            yc = pixel_centers(h, flip=False, dtype=dt, device=dev)
            c0 = torch.searchsorted(xc, xmin.contiguous())
            c1 = torch.searchsorted(xc, xmax.contiguous(), right=True) - 1
            r0 = (h - 1) - (torch.searchsorted(yc, ymax.contiguous(), right=True) - 1)
            r1 = (h - 1) - torch.searchsorted(yc, ymin.contiguous())
            empty = (c1 < c0) | (r1 < r0)
            # An empty range is (0, -1, 0, -1) (no host sync: no boolean indexing).
            c0, c1 = torch.where(empty, 0, c0), torch.where(empty, -1, c1)
            r0, r1 = torch.where(empty, 0, r0), torch.where(empty, -1, r1)
            self.pr = torch.stack([c0, c1, r0, r1], 1).to(torch.int32).contiguous()
            self.front = front.to(torch.int32).contiguous()

            # ---- binning: (face, tile) entries, face-major, and per-tile face lists ----------
            tx0, tx1 = c0 // tile, c1 // tile
            ty0, ty1 = r0 // tile, r1 // tile
            wide = tx1 - tx0 + 1
            counts = torch.where(empty, 0, wide * (ty1 - ty0 + 1))
            face_start = torch.zeros(n + 1, dtype=torch.long, device=dev)
            face_start[1:] = counts.cumsum(0)
            num_entries = int(face_start[-1])
            _check_int32("(face, tile) entries", num_entries)
            self.num_entries = num_entries
            entries = torch.arange(num_entries, device=dev)
            entry_face = torch.searchsorted(face_start[1:], entries, right=True)  # face of each entry
            local = entries - face_start[entry_face]
            entry_tile = (ty0[entry_face] + local // wide[entry_face]) * self.ntx + tx0[entry_face]
            entry_tile += local % wide[entry_face]
            job = (entry_face // f) * self.nt + entry_tile
            job_sorted, order = torch.sort(job, stable=True)  # stable: ascending faces per tile
            self.tile_faces = entry_face[order].to(torch.int32)
            self.tile_start = torch.searchsorted(
                job_sorted, torch.arange(b * self.nt + 1, device=dev, dtype=job_sorted.dtype)
            ).to(torch.int32)
            self.entry_face = entry_face.to(torch.int32)
            self.entry_tile = entry_tile.to(torch.int32)
            self.face_start = face_start.to(torch.int32)

            # ---- kernel inputs in the compute dtype ---------------------------------------------
            cd = compute_dtype
            self.fv = fv.reshape(n, 3, 3).to(cd).contiguous()
            self.tex = textures.detach().reshape(n, textures.shape[2], 3).to(cd).contiguous()
            self.xs = pixel_centers(w, flip=False, dtype=torch.float64, device=dev).to(cd)
            self.ys = pixel_centers(h, flip=True, dtype=torch.float64, device=dev).to(cd)
            self.fc = torch.empty(n, K.NUM_FACE_CONSTS, dtype=cd, device=dev)

        self.opts = (
            _DIST[s.dist_func], _RGB[s.aggr_func_rgb], _ALPHA[s.aggr_func_alpha], _TEX[s.texture_type],
            math.isqrt(textures.shape[2]) if s.texture_type == "surface" else 1, int(s.fill_back),
        )  # fmt: skip
        inv_scale, zp_bg = softmax_constants(s)
        wt = _WP_DTYPE[cd]
        self.params = [wt(s.sigma_val), wt(s.cull_threshold), wt(s.near), wt(s.far), wt(inv_scale)]
        self.zp_bg = wt(zp_bg)
        self.bg = [wt(c) for c in s.background_color]
        with _torch_stream(dev):
            wp.launch(self.kernels.prepare, dim=n, inputs=[_wp(self.fv), _wp(self.fc)], device=self.wp_device)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images [B, 4, H, W], per-pixel state [B, 4, H, W], z-buffer winner [B, H, W])."""
        b, f, h, w = self.shape
        cd, dev = self.cdtype, self.device
        out = torch.empty(b, 4, h, w, dtype=cd, device=dev)
        state = torch.empty(b, 4, h, w, dtype=cd, device=dev)
        winner = torch.empty(b, h, w, dtype=torch.int32, device=dev)
        inputs = [
            _wp(self.xs), _wp(self.ys), _wp(self.fc), _wp(self.front), _wp(self.tex), _wp(self.pr),
            _wp(self.tile_start), _wp(self.tile_faces), self.tile, self.ntx, self.nt, f, *self.opts,
            *self.params[:4], self.params[4], self.zp_bg, *self.bg, _wp(out), _wp(state), _wp(winner),
        ]  # fmt: skip
        with _torch_stream(dev):
            dim = b * self.nt * self.tile * self.tile  # one thread per pixel of every tile
            wp.launch(self.kernels.forward, dim=dim, inputs=inputs, device=self.wp_device)
        return out, state, winner

    def backward(
        self,
        out: torch.Tensor,
        state: torch.Tensor,
        winner: torch.Tensor,
        grad_out: torch.Tensor,
        need_v: bool,
        need_t: bool,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Gradients w.r.t. face vertices [B, F, 3, 3] and textures [B, F, T, 3] (input dtype)."""
        b, f, _, _ = self.shape
        n = b * f
        cd, dev = self.cdtype, self.device
        t = self.tex.shape[1]
        width = K.G_TEX + (3 * t if need_t else 0)
        e = self.num_entries
        if self.deterministic:
            slots = torch.zeros(e, width, dtype=cd, device=dev)
            per_face = torch.empty(n, width, dtype=cd, device=dev)
        else:
            slots = torch.zeros(1, width, dtype=cd, device=dev)
            per_face = torch.zeros(n, width, dtype=cd, device=dev)
        go = grad_out.to(cd).contiguous()
        inputs = [
            _wp(self.xs), _wp(self.ys), _wp(self.fc), _wp(self.front), _wp(self.tex), _wp(self.pr),
            _wp(self.entry_face), _wp(self.entry_tile), self.tile, self.ntx, f, *self.opts,
            int(need_v), int(need_t), int(self.deterministic), *self.params,
            _wp(out), _wp(state), _wp(winner), _wp(go), _wp(slots), _wp(per_face),
        ]  # fmt: skip
        grad_v = grad_t = None
        with _torch_stream(dev):
            if e > 0:
                wp.launch(self.kernels.backward, dim=e, inputs=inputs, device=self.wp_device)
            if self.deterministic:
                wp.launch(
                    self.kernels.reduce, dim=(n, width), inputs=[_wp(self.face_start), _wp(slots), _wp(per_face)],
                    device=self.wp_device,
                )  # fmt: skip
            if need_v:
                grad_fv = torch.empty(n, 3, 3, dtype=cd, device=dev)
                wp.launch(
                    self.kernels.chain, dim=n, inputs=[_wp(self.fv), _wp(per_face), _wp(grad_fv)],
                    device=self.wp_device,
                )  # fmt: skip
                grad_v = grad_fv.reshape(b, f, 3, 3).to(self.dtype)
        if need_t:
            grad_t = per_face[:, K.G_TEX :].reshape(b, f, t, 3).to(self.dtype)
        return grad_v, grad_t


class _SoftRasterizeWarp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face_vertices, textures, settings, tile, compute_dtype, deterministic):  # type: ignore[override]
        prep = _Prepared(face_vertices, textures, settings, tile, compute_dtype, deterministic)
        out, state, winner = prep.forward()
        images = out.to(face_vertices.dtype)
        ctx.prep = prep
        if images is out:  # the output itself: saved so that in-place changes to it are caught
            ctx.save_for_backward(images, state, winner)
        else:
            ctx.save_for_backward(out, state, winner)
        return images

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_images):  # type: ignore[override]
        out, state, winner = ctx.saved_tensors
        need_v, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_v or need_t):
            return None, None, None, None, None, None
        grad_v, grad_t = ctx.prep.backward(out, state, winner, grad_images, need_v, need_t)
        return grad_v, grad_t, None, None, None, None


def rasterize_warp(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    settings: RasterSettings,
    *,
    tile: int = DEFAULT_TILE,
    deterministic: bool | None = None,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Soft-rasterize with the Warp kernels on the tensors' device (``cpu`` or ``cuda:N``).

    Same contract as ``rasterize_reference``.

    Args:
        face_vertices: [B, F, 3, 3] float32/float64 screen-space triangles.
        textures: [B, F, R*R, 3] (surface) or [B, F, 3, 3] (vertex), same device.
        settings: validated :class:`RasterSettings`.
        tile: screen tile size in pixels used for binning faces.
        deterministic: bit-identical backward (per-entry slots reduced in a fixed order)
            instead of float atomics. ``None``: True unless ``SOFTRAS_WARP_DETERMINISTIC=0``
            (always True under ``torch.use_deterministic_algorithms(True)``).
        compute_dtype: arithmetic of the per-pixel kernels, ``None`` for the inputs' dtype;
            ``torch.float64`` for float32 inputs gives float64 accuracy.

    Returns:
        [B, 4, H, W] images in the inputs' dtype, differentiable w.r.t. ``face_vertices`` and
        ``textures``.
    """
    if face_vertices.dtype not in _WP_DTYPE:
        raise TypeError(f"face_vertices: the 'warp' backend supports float32 and float64, got {face_vertices.dtype}")
    if face_vertices.device.type not in ("cpu", "cuda"):
        raise ValueError(f"face_vertices: the 'warp' backend runs on cpu or cuda tensors, got {face_vertices.device}")
    if textures.device != face_vertices.device:
        raise ValueError(f"textures: expected device {face_vertices.device} (as face_vertices), got {textures.device}")
    if compute_dtype is None:
        compute_dtype = face_vertices.dtype
    if compute_dtype not in _WP_DTYPE:
        raise TypeError(f"compute_dtype: expected torch.float32 or torch.float64, got {compute_dtype}")
    if compute_dtype == torch.float32 and face_vertices.dtype == torch.float64:
        raise ValueError("compute_dtype: float32 arithmetic for float64 inputs is not supported")
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile: expected a positive int, got {tile!r}")
    if deterministic is None:
        deterministic = _default_deterministic()
    elif torch.are_deterministic_algorithms_enabled():
        deterministic = True
    _init()
    return _SoftRasterizeWarp.apply(
        face_vertices.contiguous(), textures.to(face_vertices.dtype), settings, tile, compute_dtype, bool(deterministic)
    )


def rasterize(inputs: RasterInputs, settings: RasterSettings) -> RasterResult:
    """The backend entry point of the contract (see :mod:`softras.raster.contract`)."""
    return run_rgba_backend(rasterize_warp, "warp", inputs, settings)
