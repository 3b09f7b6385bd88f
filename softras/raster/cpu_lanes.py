"""A face's coverage of a row of pixels, and its distance gradient, as branch-free loops LLVM vectorises.

The ``cpu`` kernels (:mod:`.cpu_kernels`) visit a face's pixels row by row. For the Euclidean
distance (SoftRas's default) they hand :data:`LANES` consecutive pixels of a row at a time to
:func:`coverage_lanes`, whose loop body holds no branch, no call and no load (the pixel centre
is computed from its column, the face's constants arrive as a tuple in registers), and whose
only stores go to one scratch array at constant offsets. LLVM then needs no run-time alias
check, which it refuses for loops of fewer than 16 iterations, and compiles the loop to packed
instructions (8 float64 lanes on AVX-512, 4 on AVX2; ``benchmarks/kernel_asm.py`` counts them).
In the backward, :func:`distance_grad_lanes` does the same for what each lane's dL/dx adds to the
face's vertex gradients through the distance.

Every value is formed with the same operations in the same order as the scalar kernels'
(``cpu_kernels._coverage`` and ``_sigmoid_pair``), each choice being a select on values already
computed: the lanes give bit-identical results (tested).
"""

from __future__ import annotations

import decimal

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .._jit_cache import configure_numba_cache
from .contract import CULL_MARGIN, EDGE_SNAP, SIGMOID_CUTOFF, FaceConst

__all__ = [
    "EXP_CORE_MAX", "LANES", "L_D", "L_EDGE", "L_GV", "L_GX", "L_KEEP", "L_OMD", "L_W0", "L_W1", "L_W2", "L_X",
    "N_ROWS", "coverage_lanes", "distance_grad_lanes", "distance_vertex_grads", "exp_neg_core", "far_outside",
    "segment_distance2", "snap",
]  # fmt: skip

_JIT = {"cache": configure_numba_cache(), "nogil": True, "error_model": "numpy"}
_inline = njit(inline="always", **_JIT)

LANES = 8
"""Pixels per call of :func:`coverage_lanes` (8: one AVX-512 register of float64; W1's faces span
3-8 pixels per row, so longer rows would mostly be masked lanes)."""

# Rows of the lane scratch array (each LANES long). Written by coverage_lanes: keep flag (1 / 0),
# x = sign·d²/σ, D, 1 − D, the snapped barycentrics w0, w1, w2, the closest edge (0, 1, 2; the
# nearest edge line inside), and dL/dx set to 0. The backward writes a kept pair's dL/dx to L_GX;
# distance_grad_lanes then writes what each lane adds to the vertices' (x, y) gradients.
L_KEEP, L_X, L_D, L_OMD, L_W0, L_W1, L_W2, L_EDGE, L_GX = 0, 1, 2, 3, 4, 5, 6, 7, 8
L_GV = 9  # rows L_GV .. L_GV + 5: dL/d(x0, y0, x1, y1, x2, y2)
N_ROWS = 15

_INV, _XY, _EDGE, _ALT = int(FaceConst.INV), int(FaceConst.XY), int(FaceConst.INV_EDGE_LEN2), int(FaceConst.ALTITUDE2)


@intrinsic
def select(typingctx, condition, if_true, if_false):
    """``if_true if condition else if_false`` as one LLVM ``select`` of two values already formed
    (Numba lowers a conditional expression to branches)."""
    if condition != types.boolean or if_true != if_false:
        raise TypingError(f"select: expected (bool, T, T), got ({condition}, {if_true}, {if_false})")

    def codegen(context, builder, signature, args):
        return builder.select(args[0], args[1], args[2])

    return if_true(condition, if_true, if_false), codegen


@_inline
def min2(a, b):  # pragma: no cover - compiled
    """Python's ``min(a, b)`` (a unless b < a) as a select."""
    return select(b < a, b, a)


@_inline
def max2(a, b):  # pragma: no cover - compiled
    """Python's ``max(a, b)`` (a unless b > a) as a select."""
    return select(b > a, b, a)


def _exp_tables() -> tuple[np.ndarray, np.ndarray]:
    """2^(-j/64), j < 64, correctly rounded (from 60-digit decimals), and 2^-n, n < 1075 (exact)."""
    ctx = decimal.Context(prec=60)
    frac = np.array([float(ctx.power(decimal.Decimal(2), decimal.Decimal(-j) / 64)) for j in range(64)])
    return frac, np.ldexp(1.0, -np.arange(1075))


_EXP_FRAC, _EXP_POW2 = _exp_tables()
_EXP_K_PER_UNIT = 92.33248261689366  # 64 / ln 2
_EXP_STEP_HI = 0.010830424695086549  # ln 2 / 64 = HI + LO, HI with 33 significant bits (k·HI exact)
_EXP_STEP_LO = 1.162596423439437e-12
EXP_CORE_MAX = 700.0
""":func:`exp_neg_core` is valid for 0 <= a <= this (larger a gives subnormal results)."""


@_inline
def exp_neg_core(a):  # pragma: no cover - compiled
    """e^-a for 0 <= a <= :data:`EXP_CORE_MAX`, branch-free, no libm call.

    a = k·ln2/64 + r with |r| <= ln2/128: e^-a = 2^-(k >> 6) · 2^(-(k & 63)/64) · e^-r, e^-r by its
    degree-6 Taylor polynomial (truncation < 4e-20); within a few ulp of libm's exp. The two
    table reads are gathers from constant arrays, which vectorise.
    """
    k = int(a * _EXP_K_PER_UNIT + 0.5)
    r = (a - k * _EXP_STEP_HI) - k * _EXP_STEP_LO
    p = 1.0 - r * (1.0 - r * (0.5 - r * (1.0 / 6.0 - r * (1.0 / 24.0 - r * (1.0 / 120.0 - r * (1.0 / 720.0))))))
    return _EXP_POW2[k >> 6] * _EXP_FRAC[k & 63] * p


@_inline
def snap(w):  # pragma: no cover - compiled
    """w, or exactly 0 / 1 within EDGE_SNAP of them (pixel centres on an edge or a vertex)."""
    return select(abs(w) < EDGE_SNAP, 0.0, select(abs(w - 1.0) < EDGE_SNAP, 1.0, w))


@_inline
def segment_distance2(px, py, ax, ay, bx, by, inv_len2):  # pragma: no cover - compiled
    """Squared distance from (px, py) to the segment a-b (inv_len2 = 1 / |b - a|², or 1)."""
    ex = bx - ax
    ey = by - ay
    t = min2(max2(((px - ax) * ex + (py - ay) * ey) * inv_len2, 0.0), 1.0)
    dx = (px - ax) - t * ex
    dy = (py - ay) - t * ey
    return dx * dx + dy * dy


@_inline
def far_outside(w, altitude2, bound):  # pragma: no cover - compiled
    """Whether the pixel is beyond an edge line by at least √bound: |w_k| × altitude_k is its distance
    to the line of edge k + 1, a lower bound of its distance to the triangle. Tested on the raw w
    but only for w <= -EDGE_SNAP, whose snapped value is w itself: the same decision as on the
    snapped barycentrics, made before snapping them."""
    return (w <= -EDGE_SNAP) & (w * w * altitude2 >= bound)


@njit(**_JIT)
def _coverage_lanes(out, col0, n, width, py, fc, theta, sigma):  # pragma: no cover - compiled
    """The Euclidean coverage of pixels (row y = ``py``, columns col0 .. col0 + LANES − 1) by one face.

    Args:
        out (numpy.ndarray): [N_ROWS · LANES] float64, written: row r of lane j at r·LANES + j
            (``L_KEEP`` ...). Lanes j >= n, and pairs the scalar kernels would not keep, have keep 0.
        col0 (int): the first column; n (int): how many of the LANES columns count.
        width (int): the image width (pixel centre x = (2·col + 1 − width) / width, the contract's
            ``pixel_centers``, formed exactly as there).
        py (float): the row's pixel-centre y.
        fc (tuple): the face's constants (``cpu_kernels._load_face``, FaceConst layout).
        theta (float): the squared cull distance; sigma (float): σ.
    """
    bound = theta * CULL_MARGIN
    wf = np.float64(width)
    for j in range(LANES):
        px = (2.0 * np.float64(col0 + j) + 1.0 - wf) / wf
        w0 = fc[_INV + 0] * px + fc[_INV + 1] * py + fc[_INV + 2]
        w1 = fc[_INV + 3] * px + fc[_INV + 4] * py + fc[_INV + 5]
        w2 = fc[_INV + 6] * px + fc[_INV + 7] * py + fc[_INV + 8]
        far = far_outside(w0, fc[_ALT + 0], bound) | far_outside(w1, fc[_ALT + 1], bound)
        far = far | far_outside(w2, fc[_ALT + 2], bound)
        w0, w1, w2 = snap(w0), snap(w1), snap(w2)
        inside = (w0 > 0) & (w0 < 1) & (w1 > 0) & (w1 < 1) & (w2 > 0) & (w2 < 1)
        # inside: the nearest edge line, w_k × altitude_k (the edge opposite vertex k is edge k + 1)
        d_in = w0 * w0 * fc[_ALT + 0]
        e_in = 1.0
        dk = w1 * w1 * fc[_ALT + 1]
        e_in = select(dk < d_in, 2.0, e_in)
        d_in = min2(d_in, dk)
        dk = w2 * w2 * fc[_ALT + 2]
        e_in = select(dk < d_in, 0.0, e_in)
        d_in = min2(d_in, dk)
        # outside: the nearest of the edges whose opposite barycentric is <= 0
        x0, y0, x1, y1, x2, y2 = fc[_XY + 0], fc[_XY + 1], fc[_XY + 2], fc[_XY + 3], fc[_XY + 4], fc[_XY + 5]
        d_out = select(w2 <= 0, segment_distance2(px, py, x0, y0, x1, y1, fc[_EDGE + 0]), np.inf)
        e_out = select(w2 <= 0, 0.0, -1.0)
        dk = select(w0 <= 0, segment_distance2(px, py, x1, y1, x2, y2, fc[_EDGE + 1]), np.inf)
        e_out = select(dk < d_out, 1.0, e_out)
        d_out = min2(d_out, dk)
        dk = select(w1 <= 0, segment_distance2(px, py, x2, y2, x0, y0, fc[_EDGE + 2]), np.inf)
        e_out = select(dk < d_out, 2.0, e_out)
        d_out = min2(d_out, dk)
        keep = (j < n) & ~far & (inside | (d_out < theta))
        x = select(inside, d_in / sigma, -d_out / sigma)
        # D = sigmoid(x) and 1 − D, each to full relative precision (``cpu_kernels._sigmoid_pair``)
        ax = abs(x)
        small = ax < SIGMOID_CUTOFF
        e = select(small, exp_neg_core(select(small, ax, 0.0)), 0.0)
        r = 1.0 / (1.0 + e)
        er = e * r
        out[L_KEEP * LANES + j] = select(keep, 1.0, 0.0)
        out[L_X * LANES + j] = x
        out[L_D * LANES + j] = select(x >= 0, r, er)
        out[L_OMD * LANES + j] = select(x >= 0, er, r)
        out[L_W0 * LANES + j] = w0
        out[L_W1 * LANES + j] = w1
        out[L_W2 * LANES + j] = w2
        out[L_EDGE * LANES + j] = select(inside, e_in, e_out)
        out[L_GX * LANES + j] = 0.0


@_inline
def _pick(edge, v0, v1, v2):  # pragma: no cover - compiled
    """v_edge for edge 0, 1, 2 (as selects)."""
    return select(edge == 0.0, v0, select(edge == 1.0, v1, v2))


@_inline
def distance_vertex_grads(px, py, edge, inside, gx, sigma, fc):  # pragma: no cover - compiled
    """What dL/dx of a pair adds to its face's vertex gradients (x0, y0, x1, y1, x2, y2) through the
    Euclidean x = ±d²/σ, d the distance from (px, py) to the pair's closest edge segment ``edge``
    (0, 1, 2: edge k runs from vertex k to vertex k + 1; ``inside``: x = +d²/σ). Branches are
    selects, so that :func:`_distance_grad_lanes` vectorises it; the scalar backward calls it too.
    """
    x0, y0, x1, y1, x2, y2 = fc[_XY + 0], fc[_XY + 1], fc[_XY + 2], fc[_XY + 3], fc[_XY + 4], fc[_XY + 5]
    gd2 = select(inside, gx / sigma, -gx / sigma)
    ax, ay = _pick(edge, x0, x1, x2), _pick(edge, y0, y1, y2)
    bx, by = _pick(edge, x1, x2, x0), _pick(edge, y1, y2, y0)
    ex = bx - ax
    ey = by - ay
    el2 = ex * ex + ey * ey
    den_t = select(el2 > 0, el2, 1.0)
    qx = px - ax
    qy = py - ay
    n = qx * ex + qy * ey
    t_raw = n / den_t
    tc = min2(max2(t_raw, 0.0), 1.0)
    gdx = 2.0 * (qx - tc * ex) * gd2
    gdy = 2.0 * (qy - tc * ey) * gd2
    # diff = q - t e, with q = p - a and e = b - a; t's own gradient only inside the segment
    on_segment = (t_raw >= 0) & (t_raw <= 1)
    gt = -(gdx * ex + gdy * ey)
    gn = gt / den_t
    gqx = select(on_segment, gdx + gn * ex, gdx)
    gqy = select(on_segment, gdy + gn * ey, gdy)
    gex = select(on_segment, -tc * gdx + gn * qx, -tc * gdx)
    gey = select(on_segment, -tc * gdy + gn * qy, -tc * gdy)
    gl = -gt * n / (den_t * den_t)
    stretch = on_segment & (el2 > 0)
    gex = select(stretch, gex + 2.0 * ex * gl, gex)
    gey = select(stretch, gey + 2.0 * ey * gl, gey)
    gax, gay = -gqx - gex, -gqy - gey  # vertex a = edge; vertex b = edge + 1 takes (gex, gey)
    return (
        select(edge == 0.0, gax, select(edge == 2.0, gex, 0.0)),
        select(edge == 0.0, gay, select(edge == 2.0, gey, 0.0)),
        select(edge == 1.0, gax, select(edge == 0.0, gex, 0.0)),
        select(edge == 1.0, gay, select(edge == 0.0, gey, 0.0)),
        select(edge == 2.0, gax, select(edge == 1.0, gex, 0.0)),
        select(edge == 2.0, gay, select(edge == 1.0, gey, 0.0)),
    )


@njit(**_JIT)
def _distance_grad_lanes(out, col0, width, py, fc, sigma):  # pragma: no cover - compiled
    """:func:`distance_vertex_grads` of each lane (its dL/dx in row ``L_GX``, 0 for lanes that add
    nothing), written to rows ``L_GV`` ... Other arguments as :func:`_coverage_lanes`."""
    wf = np.float64(width)
    for j in range(LANES):
        px = (2.0 * np.float64(col0 + j) + 1.0 - wf) / wf
        w0, w1, w2 = out[L_W0 * LANES + j], out[L_W1 * LANES + j], out[L_W2 * LANES + j]
        inside = (w0 > 0) & (w0 < 1) & (w1 > 0) & (w1 < 1) & (w2 > 0) & (w2 < 1)
        g0x, g0y, g1x, g1y, g2x, g2y = distance_vertex_grads(
            px, py, out[L_EDGE * LANES + j], inside, out[L_GX * LANES + j], sigma, fc
        )
        out[(L_GV + 0) * LANES + j] = g0x
        out[(L_GV + 1) * LANES + j] = g0y
        out[(L_GV + 2) * LANES + j] = g1x
        out[(L_GV + 3) * LANES + j] = g1y
        out[(L_GV + 4) * LANES + j] = g2x
        out[(L_GV + 5) * LANES + j] = g2y


def _not_inlined(function):
    """An intrinsic calling the jitted ``function`` (same arguments, no result) through a call marked
    ``noinline``: LLVM vectorises its loop when it compiles that function on its own, and a kernel
    that inlined it could unroll the loop before vectorising, leaving it scalar."""

    def typer(typingctx, *args):
        signature = types.none(*args)

        def codegen(context, builder, sig, llargs):
            compiled = function.get_compile_result(sig)
            context.active_code_library.add_linking_library(compiled.library)
            fnty = context.call_conv.get_function_type(compiled.signature.return_type, compiled.signature.args)
            callee = cgutils.get_or_insert_function(builder.module, fnty, compiled.fndesc.llvm_func_name)
            context.call_conv.call_function(builder, callee, sig.return_type, sig.args, llargs, attrs=("noinline",))
            return context.get_dummy_value()

        return signature, codegen

    return typer


@intrinsic
def coverage_lanes(typingctx, out, col0, n, width, py, fc, theta, sigma):
    """:func:`_coverage_lanes` (same arguments), not inlined (:func:`_not_inlined`)."""
    return _not_inlined(_coverage_lanes)(typingctx, out, col0, n, width, py, fc, theta, sigma)


@intrinsic
def distance_grad_lanes(typingctx, out, col0, width, py, fc, sigma):
    """:func:`_distance_grad_lanes` (same arguments), not inlined (:func:`_not_inlined`)."""
    return _not_inlined(_distance_grad_lanes)(typingctx, out, col0, width, py, fc, sigma)
