"""NVIDIA Warp kernels of the ``warp`` backend (the same source runs on CUDA and on the CPU).

The kernels are built per compute dtype (``wp.float32`` or ``wp.float64``) by :func:`kernels`;
Warp compiles each set once (CUDA via NVRTC, CPU via its bundled Clang) and caches it on disk.
Every rule comes from :mod:`softras.raster.contract`: the option codes, the numeric constants,
the per-face constant layout (:class:`~softras.raster.contract.FaceConst`, one ``wp.constant``
per field) and the kernel parameters (one ``wp.struct`` generated from
:class:`~softras.raster.contract.KernelParams`).

Attributes of any width go through one code path: ``surface`` [N, T, Cs] texels (looked up with
the texel rule) and ``vertex`` [N, 3, Cv] per-corner values (interpolated with the clipped,
renormalised barycentrics c_k, or with ``perspective_correct`` the model's perspective-correct
b_k, :func:`~softras.raster.model.texture.perspective_weights`), N = B·F; output channel c < Cs
is surface channel c, then the vertex channels, then the Cu channels of a UV texture (``uvs``
[N, 3, 2] per corner, a material per face, the flat ``atlas`` of every material's mip levels and
its (offset, height, width) table, :mod:`softras.raster.uv`): per pair, the model's
perspective-correct (u, v), level of detail, level blend, wrap and texel rules
(:mod:`softras.raster.model.texture`, as ``wp.func`` from the same source), and the lookup of
the call's filter (a run-time code, as every option). Soft depth is one more value per pair (zp)
with the same weights.

Work decomposition (the binning itself is :func:`softras.raster.contract.bin_faces`):

* ``prepare``: one thread per face; the face's constants (barycentric matrix, edges,
  altitudes, 1/z) computed in float64 whatever the compute dtype and stored in it.
* ``forward``: one thread per pixel, threads grouped tile by tile (a warp of 32 threads
  covers pixels of one tile, hence one face list). The pixel walks its tile's face list in
  ascending face order, skips faces whose exact pixel range does not contain it, and keeps
  per-pixel scalars in registers (alpha accumulator, softmax reference element — the running
  maximum of log D − zp/((far − near)γ) — and denominator, the z-buffer winner) and the
  softmax numerators of the channels in the output array itself, relative to the reference.
  Depth *differences* are formed before the division by γ, which keeps float32 accurate at
  γ = 1e-4.
* ``backward``: one thread per (face, tile) entry; it recomputes the pair terms of every
  pixel of the face's range inside the tile and sums the entry's gradient row (layout:
  :data:`G_ROW`, :data:`G_XY`, :data:`G_Z`, then the attributes and corner UVs). Deterministic
  mode: the entry stores its sums in its own slot and ``reduce`` adds the slots of each face in
  a fixed order (no two threads ever add into the same number). Atomic mode: the entry adds into
  the per-face gradient with float atomics (faster, order-dependent rounding on GPUs). The UV
  atlas gradient goes to int64 accumulators in fixed point in both modes (integer atomics are
  associative: bit-identical whatever the order). The lookup's d/du, d/dv and d/dλ go through
  the model's ``uv_at_vjp`` and ``mip_level_vjp`` to the barycentrics (then as the vertex
  attributes' do), the inverse depths, the corner UVs and the barycentric matrix's P_k, Q_k
  (added to the row's X_k, Y_k sums, which are dL/dP_k and dL/dQ_k). With ``perspective_correct``
  the vertex attributes' dL/db_k go through the model's ``perspective_weights_vjp`` to the
  barycentrics and the inverse depths the same way.
* ``chain``: one thread per face; the chain rule from the barycentric-matrix, vertex-xy and
  depth gradients to the face vertices (float64 arithmetic).

Coverage and alpha: SoftRas's sigmoid of x = sign·d²/σ (or the hard test) keeps its own
path; every other coverage distribution and T-conorm is the model's (:mod:`softras.raster.model`):
``wp.func`` functions compiled from the model's one source (:func:`~softras.raster.model.warp_model`),
dispatched at run time on the codes of :class:`~softras.raster.contract.KernelParams`, so one
compile per dtype covers every family. In float32 a coverage below float32's range (~1e-38)
counts as 0 (SoftRas's path keeps log D instead: it still weighs in the depth softmax).

One formulation differs from the reference, exact in real arithmetic but more accurate in
float32: barycentrics are evaluated relative to a vertex of the face,
w_k = P_k (x − x_a) + Q_k (y − y_a) with a = vertex k+1 (where w_k vanishes), instead of
P_k x + Q_k y + R_k, and the backward accumulates the matching sums.
"""

import functools
import typing
from types import SimpleNamespace

import warp as wp

from . import model
from .contract import (
    CULL_MARGIN,
    DET_EPS,
    EDGE_SNAP,
    SIGMOID_CUTOFF,
    TEXEL_EDGE_TOLERANCE,
    W_SUM_EPS,
    Z_EPS,
    ZBUFFER_RTOL,
    AlphaAggregation,
    DistFunc,
    FaceConst,
    KernelParams,
    RgbAggregation,
)
from .uv import TextureFilter, TextureWrap

__all__ = ["G_ATTR", "G_ROW", "G_XY", "G_Z", "UV_GRAD_WIDTH", "kernels"]

# ---- the per-face constant row (FaceConst), one wp.constant per field -----------------------
FC_INV = wp.constant(int(FaceConst.INV))
FC_XY = wp.constant(int(FaceConst.XY))
FC_INV_Z = wp.constant(int(FaceConst.INV_Z))
FC_Z_OK = wp.constant(int(FaceConst.Z_OK))
FC_INV_EDGE_LEN2 = wp.constant(int(FaceConst.INV_EDGE_LEN2))
FC_ALTITUDE2 = wp.constant(int(FaceConst.ALTITUDE2))
FC_COUNT = int(FaceConst.COUNT)
# Entries of the multi-entry fields: P_k, Q_k, R_k of the barycentric matrix; vertex x_k, y_k.
P0 = wp.constant(FC_INV + 0)
Q0 = wp.constant(FC_INV + 1)
R0 = wp.constant(FC_INV + 2)
P1 = wp.constant(FC_INV + 3)
Q1 = wp.constant(FC_INV + 4)
R1 = wp.constant(FC_INV + 5)
P2 = wp.constant(FC_INV + 6)
Q2 = wp.constant(FC_INV + 7)
R2 = wp.constant(FC_INV + 8)
X0 = wp.constant(FC_XY + 0)
Y0 = wp.constant(FC_XY + 1)
X1 = wp.constant(FC_XY + 2)
Y1 = wp.constant(FC_XY + 3)
X2 = wp.constant(FC_XY + 4)
Y2 = wp.constant(FC_XY + 5)

# ---- option codes --------------------------------------------------------------------------
DIST_HARD = wp.constant(int(DistFunc.HARD))
DIST_BARYCENTRIC = wp.constant(int(DistFunc.BARYCENTRIC))
DIST_EUCLIDEAN = wp.constant(int(DistFunc.EUCLIDEAN))
RGB_HARD = wp.constant(int(RgbAggregation.HARD))
RGB_SOFTMAX = wp.constant(int(RgbAggregation.SOFTMAX))
ALPHA_HARD = wp.constant(int(AlphaAggregation.HARD))
ALPHA_SUM = wp.constant(int(AlphaAggregation.SUM))
ALPHA_PROD = wp.constant(int(AlphaAggregation.PROD))
ALPHA_MAX = wp.constant(int(AlphaAggregation.MAX))  # codes above it: the model's Archimedean T-conorms
FILTER_NEAREST = wp.constant(int(TextureFilter.NEAREST))
FILTER_TRILINEAR = wp.constant(int(TextureFilter.TRILINEAR))
WRAP_REPEAT = wp.constant(int(TextureWrap.REPEAT))

# ---- the per-face gradient row -------------------------------------------------------------
G_ROW = wp.constant(0)
"""9 entries: (X_k, Y_k, S_k) for k = 0, 1, 2, the sums of dL/dw_k times (x − x_a, y − y_a, 1)."""
G_XY = wp.constant(9)
"""6 entries: d/d(x0 y0 x1 y1 x2 y2) through the Euclidean distance."""
G_Z = wp.constant(15)
"""3 entries: d/dz_k."""
G_ATTR = wp.constant(18)
"""First attribute gradient: surface texels (T·Cs, texel-major), vertex values (3·Cv), then the
corner UVs (:data:`UV_GRAD_WIDTH`), each only when its gradient is needed."""
UV_GRAD_WIDTH = 6
"""The corner UVs' gradient in the row: (u_k, v_k) for k = 0, 1, 2, the layout of ``uv`` [.., 3, 2]."""


def _struct(dtype: type) -> type:
    """A ``wp.struct`` with the fields of :class:`KernelParams` (int -> int32, float -> dtype)."""
    types = {int: wp.int32, float: dtype}
    hints = typing.get_type_hints(KernelParams)
    cls = type(f"KernelParams_{dtype.__name__}", (), {"__annotations__": {k: types[v] for k, v in hints.items()}})
    return wp.struct(cls)


def kernels(dtype: type) -> SimpleNamespace:
    """The kernels computing in ``dtype`` (``wp.float32`` or ``wp.float64``) and their
    ``Params`` struct, built once per registry version (:func:`softras.raster.model.registry_version`):
    a registered family rebuilds them with the new dispatchers."""
    if dtype not in (wp.float32, wp.float64):
        raise TypeError(f"dtype: expected wp.float32 or wp.float64, got {dtype!r}")
    return _kernels(dtype, model.registry_version())


@functools.cache
def _kernels(dtype: type, version: int) -> SimpleNamespace:
    return _build(dtype)


def _fields(name: str, fields: dict[str, type]) -> type:
    """A ``wp.struct`` called ``name`` with ``fields`` (name -> Warp type)."""
    return wp.struct(type(name, (), {"__annotations__": fields}))


def _build(C: type) -> SimpleNamespace:
    Params = _struct(C)
    # One level's bilinear lookup: the atlas index (of channel 0) of the four texels around (u, v),
    # T00 T01 on the upper row, T10 T11 on the lower one, and the fractions fx, fy between them;
    # ``width`` and ``height`` (as C) give the level's dx/du = W and dy/dv = −H.
    Taps = _fields(
        f"UVTaps_{C.__name__}",
        {"i00": wp.int32, "i01": wp.int32, "i10": wp.int32, "i11": wp.int32, "fx": C, "fy": C, "width": C, "height": C},
    )
    # A pair's UV lookup: value = (1 − t)·lookup(lo) + t·lookup(hi), dt = dt/dλ.
    Sample = _fields(f"UVSample_{C.__name__}", {"lo": Taps, "hi": Taps, "t": C, "dt": C})
    # The model's coverage distributions and T-conorms (softras.raster.model) as wp.funcs on C,
    # from their one source; each kernel calls a dispatcher on the run-time code.
    family = model.warp_model(C)
    evaluate = family["evaluate"]
    tc_term = family["term"]
    tc_alpha = family["alpha"]
    tc_pair_gradient = family["pair_gradient"]
    # The model's UV texture rules (softras.raster.model.texture), from the same source.
    perspective_weights = family["perspective_weights"]
    perspective_weights_vjp = family["perspective_weights_vjp"]
    uv_at = family["uv_at"]
    uv_at_vjp = family["uv_at_vjp"]
    mip_level = family["mip_level"]
    mip_level_vjp = family["mip_level_vjp"]
    mip_blend = family["mip_blend"]
    texel_xy = family["texel_xy"]
    wrap_index = family["wrap_index"]

    @wp.func
    def sigmoid(x: C):
        one = C(1.0)
        if x >= C(0.0):
            return one / (one + wp.exp(-x))
        e = wp.exp(x)
        return e / (one + e)

    @wp.func
    def exp_neg_abs(x: C):
        """e^-|x|, 0 beyond |x| = SIGMOID_CUTOFF (below the resolution of every sum it enters)."""
        ax = wp.abs(x)
        if ax < C(SIGMOID_CUTOFF):
            return wp.exp(-ax)
        return C(0.0)

    @wp.func
    def softras_pair(x: C, ee: C):
        """SoftRas's D = sigmoid(x) and 1 − D from ee = e^-|x| (see exp_neg_abs)."""
        one = C(1.0)
        if x >= C(0.0):
            return one / (one + ee), ee / (one + ee)
        return ee / (one + ee), one / (one + ee)

    @wp.func
    def family_z(x: C, squared: int, sigma: C):
        """z of the model's distribution from x = sign·d²/σ: x itself, or sign·d/σ (``squared`` 0)."""
        if squared != 0:
            return x
        r = wp.sqrt(wp.abs(x) / sigma)
        if x >= C(0.0):
            return r
        return -r

    @wp.func
    def family_dz_dx(z: C, squared: int, sigma: C):
        """dz/dx for :func:`family_z` (0 at d = 0, where d has no derivative)."""
        if squared != 0:
            return C(1.0)
        if z != C(0.0):
            return C(0.5) / (sigma * wp.abs(z))
        return C(0.0)

    @wp.func
    def in01(w: C):
        return w >= C(0.0) and w <= C(1.0)

    @wp.func
    def edge_d2(px: C, py: C, ax: C, ay: C, bx: C, by: C, inv_len2: C):
        """Squared distance from (px, py) to the segment a-b (inv_len2 = 1 / |b - a|², or 1)."""
        ex = bx - ax
        ey = by - ay
        qx = px - ax
        qy = py - ay
        t = wp.min(wp.max((qx * ex + qy * ey) * inv_len2, C(0.0)), C(1.0))
        dx = qx - t * ex
        dy = qy - t * ey
        return dx * dx + dy * dy

    @wp.func
    def snap_unit(w: C, snap: C):
        """w, or exactly 0 / 1 when within ``snap`` of them."""
        if wp.abs(w) < snap:
            return C(0.0)
        if wp.abs(w - C(1.0)) < snap:
            return C(1.0)
        return w

    @wp.func
    def coverage(fc: wp.array2d(dtype=C), n: int, px: C, py: C, dist_func: int, theta: C, sigma: C):
        """Barycentrics, keep flag (0/1), x = sign·d²/σ (D = sigmoid(x)) and the closest edge."""
        w0 = fc[n, P0] * (px - fc[n, X1]) + fc[n, Q0] * (py - fc[n, Y1])
        w1 = fc[n, P1] * (px - fc[n, X2]) + fc[n, Q1] * (py - fc[n, Y2])
        w2 = fc[n, P2] * (px - fc[n, X0]) + fc[n, Q2] * (py - fc[n, Y0])
        zero = C(0.0)
        one = C(1.0)
        # contract.EDGE_SNAP: a pixel centre on an edge or vertex is exactly on the boundary
        snap = C(EDGE_SNAP)
        w0 = snap_unit(w0, snap)
        w1 = snap_unit(w1, snap)
        w2 = snap_unit(w2, snap)
        if dist_func == DIST_HARD:
            keep = 0
            if in01(w0) and in01(w1) and in01(w2):
                keep = 1
            return w0, w1, w2, keep, zero, -1
        if dist_func == DIST_BARYCENTRIC:
            m = wp.min(w0, wp.min(w1, w2))
            signed = m * wp.abs(m)
            keep = 0
            if -signed < theta:
                keep = 1
            return w0, w1, w2, keep, signed / sigma, -1
        inside = w0 > zero and w0 < one and w1 > zero and w1 < one and w2 > zero and w2 < one
        if inside:
            # Inside, the nearest boundary point lies on the nearest edge line: w_k × altitude_k.
            d2 = w0 * w0 * fc[n, FC_ALTITUDE2 + 0]
            edge = 1
            dk = w1 * w1 * fc[n, FC_ALTITUDE2 + 1]
            if dk < d2:
                d2 = dk
                edge = 2
            dk = w2 * w2 * fc[n, FC_ALTITUDE2 + 2]
            if dk < d2:
                d2 = dk
                edge = 0
            return w0, w1, w2, 1, d2 / sigma, edge
        # Outside an edge line, the distance to that line bounds the distance from below.
        lim = theta * C(CULL_MARGIN)
        if w0 < zero and w0 * w0 * fc[n, FC_ALTITUDE2 + 0] >= lim:
            return w0, w1, w2, 0, zero, -1
        if w1 < zero and w1 * w1 * fc[n, FC_ALTITUDE2 + 1] >= lim:
            return w0, w1, w2, 0, zero, -1
        if w2 < zero and w2 * w2 * fc[n, FC_ALTITUDE2 + 2] >= lim:
            return w0, w1, w2, 0, zero, -1
        # The nearest point lies on an edge whose opposite barycentric is <= 0.
        x0 = fc[n, X0]
        y0 = fc[n, Y0]
        x1 = fc[n, X1]
        y1 = fc[n, Y1]
        x2 = fc[n, X2]
        y2 = fc[n, Y2]
        d2 = zero
        edge = -1
        if w2 <= zero:
            d2 = edge_d2(px, py, x0, y0, x1, y1, fc[n, FC_INV_EDGE_LEN2 + 0])
            edge = 0
        if w0 <= zero:
            dk = edge_d2(px, py, x1, y1, x2, y2, fc[n, FC_INV_EDGE_LEN2 + 1])
            if edge < 0 or dk < d2:
                d2 = dk
                edge = 1
        if w1 <= zero:
            dk = edge_d2(px, py, x2, y2, x0, y0, fc[n, FC_INV_EDGE_LEN2 + 2])
            if edge < 0 or dk < d2:
                d2 = dk
                edge = 2
        keep = 0
        if edge >= 0 and d2 < theta:
            keep = 1
        return w0, w1, w2, keep, -d2 / sigma, edge

    @wp.func
    def depth(fc: wp.array2d(dtype=C), n: int, w0: C, w1: C, w2: C):
        """Clipped barycentrics, their raw and floored sum, renormalised ones and 1 / z."""
        zero = C(0.0)
        one = C(1.0)
        u0 = wp.min(wp.max(w0, zero), one)
        u1 = wp.min(wp.max(w1, zero), one)
        u2 = wp.min(wp.max(w2, zero), one)
        s_raw = u0 + u1 + u2
        s = wp.max(s_raw, C(W_SUM_EPS))
        rs = one / s
        c0 = u0 * rs
        c1 = u1 * rs
        c2 = u2 * rs
        inv_z = c0 * fc[n, FC_INV_Z + 0] + c1 * fc[n, FC_INV_Z + 1] + c2 * fc[n, FC_INV_Z + 2]
        return u0, u1, u2, s_raw, s, c0, c1, c2, inv_z

    @wp.func
    def depth_only(fc: wp.array2d(dtype=C), n: int, w0: C, w1: C, w2: C):
        """Renormalised clipped barycentrics and 1 / z (the forward's part of ``depth``)."""
        zero = C(0.0)
        one = C(1.0)
        u0 = wp.min(wp.max(w0, zero), one)
        u1 = wp.min(wp.max(w1, zero), one)
        u2 = wp.min(wp.max(w2, zero), one)
        rs = one / wp.max(u0 + u1 + u2, C(W_SUM_EPS))
        c0 = u0 * rs
        c1 = u1 * rs
        c2 = u2 * rs
        return c0, c1, c2, c0 * fc[n, FC_INV_Z + 0] + c1 * fc[n, FC_INV_Z + 1] + c2 * fc[n, FC_INV_Z + 2]

    @wp.func
    def texel_cell(c0: C, c1: C, r: int):
        """contract.texel_cell, transcribed line by line (Warp cannot call the Python rule)."""
        rr = C(r)
        one = C(1.0)
        wx = wp.min(wp.max(wp.floor(c0 * rr), C(0.0)), rr - one)
        wy = wp.min(wp.max(wp.floor(c1 * rr), C(0.0)), rr - one)
        if (c0 + c1) * rr - wx - wy <= one + C(TEXEL_EDGE_TOLERANCE):
            return wp.int32(wy * rr + wx)
        return wp.int32((rr - one - wy) * rr + (rr - one - wx))

    @wp.func
    def vertex_weights(perspective_correct: int, fc: wp.array2d(dtype=C), n: int, c0: C, c1: C, c2: C):
        """The weights of face n's vertex attributes at a pair: its clipped, renormalised
        barycentrics c_k, or (``perspective_correct`` 1) the model's perspective-correct b_k."""
        if perspective_correct != 0:
            b0, b1, b2 = perspective_weights(c0, c1, c2, fc[n, FC_INV_Z + 0], fc[n, FC_INV_Z + 1], fc[n, FC_INV_Z + 2])
            return b0, b1, b2
        return c0, c1, c2

    @wp.func
    def vertex_value(vertex: wp.array3d(dtype=C), n: int, c: int, b0: C, b1: C, b2: C):
        """Vertex channel c of face n interpolated with the weights b_k (:func:`vertex_weights`)."""
        return b0 * vertex[n, 0, c] + b1 * vertex[n, 1, c] + b2 * vertex[n, 2, c]

    @wp.func
    def vertex_flat(vertex: wp.array(dtype=C), n: int, nv: int, c: int, b0: C, b1: C, b2: C):
        """:func:`vertex_value` on the flat [N·3·Cv] view of the vertex attributes."""
        j = n * 3 * nv + c
        return b0 * vertex[j] + b1 * vertex[j + nv] + b2 * vertex[j + 2 * nv]

    @wp.func
    def wrapped(i: C, size: C, repeat: C, count: int):
        """The texel an integer position ``i`` reads (the model's wrap_index), as an index; kept in
        [0, count) so that no rounding of a huge ``i`` can read outside the level."""
        return wp.min(wp.max(wp.int32(wrap_index(i, size, repeat)), 0), count - 1)

    @wp.func
    def level_taps(
        levels: wp.array3d(dtype=wp.int32), mat: int, level: int, nu: int, u: C, v: C, nearest: bool, repeat: C
    ):
        """The :class:`Taps` of (u, v) in level ``level`` of material ``mat`` (levels [M, L, 3]:
        offset, height, width). 'nearest' puts all four taps on the texel containing (u, v), with
        fx = fy = 0: the lookup is that texel, and its slopes vanish."""
        offset = levels[mat, level, 0]
        height = levels[mat, level, 1]
        width = levels[mat, level, 2]
        taps = Taps()
        taps.width = C(width)
        taps.height = C(height)
        x, y = texel_xy(u, v, taps.width, taps.height)
        if nearest:
            col = wrapped(wp.floor(x + C(0.5)), taps.width, repeat, width)
            row = wrapped(wp.floor(y + C(0.5)), taps.height, repeat, height)
            i = offset + (row * width + col) * nu
            taps.i00 = i
            taps.i01 = i
            taps.i10 = i
            taps.i11 = i
            taps.fx = C(0.0)
            taps.fy = C(0.0)
            return taps
        x0 = wp.floor(x)
        y0 = wp.floor(y)
        c0 = wrapped(x0, taps.width, repeat, width)
        c1 = wrapped(x0 + C(1.0), taps.width, repeat, width)
        r0 = wrapped(y0, taps.height, repeat, height)
        r1 = wrapped(y0 + C(1.0), taps.height, repeat, height)
        taps.i00 = offset + (r0 * width + c0) * nu
        taps.i01 = offset + (r0 * width + c1) * nu
        taps.i10 = offset + (r1 * width + c0) * nu
        taps.i11 = offset + (r1 * width + c1) * nu
        taps.fx = x - x0
        taps.fy = y - y0
        return taps

    @wp.func
    def corner_uvs(uvs: wp.array3d(dtype=C), n: int):
        """(u0, u1, u2, v0, v1, v2) of face n (uvs [N, 3, 2])."""
        return uvs[n, 0, 0], uvs[n, 1, 0], uvs[n, 2, 0], uvs[n, 0, 1], uvs[n, 1, 1], uvs[n, 2, 1]

    @wp.func
    def uv_sample(
        p: Params,
        fc: wp.array2d(dtype=C),
        n: int,
        uvs: wp.array3d(dtype=C),
        material: wp.array(dtype=wp.int32),
        levels: wp.array3d(dtype=wp.int32),
        level_count: wp.array(dtype=wp.int32),
        c0: C,
        c1: C,
        c2: C,
    ):
        """The UV lookup of the pair (face n, clipped renormalised barycentrics c_k): the model's
        perspective-correct (u, v), and for 'trilinear' its level of detail and the two levels it
        blends; 'nearest' and 'bilinear' read level 0 (t = 0)."""
        iz0 = fc[n, FC_INV_Z + 0]
        iz1 = fc[n, FC_INV_Z + 1]
        iz2 = fc[n, FC_INV_Z + 2]
        u0, u1, u2, v0, v1, v2 = corner_uvs(uvs, n)
        u, v = uv_at(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2)
        mat = material[n]
        nu = p.num_uv
        nearest = p.texture_filter == FILTER_NEAREST
        repeat = C(0.0)
        if p.texture_wrap == WRAP_REPEAT:
            repeat = C(1.0)
        smp = Sample()
        smp.t = C(0.0)
        smp.dt = C(0.0)
        if p.texture_filter != FILTER_TRILINEAR:
            smp.lo = level_taps(levels, mat, 0, nu, u, v, nearest, repeat)
            smp.hi = smp.lo
            return smp
        # sxu = W0·pixel_x, sxv = H0·pixel_x, syu = W0·pixel_y, syv = H0·pixel_y (model.texture.mip_level)
        w0 = C(levels[mat, 0, 2])
        h0 = C(levels[mat, 0, 1])
        lam = mip_level(
            c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2,
            fc[n, P0], fc[n, P1], fc[n, P2], fc[n, Q0], fc[n, Q1], fc[n, Q2],
            w0 * p.pixel_x, h0 * p.pixel_x, w0 * p.pixel_y, h0 * p.pixel_y,
        )  # fmt: skip
        count = level_count[mat]
        l0, l1, t, dt = mip_blend(lam, C(count))
        # (the clamps only keep a non-finite λ from reading outside the level table)
        smp.lo = level_taps(levels, mat, wp.clamp(wp.int32(l0), 0, count - 1), nu, u, v, False, repeat)
        smp.hi = level_taps(levels, mat, wp.clamp(wp.int32(l1), 0, count - 1), nu, u, v, False, repeat)
        smp.t = t
        smp.dt = dt
        return smp

    @wp.func
    def taps_value(atlas: wp.array(dtype=C), taps: Taps, c: int):
        """Channel c of the bilinear lookup (1 − fy)((1 − fx)T00 + fx·T01) + fy((1 − fx)T10 + fx·T11)."""
        one = C(1.0)
        top = (one - taps.fx) * atlas[taps.i00 + c] + taps.fx * atlas[taps.i01 + c]
        bottom = (one - taps.fx) * atlas[taps.i10 + c] + taps.fx * atlas[taps.i11 + c]
        return (one - taps.fy) * top + taps.fy * bottom

    @wp.func
    def taps_slopes(atlas: wp.array(dtype=C), taps: Taps, c: int):
        """∂/∂x and ∂/∂y of :func:`taps_value` in texel units (x, y: the level's texel_xy)."""
        one = C(1.0)
        t00 = atlas[taps.i00 + c]
        t01 = atlas[taps.i01 + c]
        t10 = atlas[taps.i10 + c]
        t11 = atlas[taps.i11 + c]
        dx = (one - taps.fy) * (t01 - t00) + taps.fy * (t11 - t10)
        dy = (one - taps.fx) * (t10 - t00) + taps.fx * (t11 - t01)
        return dx, dy

    @wp.func
    def uv_value(atlas: wp.array(dtype=C), smp: Sample, c: int):
        """Channel c of the pair's UV lookup."""
        value = taps_value(atlas, smp.lo, c)
        if smp.t != C(0.0):
            value = (C(1.0) - smp.t) * value + smp.t * taps_value(atlas, smp.hi, c)
        return value

    @wp.func
    def add_fixed(grad_atlas: wp.array(dtype=wp.int64), i: int, v: C, scale: wp.float64):
        """Adds v to texel entry i of the atlas gradient as the integer round(v·scale) (integer
        addition is associative: the sum is the same whatever order the threads add in)."""
        if v != C(0.0):
            wp.atomic_add(grad_atlas, i, wp.int64(wp.round(wp.float64(v) * scale)))

    @wp.func
    def scatter_taps(grad_atlas: wp.array(dtype=wp.int64), taps: Taps, c: int, g: C, scale: wp.float64):
        """Adds g times each tap's bilinear weight to channel c of the atlas gradient (fixed point)."""
        one = C(1.0)
        gt = g * (one - taps.fy)
        gb = g * taps.fy
        add_fixed(grad_atlas, taps.i00 + c, gt * (one - taps.fx), scale)
        add_fixed(grad_atlas, taps.i01 + c, gt * taps.fx, scale)
        add_fixed(grad_atlas, taps.i10 + c, gb * (one - taps.fx), scale)
        add_fixed(grad_atlas, taps.i11 + c, gb * taps.fx, scale)

    @wp.func
    def inv_or(v: wp.float64, fallback: wp.float64):
        if v > wp.float64(0.0):
            return wp.float64(1.0) / v
        return fallback

    @wp.kernel(enable_backward=False, module="unique")
    def prepare(fv: wp.array3d(dtype=C), fc: wp.array2d(dtype=C)):
        """fc[n] <- the constants of face n (float64 arithmetic, stored in the compute dtype)."""
        n = wp.tid()
        x0 = wp.float64(fv[n, 0, 0])
        y0 = wp.float64(fv[n, 0, 1])
        x1 = wp.float64(fv[n, 1, 0])
        y1 = wp.float64(fv[n, 1, 1])
        x2 = wp.float64(fv[n, 2, 0])
        y2 = wp.float64(fv[n, 2, 1])
        zero = wp.float64(0.0)
        one = wp.float64(1.0)
        eps = wp.float64(DET_EPS)
        det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
        det_c = wp.min(det, -eps)
        if det > zero:
            det_c = wp.max(det, eps)
        p0 = (y1 - y2) / det_c
        q0 = (x2 - x1) / det_c
        p1 = (y2 - y0) / det_c
        q1 = (x0 - x2) / det_c
        p2 = (y0 - y1) / det_c
        q2 = (x1 - x0) / det_c
        fc[n, P0] = C(p0)
        fc[n, Q0] = C(q0)
        fc[n, R0] = C((x1 * y2 - x2 * y1) / det_c)
        fc[n, P1] = C(p1)
        fc[n, Q1] = C(q1)
        fc[n, R1] = C((x2 * y0 - x0 * y2) / det_c)
        fc[n, P2] = C(p2)
        fc[n, Q2] = C(q2)
        fc[n, R2] = C((x0 * y1 - x1 * y0) / det_c)
        fc[n, X0] = fv[n, 0, 0]
        fc[n, Y0] = fv[n, 0, 1]
        fc[n, X1] = fv[n, 1, 0]
        fc[n, Y1] = fv[n, 1, 1]
        fc[n, X2] = fv[n, 2, 0]
        fc[n, Y2] = fv[n, 2, 1]
        for k in range(3):
            z = wp.float64(fv[n, k, 2])
            z_ok = one
            if wp.abs(z) < wp.float64(Z_EPS):
                z = wp.float64(Z_EPS)
                z_ok = zero
            fc[n, FC_INV_Z + k] = C(one / z)
            fc[n, FC_Z_OK + k] = C(z_ok)
        l0 = (x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)
        l1 = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)
        l2 = (x0 - x2) * (x0 - x2) + (y0 - y2) * (y0 - y2)
        fc[n, FC_INV_EDGE_LEN2 + 0] = C(inv_or(l0, one))
        fc[n, FC_INV_EDGE_LEN2 + 1] = C(inv_or(l1, one))
        fc[n, FC_INV_EDGE_LEN2 + 2] = C(inv_or(l2, one))
        # Squared altitude from vertex k: det² / |opposite edge|² with the clamped det, i.e.
        # 1 / (P_k² + Q_k²).
        a0 = p0 * p0 + q0 * q0
        a1 = p1 * p1 + q1 * q1
        a2 = p2 * p2 + q2 * q2
        fc[n, FC_ALTITUDE2 + 0] = C(inv_or(a0, zero))
        fc[n, FC_ALTITUDE2 + 1] = C(inv_or(a1, zero))
        fc[n, FC_ALTITUDE2 + 2] = C(inv_or(a2, zero))

    @wp.kernel(enable_backward=False, module="unique")
    def forward(
        p: Params,
        xs: wp.array(dtype=C),
        ys: wp.array(dtype=C),
        fc: wp.array2d(dtype=C),
        front: wp.array(dtype=wp.int32),
        surface: wp.array(dtype=C),
        vertex: wp.array(dtype=C),
        uvs: wp.array3d(dtype=C),
        material: wp.array(dtype=wp.int32),
        atlas: wp.array(dtype=C),
        levels: wp.array3d(dtype=wp.int32),
        level_count: wp.array(dtype=wp.int32),
        background: wp.array(dtype=C),
        pr: wp.array2d(dtype=wp.int32),
        tile_start: wp.array(dtype=wp.int32),
        tile_faces: wp.array(dtype=wp.int32),
        tile: int,
        ntx: int,
        nt: int,
        chan: wp.array(dtype=C),
        alpha: wp.array4d(dtype=C),
        depth_out: wp.array4d(dtype=C),
        state: wp.array4d(dtype=C),
        winner: wp.array3d(dtype=wp.int32),
        bary: wp.array4d(dtype=C),
        hard_depth: wp.array4d(dtype=C),
    ):
        """One pixel per thread. chan [B, Cs + Cv + Cu, H, W], surface [N, T, Cs] and vertex [N, 3, Cv] are
        flat views (one multiply-add per index in the pair loop: measurably faster); the UV texture:
        uvs [N, 3, 2], material [N], the flat atlas, levels [M, L, 3] (offset, height, width) and
        level_count [M] (stand-ins when Cu = 0); alpha, depth_out, hard_depth
        [B, 1, H, W]; state [B, 4 or 5, H, W] (alpha accumulator — Π(1 - D) for 'prod', Σ D for
        'sum', 0/1 for 'hard', the largest D for 'max', G = Σ t(1 − D) for the other T-conorms —
        then for 'softmax' the reference log D, reference depth and denominator, then for 'max'
        the face holding the largest D, or -1); winner [B, H, W] flat z-buffer face or -1
        (written for 'hard' channels or with_zbuffer); bary [B, 3, H, W] (with_zbuffer).

        D is SoftRas's sigmoid of x = sign·d²/σ (or the hard test) when ``p.distribution`` < 0,
        else the model's distribution ``p.distribution`` at z (:func:`family_z`)."""
        tid = wp.tid()
        tt = tile * tile
        job = tid // tt
        loc = tid - job * tt
        b = job // nt
        t = job - b * nt
        row = (t // ntx) * tile + loc // tile
        col = (t % ntx) * tile + loc % tile
        h = ys.shape[0]
        w = xs.shape[0]
        if row >= h or col >= w:
            return
        ns = p.num_surface
        nv = p.num_vertex
        nu = p.num_uv
        cu = ns + nv  # the first UV channel
        hw = h * w
        with_depth = p.with_depth != 0
        cb = b * (cu + nu) * hw + row * w + col  # chan[cb + c·hw]: channel c of this pixel
        ntex = p.texture_res * p.texture_res
        softmax = p.rgb_aggregation == RGB_SOFTMAX
        zbuffer = p.rgb_aggregation == RGB_HARD or p.with_zbuffer != 0
        px = xs[col]
        py = ys[row]
        zero = C(0.0)
        one = C(1.0)
        half = C(0.5)
        a_id = p.alpha_aggregation
        generic = p.distribution >= 0
        acc = zero
        if a_id == ALPHA_PROD:
            acc = one  # prod: transmittance Π(1 - D)
        arg = C(-1.0)  # max: the face holding the largest D
        ref_ld = zero
        ref_zp = p.zp_bg
        den = one
        num_depth = zero  # the background's depth value is 0
        if softmax:
            for c in range(cu + nu):
                chan[cb + c * hw] = background[c]
        zbuf = zero
        win = wp.int32(-1)  # a dynamic variable (a literal would be a constant to Warp)
        smp = Sample()  # the UV lookup of the current pair
        win_c0 = zero
        win_c1 = zero
        win_c2 = zero
        base = b * p.num_faces
        for e in range(tile_start[job], tile_start[job + 1]):
            n = base + tile_faces[e]
            if col < pr[n, 0] or col > pr[n, 1] or row < pr[n, 2] or row > pr[n, 3]:
                continue
            w0, w1, w2, keep, x, _edge = coverage(fc, n, px, py, p.dist_func, p.theta, p.sigma)
            if keep == 0:
                continue
            # D and S = 1 - D of the pair (the hard test: 1 and 0). SoftRas's sigmoid: ee = e^-|x|
            # gives D, 1 - D and log D with one exp.
            ee = zero
            d = one
            s = zero
            if p.dist_func != DIST_HARD:
                if generic:
                    z = family_z(x, p.squared, p.sigma)
                    d, s, _f = evaluate(p.distribution, z, p.dist_shape, p.dist_shift)
                else:
                    ee = exp_neg_abs(x)
                    d, s = softras_pair(x, ee)
            if a_id == ALPHA_PROD:
                acc = acc * s
            elif a_id == ALPHA_SUM:
                acc = acc + d
            elif a_id == ALPHA_HARD:
                if p.dist_func == DIST_HARD or (generic and d > half) or (not generic and x > zero):  # D > 0.5
                    acc = one
            elif a_id == ALPHA_MAX:
                if d > acc:  # faces ascend: ties keep the lowest face
                    acc = d
                    arg = C(tile_faces[e])
            else:
                acc = acc + tc_term(a_id, d, s, p.t_conorm_p)  # G = Σ t(1 - D)
            if p.fill_back == 0 and front[n] == 0:
                continue
            closed = False
            if zbuffer:
                closed = in01(w0) and in01(w1) and in01(w2)
                if not softmax and not closed:
                    continue  # the z-buffer only takes faces covering the pixel centre
            c0, c1, c2, inv_z = depth_only(fc, n, w0, w1, w2)
            zp = one / inv_z
            if not (zp >= p.depth_min and zp <= p.depth_max):
                continue
            if zbuffer and closed:
                if win < 0 or zp < zbuf - wp.abs(zbuf) * C(ZBUFFER_RTOL):  # ties: the lowest face
                    zbuf = zp
                    win = n
                    win_c0 = c0
                    win_c1 = c1
                    win_c2 = c2
            if not softmax:
                continue
            ld = zero  # log D
            if p.dist_func != DIST_HARD:
                if generic:
                    ld = wp.log(d)
                else:
                    ld = wp.min(x, zero) - wp.log(one + ee)
            delta = (ld - ref_ld) + (ref_zp - zp) * p.inv_scale
            sb = 0
            if ns > 0:
                sb = (n * ntex + texel_cell(c0, c1, p.texture_res)) * ns
            vb0 = c0
            vb1 = c1
            vb2 = c2
            if nv > 0:
                vb0, vb1, vb2 = vertex_weights(p.perspective_correct, fc, n, c0, c1, c2)
            if nu > 0:
                smp = uv_sample(p, fc, n, uvs, material, levels, level_count, c0, c1, c2)
            if delta > zero:
                # A new reference: the sums so far are rescaled, this pair enters with weight 1.
                rescale = wp.exp(-delta)
                ref_ld = ld
                ref_zp = zp
                den = den * rescale + one
                for c in range(ns):
                    chan[cb + c * hw] = chan[cb + c * hw] * rescale + surface[sb + c]
                for c in range(nv):
                    v = vertex_flat(vertex, n, nv, c, vb0, vb1, vb2)
                    chan[cb + (ns + c) * hw] = chan[cb + (ns + c) * hw] * rescale + v
                for c in range(nu):
                    chan[cb + (cu + c) * hw] = chan[cb + (cu + c) * hw] * rescale + uv_value(atlas, smp, c)
                if with_depth:
                    num_depth = num_depth * rescale + zp
            else:
                weight = wp.exp(delta)
                den = den + weight
                for c in range(ns):
                    chan[cb + c * hw] = chan[cb + c * hw] + weight * surface[sb + c]
                for c in range(nv):
                    v = vertex_flat(vertex, n, nv, c, vb0, vb1, vb2)
                    chan[cb + (ns + c) * hw] = chan[cb + (ns + c) * hw] + weight * v
                for c in range(nu):
                    chan[cb + (cu + c) * hw] = chan[cb + (cu + c) * hw] + weight * uv_value(atlas, smp, c)
                if with_depth:
                    num_depth = num_depth + weight * zp
        a = acc
        if a_id == ALPHA_PROD:
            a = one - acc
        elif a_id == ALPHA_SUM:
            a = acc / C(p.num_faces)
        elif a_id > ALPHA_MAX:  # the model's T-conorms: α from G
            a = tc_alpha(a_id, acc, p.t_conorm_p)
        alpha[b, 0, row, col] = a
        state[b, 0, row, col] = acc
        if a_id == ALPHA_MAX:
            state[b, 4, row, col] = arg
        if softmax:
            for c in range(cu + nu):
                chan[cb + c * hw] = chan[cb + c * hw] / den
            if p.with_depth != 0:
                depth_out[b, 0, row, col] = num_depth / den
            state[b, 1, row, col] = ref_ld
            state[b, 2, row, col] = ref_zp
            state[b, 3, row, col] = den
        else:
            if win < 0:
                for c in range(cu + nu):
                    chan[cb + c * hw] = background[c]
            else:
                if ns > 0:
                    k = texel_cell(win_c0, win_c1, p.texture_res)
                    for c in range(ns):
                        chan[cb + c * hw] = surface[(win * ntex + k) * ns + c]
                if nv > 0:
                    vb0, vb1, vb2 = vertex_weights(p.perspective_correct, fc, win, win_c0, win_c1, win_c2)
                    for c in range(nv):
                        chan[cb + (ns + c) * hw] = vertex_flat(vertex, win, nv, c, vb0, vb1, vb2)
                if nu > 0:
                    smp = uv_sample(p, fc, win, uvs, material, levels, level_count, win_c0, win_c1, win_c2)
                    for c in range(nu):
                        chan[cb + (cu + c) * hw] = uv_value(atlas, smp, c)
            if p.with_depth != 0:
                depth_out[b, 0, row, col] = zbuf
        if zbuffer:
            winner[b, row, col] = win
        if p.with_zbuffer != 0:
            # Perspective-correct barycentrics of the winner: b_k = (c_k / z_k) · zp.
            bary[b, 0, row, col] = win_c0 * fc[wp.max(win, 0), FC_INV_Z + 0] * zbuf
            bary[b, 1, row, col] = win_c1 * fc[wp.max(win, 0), FC_INV_Z + 1] * zbuf
            bary[b, 2, row, col] = win_c2 * fc[wp.max(win, 0), FC_INV_Z + 2] * zbuf
            hard_depth[b, 0, row, col] = zbuf

    @wp.func
    def uv_lookup_grads(
        p: Params,
        atlas: wp.array(dtype=C),
        grad_atlas: wp.array(dtype=wp.int64),
        atlas_scale: wp.float64,
        need_atlas: int,
        smp: Sample,
        grad_chan: wp.array4d(dtype=C),
        b: int,
        row: int,
        col: int,
        wj: C,
    ):
        """The UV channels' part of a pair's backward, for upstream gcol_c = g_c·wj of its value of
        channel c: adds gcol_c times each tap's weight to the atlas gradient (``need_atlas``, fixed
        point scaled by ``atlas_scale``) and returns dL/du, dL/dv and dL/dλ of the lookup.

        texel_xy is x = u·W − ½, y = (1 − v)·H − ½ in each level: d/du = W·d/dx, d/dv = −H·d/dy."""
        zero = C(0.0)
        one = C(1.0)
        cu = p.num_surface + p.num_vertex
        smooth = p.texture_filter != FILTER_NEAREST  # nearest: no slopes
        upper = smp.t != zero or smp.dt != zero  # trilinear: the upper level enters
        gu = zero
        gv = zero
        glam = zero
        for c in range(p.num_uv):
            gcol = grad_chan[b, cu + c, row, col] * wj
            if gcol == zero:
                continue
            g_lo = gcol * (one - smp.t)
            if need_atlas != 0:
                scatter_taps(grad_atlas, smp.lo, c, g_lo, atlas_scale)
            if smooth:
                dx, dy = taps_slopes(atlas, smp.lo, c)
                gu = gu + g_lo * dx * smp.lo.width
                gv = gv - g_lo * dy * smp.lo.height
            if upper:
                g_hi = gcol * smp.t
                if need_atlas != 0 and g_hi != zero:
                    scatter_taps(grad_atlas, smp.hi, c, g_hi, atlas_scale)
                dx, dy = taps_slopes(atlas, smp.hi, c)
                gu = gu + g_hi * dx * smp.hi.width
                gv = gv - g_hi * dy * smp.hi.height
                glam = glam + gcol * smp.dt * (taps_value(atlas, smp.hi, c) - taps_value(atlas, smp.lo, c))
        return gu, gv, glam

    @wp.func
    def uv_chain(
        p: Params,
        fc: wp.array2d(dtype=C),
        n: int,
        uvs: wp.array3d(dtype=C),
        material: wp.array(dtype=wp.int32),
        levels: wp.array3d(dtype=wp.int32),
        c0: C,
        c1: C,
        c2: C,
        gu: C,
        gv: C,
        glam: C,
    ):
        """dL/du, dL/dv and dL/dλ of the pair's lookup through the model's uv_at_vjp and
        mip_level_vjp: (gc0, gc1, gc2, giz0, giz1, giz2, gu0, gu1, gu2, gv0, gv1, gv2, ga0, ga1, ga2,
        gb0, gb1, gb2), c_k the clipped renormalised barycentrics, iz_k = 1/z_k, (u_k, v_k) the corner
        UVs, a_k = P_k and b_k = Q_k the barycentric matrix's columns."""
        iz0 = fc[n, FC_INV_Z + 0]
        iz1 = fc[n, FC_INV_Z + 1]
        iz2 = fc[n, FC_INV_Z + 2]
        u0, u1, u2, v0, v1, v2 = corner_uvs(uvs, n)
        gc0, gc1, gc2, giz0, giz1, giz2, gu0, gu1, gu2, gv0, gv1, gv2 = uv_at_vjp(
            c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2, gu, gv
        )
        zero = C(0.0)
        ga0 = zero
        ga1 = zero
        ga2 = zero
        gb0 = zero
        gb1 = zero
        gb2 = zero
        if glam != zero:
            mat = material[n]
            w0 = C(levels[mat, 0, 2])
            h0 = C(levels[mat, 0, 1])
            lc0, lc1, lc2, liz0, liz1, liz2, lu0, lu1, lu2, lv0, lv1, lv2, ga0, ga1, ga2, gb0, gb1, gb2 = mip_level_vjp(
                c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2,
                fc[n, P0], fc[n, P1], fc[n, P2], fc[n, Q0], fc[n, Q1], fc[n, Q2],
                w0 * p.pixel_x, h0 * p.pixel_x, w0 * p.pixel_y, h0 * p.pixel_y, glam,
            )  # fmt: skip
            gc0 = gc0 + lc0
            gc1 = gc1 + lc1
            gc2 = gc2 + lc2
            giz0 = giz0 + liz0
            giz1 = giz1 + liz1
            giz2 = giz2 + liz2
            gu0 = gu0 + lu0
            gu1 = gu1 + lu1
            gu2 = gu2 + lu2
            gv0 = gv0 + lv0
            gv1 = gv1 + lv1
            gv2 = gv2 + lv2
        return gc0, gc1, gc2, giz0, giz1, giz2, gu0, gu1, gu2, gv0, gv1, gv2, ga0, ga1, ga2, gb0, gb1, gb2

    @wp.func
    def add_grad(
        slots: wp.array2d(dtype=C), per_face: wp.array2d(dtype=C), g: int, n: int, j: int, v: C, deterministic: int
    ):
        """Adds v to entry j of the gradient row: slot g (deterministic) or face n (atomic)."""
        if deterministic != 0:
            slots[g, j] = slots[g, j] + v
        else:
            wp.atomic_add(per_face, n, j, v)

    @wp.kernel(enable_backward=False, module="unique")
    def backward(
        p: Params,
        xs: wp.array(dtype=C),
        ys: wp.array(dtype=C),
        fc: wp.array2d(dtype=C),
        front: wp.array(dtype=wp.int32),
        surface: wp.array3d(dtype=C),
        vertex: wp.array3d(dtype=C),
        uvs: wp.array3d(dtype=C),
        material: wp.array(dtype=wp.int32),
        atlas: wp.array(dtype=C),
        levels: wp.array3d(dtype=wp.int32),
        level_count: wp.array(dtype=wp.int32),
        pr: wp.array2d(dtype=wp.int32),
        entry_face: wp.array(dtype=wp.int32),
        entry_tile: wp.array(dtype=wp.int32),
        tile: int,
        ntx: int,
        need_v: int,
        surface_grad: int,
        vertex_grad: int,
        uv_grad: int,
        need_atlas: int,
        atlas_scale: wp.float64,
        deterministic: int,
        chan: wp.array4d(dtype=C),
        depth_out: wp.array4d(dtype=C),
        state: wp.array4d(dtype=C),
        winner: wp.array3d(dtype=wp.int32),
        grad_chan: wp.array4d(dtype=C),
        grad_alpha: wp.array4d(dtype=C),
        grad_depth: wp.array4d(dtype=C),
        slots: wp.array2d(dtype=C),
        per_face: wp.array2d(dtype=C),
        grad_atlas: wp.array(dtype=wp.int64),
    ):
        """One (face, tile) entry per thread: its gradient row goes to ``slots[entry]``
        (deterministic) or is added atomically to ``per_face[face]``. ``surface_grad`` /
        ``vertex_grad`` / ``uv_grad``: offset of the surface / vertex / corner-UV gradients in the
        row, -1 when not needed. The atlas gradient (``need_atlas``) is added to ``grad_atlas`` as
        integers, round(value·atlas_scale) (:func:`softras.raster.uv.fixed_point_scale`)."""
        g = wp.tid()
        n = entry_face[g]
        t = entry_tile[g]
        b = n // p.num_faces
        h = ys.shape[0]
        w = xs.shape[0]
        ns = p.num_surface
        nv = p.num_vertex
        nu = p.num_uv
        cu = ns + nv  # the first UV channel
        softmax = p.rgb_aggregation == RGB_SOFTMAX
        with_depth = p.with_depth != 0
        a_id = p.alpha_aggregation
        generic = p.distribution >= 0
        ty0 = (t // ntx) * tile
        tx0 = (t % ntx) * tile
        ra = wp.max(pr[n, 2], ty0)
        rb = wp.min(pr[n, 3], wp.min(h, ty0 + tile) - 1)
        ca = wp.max(pr[n, 0], tx0)
        cb = wp.min(pr[n, 1], wp.min(w, tx0 + tile) - 1)
        colour_face = p.fill_back != 0 or front[n] != 0
        zero = C(0.0)
        one = C(1.0)
        two = C(2.0)
        # Anchors of the barycentrics (w_k vanishes at vertex k + 1).
        ax0 = fc[n, X1]
        ay0 = fc[n, Y1]
        ax1 = fc[n, X2]
        ay1 = fc[n, Y2]
        ax2 = fc[n, X0]
        ay2 = fc[n, Y0]
        sx0 = zero
        sy0 = zero
        ss0 = zero
        sx1 = zero
        sy1 = zero
        ss1 = zero
        sx2 = zero
        sy2 = zero
        ss2 = zero
        gv0x = zero
        gv0y = zero
        gv1x = zero
        gv1y = zero
        gv2x = zero
        gv2y = zero
        gz0 = zero
        gz1 = zero
        gz2 = zero
        smp = Sample()  # the UV lookup of the current pair
        for row in range(ra, rb + 1):
            py = ys[row]
            for col in range(ca, cb + 1):
                px = xs[col]
                w0, w1, w2, keep, x, edge = coverage(fc, n, px, py, p.dist_func, p.theta, p.sigma)
                if keep == 0:
                    continue
                ga = grad_alpha[b, 0, row, col]
                gx = zero  # dL/dz (z = x for SoftRas's coverage)
                # The model's distribution: D, S = 1 - D and f = dD/dz at z.
                d = one
                s_pair = zero
                f = zero
                z = x
                if generic:
                    z = family_z(x, p.squared, p.sigma)
                    d, s_pair, f = evaluate(p.distribution, z, p.dist_shape, p.dist_shift)
                if p.dist_func != DIST_HARD:
                    if a_id == ALPHA_PROD:
                        if generic:
                            # dα/dz = Π(1 - D)·f/(1 - D), the hazard f/(1 - D) being D for the logistic
                            hazard = zero
                            if s_pair > zero:
                                hazard = f / s_pair
                            gx = gx + ga * state[b, 0, row, col] * hazard
                        else:
                            gx = gx + ga * state[b, 0, row, col] * sigmoid(x)  # dα/dx = Π(1 - D)·D
                    elif a_id == ALPHA_SUM:
                        if generic:
                            gx = gx + ga * f / C(p.num_faces)
                        else:
                            ds = sigmoid(x)
                            gx = gx + ga * ds * (one - ds) / C(p.num_faces)
                    elif a_id != ALPHA_HARD:
                        if not generic:
                            d, s_pair = softras_pair(x, exp_neg_abs(x))  # as the forward's
                            f = d * s_pair
                        if a_id == ALPHA_MAX:
                            if n - b * p.num_faces == int(state[b, 4, row, col]):  # the face holding the max
                                gx = gx + ga * f
                        else:
                            gx = gx + ga * tc_pair_gradient(a_id, state[b, 0, row, col], d, s_pair, f, p.t_conorm_p)
                gw0 = zero
                gw1 = zero
                gw2 = zero
                colour_ok = colour_face and (softmax or n == winner[b, row, col])
                u0 = zero
                u1 = zero
                u2 = zero
                s_raw = zero
                s = one
                c0 = zero
                c1 = zero
                c2 = zero
                zp = zero
                if colour_ok:
                    u0, u1, u2, s_raw, s, c0, c1, c2, inv_z = depth(fc, n, w0, w1, w2)
                    zp = one / inv_z
                    colour_ok = zp >= p.depth_min and zp <= p.depth_max
                # The pair's channels enter with weight wj (its softmax weight, or 1 for the
                # z-buffer winner): gcol_c = g_c · wj, and gzp = dL/dzp.
                wj = zero
                gd = zero
                any_g = wp.int32(0)
                gzp = zero
                k = wp.int32(0)
                vb0 = c0  # the vertex attributes' weights (vertex_weights)
                vb1 = c1
                vb2 = c2
                if colour_ok:
                    if ns > 0:
                        k = texel_cell(c0, c1, p.texture_res)
                    if nv > 0:
                        vb0, vb1, vb2 = vertex_weights(p.perspective_correct, fc, n, c0, c1, c2)
                    if nu > 0:
                        smp = uv_sample(p, fc, n, uvs, material, levels, level_count, c0, c1, c2)
                    if with_depth:
                        gd = grad_depth[b, 0, row, col]
                    if softmax:
                        wsum = zero  # Σ_c g_c (value_c − out_c), depth included
                        for c in range(ns):
                            gc = grad_chan[b, c, row, col]
                            if gc != zero:
                                any_g = 1
                            wsum = wsum + gc * (surface[n, k, c] - chan[b, c, row, col])
                        for c in range(nv):
                            gc = grad_chan[b, ns + c, row, col]
                            if gc != zero:
                                any_g = 1
                            v = vertex_value(vertex, n, c, vb0, vb1, vb2)
                            wsum = wsum + gc * (v - chan[b, ns + c, row, col])
                        for c in range(nu):
                            gc = grad_chan[b, cu + c, row, col]
                            if gc != zero:
                                any_g = 1
                            wsum = wsum + gc * (uv_value(atlas, smp, c) - chan[b, cu + c, row, col])
                        if with_depth:
                            wsum = wsum + gd * (zp - depth_out[b, 0, row, col])
                        ld = zero  # log D
                        if p.dist_func != DIST_HARD:
                            if generic:
                                ld = wp.log(d)
                            else:
                                ld = wp.min(x, zero) - wp.log(one + exp_neg_abs(x))
                        wj = wp.exp((ld - state[b, 1, row, col]) + (state[b, 2, row, col] - zp) * p.inv_scale)
                        wj = wj / state[b, 3, row, col]
                        glogit = wj * wsum
                        if p.dist_func != DIST_HARD:
                            if generic:
                                # d log D/dz: f/D, which is 1 - D for the logistic
                                if d > zero:
                                    gx = gx + glogit * (f / d)
                            else:
                                gx = gx + glogit * sigmoid(-x)
                        gzp = -glogit * p.inv_scale
                        if with_depth:
                            gzp = gzp + gd * wj
                    else:
                        wj = one
                        for c in range(cu + nu):
                            if grad_chan[b, c, row, col] != zero:
                                any_g = 1
                        gzp = gd
                has_gcol = any_g != 0 and wj != zero
                gc0 = zero
                gc1 = zero
                gc2 = zero
                if has_gcol:
                    if surface_grad >= 0:
                        for c in range(ns):
                            gcol = grad_chan[b, c, row, col] * wj
                            add_grad(slots, per_face, g, n, surface_grad + k * ns + c, gcol, deterministic)
                    for c in range(nv):
                        gcol = grad_chan[b, ns + c, row, col] * wj
                        if vertex_grad >= 0:
                            add_grad(slots, per_face, g, n, vertex_grad + c, gcol * vb0, deterministic)
                            add_grad(slots, per_face, g, n, vertex_grad + nv + c, gcol * vb1, deterministic)
                            add_grad(slots, per_face, g, n, vertex_grad + 2 * nv + c, gcol * vb2, deterministic)
                        # dL/db_k (here dL/dc_k unless perspective-correct)
                        gc0 = gc0 + gcol * vertex[n, 0, c]
                        gc1 = gc1 + gcol * vertex[n, 1, c]
                        gc2 = gc2 + gcol * vertex[n, 2, c]
                    if p.perspective_correct != 0 and nv > 0 and need_v != 0:
                        # b_k -> c_k and iz_k = 1/z_k (d/dz_k = −iz_k², none where z_k was clamped)
                        iz0 = fc[n, FC_INV_Z + 0]
                        iz1 = fc[n, FC_INV_Z + 1]
                        iz2 = fc[n, FC_INV_Z + 2]
                        gc0, gc1, gc2, pz0, pz1, pz2 = perspective_weights_vjp(c0, c1, c2, iz0, iz1, iz2, gc0, gc1, gc2)
                        gz0 = gz0 - pz0 * iz0 * iz0 * fc[n, FC_Z_OK + 0]
                        gz1 = gz1 - pz1 * iz1 * iz1 * fc[n, FC_Z_OK + 1]
                        gz2 = gz2 - pz2 * iz2 * iz2 * fc[n, FC_Z_OK + 2]
                    if nu > 0:
                        # ---- the UV lookup -> atlas, corner UVs, barycentrics, depths, matrix ---
                        gu, gv, glam = uv_lookup_grads(
                            p, atlas, grad_atlas, atlas_scale, need_atlas, smp, grad_chan, b, row, col, wj
                        )
                        if (need_v != 0 or uv_grad >= 0) and (gu != zero or gv != zero or glam != zero):
                            (
                                qc0, qc1, qc2, qz0, qz1, qz2, qu0, qu1, qu2, qv0, qv1, qv2, qa0, qa1, qa2, qb0, qb1, qb2
                            ) = uv_chain(p, fc, n, uvs, material, levels, c0, c1, c2, gu, gv, glam)  # fmt: skip
                            if uv_grad >= 0:
                                add_grad(slots, per_face, g, n, uv_grad + 0, qu0, deterministic)
                                add_grad(slots, per_face, g, n, uv_grad + 1, qv0, deterministic)
                                add_grad(slots, per_face, g, n, uv_grad + 2, qu1, deterministic)
                                add_grad(slots, per_face, g, n, uv_grad + 3, qv1, deterministic)
                                add_grad(slots, per_face, g, n, uv_grad + 4, qu2, deterministic)
                                add_grad(slots, per_face, g, n, uv_grad + 5, qv2, deterministic)
                            gc0 = gc0 + qc0
                            gc1 = gc1 + qc1
                            gc2 = gc2 + qc2
                            # 1/z_k = fc[INV_Z + k]: d/dz_k = −(1/z_k)², none where z_k was clamped
                            gz0 = gz0 - qz0 * fc[n, FC_INV_Z + 0] * fc[n, FC_INV_Z + 0] * fc[n, FC_Z_OK + 0]
                            gz1 = gz1 - qz1 * fc[n, FC_INV_Z + 1] * fc[n, FC_INV_Z + 1] * fc[n, FC_Z_OK + 1]
                            gz2 = gz2 - qz2 * fc[n, FC_INV_Z + 2] * fc[n, FC_INV_Z + 2] * fc[n, FC_Z_OK + 2]
                            # a_k = P_k, b_k = Q_k: their gradients join the sums X_k, Y_k of the row
                            sx0 = sx0 + qa0
                            sx1 = sx1 + qa1
                            sx2 = sx2 + qa2
                            sy0 = sy0 + qb0
                            sy1 = sy1 + qb1
                            sy2 = sy2 + qb2
                if need_v == 0:
                    continue
                # ---- channels and depth -> clipped barycentrics and depths ------------------
                if gzp != zero:
                    ginvz = -gzp * zp * zp
                    iz0 = fc[n, FC_INV_Z + 0]
                    iz1 = fc[n, FC_INV_Z + 1]
                    iz2 = fc[n, FC_INV_Z + 2]
                    gc0 = gc0 + ginvz * iz0
                    gc1 = gc1 + ginvz * iz1
                    gc2 = gc2 + ginvz * iz2
                    gz0 = gz0 - ginvz * c0 * iz0 * iz0 * fc[n, FC_Z_OK + 0]
                    gz1 = gz1 - ginvz * c1 * iz1 * iz1 * fc[n, FC_Z_OK + 1]
                    gz2 = gz2 - ginvz * c2 * iz2 * iz2 * fc[n, FC_Z_OK + 2]
                if gc0 != zero or gc1 != zero or gc2 != zero:
                    dot = gc0 * u0 + gc1 * u1 + gc2 * u2
                    gs = zero
                    if s_raw >= C(W_SUM_EPS):
                        gs = -dot / (s * s)
                    if in01(w0):
                        gw0 = gw0 + gc0 / s + gs
                    if in01(w1):
                        gw1 = gw1 + gc1 / s + gs
                    if in01(w2):
                        gw2 = gw2 + gc2 / s + gs
                # ---- coverage ----------------------------------------------------------------
                if generic and gx != zero:
                    gx = gx * family_dz_dx(z, p.squared, p.sigma)  # dL/dx, x = sign·d²/σ as the chain takes it
                if gx != zero:
                    if p.dist_func == DIST_BARYCENTRIC:
                        m = wp.min(w0, wp.min(w1, w2))
                        gm = gx * two * wp.abs(m) / p.sigma
                        if w0 == m:
                            gw0 = gw0 + gm
                        elif w1 == m:
                            gw1 = gw1 + gm
                        else:
                            gw2 = gw2 + gm
                    elif p.dist_func == DIST_EUCLIDEAN:
                        inside = w0 > zero and w0 < one and w1 > zero and w1 < one and w2 > zero and w2 < one
                        gd2 = -gx / p.sigma
                        if inside:
                            gd2 = gx / p.sigma
                        k1 = (edge + 1) % 3
                        ax = fc[n, FC_XY + 2 * edge]
                        ay = fc[n, FC_XY + 2 * edge + 1]
                        ex = fc[n, FC_XY + 2 * k1] - ax
                        ey = fc[n, FC_XY + 2 * k1 + 1] - ay
                        el2 = ex * ex + ey * ey
                        den_t = one
                        if el2 > zero:
                            den_t = el2
                        qx = px - ax
                        qy = py - ay
                        nn = qx * ex + qy * ey
                        t_raw = nn / den_t
                        tc = wp.min(wp.max(t_raw, zero), one)
                        gdx = two * (qx - tc * ex) * gd2
                        gdy = two * (qy - tc * ey) * gd2
                        # diff = q - t e, with q = p - a and e = b - a
                        gqx = gdx
                        gqy = gdy
                        gex = -tc * gdx
                        gey = -tc * gdy
                        if t_raw >= zero and t_raw <= one:
                            gt = -(gdx * ex + gdy * ey)
                            gn = gt / den_t
                            gqx = gqx + gn * ex
                            gqy = gqy + gn * ey
                            gex = gex + gn * qx
                            gey = gey + gn * qy
                            if el2 > zero:
                                gl = -gt * nn / (den_t * den_t)
                                gex = gex + two * ex * gl
                                gey = gey + two * ey * gl
                        if edge == 0:
                            gv0x = gv0x - gqx - gex
                            gv0y = gv0y - gqy - gey
                            gv1x = gv1x + gex
                            gv1y = gv1y + gey
                        elif edge == 1:
                            gv1x = gv1x - gqx - gex
                            gv1y = gv1y - gqy - gey
                            gv2x = gv2x + gex
                            gv2y = gv2y + gey
                        else:
                            gv2x = gv2x - gqx - gex
                            gv2y = gv2y - gqy - gey
                            gv0x = gv0x + gex
                            gv0y = gv0y + gey
                # ---- barycentrics -> matrix rows (relative to their anchors) -------------------
                if gw0 != zero:
                    sx0 = sx0 + gw0 * (px - ax0)
                    sy0 = sy0 + gw0 * (py - ay0)
                    ss0 = ss0 + gw0
                if gw1 != zero:
                    sx1 = sx1 + gw1 * (px - ax1)
                    sy1 = sy1 + gw1 * (py - ay1)
                    ss1 = ss1 + gw1
                if gw2 != zero:
                    sx2 = sx2 + gw2 * (px - ax2)
                    sy2 = sy2 + gw2 * (py - ay2)
                    ss2 = ss2 + gw2
        if need_v != 0:
            vals = wp.vector(
                sx0, sy0, ss0, sx1, sy1, ss1, sx2, sy2, ss2,
                gv0x, gv0y, gv1x, gv1y, gv2x, gv2y, gz0, gz1, gz2,
            )  # fmt: skip
            for j in range(G_ATTR):
                if deterministic != 0:
                    slots[g, j] = vals[j]
                else:
                    wp.atomic_add(per_face, n, j, vals[j])

    @wp.kernel(enable_backward=False, module="unique")
    def reduce(
        face_start: wp.array(dtype=wp.int32),
        slots: wp.array2d(dtype=C),
        per_face: wp.array2d(dtype=C),
    ):
        """per_face[n, j] <- Σ slots[e, j] over face n's entries, in entry order (float64 sum)."""
        n, j = wp.tid()
        acc = wp.float64(0.0)
        for e in range(face_start[n], face_start[n + 1]):
            acc = acc + wp.float64(slots[e, j])
        per_face[n, j] = C(acc)

    @wp.kernel(enable_backward=False, module="unique")
    def chain(fv: wp.array3d(dtype=C), per_face: wp.array2d(dtype=C), grad_fv: wp.array3d(dtype=C)):
        """grad_fv[n] <- the face's vertex gradient from its per-face row (float64 arithmetic).

        w_k = (P_k (x - x_a) + Q_k (y - y_a)) / det with a = vertex k+1, P_k = y_{k+1} - y_{k+2},
        Q_k = x_{k+2} - x_{k+1}, det clamped away from 0 (no gradient through the clamp).
        """
        n = wp.tid()
        x0 = wp.float64(fv[n, 0, 0])
        y0 = wp.float64(fv[n, 0, 1])
        x1 = wp.float64(fv[n, 1, 0])
        y1 = wp.float64(fv[n, 1, 1])
        x2 = wp.float64(fv[n, 2, 0])
        y2 = wp.float64(fv[n, 2, 1])
        zero = wp.float64(0.0)
        eps = wp.float64(DET_EPS)
        det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
        det_c = wp.min(det, -eps)
        passes = det <= -eps
        if det > zero:
            det_c = wp.max(det, eps)
            passes = det >= eps
        sx0 = wp.float64(per_face[n, 0])
        sy0 = wp.float64(per_face[n, 1])
        ss0 = wp.float64(per_face[n, 2])
        sx1 = wp.float64(per_face[n, 3])
        sy1 = wp.float64(per_face[n, 4])
        ss1 = wp.float64(per_face[n, 5])
        sx2 = wp.float64(per_face[n, 6])
        sy2 = wp.float64(per_face[n, 7])
        ss2 = wp.float64(per_face[n, 8])
        p0 = y1 - y2
        q0 = x2 - x1
        p1 = y2 - y0
        q1 = x0 - x2
        p2 = y0 - y1
        q2 = x1 - x0
        inv_det = wp.float64(1.0) / det_c
        gdet = zero
        if passes:
            gdet = -(p0 * sx0 + q0 * sy0 + p1 * sx1 + q1 * sy1 + p2 * sx2 + q2 * sy2) * inv_det * inv_det
        # d det / d(x_k, y_k) = (P_k, Q_k)
        gx0 = gdet * p0
        gx1 = gdet * p1
        gx2 = gdet * p2
        gy0 = gdet * q0
        gy1 = gdet * q1
        gy2 = gdet * q2
        # P_k = y_{k+1} - y_{k+2}, Q_k = x_{k+2} - x_{k+1}, anchor a = vertex k+1.
        # k = 0: P0 = y1 - y2, Q0 = x2 - x1, anchor v1
        gy1 = gy1 + sx0 * inv_det
        gy2 = gy2 - sx0 * inv_det
        gx2 = gx2 + sy0 * inv_det
        gx1 = gx1 - sy0 * inv_det
        gx1 = gx1 - p0 * ss0 * inv_det
        gy1 = gy1 - q0 * ss0 * inv_det
        # k = 1: P1 = y2 - y0, Q1 = x0 - x2, anchor v2
        gy2 = gy2 + sx1 * inv_det
        gy0 = gy0 - sx1 * inv_det
        gx0 = gx0 + sy1 * inv_det
        gx2 = gx2 - sy1 * inv_det
        gx2 = gx2 - p1 * ss1 * inv_det
        gy2 = gy2 - q1 * ss1 * inv_det
        # k = 2: P2 = y0 - y1, Q2 = x1 - x0, anchor v0
        gy0 = gy0 + sx2 * inv_det
        gy1 = gy1 - sx2 * inv_det
        gx1 = gx1 + sy2 * inv_det
        gx0 = gx0 - sy2 * inv_det
        gx0 = gx0 - p2 * ss2 * inv_det
        gy0 = gy0 - q2 * ss2 * inv_det
        grad_fv[n, 0, 0] = C(gx0 + wp.float64(per_face[n, G_XY + 0]))
        grad_fv[n, 0, 1] = C(gy0 + wp.float64(per_face[n, G_XY + 1]))
        grad_fv[n, 1, 0] = C(gx1 + wp.float64(per_face[n, G_XY + 2]))
        grad_fv[n, 1, 1] = C(gy1 + wp.float64(per_face[n, G_XY + 3]))
        grad_fv[n, 2, 0] = C(gx2 + wp.float64(per_face[n, G_XY + 4]))
        grad_fv[n, 2, 1] = C(gy2 + wp.float64(per_face[n, G_XY + 5]))
        grad_fv[n, 0, 2] = per_face[n, G_Z + 0]
        grad_fv[n, 1, 2] = per_face[n, G_Z + 1]
        grad_fv[n, 2, 2] = per_face[n, G_Z + 2]

    return SimpleNamespace(
        Params=Params, prepare=prepare, forward=forward, backward=backward, reduce=reduce, chain=chain
    )
