"""The rasterization contract: the one place every backend reads its rules from.

Every backend (``reference``, ``cpu``, ``warp``) implements the same function

    backend(inputs: RasterInputs, settings: RasterSettings) -> RasterResult

with the semantics of docs/design.md. This module owns what they must agree on, so that they
cannot drift apart:

* the option codes (:class:`DistFunc`, :class:`RgbAggregation`, :class:`AlphaAggregation`),
* the numeric constants (:data:`DET_EPS`, :data:`W_SUM_EPS`, ...),
* the pixel-centre rule (:func:`pixel_centers`) and the exact pixel-range rule
  (:func:`pixel_ranges`),
* binning of faces into screen tiles (:func:`bin_faces`; ``cpu`` runs a compiled form of it,
  tested to give identical tensors),
* the texel rule (:func:`texel_index` for tensors, :func:`texel_cell` for scalar kernels),
* the per-face constant layout by name (:class:`FaceConst`),
* the kernel parameters as one named struct (:class:`KernelParams`),
* the inputs and outputs of a backend (:class:`RasterInputs`, :class:`RasterResult`).

Attributes of any width go through one code path: ``surface`` texels [B, F, T, Cs] are looked
up with the texel rule, ``vertex`` attributes [B, F, 3, Cv] are interpolated with the clipped,
renormalised screen-space barycentrics (or their perspective-correct form, ``perspective_correct``),
a UV texture (Cu channels) is looked up at the perspective-correct UVs; colour is the case Cs = 3
(surface textures), Cv = 3 (vertex colours) or Cu = 3. Output channels are the surface channels,
then the vertex channels, then the UV texture's.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

import torch

from . import model
from .model import tconorms

if TYPE_CHECKING:
    from .settings import RasterSettings
    from .uv import UVMaps

__all__ = [
    "CULL_MARGIN",
    "DEPTH_RANGE_RTOL",
    "DET_EPS",
    "EDGE_SNAP",
    "SIGMOID_CUTOFF",
    "TEXEL_EDGE_TOLERANCE",
    "W_SUM_EPS",
    "ZBUFFER_RTOL",
    "Z_EPS",
    "AlphaAggregation",
    "Bins",
    "DistFunc",
    "FaceConst",
    "KernelParams",
    "PixelRanges",
    "RasterInputs",
    "RasterResult",
    "RgbAggregation",
    "bin_faces",
    "depth_range",
    "face_boxes",
    "has_area",
    "kernel_params",
    "pixel_centers",
    "pixel_ranges",
    "softmax_constants",
    "texel_cell",
    "texel_index",
]


# ---- option codes ------------------------------------------------------------------------
class DistFunc(IntEnum):
    """``dist_func``: coverage D of a (pixel, face) pair."""

    HARD = 0  # D = 1 inside the closed triangle, else 0
    BARYCENTRIC = 1  # d = min_k w_k, D = sigmoid(sign·d²/σ)
    EUCLIDEAN = 2  # d = screen distance to the closed triangle, D = sigmoid(sign·d²/σ)


class RgbAggregation(IntEnum):
    """``aggr_func_rgb``: how the attribute channels (and soft depth) of a pixel's faces combine."""

    HARD = 0  # z-buffer: the nearest face containing the pixel centre, else the background
    SOFTMAX = 1  # weights D·exp(z̃/γ) plus the background weight exp(eps/γ)


AlphaAggregation = IntEnum(
    "AlphaAggregation",
    {("PROD" if name == "probabilistic" else name.upper()): code for code, name in enumerate(tconorms.ORDER)},
    module=__name__,
)
AlphaAggregation.__doc__ = """``aggr_func_alpha``: how coverages combine into alpha. HARD (0): 1 if any D > 0.5;
SUM (1): Σ D / F; PROD (2): 1 − Π(1 − D), the probabilistic sum; then the built-in T-conorms of
:mod:`softras.raster.model.tconorms`, in its ``ORDER`` (MAX, EINSTEIN, HAMACHER, ...). The kernels
use its members as constants; names map to codes through :func:`softras.raster.model.alpha_code`,
which also knows the registered T-conorms (codes after the built-in ones)."""


# ---- numeric constants -------------------------------------------------------------------
DET_EPS = 1e-10
"""A face whose screen det (twice its signed area, in float64) has |det| < DET_EPS has no area
and is not rasterized: :func:`pixel_ranges` gives it an empty range, so it covers no pixel, adds
nothing to any output and gets no gradient (zero-area faces have no true derivative; PyTorch3D
skips them the same way). Elsewhere |det| is clamped to at least this (as the original)."""
W_SUM_EPS = 1e-5
"""Floor of the sum of the clipped barycentrics before they are renormalised."""
Z_EPS = 1e-12
"""Vertex depths with |z| below this are replaced by it in 1/z (no depth gradient flows there)."""
TEXEL_EDGE_TOLERANCE = 1e-4
"""Points on the edge v0-v1 sit exactly on the lower/upper texel split; this tolerance keeps
them on the lower texel (the one touching the edge)."""
CULL_MARGIN = 1.0 + 1e-6
"""Safety factor of the early edge-line cull of scalar kernels (exact in real arithmetic)."""
EDGE_SNAP = 1e-12
"""Screen barycentrics within this of 0 or of 1 are taken as exactly 0 or 1 (their gradient is
kept), so a pixel centre exactly on an edge or a vertex is on the boundary in every backend's
arithmetic: outside for the strict inside test (D = 0.5 at d = 0), inside for the closed one."""
ZBUFFER_RTOL = 1e-12
"""Z-buffer depths within this relative distance of the nearest count as tied, and ties go to the
lowest face index: coplanar or coincident faces, whose depths differ only by each backend's
rounding, get the same winner everywhere. (Backends scanning faces in ascending order replace the
winner only by a face nearer by more than this.)"""
DEPTH_RANGE_RTOL = 1e-5
"""The depth test near <= zp <= far is inclusive with this relative slack on each side
(:func:`depth_range`): a face lying on the near or far plane is inside whatever rounding its
depth gets in a backend's arithmetic (float32 included), so every backend makes the same call."""
SIGMOID_CUTOFF = 40.0
"""|x| beyond which kernels take e^-|x| as 0 in D = sigmoid(x) (e^-40 < 5e-18)."""


# ---- per-face constants ------------------------------------------------------------------
class FaceConst(IntEnum):
    """Layout of one row of per-face constants (float64 arithmetic, stored in the compute dtype).

    A field spanning k entries starts at its value: ``INV + 3·k + j`` is row k, column j of the
    barycentric matrix (w_k = P_k x + Q_k y + R_k), ``XY + 2·k`` is x_k (``+ 1``: y_k), etc.
    Edge k runs from vertex k to vertex k + 1 (mod 3).
    """

    INV = 0  # 9: P_k, Q_k, R_k for k = 0, 1, 2 (adjugate / clamped det)
    XY = 9  # 6: x0 y0 x1 y1 x2 y2
    INV_Z = 15  # 3: 1 / z_k (|z_k| < Z_EPS replaced by Z_EPS)
    Z_OK = 18  # 3: 1 where |z_k| >= Z_EPS (the depth gradient flows), else 0
    INV_EDGE_LEN2 = 21  # 3: 1 / |edge k|² (1 for a zero-length edge)
    ALTITUDE2 = 24  # 3: squared altitude from vertex k, det² / |opposite edge|²
    COUNT = 27


# ---- pixel rules -------------------------------------------------------------------------
def pixel_centers(n: int, *, flip: bool, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """NDC coordinates of the n pixel centres along one axis: (2i + 1 − n) / n, ascending.

    ``flip=True`` gives the rows' y, top row first: y_r = (n − 1 − 2r) / n (y up). Computed in
    float64 and rounded once to ``dtype``. Returns [n].
    """
    i = torch.arange(n, device=device, dtype=torch.float64)
    if flip:
        i = (n - 1) - i
    return ((2 * i + 1 - n) / n).to(dtype)


def has_area(face_vertices: torch.Tensor) -> torch.Tensor:
    """[B, F] bool: the face's screen |det| (float64) is at least :data:`DET_EPS`.

    face_vertices: [B, F, 3, 3] screen-space triangles.
    """
    fv = face_vertices.detach().double()
    x0, y0, x1, y1, x2, y2 = (fv[..., k // 2, k % 2] for k in range(6))
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    return det.abs() >= DET_EPS


def face_boxes(face_vertices: torch.Tensor, cull_radius: float) -> tuple[torch.Tensor, ...]:
    """Screen bounding boxes grown by √θ and the front-facing flag, in the input dtype.

    Args:
        face_vertices: [B, F, 3, 3] screen-space triangles.
        cull_radius: √θ.

    Returns:
        (xmin, xmax, ymin, ymax) [B, F] in the input dtype and ``front`` [B, F] bool (the
        screen winding test: counter-clockwise with y up).
    """
    fv = face_vertices.detach()
    xs, ys = fv[..., 0], fv[..., 1]
    g = torch.tensor(cull_radius, dtype=fv.dtype, device=fv.device)
    x0, y0, x1, y1, x2, y2 = xs[..., 0], ys[..., 0], xs[..., 1], ys[..., 1], xs[..., 2], ys[..., 2]
    front = (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0)
    return xs.amin(-1) - g, xs.amax(-1) + g, ys.amin(-1) - g, ys.amax(-1) + g, front


class PixelRanges(NamedTuple):
    """Inclusive pixel ranges [c0, c1] × [r0, r1] per face, [B, F] int64 each (rows from the top).

    They hold exactly the pixel centres inside the face's grown box (tested in the input dtype);
    an empty range is (0, −1, 0, −1). Faces without area (:func:`has_area`) get an empty range.
    """

    c0: torch.Tensor
    c1: torch.Tensor
    r0: torch.Tensor
    r1: torch.Tensor
    front: torch.Tensor  # [B, F] bool, see face_boxes

    @property
    def empty(self) -> torch.Tensor:
        """[B, F] bool: the face covers no pixel centre of its grown box."""
        return self.c1 < self.c0


def pixel_ranges(face_vertices: torch.Tensor, cull_radius: float, image_size: tuple[int, int]) -> PixelRanges:
    """The exact pixel-range rule: which pixel centres lie inside each face's grown box.

    A pixel (row r, column c) is a candidate of a face iff xmin <= x_c <= xmax and
    ymin <= y_r <= ymax, compared in the input dtype with the centres of :func:`pixel_centers`
    rounded to it; a face without area (:func:`has_area`) has none. No host synchronisation
    (works on any device).

    Args:
        face_vertices: [B, F, 3, 3] screen-space triangles.
        cull_radius: √θ.
        image_size: (H, W).
    """
    h, w = image_size
    dt, dev = face_vertices.dtype, face_vertices.device
    xmin, xmax, ymin, ymax, front = face_boxes(face_vertices, cull_radius)
    xc = pixel_centers(w, flip=False, dtype=dt, device=dev)
    yc = pixel_centers(h, flip=False, dtype=dt, device=dev)  # ascending y: row h-1 first
    c0 = torch.searchsorted(xc, xmin.contiguous())
    c1 = torch.searchsorted(xc, xmax.contiguous(), right=True) - 1
    r0 = (h - 1) - (torch.searchsorted(yc, ymax.contiguous(), right=True) - 1)
    r1 = (h - 1) - torch.searchsorted(yc, ymin.contiguous())
    empty = (c1 < c0) | (r1 < r0) | ~has_area(face_vertices)
    zero, minus_one = torch.zeros_like(c0), torch.full_like(c0, -1)
    return PixelRanges(
        torch.where(empty, zero, c0),
        torch.where(empty, minus_one, c1),
        torch.where(empty, zero, r0),
        torch.where(empty, minus_one, r1),
        front,
    )


# ---- binning -----------------------------------------------------------------------------
class Bins(NamedTuple):
    """Faces binned into screen tiles. An *entry* is one (face, tile) incidence.

    Entries are numbered face-major (face 0's tiles in row-major tile order, then face 1's, …
    across the batch): entry e belongs to face ``entry_face[e]`` (flat index b·F + f) and tile
    ``entry_tile[e]`` (ty·ntx + tx). The tile lists put them in task order: task j = b·T + t
    (T = ntx·nty) holds the faces ``tile_faces[tile_start[j] : tile_start[j + 1]]`` (per-item
    face indices f, ascending), and the face-major entry e sits at position ``entry_slot[e]``
    of ``tile_faces``. All int64 [.] tensors on the faces' device.
    """

    tile: int
    ntx: int
    nty: int
    tile_start: torch.Tensor  # [B·T + 1]
    tile_faces: torch.Tensor  # [E]
    face_start: torch.Tensor  # [B·F + 1]: face n's entries are face_start[n]:face_start[n + 1]
    entry_face: torch.Tensor  # [E]
    entry_tile: torch.Tensor  # [E]
    entry_slot: torch.Tensor  # [E]

    @property
    def num_entries(self) -> int:
        return int(self.entry_face.shape[0])


def bin_faces(ranges: PixelRanges, tile: int, image_size: tuple[int, int]) -> Bins:
    """Bin each face into the tiles its pixel range meets: the definition of binning, used by the
    reference and ``warp``; ``cpu`` runs a compiled form tested to give identical tensors.

    Args:
        ranges: [B, F] pixel ranges from :func:`pixel_ranges`.
        tile: tile side in pixels.
        image_size: (H, W).
    """
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile: expected a positive int, got {tile!r}")
    h, w = image_size
    b, f = ranges.c0.shape
    n = b * f
    dev = ranges.c0.device
    ntx, nty = math.ceil(w / tile), math.ceil(h / tile)
    nt = ntx * nty
    c0, c1 = ranges.c0.reshape(n), ranges.c1.reshape(n)
    r0, r1 = ranges.r0.reshape(n), ranges.r1.reshape(n)
    empty = c1 < c0
    tx0, tx1 = c0 // tile, c1 // tile
    ty0, ty1 = r0 // tile, r1 // tile
    wide = tx1 - tx0 + 1
    counts = torch.where(empty, 0, wide * (ty1 - ty0 + 1))
    face_start = torch.zeros(n + 1, dtype=torch.long, device=dev)
    face_start[1:] = counts.cumsum(0)
    num_entries = int(face_start[-1])
    entries = torch.arange(num_entries, device=dev)
    entry_face = torch.searchsorted(face_start[1:], entries, right=True)
    local = entries - face_start[entry_face]
    entry_tile = (ty0[entry_face] + local // wide[entry_face]) * ntx + tx0[entry_face] + local % wide[entry_face]
    job = (entry_face // f) * nt + entry_tile
    job_sorted, order = torch.sort(job, stable=True)  # stable: ascending faces within a tile
    tile_start = torch.searchsorted(job_sorted, torch.arange(b * nt + 1, device=dev, dtype=job_sorted.dtype))
    entry_slot = torch.empty_like(order)
    entry_slot[order] = torch.arange(num_entries, device=dev)
    return Bins(tile, ntx, nty, tile_start, entry_face[order] % f, face_start, entry_face, entry_tile, entry_slot)


# ---- texel rule --------------------------------------------------------------------------
def texel_index(w0: torch.Tensor, w1: torch.Tensor, texture_res: int) -> torch.Tensor:
    """Index of the texel containing the point with barycentrics ``(w0, w1, 1 − w0 − w1)``.

    Texel ``i`` covers the cell ``(wx, wy) = (i % R, i // R)``: lower cells (wx + wy < R) at
    ``wy·R + wx``; upper cells, mirrored, at ``(R−1−wy)·R + (R−1−wx)`` (the original's layout).

    Args:
        w0: barycentrics of vertex 0, in [0, 1], any shape.
        w1: barycentrics of vertex 1, in [0, 1], the shape of ``w0``.
        texture_res: R.

    Returns:
        int64 tensor of the same shape, indices in [0, R²).
    """
    r = int(texture_res)
    wx = torch.floor(w0 * r).clamp(0, r - 1)
    wy = torch.floor(w1 * r).clamp(0, r - 1)
    lower = (w0 + w1) * r - wx - wy <= 1 + TEXEL_EDGE_TOLERANCE
    return torch.where(lower, wy * r + wx, (r - 1 - wy) * r + (r - 1 - wx)).long()


def texel_cell(c0: float, c1: float, r: int) -> int:
    """Scalar form of :func:`texel_index` for kernels (Numba compiles this very function)."""
    wx = min(max(math.floor(c0 * r), 0.0), r - 1.0)
    wy = min(max(math.floor(c1 * r), 0.0), r - 1.0)
    if (c0 + c1) * r - wx - wy <= 1 + TEXEL_EDGE_TOLERANCE:
        return int(wy * r + wx)
    return int((r - 1 - wy) * r + (r - 1 - wx))


# ---- backend inputs, parameters and outputs ----------------------------------------------
class RasterInputs(NamedTuple):
    """What a backend rasterizes (validated by :func:`softras.raster.rasterize_channels`).

    Attributes:
        face_vertices: [B, F, 3, 3] screen space (x, y NDC with y up, z camera depth), float.
        surface: [B, F, T, Cs] texels per face (T = R², Cs >= 0 channels), same dtype/device.
        vertex: [B, F, 3, Cv] per-corner attributes (Cv >= 0 channels), same dtype/device.
        background: Cs + Cv + Cu floats, the value of each channel where no face colours the pixel.
        uv: a UV texture (:class:`softras.raster.uv.UVMaps`, Cu = its channels) or None (Cu = 0):
            per pair, its lookup at the perspective-correct UVs (:mod:`softras.raster.model.texture`).
    """

    face_vertices: torch.Tensor
    surface: torch.Tensor
    vertex: torch.Tensor
    background: tuple[float, ...]
    uv: UVMaps | None = None

    @classmethod
    def from_textures(
        cls, face_vertices: torch.Tensor, textures: torch.Tensor, settings: RasterSettings
    ) -> RasterInputs:
        """The original's call as inputs: ``textures`` [B, F, R*R, 3] are the surface channels
        (``settings.texture_type='surface'``) or [B, F, 3, 3] the vertex channels ('vertex'),
        the other kind is 0 wide, and the background is ``settings.background_color``."""
        b, f = face_vertices.shape[:2]
        vertex_colours = settings.texture_type == "vertex"
        none = face_vertices.new_zeros(b, f, 3 if vertex_colours else 1, 0)
        surface, vertex = (none, textures) if vertex_colours else (textures, none)
        return cls(face_vertices, surface, vertex, settings.background_color)

    @property
    def num_uv(self) -> int:
        """Cu: the UV texture's channels (0 without one)."""
        return 0 if self.uv is None else self.uv.channels

    @property
    def num_channels(self) -> int:
        return int(self.surface.shape[3] + self.vertex.shape[3]) + self.num_uv

    @property
    def texture_res(self) -> int:
        """R of the surface texels (1 when there are no surface channels)."""
        return math.isqrt(self.surface.shape[2]) if self.surface.shape[3] > 0 else 1


class RasterResult(NamedTuple):
    """What a backend returns; fields not asked for by the settings are ``None``.

    Attributes:
        channels: [B, Cs + Cv + Cu, H, W] aggregated attributes (surface channels, vertex
            channels, UV texture channels), in the input dtype; differentiable w.r.t.
            face_vertices, surface, vertex and the UV texture's uv and atlas.
        alpha: [B, 1, H, W] coverage; differentiable.
        depth: [B, 1, H, W] soft depth (``settings.with_depth``): the perspective-correct camera
            depth of each pair, aggregated with the same weights as the channels, background 0;
            differentiable.
        face_id: [B, H, W] int64 (``settings.with_zbuffer``): the z-buffer face (per-item index),
            −1 where no face contains the pixel centre.
        barycentrics: [B, 3, H, W] perspective-correct barycentrics of the z-buffer face at the
            pixel centre (0 where empty); not differentiable.
        hard_depth: [B, 1, H, W] the z-buffer depth (0 where empty); not differentiable.
    """

    channels: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor | None = None
    face_id: torch.Tensor | None = None
    barycentrics: torch.Tensor | None = None
    hard_depth: torch.Tensor | None = None

    @classmethod
    def asked(cls, settings: RasterSettings, *outputs: torch.Tensor | None) -> RasterResult:
        """The result from all six outputs in field order, those the settings did not ask for set to None."""
        channels, alpha, depth, face_id, barycentrics, hard_depth = outputs
        zbuffer = settings.with_zbuffer
        return cls(
            channels,
            alpha,
            depth if settings.with_depth else None,
            face_id if zbuffer else None,
            barycentrics if zbuffer else None,
            hard_depth if zbuffer else None,
        )


def softmax_constants(settings: RasterSettings) -> tuple[float, float]:
    """(1 / ((far − near)·γ), far − eps·(far − near)): the softmax's depth scale and the depth at
    which the background sits (its weight is exp(eps/γ) = exp((far − zp_bg)·inv_scale))."""
    s = settings
    return 1.0 / ((s.far - s.near) * s.gamma_val), s.far - s.eps * (s.far - s.near)


def depth_range(settings: RasterSettings) -> tuple[float, float]:
    """(lo, hi): a pair may colour a pixel iff lo <= zp <= hi, i.e. near <= zp <= far inclusive, each
    bound widened by :data:`DEPTH_RANGE_RTOL` of its magnitude."""
    s = settings
    return s.near - abs(s.near) * DEPTH_RANGE_RTOL, s.far + abs(s.far) * DEPTH_RANGE_RTOL


class KernelParams(NamedTuple):
    """Every scalar a kernel reads, by name (Numba takes it as is; Warp builds a ``wp.struct``
    with these fields and types)."""

    dist_func: int  # DistFunc
    rgb_aggregation: int  # RgbAggregation
    alpha_aggregation: int  # AlphaAggregation
    fill_back: int  # 1: back faces colour too
    texture_res: int  # R of the surface texels
    num_surface: int  # Cs
    num_vertex: int  # Cv
    with_depth: int  # 1: aggregate the soft depth channel
    with_zbuffer: int  # 1: face id, barycentrics and hard depth of the z-buffer
    num_faces: int  # F (alpha 'sum' divides by it)
    sigma: float
    theta: float  # squared cull radius σ·log(1/dist_eps − 1)
    near: float
    far: float
    depth_min: float  # the depth test's bounds, see depth_range
    depth_max: float
    inv_scale: float  # 1 / ((far − near)·γ)
    zp_bg: float  # the background's depth in the softmax
    distribution: int  # the model's distribution code, or −1: SoftRas's sigmoid of sign·d²/σ (or hard)
    squared: int  # 1: z = sign·d²/σ, 0: z = sign·d/σ
    dist_shape: float  # the distribution's shape (0 when it takes none)
    dist_shift: float  # the distribution's shift (0 when none)
    t_conorm_p: float  # the T-conorm's parameter (0 when none)
    num_uv: int = 0  # Cu: the UV texture's channels (after the surface and vertex channels)
    texture_filter: int = 0  # uv.TextureFilter
    texture_wrap: int = 0  # uv.TextureWrap
    pixel_x: float = 0.0  # NDC width of a pixel, 2 / W (the UV level of detail)
    pixel_y: float = 0.0  # NDC height of a pixel, 2 / H
    perspective_correct: int = 0  # 1: vertex attributes with perspective-correct barycentrics


def kernel_params(inputs: RasterInputs, settings: RasterSettings) -> KernelParams:
    """The kernel parameters of one call."""
    s = settings
    inv_scale, zp_bg = softmax_constants(s)
    depth_min, depth_max = depth_range(s)
    code, shape, shift, t_conorm_p = s.family
    return KernelParams(
        dist_func=int(DistFunc[s.dist_func.upper()]),
        rgb_aggregation=int(RgbAggregation[s.aggr_func_rgb.upper()]),
        alpha_aggregation=model.alpha_code(s.aggr_func_alpha),
        fill_back=int(s.fill_back),
        texture_res=inputs.texture_res,
        num_surface=int(inputs.surface.shape[3]),
        num_vertex=int(inputs.vertex.shape[3]),
        with_depth=int(s.with_depth),
        with_zbuffer=int(s.with_zbuffer),
        num_faces=int(inputs.face_vertices.shape[1]),
        sigma=float(s.sigma_val),
        theta=float(s.cull_threshold),
        near=float(s.near),
        far=float(s.far),
        depth_min=depth_min,
        depth_max=depth_max,
        inv_scale=inv_scale,
        zp_bg=zp_bg,
        distribution=-1 if s.softras_coverage else code,
        squared=int(s.squared_distance),
        dist_shape=shape,
        dist_shift=shift,
        t_conorm_p=t_conorm_p,
        num_uv=inputs.num_uv,
        texture_filter=0 if inputs.uv is None else int(inputs.uv.filter),
        texture_wrap=0 if inputs.uv is None else int(inputs.uv.wrap),
        pixel_x=2.0 / s.image_width,
        pixel_y=2.0 / s.image_height,
        perspective_correct=int(s.perspective_correct),
    )
