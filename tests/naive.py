"""A plain-Python soft rasterizer: one pixel, one face at a time, in float64.

It follows the rasterization semantics of DESIGN.md literally, with none of the reference
backend's vectorisation, pair enumeration, chunking or log-domain tricks, so that the two
can be compared. Only for tiny scenes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from softras.raster import RasterSettings
from softras.raster.texels import TEXEL_EDGE_TOLERANCE


def _seg_dist2(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    ex, ey = bx - ax, by - ay
    l2 = ex * ex + ey * ey
    t = 0.0 if l2 == 0 else min(1.0, max(0.0, ((px - ax) * ex + (py - ay) * ey) / l2))
    dx, dy = px - ax - t * ex, py - ay - t * ey
    return dx * dx + dy * dy


def _sample(tex: np.ndarray, w: list[float], texture_type: str) -> np.ndarray:
    if texture_type == "vertex":
        return w[0] * tex[0] + w[1] * tex[1] + w[2] * tex[2]
    r = math.isqrt(tex.shape[0])
    wx = min(math.floor(w[0] * r), r - 1)
    wy = min(math.floor(w[1] * r), r - 1)
    if (w[0] + w[1]) * r - wx - wy <= 1 + TEXEL_EDGE_TOLERANCE:
        return tex[wy * r + wx]
    return tex[(r - 1 - wy) * r + (r - 1 - wx)]


def naive_rasterize(face_vertices: torch.Tensor, textures: torch.Tensor, s: RasterSettings) -> torch.Tensor:
    """[B, F, 3, 3], [B, F, T, 3] -> [B, 4, H, W] float64."""
    fv = face_vertices.detach().double().cpu().numpy()
    tx = textures.detach().double().cpu().numpy()
    nb, nf = fv.shape[:2]
    h, w_ = s.image_height, s.image_width
    theta, g = s.cull_threshold, math.sqrt(s.cull_threshold)
    out = np.zeros((nb, 4, h, w_))
    for b in range(nb):
        for r in range(h):
            for c in range(w_):
                px = (2 * c + 1 - w_) / w_
                py = (2 * (h - 1 - r) + 1 - h) / h
                ds, soft, zbest, cbest = [], [], math.inf, None
                for f in range(nf):
                    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = fv[b, f]
                    xs, ys = (x0, x1, x2), (y0, y1, y2)
                    if px > max(xs) + g or px < min(xs) - g or py > max(ys) + g or py < min(ys) - g:
                        continue
                    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
                    det = max(det, 1e-10) if det > 0 else min(det, -1e-10)
                    # Same arithmetic as the original (and every backend): inverse matrix first,
                    # then w = inv · (x, y, 1). Texel choice at clamped barycentrics depends on it.
                    adj = [
                        (y1 - y2, x2 - x1, x1 * y2 - x2 * y1),
                        (y2 - y0, x0 - x2, x2 * y0 - x0 * y2),
                        (y0 - y1, x1 - x0, x0 * y1 - x1 * y0),
                    ]
                    w = [(a / det) * px + (b_ / det) * py + (c_ / det) for a, b_, c_ in adj]
                    inside_closed = all(0 <= v <= 1 for v in w)
                    if s.dist_func == "hard":
                        if not inside_closed:
                            continue
                        d = 1.0
                    elif s.dist_func == "barycentric":
                        m = min(w)
                        dis = m * abs(m)
                        if -dis >= theta:
                            continue
                        d = 1 / (1 + math.exp(-dis / s.sigma_val))
                    else:
                        inside = all(0 < v < 1 for v in w)
                        d2 = min(
                            _seg_dist2(px, py, x0, y0, x1, y1),
                            _seg_dist2(px, py, x1, y1, x2, y2),
                            _seg_dist2(px, py, x2, y2, x0, y0),
                        )
                        if not inside and d2 >= theta:
                            continue
                        x = (d2 if inside else -d2) / s.sigma_val
                        d = 1 / (1 + math.exp(-x)) if x > -700 else 0.0
                    ds.append(d)
                    wc = [min(1.0, max(0.0, v)) for v in w]
                    tot = max(wc[0] + wc[1] + wc[2], 1e-5)
                    wc = [v / tot for v in wc]
                    inv_z = wc[0] / z0 + wc[1] / z1 + wc[2] / z2
                    zp = 1 / inv_z if inv_z != 0 else math.inf
                    if not (s.near <= zp <= s.far):
                        continue
                    front = (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0)
                    if not (front or s.fill_back):
                        continue
                    color = _sample(tx[b, f], wc, s.texture_type)
                    if s.aggr_func_rgb == "hard":
                        if inside_closed and zp < zbest:
                            zbest, cbest = zp, color
                    else:
                        soft.append((d, (s.far - zp) / (s.far - s.near), color))
                if s.aggr_func_alpha == "hard":
                    alpha = 1.0 if any(d > 0.5 for d in ds) else 0.0
                elif s.aggr_func_alpha == "sum":
                    alpha = sum(ds) / nf
                else:
                    alpha = 1 - float(np.prod([1 - d for d in ds])) if ds else 0.0
                bg = np.array(s.background_color)
                if s.aggr_func_rgb == "hard":
                    rgb = bg if cbest is None else cbest
                else:
                    m = max([s.eps] + [zn for _, zn, _ in soft])
                    wbg = math.exp((s.eps - m) / s.gamma_val)
                    num = wbg * bg + sum(
                        (d * math.exp((zn - m) / s.gamma_val) * col for d, zn, col in soft), np.zeros(3)
                    )
                    den = wbg + sum(d * math.exp((zn - m) / s.gamma_val) for d, zn, _ in soft)
                    rgb = num / den
                out[b, :3, r, c] = rgb
                out[b, 3, r, c] = alpha
    return torch.from_numpy(out)
