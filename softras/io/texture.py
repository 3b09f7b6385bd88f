"""Surface-texture helpers: texel layout, image sampling and texture-atlas creation.

A *surface texture* stores ``R*R`` texels per triangle, as a tensor ``[F, R*R, 3]``.
Texel ``i`` has ``w_y = i // R`` and ``w_x = i % R``. If ``w_x + w_y < R`` it is a
"lower" texel whose centre has barycentrics ``((w_x + 1/3)/R, (w_y + 1/3)/R, rest)``;
otherwise it is an "upper" texel with centre ``((R-1-w_x + 2/3)/R, (R-1-w_y + 2/3)/R, rest)``.
This is the layout of the original SoftRas / Neural Renderer, and the renderer looks
texels up with the inverse rule (see :func:`texel_index`).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import NamedTuple

import numpy as np
import torch

from softras._validation import as_float_tensor, as_index_tensor, check_shape

from ..raster.contract import texel_index

__all__ = [
    "create_texture_atlas",
    "sample_surface_textures",
    "surface_textures_from_vertex_colors",
    "texel_barycentrics",
    "texel_index",
    "texture_atlas",
]


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn_caller(message: str) -> None:
    """Issue a ``UserWarning`` attributed to the first calling frame outside the softras package."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def clip_colors(name: str, colors: torch.Tensor) -> torch.Tensor:
    """``colors`` clamped to [0, 1], with one ``UserWarning`` when any value lies outside.

    The warning starts with ``name`` (the argument, or the file and what in it) and gives how
    many values were clipped and their range: ``"<name>: 3 colour values outside [0, 1]
    (range [-3, 5]) were clipped to [0, 1]"``.
    """
    outside = (colors < 0) | (colors > 1)
    count = int(outside.sum())
    if count:
        lo, hi = float(colors.min()), float(colors.max())
        warn_caller(f"{name}: {count} colour values outside [0, 1] (range [{lo:g}, {hi:g}]) "
                    "were clipped to [0, 1]")
        return colors.clamp(0, 1)
    return colors


def check_texture_res(texture_res: int) -> int:
    """``texture_res`` (R, texels per triangle side) checked to be an integer >= 1, as an ``int``."""
    if isinstance(texture_res, bool) or not isinstance(texture_res, (int, np.integer)):
        raise TypeError(f"texture_res: expected an integer, got {type(texture_res).__name__}")
    if texture_res < 1:
        raise ValueError(f"texture_res: expected an integer >= 1, got {texture_res}")
    return int(texture_res)


def texel_barycentrics(texture_res: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Barycentric coordinates of the centres of the ``R*R`` texels of a triangle.

    Args:
        texture_res: ``R``, texels per triangle side (>= 1).
        dtype: floating dtype of the result.

    Returns:
        ``[R*R, 3]`` tensor ``(w0, w1, w2)`` per texel, rows summing to 1, in texel order.
    """
    r = check_texture_res(texture_res)
    i = torch.arange(r * r, dtype=torch.float64)
    w_y = torch.div(i, r, rounding_mode="floor")
    w_x = i - w_y * r
    lower = (w_x + w_y) < r
    w0 = torch.where(lower, (w_x + 1.0 / 3.0) / r, ((r - 1 - w_x) + 2.0 / 3.0) / r)
    w1 = torch.where(lower, (w_y + 1.0 / 3.0) / r, ((r - 1 - w_y) + 2.0 / 3.0) / r)
    w2 = 1.0 - w0 - w1
    return torch.stack([w0, w1, w2], dim=-1).to(dtype)


def _image_to_float(image: object) -> torch.Tensor:
    """Return an ``[H, W, 3]`` float tensor in [0, 1] from an image array or tensor."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        img = torch.from_numpy(np.ascontiguousarray(image)).float() / 255.0
    elif isinstance(image, np.ndarray) and image.dtype == np.uint16:
        img = torch.from_numpy(image.astype(np.float32) / 65535.0)
    elif isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
        img = image.float() / 255.0
    else:
        img = as_float_tensor("image", image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"image: expected shape [H, W] or [H, W, C], got {tuple(img.shape)}")
    c = img.shape[2]
    if c == 1:
        img = img.expand(-1, -1, 3)
    elif c == 2:  # grey + alpha
        img = img[:, :, :1].expand(-1, -1, 3)
    elif c >= 3:
        img = img[:, :, :3]
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image: expected a non-empty image, got {tuple(img.shape)}")
    return img


def sample_surface_textures(
    image: torch.Tensor | np.ndarray,
    face_uvs: torch.Tensor | np.ndarray,
    texture_res: int,
    *,
    flip_vertical: bool = True,
) -> torch.Tensor:
    """Sample a texture image into per-face ``R*R`` texels (bilinear, vectorised).

    For every texel the uv of its centre is ``w0*uv0 + w1*uv1 + w2*uv2``; uvs outside
    ``[0, 1]`` are wrapped per vertex (``uv % 1``, as the original did for ``uv > 1``). The
    pixel position is ``(u*(W-1), v*(H-1))`` with ``v`` pointing up, and the four bilinear
    neighbours are clamped to the image.

    Args:
        image: ``[H, W, 3]`` float image in [0, 1] (``uint8`` arrays are scaled by 1/255;
            ``[H, W]`` grey and ``[H, W, 4]`` RGBA are accepted, alpha is dropped). Row 0 is
            the top of the picture, as stored in an image file.
        face_uvs: ``[F, 3, 2]`` uv coordinates of the three corners of each face.
        texture_res: ``R``, texels per triangle side.
        flip_vertical: if True (default) ``v = 0`` is the *bottom* row of ``image`` (OBJ
            convention); if False, ``v = 0`` is row 0.

    Returns:
        ``[F, R*R, 3]`` float tensor, on the device and of the dtype of ``image``
        (float32 for integer images).
    """
    r = check_texture_res(texture_res)
    img = _image_to_float(image)
    uvs = as_float_tensor("face_uvs", face_uvs, device=img.device, dtype=img.dtype)
    check_shape("face_uvs", uvs, ("F", 3, 2))
    if flip_vertical:
        img = torch.flip(img, dims=[0])
    h, w = img.shape[0], img.shape[1]
    uvs = torch.where((uvs > 1) | (uvs < 0), torch.remainder(uvs, 1.0), uvs)
    bary = texel_barycentrics(r, dtype=img.dtype).to(img.device)  # [T, 3]
    uv = torch.einsum("tk,fkc->ftc", bary, uvs)  # [F, T, 2]
    x = uv[..., 0] * (w - 1)
    y = uv[..., 1] * (h - 1)
    x0f = torch.floor(x)
    y0f = torch.floor(y)
    fx = (x - x0f)[..., None]
    fy = (y - y0f)[..., None]
    x0 = x0f.long().clamp(0, w - 1)
    y0 = y0f.long().clamp(0, h - 1)
    x1 = (x0f.long() + 1).clamp(0, w - 1)
    y1 = (y0f.long() + 1).clamp(0, h - 1)
    flat = img.reshape(-1, 3)

    def px(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat[yy * w + xx]

    top = px(y0, x0) * (1 - fx) + px(y0, x1) * fx
    bottom = px(y1, x0) * (1 - fx) + px(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


class _AtlasLayout(NamedTuple):
    """Where each face's texels go in a texture atlas (see :func:`create_texture_atlas`)."""

    texel: torch.Tensor  # [cell, cell] int64: the texel each pixel of a cell shows (row 0 at the bottom)
    rows: int  # cells down
    cols: int  # cells across
    cell: int  # pixels per cell side
    corners: torch.Tensor  # [F, 3, 2] float64 pixel positions (x from the left, y from the bottom) of the corners


def _atlas_layout(n_faces: int, r: int, cell_size: int, padding: int) -> _AtlasLayout:
    """The atlas layout of ``n_faces`` faces of R×R texels (cells of at least ``8R + 2·padding`` pixels)."""
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, np.integer)):
        raise TypeError(f"cell_size: expected an integer, got {type(cell_size).__name__}")
    if cell_size < 2:
        raise ValueError(f"cell_size: expected an integer >= 2, got {cell_size}")
    padding = max(int(padding), 1)
    cell = max(int(cell_size), 8 * r + 2 * padding)
    inner = cell - 2 * padding  # pixel span of the triangle's legs
    cols = math.isqrt(n_faces - 1) + 1
    rows = (n_faces - 1) // cols + 1

    # Local coordinates of a cell's pixels (pixel centres at integer positions), v up.
    k = torch.arange(cell, dtype=torch.float64)
    s = (k - padding) / inner
    ss, tt = torch.meshgrid(s, s, indexing="xy")  # [cell, cell]: tt varies along rows
    ss = ss.clamp(min=0)
    tt = tt.clamp(min=0)
    excess = ((ss + tt - 1) / 2).clamp(min=0)
    ss = (ss - excess).clamp(0, 1)
    tt = (tt - excess).clamp(0, 1)
    texel = texel_index(ss, tt, r)  # [cell, cell], row = v index (bottom-up)

    f = torch.arange(n_faces)
    cx = (f % cols).double() * cell + padding
    cy = torch.div(f, cols, rounding_mode="floor").double() * cell + padding
    legs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    px = cx[:, None] + legs[None, :, 0] * inner
    py = cy[:, None] + legs[None, :, 1] * inner
    return _AtlasLayout(texel, rows, cols, cell, torch.stack([px, py], dim=-1))


def _paint_atlas(colours: torch.Tensor, layout: _AtlasLayout, fill: float) -> torch.Tensor:
    """The atlas image [H, W, C] (row 0 at the top) of per-face texels ``colours`` [F, R*R, C]."""
    n_faces, _, c = colours.shape
    cell, rows, cols = layout.cell, layout.rows, layout.cols
    painted = colours[:, layout.texel.reshape(-1)].reshape(n_faces, cell, cell, c)
    pad_faces = rows * cols - n_faces
    if pad_faces:
        painted = torch.cat([painted, painted.new_full((pad_faces, cell, cell, c), fill)], dim=0)
    # [rows, cols, cell(v), cell(u), C] -> image with v up, then flip so row 0 is the top.
    atlas = painted.reshape(rows, cols, cell, cell, c).permute(0, 2, 1, 3, 4)
    return atlas.reshape(rows * cell, cols * cell, c).flip(0)


def _check_atlas_textures(textures: torch.Tensor) -> int:
    """R of surface textures [F, R*R, C] (at least one face)."""
    check_shape("textures", textures, ("F", "T", "C"))
    n_faces, n_texels = textures.shape[0], textures.shape[1]
    if n_faces < 1:
        raise ValueError("textures: expected at least one face")
    r = math.isqrt(n_texels)
    if r * r != n_texels or r < 1:
        raise ValueError(f"textures: number of texels per face ({n_texels}) is not a square R*R")
    return r


def create_texture_atlas(
    textures: torch.Tensor | np.ndarray,
    cell_size: int = 16,
    *,
    padding: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint per-face texels into a texture atlas so that re-sampling is (nearly) exact.

    Every face gets its own square cell in a grid of ``ceil(sqrt(F))`` columns. Inside the
    cell the face is mapped to a right triangle (corner 2 at the cell's lower-left, corner 0
    to the right, corner 1 above) and each pixel gets the colour of the texel it lies in;
    pixels outside the triangle get the colour of the nearest point on it (dilation), so
    bilinear sampling at a texel centre reads that texel's colour only. This needs at least
    about 7 pixels per texel side, so the cell is enlarged to at least ``8*R + 2*padding``
    pixels if ``cell_size`` is smaller.

    Args:
        textures: ``[F, R*R, 3]`` surface textures in [0, 1] (values outside are clipped, with
            one ``UserWarning`` naming ``textures``).
        cell_size: side of a face's cell in pixels (as the original's ``texture_res``).
        padding: pixels of dilation around the triangle in each cell.

    Returns:
        ``(image, face_uvs)``: ``image`` is a float32 ``[H, W, 3]`` numpy array (row 0 at
        the top, ready for writing to a file) and ``face_uvs`` a float32 ``[F, 3, 2]``
        numpy array of uv coordinates (``v`` up) for the three corners of every face, in the
        convention of :func:`sample_surface_textures` (pixel x = u·(W − 1)).
    """
    tex = as_float_tensor("textures", textures, dtype=torch.float32).detach().cpu()
    check_shape("textures", tex, ("F", "T", 3))
    r = _check_atlas_textures(tex)
    layout = _atlas_layout(tex.shape[0], r, cell_size, padding)
    atlas = _paint_atlas(clip_colors("textures", tex), layout, 1.0)
    height, width = atlas.shape[:2]
    scale = torch.tensor([max(width - 1, 1), max(height - 1, 1)], dtype=torch.float64)
    uvs = layout.corners / scale
    return atlas.numpy().astype(np.float32), uvs.numpy().astype(np.float32)


def texture_atlas(
    textures: torch.Tensor, cell_size: int = 16, *, padding: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """The atlas of :func:`create_texture_atlas` as tensors, for UV textures (:class:`softras.UVTexture`).

    Args:
        textures: [F, R*R, C] surface texels, any C and values (not clipped).
        cell_size, padding: as :func:`create_texture_atlas`.

    Returns:
        ``(image [H, W, C], face_uvs [F, 3, 2] float64)``: the image is a gather of ``textures``
        (differentiable; unused cells are 0); the UVs follow softras's texel-centre convention
        (pixel x = u·W − ½, :mod:`softras.raster.model.texture`), so a UV lookup at a texel's centre
        reads the pixels painted with that texel.
    """
    r = _check_atlas_textures(textures)
    layout = _atlas_layout(textures.shape[0], r, cell_size, padding)
    atlas = _paint_atlas(textures, layout, 0.0)
    size = torch.tensor([atlas.shape[1], atlas.shape[0]], dtype=torch.float64)
    return atlas, (layout.corners + 0.5) / size


def surface_textures_from_vertex_colors(
    faces: torch.Tensor | np.ndarray,
    vertex_colors: torch.Tensor | np.ndarray,
    texture_res: int,
) -> torch.Tensor:
    """Evaluate per-vertex colours at the texel centres of every face.

    Args:
        faces: ``[F, 3]`` vertex indices.
        vertex_colors: ``[V, C]`` colours (usually ``C = 3``).
        texture_res: ``R``.

    Returns:
        ``[F, R*R, C]`` surface textures (differentiable w.r.t. ``vertex_colors``).
    """
    r = check_texture_res(texture_res)
    cols = as_float_tensor("vertex_colors", vertex_colors)
    check_shape("vertex_colors", cols, ("V", "C"))
    f = as_index_tensor("faces", faces, device=cols.device).long()
    check_shape("faces", f, ("F", 3))
    if f.numel() and (int(f.min()) < 0 or int(f.max()) >= cols.shape[0]):
        n = cols.shape[0]
        raise ValueError(f"faces: indices must lie in [0, {n}) for {n} vertex colours")
    bary = texel_barycentrics(r, dtype=cols.dtype).to(cols.device)
    return torch.einsum("tk,fkc->ftc", bary, cols[f])
