"""Up-front memory bounds: refuse a request the machine cannot hold before allocating it.

:func:`check_raster_request` estimates what one rasterization allocates (:func:`estimate_raster_bytes`)
and :func:`check_texels` what a surface texture of ``texture_res`` needs. When the estimate exceeds
the memory available (``MemAvailable`` of ``/proc/meminfo``, capped by a cgroup limit, or free GPU
memory for CUDA tensors), they raise :class:`RequestTooLargeError` naming the argument, the
estimate and what is available.

Set ``SOFTRAS_ALLOW_LARGE=1`` to skip the check (the request may then fail in the allocator or
make the machine swap). When the available memory cannot be read, nothing is refused.

The estimate follows what each backend allocates per call, by the channel count C = Cs + Cv
(surface + vertex channels):

* outputs and per-pixel state: channels [B, C, H, W], alpha, the depth and z-buffer outputs asked
  for, the kernels' state kept for the backward (``cpu``: float64 sums of every channel for the
  softmax, and per-thread [C, tile, tile] float64 tile state), a copy into the result dtype;
* per-face data and the (face, tile) bins, counted with the contract's pixel-range rule
  (:func:`~softras.raster.contract.pixel_ranges`) and the backend's tile size;
* the reference backend's chunks, from its own chunk plan: (pixel, face) pairs × channels and
  chunk pixels × channels, and its outputs assembled from the chunks (three copies at the peak);
* the backward, when an input requires grad: the upstream gradients, the bins' gradient slots
  (18 + T·Cs + 3·Cv numbers per entry, for the inputs that need one) and the inputs' gradients.

The ``cpu`` and ``warp`` terms are the arrays their code allocates; the reference backend's,
made of many temporaries, are fitted to its measured peaks. Against the peak RSS of forward and
of forward + backward (``cpu``, ``reference`` and ``warp`` on the CPU, 1 to 1000 channels,
float32 and float64; ``docs/robustness.md``) the estimate is within 0.8 to 1.35 of the measured
peak for requests of more than 20 MiB. Memory the caller already holds (the inputs) is not
counted: it is not available either. ``warp`` on CUDA is estimated with the same terms (its
arrays are torch allocations) but was not measured on a GPU.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import torch

__all__ = [
    "ALLOW_LARGE_ENV",
    "RequestTooLargeError",
    "available_memory",
    "check_raster_request",
    "check_texels",
    "estimate_raster_bytes",
]

ALLOW_LARGE_ENV = "SOFTRAS_ALLOW_LARGE"
#: Screen tile size of the binning of ``cpu`` (``cpu.DEFAULT_TILE``) and ``warp`` (``warp_backend.DEFAULT_TILE``).
_TILES = {"cpu": 32, "warp": 8}
#: Backend names the estimate models; other registered backends are estimated as ``warp``.
_MODELS = {"reference": "reference", "cpu": "cpu", "warp": "warp", "cuda": "warp"}
_COLOUR_CHANNELS = 4  # per-pixel bytes of the first 4 channels (an RGBA image) are the image size's
_ALWAYS_FITS = 256 * 2**20  # requests below this are not checked against the free memory


class _ReferenceCost(NamedTuple):
    """The reference backend's numbers (in the compute dtype) per (pixel, face) pair of its largest
    chunk, and for each channel per pair, per pixel of that chunk and per pixel of the image."""

    pair: float
    vertex_pair: float
    surface_pair: float
    chunk_pixel: float
    pixel: float


_REFERENCE_FORWARD = _ReferenceCost(pair=62, vertex_pair=2.2, surface_pair=1.1, chunk_pixel=1, pixel=2)
_REFERENCE_GRAD = _ReferenceCost(pair=120, vertex_pair=5, surface_pair=1.6, chunk_pixel=0, pixel=8)


class RequestTooLargeError(MemoryError, ValueError):
    """A request needs more memory than is available (a ``ValueError`` too, for one-line CLI errors)."""


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory(device: torch.device | None = None) -> int | None:
    """Bytes that can still be allocated on ``device`` (CPU: RAM), or ``None`` when unknown (also
    while ``torch.compile`` traces: reading /proc would break the graph; the rasterizer's op
    checks its request when it runs)."""
    if torch.compiler.is_compiling():
        return None
    if device is not None and device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
        except (RuntimeError, AssertionError):
            return None
    if device is not None and device.type not in ("cpu", "cuda"):
        return None
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(found) if found else None


def _allowed() -> bool:
    return os.environ.get(ALLOW_LARGE_ENV, "") not in ("", "0")


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n < 2**30 else f"{n / 2**30:,.1f} GiB"


def _refuse(argument: str, what: str, need: float, have: int) -> None:
    raise RequestTooLargeError(
        f"{argument}: {what} needs about {_mb(need)}, but only {_mb(have)} is available "
        f"(set {ALLOW_LARGE_ENV}=1 to try anyway)"
    )


# ---- the request and its counts -------------------------------------------------------------
class _Request(NamedTuple):
    """The sizes of one rasterization that its memory depends on."""

    model: str  # 'reference', 'cpu' or 'warp'
    batch: int  # B
    faces: int  # F
    height: int
    width: int
    texels: int  # T of the surface texels
    surface: int  # Cs
    vertex: int  # Cv
    item: int  # bytes of a number in the compute dtype
    result_item: int  # bytes of a number in the result dtype
    depth: bool  # the soft depth is asked for
    zbuffer: bool  # the z-buffer outputs are asked for
    softmax: bool  # aggr_func_rgb == 'softmax'
    concatenate_rgba: bool  # channels and alpha are concatenated afterwards
    grads: tuple[bool, bool, bool]  # face_vertices, surface, vertex need a gradient


class _Counts(NamedTuple):
    """Data-dependent counts: exact (:func:`_exact_counts`) or upper bounds (:func:`_rough_counts`)."""

    entries: int  # (face, tile) entries of the backend's bins
    chunk_pairs: int  # reference: most (pixel, face) pairs in one chunk
    chunk_pixels: int  # reference: most pixels in one chunk


def _max_pairs() -> int:
    from .raster.reference import DEFAULT_MAX_PAIRS

    return DEFAULT_MAX_PAIRS


def _rough_counts(req: _Request) -> _Counts:
    """Upper bounds of the counts from the shapes alone: every face in every tile, full chunks."""
    b, f, h, w = req.batch, req.faces, req.height, req.width
    if req.model == "reference":
        return _Counts(0, min(b * f * h * w, max(_max_pairs(), f * w)), b * h * w)  # a chunk holds a row at least
    tile = _TILES[req.model]
    return _Counts(b * f * math.ceil(h / tile) * math.ceil(w / tile), 0, 0)


def _exact_counts(req: _Request, face_vertices: torch.Tensor, cull_radius: float) -> _Counts:
    """The counts by the backends' own rules: the contract's pixel ranges, binned with the
    backend's tile size (``cpu``, ``warp``), or chunked by the reference's chunk plan."""
    from .raster.contract import pixel_ranges

    b, h, w = req.batch, req.height, req.width
    with torch.no_grad():
        r = pixel_ranges(face_vertices.detach(), cull_radius, (h, w))
        if req.model != "reference":
            t = _TILES[req.model]
            tiles = (r.c1.div(t, rounding_mode="floor") - r.c0 // t + 1) * (
                r.r1.div(t, rounding_mode="floor") - r.r0 // t + 1
            )
            return _Counts(int(torch.where(r.empty, 0, tiles).sum()), 0, 0)
        from .raster.reference import _plan_chunks

        width = (r.c1 - r.c0 + 1).reshape(-1)  # 0 for an empty range
        first_row = (torch.arange(b, device=width.device)[:, None] * h).expand(b, r.r0.shape[1]).reshape(-1)
        units0 = first_row + r.r0.reshape(-1)
        units1 = first_row + torch.maximum(r.r1, r.r0 - 1).reshape(-1)
        chunks = _plan_chunks(units0, units1, width, b * h, _max_pairs())
        diff = torch.zeros(b * h + 1, dtype=torch.long, device=width.device)
        diff.index_add_(0, units0, width)
        diff.index_add_(0, units1 + 1, -width)
        before = torch.cat([diff.new_zeros(1), diff[:-1].cumsum(0).cumsum(0)]).cpu()  # pairs of rows [0, u)
        pairs = max(int(before[u1] - before[u0]) for u0, u1 in chunks)
        rows = max(u1 - u0 for u0, u1 in chunks)
    return _Counts(0, pairs, rows * w)


# ---- the model ------------------------------------------------------------------------------
class _Tally:
    """Bytes by argument: ``image_size``, ``face_vertices`` and the two attribute arguments.

    Per-pixel bytes of the first :data:`_COLOUR_CHANNELS` channels count as the image size's,
    the others as those of the attribute argument holding the channel; per-face, per-entry and
    per-pair bytes of a channel count as its attribute argument's.
    """

    def __init__(self, req: _Request, names: tuple[str, str]) -> None:
        self.req = req
        self.names = names
        self.bytes = dict.fromkeys(("image_size", "face_vertices", *names), 0.0)

    def add(self, argument: str, fixed: float, per_surface: float = 0.0, per_vertex: float = 0.0) -> None:
        """``fixed`` bytes, plus ``per_surface`` for each surface channel and ``per_vertex`` for each
        vertex channel (``argument`` 'image_size': per-pixel bytes)."""
        cs, cv = self.req.surface, self.req.vertex
        share = 0.0
        if argument == "image_size" and cs + cv > 0:
            share = min(cs + cv, _COLOUR_CHANNELS) / (cs + cv)
        self.bytes[argument] += fixed + share * (per_surface * cs + per_vertex * cv)
        self.bytes[self.names[0]] += (1 - share) * per_surface * cs
        self.bytes[self.names[1]] += (1 - share) * per_vertex * cv

    def total(self) -> float:
        return sum(self.bytes.values())


def _common(t: _Tally) -> None:
    """What every backend allocates around its kernels: the result copy, the RGBA concatenation
    and, with a backward, the upstream gradients of channels, alpha and depth."""
    req = t.req
    pixels = req.batch * req.height * req.width
    soft = 1 + req.depth  # alpha, soft depth
    if req.result_item != req.item:
        t.add(
            "image_size",
            pixels * (soft + 4 * req.zbuffer) * req.result_item,
            pixels * req.result_item,
            pixels * req.result_item,
        )
    if req.concatenate_rgba:
        t.add("image_size", pixels * req.result_item, pixels * req.result_item, pixels * req.result_item)
    if any(req.grads):
        t.add("image_size", pixels * soft * req.item, pixels * req.item, pixels * req.item)


def _grad_width(req: _Request) -> tuple[int, int]:
    """Gradient numbers per entry or face for each surface and each vertex channel (0: not needed)."""
    return (req.texels if req.grads[1] else 0), (3 if req.grads[2] else 0)


def _cpu(t: _Tally, counts: _Counts) -> None:
    req = t.req
    b, n, item = req.batch, req.batch * req.faces, req.item
    pixels = b * req.height * req.width
    winner = not req.softmax or req.zbuffer
    values = 8 if req.softmax else 0  # float64 sums of every channel and the depth
    per_pixel = item * (1 + req.depth + 4 * req.zbuffer) + 24 + 8 * winner + values * req.depth
    t.add("image_size", pixels * per_pixel, pixels * (item + values), pixels * (item + values))
    tile = _TILES["cpu"]
    tasks = b * math.ceil(req.height / tile) * math.ceil(req.width / tile)
    scratch = min(torch.get_num_threads(), tasks) * tile * tile * 8  # per-thread tile state, float64
    t.add("image_size", scratch * (9 + req.depth * req.softmax), scratch * req.softmax, scratch * req.softmax)
    t.add("face_vertices", n * 121 + counts.entries * 16)  # ranges, matrices, flags; tile lists
    if any(req.grads):
        gs, gv = _grad_width(req)
        t.add("face_vertices", counts.entries * 18 * 8 + n * 9 * item * req.grads[0])
        t.add("face_vertices", 0, (counts.entries * 8 + n * item) * gs, (counts.entries * 8 + n * item) * gv)


def _warp(t: _Tally, counts: _Counts) -> None:
    req = t.req
    b, n, item = req.batch, req.batch * req.faces, req.item
    pixels = b * req.height * req.width
    zb = 4 + 16 + 4 * item if req.zbuffer else (0 if req.softmax else 4)  # winner, face id, barycentrics, depth
    t.add("image_size", pixels * (item * (5 + req.depth) + zb), pixels * item, pixels * item)
    # per face: ranges, flags, constants and the range rule's temporaries; per entry: the bins
    # and bin_faces' temporaries (int64)
    t.add("face_vertices", n * (27 * item + 160) + counts.entries * 100)
    if any(req.grads):
        gs, gv = _grad_width(req)
        rows = counts.entries + n  # the entries' slots and the per-face sums
        t.add("face_vertices", rows * 18 * item + n * 9 * item, rows * item * gs, rows * item * gv)


def _reference(t: _Tally, counts: _Counts) -> None:
    """The largest chunk's pair terms and its values for each channel (vertex channels: the gathered
    corners and their weighted copy; surface channels: the gathered texel), the chunk's and the
    image's per-pixel sums; with a backward, the recomputed chunk with its gradients. The numbers
    per pair, per chunk pixel and per pixel were fitted to the measured peaks (float32 and float64,
    1 to 1000 channels, one or several chunks; within 0.82 to 1.35 of them)."""
    req = t.req
    n, item = req.batch * req.faces, req.item
    pixels = req.batch * req.height * req.width
    pairs, chunk_pixels = counts.chunk_pairs, counts.chunk_pixels
    grad = any(req.grads)
    c = _REFERENCE_GRAD if grad else _REFERENCE_FORWARD
    # alpha, depth and the z-buffer outputs: the chunks', their concatenation and its permuted copy
    outputs = (1 + req.depth) * item + (8 + 4 * item) * req.zbuffer
    t.add("image_size", 3 * pixels * outputs)
    per_pixel = item * (c.chunk_pixel * chunk_pixels + c.pixel * pixels)
    t.add("image_size", 0, per_pixel, per_pixel)
    t.add("face_vertices", pairs * c.pair * item + n * (60 * item + 200) * (1 + grad))  # pairs; face matrices, ranges
    t.add("face_vertices", 0, pairs * item * c.surface_pair, pairs * item * c.vertex_pair)
    if grad:  # the attributes' gradients, accumulated over the chunks
        gs, gv = _grad_width(req)
        t.add("face_vertices", 0, 2 * n * item * gs, 2 * n * item * gv)


def _tally(req: _Request, counts: _Counts, names: tuple[str, str]) -> _Tally:
    t = _Tally(req, names)
    {"cpu": _cpu, "warp": _warp, "reference": _reference}[req.model](t, counts)
    _common(t)
    return t


def _request(
    face_vertices: torch.Tensor,
    surface: torch.Tensor,
    vertex: torch.Tensor | None,
    height: int,
    width: int,
    backend: str,
    requires_grad: bool | tuple[bool, bool, bool],
    with_depth: bool,
    with_zbuffer: bool,
    softmax: bool,
    concatenate_rgba: bool,
    result_dtype: torch.dtype | None,
) -> _Request:
    b, f = face_vertices.shape[:2]
    item = face_vertices.element_size()
    grads = (requires_grad,) * 3 if isinstance(requires_grad, bool) else tuple(map(bool, requires_grad))
    cv = 0 if vertex is None else int(vertex.shape[3])
    cs = int(surface.shape[3])
    return _Request(
        model=_MODELS.get(backend, "warp"),
        batch=b,
        faces=f,
        height=int(height),
        width=int(width),
        texels=int(surface.shape[2]) if cs else 0,
        surface=cs,
        vertex=cv,
        item=item,
        result_item=item if result_dtype is None else result_dtype.itemsize,
        depth=bool(with_depth),
        zbuffer=bool(with_zbuffer),
        softmax=bool(softmax),
        concatenate_rgba=bool(concatenate_rgba),
        grads=(grads[0], grads[1] and cs > 0, grads[2] and cv > 0),  # type: ignore[misc]
    )


def estimate_raster_bytes(
    face_vertices: torch.Tensor,
    surface: torch.Tensor,
    height: int,
    width: int,
    cull_radius: float,
    backend: str,
    requires_grad: bool | tuple[bool, bool, bool],
    *,
    vertex: torch.Tensor | None = None,
    with_depth: bool = False,
    with_zbuffer: bool = False,
    softmax: bool = True,
    concatenate_rgba: bool = False,
    result_dtype: torch.dtype | None = None,
    names: tuple[str, str] = ("surface", "vertex"),
) -> dict[str, float]:
    """Bytes one rasterization allocates, by the argument they grow with: ``'image_size'``,
    ``'face_vertices'`` and the attribute arguments ``names`` (their channels beyond the first
    four per pixel, and their texels per face).

    Args:
        face_vertices: [B, F, 3, 3] screen-space triangles in the compute dtype (their x, y give
            the pixel ranges and bins).
        surface: [B, F, T, Cs] texels (Cs may be 0), or the original's textures (texels or
            per-corner colours).
        height, width: output size in pixels; cull_radius: √θ of the settings.
        backend: its name (``'reference'``, ``'cpu'``, ``'warp'``/``'cuda'``; others are
            estimated as ``'warp'``).
        requires_grad: include the backward: True (every input needs a gradient) or one flag
            per input (face_vertices, surface, vertex).
        vertex: [B, F, 3, Cv] per-corner attributes, or None (Cv = 0).
        with_depth, with_zbuffer, softmax: the settings' outputs and RGB aggregation.
        concatenate_rgba: channels and alpha are concatenated afterwards (the RGBA form of a
            backend without an in-place RGBA entry).
        result_dtype: the dtype the result is returned in, when not the compute dtype.
        names: the names of the surface and the vertex attribute arguments in the result.
    """
    req = _request(
        face_vertices, surface, vertex, height, width, backend, requires_grad,
        with_depth, with_zbuffer, softmax, concatenate_rgba, result_dtype,
    )  # fmt: skip
    return _tally(req, _exact_counts(req, face_vertices, cull_radius), names).bytes


def check_raster_request(
    face_vertices: torch.Tensor,
    surface: torch.Tensor,
    height: int,
    width: int,
    cull_radius: float,
    backend: str,
    *,
    vertex: torch.Tensor | None = None,
    with_depth: bool = False,
    with_zbuffer: bool = False,
    softmax: bool = True,
    concatenate_rgba: bool = False,
    result_dtype: torch.dtype | None = None,
    names: tuple[str, str] = ("surface", "vertex"),
) -> None:
    """Raise :class:`RequestTooLargeError` when a rasterization would not fit in memory.

    Arguments as :func:`estimate_raster_bytes`; the backward is counted for the inputs that
    require grad (with grad mode on). The error names the argument that needs the most
    (``image_size``, ``face_vertices`` or one of ``names``). Skipped with ``SOFTRAS_ALLOW_LARGE=1``
    or when the free memory is unknown.
    """
    if _allowed():
        return
    grad = torch.is_grad_enabled()
    needs = (face_vertices, surface, vertex)
    req = _request(
        face_vertices, surface, vertex, height, width, backend,
        tuple(grad and t is not None and t.requires_grad for t in needs),  # type: ignore[arg-type]
        with_depth, with_zbuffer, softmax, concatenate_rgba, result_dtype,
    )  # fmt: skip
    # an upper bound first: most calls are far below any limit and need neither /proc nor a range pass
    rough = _tally(req, _rough_counts(req), names).total()
    if rough < _ALWAYS_FITS:
        return
    have = available_memory(face_vertices.device)
    if have is None or rough < have:
        return
    t = _tally(req, _exact_counts(req, face_vertices, cull_radius), names)
    total = t.total()
    if total > have:
        argument = max(t.bytes, key=t.bytes.__getitem__)
        channels = req.surface + req.vertex
        texels = f", {req.texels} texels per face" if req.surface else ""
        what = (
            f"rendering {req.batch}×{req.height}×{req.width} pixels of {channels} channel{'s' * (channels != 1)}, "
            f"{req.faces} face{'s' * (req.faces != 1)}{texels}"
        )
        _refuse(argument, what, total, have)


def check_texels(faces: int, texture_res: int, argument: str = "texture_res") -> None:
    """Refuse a ``[faces, texture_res², 3]`` float32 texture (and its sampling temporaries) that would not fit."""
    if _allowed():
        return
    have = available_memory()
    need = faces * texture_res**2 * 3 * 4 * 3  # the texels, the sampled copy and the uv grid
    if have is not None and need > have:
        _refuse(argument, f"{faces} faces × {texture_res}² texels", need, have)
