"""A plain-Python soft rasterizer: one pixel, one face at a time, in float64.

It follows the rasterization semantics of DESIGN.md literally, with none of the reference
backend's vectorisation, pair enumeration, chunking or log-domain tricks, so that the two
can be compared. Only for tiny scenes.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
import torch

from softras.raster import RasterSettings
from softras.raster.contract import (
    DET_EPS,
    EDGE_SNAP,
    TEXEL_EDGE_TOLERANCE,
    W_SUM_EPS,
    Z_EPS,
    ZBUFFER_RTOL,
    depth_range,
)


def _seg_dist2(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    ex, ey = bx - ax, by - ay
    l2 = ex * ex + ey * ey
    t = 0.0 if l2 == 0 else min(1.0, max(0.0, ((px - ax) * ex + (py - ay) * ey) / l2))
    dx, dy = px - ax - t * ex, py - ay - t * ey
    return dx * dx + dy * dy


def _texel(tex: np.ndarray, w: list[float]) -> np.ndarray:
    r = math.isqrt(tex.shape[0])
    wx = min(math.floor(w[0] * r), r - 1)
    wy = min(math.floor(w[1] * r), r - 1)
    if (w[0] + w[1]) * r - wx - wy <= 1 + TEXEL_EDGE_TOLERANCE:
        return tex[wy * r + wx]
    return tex[(r - 1 - wy) * r + (r - 1 - wx)]


class NaiveResult(NamedTuple):
    """float64 outputs of :func:`naive_rasterize_channels` (shapes as RasterResult)."""

    channels: torch.Tensor  # [B, Cs + Cv, H, W]
    alpha: torch.Tensor  # [B, 1, H, W]
    depth: torch.Tensor  # [B, 1, H, W]
    face_id: torch.Tensor  # [B, H, W] int64
    barycentrics: torch.Tensor  # [B, 3, H, W]
    hard_depth: torch.Tensor  # [B, 1, H, W]


def _coverage(px: float, py: float, tri: np.ndarray, s: RasterSettings) -> tuple[float, list[float], bool] | None:
    """(D, screen barycentrics w, closed-inside) of one pair, or None when the pair is culled."""
    (x0, y0, _), (x1, y1, _), (x2, y2, _) = tri
    g = math.sqrt(s.cull_threshold)
    xs, ys = (x0, x1, x2), (y0, y1, y2)
    if px > max(xs) + g or px < min(xs) - g or py > max(ys) + g or py < min(ys) - g:
        return None
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    det = max(det, DET_EPS) if det > 0 else min(det, -DET_EPS)
    # Same arithmetic as the original (and every backend): inverse matrix first,
    # then w = inv · (x, y, 1). Texel choice at clamped barycentrics depends on it.
    adj = [
        (y1 - y2, x2 - x1, x1 * y2 - x2 * y1),
        (y2 - y0, x0 - x2, x2 * y0 - x0 * y2),
        (y0 - y1, x1 - x0, x0 * y1 - x1 * y0),
    ]
    w = [(a / det) * px + (b_ / det) * py + (c_ / det) for a, b_, c_ in adj]
    w = [0.0 if abs(v) < EDGE_SNAP else 1.0 if abs(v - 1) < EDGE_SNAP else v for v in w]
    inside_closed = all(0 <= v <= 1 for v in w)
    theta = s.cull_threshold
    if s.dist_func == "hard":
        if not inside_closed:
            return None
        return 1.0, w, True
    if s.dist_func == "barycentric":
        m = min(w)
        dis = m * abs(m)
        if -dis >= theta:
            return None
        return 1 / (1 + math.exp(-dis / s.sigma_val)), w, inside_closed
    inside = all(0 < v < 1 for v in w)
    d2 = min(
        _seg_dist2(px, py, x0, y0, x1, y1),
        _seg_dist2(px, py, x1, y1, x2, y2),
        _seg_dist2(px, py, x2, y2, x0, y0),
    )
    if not inside and d2 >= theta:
        return None
    x = (d2 if inside else -d2) / s.sigma_val
    return (1 / (1 + math.exp(-x)) if x > -700 else 0.0), w, inside_closed


def naive_rasterize_channels(
    face_vertices: torch.Tensor,
    surface: torch.Tensor | None,
    vertex: torch.Tensor | None,
    background: tuple[float, ...],
    s: RasterSettings,
) -> NaiveResult:
    """Every output of the contract, one pixel and one face at a time, in float64.

    face_vertices [B, F, 3, 3]; surface [B, F, R*R, Cs] or None; vertex [B, F, 3, Cv] or None;
    background: Cs + Cv values. All outputs are computed, whatever the settings ask for.
    """
    fv = face_vertices.detach().double().cpu().numpy()
    nb, nf = fv.shape[:2]
    sf = np.zeros((nb, nf, 1, 0)) if surface is None else surface.detach().double().cpu().numpy()
    vx = np.zeros((nb, nf, 3, 0)) if vertex is None else vertex.detach().double().cpu().numpy()
    nc = sf.shape[3] + vx.shape[3]
    h, w_ = s.image_height, s.image_width
    # Per pixel, the values aggregated with the colour weights: the channels, then the depth.
    bg = np.array([*background, 0.0])
    values = np.zeros((nb, nc + 1, h, w_))
    alphas = np.zeros((nb, 1, h, w_))
    face_id = np.full((nb, h, w_), -1, dtype=np.int64)
    bary = np.zeros((nb, 3, h, w_))
    hard_depth = np.zeros((nb, 1, h, w_))
    s_depth = depth_range(s)
    for b, r, c in itertools.product(range(nb), range(h), range(w_)):
        px = (2 * c + 1 - w_) / w_
        py = (2 * (h - 1 - r) + 1 - h) / h
        ds, soft, best = [], [], None
        for f in range(nf):
            cov = _coverage(px, py, fv[b, f], s)
            if cov is None:
                continue
            d, w, inside_closed = cov
            ds.append(d)
            (x0, y0, _), (x1, y1, _), (x2, y2, _) = fv[b, f]
            z = [zk if abs(zk) >= Z_EPS else Z_EPS for zk in fv[b, f, :, 2]]
            wc = [min(1.0, max(0.0, v)) for v in w]
            tot = max(wc[0] + wc[1] + wc[2], W_SUM_EPS)
            wc = [v / tot for v in wc]
            inv_z = wc[0] / z[0] + wc[1] / z[1] + wc[2] / z[2]
            zp = 1 / inv_z if inv_z != 0 else math.inf
            if not (s_depth[0] <= zp <= s_depth[1]):
                continue
            front = (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0)
            if not (front or s.fill_back):
                continue
            value = np.concatenate(
                [_texel(sf[b, f], wc), wc[0] * vx[b, f, 0] + wc[1] * vx[b, f, 1] + wc[2] * vx[b, f, 2], [zp]]
            )
            # faces ascend: a later face wins only if nearer beyond the tie tolerance
            if inside_closed and (best is None or zp < best[0] - abs(best[0]) * ZBUFFER_RTOL):
                best = (zp, f, [wc[k] / z[k] * zp for k in range(3)], value)
            soft.append((d, (s.far - zp) / (s.far - s.near), value))
        if s.aggr_func_alpha == "hard":
            alpha = 1.0 if any(d > 0.5 for d in ds) else 0.0
        elif s.aggr_func_alpha == "sum":
            alpha = sum(ds) / nf
        else:
            alpha = 1 - float(np.prod([1 - d for d in ds])) if ds else 0.0
        alphas[b, 0, r, c] = alpha
        if best is not None:
            hard_depth[b, 0, r, c], face_id[b, r, c], bary[b, :, r, c] = best[0], best[1], best[2]
        if s.aggr_func_rgb == "hard":
            values[b, :, r, c] = bg if best is None else best[3]
        else:
            m = max([s.eps] + [zn for _, zn, _ in soft])
            wbg = math.exp((s.eps - m) / s.gamma_val)
            num = wbg * bg + sum((d * math.exp((zn - m) / s.gamma_val) * v for d, zn, v in soft), np.zeros(nc + 1))
            den = wbg + sum(d * math.exp((zn - m) / s.gamma_val) for d, zn, _ in soft)
            values[b, :, r, c] = num / den
    t = torch.from_numpy
    return NaiveResult(t(values[:, :nc]), t(alphas), t(values[:, nc:]), t(face_id), t(bary), t(hard_depth))


def naive_rasterize(face_vertices: torch.Tensor, textures: torch.Tensor, s: RasterSettings) -> torch.Tensor:
    """[B, F, 3, 3], [B, F, T, 3] -> [B, 4, H, W] float64 RGBA (the colour path)."""
    if s.texture_type == "vertex":
        out = naive_rasterize_channels(face_vertices, None, textures, s.background_color, s)
    else:
        out = naive_rasterize_channels(face_vertices, textures, None, s.background_color, s)
    return torch.cat([out.channels, out.alpha], dim=1)
