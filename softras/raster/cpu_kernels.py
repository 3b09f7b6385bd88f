"""Numba kernels of the ``cpu`` backend: per-face constants, fused forward and backward.

Each kernel works on one batch item × one screen tile per task (``prange``), visits only the
faces binned to that tile (:func:`softras.raster.contract.bin_faces`), and of those only the
(pixel, face) pairs inside the face's exact pixel range (:func:`~softras.raster.contract.pixel_ranges`).
Per pixel it keeps a handful of scalars (alpha accumulator, softmax reference element, the
weighted sums of every channel, the z-buffer winner), so memory is O(B·H·W·C + entries), an
entry being one (face, tile) incidence. The backward recomputes every pair term and writes
each pair's gradient into its entry's own slot; a pass over the faces (in parallel) then sums
each face's slots in tile order. No two threads ever add into the same number, so gradients
are bit-identical from run to run.

Channels: ``surface`` texels [B, F, T, Cs] and ``vertex`` attributes [B, F, 3, Cv] of any
width (0 included), looped over; the soft depth is one more channel whose per-pair value is the
pair's depth. Each combination of options and widths has kernels of its own (:class:`Variant`),
in which everything the options do not ask for is compiled out; the generic kernels read them at
run time instead.

Arithmetic is float64 inside the kernels whatever the input dtype (pixel centres, barycentric
matrix, distances, depths, the outputs the backward reads), which makes float32 inputs *more*
accurate than the float32 reference. The rules come from :mod:`softras.raster.contract`.
Three shortcuts are exact in real arithmetic and differ from the reference by rounding only:
an outside pair whose distance to one edge *line* already reaches √θ is culled at once;
inside a face the distance to its boundary is the smallest w_k × altitude_k; outside, only
the edges opposite a w_k <= 0 are measured.
"""

from __future__ import annotations

import decimal
import functools
import math
import os
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .._jit_cache import configure_numba_cache
from . import cpu_model, cpu_pair
from .contract import (
    CULL_MARGIN,
    DET_EPS,
    EDGE_SNAP,
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
from .cpu_model import coverage, tc_alpha, tc_pair_gradient, tc_term

__all__ = ["G_ATTR", "Geometry", "backward", "forward", "prepare_faces", "reduce_faces"]

# Layout of one entry's gradient slot: d/d barycentric matrix (9), d/d xy (6), d/d z (3), then
# the surface texels' (T·Cs, when they need a gradient), then the vertex attributes' (3·Cv).
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


def _exp_tables() -> tuple[np.ndarray, np.ndarray]:
    """2^(-j/64), j < 64, correctly rounded (from 60-digit decimals), and 2^-n, n < 1075 (exact)."""
    ctx = decimal.Context(prec=60)
    frac = np.array([float(ctx.power(decimal.Decimal(2), decimal.Decimal(-j) / 64)) for j in range(64)])
    return frac, np.ldexp(1.0, -np.arange(1075))


_EXP_FRAC, _EXP_POW2 = _exp_tables()
_EXP_K_PER_UNIT = 92.33248261689366  # 64 / ln 2
_EXP_STEP_HI = 0.010830424695086549  # ln 2 / 64 = HI + LO, HI with 33 significant bits (k·HI exact)
_EXP_STEP_LO = 1.162596423439437e-12


@njit(inline="always", **_JIT)
def _exp_neg(a):  # pragma: no cover - compiled
    """e^-a for a >= 0, inlined (no libm call, so the caller's registers are not spilled around it).

    a = k·ln2/64 + r with |r| <= ln2/128: e^-a = 2^-(k >> 6) · 2^(-(k & 63)/64) · e^-r, e^-r by its
    degree-6 Taylor polynomial (truncation < 4e-20); within a few ulp of libm's exp. Beyond
    a = 700 it defers to libm (subnormal results).
    """
    if a > 700.0:
        return math.exp(-a)
    k = int(a * _EXP_K_PER_UNIT + 0.5)
    r = (a - k * _EXP_STEP_HI) - k * _EXP_STEP_LO
    p = 1.0 - r * (1.0 - r * (0.5 - r * (1.0 / 6.0 - r * (1.0 / 24.0 - r * (1.0 / 120.0 - r * (1.0 / 720.0))))))
    return _EXP_POW2[k >> 6] * _EXP_FRAC[k & 63] * p


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
def _coverage_t(x, dist_id, dist_code, squared, p, version):  # pragma: no cover - compiled
    """(D, 1 − D) of a pair with x = sign·d²/σ, in x's type: SoftRas's sigmoid of x (or the hard
    test: (1, 0)) for ``dist_code`` −1, else the model's distribution ``dist_code`` (see
    :func:`_pair_coverage`). Branch-free for SoftRas's coverage."""
    if dist_code < 0:
        if dist_id == _D_HARD:
            return cpu_pair.cast(1.0, x), cpu_pair.cast(0.0, x)
        return cpu_pair.sigmoid_pair(x)
    z = _family_z(np.float64(x), squared, p.sigma)
    d, one_minus_d, _ = coverage(dist_code, z, p.dist_shape, p.dist_shift, version)
    return cpu_pair.cast(d, x), cpu_pair.cast(one_minus_d, x)


@njit(inline="always", **_JIT)
def _coverage_with_density(x, dist_id, dist_code, squared, p, version):  # pragma: no cover - compiled
    """(D, 1 − D, dD/dz, z) of a kept pair (see :func:`_pair_coverage`), branch-free for SoftRas's
    sigmoid (:func:`cpu_pair.sigmoid_pair`); not for the hard test."""
    if dist_code < 0:
        d, one_minus_d = cpu_pair.sigmoid_pair(x)
        return d, one_minus_d, d * one_minus_d, x
    return _pair_coverage(x, dist_id, dist_code, squared, p, version)


@njit(inline="always", **_JIT)
def _edge_gradient(px, py, fc, edge, gd2):  # pragma: no cover - compiled
    """The gradient of the squared distance from (px, py) to edge ``edge`` (0, 1, 2: from vertex k to
    k + 1, chosen by selects), times gd2, with respect to the edge's start a and end b:
    (d/d a_x, d/d a_y, d/d b_x, d/d b_y). Branch-free; fc: the face tuple."""
    ax = fc[_XY + 0] if edge == 0 else (fc[_XY + 2] if edge == 1 else fc[_XY + 4])
    ay = fc[_XY + 1] if edge == 0 else (fc[_XY + 3] if edge == 1 else fc[_XY + 5])
    bx = fc[_XY + 2] if edge == 0 else (fc[_XY + 4] if edge == 1 else fc[_XY + 0])
    by = fc[_XY + 3] if edge == 0 else (fc[_XY + 5] if edge == 1 else fc[_XY + 1])
    ex = bx - ax
    ey = by - ay
    el2 = ex * ex + ey * ey
    den_t = el2 if el2 > 0 else 1.0
    qx = px - ax
    qy = py - ay
    n = qx * ex + qy * ey
    t_raw = n / den_t
    tc = min(max(t_raw, 0.0), 1.0)
    gdx = 2.0 * (qx - tc * ex) * gd2
    gdy = 2.0 * (qy - tc * ey) * gd2
    # the clamp passes t's gradient only where 0 <= t <= 1 (as the scalar chain does)
    on = (t_raw >= 0) & (t_raw <= 1)
    gt = -(gdx * ex + gdy * ey) if on else 0.0
    gn = gt / den_t
    gl = -gt * n / (den_t * den_t) if el2 > 0 else 0.0
    gqx = gdx + gn * ex
    gqy = gdy + gn * ey
    gex = -tc * gdx + gn * qx + 2.0 * ex * gl
    gey = -tc * gdy + gn * qy + 2.0 * ey * gl
    return -gqx - gex, -gqy - gey, gex, gey


@njit(inline="always", **_JIT)
def _edge(px, py, ax, ay, bx, by, inv_len2):  # pragma: no cover - compiled
    """Squared distance from (px, py) to the segment a-b (inv_len2 = 1 / |b - a|², or 1)."""
    ex = bx - ax
    ey = by - ay
    t = min(max(((px - ax) * ex + (py - ay) * ey) * inv_len2, 0.0), 1.0)
    dx = (px - ax) - t * ex
    dy = (py - ay) - t * ey
    return dx * dx + dy * dy


@njit(inline="always", **_JIT)
def _inside_closed(w0, w1, w2):  # pragma: no cover - compiled
    return w0 >= 0 and w0 <= 1 and w1 >= 0 and w1 <= 1 and w2 >= 0 and w2 <= 1


@njit(inline="always", **_JIT)
def _snap(w):  # pragma: no cover - compiled
    """w, or exactly 0 / 1 within EDGE_SNAP of them (pixel centres on an edge or a vertex)."""
    if abs(w) < EDGE_SNAP:
        return 0.0
    if abs(w - 1.0) < EDGE_SNAP:
        return 1.0
    return w


@njit(inline="always", **_JIT)
def _barycentrics(px, py, fc):  # pragma: no cover - compiled
    """The pair's screen barycentrics before :func:`_snap`."""
    w0 = fc[_INV + 0] * px + fc[_INV + 1] * py + fc[_INV + 2]
    w1 = fc[_INV + 3] * px + fc[_INV + 4] * py + fc[_INV + 5]
    w2 = fc[_INV + 6] * px + fc[_INV + 7] * py + fc[_INV + 8]
    return w0, w1, w2


@njit(inline="always", **_JIT)
def _far_outside(w, altitude2, bound):  # pragma: no cover - compiled
    """Whether the pixel is beyond an edge line by at least √bound: |w_k| × altitude_k is its distance
    to the line of edge k + 1, a lower bound of its distance to the triangle. Tested on the raw w
    but only for w <= -EDGE_SNAP, whose snapped value is w itself: the same decision as on the
    snapped barycentrics, made before snapping them."""
    return w <= -EDGE_SNAP and w * w * altitude2 >= bound


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
            _far_outside(w0, fc[_ALT + 0], bound)
            or _far_outside(w1, fc[_ALT + 1], bound)
            or _far_outside(w2, fc[_ALT + 2], bound)
        ):
            return w0, w1, w2, False, 0.0, edge
    w0, w1, w2 = _snap(w0), _snap(w1), _snap(w2)
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
        d2 = _edge(px, py, x0, y0, x1, y1, fc[_EDGE + 0])
        edge = 0
    if w0 <= 0:
        dk = _edge(px, py, x1, y1, x2, y2, fc[_EDGE + 1])
        if dk < d2:
            d2 = dk
            edge = 1
    if w1 <= 0:
        dk = _edge(px, py, x2, y2, x0, y0, fc[_EDGE + 2])
        if dk < d2:
            d2 = dk
            edge = 2
    return w0, w1, w2, d2 < theta, -d2 / sigma, edge


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
def _vertex_value(vertex, b, f, ch, c0, c1, c2):  # pragma: no cover - compiled
    return (
        c0 * np.float64(vertex[b, f, 0, ch])
        + c1 * np.float64(vertex[b, f, 1, ch])
        + c2 * np.float64(vertex[b, f, 2, ch])
    )


_SCATTER_PRIME = 1_000_003
_SCATTER_BELOW_BATCH = 8


@njit(inline="always", **_JIT)
def _scatter(k, n, nb):  # pragma: no cover - compiled
    """The k-th of n tasks (nb batch items × tiles) in the order the threads should take them.

    Numba splits a ``prange`` into one contiguous block per thread up front. With many batch
    items the blocks hold whole images and balance (tasks stay in order, so each image's faces
    stay in cache); with few, a block would be a band of one image, so the tasks are scattered
    (k·P mod n, a permutation for P prime to n) to give every thread a fair share of the image.
    """
    if nb >= _SCATTER_BELOW_BATCH or n % _SCATTER_PRIME == 0:
        return k
    return (k * _SCATTER_PRIME) % n


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



class Variant(NamedTuple):
    """The options a specialised kernel compiles in as constants (the KernelParams fields of the same
    names): its inner loops hold no branch on them, and channel loops have constant trip counts.
    Every combination gets its own kernel, compiled the first time it is used and cached on disk."""

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
        p.num_surface, p.num_vertex, p.with_depth, p.with_zbuffer,
    )  # fmt: skip


_NO_VARIANT = Variant(*([0] * len(Variant._fields)))  # the generic kernels' (unread) constants


#: Pixels per chunk of a face's row span in the forward: one vector of 8 float32 lanes (AVX2) or
#: half an AVX-512 one; 8 wastes fewer lanes than 16 on the 3–8 pixel spans of small faces.
LANES = 8

#: The largest tile side the kernels take (their tile state has this constant shape).
TILE_MAX = 32
TILE_WIDTH = TILE_MAX + LANES

# Quantities of the forward's tile state: alpha's state, the softmax's top element (D, depth) and
# denominator, the z-buffer's depth and renormalised barycentrics; the softmax sums of the
# channels (then of the depth) follow from Q_SUM on.
Q_ACC, Q_DREF, Q_ZREF, Q_DEN, Q_ZB, Q_C0, Q_C1, Q_C2, Q_SUM = 0, 1, 2, 3, 4, 5, 6, 7, 8

#: Skip (documented in docs/benchmarks.md): a 'prod' transmittance Π(1 − D) that falls below this is
#: taken as 0: alpha = 1 − Π changes by less than 1e-30, its gradient (Π × hazard) by less than
#: 1e-30 × the largest hazard, and no subnormal number (~100× slower to compute with) appears.
#: ``SOFTRAS_CPU_SKIPS=off`` turns it off (exact products, subnormals and all).
TRANSMITTANCE_FLOOR = 1e-30
SKIPS_ENV = "SOFTRAS_CPU_SKIPS"


def skips_enabled() -> bool:
    """Whether the kernels' documented skips are on (:data:`SKIPS_ENV`: ``on``, the default, or ``off``)."""
    choice = os.environ.get(SKIPS_ENV, "on")
    if choice not in ("on", "off"):
        raise ValueError(f"{SKIPS_ENV}: expected 'on' or 'off', got {choice!r}")
    return choice == "on"


@functools.cache
def _make_forward(variant: Variant | None, model_version: int, dtype: str, skips: bool = True):
    """The forward kernel of ``variant``, or the generic one (None) that reads every option from ``p``,
    for the model of registry version ``model_version`` (a constant of every model call) and
    inputs of ``dtype`` ('float32' or 'float64', the type of the pair arithmetic); made once.

    In a specialised kernel the ``if fixed`` blocks below are pruned before typing, so its option
    variables are compile-time constants and a family's model function is inlined (:mod:`.cpu_model`).
    """
    fixed = variant is not None  # closure values: Numba compiles them in, and they key the disk cache
    ftype = np.float32 if dtype == "float32" else np.float64
    transmittance_floor = TRANSMITTANCE_FLOOR if skips else 0.0
    v_dist, v_rgb, v_alpha, v_distribution, v_squared, v_fill, v_cs, v_cv, v_nd, v_zbuffer = variant or _NO_VARIANT
    model_key = cpu_model.model_key()  # a closure value, so that a changed model recompiles the cached kernel

    @njit(parallel=True, **_JIT)
    def forward(  # pragma: no cover - compiled
        geo, surface, vertex, background, p, channels, alpha, depth, state, values, winner, barycentrics, hard_depth
    ):
        """Render one call.

        Args:
            geo (Geometry): the faces and the screen.
            surface (numpy.ndarray): [B, F, T, Cs] surface texels (input dtype).
            vertex (numpy.ndarray): [B, F, 3, Cv] vertex attributes (input dtype).
            background (numpy.ndarray): [Cs + Cv] float64.
            p (KernelParams): the options, :class:`~softras.raster.contract.KernelParams`.
            channels (numpy.ndarray): [B, Cs + Cv, H, W] in the input dtype, written.
            alpha (numpy.ndarray): [B, K, H, W] in the input dtype: alpha is written to its last
                channel. K = 1, or ``alpha`` is the [B, Cs + Cv + 1, H, W] array whose first
                channels are ``channels`` (one RGBA image, as the original returns).
            depth (numpy.ndarray): [B, 1, H, W] (with_depth) in the input dtype, written.
            state (numpy.ndarray): [B, 4, H, W] float64, written: the alpha accumulator (Π(1 - D) for
                'prod', Σ D for 'sum', 0/1 for 'hard', max D for 'max', G = Σ t(1 − D) for the other
                T-conorms); for softmax 1 / (D_top · denominator) and the top element's depth, so that
                a pair's weight is D · state[1] · e^((state[2] - z)·inv_scale); for 'max' the face
                holding the largest D (state[3]).
            values (numpy.ndarray): [B, Cs + Cv + with_depth, H, W] float64 (softmax): the outputs
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
        else:
            dist_id, rgb_id, alpha_id, dist_code, squared = (
                p.dist_func, p.rgb_aggregation, p.alpha_aggregation, p.distribution, p.squared
            )
            fill_back, cs, cv, nd, zbuffer = p.fill_back, p.num_surface, p.num_vertex, p.with_depth, p.with_zbuffer
        sigma, theta, depth_min, depth_max, inv_scale = p.sigma, p.theta, p.depth_min, p.depth_max, p.inv_scale
        generic = dist_code >= 0
        r = p.texture_res
        softmax = rgb_id == _RGB_SOFTMAX
        track_winner = not softmax or zbuffer != 0
        nsum = cs + cv + nd if softmax else 0
        a_ch = alpha.shape[1] - 1
        zero = ftype(0.0)
        one = ftype(1.0)
        theta_t, inv_sigma_t, dmin_t, dmax_t, inv_scale_t = (
            ftype(theta), ftype(1.0 / sigma), ftype(depth_min), ftype(depth_max), ftype(inv_scale)
        )
        half = ftype(0.5)
        rtol = ftype(ZBUFFER_RTOL)
        floor = ftype(transmittance_floor)
        step = xs[1] - xs[0] if w > 1 else 0.0  # pixel centres are evenly spaced (contract.pixel_centers)
        euclid = dist_id == _D_EUCLID
        bary = dist_id == _D_BARY
        for task in prange(nb * nt):
            job = _scatter(np.int64(task), np.int64(nb * nt), nb)
            b, ty0, ty1, tx0, tx1 = _tile_bounds(job, nt, ntx, tile, h, w)
            # The tile's per-pixel state in the pair type, [quantity, row, column], of a constant
            # shape per quantity (TILE_MAX rows of TILE_WIDTH columns: LANES of padding for the
            # masked lanes of a row's last chunk), so that the quantities lie at constant distances
            # and the chunk loops need no run-time alias check to vectorise.
            st = np.empty((Q_SUM + nsum, TILE_MAX, TILE_WIDTH), dtype=ftype)
            win = np.empty((TILE_MAX, TILE_WIDTH), dtype=np.int32)  # z-buffer face, or 'max''s face, −1: none
            st[Q_ACC] = one if alpha_id == _A_PROD else zero  # prod: the transmittance Π(1 − D)
            if softmax:
                st[Q_DREF] = one  # the background's D
                st[Q_ZREF] = p.zp_bg
                st[Q_DEN] = one
                for c in range(cs + cv):
                    st[Q_SUM + c] = background[c]
                if nd:
                    st[Q_SUM + cs + cv] = zero  # the background's depth
            if track_winner:
                st[Q_ZB] = np.inf
            win[:, :] = -1
            for e in range(geo.tile_start[job], geo.tile_start[job + 1]):
                f = geo.tile_faces[e]
                f32 = np.int32(f)
                fc = _load_face(fv, inv, b, f)
                colour_face = fill_back != 0 or front[b, f]
                iz0, iz1, iz2 = ftype(fc[_INV_Z + 0]), ftype(fc[_INV_Z + 1]), ftype(fc[_INV_Z + 2])
                ra, rb, ca, cb = _face_span(pr, b, f, ty0, ty1, tx0, tx1)
                x_first = xs[ca] if ca < w else 0.0
                j0 = ca - tx0
                n = cb - ca + 1
                fk = cpu_pair.face_constants(fc, x_first, step, zero)
                for row in range(ra, rb + 1):
                    rw = cpu_pair.row_start(fc, x_first, ys[row], zero)
                    i = row - ty0
                    # One branch-free loop over the row's span (vectorised in specialised kernels
                    # where LLVM finds it worth it).
                    for jj in range(n):
                        j = np.uint64(j0 + jj)
                        w0, w1, w2, keep, d2, _, _ = cpu_pair.pair_geometry(jj, fk, rw, euclid, bary, theta_t)
                        x = d2 * inv_sigma_t
                        d, one_minus_d = _coverage_t(x, dist_id, dist_code, squared, p, model_version)
                        a = st[Q_ACC, i, j]
                        if alpha_id == _A_PROD:
                            t = a * one_minus_d
                            t = t if t >= floor else zero  # (see TRANSMITTANCE_FLOOR)
                            st[Q_ACC, i, j] = t if keep else a
                        elif alpha_id == _A_SUM:
                            st[Q_ACC, i, j] = a + d if keep else a
                        elif alpha_id == _A_HARD:
                            covered = keep & ((dist_id == _D_HARD) | ((d > half) if generic else (x > zero)))
                            st[Q_ACC, i, j] = one if covered else a  # D > 0.5
                        elif alpha_id == _A_MAX:
                            take = keep & (d > a)  # faces ascend: ties keep the lowest face
                            st[Q_ACC, i, j] = d if take else a
                            win[i, j] = f32 if take else win[i, j]
                        else:
                            term = ftype(tc_term(alpha_id, d, one_minus_d, p.t_conorm_p, model_version))
                            st[Q_ACC, i, j] = a + term if keep else a
                        if not track_winner and not softmax:
                            continue
                        closed = cpu_pair.closed_inside(w0, w1, w2)
                        _, _, _, _, _, c0, c1, c2, inv_z = cpu_pair.depth(w0, w1, w2, iz0, iz1, iz2)
                        zp = one / inv_z
                        # counts for the colours: kept, a colouring face, within the depth range
                        ok = keep & colour_face & (zp >= dmin_t) & (zp <= dmax_t)
                        # The z-buffer: faces ascend, so a later face wins only if nearer beyond the tie
                        # tolerance (contract.ZBUFFER_RTOL): ties keep the lowest face.
                        if track_winner:
                            zb = st[Q_ZB, i, j]
                            nearer = (win[i, j] < 0) | (zp < zb - abs(zb) * rtol)
                            take = ok & closed & nearer
                            st[Q_ZB, i, j] = zp if take else zb
                            win[i, j] = f32 if take else win[i, j]
                            st[Q_C0, i, j] = c0 if take else st[Q_C0, i, j]
                            st[Q_C1, i, j] = c1 if take else st[Q_C1, i, j]
                            st[Q_C2, i, j] = c2 if take else st[Q_C2, i, j]
                        if not softmax:
                            continue
                        # The pair's weight relative to the pixel's top element,
                        # (D / D_ref)·exp((z_ref − z)/((far − near)γ)), the depth difference formed
                        # before the division by γ: above 1, the pair becomes the top element and
                        # the sums are rescaled by 1 / weight.
                        q = (st[Q_ZREF, i, j] - zp) * inv_scale_t
                        ratio = d / st[Q_DREF, i, j]
                        eq = cpu_pair.exp_neg(abs(q))
                        above = ratio / eq
                        below = ratio * eq
                        weight = above if q > zero else below
                        top = ok & (weight > one)
                        inverse = one / weight
                        scale = inverse if top else one
                        add = (one if top else weight) if ok else zero
                        st[Q_DEN, i, j] = st[Q_DEN, i, j] * scale + add
                        if cs > 0:
                            k = _texel(c0 if ok else zero, c1 if ok else zero, r)
                            for c in range(cs):
                                value = ftype(surface[b, f, k, c])
                                st[Q_SUM + c, i, j] = st[Q_SUM + c, i, j] * scale + add * value
                        for c in range(cv):
                            value = ftype(_vertex_value(vertex, b, f, c, c0, c1, c2))
                            st[Q_SUM + cs + c, i, j] = st[Q_SUM + cs + c, i, j] * scale + add * value
                        if nd:
                            st[Q_SUM + cs + cv, i, j] = st[Q_SUM + cs + cv, i, j] * scale + add * zp
                        st[Q_DREF, i, j] = d if top else st[Q_DREF, i, j]
                        st[Q_ZREF, i, j] = zp if top else st[Q_ZREF, i, j]
            for row in range(ty0, ty1):
                i = row - ty0
                for col in range(tx0, tx1):
                    j = col - tx0
                    a = np.float64(st[Q_ACC, i, j])
                    if alpha_id == _A_PROD:
                        alpha[b, a_ch, row, col] = 1.0 - a
                    elif alpha_id == _A_SUM:
                        alpha[b, a_ch, row, col] = a / p.num_faces
                    elif alpha_id == _A_HARD or alpha_id == _A_MAX:
                        alpha[b, a_ch, row, col] = a
                    else:
                        alpha[b, a_ch, row, col] = tc_alpha(alpha_id, a, p.t_conorm_p, model_version)
                    state[b, 0, row, col] = a
                    if alpha_id == _A_MAX:
                        state[b, 3, row, col] = win[i, j]
                    if softmax:
                        total = np.float64(st[Q_DEN, i, j])
                        for c in range(nsum):
                            values[b, c, row, col] = np.float64(st[Q_SUM + c, i, j]) / total
                        for c in range(cs + cv):
                            channels[b, c, row, col] = values[b, c, row, col]
                        if nd:
                            depth[b, 0, row, col] = values[b, cs + cv, row, col]
                        # a pair's weight is D·state[1]·e^((state[2] − z)·inv_scale)
                        state[b, 1, row, col] = 1.0 / (np.float64(st[Q_DREF, i, j]) * total)
                        state[b, 2, row, col] = st[Q_ZREF, i, j]
                    if not track_winner:
                        continue
                    f = int(win[i, j])
                    winner[b, row, col] = f
                    if f < 0:
                        if not softmax:
                            for c in range(cs + cv):
                                channels[b, c, row, col] = background[c]
                            if nd:
                                depth[b, 0, row, col] = 0.0
                        if zbuffer != 0:
                            for k in range(3):
                                barycentrics[b, k, row, col] = 0.0
                            hard_depth[b, 0, row, col] = 0.0
                        continue
                    # The winner's values from its renormalised barycentrics and depth.
                    c0, c1, c2 = np.float64(st[Q_C0, i, j]), np.float64(st[Q_C1, i, j]), np.float64(st[Q_C2, i, j])
                    zp = np.float64(st[Q_ZB, i, j])
                    if not softmax:
                        k = _texel(c0, c1, r) if cs > 0 else 0
                        for c in range(cs):
                            channels[b, c, row, col] = surface[b, f, k, c]
                        for c in range(cv):
                            channels[b, cs + c, row, col] = _vertex_value(vertex, b, f, c, c0, c1, c2)
                        if nd:
                            depth[b, 0, row, col] = zp
                    if zbuffer != 0:
                        barycentrics[b, 0, row, col] = c0 * _inv_z(np.float64(fv[b, f, 0, 2]))[0] * zp
                        barycentrics[b, 1, row, col] = c1 * _inv_z(np.float64(fv[b, f, 1, 2]))[0] * zp
                        barycentrics[b, 2, row, col] = c2 * _inv_z(np.float64(fv[b, f, 2, 2]))[0] * zp
                        hard_depth[b, 0, row, col] = zp

    return forward


#: The softmax exponent is (z_ref − z)·inv_scale: float32 depths carry ~2^-24·depth of rounding,
#: so float32 pair arithmetic is used only where inv_scale·(largest depth) is at most this (the
#: exponent then errs by < 1e-2 even at the far plane; at SoftRas's defaults the product is 1e4).
FLOAT32_SOFTMAX_LIMIT = 1e5


def pair_dtype(p, dtype: np.dtype) -> str:
    """The type of the kernels' pair arithmetic for inputs of ``dtype`` and call ``p``: the input's,
    except float64 for a float32 softmax whose depth scale is beyond :data:`FLOAT32_SOFTMAX_LIMIT`
    (e.g. γ·(far − near) ~1e-8)."""
    if dtype == np.float32 and p.rgb_aggregation == _RGB_SOFTMAX:
        if p.inv_scale * max(abs(p.depth_min), abs(p.depth_max)) > FLOAT32_SOFTMAX_LIMIT:
            return "float64"
    return np.dtype(dtype).name


def forward(geo, surface, vertex, background, p, *outputs):
    """Render one call: the kernel of :func:`_make_forward` for ``p``'s variant (arguments there)."""
    dtype = pair_dtype(p, geo.face_vertices.dtype)
    kernel = _make_forward(kernel_variant(p), cpu_model.model_version(), dtype, skips_enabled())
    kernel(geo, surface, vertex, background, p, *outputs)


@functools.cache
def _make_backward(variant: Variant | None, model_version: int, dtype: str):
    """The backward kernel of ``variant``, or the generic one (None), as :func:`_make_forward`; made once."""
    fixed = variant is not None
    ftype = np.float32 if dtype == "float32" else np.float64
    v_dist, v_rgb, v_alpha, v_distribution, v_squared, v_fill, v_cs, v_cv, v_nd, _ = variant or _NO_VARIANT
    model_key = cpu_model.model_key()

    @njit(parallel=True, **_JIT)
    def backward(  # pragma: no cover - compiled
        geo, surface, vertex, p, state, values, winner, grad_channels, grad_alpha, grad_depth, need, grad_entries
    ):
        """Per-entry gradients: grad_entries [E, 18 + T·Cs·need_s + 3·Cv·need_a] float64 (see the
        G_* layout), every slot written (no zero-fill needed).

        ``need``: (face vertices, surface, vertex) need a gradient, and the upstream gradient of the
        channels or depth is not all zero (else their pair terms are skipped), 0/1 each. grad_channels
        [B, Cs + Cv, H, W], grad_alpha [B, 1, H, W], grad_depth [B, 1, H, W] (with_depth): the
        upstream gradients; alpha's is the last channel of ``grad_alpha`` (which may be the RGBA
        gradient, as in :func:`forward`). state, values, winner: from :func:`forward`.
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
        else:
            dist_id, rgb_id, alpha_id, dist_code, squared = (
                p.dist_func, p.rgb_aggregation, p.alpha_aggregation, p.distribution, p.squared
            )
            fill_back, cs, cv, nd = p.fill_back, p.num_surface, p.num_vertex, p.with_depth
        sigma, theta, depth_min, depth_max, inv_scale = p.sigma, p.theta, p.depth_min, p.depth_max, p.inv_scale
        r = p.texture_res
        softmax = rgb_id == _RGB_SOFTMAX
        generic = dist_code >= 0
        need_v, need_s, need_a, need_values = need[0] != 0, need[1] != 0, need[2] != 0, need[3] != 0
        g_surf = G_ATTR
        g_vert = G_ATTR + (surface.shape[2] * cs if need_s else 0)
        n_attr = grad_entries.shape[1] - G_ATTR
        ga_ch = grad_alpha.shape[1] - 1
        zero = ftype(0.0)
        theta_t, inv_sigma_t = ftype(theta), ftype(1.0 / sigma)
        step = xs[1] - xs[0] if w > 1 else 0.0
        euclid = dist_id == _D_EUCLID
        bary = dist_id == _D_BARY
        # the vectorised path: vertex gradients of the coverage alone
        coverage_only = False and need_v and not need_values and dist_id != _D_HARD
        for task in prange(nb * nt):
            job = _scatter(np.int64(task), np.int64(nb * nt), nb)
            b, ty0, ty1, tx0, tx1 = _tile_bounds(job, nt, ntx, tile, h, w)
            lanes = np.empty((15, LANES))  # per-lane sums: d/d xy (6), d/d barycentric matrix (9)
            for e in range(geo.tile_start[job], geo.tile_start[job + 1]):
                f = geo.tile_faces[e]
                fc = _load_face(fv, inv, b, f)
                colour_face = fill_back != 0 or front[b, f]
                g = grad_entries[e]
                for k in range(n_attr):
                    g[G_ATTR + k] = 0.0  # the attribute slots accumulate; the vertex ones are stored once
                # This entry's vertex-gradient terms, accumulated in registers, stored once below.
                ginv0 = ginv1 = ginv2 = ginv3 = ginv4 = ginv5 = ginv6 = ginv7 = ginv8 = 0.0
                gv0x = gv0y = gv1x = gv1y = gv2x = gv2y = 0.0
                gz0 = gz1 = gz2 = 0.0
                ra, rb, ca, cb = _face_span(pr, b, f, ty0, ty1, tx0, tx1)
                x_first = xs[ca] if ca < w else 0.0
                fk = cpu_pair.face_constants(fc, x_first, step, zero)
                if coverage_only:
                    # Only alpha's gradient flows (no channel or depth gradient): the pairs' coverage
                    # terms in chunks of LANES pixels, branch-free, each lane summing into its own
                    # slot of ``lanes``; the slots are added in lane order below (deterministic).
                    lanes[:, :] = 0.0
                    n = cb - ca + 1
                    for row in range(ra, rb + 1):
                        py = ys[row]
                        rw = cpu_pair.row_start(fc, x_first, py, zero)
                        for chunk in range(0, n, LANES):
                            for lane in range(LANES):
                                jj = chunk + lane
                                col = min(ca + jj, cb)  # masked lanes read the span's last pixel
                                geometry = cpu_pair.pair_geometry(jj, fk, rw, euclid, bary, theta_t)
                                wt0, wt1, wt2, keep, d2, edge, _ = geometry
                                keep = keep & (jj < n)
                                w0, w1, w2 = np.float64(wt0), np.float64(wt1), np.float64(wt2)
                                px = x_first + jj * step
                                x = np.float64(d2 * inv_sigma_t)
                                ga = np.float64(grad_alpha[b, ga_ch, row, col])
                                d, one_minus_d, dd, z = _coverage_with_density(
                                    x, dist_id, dist_code, squared, p, model_version
                                )
                                if alpha_id == _A_PROD:
                                    if generic:
                                        hz = dd / one_minus_d if one_minus_d > 0 else 0.0
                                    else:
                                        hz = d
                                    gx = ga * state[b, 0, row, col] * hz
                                elif alpha_id == _A_SUM:
                                    gx = ga * dd / nf
                                elif alpha_id == _A_MAX:
                                    gx = ga * dd if f == int(state[b, 3, row, col]) else 0.0
                                elif alpha_id != _A_HARD:
                                    g_state = state[b, 0, row, col]
                                    gx = ga * tc_pair_gradient(
                                        alpha_id, g_state, d, one_minus_d, dd, p.t_conorm_p, model_version
                                    )
                                else:
                                    gx = 0.0
                                if generic:
                                    gx *= _family_dz_dx(z, squared, sigma)
                                gx = gx if keep else 0.0
                                if bary:
                                    m = min(w0, min(w1, w2))
                                    gm = gx * 2.0 * abs(m) / sigma
                                    first = w0 == m
                                    second = (w1 == m) & (w0 != m)
                                    gw0 = gm if first else 0.0
                                    gw1 = gm if second else 0.0
                                    gw2 = 0.0 if first | second else gm
                                    lanes[6, lane] += gw0 * px
                                    lanes[7, lane] += gw0 * py
                                    lanes[8, lane] += gw0
                                    lanes[9, lane] += gw1 * px
                                    lanes[10, lane] += gw1 * py
                                    lanes[11, lane] += gw1
                                    lanes[12, lane] += gw2 * px
                                    lanes[13, lane] += gw2 * py
                                    lanes[14, lane] += gw2
                                else:
                                    inside = (w0 > 0) & (w0 < 1) & (w1 > 0) & (w1 < 1) & (w2 > 0) & (w2 < 1)
                                    gd2 = gx / sigma if inside else -gx / sigma
                                    gvax, gvay, gvbx, gvby = _edge_gradient(px, py, fc, edge, gd2)
                                    # edge k runs from vertex k (a) to vertex k + 1 (b)
                                    lanes[0, lane] += gvax if edge == 0 else (gvbx if edge == 2 else 0.0)
                                    lanes[1, lane] += gvay if edge == 0 else (gvby if edge == 2 else 0.0)
                                    lanes[2, lane] += gvax if edge == 1 else (gvbx if edge == 0 else 0.0)
                                    lanes[3, lane] += gvay if edge == 1 else (gvby if edge == 0 else 0.0)
                                    lanes[4, lane] += gvax if edge == 2 else (gvbx if edge == 1 else 0.0)
                                    lanes[5, lane] += gvay if edge == 2 else (gvby if edge == 1 else 0.0)
                    for lane in range(LANES):
                        gv0x += lanes[0, lane]
                        gv0y += lanes[1, lane]
                        gv1x += lanes[2, lane]
                        gv1y += lanes[3, lane]
                        gv2x += lanes[4, lane]
                        gv2y += lanes[5, lane]
                        ginv0 += lanes[6, lane]
                        ginv1 += lanes[7, lane]
                        ginv2 += lanes[8, lane]
                        ginv3 += lanes[9, lane]
                        ginv4 += lanes[10, lane]
                        ginv5 += lanes[11, lane]
                        ginv6 += lanes[12, lane]
                        ginv7 += lanes[13, lane]
                        ginv8 += lanes[14, lane]
                for row in range(ra, ra - 1 if coverage_only else rb + 1):
                    py = ys[row]
                    rw = cpu_pair.row_start(fc, x_first, py, zero)
                    for col in range(ca, cb + 1):
                        px = xs[col]
                        # the forward's pair geometry (same keep decisions), then float64
                        geometry = cpu_pair.pair_geometry(col - ca, fk, rw, euclid, bary, theta_t)
                        wt0, wt1, wt2, keep, d2, edge, _ = geometry
                        if not keep:
                            continue
                        w0, w1, w2 = np.float64(wt0), np.float64(wt1), np.float64(wt2)
                        x = math.inf if dist_id == _D_HARD else np.float64(d2 * inv_sigma_t)
                        ga = np.float64(grad_alpha[b, ga_ch, row, col])
                        gx = 0.0  # dL/dz (z = x for SoftRas's coverage)
                        d, one_minus_d, dd, z = _pair_coverage(x, dist_id, dist_code, squared, p, model_version)
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
                            for c in range(cv):
                                gr = np.float64(grad_channels[b, cs + c, row, col])
                                if softmax:
                                    dot += gr * (
                                        _vertex_value(vertex, b, f, c, c0, c1, c2) - values[b, cs + c, row, col]
                                    )
                                gval = gr * wj
                                if need_a:
                                    g[g_vert + c] += gval * c0
                                    g[g_vert + cv + c] += gval * c1
                                    g[g_vert + 2 * cv + c] += gval * c2
                                if need_v:
                                    gc0 += gval * np.float64(vertex[b, f, 0, c])
                                    gc1 += gval * np.float64(vertex[b, f, 1, c])
                                    gc2 += gval * np.float64(vertex[b, f, 2, c])
                            gd = np.float64(grad_depth[b, 0, row, col]) if nd else 0.0
                            if nd and softmax:
                                dot += gd * (zp - values[b, cs + cv, row, col])
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
                            if fc[_Z_OK + 0] != 0:
                                gz0 -= ginvz * c0 * fc[_INV_Z + 0] * fc[_INV_Z + 0]
                            if fc[_Z_OK + 1] != 0:
                                gz1 -= ginvz * c1 * fc[_INV_Z + 1] * fc[_INV_Z + 1]
                            if fc[_Z_OK + 2] != 0:
                                gz2 -= ginvz * c2 * fc[_INV_Z + 2] * fc[_INV_Z + 2]
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
                            gx *= _family_dz_dx(z, squared, sigma)  # dL/dx, x = sign·d²/σ as the chain below takes it
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
                            elif dist_id == _D_EUCLID:
                                inside = w0 > 0 and w0 < 1 and w1 > 0 and w1 < 1 and w2 > 0 and w2 < 1
                                gd2 = gx / sigma if inside else -gx / sigma
                                # edge k runs from vertex k to vertex k + 1 (constant tuple indices: a
                                # runtime index would spill the face tuple to memory on every pair)
                                if edge == 0:
                                    ax, ay, bx, by = fc[_XY + 0], fc[_XY + 1], fc[_XY + 2], fc[_XY + 3]
                                elif edge == 1:
                                    ax, ay, bx, by = fc[_XY + 2], fc[_XY + 3], fc[_XY + 4], fc[_XY + 5]
                                else:
                                    ax, ay, bx, by = fc[_XY + 4], fc[_XY + 5], fc[_XY + 0], fc[_XY + 1]
                                ex = bx - ax
                                ey = by - ay
                                el2 = ex * ex + ey * ey
                                den_t = el2 if el2 > 0 else 1.0
                                qx = px - ax
                                qy = py - ay
                                n = qx * ex + qy * ey
                                t_raw = n / den_t
                                tc = min(max(t_raw, 0.0), 1.0)
                                gdx = 2.0 * (qx - tc * ex) * gd2
                                gdy = 2.0 * (qy - tc * ey) * gd2
                                # diff = q - t e, with q = p - a and e = b - a
                                gqx = gdx
                                gqy = gdy
                                gex = -tc * gdx
                                gey = -tc * gdy
                                if t_raw >= 0 and t_raw <= 1:
                                    gt = -(gdx * ex + gdy * ey)
                                    gn = gt / den_t
                                    gqx += gn * ex
                                    gqy += gn * ey
                                    gex += gn * qx
                                    gey += gn * qy
                                    if el2 > 0:
                                        gl = -gt * n / (den_t * den_t)
                                        gex += 2.0 * ex * gl
                                        gey += 2.0 * ey * gl
                                if edge == 0:
                                    gv0x += -gqx - gex
                                    gv0y += -gqy - gey
                                    gv1x += gex
                                    gv1y += gey
                                elif edge == 1:
                                    gv1x += -gqx - gex
                                    gv1y += -gqy - gey
                                    gv2x += gex
                                    gv2y += gey
                                else:
                                    gv2x += -gqx - gex
                                    gv2y += -gqy - gey
                                    gv0x += gex
                                    gv0y += gey
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


def backward(geo, surface, vertex, p, *arrays):
    """Per-entry gradients: the kernel of :func:`_make_backward` for ``p``'s variant (arguments there)."""
    kernel = _make_backward(kernel_variant(p), cpu_model.model_version(), pair_dtype(p, geo.face_vertices.dtype))
    kernel(geo, surface, vertex, p, *arrays)


@njit(parallel=True, **_JIT)
def reduce_faces(
    fv, grad_entries, face_start, entry_slot, need, grad_fv, grad_surface, grad_vertex
):  # pragma: no cover
    """Per face (in parallel): sum its entries' slots in tile order (deterministic), then chain
    the (matrix, xy, z) terms to the vertices (see the G_* layout).

    face_start, entry_slot: from the contract's ``Bins``. need: as in :func:`backward`.
    grad_fv [B, F, 3, 3], grad_surface [B, F, T·Cs], grad_vertex [B, F, 3·Cv] (flat views of the
    gradient arrays): written where needed.
    """
    nb, nf = fv.shape[0], fv.shape[1]
    need_v, need_s, need_a = need[0] != 0, need[1] != 0, need[2] != 0
    n_surf = grad_surface.shape[2] if need_s else 0
    n_vert = grad_vertex.shape[2] if need_a else 0
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
    """Floating-point operations of the forward kernel's pair loop for one kept (pixel, face) pair.

    Counted from the branch-free lane body of :func:`_make_forward` (with :mod:`.cpu_pair`) for the
    options of ``params`` (:class:`~softras.raster.contract.KernelParams`). Every lane runs the whole
    body, so this is also the cost of a culled pair or of a masked lane; the roofline counts the
    kept pairs' work only (useful flops), so culled pairs and masked lanes are overhead there.
    Rules: +, −, ×, ÷ count 1 each (an FMA counts 2); comparisons, selects, min/max, abs, int↔float
    conversions and bit casts count 0; constants per face or per row are not counted.

    =========================  =========  ============================================================
    stage                      flops      operations
    =========================  =========  ============================================================
    barycentrics               7          x = j·step 1; w_k = w_k(first) + j·Δw_k 3 × 2
    snapping                   3          3 × (w − 1)
    distance                   43         euclidean: inside 3 × w²·altitude² 6; outside, all three
                                          segments 3 × 12 (p − a 1, dot 3, ×1/|e|² 1, d = q − t·e
                                          4, |d|² 3); x = d²·(1/σ) 1
                               3          barycentric: m·|m|, ×(1/σ); hard: 0
    coverage                   24         sigmoid: e^−|x| (``exp_neg``: n 2, r 4, degree-7
                                          polynomial 14, 2^−n 1) 21; 1 / (1 + e) 2; e·r 1; hard: 0
    alpha                      1          prod: acc × (1 − D); sum: acc + D; hard, max: 0
    depth                      12         (softmax RGB or a z-buffer) Σu 2, 1/s 1, c_k 3, 1/z 5,
                                          zp 1; the z-buffer test 2 more
    softmax aggregation        28         q = (z_ref − zp)·inv_scale 2, D / D_ref 1, e^−|q| 21,
                                          weight 1, 1 / weight 1, denominator·scale + add 2
    per channel                3 / 8 / 3  surface: sum·scale + add·texel (once per pair: the texel
                                          cell 8); vertex: interpolation 5 + 3; depth: 3
    =========================  =========  ============================================================

    E.g. W1 (euclidean, hard RGB, prod alpha): 7 + 3 + 43 + 24 + 1 + 12 + 2 = 92; W2/W3 (softmax
    RGB, 3 surface channels): 7 + 3 + 43 + 24 + 1 + 12 + 28 + 8 + 3 × 3 = 135. Returns NaN where the
    kernel runs a model family's coverage (``params.distribution >= 0``) or T-conorm
    (``alpha_aggregation`` beyond max): their cost is the family's own code.
    """
    p = params
    if p.distribution >= 0 or p.alpha_aggregation > _A_MAX:
        return math.nan
    flops = 7 + 3  # barycentrics, snapping
    if p.dist_func == _D_EUCLID:
        flops += 43 + 24
    elif p.dist_func == _D_BARY:
        flops += 3 + 24
    if p.alpha_aggregation in (_A_PROD, _A_SUM):
        flops += 1
    softmax = p.rgb_aggregation == _RGB_SOFTMAX
    zbuffer = not softmax or p.with_zbuffer
    if softmax or zbuffer:
        flops += 12
    if zbuffer:
        flops += 2
    if softmax:
        flops += 28 + (8 + 3 * p.num_surface if p.num_surface > 0 else 0) + 8 * p.num_vertex + 3 * p.with_depth
    return float(flops)
