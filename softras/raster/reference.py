"""The reference backend: the soft rasterizer in plain PyTorch, on any device.

It is the oracle every faster backend is tested against, so it favours clarity over speed,
but it is not naive: work and memory grow with the number of (pixel, face) *pairs* inside
each face's grown bounding box, never with pixels × faces.

Algorithm (all steps vectorised), with every rule read from :mod:`softras.raster.contract`:

1. Per face: the 2-D barycentric matrix (adjugate / det, |det| clamped to at least
   ``DET_EPS``), the exact pixel range of the screen box grown by the cull radius √θ
   (:func:`~softras.raster.contract.pixel_ranges`), the front-facing flag.
2. Enumerate candidate pairs face by face (every pixel of the range), in chunks of image
   rows so that a chunk holds at most ``max_pairs`` pairs.
3. Per pair: barycentrics, coverage D (hard / barycentric / euclidean), the cull test, the
   perspective-correct depth zp, the attribute values (surface texels, interpolated vertex
   attributes, and zp itself for the soft depth).
4. Per pixel: alpha (hard / sum / prod), the channels and soft depth (z-buffer or depth
   softmax) by scatter reductions, and the z-buffer outputs (face id, barycentrics, depth).

Every step is differentiable by autograd, so gradients are exact (including how depth and
vertex attributes move with x, y). When gradients are needed each chunk runs under
:func:`torch.utils.checkpoint.checkpoint`, so the backward recomputes a chunk's pair terms
instead of keeping all of them alive: peak memory is one chunk's pairs plus O(B·S²·C + B·F).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.checkpoint import checkpoint

from . import model
from .contract import (
    DET_EPS,
    EDGE_SNAP,
    W_SUM_EPS,
    Z_EPS,
    ZBUFFER_RTOL,
    PixelRanges,
    RasterInputs,
    RasterResult,
    depth_range,
    pixel_centers,
    pixel_ranges,
    softmax_constants,
    texel_index,
)
from .model import torch_model
from .settings import RasterSettings
from .uv import TextureFilter, UVMaps, level_lookup

__all__ = ["DEFAULT_MAX_PAIRS", "count_box_pairs", "count_kept_pairs", "rasterize", "rasterize_reference"]

DEFAULT_MAX_PAIRS = 1 << 20


class _Wanted(NamedTuple):
    """What one call computes besides alpha."""

    num_surface: int  # Cs
    num_vertex: int  # Cv
    depth: bool  # the soft depth, one more aggregated value per pair
    zbuffer: bool  # face id, barycentrics and depth of the z-buffer winner
    num_faces: int  # F
    background: tuple[float, ...]  # Cs + Cv + Cu values
    num_uv: int = 0  # Cu: the UV texture's channels


def face_matrices(face_vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-face differentiable quantities of [B, F, 3, 3] screen-space triangles.

    Returns (all [B·F, ...]): ``inv`` [.., 3, 3] rows (P_k, Q_k, R_k) of the barycentric matrix
    (w_k = P_k x + Q_k y + R_k), ``xy`` [.., 3, 2] and ``z`` [.., 3].
    """
    fv = face_vertices.reshape(-1, 3, 3)
    x0, y0 = fv[:, 0, 0], fv[:, 0, 1]
    x1, y1 = fv[:, 1, 0], fv[:, 1, 1]
    x2, y2 = fv[:, 2, 0], fv[:, 2, 1]
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    det = torch.where(det > 0, det.clamp(min=DET_EPS), det.clamp(max=-DET_EPS))
    adj = torch.stack(
        [
            torch.stack([y1 - y2, x2 - x1, x1 * y2 - x2 * y1], -1),
            torch.stack([y2 - y0, x0 - x2, x2 * y0 - x0 * y2], -1),
            torch.stack([y0 - y1, x1 - x0, x0 * y1 - x1 * y0], -1),
        ],
        dim=1,
    )
    return adj / det[:, None, None], fv[:, :, :2], fv[:, :, 2]


def count_box_pairs(face_vertices: torch.Tensor, settings: RasterSettings) -> int:
    """Number of (pixel, face) pairs whose pixel centre lies inside the face's grown box.

    This is the work a binned backend must do (every pair it evaluates), exactly as the
    contract's pixel-range rule decides it. face_vertices: [B, F, 3, 3].
    """
    with torch.no_grad():
        r = pixel_ranges(face_vertices.detach(), settings.cull_radius, (settings.image_height, settings.image_width))
        return int(((r.c1 - r.c0 + 1) * (r.r1 - r.r0 + 1)).sum())


def _plan_chunks(
    units0: torch.Tensor, units1: torch.Tensor, width: torch.Tensor, num_units: int, max_pairs: int
) -> list[tuple[int, int]]:
    """Split flattened rows [0, num_units) into consecutive chunks of at most ~max_pairs pairs."""
    diff = torch.zeros(num_units + 1, dtype=torch.long, device=width.device)
    diff.index_add_(0, units0, width)
    diff.index_add_(0, units1 + 1, -width)
    per_row = diff[:-1].cumsum(0).cpu()
    chunks: list[tuple[int, int]] = []
    start, acc = 0, 0
    for u, n in enumerate(per_row.tolist()):
        if u > start and acc + n > max_pairs:
            chunks.append((start, u))
            start, acc = u, 0
        acc += n
    chunks.append((start, num_units))
    return chunks


def _enumerate_pairs(
    faces: torch.Tensor, q0: torch.Tensor, q1: torch.Tensor, c0: torch.Tensor, c1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (face, flattened row, column) in the given boxes. Returns [N] long tensors."""
    wid = c1 - c0 + 1
    counts = wid * (q1 - q0 + 1)
    owner = torch.repeat_interleave(torch.arange(faces.numel(), device=faces.device), counts)
    local = torch.arange(owner.numel(), device=faces.device) - (counts.cumsum(0) - counts)[owner]
    row = q0[owner] + local // wid[owner]
    col = c0[owner] + local % wid[owner]
    return faces[owner], row, col


def _pair_barycentrics(inv: torch.Tensor, pair_face: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Barycentrics [N, 3] of every pair, w = inv · (x, y, 1), snapped to exactly 0 or 1 within
    ``EDGE_SNAP`` (pixel centres on an edge or a vertex; the gradient is kept)."""
    inv_p = inv[pair_face]
    w = inv_p[:, :, 0] * px[:, None] + inv_p[:, :, 1] * py[:, None] + inv_p[:, :, 2]
    return w - torch.where(w.abs() < EDGE_SNAP, w, torch.where((w - 1).abs() < EDGE_SNAP, w - 1, 0)).detach()


def _signed_coverage(
    w: torch.Tensor, px: torch.Tensor, py: torch.Tensor, xy: torch.Tensor, s: RasterSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep mask and z = sign·x/σ per pair (x = d² or d; D = F(z)).

    For ``hard`` the returned z is +inf inside (D = 1) and pairs outside are dropped.
    """
    if s.dist_func == "hard":
        inside = ((w >= 0) & (w <= 1)).all(-1)
        return inside, torch.full_like(px, math.inf)
    if s.dist_func == "barycentric":
        m = w.amin(-1)
        signed_d2 = m * m.abs()
        keep = -signed_d2.detach() < s.cull_threshold
        return keep, _scaled(signed_d2, s)
    # Euclidean: squared distance from the pixel to the closed triangle (min over the edges).
    p = torch.stack([px, py], -1)[:, None, :]  # [N, 1, 2]
    a = xy
    e = torch.roll(xy, -1, dims=1) - a  # edges v0->v1, v1->v2, v2->v0
    e_len2 = (e * e).sum(-1)
    t = ((p - a) * e).sum(-1) / torch.where(e_len2 > 0, e_len2, torch.ones_like(e_len2))
    t = t.clamp(0, 1)
    diff = p - a - t[..., None] * e
    d2 = (diff * diff).sum(-1).amin(-1)
    inside = ((w > 0) & (w < 1)).all(-1)
    keep = inside | (d2.detach() < s.cull_threshold)
    return keep, _scaled(torch.where(inside, d2, -d2), s)


def _scaled(signed_d2: torch.Tensor, s: RasterSettings) -> torch.Tensor:
    """z from sign·d²: sign·d²/σ, or sign·d/σ (``squared_distance=False``; no gradient at d = 0)."""
    if s.squared_distance:
        return signed_d2 / s.sigma_val
    a = signed_d2.abs()
    positive = a > 0
    root = torch.where(positive, torch.where(positive, a, torch.ones_like(a)).sqrt(), torch.zeros_like(a))
    return torch.sign(signed_d2) * root / s.sigma_val


class _Coverage(torch.autograd.Function):
    """D = F(z) of the model's distribution (float64 inside), dD/dz = f."""

    @staticmethod
    def forward(ctx, z, code, shape, shift):  # type: ignore[override]
        d, _, f = torch_model()["evaluate"](code, z.double(), shape, shift)
        ctx.save_for_backward(f)
        return d.to(z.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (f,) = ctx.saved_tensors
        return (grad.double() * f).to(grad.dtype), None, None, None


class _LogCoverage(torch.autograd.Function):
    """log D of the model's distribution, d log D/dz = f/D (0 where D = 0)."""

    @staticmethod
    def forward(ctx, z, code, shape, shift):  # type: ignore[override]
        d, _, f = torch_model()["evaluate"](code, z.double(), shape, shift)
        ctx.save_for_backward(torch.where(d > 0, f / torch.where(d > 0, d, torch.ones_like(d)), torch.zeros_like(d)))
        return torch.log(d).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (ratio,) = ctx.saved_tensors
        return (grad.double() * ratio).to(grad.dtype), None, None, None


class _TConormAlpha(torch.autograd.Function):
    """α per pixel = the Archimedean T-conorm ``code`` folded over the pairs z [N] at pixels pix [N]:
    α = α(G), G = Σ t(S_j); ∂α/∂z_j = α'(G)·∂t(S_j)/∂z_j from the model, exact from the final G."""

    @staticmethod
    def forward(ctx, z, pix, num_pixels, dist, tconorm, shape, shift, p):  # type: ignore[override]
        fns = torch_model()
        d, s, f = fns["evaluate"](dist, z.double(), shape, shift)
        g = torch.zeros(num_pixels, dtype=torch.float64, device=z.device).index_add(
            0, pix, fns["term"](tconorm, d, s, p)
        )
        ctx.save_for_backward(fns["pair_gradient"](tconorm, g[pix], d, s, f, p), pix)
        return fns["alpha"](tconorm, g, p).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        pair_gradient, pix = ctx.saved_tensors
        return (grad.double()[pix] * pair_gradient).to(grad.dtype), *([None] * 7)


def _coverage(z: torch.Tensor, s: RasterSettings) -> torch.Tensor:
    """D of every pair from its z (differentiable)."""
    if s.softras_coverage:
        return torch.sigmoid(z)
    return _Coverage.apply(z, *s.family[:3])


def _log_coverage(z: torch.Tensor, s: RasterSettings) -> torch.Tensor:
    """log D of every pair (the softmax's weights); 0 for ``hard``."""
    if s.dist_func == "hard":
        return torch.zeros_like(z)
    if s.softras_coverage:
        return torch.nn.functional.logsigmoid(z)
    return _LogCoverage.apply(z, *s.family[:3])


def _alpha(
    z: torch.Tensor, pix: torch.Tensor, face: torch.Tensor, zeros: torch.Tensor, num_faces: int, s: RasterSettings
) -> torch.Tensor:
    """Alpha [P] of the kept pairs' z [N] at pixels pix [N] (faces face [N])."""
    dtype = zeros.dtype
    if s.dist_func == "hard":  # D ∈ {0, 1}: every aggregation but 'sum' is "any face"
        if s.aggr_func_alpha == "sum":
            return zeros.index_add(0, pix, torch.ones_like(z)) / num_faces
        return (zeros.index_add(0, pix, torch.ones_like(z)) > 0).to(dtype)
    if s.aggr_func_alpha == "prod" and s.softras_coverage:
        # log(1 - D) = logsigmoid(-x): stable where D rounds to 1.
        return -torch.expm1(zeros.index_add(0, pix, torch.nn.functional.logsigmoid(-z)))
    if s.aggr_func_alpha == "sum":
        return zeros.index_add(0, pix, _coverage(z, s)) / num_faces
    if s.aggr_func_alpha == "hard":
        return (zeros.index_add(0, pix, (_coverage(z, s) > 0.5).to(dtype)) > 0).to(dtype)
    if s.aggr_func_alpha == "max":
        d = _coverage(z, s)
        with torch.no_grad():  # the largest D of each pixel, ties to the lowest face
            best = torch.zeros_like(zeros).scatter_reduce(0, pix, d.detach(), reduce="amax", include_self=True)
            at_max = d.detach() == best[pix]
            big = torch.full(zeros.shape, torch.iinfo(torch.long).max, device=zeros.device)
            first = big.scatter_reduce(0, pix, torch.where(at_max, face, big[pix]), reduce="amin", include_self=True)
            winner = (at_max & (face == first[pix])).nonzero().squeeze(1)
        return zeros.index_put((pix[winner],), d[winner])
    dist, shape, shift, p = s.family
    code = model.alpha_code(s.aggr_func_alpha)
    return _TConormAlpha.apply(z, pix, zeros.shape[0], dist, code, shape, shift, p)


def _uv_values(
    maps: UVMaps, face: torch.Tensor, w_clip: torch.Tensor, z_safe: torch.Tensor, inv: torch.Tensor, s: RasterSettings
) -> torch.Tensor:
    """Per-pair UV texture values [N, Cu]: the lookup of the perspective-correct (u, v) of the
    clipped, renormalised barycentrics ``w_clip`` [N, 3] (:mod:`softras.raster.model.texture`)."""
    tm = torch_model()
    iz = 1.0 / z_safe[face]
    corners = maps.uv[face]
    args = (*w_clip.unbind(1), *iz.unbind(1), *corners[..., 0].unbind(1), *corners[..., 1].unbind(1))
    u, v = tm["uv_at"](*args)
    material = maps.material[face]
    base = torch.zeros_like(material)
    if maps.filter != TextureFilter.TRILINEAR:
        return level_lookup(maps, material, base, u, v)
    height0, width0 = (maps.levels[material, 0, k].to(u.dtype) for k in (1, 2))
    px, py = 2.0 / s.image_width, 2.0 / s.image_height
    lam = tm["mip_level"](
        *args,
        *inv[face, :, 0].unbind(1),
        *inv[face, :, 1].unbind(1),
        width0 * px,
        height0 * px,
        width0 * py,
        height0 * py,
    )
    l0, l1, t, _ = tm["mip_blend"](lam, maps.level_count[material].to(u.dtype))
    bilinear = maps._replace(filter=int(TextureFilter.BILINEAR))
    t = t[:, None]
    low = level_lookup(bilinear, material, l0.detach().long(), u, v)
    high = level_lookup(bilinear, material, l1.detach().long(), u, v)
    return (1 - t) * low + t * high


def _pair_values(
    surface: torch.Tensor,
    vertex: torch.Tensor,
    face: torch.Tensor,
    w_clip: torch.Tensor,
    zp: torch.Tensor,
    want: _Wanted,
    uv: tuple[UVMaps | None, torch.Tensor, torch.Tensor, RasterSettings],
) -> torch.Tensor:
    """Per-pair values [N, Cs + Cv + Cu (+ 1 for depth)]: the texel of the clipped barycentrics,
    the interpolated vertex attributes (screen-space or perspective-correct weights), the UV
    texture lookup, then zp. ``uv``: the UV maps (or None), z_safe [B·F, 3], the barycentric
    matrices [B·F, 3, 3] and the settings."""
    values = []
    if want.num_surface:
        t = surface.shape[1]
        with torch.no_grad():
            idx = face * t + texel_index(w_clip[:, 0], w_clip[:, 1], math.isqrt(t))
        values.append(surface.reshape(-1, want.num_surface)[idx])
    maps, z_safe, inv, s = uv
    if want.num_vertex:
        weights = w_clip
        if s.perspective_correct:
            iz = 1.0 / z_safe[face]
            weights = torch.stack(torch_model()["perspective_weights"](*w_clip.unbind(1), *iz.unbind(1)), 1)
        values.append((weights[:, :, None] * vertex[face]).sum(1))
    if want.num_uv:
        values.append(_uv_values(maps, face, w_clip, z_safe, inv, s))
    if want.depth:
        values.append(zp[:, None])
    return values[0] if len(values) == 1 else torch.cat(values, dim=1)


def _zbuffer_winners(zp: torch.Tensor, face: torch.Tensor, pix: torch.Tensor, num_pixels: int) -> torch.Tensor:
    """Indices of the pairs that win their pixel's z-buffer: smallest zp, ties to the lowest
    face. All inputs [N] (no grad); at most one winner per pixel."""
    inf = torch.full((num_pixels,), math.inf, dtype=zp.dtype, device=zp.device)
    zmin = inf.scatter_reduce(0, pix, zp, reduce="amin", include_self=True)
    at_min = zp <= zmin[pix] + zmin[pix].abs() * ZBUFFER_RTOL  # ties (contract.ZBUFFER_RTOL): lowest face
    big = torch.full((num_pixels,), torch.iinfo(torch.long).max, device=zp.device)
    fmin = big.scatter_reduce(0, pix, torch.where(at_min, face, big[pix]), reduce="amin", include_self=True)
    return (at_min & (face == fmin[pix])).nonzero().squeeze(1)


def _softmax(
    values: torch.Tensor,
    log_d: torch.Tensor,
    zp: torch.Tensor,
    pix: torch.Tensor,
    bg: torch.Tensor,
    zeros: torch.Tensor,
    s: RasterSettings,
) -> torch.Tensor:
    """Softmax aggregation [P, K] of per-pair values [N, K] with background values bg [K].

    Weight of pair j: D_j exp(z̃_j / γ) with z̃ = (far − z) / (far − near); background:
    exp(eps / γ). Every weight is taken relative to the pixel's largest one, as
    exp((log D_j − log D_r) + (z_r − z_j) / ((far − near) γ)): depth *differences* are formed
    before the division by γ, which keeps float32 accurate at γ = 1e-4.
    """
    num_pixels = zeros.shape[0]
    inv_scale, zp_bg = softmax_constants(s)
    with torch.no_grad():  # the reference element r cancels exactly; it only keeps exp() in range
        score = log_d.double() - zp.double() * inv_scale
        best = torch.full((num_pixels,), -zp_bg * inv_scale, dtype=torch.float64, device=zeros.device)
        best = best.scatter_reduce(0, pix, score, reduce="amax", include_self=True)
        top = (score == best[pix]).nonzero().squeeze(1)
        ref_ld = zeros.index_put((pix[top],), log_d.detach()[top])
        ref_zp = torch.full_like(zeros, zp_bg).index_put((pix[top],), zp.detach()[top])
    e = torch.exp((log_d - ref_ld[pix]) + (ref_zp[pix] - zp) * inv_scale)
    e_bg = torch.exp(-ref_ld + (ref_zp - zp_bg) * inv_scale)
    den = e_bg + zeros.index_add(0, pix, e)
    k = values.shape[1]
    num = e_bg[:, None] * bg + torch.zeros(num_pixels, k, dtype=zeros.dtype, device=zeros.device).index_add(
        0, pix, e[:, None] * values
    )
    return num / den[:, None]


def _render_chunk(
    inv: torch.Tensor,
    xy: torch.Tensor,
    z: torch.Tensor,
    surface: torch.Tensor,
    vertex: torch.Tensor,
    pair_face: torch.Tensor,
    pair_pix: torch.Tensor,
    px: torch.Tensor,
    py: torch.Tensor,
    front: torch.Tensor,
    num_pixels: int,
    want: _Wanted,
    s: RasterSettings,
    uv: UVMaps | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None]:
    """Outputs of ``num_pixels`` pixels from their candidate pairs.

    Returns ``soft`` [P, C + 1 (+ 1)]: the channels, alpha and (``want.depth``) the soft depth;
    and, for ``want.zbuffer``, (face_id [P], barycentrics [P, 3], hard_depth [P]), else None.
    """
    dtype, device = inv.dtype, inv.device
    w = _pair_barycentrics(inv, pair_face, px, py)
    keep, x = _signed_coverage(w, px, py, xy[pair_face], s)
    idx = keep.nonzero().squeeze(1)
    w, x, face, pix = w[idx], x[idx], pair_face[idx], pair_pix[idx]

    zeros = torch.zeros(num_pixels, dtype=dtype, device=device)
    alpha = _alpha(x, pix, face, zeros, want.num_faces, s)
    num_values = want.num_surface + want.num_vertex + want.num_uv + int(want.depth)
    if num_values == 0 and not want.zbuffer:
        return alpha[:, None], None

    # ---- depth of the pairs that may colour the pixel -----------------------------------
    w_clip = w.clamp(0, 1)
    w_sum = (w_clip[:, 0] + w_clip[:, 1] + w_clip[:, 2]).clamp(min=W_SUM_EPS)
    w_clip = w_clip / w_sum[:, None]
    z_safe_faces = torch.where(z.abs() < Z_EPS, torch.full_like(z, Z_EPS), z)
    z_safe = z_safe_faces[face]
    inv_z = w_clip[:, 0] / z_safe[:, 0] + w_clip[:, 1] / z_safe[:, 1] + w_clip[:, 2] / z_safe[:, 2]
    with torch.no_grad():
        zp_raw = 1.0 / inv_z
        depth_min, depth_max = depth_range(s)
        colour_ok = (zp_raw >= depth_min) & (zp_raw <= depth_max)
        if not s.fill_back:
            colour_ok &= front[face]
        inside = ((w >= 0) & (w <= 1)).all(-1)
        if s.aggr_func_rgb == "hard":
            colour_ok &= inside
    sel = colour_ok.nonzero().squeeze(1)
    zp = 1.0 / inv_z[sel]
    face_c, pix_c = face[sel], pix[sel]

    zbuf = None
    winner = None
    if want.zbuffer or (s.aggr_func_rgb == "hard" and num_values):
        with torch.no_grad():
            if s.aggr_func_rgb == "hard":  # every colour pair already contains its pixel
                winner = _zbuffer_winners(zp.detach(), face_c, pix_c, num_pixels)
            else:
                cand = inside[sel].nonzero().squeeze(1)
                winner = cand[_zbuffer_winners(zp.detach()[cand], face_c[cand], pix_c[cand], num_pixels)]
    if want.zbuffer:
        with torch.no_grad():
            at = (pix_c[winner],)
            zw = zp.detach()[winner]
            bary = (w_clip.detach()[sel[winner]] / z_safe.detach()[sel[winner]]) * zw[:, None]
            zbuf = (
                torch.full((num_pixels,), -1, dtype=torch.long, device=device).index_put(
                    at, face_c[winner] % want.num_faces
                ),
                torch.zeros(num_pixels, 3, dtype=dtype, device=device).index_put(at, bary),
                zeros.index_put(at, zw),
            )
    if num_values == 0:
        return alpha[:, None], zbuf

    values = _pair_values(surface, vertex, face_c, w_clip[sel], zp, want, (uv, z_safe_faces, inv, s))
    bg = torch.tensor(want.background + (0.0,) * int(want.depth), dtype=dtype, device=device)
    if s.aggr_func_rgb == "softmax":
        log_d = _log_coverage(x[sel], s)
        out = _softmax(values, log_d, zp, pix_c, bg, zeros, s)
    else:  # z-buffer: the winner's values, else the background
        out = bg.expand(num_pixels, num_values).index_put((pix_c[winner],), values[winner])
    c = want.num_surface + want.num_vertex + want.num_uv
    parts = [out[:, :c], alpha[:, None]] + ([out[:, c:]] if want.depth else [])
    return torch.cat(parts, dim=1), zbuf


def _pair_chunks(
    ranges: PixelRanges, image_size: tuple[int, int], dtype: torch.dtype, max_pairs: int
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The candidate pairs of every face's grown box (``ranges``, [B, F] each), in chunks of whole
    image rows of at most ~``max_pairs`` pairs: ``(u0, u1, pair_face, pair_pix, px, py)`` per chunk
    of flattened rows [u0, u1) (item × H + row), pair_face indexing the B·F faces, pair_pix the
    pixel within the chunk, (px, py) the pixel centre in ``dtype``. Computed without autograd."""
    b, f = ranges.c0.shape
    h, w = image_size
    device = ranges.c0.device
    with torch.no_grad():
        c0, c1 = ranges.c0.reshape(-1), ranges.c1.reshape(-1)
        r0, r1 = ranges.r0.reshape(-1), ranges.r1.reshape(-1)
        nonempty = (c1 >= c0).nonzero().squeeze(1)
        item = nonempty // f
        units0 = item * h + r0[nonempty]
        units1 = item * h + r1[nonempty]
        width = c1[nonempty] - c0[nonempty] + 1
        chunks = _plan_chunks(units0, units1, width, b * h, max_pairs)
        xs = pixel_centers(w, flip=False, dtype=dtype, device=device)
        ys = pixel_centers(h, flip=True, dtype=dtype, device=device)
    for u0, u1 in chunks:
        with torch.no_grad():  # not held across the yield: the caller's grad mode is its own
            hit = (units1 >= u0) & (units0 < u1)
            faces = nonempty[hit]
            q0 = units0[hit].clamp(min=u0)
            q1 = units1[hit].clamp(max=u1 - 1)
            pair_face, row, col = _enumerate_pairs(faces, q0, q1, c0[faces], c1[faces])
            pair_pix = (row - u0) * w + col
            px, py = xs[col], ys[row % h]
        yield u0, u1, pair_face, pair_pix, px, py


def count_kept_pairs(face_vertices: torch.Tensor, settings: RasterSettings, max_pairs: int = DEFAULT_MAX_PAIRS) -> int:
    """Number of (pixel, face) pairs that pass the cull: those of :func:`count_box_pairs` whose
    coverage the rasterizer evaluates (inside the face or within the cull radius √θ of it; for
    ``dist_func='hard'``, inside the closed face), exactly as the reference's keep mask decides.
    The ``cpu`` kernels keep the same pairs up to rounding. face_vertices: [B, F, 3, 3]."""
    kept = 0
    size = (settings.image_height, settings.image_width)
    with torch.no_grad():
        inv, xy, _ = face_matrices(face_vertices.detach())
        ranges = pixel_ranges(face_vertices.detach(), settings.cull_radius, size)
        for *_, pair_face, _pix, px, py in _pair_chunks(ranges, size, face_vertices.dtype, max_pairs):
            w = _pair_barycentrics(inv, pair_face, px, py)
            keep, _ = _signed_coverage(w, px, py, xy[pair_face], settings)
            kept += int(keep.sum())
    return kept


def _rasterize(
    face_vertices: torch.Tensor,
    surface: torch.Tensor,
    vertex: torch.Tensor,
    want: _Wanted,
    settings: RasterSettings,
    max_pairs: int,
    uv: UVMaps | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Packed soft outputs [B, C + 1 (+ 1), H, W] (channels, alpha, depth) and, when asked,
    the z-buffer outputs (face_id [B, H, W], barycentrics [B, 3, H, W], hard_depth [B, 1, H, W])."""
    b, f = face_vertices.shape[:2]
    h, w = settings.image_height, settings.image_width
    inv, xy, z = face_matrices(face_vertices)
    surf = surface.reshape(b * f, surface.shape[2], surface.shape[3])
    vert = vertex.reshape(b * f, 3, vertex.shape[3])

    with torch.no_grad():
        ranges = pixel_ranges(face_vertices.detach(), settings.cull_radius, (h, w))
    front = ranges.front.reshape(-1)
    if uv is not None:  # faces of all items in one index: [B·F, ...]
        uv = uv._replace(uv=uv.uv.reshape(b * f, 3, 2), material=uv.material.reshape(b * f))
    grads = (face_vertices, surface, vertex) + (() if uv is None else (uv.uv, uv.atlas))
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in grads)
    soft, zbufs = [], []
    for u0, u1, pair_face, pair_pix, px, py in _pair_chunks(ranges, (h, w), face_vertices.dtype, max_pairs):
        args = (inv, xy, z, surf, vert, pair_face, pair_pix, px, py, front)
        kwargs = {"num_pixels": (u1 - u0) * w, "want": want, "s": settings, "uv": uv}
        if needs_grad:
            out, zbuf = checkpoint(_render_chunk, *args, use_reentrant=False, **kwargs)
        else:
            out, zbuf = _render_chunk(*args, **kwargs)
        soft.append(out)
        zbufs.append(zbuf)
    packed = torch.cat(soft).reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
    if not want.zbuffer:
        return packed, None
    face_id = torch.cat([zb[0] for zb in zbufs]).reshape(b, h, w)
    bary = torch.cat([zb[1] for zb in zbufs]).reshape(b, h, w, 3).permute(0, 3, 1, 2).contiguous()
    hard_depth = torch.cat([zb[2] for zb in zbufs]).reshape(b, 1, h, w)
    return packed, (face_id, bary, hard_depth)


def rasterize(inputs: RasterInputs, settings: RasterSettings, *, max_pairs: int = DEFAULT_MAX_PAIRS) -> RasterResult:
    """The backend entry point of the contract (see :mod:`softras.raster.contract`).

    Args:
        inputs: face_vertices [B, F, 3, 3], surface [B, F, T, Cs], vertex [B, F, 3, Cv], the
            Cs + Cv + Cu background values and the UV texture (Cu channels) or None.
        settings: validated :class:`RasterSettings`; ``with_depth`` and ``with_zbuffer`` ask
            for the extra outputs.
        max_pairs: (pixel, face) pairs per chunk; bounds peak memory, not the result.

    Returns:
        :class:`RasterResult` with channels [B, Cs + Cv + Cu, H, W], alpha [B, 1, H, W] and the
        outputs asked for (depth [B, 1, H, W]; face_id [B, H, W], barycentrics [B, 3, H, W],
        hard_depth [B, 1, H, W], detached).
    """
    cs, cv = int(inputs.surface.shape[3]), int(inputs.vertex.shape[3])
    want = _Wanted(
        cs, cv, settings.with_depth, settings.with_zbuffer, int(inputs.face_vertices.shape[1]), inputs.background,
        inputs.num_uv,
    )  # fmt: skip
    packed, zbuf = _rasterize(inputs.face_vertices, inputs.surface, inputs.vertex, want, settings, max_pairs, inputs.uv)
    c = cs + cv + inputs.num_uv
    depth = packed[:, c + 1 :] if settings.with_depth else None
    face_id, bary, hard_depth = zbuf if zbuf is not None else (None, None, None)
    return RasterResult(packed[:, :c], packed[:, c : c + 1], depth, face_id, bary, hard_depth)


def rasterize_reference(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    settings: RasterSettings,
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> torch.Tensor:
    """Soft-rasterize screen-space triangles into RGBA (the original's colour path).

    Args:
        face_vertices: [B, F, 3, 3] float, per face its 3 vertices (x, y in NDC with y up,
            z = camera depth).
        textures: [B, F, R*R, 3] (``settings.texture_type='surface'``) or [B, F, 3, 3]
            (``'vertex'``) colours, same dtype/device.
        settings: validated :class:`RasterSettings` (its depth / z-buffer flags are ignored).
        max_pairs: (pixel, face) pairs per chunk; bounds peak memory.

    Returns:
        [B, 4, H, W] RGBA images.
    """
    b, f = face_vertices.shape[:2]
    if settings.texture_type == "vertex":
        surface, vertex = textures.new_zeros(b, f, 1, 0), textures
    else:
        surface, vertex = textures, textures.new_zeros(b, f, 3, 0)
    cs, cv = int(surface.shape[3]), int(vertex.shape[3])
    want = _Wanted(cs, cv, False, False, f, settings.background_color)
    return _rasterize(face_vertices, surface, vertex, want, settings, max_pairs)[0]
