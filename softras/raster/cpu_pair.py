"""The arithmetic of one (pixel, face) pair for the ``cpu`` kernels, branch-free, in one float type.

The kernels (:mod:`.cpu_kernels`) visit a face's pixels one row at a time and evaluate a row's
pixels in one loop with no branch and no call in its body, so that LLVM vectorises it (packed
AVX2 / AVX-512 instructions, 8 or 16 float32 lanes). Everything here is inlined into that loop:

* choices are selects (``a if c else b`` on values already computed: Numba lowers a conditional
  expression to a branch, which LLVM turns into a select only when both sides are trivial), never
  an early exit: every lane evaluates every step, and a mask (``keep``) says which lanes count;
* :func:`exp_neg` is a polynomial with a bit-built power of two (no libm call, no table gather);
* the pair's coordinates are *local*: per face (:func:`face_constants`) and per row
  (:func:`row_start`) the kernels hold, in the pair type T, the barycentrics at the row's first
  pixel of the face's span, their increment per pixel, and the vertices relative to that pixel,
  all formed in float64 and rounded once. A pixel j steps
  from there: w_k = w_k(first) + j·Δw_k, position (j·step, 0). Rounding error then scales with
  the face's size on screen, not with the distance to the image origin, which keeps float32
  barycentrics accurate to ~1e-7 of the face (where P_k·x + Q_k·y + R_k in float32 would lose
  ~1e-7 of |P_k|, i.e. of 1 / face size).

T is the input dtype (float32 or float64): the kernels compile once per dtype.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from .._jit_cache import configure_numba_cache
from .contract import EDGE_SNAP, SIGMOID_CUTOFF, W_SUM_EPS

__all__ = [
    "cast", "closed_inside", "depth", "exp_neg", "face_constants", "pair_geometry", "row_start", "sigmoid_pair",
]  # fmt: skip

_JIT = {"cache": configure_numba_cache(), "nogil": True, "error_model": "numpy"}
_inline = njit(inline="always", **_JIT)


def cast(value, like):  # pragma: no cover - replaced by the overload in compiled code
    """``value`` converted to ``like``'s float type (float32 or float64). Numba types a Python
    float constant as float64 and float32 op int64 as float64, so every constant in a float32
    expression goes through this to keep the expression in float32."""
    raise NotImplementedError


@overload(cast, inline="always")
def _cast_impl(value, like):
    if like == types.float32:
        return lambda value, like: np.float32(value)
    if like == types.float64:
        return lambda value, like: np.float64(value)
    raise TypingError(f"cast: expected a float32 or float64 'like', got {like}")


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits`` (a bit cast, no conversion)."""
    if bits != types.int32:
        raise TypingError("expected an int32")

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits``."""
    if bits != types.int64:
        raise TypingError("expected an int64")

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


# e^-a = 2^-n · e^r, n = round(a / ln 2), r = n·ln 2 − a in [−ln2/2, ln2/2]; ln 2 = HI + LO with
# n·HI exact for every n used (HI has few significant bits), e^r by its Taylor polynomial.
_LOG2E = 1.4426950408889634
_LN2_HI_32, _LN2_LO_32 = 0.693359375, -2.12194440054690583e-4
_LN2_HI_64, _LN2_LO_64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
EXP_NEG_MAX_32 = 87.0
"""float32 :func:`exp_neg` is 0 beyond this (e^-87 ≈ 1.6e-38, the last normal float32 it gives)."""
EXP_NEG_MAX_64 = 708.0
"""float64 :func:`exp_neg` is 0 beyond this (e^-708 ≈ 3.3e-308)."""
_TAYLOR_32 = tuple(np.float32(1.0 / math.factorial(k)) for k in range(8))  # truncation < 6e-9 at |r| = ln2/2
_TAYLOR_64 = tuple(1.0 / math.factorial(k) for k in range(14))  # truncation < 5e-18


@_inline
def _exp_neg32(a):  # pragma: no cover - compiled
    big = a > np.float32(EXP_NEG_MAX_32)
    b = np.float32(0.0) if big else a
    n = np.int32(b * np.float32(_LOG2E) + np.float32(0.5))  # b >= 0: truncation is floor
    nf = np.float32(n)
    r = (nf * np.float32(_LN2_HI_32) - b) + nf * np.float32(_LN2_LO_32)
    c = _TAYLOR_32
    p = c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    v = p * _f32_from_bits(np.int32((127 - n) << 23))
    return np.float32(0.0) if big else v


@_inline
def _exp_neg64(a):  # pragma: no cover - compiled
    big = a > EXP_NEG_MAX_64
    b = 0.0 if big else a
    n = np.int64(b * _LOG2E + 0.5)
    nf = np.float64(n)
    r = (nf * _LN2_HI_64 - b) + nf * _LN2_LO_64
    c = _TAYLOR_64
    p = c[13]
    p = p * r + c[12]
    p = p * r + c[11]
    p = p * r + c[10]
    p = p * r + c[9]
    p = p * r + c[8]
    p = p * r + c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    v = p * _f64_from_bits(np.int64((1023 - n) << 52))
    return 0.0 if big else v


def exp_neg(a):  # pragma: no cover - replaced by the overload in compiled code
    """e^-a for a >= 0 in a's float type, inlined, no libm call: relative error < 4 ulp
    (tested) for a <= :data:`EXP_NEG_MAX_32` (float32) or :data:`EXP_NEG_MAX_64` (float64),
    exactly 0 beyond (so that no subnormal number, ~100× slower to compute with, comes out)."""
    raise NotImplementedError


@overload(exp_neg, inline="always")
def _exp_neg_impl(a):
    if a == types.float32:
        return lambda a: _exp_neg32(a)
    if a == types.float64:
        return lambda a: _exp_neg64(a)
    raise TypingError(f"exp_neg: expected float32 or float64, got {a}")


@_inline
def sigmoid_pair(x):  # pragma: no cover - compiled
    """(D, 1 − D) = (sigmoid(x), sigmoid(−x)), each to full relative precision, from one e^-|x|
    (taken as 0 beyond |x| = SIGMOID_CUTOFF), in x's type."""
    one = cast(1.0, x)
    ax = abs(x)
    e = exp_neg(ax)
    e = e if ax < cast(SIGMOID_CUTOFF, x) else cast(0.0, x)
    r = one / (one + e)
    er = e * r
    positive = x >= cast(0.0, x)
    return (r if positive else er), (er if positive else r)


@_inline
def face_constants(fc, x_first, step, like):  # pragma: no cover - compiled
    """One face's row-independent constants in ``like``'s type (the pair type T).

    fc: the face tuple of :mod:`.cpu_kernels` (float64, contract FaceConst layout); x_first: the
    x of the first pixel of the face's span, step: the pixel pitch in x (float64). Returns 19
    values: the barycentrics' increments per pixel to the right (dw0, dw1, dw2), the vertices'
    x relative to x_first, the edge vectors (vertex k + 1 − vertex k: ex_k, ey_k), the squared
    altitudes, the inverse squared edge lengths, and step.
    """
    return (
        cast(fc[0] * step, like), cast(fc[3] * step, like), cast(fc[6] * step, like),
        cast(fc[9] - x_first, like), cast(fc[11] - x_first, like), cast(fc[13] - x_first, like),
        cast(fc[11] - fc[9], like), cast(fc[12] - fc[10], like), cast(fc[13] - fc[11], like),
        cast(fc[14] - fc[12], like), cast(fc[9] - fc[13], like), cast(fc[10] - fc[14], like),
        cast(fc[24], like), cast(fc[25], like), cast(fc[26], like),
        cast(fc[21], like), cast(fc[22], like), cast(fc[23], like),
        cast(step, like),
    )  # fmt: skip


@_inline
def row_start(fc, x_first, py, like):  # pragma: no cover - compiled
    """One face's constants for the pixel row at y = py, in ``like``'s type: the barycentrics at the
    span's first pixel (x_first, py), formed in float64 and rounded once, and the vertices' y
    relative to py. Returns 6 values."""
    return (
        cast(fc[0] * x_first + fc[1] * py + fc[2], like),
        cast(fc[3] * x_first + fc[4] * py + fc[5], like),
        cast(fc[6] * x_first + fc[7] * py + fc[8], like),
        cast(fc[10] - py, like), cast(fc[12] - py, like), cast(fc[14] - py, like),
    )  # fmt: skip


@_inline
def _snap(w):  # pragma: no cover - compiled
    """w, or exactly 0 / 1 within EDGE_SNAP of them (pixel centres on an edge or a vertex)."""
    one = cast(1.0, w)
    snap = cast(EDGE_SNAP, w)
    return cast(0.0, w) if abs(w) < snap else (one if abs(w - one) < snap else w)


@_inline
def _segment2(px, ax, ay, ex, ey, inv_len2):  # pragma: no cover - compiled
    """Squared distance from the local pixel (px, 0) to the segment from (ax, ay) along (ex, ey)."""
    qx = px - ax
    qy = -ay
    t = min(max((qx * ex + qy * ey) * inv_len2, cast(0.0, px)), cast(1.0, px))
    dx = qx - t * ex
    dy = qy - t * ey
    return dx * dx + dy * dy


_FAR = 1e30  # the squared distance of an edge that does not face the pixel (finite in float32)


@_inline
def pair_geometry(j, fk, rw, euclid, bary, theta):  # pragma: no cover - compiled
    """The pair of the span's pixel j (an int, 0 first) in the row of ``rw`` (:func:`row_start`) of
    the face of ``fk`` (:func:`face_constants`).

    Returns (w0, w1, w2, keep, d2, edge, px): the snapped barycentrics; whether the pair counts;
    the signed squared distance (+ inside, − outside: Euclidean, or the barycentric m·|m|; 0 for
    the hard test, whose keep is "inside the closed triangle"); the closest edge k (edge k runs
    from vertex k to k + 1; −1 when not Euclidean, or when no edge faces the pixel); the pixel's
    local x. ``euclid`` / ``bary`` choose the distance (neither: the hard test). Branch-free:
    inside and outside distances are both formed and one is selected.
    """
    zero = cast(0.0, fk[0])
    one = cast(1.0, fk[0])
    jf = cast(j, zero)
    px = jf * fk[18]
    w0 = _snap(rw[0] + jf * fk[0])
    w1 = _snap(rw[1] + jf * fk[1])
    w2 = _snap(rw[2] + jf * fk[2])
    if euclid:
        inside = (w0 > zero) & (w0 < one) & (w1 > zero) & (w1 < one) & (w2 > zero) & (w2 < one)
        # inside: the nearest boundary point is on the nearest edge line, w_k²·altitude_k² away
        # from the line of edge k + 1 (ties to the line tested first: edges 1, 2, 0)
        h0 = w0 * w0 * fk[12]
        h1 = w1 * w1 * fk[13]
        h2 = w2 * w2 * fk[14]
        h01 = min(h0, h1)
        d_in = min(h01, h2)
        edge_in = 0 if h2 < h01 else (2 if h1 < h0 else 1)
        # outside: the nearest segment among the edges whose opposite barycentric is <= 0 (ties to
        # the edge tested first: 0, 1, 2)
        far = cast(_FAR, zero)
        # (each distance formed before the select: a select, unlike a branch, vectorises)
        t0 = _segment2(px, fk[3], rw[3], fk[6], fk[7], fk[15])
        t1 = _segment2(px, fk[4], rw[4], fk[8], fk[9], fk[16])
        t2 = _segment2(px, fk[5], rw[5], fk[10], fk[11], fk[17])
        s0 = t0 if w2 <= zero else far
        s1 = t1 if w0 <= zero else far
        s2 = t2 if w1 <= zero else far
        s01 = min(s0, s1)
        d_out = min(s01, s2)
        edge_out = 2 if s2 < s01 else (1 if s1 < s0 else (0 if w2 <= zero else -1))
        keep = inside | (d_out < theta)
        return w0, w1, w2, keep, (d_in if inside else -d_out), (edge_in if inside else edge_out), px
    if bary:
        m = min(w0, min(w1, w2))
        signed = m * abs(m)
        return w0, w1, w2, -signed < theta, signed, -1, px
    return w0, w1, w2, closed_inside(w0, w1, w2), zero, -1, px


@_inline
def closed_inside(w0, w1, w2):  # pragma: no cover - compiled
    """Whether every barycentric lies in [0, 1] (the closed triangle: hard coverage, z-buffer)."""
    zero = cast(0.0, w0)
    one = cast(1.0, w0)
    return (w0 >= zero) & (w0 <= one) & (w1 >= zero) & (w1 <= one) & (w2 >= zero) & (w2 <= one)


@_inline
def depth(w0, w1, w2, iz0, iz1, iz2):  # pragma: no cover - compiled
    """Perspective-correct 1/z of the pair (iz_k: the vertices' 1/z, in the pair type).

    Returns (u0, u1, u2, s_raw, s, c0, c1, c2, inv_z): the barycentrics clipped to [0, 1], their sum
    and that sum floored at W_SUM_EPS, the renormalised c_k = u_k/s, and Σ c_k/z_k.
    """
    zero = cast(0.0, w0)
    one = cast(1.0, w0)
    u0 = min(max(w0, zero), one)
    u1 = min(max(w1, zero), one)
    u2 = min(max(w2, zero), one)
    s_raw = u0 + u1 + u2
    s = max(s_raw, cast(W_SUM_EPS, w0))
    rs = one / s
    c0 = u0 * rs
    c1 = u1 * rs
    c2 = u2 * rs
    return u0, u1, u2, s_raw, s, c0, c1, c2, c0 * iz0 + c1 * iz1 + c2 * iz2
