"""NVIDIA Warp kernels of the ``warp`` backend (the same source runs on CUDA and on the CPU).

The kernels are built per compute dtype (``wp.float32`` or ``wp.float64``) by :func:`kernels`;
Warp compiles each set once (CUDA via NVRTC, CPU via its bundled Clang) and caches it on disk.

Work decomposition (the binning itself is done in PyTorch by ``warp_backend``):

* ``prepare``: one thread per face; the face's constants (barycentric matrix, edges,
  altitudes, 1/z) computed in float64 whatever the compute dtype and stored in it.
* ``forward``: one thread per pixel, threads grouped tile by tile (a warp of 32 threads
  covers pixels of one tile, hence one face list). The pixel walks its tile's face list in
  ascending face order, skips faces whose exact pixel range does not contain it, and keeps
  only per-pixel scalars: the alpha accumulator, the softmax reference element (the running
  maximum of log D - z/((far-near)γ)) with the denominator and numerators taken relative to
  it, and the z-buffer winner with its colour. Depth *differences* are formed before the
  division by γ, which keeps float32 accurate at γ = 1e-4.
* ``backward``: one thread per (face, tile) entry; it recomputes the pair terms of every
  pixel of the face's range inside the tile and sums the entry's gradient in registers.
  Deterministic mode: the entry stores its sums in its own slot and ``reduce`` adds the slots
  of each face in a fixed order (no two threads ever add into the same number). Atomic mode:
  the entry adds into the per-face gradient with float atomics (faster, order-dependent
  rounding on GPUs).
* ``chain``: one thread per face; the chain rule from the barycentric-matrix, vertex-xy and
  depth gradients to the face vertices (float64 arithmetic).

Semantics are those of :mod:`softras.raster.reference` and of the ``cpu`` backend (same
culling, distance functions, aggregations, texel rule, the same exact shortcuts as
``cpu_kernels``). One formulation differs from the CPU kernels, exact in real arithmetic but
more accurate in float32: barycentrics are evaluated relative to a vertex of the face,
w_k = P_k (x - x_a) + Q_k (y - y_a) with a = vertex k+1 (where w_k vanishes), instead of
P_k x + Q_k y + R_k, and the backward accumulates the matching sums.

Option codes: dist 0 hard / 1 barycentric / 2 euclidean; rgb 0 hard / 1 softmax;
alpha 0 hard / 1 sum / 2 prod; texture 0 surface / 1 vertex.
"""

import functools
from types import SimpleNamespace

import warp as wp

__all__ = ["G_TEX", "NUM_FACE_CONSTS", "NUM_VERTEX_GRADS", "kernels"]

# Per-face constants (one row of ``fc``, compute dtype):
# 0-8   barycentric matrix rows (adjugate / clamped det): P_k, Q_k, R_k for k = 0, 1, 2
# 9-14  x0 y0 x1 y1 x2 y2
# 15-17 1/z of the vertices (|z| < 1e-12 replaced by 1e-12)
# 18-20 1 where |z| >= 1e-12 (the depth gradient flows), else 0
# 21-23 1 / |edge k|² (edge k: v_k -> v_k+1; 1 for a zero-length edge)
# 24-26 squared altitude from vertex k (0 if the face is degenerate)
# 27    1 if the face has no area (|det| < 1e-10)
NUM_FACE_CONSTS = 28
# Per-face gradient row: 0-8 (X_k, Y_k, S_k) for k = 0, 1, 2, the sums of dL/dw_k times
# (x - x_a, y - y_a, 1); 9-14 d/d(x0 y0 x1 y1 x2 y2) through the Euclidean distance; 15-17 d/dz;
# then the textures (3 per texel or per vertex colour).
NUM_VERTEX_GRADS = 18
G_TEX = NUM_VERTEX_GRADS

_DET_EPS = 1e-10
_W_SUM_EPS = 1e-5
_Z_EPS = 1e-12
_TEXEL_TOL = 1e-4
_CULL_MARGIN = 1.0 + 1e-6
_EXP_CUTOFF = 40.0


@functools.cache
def kernels(dtype: type) -> SimpleNamespace:
    """The kernels computing in ``dtype`` (``wp.float32`` or ``wp.float64``), built once."""
    if dtype not in (wp.float32, wp.float64):
        raise TypeError(f"dtype: expected wp.float32 or wp.float64, got {dtype!r}")
    return _build(dtype)


def _build(C: type) -> SimpleNamespace:
    det_eps = _DET_EPS
    w_sum_eps = _W_SUM_EPS
    z_eps = _Z_EPS
    texel_tol = _TEXEL_TOL
    cull_margin = _CULL_MARGIN
    exp_cutoff = _EXP_CUTOFF
    g_tex = G_TEX

    @wp.func
    def sigmoid(x: C):
        one = C(1.0)
        if x >= C(0.0):
            return one / (one + wp.exp(-x))
        e = wp.exp(x)
        return e / (one + e)

    @wp.func
    def exp_neg_abs(x: C):
        """e^-|x|, 0 beyond |x| = 40 (below the resolution of every sum it enters)."""
        ax = wp.abs(x)
        if ax < C(exp_cutoff):
            return wp.exp(-ax)
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
    def coverage(fc: wp.array2d(dtype=C), n: int, px: C, py: C, dist_id: int, theta: C, sigma: C):
        """Barycentrics, keep flag (0/1), x = sign·d²/σ (D = sigmoid(x)) and the closest edge."""
        w0 = fc[n, 0] * (px - fc[n, 11]) + fc[n, 1] * (py - fc[n, 12])
        w1 = fc[n, 3] * (px - fc[n, 13]) + fc[n, 4] * (py - fc[n, 14])
        w2 = fc[n, 6] * (px - fc[n, 9]) + fc[n, 7] * (py - fc[n, 10])
        zero = C(0.0)
        one = C(1.0)
        if dist_id == 0:
            keep = 0
            if in01(w0) and in01(w1) and in01(w2):
                keep = 1
            return w0, w1, w2, keep, zero, -1
        if dist_id == 1:
            m = wp.min(w0, wp.min(w1, w2))
            signed = m * wp.abs(m)
            keep = 0
            if -signed < theta:
                keep = 1
            return w0, w1, w2, keep, signed / sigma, -1
        inside = w0 > zero and w0 < one and w1 > zero and w1 < one and w2 > zero and w2 < one
        degenerate = fc[n, 27] != zero
        if inside and not degenerate:
            # Inside, the nearest boundary point lies on the nearest edge line: w_k × altitude_k.
            d2 = w0 * w0 * fc[n, 24]
            edge = 1
            dk = w1 * w1 * fc[n, 25]
            if dk < d2:
                d2 = dk
                edge = 2
            dk = w2 * w2 * fc[n, 26]
            if dk < d2:
                d2 = dk
                edge = 0
            return w0, w1, w2, 1, d2 / sigma, edge
        if not degenerate:
            # Outside an edge line, the distance to that line bounds the distance from below.
            lim = theta * C(cull_margin)
            if w0 < zero and w0 * w0 * fc[n, 24] >= lim:
                return w0, w1, w2, 0, zero, -1
            if w1 < zero and w1 * w1 * fc[n, 25] >= lim:
                return w0, w1, w2, 0, zero, -1
            if w2 < zero and w2 * w2 * fc[n, 26] >= lim:
                return w0, w1, w2, 0, zero, -1
        # The nearest point lies on an edge whose opposite barycentric is <= 0 (all three edges
        # for degenerate faces, whose barycentrics are unreliable).
        x0 = fc[n, 9]
        y0 = fc[n, 10]
        x1 = fc[n, 11]
        y1 = fc[n, 12]
        x2 = fc[n, 13]
        y2 = fc[n, 14]
        d2 = zero
        edge = -1
        if degenerate or w2 <= zero:
            d2 = edge_d2(px, py, x0, y0, x1, y1, fc[n, 21])
            edge = 0
        if degenerate or w0 <= zero:
            dk = edge_d2(px, py, x1, y1, x2, y2, fc[n, 22])
            if edge < 0 or dk < d2:
                d2 = dk
                edge = 1
        if degenerate or w1 <= zero:
            dk = edge_d2(px, py, x2, y2, x0, y0, fc[n, 23])
            if edge < 0 or dk < d2:
                d2 = dk
                edge = 2
        if edge < 0:  # inside but degenerate
            d2 = edge_d2(px, py, x0, y0, x1, y1, fc[n, 21])
            edge = 0
        x = -d2 / sigma
        if inside:
            x = d2 / sigma
        keep = 0
        if inside or d2 < theta:
            keep = 1
        return w0, w1, w2, keep, x, edge

    @wp.func
    def depth(fc: wp.array2d(dtype=C), n: int, w0: C, w1: C, w2: C):
        """Clipped barycentrics, their raw and floored sum, renormalised ones and 1 / z."""
        zero = C(0.0)
        one = C(1.0)
        u0 = wp.min(wp.max(w0, zero), one)
        u1 = wp.min(wp.max(w1, zero), one)
        u2 = wp.min(wp.max(w2, zero), one)
        s_raw = u0 + u1 + u2
        s = wp.max(s_raw, C(w_sum_eps))
        rs = one / s
        c0 = u0 * rs
        c1 = u1 * rs
        c2 = u2 * rs
        inv_z = c0 * fc[n, 15] + c1 * fc[n, 16] + c2 * fc[n, 17]
        return u0, u1, u2, s_raw, s, c0, c1, c2, inv_z

    @wp.func
    def depth_only(fc: wp.array2d(dtype=C), n: int, w0: C, w1: C, w2: C):
        """Renormalised clipped barycentrics and 1 / z (the forward's part of ``depth``)."""
        zero = C(0.0)
        one = C(1.0)
        u0 = wp.min(wp.max(w0, zero), one)
        u1 = wp.min(wp.max(w1, zero), one)
        u2 = wp.min(wp.max(w2, zero), one)
        rs = one / wp.max(u0 + u1 + u2, C(w_sum_eps))
        c0 = u0 * rs
        c1 = u1 * rs
        c2 = u2 * rs
        return c0, c1, c2, c0 * fc[n, 15] + c1 * fc[n, 16] + c2 * fc[n, 17]

    @wp.func
    def texel(c0: C, c1: C, r: int):
        rr = C(r)
        one = C(1.0)
        wx = wp.min(wp.max(wp.floor(c0 * rr), C(0.0)), rr - one)
        wy = wp.min(wp.max(wp.floor(c1 * rr), C(0.0)), rr - one)
        if (c0 + c1) * rr - wx - wy <= one + C(texel_tol):
            return wp.int32(wy * rr + wx)
        return wp.int32((rr - one - wy) * rr + (rr - one - wx))

    @wp.func
    def colors(tex: wp.array3d(dtype=C), n: int, tex_id: int, r: int, c0: C, c1: C, c2: C):
        """RGB of the pair: vertex colours interpolated, or the surface texel."""
        if tex_id == 1:
            return (
                c0 * tex[n, 0, 0] + c1 * tex[n, 1, 0] + c2 * tex[n, 2, 0],
                c0 * tex[n, 0, 1] + c1 * tex[n, 1, 1] + c2 * tex[n, 2, 1],
                c0 * tex[n, 0, 2] + c1 * tex[n, 1, 2] + c2 * tex[n, 2, 2],
            )
        k = texel(c0, c1, r)
        return tex[n, k, 0], tex[n, k, 1], tex[n, k, 2]

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
        eps = wp.float64(det_eps)
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
        fc[n, 0] = C(p0)
        fc[n, 1] = C(q0)
        fc[n, 2] = C((x1 * y2 - x2 * y1) / det_c)
        fc[n, 3] = C(p1)
        fc[n, 4] = C(q1)
        fc[n, 5] = C((x2 * y0 - x0 * y2) / det_c)
        fc[n, 6] = C(p2)
        fc[n, 7] = C(q2)
        fc[n, 8] = C((x0 * y1 - x1 * y0) / det_c)
        fc[n, 9] = fv[n, 0, 0]
        fc[n, 10] = fv[n, 0, 1]
        fc[n, 11] = fv[n, 1, 0]
        fc[n, 12] = fv[n, 1, 1]
        fc[n, 13] = fv[n, 2, 0]
        fc[n, 14] = fv[n, 2, 1]
        for k in range(3):
            z = wp.float64(fv[n, k, 2])
            z_ok = one
            if wp.abs(z) < wp.float64(z_eps):
                z = wp.float64(z_eps)
                z_ok = zero
            fc[n, 15 + k] = C(one / z)
            fc[n, 18 + k] = C(z_ok)
        l0 = (x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)
        l1 = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)
        l2 = (x0 - x2) * (x0 - x2) + (y0 - y2) * (y0 - y2)
        fc[n, 21] = C(inv_or(l0, one))
        fc[n, 22] = C(inv_or(l1, one))
        fc[n, 23] = C(inv_or(l2, one))
        # Squared altitude from vertex k: det² / |opposite edge|² with the clamped det, i.e.
        # 1 / (P_k² + Q_k²).
        a0 = p0 * p0 + q0 * q0
        a1 = p1 * p1 + q1 * q1
        a2 = p2 * p2 + q2 * q2
        fc[n, 24] = C(inv_or(a0, zero))
        fc[n, 25] = C(inv_or(a1, zero))
        fc[n, 26] = C(inv_or(a2, zero))
        degenerate = zero
        if wp.abs(det) < eps:
            degenerate = one
        fc[n, 27] = C(degenerate)

    @wp.kernel(enable_backward=False, module="unique")
    def forward(
        xs: wp.array(dtype=C),
        ys: wp.array(dtype=C),
        fc: wp.array2d(dtype=C),
        front: wp.array(dtype=wp.int32),
        tex: wp.array3d(dtype=C),
        pr: wp.array2d(dtype=wp.int32),
        tile_start: wp.array(dtype=wp.int32),
        tile_faces: wp.array(dtype=wp.int32),
        tile: int,
        ntx: int,
        nt: int,
        nf: int,
        dist_id: int,
        rgb_id: int,
        alpha_id: int,
        tex_id: int,
        r: int,
        fill_back: int,
        sigma: C,
        theta: C,
        near: C,
        far: C,
        inv_scale: C,
        zp_bg: C,
        bg0: C,
        bg1: C,
        bg2: C,
        out: wp.array4d(dtype=C),
        state: wp.array4d(dtype=C),
        winner: wp.array3d(dtype=wp.int32),
    ):
        """One pixel per thread. out: [B, 4, H, W]; state: [B, 4, H, W] (alpha accumulator —
        Π(1 - D) for 'prod', Σ D for 'sum', 0/1 for 'hard' — reference log D, reference depth,
        softmax denominator); winner: [B, H, W] flat z-buffer face or -1."""
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
        px = xs[col]
        py = ys[row]
        zero = C(0.0)
        one = C(1.0)
        acc = zero
        if alpha_id == 2:
            acc = one  # prod: transmittance Π(1 - D)
        ref_ld = zero
        ref_zp = zp_bg
        den = one
        num0 = bg0
        num1 = bg1
        num2 = bg2
        zbuf = zero
        win = wp.int32(-1)  # a dynamic variable (a literal would be a constant to Warp)
        win0 = bg0
        win1 = bg1
        win2 = bg2
        for e in range(tile_start[job], tile_start[job + 1]):
            n = tile_faces[e]
            if col < pr[n, 0] or col > pr[n, 1] or row < pr[n, 2] or row > pr[n, 3]:
                continue
            w0, w1, w2, keep, x, _edge = coverage(fc, n, px, py, dist_id, theta, sigma)
            if keep == 0:
                continue
            # ee = e^-|x| gives D = sigmoid(x), 1 - D and log D with one exp.
            ee = zero
            if dist_id != 0:
                ee = exp_neg_abs(x)
            if alpha_id == 2:
                if dist_id == 0:
                    acc = zero
                elif x >= zero:
                    acc = acc * (ee / (one + ee))
                else:
                    acc = acc * (one / (one + ee))
            elif alpha_id == 1:
                if dist_id == 0:
                    acc = acc + one
                elif x >= zero:
                    acc = acc + one / (one + ee)
                else:
                    acc = acc + ee / (one + ee)
            elif dist_id == 0 or x > zero:  # D > 0.5
                acc = one
            if fill_back == 0 and front[n] == 0:
                continue
            if rgb_id == 0 and not (in01(w0) and in01(w1) and in01(w2)):
                continue  # the z-buffer only takes faces covering the pixel centre
            c0, c1, c2, inv_z = depth_only(fc, n, w0, w1, w2)
            zp = one / inv_z
            if not (zp >= near and zp <= far):
                continue
            col0, col1, col2 = colors(tex, n, tex_id, r, c0, c1, c2)
            if rgb_id == 0:
                if win < 0 or zp < zbuf:
                    zbuf = zp
                    win = n
                    win0 = col0
                    win1 = col1
                    win2 = col2
                continue
            ld = zero
            if dist_id != 0:
                ld = wp.min(x, zero) - wp.log(one + ee)
            delta = (ld - ref_ld) + (ref_zp - zp) * inv_scale
            if delta > zero:
                scale = wp.exp(-delta)
                den = den * scale + one
                num0 = num0 * scale + col0
                num1 = num1 * scale + col1
                num2 = num2 * scale + col2
                ref_ld = ld
                ref_zp = zp
            else:
                ew = wp.exp(delta)
                den = den + ew
                num0 = num0 + ew * col0
                num1 = num1 + ew * col1
                num2 = num2 + ew * col2
        alpha = acc
        if alpha_id == 2:
            alpha = one - acc
        elif alpha_id == 1:
            alpha = acc / C(nf)
        out[b, 3, row, col] = alpha
        state[b, 0, row, col] = acc
        if rgb_id == 1:
            out[b, 0, row, col] = num0 / den
            out[b, 1, row, col] = num1 / den
            out[b, 2, row, col] = num2 / den
            state[b, 1, row, col] = ref_ld
            state[b, 2, row, col] = ref_zp
            state[b, 3, row, col] = den
        else:
            out[b, 0, row, col] = win0
            out[b, 1, row, col] = win1
            out[b, 2, row, col] = win2
            winner[b, row, col] = win

    @wp.kernel(enable_backward=False, module="unique")
    def backward(
        xs: wp.array(dtype=C),
        ys: wp.array(dtype=C),
        fc: wp.array2d(dtype=C),
        front: wp.array(dtype=wp.int32),
        tex: wp.array3d(dtype=C),
        pr: wp.array2d(dtype=wp.int32),
        entry_face: wp.array(dtype=wp.int32),
        entry_tile: wp.array(dtype=wp.int32),
        tile: int,
        ntx: int,
        nf: int,
        dist_id: int,
        rgb_id: int,
        alpha_id: int,
        tex_id: int,
        r: int,
        fill_back: int,
        need_v: int,
        need_t: int,
        deterministic: int,
        sigma: C,
        theta: C,
        near: C,
        far: C,
        inv_scale: C,
        out: wp.array4d(dtype=C),
        state: wp.array4d(dtype=C),
        winner: wp.array3d(dtype=wp.int32),
        grad_out: wp.array4d(dtype=C),
        slots: wp.array2d(dtype=C),
        per_face: wp.array2d(dtype=C),
    ):
        """One (face, tile) entry per thread: its gradient row (see NUM_VERTEX_GRADS) goes to
        ``slots[entry]`` (deterministic) or is added atomically to ``per_face[face]``."""
        g = wp.tid()
        n = entry_face[g]
        t = entry_tile[g]
        b = n // nf
        h = ys.shape[0]
        w = xs.shape[0]
        ty0 = (t // ntx) * tile
        tx0 = (t % ntx) * tile
        ra = wp.max(pr[n, 2], ty0)
        rb = wp.min(pr[n, 3], wp.min(h, ty0 + tile) - 1)
        ca = wp.max(pr[n, 0], tx0)
        cb = wp.min(pr[n, 1], wp.min(w, tx0 + tile) - 1)
        colour_face = fill_back != 0 or front[n] != 0
        zero = C(0.0)
        one = C(1.0)
        two = C(2.0)
        # Anchors of the barycentrics (w_k vanishes at vertex k + 1).
        ax0 = fc[n, 11]
        ay0 = fc[n, 12]
        ax1 = fc[n, 13]
        ay1 = fc[n, 14]
        ax2 = fc[n, 9]
        ay2 = fc[n, 10]
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
        for row in range(ra, rb + 1):
            py = ys[row]
            for col in range(ca, cb + 1):
                px = xs[col]
                w0, w1, w2, keep, x, edge = coverage(fc, n, px, py, dist_id, theta, sigma)
                if keep == 0:
                    continue
                ga = grad_out[b, 3, row, col]
                gx = zero  # dL/dx
                if dist_id != 0:
                    if alpha_id == 2:
                        gx = gx + ga * state[b, 0, row, col] * sigmoid(x)  # dα/dx = Π(1 - D)·D
                    elif alpha_id == 1:
                        d = sigmoid(x)
                        gx = gx + ga * d * (one - d) / C(nf)
                gw0 = zero
                gw1 = zero
                gw2 = zero
                colour_ok = colour_face and (rgb_id == 1 or n == winner[b, row, col])
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
                    colour_ok = zp >= near and zp <= far
                gcol0 = zero
                gcol1 = zero
                gcol2 = zero
                gzp = zero
                if colour_ok and rgb_id == 1:
                    gr0 = grad_out[b, 0, row, col]
                    gr1 = grad_out[b, 1, row, col]
                    gr2 = grad_out[b, 2, row, col]
                    ld = zero
                    if dist_id != 0:
                        ld = wp.min(x, zero) - wp.log(one + exp_neg_abs(x))
                    wj = wp.exp((ld - state[b, 1, row, col]) + (state[b, 2, row, col] - zp) * inv_scale)
                    wj = wj / state[b, 3, row, col]
                    col0, col1, col2 = colors(tex, n, tex_id, r, c0, c1, c2)
                    glogit = wj * (
                        gr0 * (col0 - out[b, 0, row, col])
                        + gr1 * (col1 - out[b, 1, row, col])
                        + gr2 * (col2 - out[b, 2, row, col])
                    )
                    gcol0 = gr0 * wj
                    gcol1 = gr1 * wj
                    gcol2 = gr2 * wj
                    if dist_id != 0:
                        gx = gx + glogit * sigmoid(-x)
                    gzp = -glogit * inv_scale
                elif colour_ok:
                    gcol0 = grad_out[b, 0, row, col]
                    gcol1 = grad_out[b, 1, row, col]
                    gcol2 = grad_out[b, 2, row, col]
                has_gcol = gcol0 != zero or gcol1 != zero or gcol2 != zero
                if need_t != 0 and has_gcol:
                    if tex_id == 1:
                        cs = wp.vector(c0, c1, c2)
                        for k in range(3):
                            ck = cs[k]
                            j = g_tex + 3 * k
                            if deterministic != 0:
                                slots[g, j] = slots[g, j] + gcol0 * ck
                                slots[g, j + 1] = slots[g, j + 1] + gcol1 * ck
                                slots[g, j + 2] = slots[g, j + 2] + gcol2 * ck
                            else:
                                wp.atomic_add(per_face, n, j, gcol0 * ck)
                                wp.atomic_add(per_face, n, j + 1, gcol1 * ck)
                                wp.atomic_add(per_face, n, j + 2, gcol2 * ck)
                    else:
                        j = g_tex + 3 * texel(c0, c1, r)
                        if deterministic != 0:
                            slots[g, j] = slots[g, j] + gcol0
                            slots[g, j + 1] = slots[g, j + 1] + gcol1
                            slots[g, j + 2] = slots[g, j + 2] + gcol2
                        else:
                            wp.atomic_add(per_face, n, j, gcol0)
                            wp.atomic_add(per_face, n, j + 1, gcol1)
                            wp.atomic_add(per_face, n, j + 2, gcol2)
                if need_v == 0:
                    continue
                # ---- colour and depth -> clipped barycentrics and depths ------------------
                gc0 = zero
                gc1 = zero
                gc2 = zero
                if tex_id == 1 and has_gcol:
                    gc0 = gcol0 * tex[n, 0, 0] + gcol1 * tex[n, 0, 1] + gcol2 * tex[n, 0, 2]
                    gc1 = gcol0 * tex[n, 1, 0] + gcol1 * tex[n, 1, 1] + gcol2 * tex[n, 1, 2]
                    gc2 = gcol0 * tex[n, 2, 0] + gcol1 * tex[n, 2, 1] + gcol2 * tex[n, 2, 2]
                if gzp != zero:
                    ginvz = -gzp * zp * zp
                    iz0 = fc[n, 15]
                    iz1 = fc[n, 16]
                    iz2 = fc[n, 17]
                    gc0 = gc0 + ginvz * iz0
                    gc1 = gc1 + ginvz * iz1
                    gc2 = gc2 + ginvz * iz2
                    gz0 = gz0 - ginvz * c0 * iz0 * iz0 * fc[n, 18]
                    gz1 = gz1 - ginvz * c1 * iz1 * iz1 * fc[n, 19]
                    gz2 = gz2 - ginvz * c2 * iz2 * iz2 * fc[n, 20]
                if gc0 != zero or gc1 != zero or gc2 != zero:
                    dot = gc0 * u0 + gc1 * u1 + gc2 * u2
                    gs = zero
                    if s_raw >= C(w_sum_eps):
                        gs = -dot / (s * s)
                    if in01(w0):
                        gw0 = gw0 + gc0 / s + gs
                    if in01(w1):
                        gw1 = gw1 + gc1 / s + gs
                    if in01(w2):
                        gw2 = gw2 + gc2 / s + gs
                # ---- coverage ----------------------------------------------------------------
                if gx != zero:
                    if dist_id == 1:
                        m = wp.min(w0, wp.min(w1, w2))
                        gm = gx * two * wp.abs(m) / sigma
                        if w0 == m:
                            gw0 = gw0 + gm
                        elif w1 == m:
                            gw1 = gw1 + gm
                        else:
                            gw2 = gw2 + gm
                    elif dist_id == 2:
                        inside = w0 > zero and w0 < one and w1 > zero and w1 < one and w2 > zero and w2 < one
                        gd2 = -gx / sigma
                        if inside:
                            gd2 = gx / sigma
                        k1 = (edge + 1) % 3
                        ax = fc[n, 9 + 2 * edge]
                        ay = fc[n, 10 + 2 * edge]
                        ex = fc[n, 9 + 2 * k1] - ax
                        ey = fc[n, 10 + 2 * k1] - ay
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
            for j in range(18):
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
        eps = wp.float64(det_eps)
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
        grad_fv[n, 0, 0] = C(gx0 + wp.float64(per_face[n, 9]))
        grad_fv[n, 0, 1] = C(gy0 + wp.float64(per_face[n, 10]))
        grad_fv[n, 1, 0] = C(gx1 + wp.float64(per_face[n, 11]))
        grad_fv[n, 1, 1] = C(gy1 + wp.float64(per_face[n, 12]))
        grad_fv[n, 2, 0] = C(gx2 + wp.float64(per_face[n, 13]))
        grad_fv[n, 2, 1] = C(gy2 + wp.float64(per_face[n, 14]))
        grad_fv[n, 0, 2] = per_face[n, 15]
        grad_fv[n, 1, 2] = per_face[n, 16]
        grad_fv[n, 2, 2] = per_face[n, 17]

    return SimpleNamespace(prepare=prepare, forward=forward, backward=backward, reduce=reduce, chain=chain)
