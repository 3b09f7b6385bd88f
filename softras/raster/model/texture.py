"""UV texture sampling of one (pixel, face) pair, written once.

A face carries one (u, v) per corner and a material (one texture image and its mip levels,
see :mod:`softras.raster.uv`). At a pair, the kernels (every backend) call these functions in the
restricted style of :mod:`.ops`; only the memory reads of the texels are the backend's own.

* :func:`perspective_weights`: the perspective-correct barycentrics b_k = c_k·iz_k / Σ_m c_m·iz_m
  of the pair's clipped, renormalised screen barycentrics c_k and the corners' inverse depths
  iz_k = 1/z_k (vertex attributes use them under ``perspective_correct=True``);
* :func:`uv_at`: (u, v) = Σ_k b_k·(u_k, v_k), the UVs interpolated perspective-correct.
* :func:`mip_level`: the level of detail λ = ½·log₂ max(ρ_x², ρ_y²) (the OpenGL rule), where
  ρ_x² = |∂(u·W₀, v·H₀)/∂(pixel x)|² is the squared length of one pixel step in x measured in
  texels of the base level W₀ × H₀, and likewise for y. The derivatives are analytic, from the
  face's plane at the pair (as nvdiffrast's ``uv_da``): with w_k = a_k·x + b_k·y + e_k the
  unclipped barycentrics (x, y in NDC), ∂u/∂x = Σ_k a_k·iz_k·(u_k − u) / Σ_m c_m·iz_m.
* :func:`mip_blend`: the two levels a trilinear lookup blends and the weight of the upper one.
* :func:`texel_xy` and :func:`wrap_index`: where (u, v) falls in a W × H level, and which texel
  an integer position reads under ``repeat`` or ``clamp``.

Each forward function that the kernels differentiate has its vector-Jacobian product beside it
(``*_vjp``), exact; the tests check them against autograd of the forward functions.

Conventions: (u, v) = (0, 0) is the bottom-left corner of the image, (1, 1) the top-right (OBJ,
and glTF after trimesh's flip); image row 0 is the top. Texel centres sit at half-integers of
u·W and v·H, so texel (i, j) (column i, row j) is read at x = u·W − ½ = i and
y = (1 − v)·H − ½ = j.
"""

from __future__ import annotations

__all__ = ["MODEL_FUNCTIONS"]

m = None  # the operations namespace, bound per backend by ops.bind_sources

LN2 = 0.6931471805599453


def _reciprocal(z):
    """1 / z, 0 where z = 0 (both sides finite, so a masked gradient stays finite)."""
    ok = z != 0.0
    return m.where(ok, 1.0 / m.where(ok, z, 1.0), 0.0)


def perspective_weights(c0, c1, c2, iz0, iz1, iz2):
    """(b0, b1, b2): the perspective-correct barycentrics b_k = c_k·iz_k / Σ_m c_m·iz_m of the
    pair's clipped, renormalised screen barycentrics c_k (0 where Σ c_m·iz_m = 0)."""
    r = _reciprocal(c0 * iz0 + c1 * iz1 + c2 * iz2)
    return c0 * iz0 * r, c1 * iz1 * r, c2 * iz2 * r


def perspective_weights_vjp(c0, c1, c2, iz0, iz1, iz2, gb0, gb1, gb2):
    """The gradients (gc0, gc1, gc2, giz0, giz1, giz2) of :func:`perspective_weights` for upstream
    (gb0, gb1, gb2): with Z = Σ c_m·iz_m, ∂L/∂(c_k·iz_k) = (gb_k − Σ_m gb_m·b_m) / Z."""
    r = _reciprocal(c0 * iz0 + c1 * iz1 + c2 * iz2)
    b0, b1, b2 = c0 * iz0 * r, c1 * iz1 * r, c2 * iz2 * r
    mean = gb0 * b0 + gb1 * b1 + gb2 * b2
    h0, h1, h2 = (gb0 - mean) * r, (gb1 - mean) * r, (gb2 - mean) * r
    return h0 * iz0, h1 * iz1, h2 * iz2, h0 * c0, h1 * c1, h2 * c2


def uv_at(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2):
    """(u, v) of the pair: the corners' UVs interpolated perspective-correct (module docstring)."""
    b0, b1, b2 = perspective_weights(c0, c1, c2, iz0, iz1, iz2)
    return b0 * u0 + b1 * u1 + b2 * u2, b0 * v0 + b1 * v1 + b2 * v2


def uv_at_vjp(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2, gu, gv):
    """The gradients of :func:`uv_at` for upstream (gu, gv): (gc0, gc1, gc2, giz0, giz1, giz2,
    gu0, gu1, gu2, gv0, gv1, gv2)."""
    b0, b1, b2 = perspective_weights(c0, c1, c2, iz0, iz1, iz2)
    gc0, gc1, gc2, giz0, giz1, giz2 = perspective_weights_vjp(
        c0, c1, c2, iz0, iz1, iz2, gu * u0 + gv * v0, gu * u1 + gv * v1, gu * u2 + gv * v2
    )
    return (
        gc0, gc1, gc2,
        giz0, giz1, giz2,
        gu * b0, gu * b1, gu * b2,
        gv * b0, gv * b1, gv * b2,
    )  # fmt: skip


def _footprint2(k0, k1, k2, r, du0, du1, du2, dv0, dv1, dv2, su, sv):
    """ρ² = (su·∂u)² + (sv·∂v)² of one screen direction, ∂u = r·Σ k_j·(u_j − u) (k_j = a_j·iz_j),
    and the two derivatives ∂u, ∂v."""
    ju = r * (k0 * du0 + k1 * du1 + k2 * du2)
    jv = r * (k0 * dv0 + k1 * dv1 + k2 * dv2)
    return (su * ju) * (su * ju) + (sv * jv) * (sv * jv), ju, jv


def mip_level(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2, a0, a1, a2, b0, b1, b2, sxu, sxv, syu, syv):
    """λ = ½·log₂ max(ρ_x², ρ_y²) of the pair, unclamped (module docstring).

    (a_k, b_k): ∂w_k/∂x and ∂w_k/∂y in NDC, the first two columns of the face's barycentric
    matrix. sxu = W₀·(NDC width of a pixel), sxv = H₀·(NDC width of a pixel), syu = W₀·(NDC
    height of a pixel), syv = H₀·(NDC height of a pixel): they turn NDC derivatives of (u, v)
    into texels per pixel. ρ² is floored at 1e-300 (λ ≈ −498, clamped to level 0 anyway)."""
    u, v = uv_at(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2)
    r = _reciprocal(c0 * iz0 + c1 * iz1 + c2 * iz2)
    du0, du1, du2 = u0 - u, u1 - u, u2 - u
    dv0, dv1, dv2 = v0 - v, v1 - v, v2 - v
    rx, _, _ = _footprint2(a0 * iz0, a1 * iz1, a2 * iz2, r, du0, du1, du2, dv0, dv1, dv2, sxu, sxv)
    ry, _, _ = _footprint2(b0 * iz0, b1 * iz1, b2 * iz2, r, du0, du1, du2, dv0, dv1, dv2, syu, syv)
    rho2 = m.maximum(m.where(rx >= ry, rx, ry), 1e-300)
    return 0.5 * m.log(rho2) / LN2


def mip_level_vjp(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2, a0, a1, a2, b0, b1, b2, sxu, sxv, syu, syv, glam):
    """The gradients of :func:`mip_level` for upstream ``glam``: (gc0, gc1, gc2, giz0, giz1, giz2,
    gu0, gu1, gu2, gv0, gv1, gv2, ga0, ga1, ga2, gb0, gb1, gb2) (none for the scales).

    Only the larger of ρ_x², ρ_y² (x on a tie) carries the gradient, and none where ρ² is floored.
    For that direction's weights k_j = a_j·iz_j (or b_j·iz_j) and derivatives J_u = r·Σ k_j·(u_j − u),
    J_v likewise, r = 1/Z: ∂J_u/∂a_j = r·iz_j·(u_j − u), ∂J_u/∂u_j = r·k_j directly, ∂J_u/∂u = −r·Σk,
    and Z = Σ c_m·iz_m gives ∂J_u/∂c_j = −J_u·r·iz_j, ∂J_u/∂iz_j = r·a_j·(u_j − u) − J_u·r·c_j; the
    gradients reaching (u, v) then go through :func:`uv_at_vjp`."""
    u, v = uv_at(c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2)
    r = _reciprocal(c0 * iz0 + c1 * iz1 + c2 * iz2)
    du0, du1, du2 = u0 - u, u1 - u, u2 - u
    dv0, dv1, dv2 = v0 - v, v1 - v, v2 - v
    rx, jxu, jxv = _footprint2(a0 * iz0, a1 * iz1, a2 * iz2, r, du0, du1, du2, dv0, dv1, dv2, sxu, sxv)
    ry, jyu, jyv = _footprint2(b0 * iz0, b1 * iz1, b2 * iz2, r, du0, du1, du2, dv0, dv1, dv2, syu, syv)
    use_x = rx >= ry
    rho2 = m.where(use_x, rx, ry)
    live = rho2 > 1e-300
    g_rho2 = m.where(live, glam * 0.5 / (LN2 * m.where(live, rho2, 1.0)), 0.0)
    gx = m.where(use_x, g_rho2, 0.0)
    gy = m.where(use_x, 0.0, g_rho2)
    # dL/dJ of each direction's two derivatives
    gjxu = gx * 2.0 * sxu * sxu * jxu
    gjxv = gx * 2.0 * sxv * sxv * jxv
    gjyu = gy * 2.0 * syu * syu * jyu
    gjyv = gy * 2.0 * syv * syv * jyv
    # J = r·Σ k_j·(d_j): per corner, the weight's gradient e_j = r·(gJu·du_j + gJv·dv_j) of k_j
    ex0 = r * (gjxu * du0 + gjxv * dv0)
    ex1 = r * (gjxu * du1 + gjxv * dv1)
    ex2 = r * (gjxu * du2 + gjxv * dv2)
    ey0 = r * (gjyu * du0 + gjyv * dv0)
    ey1 = r * (gjyu * du1 + gjyv * dv1)
    ey2 = r * (gjyu * du2 + gjyv * dv2)
    kx0, kx1, kx2 = a0 * iz0, a1 * iz1, a2 * iz2
    ky0, ky1, ky2 = b0 * iz0, b1 * iz1, b2 * iz2
    # dL/dZ through r = 1/Z: every J = r·(...) gives −J·r·gJ
    gz = -r * (gjxu * jxu + gjxv * jxv + gjyu * jyu + gjyv * jyv)
    # the corner UVs directly (the d_j = u_j − u terms), and (u, v) through every d_j
    gu0 = r * (gjxu * kx0 + gjyu * ky0)
    gu1 = r * (gjxu * kx1 + gjyu * ky1)
    gu2 = r * (gjxu * kx2 + gjyu * ky2)
    gv0 = r * (gjxv * kx0 + gjyv * ky0)
    gv1 = r * (gjxv * kx1 + gjyv * ky1)
    gv2 = r * (gjxv * kx2 + gjyv * ky2)
    gu = -(gu0 + gu1 + gu2)
    gv = -(gv0 + gv1 + gv2)
    pc0, pc1, pc2, piz0, piz1, piz2, pu0, pu1, pu2, pv0, pv1, pv2 = uv_at_vjp(
        c0, c1, c2, iz0, iz1, iz2, u0, u1, u2, v0, v1, v2, gu, gv
    )
    return (
        pc0 + gz * iz0, pc1 + gz * iz1, pc2 + gz * iz2,
        piz0 + gz * c0 + ex0 * a0 + ey0 * b0,
        piz1 + gz * c1 + ex1 * a1 + ey1 * b1,
        piz2 + gz * c2 + ex2 * a2 + ey2 * b2,
        pu0 + gu0, pu1 + gu1, pu2 + gu2,
        pv0 + gv0, pv1 + gv1, pv2 + gv2,
        ex0 * iz0, ex1 * iz1, ex2 * iz2,
        ey0 * iz0, ey1 * iz1, ey2 * iz2,
    )  # fmt: skip


def mip_blend(lam, count):
    """(l0, l1, t, dt): a trilinear lookup of level λ among ``count`` levels blends levels l0 and
    l1 = min(l0 + 1, count − 1) as (1 − t)·T_l0 + t·T_l1, with λ clamped to [0, count − 1],
    l0 = ⌊λ⌋ and t = λ − l0; dt = ∂t/∂λ (1 strictly inside the range, else 0). Levels as floats."""
    top = count - 1.0
    clamped = m.minimum(m.maximum(lam, 0.0), top)
    l0 = m.floor(clamped)
    l1 = m.minimum(l0 + 1.0, top)
    inside = m.both(lam > 0.0, lam < top)
    return l0, l1, clamped - l0, m.where(inside, 1.0, 0.0)


def texel_xy(u, v, width, height):
    """(x, y): (u, v) in texel units of a ``width`` × ``height`` level, texel centres at integers
    (column x from the left, row y from the top)."""
    return u * width - 0.5, (1.0 - v) * height - 0.5


def wrap_index(i, size, repeat):
    """The texel an integer position ``i`` (a float) reads along an axis of ``size`` texels:
    i mod size (``repeat`` > 0) or i clamped to [0, size − 1] (clamp to edge)."""
    return m.where(repeat > 0.0, i - size * m.floor(i / size), m.minimum(m.maximum(i, 0.0), size - 1.0))


MODEL_FUNCTIONS = (
    "_reciprocal",
    "perspective_weights",
    "perspective_weights_vjp",
    "uv_at",
    "uv_at_vjp",
    "_footprint2",
    "mip_level",
    "mip_level_vjp",
    "mip_blend",
    "texel_xy",
    "wrap_index",
)
