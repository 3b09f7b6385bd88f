"""Between PyTorch3D ``Meshes`` and softras tensors (the colour rules are described in :mod:`softras.interop`).

:meth:`softras.Mesh.from_pytorch3d` / :meth:`softras.Mesh.to_pytorch3d` and
:func:`softras.interop.meshes_from_pytorch3d` / :func:`softras.interop.meshes_to_pytorch3d` build on
:func:`pytorch3d_items` and :func:`items_to_pytorch3d`; nothing here needs :class:`softras.Mesh`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import torch

from softras._optional import require
from softras._validation import check_choice, check_float_dtype
from softras.io.texture import (
    check_texture_res,
    sample_surface_textures,
    surface_textures_from_vertex_colors,
    texel_barycentrics,
)

__all__ = ["MeshItem", "items_to_pytorch3d", "pytorch3d_items"]

_TEXTURE_TYPES = ("surface", "vertex")


class MeshItem(NamedTuple):
    """One mesh of a PyTorch3D ``Meshes`` as softras tensors (the arguments of :class:`softras.Mesh`)."""

    vertices: torch.Tensor
    faces: torch.Tensor
    textures: torch.Tensor | None
    texture_res: int
    texture_type: str


class _MeshBatch(Protocol):
    vertices: torch.Tensor
    faces: torch.Tensor
    textures: torch.Tensor
    texture_res: int
    texture_type: str


def _uv_textures(textures: Any, i: int, texture_res: int, dtype: torch.dtype) -> torch.Tensor:
    """Surface textures [F, R*R, 3] of item ``i`` of a ``TexturesUV``: its map read at the texel centres.

    As PyTorch3D reads it: bilinear, ``v = 0`` at the bottom row, ``align_corners`` as set, and a uv
    outside [0, 1] reading the edge (``padding_mode='border'``, PyTorch3D's default).
    """
    image = textures.maps_list()[i].to(dtype)
    if image.ndim != 3:
        raise ValueError(f"meshes.textures: expected one [H, W, C] map per mesh, got shape {tuple(image.shape)}")
    face_uvs = textures.verts_uvs_list()[i].to(dtype)[textures.faces_uvs_list()[i].long()]  # [F, 3, 2]
    uv = torch.einsum("tk,fkc->ftc", texel_barycentrics(texture_res, dtype).to(image.device), face_uvs)
    if not getattr(textures, "align_corners", True):  # uv 0 and 1 are the image's outer edges
        size = torch.tensor([image.shape[1], image.shape[0]], dtype=dtype, device=image.device)
        uv = (uv * size - 0.5) / (size - 1).clamp(min=1)
    points = uv.clamp(0, 1).reshape(-1, 1, 2).expand(-1, 3, 2)  # each texel centre as a point "face"
    return sample_surface_textures(image, points, 1).reshape(uv.shape[0], uv.shape[1], image.shape[-1])


def _check_channels(name: str, t: torch.Tensor) -> torch.Tensor:
    if t.shape[-1] != 3:
        raise ValueError(f"meshes.textures: expected 3 colour channels, got {name} with {t.shape[-1]}")
    return t


def pytorch3d_items(
    meshes: Any,
    *,
    texture_res: int = 4,
    texture_type: str | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> list[MeshItem]:
    """One :class:`MeshItem` per item of a PyTorch3D ``Meshes`` (see :func:`softras.interop.meshes_from_pytorch3d`)."""
    if not all(hasattr(meshes, name) for name in ("verts_list", "faces_list", "textures")):
        raise TypeError(f"meshes: expected a pytorch3d.structures.Meshes, got {type(meshes).__name__}")
    if texture_type is not None:
        check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    if dtype is not None:
        check_float_dtype(dtype)
    r = check_texture_res(texture_res)
    tex = meshes.textures
    kind = type(tex).__name__ if tex is not None else None
    if kind not in (None, "TexturesVertex", "TexturesAtlas", "TexturesUV"):
        raise TypeError(f"meshes.textures: expected TexturesVertex, TexturesAtlas or TexturesUV, got {kind}")
    wanted = texture_type or ("vertex" if kind == "TexturesVertex" else "surface")
    if wanted == "vertex" and kind in ("TexturesAtlas", "TexturesUV"):
        raise ValueError(f"texture_type: {kind} holds colours per face, so it converts to 'surface' only")

    out = []
    for i, (verts, faces) in enumerate(zip(meshes.verts_list(), meshes.faces_list(), strict=True)):
        ftype = dtype or verts.dtype
        colours: torch.Tensor | None = None
        res = r
        if kind == "TexturesVertex":
            colours = _check_channels("verts_features", tex.verts_features_list()[i]).to(ftype)
            if wanted == "surface":
                colours = surface_textures_from_vertex_colors(faces, colours, r)
        elif kind == "TexturesAtlas":
            atlas = _check_channels("atlas", tex.atlas_list()[i])  # [F, R, R, 3]: texel (wx, wy) at [wy, wx]
            res = atlas.shape[1]
            colours = atlas.reshape(atlas.shape[0], res * res, 3).to(ftype)
        elif kind == "TexturesUV":
            colours = _uv_textures(tex, i, r, ftype)
        out.append(
            MeshItem(
                verts.to(device=device, dtype=ftype),
                faces.to(device=device if device is not None else verts.device).long(),
                None if colours is None else colours.to(device=device),
                res,
                wanted,
            )
        )
    return out


def items_to_pytorch3d(items: Sequence[_MeshBatch]) -> Any:
    """A PyTorch3D ``Meshes`` of every item of the batches ``items``.

    See :func:`softras.interop.meshes_to_pytorch3d`.
    """
    structures = require("pytorch3d.structures", "Mesh.to_pytorch3d")
    renderer = require("pytorch3d.renderer", "Mesh.to_pytorch3d")
    kinds = {(m.texture_type, m.texture_res if m.texture_type == "surface" else 0) for m in items}
    if len(kinds) != 1:
        raise ValueError(f"meshes: expected one texture type and one texture_res, got {sorted(kinds)}")
    verts = [v for m in items for v in m.vertices.unbind(0)]
    faces = [f.long() for m in items for f in m.faces.unbind(0)]
    textures = [t for m in items for t in m.textures.unbind(0)]
    if items[0].texture_type == "vertex":
        tex = renderer.TexturesVertex(verts_features=textures)
    else:
        r = items[0].texture_res
        tex = renderer.TexturesAtlas(atlas=[t.reshape(t.shape[0], r, r, t.shape[-1]) for t in textures])
    return structures.Meshes(verts=verts, faces=faces, textures=tex)
