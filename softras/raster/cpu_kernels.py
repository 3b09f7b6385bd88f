"""Numba kernels of the ``cpu`` backend: per-face constants, fused forward and backward.

Each kernel works on one batch item × one screen tile per task, visits only the
faces binned to that tile (:func:`softras.raster.contract.bin_faces`), and of those only the
(pixel, face) pairs inside the face's exact pixel range (:func:`~softras.raster.contract.pixel_ranges`).
Per pixel it keeps a handful of scalars (alpha accumulator, softmax reference element, the
weighted sums of every channel, the z-buffer winner), so memory is O(B·H·W·C + entries), an
entry being one (face, tile) incidence. The backward recomputes every pair term and writes
each pair's gradient into its entry's own slot; a pass over the faces (in parallel) then sums
each face's slots in tile order. No two threads ever add into the same float, so gradients
are bit-identical from run to run; the one gradient that pairs of many tiles share, a UV
texture's atlas, is summed in fixed point by integer atomics (order-free, :func:`_add_int`).
The tasks are handed out one at a time from a shared counter (one worker per thread,
:func:`_take`): a thread that the OS deschedules delays one task, not a fixed share of the image.

Channels: ``surface`` texels [B, F, T, Cs], ``vertex`` attributes [B, F, 3, Cv] and a UV
texture's Cu channels (:class:`UVArrays`, looked up by the model's rules of
:mod:`softras.raster.model.texture`) of any width (0 included), looped over; the soft depth is
one more channel whose per-pair value is the pair's depth. The vertex attributes are weighted
with the pair's clipped, renormalised barycentrics c_k, or with ``perspective_correct`` with
the model's perspective-correct b_k (:func:`~softras.raster.model.texture.perspective_weights`,
:func:`_vertex_weights`); their backward takes dL/db_k through the model's
``perspective_weights_vjp`` to the c_k and the inverse depths, the UV lookup's gradient's route.
Each combination of options and widths has kernels of its own (:class:`Variant`), in which
everything the options do not ask for is compiled out; the generic kernels read them at run
time instead.

For the Euclidean distance the pair loops take a row's pixels :data:`~.cpu_lanes.LANES` at a time:
:func:`.cpu_lanes.coverage_lanes` evaluates their coverage (keep flag, barycentrics, x, D, 1 − D,
closest edge) in one vectorised loop, and the backward's :func:`.cpu_lanes.distance_grad_lanes`
the distance's share of the vertex gradients; the rest of a pair's work reads the lanes. Both
give the scalar code's bits (:data:`LANES_ENV` switches them off, for measuring).

Arithmetic is float64 inside the kernels whatever the input dtype (pixel centres, barycentric
matrix, distances, depths, the outputs the backward reads), which makes float32 inputs *more*
accurate than the float32 reference. The rules come from :mod:`softras.raster.contract`.
Three shortcuts are exact in real arithmetic and differ from the reference by rounding only:
an outside pair whose distance to one edge *line* already reaches √θ is culled at once;
inside a face the distance to its boundary is the smallest w_k × altitude_k; outside, only
the edges opposite a w_k <= 0 are measured.
"""

from __future__ import annotations

import functools
import math
import os
from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .._jit_cache import configure_numba_cache
from . import cpu_model
from .contract import (
    CULL_MARGIN,
    DET_EPS,
    SIGMOID_CUTOFF,
    W_SUM_EPS,
    Z_EPS,
    ZBUFFER_RTOL,
    AlphaAggregation,
    DistFunc,
    FaceConst,
    RgbAggregation,
    texel_cell,
)
from .cpu_binning import face_range
from .cpu_lanes import (
    EXP_CORE_MAX,
    L_D,
    L_EDGE,
    L_GV,
    L_GX,
    L_KEEP,
    L_OMD,
    L_W0,
    L_W1,
    L_W2,
    L_X,
    LANES,
    N_ROWS,
    coverage_lanes,
    distance_grad_lanes,
    distance_vertex_grads,
    exp_neg_core,
    far_outside,
    segment_distance2,
    snap,
)
from .cpu_model import coverage, tc_alpha, tc_pair_gradient, tc_term
from .uv import TextureFilter, TextureWrap

__all__ = ["G_ATTR", "Geometry", "backward", "forward", "prepare_faces", "reduce_faces"]

# Layout of one entry's gradient slot: d/d barycentric matrix (9), d/d xy (6), d/d z (3), then
# the surface texels' (T·Cs, when they need a gradient), the vertex attributes' (3·Cv), then the
# UV texture's corner UVs (6, [3, 2]).
G_INV, G_XY, G_Z, G_ATTR = 0, 9, 15, 18

_JIT = {"cache": configure_numba_cache(), "nogil": True, "error_model": "numpy"}

# Option codes as plain ints (compile-time constants in the kernels).
_D_HARD, _D_BARY, _D_EUCLID = int(DistFunc.HARD), int(DistFunc.BARYCENTRIC), int(DistFunc.EUCLIDEAN)
_RGB_HARD, _RGB_SOFTMAX = int(RgbAggregation.HARD), int(RgbAggregation.SOFTMAX)
_A_HARD, _A_SUM, _A_PROD = int(AlphaAggregation.HARD), int(AlphaAggregation.SUM), int(AlphaAggregation.PROD)
_A_MAX = int(AlphaAggregation.MAX)  # codes above it: the model's Archimedean T-conorms

# Fields of the face tuple, from the contract's FaceConst layout.
_INV, _XY, _INV_Z, _Z_OK = int(FaceConst.INV), int(FaceConst.XY), int(FaceConst.INV_Z), int(FaceConst.Z_OK)
_EDGE, _ALT = int(FaceConst.INV_EDGE_LEN2), int(FaceConst.ALTITUDE2)

_texel = njit(inline="always", **_JIT)(texel_cell)


class Geometry(NamedTuple):
    """What every kernel reads about the faces and the screen (numpy, built by ``cpu.py``).

    Attributes:
        xs: [W] float64 pixel-centre x, ys: [H] float64 pixel-centre y (top row first).
        face_vertices: [B, F, 3, 3] float32/float64 screen-space triangles.
        inv: [B, F, 9] float64 barycentric matrices (:func:`prepare_faces`).
        front: [B, F] bool front-facing flags.
        ranges: [B, F, 4] int64 exact pixel ranges (c0, c1, r0, r1).
        tile_start: [B·T + 1] int64, tile_faces: [E] int64 (contract ``Bins``).
        tile, ntx, nty: tile side and tile counts.
    """

    xs: np.ndarray
    ys: np.ndarray
    face_vertices: np.ndarray
    inv: np.ndarray
    front: np.ndarray
    ranges: np.ndarray
    tile_start: np.ndarray
    tile_faces: np.ndarray
    tile: int
    ntx: int
    nty: int


@njit(inline="always", **_JIT)
def _exp_neg(a):  # pragma: no cover - compiled
    """e^-a for a >= 0, inlined (no libm call, so the caller's registers are not spilled around it):
    :func:`.cpu_lanes.exp_neg_core`, within a few ulp of libm's exp; beyond a = 700 (subnormal
    results) libm's."""
    if a > EXP_CORE_MAX:
        return math.exp(-a)
    return exp_neg_core(a)


@njit(inline="always", **_JIT)
def _exp(v):  # pragma: no cover - compiled
    """e^v: inlined for v <= 0 (every softmax weight relative to the top element but rare ones)."""
    return _exp_neg(-v) if v <= 0 else math.exp(v)


@njit(inline="always", **_JIT)
def _sigmoid_pair(x, dist_id):  # pragma: no cover - compiled
    """D = sigmoid(x) and 1 - D, each to full relative precision, from one e^-|x| (0 beyond
    |x| = SIGMOID_CUTOFF: below the resolution of every sum it enters). Hard test: (1, 0)."""
    if dist_id == _D_HARD:
        return 1.0, 0.0
    ax = abs(x)
    e = _exp_neg(ax) if ax < SIGMOID_CUTOFF else 0.0
    r = 1.0 / (1.0 + e)
    if x >= 0:
        return r, e * r
    return e * r, r


@njit(inline="always", **_JIT)
def _family_z(x, squared, sigma):  # pragma: no cover - compiled
    """z of the model's distribution from x = sign·d²/σ: x itself, or sign·d/σ (``squared`` 0)."""
    if squared != 0:
        return x
    r = math.sqrt(abs(x) / sigma)
    return r if x >= 0 else -r


@njit(inline="always", **_JIT)
def _family_dz_dx(z, squared, sigma):  # pragma: no cover - compiled
    """dz/dx for :func:`_family_z` (0 at d = 0, where d has no derivative)."""
    if squared != 0:
        return 1.0
    return 0.5 / (sigma * abs(z)) if z != 0 else 0.0


@njit(inline="always", **_JIT)
def _pair_coverage(x, dist_id, dist_code, squared, p, version):  # pragma: no cover - compiled
    """(D, 1 − D, dD/dz, z) of a kept pair: SoftRas's sigmoid of x (or the hard test) for
    ``dist_code`` −1, else the model's distribution ``dist_code`` at z (see :func:`_family_z`).
    A constant ``dist_code`` inlines that one distribution; ``version`` is the registry version,
    a constant (:mod:`.cpu_model`)."""
    if dist_code < 0:
        d, one_minus_d = _sigmoid_pair(x, dist_id)
        return d, one_minus_d, d * one_minus_d, x
    z = _family_z(x, squared, p.sigma)
    d, one_minus_d, f = coverage(dist_code, z, p.dist_shape, p.dist_shift, version)
    return d, one_minus_d, f, z


@njit(inline="always", **_JIT)
def _inside_closed(w0, w1, w2):  # pragma: no cover - compiled
    return w0 >= 0 and w0 <= 1 and w1 >= 0 and w1 <= 1 and w2 >= 0 and w2 <= 1


@njit(inline="always", **_JIT)
def _barycentrics(px, py, fc):  # pragma: no cover - compiled
    """The pair's screen barycentrics before :func:`_snap`."""
    w0 = fc[_INV + 0] * px + fc[_INV + 1] * py + fc[_INV + 2]
    w1 = fc[_INV + 3] * px + fc[_INV + 4] * py + fc[_INV + 5]
    w2 = fc[_INV + 6] * px + fc[_INV + 7] * py + fc[_INV + 8]
    return w0, w1, w2


@njit(inline="always", **_JIT)
def _coverage(px, py, fc, dist_id, theta, sigma):  # pragma: no cover - compiled
    """Barycentrics, keep flag, x = sign·d²/σ (D = sigmoid(x)) and the closest edge.

    fc: the face tuple (see ``_load_face``).
    """
    w0, w1, w2 = _barycentrics(px, py, fc)
    edge = -1
    if dist_id == _D_EUCLID:
        # most far pairs end here, before any further work (with a safety margin)
        bound = theta * CULL_MARGIN
        if (
            far_outside(w0, fc[_ALT + 0], bound)
            or far_outside(w1, fc[_ALT + 1], bound)
            or far_outside(w2, fc[_ALT + 2], bound)
        ):
            return w0, w1, w2, False, 0.0, edge
    w0, w1, w2 = snap(w0), snap(w1), snap(w2)
    if dist_id == _D_HARD:
        return w0, w1, w2, _inside_closed(w0, w1, w2), math.inf, edge
    if dist_id == _D_BARY:
        m = min(w0, min(w1, w2))
        signed = m * abs(m)
        return w0, w1, w2, -signed < theta, signed / sigma, edge
    inside = w0 > 0 and w0 < 1 and w1 > 0 and w1 < 1 and w2 > 0 and w2 < 1
    if inside:
        # Inside, the nearest boundary point lies on the nearest edge *line*: its distance is
        # w_k × altitude_k (the edge opposite vertex k is edge k + 1).
        d2 = w0 * w0 * fc[_ALT + 0]
        edge = 1
        dk = w1 * w1 * fc[_ALT + 1]
        if dk < d2:
            d2 = dk
            edge = 2
        dk = w2 * w2 * fc[_ALT + 2]
        if dk < d2:
            d2 = dk
            edge = 0
        return w0, w1, w2, True, d2 / sigma, edge
    # The nearest point lies on an edge whose opposite barycentric is <= 0.
    x0, y0, x1, y1, x2, y2 = fc[_XY + 0], fc[_XY + 1], fc[_XY + 2], fc[_XY + 3], fc[_XY + 4], fc[_XY + 5]
    d2 = math.inf
    if w2 <= 0:
        d2 = segment_distance2(px, py, x0, y0, x1, y1, fc[_EDGE + 0])
        edge = 0
    if w0 <= 0:
        dk = segment_distance2(px, py, x1, y1, x2, y2, fc[_EDGE + 1])
        if dk < d2:
            d2 = dk
            edge = 1
    if w1 <= 0:
        dk = segment_distance2(px, py, x2, y2, x0, y0, fc[_EDGE + 2])
        if dk < d2:
            d2 = dk
            edge = 2
    return w0, w1, w2, d2 < theta, -d2 / sigma, edge



@njit(inline="always", **_JIT)
def _pair_geometry(lane, jl, use_lanes, px, py, fc, dist_id, theta, sigma):  # pragma: no cover - compiled
    """Keep flag, snapped barycentrics, x and closest edge of the pair at pixel (px, py): lane ``jl`` of
    :func:`.cpu_lanes.coverage_lanes`' output ``lane`` when ``use_lanes``, else :func:`_coverage`."""
    if use_lanes:
        return (
            lane[L_KEEP * LANES + jl] != 0.0,
            lane[L_W0 * LANES + jl],
            lane[L_W1 * LANES + jl],
            lane[L_W2 * LANES + jl],
            lane[L_X * LANES + jl],
            int(lane[L_EDGE * LANES + jl]),
        )
    w0, w1, w2, keep, x, edge = _coverage(px, py, fc, dist_id, theta, sigma)
    return keep, w0, w1, w2, x, edge


@njit(inline="always", **_JIT)
def _pair_terms(lane, jl, use_lanes, x, dist_id, dist_code, squared, p, version):  # pragma: no cover - compiled
    """(D, 1 − D, dD/dz, z) of a kept pair (:func:`_pair_coverage`), SoftRas's sigmoid read from the
    lanes when they computed it."""
    if use_lanes and dist_code < 0:
        d = lane[L_D * LANES + jl]
        one_minus_d = lane[L_OMD * LANES + jl]
        return d, one_minus_d, d * one_minus_d, x
    return _pair_coverage(x, dist_id, dist_code, squared, p, version)

#: Below this many faces (all batch items together) :func:`prepare_faces` runs on the calling
#: thread: a parallel launch of the ``workqueue`` layer costs ~0.15-0.3 ms, more than the pass.
SERIAL_BELOW_FACES = 16384


def prepare_faces(fv, grow, xs, ys, ranges, front, inv) -> None:
    """The faces' pixel ranges, front flags and barycentric matrices (arguments: the kernel of
    :func:`_make_prepare_faces`), in parallel unless there are few faces."""
    many = fv.shape[0] * fv.shape[1] >= SERIAL_BELOW_FACES
    (_prepare_faces_parallel if many else _prepare_faces_serial)(fv, grow, xs, ys, ranges, front, inv)


def _make_prepare_faces(parallel: bool):
    """The per-face pass, its loop parallel or not (``face_loop``, a closure constant, also keeps
    the two compiled versions apart in Numba's on-disk cache)."""
    face_loop = prange if parallel else range

    @njit(parallel=parallel, **_JIT)
    def kernel(fv, grow, xs, ys, ranges, front, inv):  # pragma: no cover - compiled
        """Per face: the exact pixel range and front flag (``cpu_binning.face_range``: grow [1] √θ,
        xs [W], ys [H] pixel centres, all in fv's dtype; writes ranges [B, F, 4] int64, front
        [B, F] bool) and the FaceConst.INV block, its barycentric matrix w_k = P_k x + Q_k y + R_k
        (inv [B, F, 9] float64, written). Float64 whatever the input dtype: the entries scale
        with 1 / det, and float32 rounding there dominates the coverage error near edges.
        """
        nb, nf = fv.shape[0], fv.shape[1]
        g = grow[0]
        for job in face_loop(nb * nf):
            b = job // nf
            f = job % nf
            face_range(fv, b, f, g, xs, ys, ranges, front)
            x0, y0 = np.float64(fv[b, f, 0, 0]), np.float64(fv[b, f, 0, 1])
            x1, y1 = np.float64(fv[b, f, 1, 0]), np.float64(fv[b, f, 1, 1])
            x2, y2 = np.float64(fv[b, f, 2, 0]), np.float64(fv[b, f, 2, 1])
            det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
            det = max(det, DET_EPS) if det > 0 else min(det, -DET_EPS)
            inv[b, f, 0] = (y1 - y2) / det
            inv[b, f, 1] = (x2 - x1) / det
            inv[b, f, 2] = (x1 * y2 - x2 * y1) / det
            inv[b, f, 3] = (y2 - y0) / det
            inv[b, f, 4] = (x0 - x2) / det
            inv[b, f, 5] = (x2 * y0 - x0 * y2) / det
            inv[b, f, 6] = (y0 - y1) / det
            inv[b, f, 7] = (x1 - x0) / det
            inv[b, f, 8] = (x0 * y1 - x1 * y0) / det

    return kernel


_prepare_faces_parallel = _make_prepare_faces(True)
_prepare_faces_serial = _make_prepare_faces(False)


@njit(inline="always", **_JIT)
def _inv_z(z):  # pragma: no cover - compiled
    """1 / z with |z| < Z_EPS replaced by Z_EPS, and whether the depth gradient flows (1 / 0)."""
    ok = abs(z) >= Z_EPS
    return 1.0 / (z if ok else Z_EPS), 1.0 if ok else 0.0


@njit(inline="always", **_JIT)
def _add_inv_z_grads(gz0, gz1, gz2, fc, giz0, giz1, giz2):  # pragma: no cover - compiled
    """The depth-gradient sums gz_k plus what reaches z_k from giz_k = dL/d(1/z_k) of face tuple
    ``fc``: d(1/z)/dz = −(1/z)², nothing where :func:`_inv_z` clamped the depth."""
    if fc[_Z_OK + 0] != 0:
        gz0 -= giz0 * fc[_INV_Z + 0] * fc[_INV_Z + 0]
    if fc[_Z_OK + 1] != 0:
        gz1 -= giz1 * fc[_INV_Z + 1] * fc[_INV_Z + 1]
    if fc[_Z_OK + 2] != 0:
        gz2 -= giz2 * fc[_INV_Z + 2] * fc[_INV_Z + 2]
    return gz0, gz1, gz2


@njit(inline="always", **_JIT)
def _load_face(fv, inv, b, f):  # pragma: no cover - compiled
    """Face (b, f)'s constants in the contract's FaceConst layout, as a tuple of float64 (kept in
    registers, not memory): the stored barycentric matrix, the rest computed from the vertices."""
    x0, y0 = np.float64(fv[b, f, 0, 0]), np.float64(fv[b, f, 0, 1])
    x1, y1 = np.float64(fv[b, f, 1, 0]), np.float64(fv[b, f, 1, 1])
    x2, y2 = np.float64(fv[b, f, 2, 0]), np.float64(fv[b, f, 2, 1])
    iz0, ok0 = _inv_z(np.float64(fv[b, f, 0, 2]))
    iz1, ok1 = _inv_z(np.float64(fv[b, f, 1, 2]))
    iz2, ok2 = _inv_z(np.float64(fv[b, f, 2, 2]))
    i00, i01, i02 = inv[b, f, 0], inv[b, f, 1], inv[b, f, 2]
    i10, i11, i12 = inv[b, f, 3], inv[b, f, 4], inv[b, f, 5]
    i20, i21, i22 = inv[b, f, 6], inv[b, f, 7], inv[b, f, 8]
    l0 = (x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)
    l1 = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)
    l2 = (x0 - x2) * (x0 - x2) + (y0 - y2) * (y0 - y2)
    # Squared altitude from vertex k, det² / |opposite edge|², with the same (clamped) det as
    # the barycentric matrix: its row k's x, y coefficients have squared norm |edge|² / det².
    a0 = i00 * i00 + i01 * i01
    a1 = i10 * i10 + i11 * i11
    a2 = i20 * i20 + i21 * i21
    return (
        i00, i01, i02, i10, i11, i12, i20, i21, i22,  # INV
        x0, y0, x1, y1, x2, y2,  # XY
        iz0, iz1, iz2,  # INV_Z
        ok0, ok1, ok2,  # Z_OK
        1.0 / l0 if l0 > 0 else 1.0, 1.0 / l1 if l1 > 0 else 1.0, 1.0 / l2 if l2 > 0 else 1.0,  # INV_EDGE_LEN2
        1.0 / a0 if a0 > 0 else 0.0,  # ALTITUDE2
        1.0 / a1 if a1 > 0 else 0.0,
        1.0 / a2 if a2 > 0 else 0.0,
    )  # fmt: skip


@njit(inline="always", **_JIT)
def _depth(w0, w1, w2, fc):  # pragma: no cover - compiled
    """Clipped barycentrics u, their raw and floored sums, the renormalised c and 1 / z of the pair."""
    u0 = min(max(w0, 0.0), 1.0)
    u1 = min(max(w1, 0.0), 1.0)
    u2 = min(max(w2, 0.0), 1.0)
    s_raw = u0 + u1 + u2
    s = max(s_raw, W_SUM_EPS)
    rs = 1.0 / s
    c0 = u0 * rs
    c1 = u1 * rs
    c2 = u2 * rs
    inv_z = c0 * fc[_INV_Z + 0] + c1 * fc[_INV_Z + 1] + c2 * fc[_INV_Z + 2]
    return u0, u1, u2, s_raw, s, c0, c1, c2, inv_z


@njit(inline="always", **_JIT)
def _vertex_value(vertex, b, f, ch, vb0, vb1, vb2):  # pragma: no cover - compiled
    """Channel ch of face (b, f)'s vertex attributes interpolated with the weights vb_k
    (:func:`_vertex_weights`)."""
    return (
        vb0 * np.float64(vertex[b, f, 0, ch])
        + vb1 * np.float64(vertex[b, f, 1, ch])
        + vb2 * np.float64(vertex[b, f, 2, ch])
    )


class UVArrays(NamedTuple):
    """A call's UV texture as the kernels read it (numpy, built by ``cpu.py``; arrays with no
    entries when the call has none, see :class:`softras.raster.uv.UVMaps`).

    Attributes:
        uv: [B, F, 3, 2] (u, v) per face corner, in the vertices' dtype.
        material: [B, F] int64 material of each face.
        atlas: [N] every material's levels [H_l, W_l, Cu], channels last, in the vertices' dtype.
        levels: [M, L, 3] int64 (offset, height, width) of level l of material m.
        level_count: [M] int64 levels of each material.
    """

    uv: np.ndarray
    material: np.ndarray
    atlas: np.ndarray
    levels: np.ndarray
    level_count: np.ndarray


class _Taps(NamedTuple):
    """The texels a lookup reads in one level: the atlas index (of channel 0) of the texels at
    (row r0, column c0), (r0, c1), (r1, c0), (r1, c1), the fractions fx, fy of (u, v) between
    them and the level's width and height. A nearest lookup reads ``i00`` only."""

    i00: int
    i01: int
    i10: int
    i11: int
    fx: float
    fy: float
    width: float
    height: float


class _Lookup(NamedTuple):
    """A pair's UV lookup: the taps of level l0 (``low``) and l1 (``high``, trilinear only), the
    blend weight t of ``high`` and dt/dλ (:func:`~softras.raster.model.texture.mip_blend`)."""

    low: _Taps
    high: _Taps
    t: float
    dt: float


# Texture options as plain ints (compile-time constants in the specialised kernels).
_F_NEAREST, _F_BILINEAR = int(TextureFilter.NEAREST), int(TextureFilter.BILINEAR)
_F_TRILINEAR = int(TextureFilter.TRILINEAR)
_W_REPEAT = int(TextureWrap.REPEAT)

# The kernels call the UV functions below that are decorated with ``_uv_jit`` instead of inlining
# them: Numba types each once, not once per call site (a kernel with every filter inlined took
# minutes more to compile). LLVM still inlines them where it pays, after linking, and there
# constant arguments (a specialised kernel's filter) prune their branches.
_uv_jit = njit(**_JIT)

# The texture model, bound for Numba (inlined): the UV rules every backend calls.
_TEXTURE = cpu_model.texture_functions()
_uv_at, _uv_at_vjp = _TEXTURE["uv_at"], _TEXTURE["uv_at_vjp"]
_mip_level, _mip_level_vjp, _mip_blend = _TEXTURE["mip_level"], _TEXTURE["mip_level_vjp"], _TEXTURE["mip_blend"]
_texel_xy, _wrap_index = _TEXTURE["texel_xy"], _TEXTURE["wrap_index"]
_perspective_weights, _perspective_weights_vjp = _TEXTURE["perspective_weights"], _TEXTURE["perspective_weights_vjp"]


@njit(inline="always", **_JIT)
def _vertex_weights(perspective, c0, c1, c2, fc):  # pragma: no cover - compiled
    """The weights of a face's vertex attributes at a pair: its clipped, renormalised
    barycentrics c_k, or (``perspective`` true) the model's perspective-correct b_k
    (``perspective_weights``, from the inverse depths of face tuple ``fc``)."""
    if perspective:
        return _perspective_weights(c0, c1, c2, fc[_INV_Z + 0], fc[_INV_Z + 1], fc[_INV_Z + 2])
    return c0, c1, c2


@njit(inline="always", **_JIT)
def _uv_corners(uvt, b, f):  # pragma: no cover - compiled
    """Face (b, f)'s corner UVs as float64: (u0, u1, u2, v0, v1, v2)."""
    t = uvt.uv
    return (
        np.float64(t[b, f, 0, 0]), np.float64(t[b, f, 1, 0]), np.float64(t[b, f, 2, 0]),
        np.float64(t[b, f, 0, 1]), np.float64(t[b, f, 1, 1]), np.float64(t[b, f, 2, 1]),
    )  # fmt: skip


@njit(inline="always", **_JIT)
def _level_taps(uvt, mat, level, u, v, nch, filt, repeat):  # pragma: no cover - compiled
    """The :class:`_Taps` of (u, v) in level ``level`` of material ``mat``: its nearest texel
    (``filt`` nearest) or its four bilinear ones, wrapped (``repeat`` 1.0) or clamped (0.0)."""
    offset = uvt.levels[mat, level, 0]
    width = uvt.levels[mat, level, 2]
    wf = np.float64(width)
    hf = np.float64(uvt.levels[mat, level, 1])
    x, y = _texel_xy(u, v, wf, hf)
    if filt == _F_NEAREST:
        col = int(_wrap_index(np.float64(math.floor(x + 0.5)), wf, repeat))
        row = int(_wrap_index(np.float64(math.floor(y + 0.5)), hf, repeat))
        i = offset + (row * width + col) * nch
        return _Taps(i, i, i, i, 0.0, 0.0, wf, hf)
    x0 = np.float64(math.floor(x))
    y0 = np.float64(math.floor(y))
    c0 = int(_wrap_index(x0, wf, repeat))
    c1 = int(_wrap_index(x0 + 1.0, wf, repeat))
    r0 = int(_wrap_index(y0, hf, repeat)) * width
    r1 = int(_wrap_index(y0 + 1.0, hf, repeat)) * width
    return _Taps(
        offset + (r0 + c0) * nch, offset + (r0 + c1) * nch, offset + (r1 + c0) * nch, offset + (r1 + c1) * nch,
        x - x0, y - y0, wf, hf,
    )  # fmt: skip


@njit(inline="always", **_JIT)
def _uv_lookup(uvt, mat, u, v, lam, nch, filt, repeat):  # pragma: no cover - compiled
    """The :class:`_Lookup` of (u, v) in material ``mat``: level 0 (nearest, bilinear), or the
    levels that level of detail ``lam`` blends (trilinear)."""
    if filt != _F_TRILINEAR:
        low = _level_taps(uvt, mat, 0, u, v, nch, filt, repeat)
        return _Lookup(low, low, 0.0, 0.0)
    l0, l1, t, dt = _mip_blend(lam, np.float64(uvt.level_count[mat]))
    low = _level_taps(uvt, mat, int(l0), u, v, nch, filt, repeat)
    high = _level_taps(uvt, mat, int(l1), u, v, nch, filt, repeat)
    return _Lookup(low, high, t, dt)


@njit(inline="always", **_JIT)
def _no_uv_face():  # pragma: no cover - compiled
    """A :func:`_uv_face` of zeros (where a kernel has no UV texture to read)."""
    return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.int64(0), 0.0, 0.0, 0.0, 0.0


@njit(inline="always", **_JIT)
def _no_lookup():  # pragma: no cover - compiled
    """A :class:`_Lookup` of zeros (where a kernel has no UV texture to read)."""
    none = _Taps(0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
    return _Lookup(none, none, 0.0, 0.0)


@_uv_jit
def _uv_face(uvt, b, f, p):  # pragma: no cover - compiled
    """What every pair of face (b, f) reads of the UV texture: its corner UVs (u0, u1, u2, v0, v1, v2),
    its material and the level-of-detail scales of ``mip_level`` (sxu, sxv, syu, syv: the base
    level's texels per NDC unit times the pixel's NDC size)."""
    u0, u1, u2, v0, v1, v2 = _uv_corners(uvt, b, f)
    mat = uvt.material[b, f]
    height0 = np.float64(uvt.levels[mat, 0, 1])
    width0 = np.float64(uvt.levels[mat, 0, 2])
    return (
        u0, u1, u2, v0, v1, v2, mat,
        width0 * p.pixel_x, height0 * p.pixel_x, width0 * p.pixel_y, height0 * p.pixel_y,
    )  # fmt: skip


@_uv_jit
def _pair_lookup(uvt, tex, fc, c0, c1, c2, nch, filt, repeat):  # pragma: no cover - compiled
    """The pair's :class:`_Lookup`: (u, v) from its renormalised barycentrics c_k and the face's
    inverse depths (``uv_at``), and for a trilinear lookup its level of detail (``mip_level``, from
    the face's barycentric-matrix columns). tex: :func:`_uv_face`; fc: the face tuple; nch: the
    atlas's channels."""
    u0, u1, u2, v0, v1, v2, mat, sxu, sxv, syu, syv = tex
    iz0, iz1, iz2 = fc[_INV_Z + 0], fc[_INV_Z + 1], fc[_INV_Z + 2]
    u, v = _uv_at(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2)
    lam = 0.0
    if filt == _F_TRILINEAR:
        lam = _mip_level(
            c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2,
            fc[_INV + 0], fc[_INV + 3], fc[_INV + 6], fc[_INV + 1], fc[_INV + 4], fc[_INV + 7],
            sxu, sxv, syu, syv,
        )  # fmt: skip
    return _uv_lookup(uvt, mat, u, v, lam, nch, filt, repeat)


@_uv_jit
def _uv_vjp(tex, fc, c0, c1, c2, g_u, g_v, g_lam, filt):  # pragma: no cover - compiled
    """The gradients of a pair's lookup position for upstream dL/du, dL/dv and dL/dλ (trilinear):
    (gc0, gc1, gc2, giz0, giz1, giz2, gu0, gu1, gu2, gv0, gv1, gv2, ga0, ga1, ga2, gb0, gb1, gb2), for
    the renormalised barycentrics, the inverse depths, the corner UVs and the barycentric-matrix
    columns a_k = ∂w_k/∂x, b_k = ∂w_k/∂y (``uv_at_vjp`` plus ``mip_level_vjp``). As :func:`_pair_lookup`."""
    u0, u1, u2, v0, v1, v2, _, sxu, sxv, syu, syv = tex
    iz0, iz1, iz2 = fc[_INV_Z + 0], fc[_INV_Z + 1], fc[_INV_Z + 2]
    a0, a1, a2, b0, b1, b2 = fc[_INV + 0], fc[_INV + 3], fc[_INV + 6], fc[_INV + 1], fc[_INV + 4], fc[_INV + 7]
    gc0, gc1, gc2, giz0, giz1, giz2, gu0, gu1, gu2, gv0, gv1, gv2 = _uv_at_vjp(
        c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2, g_u, g_v
    )
    ga0 = ga1 = ga2 = gb0 = gb1 = gb2 = 0.0
    if filt == _F_TRILINEAR and g_lam != 0:
        lc0, lc1, lc2, liz0, liz1, liz2, lu0, lu1, lu2, lv0, lv1, lv2, ga0, ga1, ga2, gb0, gb1, gb2 = _mip_level_vjp(
            c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2, a0, a1, a2, b0, b1, b2, sxu, sxv, syu, syv, g_lam
        )
        gc0, gc1, gc2 = gc0 + lc0, gc1 + lc1, gc2 + lc2
        giz0, giz1, giz2 = giz0 + liz0, giz1 + liz1, giz2 + liz2
        gu0, gu1, gu2 = gu0 + lu0, gu1 + lu1, gu2 + lu2
        gv0, gv1, gv2 = gv0 + lv0, gv1 + lv1, gv2 + lv2
    return gc0, gc1, gc2, giz0, giz1, giz2, gu0, gu1, gu2, gv0, gv1, gv2, ga0, ga1, ga2, gb0, gb1, gb2


@njit(inline="always", **_JIT)
def _bilerp(atlas, tp, c):  # pragma: no cover - compiled
    """Channel c of the bilinear blend of taps ``tp``."""
    t00, t01 = np.float64(atlas[tp.i00 + c]), np.float64(atlas[tp.i01 + c])
    t10, t11 = np.float64(atlas[tp.i10 + c]), np.float64(atlas[tp.i11 + c])
    fx, fy = tp.fx, tp.fy
    return (1.0 - fy) * ((1.0 - fx) * t00 + fx * t01) + fy * ((1.0 - fx) * t10 + fx * t11)


@_uv_jit
def _uv_value(atlas, lk, c, filt):  # pragma: no cover - compiled
    """Channel c of lookup ``lk``: (1 − t)·low + t·high, each level bilinear, or the nearest texel."""
    if filt == _F_NEAREST:
        return np.float64(atlas[lk.low.i00 + c])
    low = _bilerp(atlas, lk.low, c)
    if filt == _F_BILINEAR:
        return low
    return (1.0 - lk.t) * low + lk.t * _bilerp(atlas, lk.high, c)


@njit(inline="always", **_JIT)
def _bilerp_grad(atlas, tp, c):  # pragma: no cover - compiled
    """(∂/∂u, ∂/∂v, value) of channel c of :func:`_bilerp`: x = u·W − ½ and y = (1 − v)·H − ½
    (``texel_xy``) make ∂/∂u = W·∂/∂fx and ∂/∂v = −H·∂/∂fy."""
    t00, t01 = np.float64(atlas[tp.i00 + c]), np.float64(atlas[tp.i01 + c])
    t10, t11 = np.float64(atlas[tp.i10 + c]), np.float64(atlas[tp.i11 + c])
    fx, fy = tp.fx, tp.fy
    top = (1.0 - fx) * t00 + fx * t01
    bottom = (1.0 - fx) * t10 + fx * t11
    d_fx = (1.0 - fy) * (t01 - t00) + fy * (t11 - t10)
    return d_fx * tp.width, -(bottom - top) * tp.height, (1.0 - fy) * top + fy * bottom


@_uv_jit
def _uv_value_grad(atlas, lk, c, filt):  # pragma: no cover - compiled
    """(∂/∂u, ∂/∂v, ∂/∂λ) of :func:`_uv_value` for a bilinear or trilinear lookup."""
    du, dv, low = _bilerp_grad(atlas, lk.low, c)
    if filt != _F_TRILINEAR:
        return du, dv, 0.0
    du1, dv1, high = _bilerp_grad(atlas, lk.high, c)
    t = lk.t
    return (1.0 - t) * du + t * du1, (1.0 - t) * dv + t * dv1, (high - low) * lk.dt


@intrinsic
def _add_int(typingctx, array, index, value):
    """array[index] += value as one atomic operation (array: int64, index and value: integers):
    integer addition is associative, so the sum is the same whatever order the threads add in."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        raise TypingError("_add_int: expected an int64 array")
    sig = types.none(array, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, signature.args[0], data, [args[1]])
        builder.atomic_rmw("add", pointer, args[2], "monotonic")
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always", **_JIT)
def _add_fixed(grad_atlas, i, g):  # pragma: no cover - compiled
    """Adds g (already scaled by the call's fixed-point scale) to texel entry i, rounded to an integer."""
    n = np.int64(math.floor(g + 0.5))
    if n != 0:
        _add_int(grad_atlas, i, n)


@njit(inline="always", **_JIT)
def _scatter_taps(grad_atlas, tp, c, g):  # pragma: no cover - compiled
    """The atlas gradient of channel c of :func:`_bilerp`, for upstream g (scaled)."""
    fx, fy = tp.fx, tp.fy
    _add_fixed(grad_atlas, tp.i00 + c, g * ((1.0 - fy) * (1.0 - fx)))
    _add_fixed(grad_atlas, tp.i01 + c, g * ((1.0 - fy) * fx))
    _add_fixed(grad_atlas, tp.i10 + c, g * (fy * (1.0 - fx)))
    _add_fixed(grad_atlas, tp.i11 + c, g * (fy * fx))


@_uv_jit
def _scatter_uv(grad_atlas, lk, c, filt, g):  # pragma: no cover - compiled
    """The atlas gradient of channel c of :func:`_uv_value` for upstream g, already multiplied by
    the call's fixed-point scale (:func:`softras.raster.uv.fixed_point_scale`)."""
    if filt == _F_NEAREST:
        _add_fixed(grad_atlas, lk.low.i00 + c, g)
    elif filt == _F_BILINEAR:
        _scatter_taps(grad_atlas, lk.low, c, g)
    else:
        _scatter_taps(grad_atlas, lk.low, c, g * (1.0 - lk.t))
        _scatter_taps(grad_atlas, lk.high, c, g * lk.t)


@intrinsic
def _take(typingctx, counter):
    """The next task: atomically returns counter[0] and adds 1 to it (counter: int64 array).

    The kernels' workers take tasks one at a time from a shared counter (dynamic scheduling): a
    worker whose thread is descheduled (other jobs on the machine) holds up one task, not a fixed
    share of them, while the others go on. Which worker renders a task does not change its result.
    """
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        raise TypingError("_take: expected an int64 array")
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        first = [context.get_constant(types.intp, 0)]
        pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array, first)
        return builder.atomic_rmw("add", pointer, context.get_constant(types.int64, 1), "monotonic")

    return sig, codegen


@njit(inline="always", **_JIT)
def _tile_bounds(job, nt, ntx, tile, h, w):  # pragma: no cover - compiled
    """Batch item and pixel rows [ty0, ty1) × columns [tx0, tx1) of task ``job``."""
    t = job % nt
    ty0 = (t // ntx) * tile
    tx0 = (t % ntx) * tile
    return job // nt, ty0, min(h, ty0 + tile), tx0, min(w, tx0 + tile)


@njit(inline="always", **_JIT)
def _face_span(pr, b, f, ty0, ty1, tx0, tx1):  # pragma: no cover - compiled
    """Rows ra..rb and columns ca..cb (inclusive) of face (b, f)'s range inside the tile."""
    return max(pr[b, f, 2], ty0), min(pr[b, f, 3], ty1 - 1), max(pr[b, f, 0], tx0), min(pr[b, f, 1], tx1 - 1)


# Rows of the forward pass's per-pixel tile state; the softmax sums of the channels (then of
# the depth) follow from S_SUM on.
S_ACC, S_DREF, S_ZP, S_DEN, S_ZB, S_WIN, S_C0, S_C1, S_C2, S_ARG, S_SUM = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10


class Variant(NamedTuple):
    """The options a specialised kernel compiles in as constants (the KernelParams fields of the same
    names; ``perspective_correct`` only where there are vertex channels, the one thing it weighs):
    its inner loops hold no branch on them, and channel loops have constant trip counts. Every
    combination gets its own kernel, compiled the first time it is used and cached on disk."""

    dist_func: int
    rgb_aggregation: int
    alpha_aggregation: int
    distribution: int
    squared: int
    fill_back: int
    num_surface: int
    num_vertex: int
    with_depth: int
    with_zbuffer: int
    num_uv: int = 0
    texture_filter: int = 0
    texture_wrap: int = 0
    perspective_correct: int = 0


#: Environment variable choosing the kernels: ``specialised`` (default: one kernel per
#: :class:`Variant`) or ``generic`` (one kernel for every option, read at run time: no compile per
#: combination, for sweeps over many options; the test suite uses it).
KERNELS_ENV = "SOFTRAS_CPU_KERNELS"


def kernel_variant(p) -> Variant | None:
    """The :class:`Variant` of call ``p`` (KernelParams), or None for the generic kernels (see
    :data:`KERNELS_ENV`)."""
    choice = os.environ.get(KERNELS_ENV, "specialised")
    if choice == "generic":
        return None
    if choice != "specialised":
        raise ValueError(f"{KERNELS_ENV}: expected 'specialised' or 'generic', got {choice!r}")
    return Variant(
        p.dist_func, p.rgb_aggregation, p.alpha_aggregation, p.distribution, p.squared, p.fill_back,
        p.num_surface, p.num_vertex, p.with_depth, p.with_zbuffer, p.num_uv, p.texture_filter, p.texture_wrap,
        int(p.perspective_correct != 0 and p.num_vertex > 0),
    )  # fmt: skip


#: Environment variable: ``off`` makes the kernels evaluate the Euclidean coverage one pair at a
#: time (the scalar ``_coverage``) instead of LANES pixels per call (:func:`.cpu_lanes.coverage_lanes`);
#: both give bit-identical results, so this is for measuring the lanes' speed.
LANES_ENV = "SOFTRAS_CPU_LANES"


def lanes_enabled() -> bool:
    """Whether the kernels built now use :func:`.cpu_lanes.coverage_lanes` (see :data:`LANES_ENV`)."""
    choice = os.environ.get(LANES_ENV, "on")
    if choice not in ("on", "off"):
        raise ValueError(f"{LANES_ENV}: expected 'on' or 'off', got {choice!r}")
    return choice == "on"


_NO_VARIANT = Variant(*([0] * len(Variant._fields)))  # the generic kernels' (unread) constants


@functools.cache
def _make_forward(variant: Variant | None, model_version: int, lanes: bool):
    """The forward kernel of ``variant``, or the generic one (None) that reads every option from ``p``,
    for the model of registry version ``model_version`` (a constant of every model call); made once.

    In a specialised kernel the ``if fixed`` blocks below are pruned before typing, so its option
    variables are compile-time constants and a family's model function is inlined (:mod:`.cpu_model`).
    """
    fixed = variant is not None  # closure values: Numba compiles them in, and they key the disk cache
    (
        v_dist, v_rgb, v_alpha, v_distribution, v_squared, v_fill, v_cs, v_cv, v_nd, v_zbuffer, v_cu, v_filt, v_wrap,
        v_persp,
    ) = variant or _NO_VARIANT  # fmt: skip
    model_key = cpu_model.model_key()  # a closure value, so that a changed model recompiles the cached kernel

    @njit(parallel=True, **_JIT)
    def forward(  # pragma: no cover - compiled
        workers,
        geo,
        surface,
        vertex,
        uvt,
        background,
        p,
        channels,
        alpha,
        depth,
        state,
        values,
        winner,
        barycentrics,
        hard_depth,
    ):
        """Render one call.

        Args:
            workers (int): how many workers take tasks (Numba's thread count, passed in: a kernel that
                asks Numba for it holds a function pointer, which Numba cannot cache on disk).
            geo (Geometry): the faces and the screen.
            surface (numpy.ndarray): [B, F, T, Cs] surface texels (input dtype).
            vertex (numpy.ndarray): [B, F, 3, Cv] vertex attributes (input dtype).
            uvt (UVArrays): the UV texture (Cu channels; read only when Cu > 0).
            background (numpy.ndarray): [Cs + Cv + Cu] float64.
            p (KernelParams): the options, :class:`~softras.raster.contract.KernelParams`.
            channels (numpy.ndarray): [B, Cs + Cv + Cu, H, W] in the input dtype, written.
            alpha (numpy.ndarray): [B, K, H, W] in the input dtype: alpha is written to its last
                channel. K = 1, or ``alpha`` is the [B, Cs + Cv + Cu + 1, H, W] array whose first
                channels are ``channels`` (one RGBA image, as the original returns).
            depth (numpy.ndarray): [B, 1, H, W] (with_depth) in the input dtype, written.
            state (numpy.ndarray): [B, 4, H, W] float64, written: the alpha accumulator (Π(1 - D) for
                'prod', Σ D for 'sum', 0/1 for 'hard', max D for 'max', G = Σ t(1 − D) for the other
                T-conorms); for softmax 1 / (D_top · denominator) and the top element's depth, so that
                a pair's weight is D · state[1] · e^((state[2] - z)·inv_scale); for 'max' the face
                holding the largest D (state[3]).
            values (numpy.ndarray): [B, Cs + Cv + Cu + with_depth, H, W] float64 (softmax): the outputs
                before rounding to the input dtype, for the backward.
            winner (numpy.ndarray): [B, H, W] int64 (hard RGB or with_zbuffer): the z-buffer face, or -1.
            barycentrics (numpy.ndarray): [B, 3, H, W] (with_zbuffer), written.
            hard_depth (numpy.ndarray): [B, 1, H, W] (with_zbuffer), written.
        """
        if len(model_key) == 0:  # never: the read makes model_key a cell of the closure, hence of the cache key
            return
        xs, ys, fv, inv, front, pr = geo.xs, geo.ys, geo.face_vertices, geo.inv, geo.front, geo.ranges
        tile, ntx, nt = geo.tile, geo.ntx, geo.ntx * geo.nty
        nb = fv.shape[0]
        h = ys.shape[0]
        w = xs.shape[0]
        if fixed:
            dist_id, rgb_id, alpha_id, dist_code, squared = v_dist, v_rgb, v_alpha, v_distribution, v_squared
            fill_back, cs, cv, nd, zbuffer = v_fill, v_cs, v_cv, v_nd, v_zbuffer
            cu, filt, wrap, persp = v_cu, v_filt, v_wrap, v_persp
        else:
            dist_id, rgb_id, alpha_id, dist_code, squared = (
                p.dist_func,
                p.rgb_aggregation,
                p.alpha_aggregation,
                p.distribution,
                p.squared,
            )
            fill_back, cs, cv, nd, zbuffer = p.fill_back, p.num_surface, p.num_vertex, p.with_depth, p.with_zbuffer
            cu, filt, wrap, persp = p.num_uv, p.texture_filter, p.texture_wrap, p.perspective_correct
        sigma, theta, depth_min, depth_max, inv_scale = p.sigma, p.theta, p.depth_min, p.depth_max, p.inv_scale
        generic = dist_code >= 0
        r = p.texture_res
        softmax = rgb_id == _RGB_SOFTMAX
        track_winner = not softmax or zbuffer != 0
        nc = cs + cv + cu  # the channels; the UV texture's are the last cu
        repeat = 1.0 if wrap == _W_REPEAT else 0.0
        perspective = persp != 0 and cv > 0  # the vertex attributes' weights are b_k (_vertex_weights)
        nsum = nc + nd if softmax else 0
        a_ch = alpha.shape[1] - 1
        use_lanes = lanes and dist_id == _D_EUCLID
        n_tasks = nb * nt
        next_task = np.zeros(1, dtype=np.int64)  # the first task no worker has taken yet
        for _worker in prange(workers):
            lane = np.empty(N_ROWS * LANES)  # coverage_lanes' scratch
            while True:
                job = _take(next_task)
                if job >= n_tasks:
                    break
                b, ty0, ty1, tx0, tx1 = _tile_bounds(job, nt, ntx, tile, h, w)
                st = np.empty((S_SUM + nsum, tile, tile), dtype=np.float64)
                st[S_ACC] = 1.0 if alpha_id == _A_PROD else 0.0  # prod: transmittance Π(1 - D)
                if softmax:
                    st[S_DREF] = 1.0  # the background's D
                    st[S_ZP] = p.zp_bg
                    st[S_DEN] = 1.0
                    for c in range(nc):
                        st[S_SUM + c] = background[c]
                    if nd:
                        st[S_SUM + nc] = 0.0  # the background's depth
                if track_winner:
                    st[S_ZB] = math.inf
                    st[S_WIN] = -1.0
                if alpha_id == _A_MAX:
                    st[S_ARG] = -1.0
                for e in range(geo.tile_start[job], geo.tile_start[job + 1]):
                    f = geo.tile_faces[e]
                    fc = _load_face(fv, inv, b, f)
                    colour_face = fill_back != 0 or front[b, f]
                    tex = _no_uv_face()
                    if cu > 0 and softmax:
                        tex = _uv_face(uvt, b, f, p)
                    ra, rb, ca, cb = _face_span(pr, b, f, ty0, ty1, tx0, tx1)
                    for row in range(ra, rb + 1):
                        py = ys[row]
                        for col0 in range(ca, cb + 1, LANES):
                            n_cols = min(LANES, cb + 1 - col0)
                            if use_lanes:
                                coverage_lanes(lane, col0, n_cols, w, py, fc, theta, sigma)
                            for col in range(col0, col0 + n_cols):
                                keep, w0, w1, w2, x, _ = _pair_geometry(
                                    lane, col - col0, use_lanes, xs[col], py, fc, dist_id, theta, sigma
                                )
                                if not keep:
                                    continue
                                i = row - ty0
                                j = col - tx0
                                d, one_minus_d, _, _ = _pair_terms(
                                    lane, col - col0, use_lanes, x, dist_id, dist_code, squared, p, model_version
                                )
                                if alpha_id == _A_PROD:
                                    st[S_ACC, i, j] *= one_minus_d
                                elif alpha_id == _A_SUM:
                                    st[S_ACC, i, j] += d
                                elif alpha_id == _A_HARD:
                                    if dist_id == _D_HARD or (d > 0.5 if generic else x > 0):  # D > 0.5
                                        st[S_ACC, i, j] = 1.0
                                elif alpha_id == _A_MAX:
                                    if d > st[S_ACC, i, j]:  # faces ascend: ties keep the lowest face
                                        st[S_ACC, i, j] = d
                                        st[S_ARG, i, j] = f
                                else:
                                    st[S_ACC, i, j] += tc_term(alpha_id, d, one_minus_d, p.t_conorm_p, model_version)
                                if not colour_face:
                                    continue
                                closed = _inside_closed(w0, w1, w2)
                                if not softmax and not closed:
                                    continue  # the z-buffer only takes faces covering the pixel centre
                                _, _, _, _, _, c0, c1, c2, inv_z = _depth(w0, w1, w2, fc)
                                zp = 1.0 / inv_z
                                if not (zp >= depth_min and zp <= depth_max):
                                    continue
                                # The z-buffer: faces ascend, so a later face wins only if nearer beyond the tie
                                # tolerance (contract.ZBUFFER_RTOL): ties keep the lowest face.
                                if track_winner and closed:
                                    zb = st[S_ZB, i, j]
                                    if st[S_WIN, i, j] < 0 or zp < zb - abs(zb) * ZBUFFER_RTOL:
                                        st[S_ZB, i, j] = zp
                                        st[S_WIN, i, j] = f
                                        st[S_C0, i, j] = c0
                                        st[S_C1, i, j] = c1
                                        st[S_C2, i, j] = c2
                                if not softmax:
                                    continue
                                # weight relative to the pixel's top element: (D / D_ref)·exp((z_ref - z) / ((far -
                                # near)γ)), the depth difference formed before the division by γ; one exp either way.
                                q = (st[S_ZP, i, j] - zp) * inv_scale
                                ratio = d / st[S_DREF, i, j]
                                new_top = False
                                scale = 1.0
                                if q > 0:
                                    scale = _exp_neg(q) / ratio  # = 1 / weight
                                    new_top = scale < 1.0
                                    ew = 0.0 if new_top else 1.0 / scale
                                else:
                                    ew = ratio * _exp_neg(-q)
                                    if ew > 1.0:
                                        new_top = True
                                        scale = 1.0 / ew
                                k = _texel(c0, c1, r) if cs > 0 else 0
                                lk = _no_lookup()
                                if cu > 0:
                                    lk = _pair_lookup(uvt, tex, fc, c0, c1, c2, cu, filt, repeat)
                                vb0, vb1, vb2 = _vertex_weights(perspective, c0, c1, c2, fc)
                                if new_top:
                                    st[S_DEN, i, j] = st[S_DEN, i, j] * scale + 1.0
                                    for c in range(cs):
                                        v = np.float64(surface[b, f, k, c])
                                        st[S_SUM + c, i, j] = st[S_SUM + c, i, j] * scale + v
                                    for c in range(cv):
                                        v = _vertex_value(vertex, b, f, c, vb0, vb1, vb2)
                                        st[S_SUM + cs + c, i, j] = st[S_SUM + cs + c, i, j] * scale + v
                                    for c in range(cu):
                                        v = _uv_value(uvt.atlas, lk, c, filt)
                                        st[S_SUM + cs + cv + c, i, j] = st[S_SUM + cs + cv + c, i, j] * scale + v
                                    if nd:
                                        st[S_SUM + nc, i, j] = st[S_SUM + nc, i, j] * scale + zp
                                    st[S_DREF, i, j] = d
                                    st[S_ZP, i, j] = zp
                                else:
                                    st[S_DEN, i, j] += ew
                                    for c in range(cs):
                                        st[S_SUM + c, i, j] += ew * np.float64(surface[b, f, k, c])
                                    for c in range(cv):
                                        st[S_SUM + cs + c, i, j] += ew * _vertex_value(vertex, b, f, c, vb0, vb1, vb2)
                                    for c in range(cu):
                                        st[S_SUM + cs + cv + c, i, j] += ew * _uv_value(uvt.atlas, lk, c, filt)
                                    if nd:
                                        st[S_SUM + nc, i, j] += ew * zp
                for row in range(ty0, ty1):
                    i = row - ty0
                    for col in range(tx0, tx1):
                        j = col - tx0
                        acc = st[S_ACC, i, j]
                        if alpha_id == _A_PROD:
                            alpha[b, a_ch, row, col] = 1.0 - acc
                        elif alpha_id == _A_SUM:
                            alpha[b, a_ch, row, col] = acc / p.num_faces
                        elif alpha_id == _A_HARD or alpha_id == _A_MAX:
                            alpha[b, a_ch, row, col] = acc
                        else:
                            alpha[b, a_ch, row, col] = tc_alpha(alpha_id, acc, p.t_conorm_p, model_version)
                        state[b, 0, row, col] = acc
                        if alpha_id == _A_MAX:
                            state[b, 3, row, col] = st[S_ARG, i, j]
                        if softmax:
                            den = st[S_DEN, i, j]
                            for c in range(nsum):
                                values[b, c, row, col] = st[S_SUM + c, i, j] / den
                            for c in range(nc):
                                channels[b, c, row, col] = values[b, c, row, col]
                            if nd:
                                depth[b, 0, row, col] = values[b, nc, row, col]
                            state[b, 1, row, col] = 1.0 / (st[S_DREF, i, j] * den)  # weight of a pair: D·that·e^(...)
                            state[b, 2, row, col] = st[S_ZP, i, j]
                        if not track_winner:
                            continue
                        f = int(st[S_WIN, i, j])
                        winner[b, row, col] = f
                        if f < 0:
                            if not softmax:
                                for c in range(nc):
                                    channels[b, c, row, col] = background[c]
                                if nd:
                                    depth[b, 0, row, col] = 0.0
                            if zbuffer != 0:
                                for k in range(3):
                                    barycentrics[b, k, row, col] = 0.0
                                hard_depth[b, 0, row, col] = 0.0
                            continue
                        # The winner's values from its renormalised barycentrics and depth.
                        c0, c1, c2, zp = st[S_C0, i, j], st[S_C1, i, j], st[S_C2, i, j], st[S_ZB, i, j]
                        if not softmax:
                            k = _texel(c0, c1, r) if cs > 0 else 0
                            for c in range(cs):
                                channels[b, c, row, col] = surface[b, f, k, c]
                            if cv > 0 or cu > 0:
                                wfc = _load_face(fv, inv, b, f)  # the winner's (inverse depths, UV constants)
                                vb0, vb1, vb2 = _vertex_weights(perspective, c0, c1, c2, wfc)
                                for c in range(cv):
                                    channels[b, cs + c, row, col] = _vertex_value(vertex, b, f, c, vb0, vb1, vb2)
                                if cu > 0:
                                    lk = _pair_lookup(uvt, _uv_face(uvt, b, f, p), wfc, c0, c1, c2, cu, filt, repeat)
                                    for c in range(cu):
                                        channels[b, cs + cv + c, row, col] = _uv_value(uvt.atlas, lk, c, filt)
                            if nd:
                                depth[b, 0, row, col] = zp
                        if zbuffer != 0:
                            barycentrics[b, 0, row, col] = c0 * _inv_z(np.float64(fv[b, f, 0, 2]))[0] * zp
                            barycentrics[b, 1, row, col] = c1 * _inv_z(np.float64(fv[b, f, 1, 2]))[0] * zp
                            barycentrics[b, 2, row, col] = c2 * _inv_z(np.float64(fv[b, f, 2, 2]))[0] * zp
                            hard_depth[b, 0, row, col] = zp

    return forward


def forward(geo, surface, vertex, uvt, background, p, *outputs):
    """Render one call: the kernel of :func:`_make_forward` for ``p``'s variant (arguments there)."""
    kernel = _make_forward(kernel_variant(p), cpu_model.model_version(), lanes_enabled())
    kernel(get_num_threads(), geo, surface, vertex, uvt, background, p, *outputs)


@functools.cache
def _make_backward(variant: Variant | None, model_version: int, lanes: bool):
    """The backward kernel of ``variant``, or the generic one (None), as :func:`_make_forward`; made once."""
    fixed = variant is not None
    (
        v_dist, v_rgb, v_alpha, v_distribution, v_squared, v_fill, v_cs, v_cv, v_nd, _, v_cu, v_filt, v_wrap,
        v_persp,
    ) = variant or _NO_VARIANT  # fmt: skip
    model_key = cpu_model.model_key()

    @njit(parallel=True, **_JIT)
    def backward(  # pragma: no cover - compiled
        workers,
        geo,
        surface,
        vertex,
        uvt,
        p,
        state,
        values,
        winner,
        grad_channels,
        grad_alpha,
        grad_depth,
        need,
        grad_entries,
        grad_atlas,
        atlas_scale,
    ):
        """Per-entry gradients: grad_entries [E, 18 + T·Cs·need_s + 3·Cv·need_a + 6·need_uv] float64
        (see the G_* layout), every slot written (no zero-fill needed), and the atlas gradient.

        ``need``: (face vertices, surface, vertex) need a gradient, the upstream gradient of the
        channels or depth is not all zero (else their pair terms are skipped), (the UV texture's corner
        UVs, its atlas) need a gradient, 0/1 each. grad_channels [B, Cs + Cv + Cu, H, W], grad_alpha
        [B, 1, H, W], grad_depth [B, 1, H, W] (with_depth): the upstream gradients; alpha's is the last
        channel of ``grad_alpha`` (which may be the RGBA gradient, as in :func:`forward`). state,
        values, winner: from :func:`forward`. uvt, workers: as in :func:`forward`.

        grad_atlas: [N] int64 zeros (need_atlas): each atlas-gradient contribution times ``atlas_scale``
        (:func:`softras.raster.uv.fixed_point_scale`), rounded, is added atomically; integer sums do not
        depend on the threads' order, so the gradient is bit-identical from run to run.
        """
        if len(model_key) == 0:  # never: the read makes model_key a cell of the closure, hence of the cache key
            return
        xs, ys, fv, inv, front, pr = geo.xs, geo.ys, geo.face_vertices, geo.inv, geo.front, geo.ranges
        tile, ntx, nt = geo.tile, geo.ntx, geo.ntx * geo.nty
        nb = fv.shape[0]
        h = ys.shape[0]
        w = xs.shape[0]
        nf = p.num_faces
        if fixed:
            dist_id, rgb_id, alpha_id, dist_code, squared = v_dist, v_rgb, v_alpha, v_distribution, v_squared
            fill_back, cs, cv, nd = v_fill, v_cs, v_cv, v_nd
            cu, filt, wrap, persp = v_cu, v_filt, v_wrap, v_persp
        else:
            dist_id, rgb_id, alpha_id, dist_code, squared = (
                p.dist_func,
                p.rgb_aggregation,
                p.alpha_aggregation,
                p.distribution,
                p.squared,
            )
            fill_back, cs, cv, nd = p.fill_back, p.num_surface, p.num_vertex, p.with_depth
            cu, filt, wrap, persp = p.num_uv, p.texture_filter, p.texture_wrap, p.perspective_correct
        sigma, theta, depth_min, depth_max, inv_scale = p.sigma, p.theta, p.depth_min, p.depth_max, p.inv_scale
        r = p.texture_res
        softmax = rgb_id == _RGB_SOFTMAX
        generic = dist_code >= 0
        need_v, need_s, need_a, need_values = need[0] != 0, need[1] != 0, need[2] != 0, need[3] != 0
        need_uv, need_atlas = cu > 0 and need[4] != 0, cu > 0 and need[5] != 0
        # the lookup position's gradient (nearest lookups have none)
        uv_position = (need_v or need_uv) and filt != _F_NEAREST
        nc = cs + cv + cu
        repeat = 1.0 if wrap == _W_REPEAT else 0.0
        perspective = persp != 0 and cv > 0  # the vertex attributes' weights are b_k (_vertex_weights)
        g_surf = G_ATTR
        g_vert = G_ATTR + (surface.shape[2] * cs if need_s else 0)
        g_uv = g_vert + (3 * cv if need_a else 0)
        n_attr = grad_entries.shape[1] - G_ATTR
        ga_ch = grad_alpha.shape[1] - 1
        n_tasks = nb * nt
        next_task = np.zeros(1, dtype=np.int64)  # the first task no worker has taken yet
        use_lanes = lanes and dist_id == _D_EUCLID
        for _worker in prange(workers):
            lane = np.empty(N_ROWS * LANES)  # coverage_lanes' scratch
            while True:
                job = _take(next_task)
                if job >= n_tasks:
                    break
                b, ty0, ty1, tx0, tx1 = _tile_bounds(job, nt, ntx, tile, h, w)
                for e in range(geo.tile_start[job], geo.tile_start[job + 1]):
                    f = geo.tile_faces[e]
                    fc = _load_face(fv, inv, b, f)
                    colour_face = fill_back != 0 or front[b, f]
                    tex = _no_uv_face()
                    if cu > 0:
                        tex = _uv_face(uvt, b, f, p)
                    g = grad_entries[e]
                    for k in range(n_attr):
                        g[G_ATTR + k] = 0.0  # the attribute slots accumulate; the vertex ones are stored once
                    # This entry's vertex-gradient terms, accumulated in registers, stored once below.
                    ginv0 = ginv1 = ginv2 = ginv3 = ginv4 = ginv5 = ginv6 = ginv7 = ginv8 = 0.0
                    gv0x = gv0y = gv1x = gv1y = gv2x = gv2y = 0.0
                    gz0 = gz1 = gz2 = 0.0
                    ra, rb, ca, cb = _face_span(pr, b, f, ty0, ty1, tx0, tx1)
                    for row in range(ra, rb + 1):
                        py = ys[row]
                        for col0 in range(ca, cb + 1, LANES):
                            n_cols = min(LANES, cb + 1 - col0)
                            if use_lanes:
                                coverage_lanes(lane, col0, n_cols, w, py, fc, theta, sigma)
                            lanes_gx = False  # whether a lane of this chunk has a dL/dx for distance_grad_lanes
                            for col in range(col0, col0 + n_cols):
                                px = xs[col]
                                keep, w0, w1, w2, x, edge = _pair_geometry(
                                    lane, col - col0, use_lanes, px, py, fc, dist_id, theta, sigma
                                )
                                if not keep:
                                    continue
                                ga = np.float64(grad_alpha[b, ga_ch, row, col])
                                gx = 0.0  # dL/dz (z = x for SoftRas's coverage)
                                d, one_minus_d, dd, z = _pair_terms(
                                    lane, col - col0, use_lanes, x, dist_id, dist_code, squared, p, model_version
                                )
                                if dist_id != _D_HARD:
                                    if alpha_id == _A_PROD:
                                        # dα/dz = Π(1 - D)·f/(1 - D), the hazard f/(1 - D) being D for the logistic
                                        hz = (dd / one_minus_d if one_minus_d > 0 else 0.0) if generic else d
                                        gx += ga * state[b, 0, row, col] * hz
                                    elif alpha_id == _A_SUM:
                                        gx += ga * dd / nf
                                    elif alpha_id == _A_MAX:
                                        if f == int(state[b, 3, row, col]):
                                            gx += ga * dd
                                    elif alpha_id != _A_HARD:
                                        g_state = state[b, 0, row, col]
                                        gx += ga * tc_pair_gradient(
                                            alpha_id, g_state, d, one_minus_d, dd, p.t_conorm_p, model_version
                                        )
                                gw0 = 0.0
                                gw1 = 0.0
                                gw2 = 0.0
                                colour_ok = need_values and colour_face and (softmax or f == winner[b, row, col])
                                if colour_ok:
                                    u0, u1, u2, s_raw, s, c0, c1, c2, inv_z = _depth(w0, w1, w2, fc)
                                    zp = 1.0 / inv_z
                                    colour_ok = zp >= depth_min and zp <= depth_max
                                else:
                                    u0 = u1 = u2 = s_raw = s = c0 = c1 = c2 = zp = 0.0
                                gzp = 0.0  # dL/d(pair depth)
                                gc0 = 0.0  # dL/d(renormalised barycentrics)
                                gc1 = 0.0
                                gc2 = 0.0
                                if colour_ok:
                                    k = _texel(c0, c1, r) if cs > 0 and (softmax or need_s) else 0
                                    wj = 1.0  # d(output)/d(pair value): the pair's softmax weight, or 1 for the winner
                                    if softmax:
                                        # softmax weight: (D / D_ref)·exp((z_ref - z) / ((far - near)γ)) / denominator
                                        wj = d * state[b, 1, row, col] * _exp((state[b, 2, row, col] - zp) * inv_scale)
                                    dot = 0.0  # softmax: Σ_c g_c (value_c - output_c), the output read in float64
                                    for c in range(cs):
                                        gr = np.float64(grad_channels[b, c, row, col])
                                        if softmax:
                                            dot += gr * (np.float64(surface[b, f, k, c]) - values[b, c, row, col])
                                        if need_s:
                                            g[g_surf + k * cs + c] += gr * wj
                                    vb0, vb1, vb2 = _vertex_weights(perspective, c0, c1, c2, fc)
                                    for c in range(cv):
                                        gr = np.float64(grad_channels[b, cs + c, row, col])
                                        if softmax:
                                            value = _vertex_value(vertex, b, f, c, vb0, vb1, vb2)
                                            dot += gr * (value - values[b, cs + c, row, col])
                                        gval = gr * wj
                                        if need_a:
                                            g[g_vert + c] += gval * vb0
                                            g[g_vert + cv + c] += gval * vb1
                                            g[g_vert + 2 * cv + c] += gval * vb2
                                        if need_v:  # dL/db_k, which is dL/dc_k unless perspective-correct
                                            gc0 += gval * np.float64(vertex[b, f, 0, c])
                                            gc1 += gval * np.float64(vertex[b, f, 1, c])
                                            gc2 += gval * np.float64(vertex[b, f, 2, c])
                                    if perspective and need_v:
                                        # b_k -> the clipped barycentrics c_k and the inverse depths 1/z_k
                                        gc0, gc1, gc2, giz0, giz1, giz2 = _perspective_weights_vjp(
                                            c0, c1, c2, fc[_INV_Z + 0], fc[_INV_Z + 1], fc[_INV_Z + 2], gc0, gc1, gc2
                                        )
                                        gz0, gz1, gz2 = _add_inv_z_grads(gz0, gz1, gz2, fc, giz0, giz1, giz2)
                                    if cu > 0:
                                        lk = _pair_lookup(uvt, tex, fc, c0, c1, c2, cu, filt, repeat)
                                        g_u = g_v = g_lam = 0.0  # dL/d(u, v, λ) of the pair
                                        for c in range(cu):
                                            gr = np.float64(grad_channels[b, cs + cv + c, row, col])
                                            if softmax and need_v:
                                                value = _uv_value(uvt.atlas, lk, c, filt)
                                                dot += gr * (value - values[b, cs + cv + c, row, col])
                                            gval = gr * wj
                                            if need_atlas:
                                                _scatter_uv(grad_atlas, lk, c, filt, gval * atlas_scale)
                                            if uv_position:
                                                du, dv, dlam = _uv_value_grad(uvt.atlas, lk, c, filt)
                                                g_u += gval * du
                                                g_v += gval * dv
                                                g_lam += gval * dlam
                                        if uv_position and (g_u != 0 or g_v != 0 or g_lam != 0):
                                            (
                                                tc0, tc1, tc2, tiz0, tiz1, tiz2, tu0, tu1, tu2, tv0, tv1, tv2,
                                                ta0, ta1, ta2, tb0, tb1, tb2,
                                            ) = _uv_vjp(tex, fc, c0, c1, c2, g_u, g_v, g_lam, filt)  # fmt: skip
                                            if need_uv:  # slots [3, 2]: (u, v) per corner
                                                g[g_uv + 0] += tu0
                                                g[g_uv + 1] += tv0
                                                g[g_uv + 2] += tu1
                                                g[g_uv + 3] += tv1
                                                g[g_uv + 4] += tu2
                                                g[g_uv + 5] += tv2
                                            if need_v:
                                                gc0 += tc0
                                                gc1 += tc1
                                                gc2 += tc2
                                                gz0, gz1, gz2 = _add_inv_z_grads(gz0, gz1, gz2, fc, tiz0, tiz1, tiz2)
                                                # the columns a_k, b_k of the barycentric matrix
                                                ginv0 += ta0
                                                ginv1 += tb0
                                                ginv3 += ta1
                                                ginv4 += tb1
                                                ginv6 += ta2
                                                ginv7 += tb2
                                    gd = np.float64(grad_depth[b, 0, row, col]) if nd else 0.0
                                    if nd and softmax:
                                        dot += gd * (zp - values[b, nc, row, col])
                                    if softmax:
                                        glogit = wj * dot
                                        if dist_id != _D_HARD:
                                            # d log D/dz: f/D, which is 1 - D for the logistic
                                            gx += glogit * ((dd / d if d > 0 else 0.0) if generic else one_minus_d)
                                        gzp = -glogit * inv_scale
                                    if nd:
                                        gzp += gd * wj
                                if not need_v:
                                    continue
                                # ---- values and depth -> clipped barycentrics and vertex depths --------
                                if gzp != 0:
                                    ginvz = -gzp * zp * zp
                                    gc0 += ginvz * fc[_INV_Z + 0]
                                    gc1 += ginvz * fc[_INV_Z + 1]
                                    gc2 += ginvz * fc[_INV_Z + 2]
                                    gz0, gz1, gz2 = _add_inv_z_grads(
                                        gz0, gz1, gz2, fc, ginvz * c0, ginvz * c1, ginvz * c2
                                    )
                                if gc0 != 0 or gc1 != 0 or gc2 != 0:
                                    dot = gc0 * u0 + gc1 * u1 + gc2 * u2
                                    gs = -dot / (s * s) if s_raw >= W_SUM_EPS else 0.0
                                    if w0 >= 0 and w0 <= 1:
                                        gw0 += gc0 / s + gs
                                    if w1 >= 0 and w1 <= 1:
                                        gw1 += gc1 / s + gs
                                    if w2 >= 0 and w2 <= 1:
                                        gw2 += gc2 / s + gs
                                # ---- coverage ----------------------------------------------------------
                                if generic and gx != 0:
                                    # dL/dx, x = sign·d²/σ as the chain below takes it
                                    gx *= _family_dz_dx(z, squared, sigma)
                                if gx != 0:
                                    if dist_id == _D_BARY:
                                        m = min(w0, min(w1, w2))
                                        gm = gx * 2.0 * abs(m) / sigma
                                        if w0 == m:
                                            gw0 += gm
                                        elif w1 == m:
                                            gw1 += gm
                                        else:
                                            gw2 += gm
                                    elif use_lanes:
                                        lane[L_GX * LANES + col - col0] = gx  # distance_grad_lanes, below
                                        lanes_gx = True
                                    elif dist_id == _D_EUCLID:
                                        inside = w0 > 0 and w0 < 1 and w1 > 0 and w1 < 1 and w2 > 0 and w2 < 1
                                        g0x, g0y, g1x, g1y, g2x, g2y = distance_vertex_grads(
                                            px, py, np.float64(edge), inside, gx, sigma, fc
                                        )
                                        gv0x += g0x
                                        gv0y += g0y
                                        gv1x += g1x
                                        gv1y += g1y
                                        gv2x += g2x
                                        gv2y += g2y
                                # ---- barycentrics -> barycentric matrix ---------------------------------
                                if gw0 != 0 or gw1 != 0 or gw2 != 0:
                                    ginv0 += gw0 * px
                                    ginv1 += gw0 * py
                                    ginv2 += gw0
                                    ginv3 += gw1 * px
                                    ginv4 += gw1 * py
                                    ginv5 += gw1
                                    ginv6 += gw2 * px
                                    ginv7 += gw2 * py
                                    ginv8 += gw2
                            if lanes_gx:
                                # the Euclidean distance's share of the vertex gradients, lane order
                                distance_grad_lanes(lane, col0, w, py, fc, sigma)
                                for jl in range(n_cols):
                                    gv0x += lane[(L_GV + 0) * LANES + jl]
                                    gv0y += lane[(L_GV + 1) * LANES + jl]
                                    gv1x += lane[(L_GV + 2) * LANES + jl]
                                    gv1y += lane[(L_GV + 3) * LANES + jl]
                                    gv2x += lane[(L_GV + 4) * LANES + jl]
                                    gv2y += lane[(L_GV + 5) * LANES + jl]
                    if need_v:
                        g[G_INV + 0] = ginv0
                        g[G_INV + 1] = ginv1
                        g[G_INV + 2] = ginv2
                        g[G_INV + 3] = ginv3
                        g[G_INV + 4] = ginv4
                        g[G_INV + 5] = ginv5
                        g[G_INV + 6] = ginv6
                        g[G_INV + 7] = ginv7
                        g[G_INV + 8] = ginv8
                        g[G_XY + 0] = gv0x
                        g[G_XY + 1] = gv0y
                        g[G_XY + 2] = gv1x
                        g[G_XY + 3] = gv1y
                        g[G_XY + 4] = gv2x
                        g[G_XY + 5] = gv2y
                        g[G_Z + 0] = gz0
                        g[G_Z + 1] = gz1
                        g[G_Z + 2] = gz2

    return backward


def backward(geo, surface, vertex, uvt, p, *arrays):
    """Per-entry gradients: the kernel of :func:`_make_backward` for ``p``'s variant (arguments there)."""
    kernel = _make_backward(kernel_variant(p), cpu_model.model_version(), lanes_enabled())
    kernel(get_num_threads(), geo, surface, vertex, uvt, p, *arrays)


@njit(parallel=True, **_JIT)
def reduce_faces(
    fv, grad_entries, face_start, entry_slot, need, grad_fv, grad_surface, grad_vertex, grad_uv
):  # pragma: no cover
    """Per face (in parallel): sum its entries' slots in tile order (deterministic), then chain
    the (matrix, xy, z) terms to the vertices (see the G_* layout).

    face_start, entry_slot: from the contract's ``Bins``. need: as in :func:`backward`.
    grad_fv [B, F, 3, 3], grad_surface [B, F, T·Cs], grad_vertex [B, F, 3·Cv], grad_uv [B, F, 6]
    (flat views of the gradient arrays): written where needed.
    """
    nb, nf = fv.shape[0], fv.shape[1]
    need_v, need_s, need_a, need_uv = need[0] != 0, need[1] != 0, need[2] != 0, need[4] != 0
    n_surf = grad_surface.shape[2] if need_s else 0
    n_vert = grad_vertex.shape[2] if need_a else 0
    n_uv = grad_uv.shape[2] if need_uv else 0
    for job in prange(nb * nf):
        b = job // nf
        f = job % nf
        e0, e1 = face_start[job], face_start[job + 1]
        for k in range(n_surf):
            acc = 0.0
            for i in range(e0, e1):
                acc += grad_entries[entry_slot[i], G_ATTR + k]
            grad_surface[b, f, k] = acc
        for k in range(n_vert):
            acc = 0.0
            for i in range(e0, e1):
                acc += grad_entries[entry_slot[i], G_ATTR + n_surf + k]
            grad_vertex[b, f, k] = acc
        for k in range(n_uv):
            acc = 0.0
            for i in range(e0, e1):
                acc += grad_entries[entry_slot[i], G_ATTR + n_surf + n_vert + k]
            grad_uv[b, f, k] = acc
        if not need_v:
            continue
        gf = np.zeros(G_ATTR)
        for i in range(e0, e1):
            e = entry_slot[i]
            for k in range(G_ATTR):
                gf[k] += grad_entries[e, k]
        x0, y0 = np.float64(fv[b, f, 0, 0]), np.float64(fv[b, f, 0, 1])
        x1, y1 = np.float64(fv[b, f, 1, 0]), np.float64(fv[b, f, 1, 1])
        x2, y2 = np.float64(fv[b, f, 2, 0]), np.float64(fv[b, f, 2, 1])
        det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
        passes = det >= DET_EPS if det > 0 else det <= -DET_EPS
        det_c = max(det, DET_EPS) if det > 0 else min(det, -DET_EPS)
        adj = (
            y1 - y2, x2 - x1, x1 * y2 - x2 * y1,
            y2 - y0, x0 - x2, x2 * y0 - x0 * y2,
            y0 - y1, x1 - x0, x0 * y1 - x1 * y0,
        )  # fmt: skip
        ga = np.empty(9)
        gdet = 0.0
        for i in range(9):
            ga[i] = gf[G_INV + i] / det_c
            gdet -= gf[G_INV + i] * adj[i] / (det_c * det_c)
        if not passes:
            gdet = 0.0
        gx0 = gdet * (y1 - y2) + ga[4] - ga[7] - ga[5] * y2 + ga[8] * y1
        gx1 = gdet * (y2 - y0) - ga[1] + ga[7] + ga[2] * y2 - ga[8] * y0
        gx2 = gdet * (y0 - y1) + ga[1] - ga[4] - ga[2] * y1 + ga[5] * y0
        gy0 = gdet * (x2 - x1) - ga[3] + ga[6] + ga[5] * x2 - ga[8] * x1
        gy1 = gdet * (x0 - x2) + ga[0] - ga[6] - ga[2] * x2 + ga[8] * x0
        gy2 = gdet * (x1 - x0) - ga[0] + ga[3] + ga[2] * x1 - ga[5] * x0
        grad_fv[b, f, 0, 0] = gx0 + gf[G_XY + 0]
        grad_fv[b, f, 0, 1] = gy0 + gf[G_XY + 1]
        grad_fv[b, f, 1, 0] = gx1 + gf[G_XY + 2]
        grad_fv[b, f, 1, 1] = gy1 + gf[G_XY + 3]
        grad_fv[b, f, 2, 0] = gx2 + gf[G_XY + 4]
        grad_fv[b, f, 2, 1] = gy2 + gf[G_XY + 5]
        grad_fv[b, f, 0, 2] = gf[G_Z + 0]
        grad_fv[b, f, 1, 2] = gf[G_Z + 1]
        grad_fv[b, f, 2, 2] = gf[G_Z + 2]


def flops_per_pair(params) -> float:
    """Floating-point operations of the forward kernel for one kept (pixel, face) pair.

    Counted by reading the scalar code (:func:`_coverage`, :func:`_pair_coverage`,
    :func:`_sigmoid_pair`, :func:`_exp_neg`, :func:`_depth` and the softmax accumulation of
    :func:`_make_forward`) for the options of ``params`` (:class:`~softras.raster.contract.KernelParams`).
    Rules: +, −, ×, ÷ count 1 each (an FMA counts 2); comparisons, min/max, abs, floor,
    int↔float conversions, table loads, negations and loop-invariant products (hoisted out of the
    pixel loops) count 0. The pair counted is the commonest kept pair: outside its face with one
    negative barycentric, so that its distance is measured to one edge segment (W1: 7.2 M kept
    pairs, 0.8 M of them inside), on a face that colours the pixel (front-facing or ``fill_back``),
    not a new softmax top element. With ``dist_func='hard'`` kept pairs are inside their face.
    Culled pairs (barycentrics and the cull test only) are not counted, nor is the extra work of
    the vectorised lanes (:mod:`.cpu_lanes`: every edge of every lane, masked lanes included): the
    count is the pair's useful work, the same whichever path evaluates it.

    =========================  =========  ============================================================
    stage                      flops      operations
    =========================  =========  ============================================================
    barycentrics               12         w_k = P_k·x + Q_k·y + R_k: 3 × (2 mul + 2 add)
    culling                    2 + 3      euclidean: one w_k·w_k·altitude²_k (2 mul, only for
                                          w_k <= −EDGE_SNAP); snapping: 3 × (w − 1)
    distance                   16         euclidean, one edge (``_edge``): edge 2, pixel − a 2,
                                          dot 3, ×1/|e|² 1, d = (p − a) − t·e 4, |d|² 3; −d²/σ 1
                               (7 / 31)   (inside: 3 × w²·altitude² + 1 div; corner: two edges)
                               2          barycentric: m·|m|, ÷σ
                               0          hard
    coverage                   23         sigmoid: e^−|x| (``_exp_neg``: k 2, r 4, degree-6
                                          polynomial 12, 2^−k scaling 2) 20; 1 / (1 + e) 2; e·r 1
                               0          hard
    alpha                      1          prod: acc × (1 − D); sum: acc + D; hard, max: 0
    depth                      12         softmax RGB (hard RGB: inside pairs only, +2 for the
                                          z-buffer test): Σu 2, 1/s 1, c_k 3, 1/z 5, zp = 1/(1/z) 1
    softmax aggregation        25         q = (z_ref − zp)·inv_scale 2, D / D_ref 1,
                                          weight ratio·e^q 21, denominator + weight 1
    per channel                2 / 7 / 2  surface: sum + w·texel (once per pair: the texel cell 8);
                                          vertex: interpolation 5 + 2; depth: sum + w·zp
    perspective weights        9          softmax RGB, ``perspective_correct`` with vertex channels
                                          (once per pair): c_k·iz_k 3, Σ 2, 1/Σ 1, b_k 3
    =========================  =========  ============================================================

    E.g. W1 (euclidean, hard RGB, prod alpha): 12 + 5 + 16 + 23 + 1 = 57; W2/W3 (softmax RGB,
    3 surface channels): 57 + 12 + 25 + 8 + 3 × 2 = 108. Returns NaN where the kernel runs a
    model family's coverage (``params.distribution >= 0``) or T-conorm (``alpha_aggregation``
    beyond max): their cost is the family's own code; likewise for a UV texture
    (``params.num_uv > 0``), whose lookup is not counted.
    """
    p = params
    if p.distribution >= 0 or p.alpha_aggregation > _A_MAX or p.num_uv > 0:
        return math.nan
    flops = 12 + 3  # barycentrics, snapping
    if p.dist_func == _D_EUCLID:
        flops += 2 + 16 + 23  # cull product, distance to one edge segment, sigmoid
    elif p.dist_func == _D_BARY:
        flops += 2 + 23  # m·|m|/σ, sigmoid
    if p.alpha_aggregation in (_A_PROD, _A_SUM):
        flops += 1
    inside = p.dist_func == _D_HARD
    if p.rgb_aggregation == _RGB_SOFTMAX:
        flops += 12 + 25  # depth, softmax weight and denominator
        flops += (8 + 2 * p.num_surface if p.num_surface > 0 else 0) + 7 * p.num_vertex + 2 * p.with_depth
        if p.perspective_correct and p.num_vertex > 0:
            flops += 9  # the vertex attributes' perspective-correct weights
        if inside and p.with_zbuffer:
            flops += 2  # z-buffer test
    elif inside:
        flops += 12 + 2  # depth, z-buffer test
    return float(flops)
