"""Random screen-space scenes for the rasterizer tests."""

from __future__ import annotations

import torch


def random_scene(
    batch: int = 2,
    faces: int = 6,
    texture_type: str = "surface",
    texture_res: int = 2,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    spread: float = 1.2,
    size: float = 0.8,
    z_range: tuple[float, float] = (1.5, 4.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangles [B, F, 3, 3] scattered over (and across the borders of) the image, both
    windings, depths in ``z_range``; textures [B, F, R*R, 3] or [B, F, 3, 3]."""
    g = torch.Generator().manual_seed(seed)
    centers = (torch.rand(batch, faces, 1, 2, generator=g, dtype=dtype) * 2 - 1) * spread
    offsets = (torch.rand(batch, faces, 3, 2, generator=g, dtype=dtype) * 2 - 1) * size
    z = z_range[0] + torch.rand(batch, faces, 3, 1, generator=g, dtype=dtype) * (z_range[1] - z_range[0])
    fv = torch.cat([centers + offsets, z], dim=-1)
    t = 3 if texture_type == "vertex" else texture_res**2
    tex = torch.rand(batch, faces, t, 3, generator=g, dtype=dtype)
    return fv, tex


DEGENERATE_KINDS = ("collinear", "point", "zero_depth", "behind_camera")


def degenerate_scene(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A random vertex-coloured scene (2 × 6 faces) whose face 0 is degenerate in both items:
    ``collinear`` (no area), ``point`` (three equal vertices), ``zero_depth`` (a vertex at
    z = 0) or ``behind_camera`` (depths -1, 0.5, 2)."""
    fv, tex = random_scene(batch=2, faces=6, seed=7, texture_type="vertex")
    if kind == "collinear":
        fv[:, 0, 2, :2] = 0.5 * (fv[:, 0, 0, :2] + fv[:, 0, 1, :2])
    elif kind == "point":
        fv[:, 0, 1:] = fv[:, 0, :1]
    elif kind == "zero_depth":
        fv[:, 0, 0, 2] = 0.0
    elif kind == "behind_camera":
        fv[:, 0, :, 2] = torch.tensor([-1.0, 0.5, 2.0], dtype=fv.dtype)
    else:
        raise ValueError(f"kind: expected one of {DEGENERATE_KINDS}, got {kind!r}")
    return fv, tex


def crowded_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """300 small faces piled into one corner tile of a 32² image, plus two faces (both
    windings) far larger than the whole image: [1, 302, 3, 3] and R = 2 textures (float64)."""
    g = torch.Generator().manual_seed(3)
    small = torch.cat([torch.rand(1, 300, 3, 2, generator=g, dtype=torch.float64) * 0.2 - 0.6,
                       1.5 + 2 * torch.rand(1, 300, 3, 1, generator=g, dtype=torch.float64)], -1)  # fmt: skip
    huge = torch.tensor([[[[-30.0, -20.0, 3.0], [0.0, 40.0, 3.5], [25.0, -30.0, 4.0]]]], dtype=torch.float64)
    fv = torch.cat([small, huge, huge[:, :, [0, 2, 1]]], dim=1)
    tex = torch.rand(1, fv.shape[1], 4, 3, generator=g, dtype=torch.float64)
    return fv, tex


def random_attributes(
    face_vertices: torch.Tensor, surface: int, vertex: int, texture_res: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, tuple[float, ...]]:
    """Random attributes for [B, F, 3, 3] faces: surface texels [B, F, R*R, Cs], vertex values
    [B, F, 3, Cv] (values in [-1, 2], so not colours) and Cs + Cv background values."""
    g = torch.Generator().manual_seed(1000 + seed)
    b, f = face_vertices.shape[:2]
    dt = face_vertices.dtype
    s = torch.rand(b, f, texture_res**2, surface, generator=g, dtype=torch.float64) * 3 - 1
    v = torch.rand(b, f, 3, vertex, generator=g, dtype=torch.float64) * 3 - 1
    bg = tuple((torch.rand(surface + vertex, generator=g, dtype=torch.float64) - 0.5).tolist())
    return s.to(dt), v.to(dt), bg
