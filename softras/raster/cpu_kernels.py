"""Numba kernels of the ``cpu`` backend: tile binning, fused forward and backward.

Each kernel works on one batch item × one screen tile per task (``prange``), visits only
the faces binned to that tile, and of those only the (pixel, face) pairs inside the face's
grown bounding box. Per pixel it keeps a handful of scalars (alpha accumulator, softmax
reference element and sums, z-buffer winner), so memory is O(B·H·W + entries) where an
entry is one (face, tile) incidence. The backward recomputes every pair term and writes
each pair's gradient into its entry's own slot; a pass over the faces (in parallel) then
sums each face's slots in tile order. No two threads ever add into the same number, so
gradients are bit-identical from run to run.

Arithmetic is float64 inside the kernels whatever the input dtype (pixel centres, barycentric
matrix, distances, depths), which makes float32 inputs *more* accurate than the float32
reference. The semantics are those of :mod:`softras.raster.reference` (DESIGN.md): the
grown-box test (decided in the input dtype, as exact pixel ranges), the cull d² < θ, inside
tests, depth range, front test, texel choice. Three shortcuts are exact in real arithmetic and
differ from the reference by rounding only: an outside pair whose distance to one edge *line*
already reaches √θ is culled at once; inside a face the distance to its boundary is the
smallest w_k × altitude_k; outside, only the edges opposite a w_k <= 0 are measured.

Option codes: dist 0 hard / 1 barycentric / 2 euclidean; rgb 0 hard / 1 softmax;
alpha 0 hard / 1 sum / 2 prod; texture 0 surface / 1 vertex.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
from numba import njit, prange

from .._jit_cache import configure_numba_cache

# Layout of the float parameter vector ``fp`` (float64).
P_SIGMA, P_THETA, P_NEAR, P_FAR, P_INV_SCALE, P_ZP_BG, P_BG = 0, 1, 2, 3, 4, 5, 6  # P_BG..P_BG+2
NUM_FP = 9
# Layout of one entry's gradient slot: d/d inv (9), d/d xy (6), d/d z (3), then textures.
G_INV, G_XY, G_Z, G_TEX = 0, 9, 15, 18

_DET_EPS = 1e-10
_W_SUM_EPS = 1e-5
_Z_EPS = 1e-12
_TEXEL_TOL = 1e-4
_CULL_MARGIN = 1.0 + 1e-6

_JIT = {"cache": configure_numba_cache(), "nogil": True, "error_model": "numpy"}


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


@njit(parallel=True, **_JIT)
def bin_faces(c0, c1, r0, r1, tile, ntx, nty):  # pragma: no cover - compiled
    """CSR lists of the faces whose pixel range meets each tile, and of each face's entries.

    c0..r1: [B, F] int64 pixel ranges (c1 < c0: face is off-image). Returns ``tile_start``
    [B * T + 1] (T = ntx * nty) and ``tile_faces`` [E] (ascending per tile): the entries
    (face, tile incidences) of task b * T + t are ``tile_start[b * T + t]:...[+1]``; and
    ``face_start`` [B * F + 1] with ``face_entries`` [E]: the entries of face (b, f), in tile
    order, for the backward's per-face reduction.
    """
    nb, nf = c0.shape
    nt = ntx * nty
    counts = np.zeros(nb * nt + 1, dtype=np.int64)
    face_counts = np.zeros(nb * nf + 1, dtype=np.int64)
    for b in prange(nb):
        for f in range(nf):
            if c1[b, f] < c0[b, f]:
                continue
            tx0, tx1 = c0[b, f] // tile, c1[b, f] // tile
            ty0, ty1 = r0[b, f] // tile, r1[b, f] // tile
            face_counts[b * nf + f + 1] = (ty1 - ty0 + 1) * (tx1 - tx0 + 1)
            for ty in range(ty0, ty1 + 1):
                for tx in range(tx0, tx1 + 1):
                    counts[b * nt + ty * ntx + tx + 1] += 1
    tile_start = np.cumsum(counts)
    face_start = np.cumsum(face_counts)
    tile_faces = np.empty(tile_start[-1], dtype=np.int64)
    face_entries = np.empty(tile_start[-1], dtype=np.int64)
    for b in prange(nb):
        cursor = tile_start[b * nt : (b + 1) * nt].copy()
        for f in range(nf):
            if c1[b, f] < c0[b, f]:
                continue
            k = face_start[b * nf + f]
            for ty in range(r0[b, f] // tile, r1[b, f] // tile + 1):
                for tx in range(c0[b, f] // tile, c1[b, f] // tile + 1):
                    t = ty * ntx + tx
                    tile_faces[cursor[t]] = f
                    face_entries[k] = cursor[t]
                    cursor[t] += 1
                    k += 1
    return tile_start, tile_faces, face_start, face_entries


@njit(inline="always", **_JIT)
def _sigmoid_pair(x, dist_id):  # pragma: no cover - compiled
    """D = sigmoid(x) and 1 - D, each to full relative precision, from one e^-|x| (0 beyond
    |x| = 40, < 5e-18: below the resolution of every sum it enters). Hard test: (1, 0)."""
    if dist_id == 0:
        return 1.0, 0.0
    ax = abs(x)
    e = _exp_neg(ax) if ax < 40.0 else 0.0
    r = 1.0 / (1.0 + e)
    if x >= 0:
        return r, e * r
    return e * r, r


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
def _coverage(px, py, fc, dist_id, theta, sigma):  # pragma: no cover - compiled
    """Barycentrics, keep flag, x = sign·d²/σ (D = sigmoid(x)) and the closest edge.

    fc: the face's constants (see ``_load_face``).
    """
    w0 = fc[0] * px + fc[1] * py + fc[2]
    w1 = fc[3] * px + fc[4] * py + fc[5]
    w2 = fc[6] * px + fc[7] * py + fc[8]
    edge = -1
    if dist_id == 0:
        keep = w0 >= 0 and w0 <= 1 and w1 >= 0 and w1 <= 1 and w2 >= 0 and w2 <= 1
        return w0, w1, w2, keep, math.inf, edge
    if dist_id == 1:
        m = min(w0, min(w1, w2))
        signed = m * abs(m)
        return w0, w1, w2, -signed < theta, signed / sigma, edge
    inside = w0 > 0 and w0 < 1 and w1 > 0 and w1 < 1 and w2 > 0 and w2 < 1
    degenerate = fc[30] != 0
    if inside and not degenerate:
        # Inside, the nearest boundary point lies on the nearest edge *line*: its distance is
        # w_k × altitude_k (the edge opposite vertex k is edge k + 1).
        d2 = w0 * w0 * fc[27]
        edge = 1
        dk = w1 * w1 * fc[28]
        if dk < d2:
            d2 = dk
            edge = 2
        dk = w2 * w2 * fc[29]
        if dk < d2:
            d2 = dk
            edge = 0
        return w0, w1, w2, True, d2 / sigma, edge
    if not degenerate:
        # Outside an edge line, |w_k| × altitude_k (distance to that line) bounds the distance
        # to the triangle from below: most far pairs are rejected here (with a safety margin).
        if w0 < 0 and w0 * w0 * fc[27] >= theta * _CULL_MARGIN:
            return w0, w1, w2, False, 0.0, edge
        if w1 < 0 and w1 * w1 * fc[28] >= theta * _CULL_MARGIN:
            return w0, w1, w2, False, 0.0, edge
        if w2 < 0 and w2 * w2 * fc[29] >= theta * _CULL_MARGIN:
            return w0, w1, w2, False, 0.0, edge
    # The nearest point lies on an edge whose opposite barycentric is <= 0 (all three edges
    # for degenerate faces, whose barycentrics are unreliable).
    d2 = math.inf
    if degenerate or w2 <= 0:
        d2 = _edge(px, py, fc[9], fc[10], fc[11], fc[12], fc[21])
        edge = 0
    if degenerate or w0 <= 0:
        dk = _edge(px, py, fc[11], fc[12], fc[13], fc[14], fc[22])
        if dk < d2:
            d2 = dk
            edge = 1
    if degenerate or w1 <= 0:
        dk = _edge(px, py, fc[13], fc[14], fc[9], fc[10], fc[23])
        if dk < d2:
            d2 = dk
            edge = 2
    if edge < 0:  # inside but degenerate
        d2 = _edge(px, py, fc[9], fc[10], fc[11], fc[12], fc[21])
        edge = 0
    x = d2 / sigma if inside else -d2 / sigma
    return w0, w1, w2, inside or d2 < theta, x, edge


@njit(inline="always", **_JIT)
def _load_face(inv, fv, b, f):  # pragma: no cover - compiled
    """The constants of face (b, f) as a tuple of float64 (kept in registers, not memory):

    0-8 barycentric matrix, 9-14 x0 y0 x1 y1 x2 y2, 15-17 guarded z, 18-20 raw z,
    21-23 1/|edge k|² (edge k: v_k -> v_k+1; 1 if degenerate), 24-26 1/z (guarded),
    27-29 squared altitude from vertex k (0 if degenerate), 30 1 if the face has no area.
    """
    x0 = np.float64(fv[b, f, 0, 0])
    y0 = np.float64(fv[b, f, 0, 1])
    x1 = np.float64(fv[b, f, 1, 0])
    y1 = np.float64(fv[b, f, 1, 1])
    x2 = np.float64(fv[b, f, 2, 0])
    y2 = np.float64(fv[b, f, 2, 1])
    r0 = np.float64(fv[b, f, 0, 2])
    r1 = np.float64(fv[b, f, 1, 2])
    r2 = np.float64(fv[b, f, 2, 2])
    z0 = r0
    if abs(r0) < _Z_EPS:
        z0 = _Z_EPS
    z1 = r1
    if abs(r1) < _Z_EPS:
        z1 = _Z_EPS
    z2 = r2
    if abs(r2) < _Z_EPS:
        z2 = _Z_EPS
    l0 = (x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)
    l1 = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)
    l2 = (x0 - x2) * (x0 - x2) + (y0 - y2) * (y0 - y2)
    i00, i01, i02 = inv[b, f, 0, 0], inv[b, f, 0, 1], inv[b, f, 0, 2]
    i10, i11, i12 = inv[b, f, 1, 0], inv[b, f, 1, 1], inv[b, f, 1, 2]
    i20, i21, i22 = inv[b, f, 2, 0], inv[b, f, 2, 1], inv[b, f, 2, 2]
    # Squared altitude from vertex k, det² / |opposite edge|², with the same (clamped) det as
    # the barycentric matrix: its row k's x, y coefficients have squared norm |edge|² / det².
    a0 = i00 * i00 + i01 * i01
    a1 = i10 * i10 + i11 * i11
    a2 = i20 * i20 + i21 * i21
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    degenerate = 1.0 if abs(det) < _DET_EPS else 0.0
    e0 = 1.0 / l0 if l0 > 0 else 1.0
    e1 = 1.0 / l1 if l1 > 0 else 1.0
    e2 = 1.0 / l2 if l2 > 0 else 1.0
    h0 = 1.0 / a0 if a0 > 0 else 0.0
    h1 = 1.0 / a1 if a1 > 0 else 0.0
    h2 = 1.0 / a2 if a2 > 0 else 0.0
    return (
        i00, i01, i02, i10, i11, i12, i20, i21, i22,
        x0, y0, x1, y1, x2, y2,
        z0, z1, z2, r0, r1, r2,
        e0, e1, e2, 1.0 / z0, 1.0 / z1, 1.0 / z2, h0, h1, h2, degenerate,
    )  # fmt: skip


@njit(inline="always", **_JIT)
def _depth(w0, w1, w2, fc):  # pragma: no cover - compiled
    """Clipped, renormalised barycentrics and 1 / z of the pair."""
    u0 = min(max(w0, 0.0), 1.0)
    u1 = min(max(w1, 0.0), 1.0)
    u2 = min(max(w2, 0.0), 1.0)
    s_raw = u0 + u1 + u2
    s = max(s_raw, _W_SUM_EPS)
    rs = 1.0 / s
    c0 = u0 * rs
    c1 = u1 * rs
    c2 = u2 * rs
    inv_z = c0 * fc[24] + c1 * fc[25] + c2 * fc[26]
    return u0, u1, u2, s_raw, s, c0, c1, c2, inv_z


@njit(inline="always", **_JIT)
def _texel(c0, c1, r):  # pragma: no cover - compiled
    wx = min(max(math.floor(c0 * r), 0.0), r - 1.0)
    wy = min(max(math.floor(c1 * r), 0.0), r - 1.0)
    if (c0 + c1) * r - wx - wy <= 1 + _TEXEL_TOL:
        return int(wy * r + wx)
    return int((r - 1 - wy) * r + (r - 1 - wx))


@njit(inline="always", **_JIT)
def _color(tex, b, f, tex_id, r, c0, c1, c2, ch):  # pragma: no cover - compiled
    if tex_id == 1:
        return c0 * np.float64(tex[b, f, 0, ch]) + c1 * np.float64(tex[b, f, 1, ch]) + c2 * np.float64(tex[b, f, 2, ch])
    return np.float64(tex[b, f, _texel(c0, c1, r), ch])


@njit(inline="always", **_JIT)
def _colors(tex, b, f, tex_id, r, c0, c1, c2):  # pragma: no cover - compiled
    """RGB of the pair: vertex colours interpolated, or the surface texel (looked up once)."""
    if tex_id == 1:
        return (
            _color(tex, b, f, tex_id, r, c0, c1, c2, 0),
            _color(tex, b, f, tex_id, r, c0, c1, c2, 1),
            _color(tex, b, f, tex_id, r, c0, c1, c2, 2),
        )
    k = _texel(c0, c1, r)
    return np.float64(tex[b, f, k, 0]), np.float64(tex[b, f, k, 1]), np.float64(tex[b, f, k, 2])


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
    """Rows ra..rb and columns ca..cb (inclusive) of face (b, f)'s box inside the tile."""
    return max(pr[b, f, 2], ty0), min(pr[b, f, 3], ty1 - 1), max(pr[b, f, 0], tx0), min(pr[b, f, 1], tx1 - 1)


# Per-pixel tile-local state rows of the forward pass.
S_ACC, S_DREF, S_ZP, S_DEN, S_N0, S_N1, S_N2, S_ZB, S_WIN = 0, 1, 2, 3, 4, 5, 6, 7, 8


@njit(parallel=True, **_JIT)
def forward(  # pragma: no cover - compiled
    xs, ys, fv, inv, front, tex, pr, tile_start, tile_faces, tile, ntx, nty, opts, fp, out, state, winner
):
    """Render. pr: [B, F, 4] pixel ranges (c0, c1, r0, r1); out: [B, 4, H, W];
    state: [B, 3, H, W] float64 (alpha accumulator; for softmax RGB 1 / (D_top · denominator)
    and the top element's depth, so that a pair's weight is D · state[1] · e^((state[2] - z) /
    ((far - near) γ))); the alpha accumulator is Π(1 - D) for 'prod', Σ D for 'sum', 0/1 for
    'hard'; winner: [B, H, W] z-buffer face or -1."""
    nb = inv.shape[0]
    nf = inv.shape[1]
    h = ys.shape[0]
    w = xs.shape[0]
    dist_id, rgb_id, alpha_id, tex_id, r, fill_back = opts[0], opts[1], opts[2], opts[3], opts[4], opts[5]
    sigma, theta, near, far = fp[P_SIGMA], fp[P_THETA], fp[P_NEAR], fp[P_FAR]
    inv_scale, zp_bg = fp[P_INV_SCALE], fp[P_ZP_BG]
    nt = ntx * nty
    for task in prange(nb * nt):
        job = _scatter(np.int64(task), np.int64(nb * nt), nb)
        b, ty0, ty1, tx0, tx1 = _tile_bounds(job, nt, ntx, tile, h, w)
        st = np.empty((9, tile, tile), dtype=np.float64)
        st[S_ACC] = 1.0 if alpha_id == 2 else 0.0  # prod: transmittance Π(1 - D)
        st[S_N0] = fp[P_BG]  # softmax: colour sums; z-buffer: the winner's colour
        st[S_N1] = fp[P_BG + 1]
        st[S_N2] = fp[P_BG + 2]
        if rgb_id == 1:
            st[S_DREF] = 1.0  # the background's D
            st[S_ZP] = zp_bg
            st[S_DEN] = 1.0
        else:
            st[S_ZB] = math.inf
            st[S_WIN] = -1.0
        for e in range(tile_start[job], tile_start[job + 1]):
            f = tile_faces[e]
            fc = _load_face(inv, fv, b, f)
            colour_face = fill_back != 0 or front[b, f]
            ra, rb, ca, cb = _face_span(pr, b, f, ty0, ty1, tx0, tx1)
            for row in range(ra, rb + 1):
                py = ys[row]
                for col in range(ca, cb + 1):
                    px = xs[col]
                    w0, w1, w2, keep, x, _ = _coverage(px, py, fc, dist_id, theta, sigma)
                    if not keep:
                        continue
                    i = row - ty0
                    j = col - tx0
                    # e = e^-|x| gives D = sigmoid(x) and 1 - D with one exp and one division.
                    d, one_minus_d = _sigmoid_pair(x, dist_id)
                    if alpha_id == 2:
                        st[S_ACC, i, j] *= one_minus_d
                    elif alpha_id == 1:
                        st[S_ACC, i, j] += d
                    elif dist_id == 0 or x > 0:  # D > 0.5
                        st[S_ACC, i, j] = 1.0
                    if not colour_face:
                        continue
                    if rgb_id == 0 and not (w0 >= 0 and w0 <= 1 and w1 >= 0 and w1 <= 1 and w2 >= 0 and w2 <= 1):
                        continue  # the z-buffer only takes faces covering the pixel centre
                    _, _, _, _, _, c0, c1, c2, inv_z = _depth(w0, w1, w2, fc)
                    zp = 1.0 / inv_z
                    if not (zp >= near and zp <= far):
                        continue
                    if rgb_id == 0:
                        if zp < st[S_ZB, i, j]:
                            st[S_ZB, i, j] = zp
                            st[S_WIN, i, j] = f
                            st[S_N0, i, j], st[S_N1, i, j], st[S_N2, i, j] = _colors(tex, b, f, tex_id, r, c0, c1, c2)
                        continue
                    col0, col1, col2 = _colors(tex, b, f, tex_id, r, c0, c1, c2)
                    # weight relative to the pixel's top element: (D / D_ref)·exp((z_ref - z)/((far-near)γ)),
                    # the depth difference formed before the division by γ; one exp either way.
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
                    if new_top:
                        st[S_DEN, i, j] = st[S_DEN, i, j] * scale + 1.0
                        st[S_N0, i, j] = st[S_N0, i, j] * scale + col0
                        st[S_N1, i, j] = st[S_N1, i, j] * scale + col1
                        st[S_N2, i, j] = st[S_N2, i, j] * scale + col2
                        st[S_DREF, i, j] = d
                        st[S_ZP, i, j] = zp
                    else:
                        st[S_DEN, i, j] += ew
                        st[S_N0, i, j] += ew * col0
                        st[S_N1, i, j] += ew * col1
                        st[S_N2, i, j] += ew * col2
        for row in range(ty0, ty1):
            i = row - ty0
            for col in range(tx0, tx1):
                j = col - tx0
                acc = st[S_ACC, i, j]
                if alpha_id == 2:
                    alpha = 1.0 - acc
                elif alpha_id == 1:
                    alpha = acc / nf
                else:
                    alpha = acc
                out[b, 3, row, col] = alpha
                state[b, 0, row, col] = acc
                if rgb_id == 1:
                    den = st[S_DEN, i, j]
                    out[b, 0, row, col] = st[S_N0, i, j] / den
                    out[b, 1, row, col] = st[S_N1, i, j] / den
                    out[b, 2, row, col] = st[S_N2, i, j] / den
                    state[b, 1, row, col] = 1.0 / (st[S_DREF, i, j] * den)  # weight of a pair: D·that·e^(...)
                    state[b, 2, row, col] = st[S_ZP, i, j]
                    continue
                winner[b, row, col] = int(st[S_WIN, i, j])
                out[b, 0, row, col] = st[S_N0, i, j]
                out[b, 1, row, col] = st[S_N1, i, j]
                out[b, 2, row, col] = st[S_N2, i, j]


@njit(parallel=True, **_JIT)
def backward(  # pragma: no cover - compiled
    xs, ys, fv, inv, front, tex, pr, tile_start, tile_faces, tile, ntx, nty, opts, fp, out, state, winner,
    grad_out, grad_entries,
):  # fmt: skip
    """Per-entry gradients: grad_entries [E, 18 + 3T] float64 (see G_* layout), every slot
    written (no zero-fill needed).

    ``opts[6]``: 1 when the face vertices need a gradient, ``opts[7]``: 1 for textures.
    """
    nb = inv.shape[0]
    nf = inv.shape[1]
    h = ys.shape[0]
    w = xs.shape[0]
    dist_id, rgb_id, alpha_id, tex_id, r, fill_back = opts[0], opts[1], opts[2], opts[3], opts[4], opts[5]
    need_v, need_t = opts[6] == 1, opts[7] == 1
    sigma, theta, near, far = fp[P_SIGMA], fp[P_THETA], fp[P_NEAR], fp[P_FAR]
    inv_scale = fp[P_INV_SCALE]
    nt = ntx * nty
    for task in prange(nb * nt):
        job = _scatter(np.int64(task), np.int64(nb * nt), nb)
        b, ty0, ty1, tx0, tx1 = _tile_bounds(job, nt, ntx, tile, h, w)
        for e in range(tile_start[job], tile_start[job + 1]):
            f = tile_faces[e]
            fc = _load_face(inv, fv, b, f)
            colour_face = fill_back != 0 or front[b, f]
            g = grad_entries[e]
            if need_t:
                g[G_TEX:] = 0.0  # the texture slots accumulate; the vertex ones are stored once
            # This entry's vertex-gradient terms, accumulated in registers, stored once below.
            ginv0 = ginv1 = ginv2 = ginv3 = ginv4 = ginv5 = ginv6 = ginv7 = ginv8 = 0.0
            gv0x = gv0y = gv1x = gv1y = gv2x = gv2y = 0.0
            gz0 = gz1 = gz2 = 0.0
            ra, rb, ca, cb = _face_span(pr, b, f, ty0, ty1, tx0, tx1)
            for row in range(ra, rb + 1):
                py = ys[row]
                for col in range(ca, cb + 1):
                    px = xs[col]
                    w0, w1, w2, keep, x, edge = _coverage(px, py, fc, dist_id, theta, sigma)
                    if not keep:
                        continue
                    ga = np.float64(grad_out[b, 3, row, col])
                    gx = 0.0  # dL/dx
                    d, one_minus_d = _sigmoid_pair(x, dist_id)
                    if dist_id != 0:
                        if alpha_id == 2:
                            gx += ga * state[b, 0, row, col] * d  # dα/dx = Π(1 - D)·D
                        elif alpha_id == 1:
                            gx += ga * d * one_minus_d / nf
                    gw0 = 0.0
                    gw1 = 0.0
                    gw2 = 0.0
                    colour_ok = colour_face and (rgb_id == 1 or f == winner[b, row, col])
                    if colour_ok:
                        u0, u1, u2, s_raw, s, c0, c1, c2, inv_z = _depth(w0, w1, w2, fc)
                        zp = 1.0 / inv_z
                        colour_ok = zp >= near and zp <= far
                    else:
                        u0 = u1 = u2 = s_raw = s = c0 = c1 = c2 = zp = 0.0
                    gcol0 = 0.0
                    gcol1 = 0.0
                    gcol2 = 0.0
                    gzp = 0.0
                    if colour_ok and rgb_id == 1:
                        gr0 = np.float64(grad_out[b, 0, row, col])
                        gr1 = np.float64(grad_out[b, 1, row, col])
                        gr2 = np.float64(grad_out[b, 2, row, col])
                        # softmax weight: (D / D_ref)·exp((z_ref - z) / ((far - near)γ)) / denominator
                        wj = d * state[b, 1, row, col] * _exp((state[b, 2, row, col] - zp) * inv_scale)
                        col0, col1, col2 = _colors(tex, b, f, tex_id, r, c0, c1, c2)
                        glogit = wj * (
                            gr0 * (col0 - np.float64(out[b, 0, row, col]))
                            + gr1 * (col1 - np.float64(out[b, 1, row, col]))
                            + gr2 * (col2 - np.float64(out[b, 2, row, col]))
                        )
                        gcol0 = gr0 * wj
                        gcol1 = gr1 * wj
                        gcol2 = gr2 * wj
                        if dist_id != 0:
                            gx += glogit * one_minus_d
                        gzp = -glogit * inv_scale
                    elif colour_ok:
                        gcol0 = np.float64(grad_out[b, 0, row, col])
                        gcol1 = np.float64(grad_out[b, 1, row, col])
                        gcol2 = np.float64(grad_out[b, 2, row, col])
                    if need_t and (gcol0 != 0 or gcol1 != 0 or gcol2 != 0):
                        if tex_id == 1:
                            g[G_TEX + 0] += gcol0 * c0
                            g[G_TEX + 1] += gcol1 * c0
                            g[G_TEX + 2] += gcol2 * c0
                            g[G_TEX + 3] += gcol0 * c1
                            g[G_TEX + 4] += gcol1 * c1
                            g[G_TEX + 5] += gcol2 * c1
                            g[G_TEX + 6] += gcol0 * c2
                            g[G_TEX + 7] += gcol1 * c2
                            g[G_TEX + 8] += gcol2 * c2
                        else:
                            k = G_TEX + 3 * _texel(c0, c1, r)
                            g[k] += gcol0
                            g[k + 1] += gcol1
                            g[k + 2] += gcol2
                    if not need_v:
                        continue
                    # ---- colour and depth -> clipped barycentrics and depths --------------
                    gc0 = 0.0
                    gc1 = 0.0
                    gc2 = 0.0
                    if tex_id == 1 and (gcol0 != 0 or gcol1 != 0 or gcol2 != 0):
                        gc0 = (
                            gcol0 * np.float64(tex[b, f, 0, 0])
                            + gcol1 * np.float64(tex[b, f, 0, 1])
                            + gcol2 * np.float64(tex[b, f, 0, 2])
                        )
                        gc1 = (
                            gcol0 * np.float64(tex[b, f, 1, 0])
                            + gcol1 * np.float64(tex[b, f, 1, 1])
                            + gcol2 * np.float64(tex[b, f, 1, 2])
                        )
                        gc2 = (
                            gcol0 * np.float64(tex[b, f, 2, 0])
                            + gcol1 * np.float64(tex[b, f, 2, 1])
                            + gcol2 * np.float64(tex[b, f, 2, 2])
                        )
                    if gzp != 0:
                        ginvz = -gzp * zp * zp
                        gc0 += ginvz * fc[24]
                        gc1 += ginvz * fc[25]
                        gc2 += ginvz * fc[26]
                        if abs(fc[18]) >= _Z_EPS:
                            gz0 -= ginvz * c0 * fc[24] * fc[24]
                        if abs(fc[19]) >= _Z_EPS:
                            gz1 -= ginvz * c1 * fc[25] * fc[25]
                        if abs(fc[20]) >= _Z_EPS:
                            gz2 -= ginvz * c2 * fc[26] * fc[26]
                    if gc0 != 0 or gc1 != 0 or gc2 != 0:
                        dot = gc0 * u0 + gc1 * u1 + gc2 * u2
                        gs = -dot / (s * s) if s_raw >= _W_SUM_EPS else 0.0
                        if w0 >= 0 and w0 <= 1:
                            gw0 += gc0 / s + gs
                        if w1 >= 0 and w1 <= 1:
                            gw1 += gc1 / s + gs
                        if w2 >= 0 and w2 <= 1:
                            gw2 += gc2 / s + gs
                    # ---- coverage ----------------------------------------------------------
                    if gx != 0:
                        if dist_id == 1:
                            m = min(w0, min(w1, w2))
                            gm = gx * 2.0 * abs(m) / sigma
                            if w0 == m:
                                gw0 += gm
                            elif w1 == m:
                                gw1 += gm
                            else:
                                gw2 += gm
                        elif dist_id == 2:
                            inside = w0 > 0 and w0 < 1 and w1 > 0 and w1 < 1 and w2 > 0 and w2 < 1
                            gd2 = gx / sigma if inside else -gx / sigma
                            k = edge
                            # edge k runs from vertex k to vertex k + 1 (constant tuple indices: a
                            # runtime index would spill the face tuple to memory on every pair)
                            if k == 0:
                                ax, ay, bx, by = fc[9], fc[10], fc[11], fc[12]
                            elif k == 1:
                                ax, ay, bx, by = fc[11], fc[12], fc[13], fc[14]
                            else:
                                ax, ay, bx, by = fc[13], fc[14], fc[9], fc[10]
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
                            if k == 0:
                                gv0x += -gqx - gex
                                gv0y += -gqy - gey
                                gv1x += gex
                                gv1y += gey
                            elif k == 1:
                                gv1x += -gqx - gex
                                gv1y += -gqy - gey
                                gv2x += gex
                                gv2y += gey
                            else:
                                gv2x += -gqx - gex
                                gv2y += -gqy - gey
                                gv0x += gex
                                gv0y += gey
                    # ---- barycentrics -> inverse matrix -------------------------------------
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


@njit(parallel=True, **_JIT)
def prepare_faces(fv, consts, xs, ys, inv, box, front, pr):  # pragma: no cover - compiled
    """Per face: barycentric matrix, grown box, front flag and the exact pixel ranges of the box.

    Same operations, in the same order and dtype, as ``reference.face_info`` and
    ``reference._pixel_ranges``, except the barycentric matrix ``inv`` (float64).
    consts: [cull_radius] in fv's dtype.
    """
    nb, nf = fv.shape[0], fv.shape[1]
    h, w = ys.shape[0], xs.shape[0]
    g = consts[0]
    for job in prange(nb * nf):
        b = job // nf
        f = job % nf
        # The barycentric matrix in float64 whatever the input dtype: its entries scale with
        # 1 / det, and float32 rounding there dominates the coverage error near edges.
        x0, y0 = np.float64(fv[b, f, 0, 0]), np.float64(fv[b, f, 0, 1])
        x1, y1 = np.float64(fv[b, f, 1, 0]), np.float64(fv[b, f, 1, 1])
        x2, y2 = np.float64(fv[b, f, 2, 0]), np.float64(fv[b, f, 2, 1])
        det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
        det = max(det, _DET_EPS) if det > 0 else min(det, -_DET_EPS)
        inv[b, f, 0, 0] = (y1 - y2) / det
        inv[b, f, 0, 1] = (x2 - x1) / det
        inv[b, f, 0, 2] = (x1 * y2 - x2 * y1) / det
        inv[b, f, 1, 0] = (y2 - y0) / det
        inv[b, f, 1, 1] = (x0 - x2) / det
        inv[b, f, 1, 2] = (x2 * y0 - x0 * y2) / det
        inv[b, f, 2, 0] = (y0 - y1) / det
        inv[b, f, 2, 1] = (x1 - x0) / det
        inv[b, f, 2, 2] = (x0 * y1 - x1 * y0) / det
        # Decisions shared with the reference (front test, grown box) in the input dtype.
        x0, y0 = fv[b, f, 0, 0], fv[b, f, 0, 1]
        x1, y1 = fv[b, f, 1, 0], fv[b, f, 1, 1]
        x2, y2 = fv[b, f, 2, 0], fv[b, f, 2, 1]
        front[b, f] = (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0)
        xmin = min(x0, min(x1, x2)) - g
        xmax = max(x0, max(x1, x2)) + g
        ymin = min(y0, min(y1, y2)) - g
        ymax = max(y0, max(y1, y2)) + g
        box[b, f, 0] = xmin
        box[b, f, 1] = xmax
        box[b, f, 2] = ymin
        box[b, f, 3] = ymax
        c0 = math.ceil((np.float64(xmin) * w + w - 1) / 2) - 1
        c1 = math.floor((np.float64(xmax) * w + w - 1) / 2) + 1
        r0 = math.ceil((h - 1 - np.float64(ymax) * h) / 2) - 1
        r1 = math.floor((h - 1 - np.float64(ymin) * h) / 2) + 1
        c0 = min(max(c0, 0), w)
        c1 = min(max(c1, -1), w - 1)
        r0 = min(max(r0, 0), h)
        r1 = min(max(r1, -1), h - 1)
        # Exact ranges: the pixel centres inside the grown box, tested in the input dtype
        # exactly as the reference's per-pair box test.
        while c0 <= c1 and xs[c0] < xmin:
            c0 += 1
        while c1 >= c0 and xs[c1] > xmax:
            c1 -= 1
        while r0 <= r1 and ys[r0] > ymax:
            r0 += 1
        while r1 >= r0 and ys[r1] < ymin:
            r1 -= 1
        empty = c1 < c0 or r1 < r0
        pr[b, f, 0] = 0 if empty else c0
        pr[b, f, 1] = -1 if empty else c1
        pr[b, f, 2] = 0 if empty else r0
        pr[b, f, 3] = -1 if empty else r1


@njit(parallel=True, **_JIT)
def reduce_faces(fv, det_eps, grad_entries, face_start, face_entries, need_v, grad_fv, grad_tex):  # pragma: no cover
    """Per face (in parallel): sum its entries' slots in tile order (deterministic), then chain
    the (inv, xy, z) terms to the vertices (see G_* layout).

    grad_fv: [B, F, 3, 3] written when ``need_v``; grad_tex: [B, F, T, 3] written when it has
    T > 0 (textures need a gradient; ``grad_entries`` then has 18 + 3T columns).
    """
    nb, nf = fv.shape[0], fv.shape[1]
    ntex = grad_tex.shape[2] * 3
    for job in prange(nb * nf):
        b = job // nf
        f = job % nf
        e0, e1 = face_start[job], face_start[job + 1]
        for k in range(ntex):
            acc = 0.0
            for i in range(e0, e1):
                acc += grad_entries[face_entries[i], G_TEX + k]
            grad_tex[b, f, k // 3, k % 3] = acc
        if not need_v:
            continue
        gf = np.zeros(G_TEX)
        for i in range(e0, e1):
            e = face_entries[i]
            for k in range(G_TEX):
                gf[k] += grad_entries[e, k]
        x0, y0 = np.float64(fv[b, f, 0, 0]), np.float64(fv[b, f, 0, 1])
        x1, y1 = np.float64(fv[b, f, 1, 0]), np.float64(fv[b, f, 1, 1])
        x2, y2 = np.float64(fv[b, f, 2, 0]), np.float64(fv[b, f, 2, 1])
        det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
        passes = det >= det_eps if det > 0 else det <= -det_eps
        det_c = max(det, det_eps) if det > 0 else min(det, -det_eps)
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
