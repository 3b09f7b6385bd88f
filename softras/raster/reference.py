"""The reference backend: the soft rasterizer in plain PyTorch, on any device.

It is the oracle every faster backend is tested against, so it favours clarity over speed,
but it is not naive: work and memory grow with the number of (pixel, face) *pairs* inside
each face's grown bounding box, never with pixels × faces.

Algorithm (all steps vectorised):

1. Per face: the 2-D barycentric matrix (as the original: adjugate / det, det clamped away
   from 0 by 1e-10), the screen bounding box grown by the cull radius √θ, the front-facing
   flag.
2. Enumerate candidate pairs face by face (every pixel of the grown box), in chunks of image
   rows so that a chunk holds at most ``max_pairs`` pairs.
3. Per pair: barycentrics, coverage D (hard / barycentric / euclidean), the cull test, the
   perspective-correct depth, the sampled colour.
4. Per pixel: alpha (hard / sum / prod) and colour (z-buffer or depth softmax) by scatter
   reductions.

Every step is differentiable by autograd, so gradients are exact (including how depth and
vertex colours move with x, y). When gradients are needed each chunk runs under
:func:`torch.utils.checkpoint.checkpoint`, so the backward recomputes a chunk's pair terms
instead of keeping all of them alive: peak memory is one chunk's pairs plus O(B·S² + B·F).
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from ._transitional import run_rgba_backend
from .contract import RasterInputs, RasterResult
from .settings import RasterSettings
from .texels import texel_index

__all__ = ["DEFAULT_MAX_PAIRS", "rasterize_reference"]

DEFAULT_MAX_PAIRS = 1 << 20
_DET_EPS = 1e-10  # the original clamps |det| of the barycentric matrix to at least this
_W_SUM_EPS = 1e-5  # the original's floor on the clipped barycentric sum
_Z_EPS = 1e-12  # keeps 1 / z finite for vertices exactly on the camera plane


def softmax_constants(s: RasterSettings) -> tuple[float, float]:
    """(1 / ((far - near) γ), the background's depth far - eps (far - near)) of the depth softmax."""
    return 1.0 / ((s.far - s.near) * s.gamma_val), s.far - s.eps * (s.far - s.near)


def pixel_centers(n: int, *, flip: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """NDC coordinate of pixel centres: (2i + 1 − n) / n, or for rows (top first) the flipped one."""
    i = torch.arange(n, device=device, dtype=torch.float64)
    if flip:
        i = (n - 1) - i
    return ((2 * i + 1 - n) / n).to(dtype)


def face_info(face_vertices: torch.Tensor, cull_radius: float) -> dict[str, torch.Tensor]:
    """Per-face quantities (differentiable where marked).

    Args:
        face_vertices: [B, F, 3, 3] screen-space triangles (x, y in NDC, z depth).
        cull_radius: √θ, growth of the bounding box.

    Returns dict of [B*F, ...] tensors: ``inv`` [.., 3, 3] barycentric matrix rows (grad),
    ``xy`` [.., 3, 2] (grad), ``z`` [.., 3] (grad), ``front`` [..] bool, and the grown box
    ``xmin, xmax, ymin, ymax`` [..] (no grad, in the working dtype).
    """
    fv = face_vertices.reshape(-1, 3, 3)
    x0, y0 = fv[:, 0, 0], fv[:, 0, 1]
    x1, y1 = fv[:, 1, 0], fv[:, 1, 1]
    x2, y2 = fv[:, 2, 0], fv[:, 2, 1]
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    det = torch.where(det > 0, det.clamp(min=_DET_EPS), det.clamp(max=-_DET_EPS))
    adj = torch.stack(
        [
            torch.stack([y1 - y2, x2 - x1, x1 * y2 - x2 * y1], -1),
            torch.stack([y2 - y0, x0 - x2, x2 * y0 - x0 * y2], -1),
            torch.stack([y0 - y1, x1 - x0, x0 * y1 - x1 * y0], -1),
        ],
        dim=1,
    )
    inv = adj / det[:, None, None]
    with torch.no_grad():
        xs, ys = fv[:, :, 0].detach(), fv[:, :, 1].detach()
        front = (y2 - y0).detach() * (x1 - x0).detach() < (y1 - y0).detach() * (x2 - x0).detach()
        g = torch.tensor(cull_radius, dtype=fv.dtype, device=fv.device)
        box = {
            "xmin": xs.amin(1) - g,
            "xmax": xs.amax(1) + g,
            "ymin": ys.amin(1) - g,
            "ymax": ys.amax(1) + g,
        }
    return {"inv": inv, "xy": fv[:, :, :2], "z": fv[:, :, 2], "front": front, **box}


def _pixel_ranges(info: dict[str, torch.Tensor], h: int, w: int) -> tuple[torch.Tensor, ...]:
    """Conservative integer pixel ranges [c0, c1] × [r0, r1] of each face's grown box.

    One pixel of slack on each side: the exact float box test runs per pair afterwards.
    Faces entirely off-image get an empty range (c0 > c1).
    """
    f64 = torch.float64
    c0 = torch.ceil((info["xmin"].to(f64) * w + w - 1) / 2).long() - 1
    c1 = torch.floor((info["xmax"].to(f64) * w + w - 1) / 2).long() + 1
    r0 = torch.ceil((h - 1 - info["ymax"].to(f64) * h) / 2).long() - 1
    r1 = torch.floor((h - 1 - info["ymin"].to(f64) * h) / 2).long() + 1
    empty = (c1 < 0) | (c0 > w - 1) | (r1 < 0) | (r0 > h - 1)
    c0, c1 = c0.clamp(0, w - 1), c1.clamp(0, w - 1)
    r0, r1 = r0.clamp(0, h - 1), r1.clamp(0, h - 1)
    c1 = torch.where(empty, c0 - 1, c1)
    return c0, c1, r0, r1


def count_box_pairs(face_vertices: torch.Tensor, settings: RasterSettings) -> int:
    """Number of (pixel, face) pairs whose pixel centre lies inside the face's grown box.

    This is the work a binned backend must do (every pair it evaluates), exactly as the box
    test decides it. face_vertices: [B, F, 3, 3].
    """
    with torch.no_grad():
        info = face_info(face_vertices.detach(), settings.cull_radius)
        dt, dev = face_vertices.dtype, face_vertices.device
        xs = pixel_centers(settings.image_width, flip=False, dtype=dt, device=dev)  # ascending
        ys = pixel_centers(settings.image_height, flip=False, dtype=dt, device=dev)  # same set, ascending
        nx = torch.searchsorted(xs, info["xmax"], right=True) - torch.searchsorted(xs, info["xmin"])
        ny = torch.searchsorted(ys, info["ymax"], right=True) - torch.searchsorted(ys, info["ymin"])
        return int((nx.clamp(min=0) * ny.clamp(min=0)).sum())


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


def _signed_coverage(
    w: torch.Tensor, px: torch.Tensor, py: torch.Tensor, xy: torch.Tensor, s: RasterSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep mask and signed scaled distance x = sign·d²/σ per pair (D = sigmoid(x)).

    For ``hard`` the returned x is +inf inside (D = 1) and pairs outside are dropped.
    """
    if s.dist_func == "hard":
        inside = ((w >= 0) & (w <= 1)).all(-1)
        return inside, torch.full_like(px, math.inf)
    if s.dist_func == "barycentric":
        m = w.amin(-1)
        signed_d2 = m * m.abs()
        keep = -signed_d2.detach() < s.cull_threshold
        return keep, signed_d2 / s.sigma_val
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
    return keep, torch.where(inside, d2, -d2) / s.sigma_val


def _sample_colors(tex: torch.Tensor, w_clip: torch.Tensor, s: RasterSettings) -> torch.Tensor:
    """Colour of each pair. tex: [N, T, 3] (surface: T = R*R; vertex: T = 3). Returns [N, 3]."""
    if s.texture_type == "vertex":
        return (w_clip[:, :, None] * tex).sum(1)
    with torch.no_grad():
        idx = texel_index(w_clip[:, 0], w_clip[:, 1], math.isqrt(tex.shape[1]))
    return tex.gather(1, idx[:, None, None].expand(-1, 1, 3)).squeeze(1)


def _render_chunk(
    inv: torch.Tensor,
    xy: torch.Tensor,
    z: torch.Tensor,
    textures: torch.Tensor,
    pair_face: torch.Tensor,
    pair_pix: torch.Tensor,
    px: torch.Tensor,
    py: torch.Tensor,
    front: torch.Tensor,
    num_pixels: int,
    num_faces: int,
    s: RasterSettings,
) -> torch.Tensor:
    """RGBA of ``num_pixels`` pixels from their candidate pairs. Returns [num_pixels, 4]."""
    dtype = inv.dtype
    # Barycentrics of every candidate pair: w = inv · (x, y, 1).
    inv_p = inv[pair_face]
    w = inv_p[:, :, 0] * px[:, None] + inv_p[:, :, 1] * py[:, None] + inv_p[:, :, 2]
    keep, x = _signed_coverage(w, px, py, xy[pair_face], s)
    idx = keep.nonzero().squeeze(1)
    w, x, face, pix = w[idx], x[idx], pair_face[idx], pair_pix[idx]

    # ---- alpha ------------------------------------------------------------------------
    zeros = torch.zeros(num_pixels, dtype=dtype, device=inv.device)
    if s.aggr_func_alpha == "prod":
        if s.dist_func == "hard":
            alpha = (zeros.index_add(0, pix, torch.ones_like(x)) > 0).to(dtype)
        else:
            # log(1 - D) = logsigmoid(-x): stable where D rounds to 1.
            log_transmit = zeros.index_add(0, pix, torch.nn.functional.logsigmoid(-x))
            alpha = -torch.expm1(log_transmit)
    elif s.aggr_func_alpha == "sum":
        alpha = zeros.index_add(0, pix, torch.sigmoid(x)) / num_faces
    else:  # hard
        alpha = (zeros.index_add(0, pix, (torch.sigmoid(x) > 0.5).to(dtype)) > 0).to(dtype)

    # ---- depth of the pairs that may colour the pixel -----------------------------------
    w_clip = w.clamp(0, 1)
    w_sum = (w_clip[:, 0] + w_clip[:, 1] + w_clip[:, 2]).clamp(min=_W_SUM_EPS)
    w_clip = w_clip / w_sum[:, None]
    zf = z[face]
    z_safe = torch.where(zf.abs() < _Z_EPS, torch.full_like(zf, _Z_EPS), zf)
    inv_z = w_clip[:, 0] / z_safe[:, 0] + w_clip[:, 1] / z_safe[:, 1] + w_clip[:, 2] / z_safe[:, 2]
    with torch.no_grad():
        zp_raw = 1.0 / inv_z
        rgb_ok = (zp_raw >= s.near) & (zp_raw <= s.far)
        if not s.fill_back:
            rgb_ok &= front[face]
        if s.aggr_func_rgb == "hard":
            rgb_ok &= ((w >= 0) & (w <= 1)).all(-1)
    sel = rgb_ok.nonzero().squeeze(1)
    zp = 1.0 / inv_z[sel]
    face_c, pix_c = face[sel], pix[sel]
    colors = _sample_colors(textures[face_c], w_clip[sel], s)
    bg = torch.tensor(s.background_color, dtype=dtype, device=inv.device)

    # ---- colour ------------------------------------------------------------------------
    if s.aggr_func_rgb == "softmax":
        # Weight of pair j: D_j exp(z̃_j / γ) with z̃ = (far - z) / (far - near); background:
        # exp(eps / γ). Every weight is taken relative to the pixel's largest one, as
        # exp((log D_j - log D_r) + (z_r - z_j) / ((far - near) γ)): depth *differences* are
        # formed before the division by γ, which keeps float32 accurate at γ = 1e-4.
        log_d = torch.zeros_like(zp) if s.dist_func == "hard" else torch.nn.functional.logsigmoid(x[sel])
        inv_scale, zp_bg = softmax_constants(s)
        with torch.no_grad():  # the reference element r cancels exactly; it only keeps exp() in range
            score = log_d.double() - zp.double() * inv_scale
            best = torch.full((num_pixels,), -zp_bg * inv_scale, dtype=torch.float64, device=inv.device)
            best = best.scatter_reduce(0, pix_c, score, reduce="amax", include_self=True)
            top = (score == best[pix_c]).nonzero().squeeze(1)
            ref_ld = zeros.index_put((pix_c[top],), log_d.detach()[top])
            ref_zp = torch.full_like(zeros, zp_bg).index_put((pix_c[top],), zp.detach()[top])
        e = torch.exp((log_d - ref_ld[pix_c]) + (ref_zp[pix_c] - zp) * inv_scale)
        e_bg = torch.exp(-ref_ld + (ref_zp - zp_bg) * inv_scale)
        den = e_bg + zeros.index_add(0, pix_c, e)
        num = e_bg[:, None] * bg + torch.zeros(num_pixels, 3, dtype=dtype, device=inv.device).index_add(
            0, pix_c, e[:, None] * colors
        )
        rgb = num / den[:, None]
    else:  # z-buffer: nearest face covering the pixel; ties go to the lowest face index
        with torch.no_grad():
            inf = torch.full_like(zeros, math.inf)
            zmin = inf.scatter_reduce(0, pix_c, zp.detach(), reduce="amin", include_self=True)
            at_min = zp.detach() == zmin[pix_c]
            big = torch.full((num_pixels,), torch.iinfo(torch.long).max, device=inv.device)
            fmin = big.scatter_reduce(
                0, pix_c, torch.where(at_min, face_c, big[pix_c]), reduce="amin", include_self=True
            )
            winner = (at_min & (face_c == fmin[pix_c])).nonzero().squeeze(1)
        rgb = bg.expand(num_pixels, 3).index_put((pix_c[winner],), colors[winner])
    return torch.cat([rgb, alpha[:, None]], dim=1)


def rasterize_reference(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    settings: RasterSettings,
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> torch.Tensor:
    """Soft-rasterize screen-space triangles (pure PyTorch, autograd-differentiable).

    Args:
        face_vertices: [B, F, 3, 3] float, per face its 3 vertices (x, y in NDC with y up,
            z = camera depth).
        textures: [B, F, R*R, 3] (surface) or [B, F, 3, 3] (vertex) colours, same dtype/device.
        settings: validated :class:`RasterSettings`.
        max_pairs: (pixel, face) pairs per chunk; bounds peak memory.

    Returns:
        [B, 4, H, W] RGBA images.
    """
    b, f = face_vertices.shape[:2]
    h, w = settings.image_height, settings.image_width
    device, dtype = face_vertices.device, face_vertices.dtype
    info = face_info(face_vertices, settings.cull_radius)
    tex = textures.reshape(b * f, textures.shape[2], 3)

    with torch.no_grad():
        c0, c1, r0, r1 = _pixel_ranges(info, h, w)
        nonempty = (c1 >= c0).nonzero().squeeze(1)
        item = nonempty // f
        units0 = item * h + r0[nonempty]
        units1 = item * h + r1[nonempty]
        width = c1[nonempty] - c0[nonempty] + 1
        chunks = _plan_chunks(units0, units1, width, b * h, max_pairs)
        xs = pixel_centers(w, flip=False, dtype=dtype, device=device)
        ys = pixel_centers(h, flip=True, dtype=dtype, device=device)

    needs_grad = torch.is_grad_enabled() and (face_vertices.requires_grad or textures.requires_grad)
    out = []
    for u0, u1 in chunks:
        with torch.no_grad():
            hit = (units1 >= u0) & (units0 < u1)
            faces = nonempty[hit]
            q0 = units0[hit].clamp(min=u0)
            q1 = units1[hit].clamp(max=u1 - 1)
            pair_face, row, col = _enumerate_pairs(faces, q0, q1, c0[faces], c1[faces])
            px, py = xs[col], ys[row % h]
            in_box = (
                (
                    (px <= info["xmax"][pair_face])
                    & (px >= info["xmin"][pair_face])
                    & (py <= info["ymax"][pair_face])
                    & (py >= info["ymin"][pair_face])
                )
                .nonzero()
                .squeeze(1)
            )
            pair_face, pair_pix = pair_face[in_box], (row - u0)[in_box] * w + col[in_box]
            px, py = px[in_box], py[in_box]
        args = (info["inv"], info["xy"], info["z"], tex, pair_face, pair_pix, px, py, info["front"])
        kwargs = {"num_pixels": (u1 - u0) * w, "num_faces": f, "s": settings}
        if needs_grad:
            out.append(checkpoint(_render_chunk, *args, use_reentrant=False, **kwargs))
        else:
            out.append(_render_chunk(*args, **kwargs))
    return torch.cat(out).reshape(b, h, w, 4).permute(0, 3, 1, 2).contiguous()


def rasterize(inputs: RasterInputs, settings: RasterSettings) -> RasterResult:
    """The backend entry point of the contract (see :mod:`softras.raster.contract`)."""
    return run_rgba_backend(rasterize_reference, "reference", inputs, settings)
