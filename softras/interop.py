"""Conversions between :class:`softras.Mesh` and trimesh, PyTorch3D and Open3D meshes.

==================== ================================= =========================================================
other library        to softras                        from softras
==================== ================================= =========================================================
``trimesh.Trimesh``  :meth:`Mesh.from_trimesh`         :meth:`Mesh.to_trimesh`
``trimesh.Scene``    :meth:`Mesh.from_trimesh_scene`,  :meth:`Mesh.to_trimesh_scene`, :func:`mesh_to_trimesh_scene`
                     :func:`meshes_from_trimesh_scene`
PyTorch3D ``Meshes`` :meth:`Mesh.from_pytorch3d`,      :meth:`Mesh.to_pytorch3d`, :func:`meshes_to_pytorch3d`
                     :func:`meshes_from_pytorch3d`
Open3D               :func:`open3d_to_trimesh`         :func:`trimesh_to_open3d`
                     then ``Mesh.from_trimesh``        after ``Mesh.to_trimesh``
==================== ================================= =========================================================

Meshes of different sizes: a ``trimesh.Scene`` becomes one padded list batch (one item per placed
mesh, its scene-graph transform applied), and a batch becomes a scene (one geometry per item);
``meshes_from_pytorch3d(meshes, padded=True)`` gives one padded list batch, and
``meshes_to_pytorch3d`` / ``Mesh.to_pytorch3d`` write each item of a padded list with its own counts.

How colours map (softras keeps colours as per-vertex ``[V, 3]`` or per-face ``R×R`` texels ``[F, R*R, 3]``):

- trimesh → softras: vertex colours, face colours, or a texture image sampled with the uvs at the
  texel centres (the same rule as :func:`softras.io.load_mesh`); white where the mesh has none.
- softras → trimesh: vertex textures become vertex colours; surface textures that are constant on
  every face become face colours; other surface textures become a ``TextureVisuals`` with a texture
  atlas (one cell per face, :func:`softras.io.create_texture_atlas`) and ``uv``. A trimesh texture
  needs one uv per vertex, so the atlas form has 3 vertices per face (the corners are not shared).
  trimesh keeps colours as 8-bit integers, so colours round to multiples of 1/255; positions are
  float64 in trimesh and come back exactly.
- UV textures (:class:`softras.UVTexture`, ``texture_type='uv'``): trimesh's ``TextureVisuals``
  (one uv per vertex and one image) ↔ the texture image and UVs; softras → trimesh splits vertices
  at UV seams and packs several images side by side into one; images are 8-bit in trimesh.
  PyTorch3D's ``TexturesUV`` is not converted (convert to ``'surface'`` first).
- PyTorch3D: ``TexturesVertex`` ↔ vertex textures; ``TexturesAtlas`` ↔ surface textures exactly
  (PyTorch3D's atlas ``[F, R, R, 3]`` uses the original SoftRas texel layout, so it is a reshape);
  ``TexturesUV`` → surface textures: the map read at the texel centres as PyTorch3D reads it.
  Tensors keep their autograd graph.

PyTorch3D and Open3D are optional: the functions that need them import them when called and raise
an ``ImportError`` naming the package when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch

from softras._optional import require
from softras._pytorch3d import items_to_pytorch3d, pytorch3d_items
from softras.io.texture import clip_colors
from softras.io.trimesh_mesh import SURFACE_TO_TRIMESH, trimesh_textures
from softras.mesh import Mesh

if TYPE_CHECKING:
    import trimesh

__all__ = [
    "SURFACE_TO_TRIMESH",
    "mesh_to_trimesh_scene",
    "meshes_from_pytorch3d",
    "meshes_from_trimesh_scene",
    "meshes_to_pytorch3d",
    "open3d_to_trimesh",
    "trimesh_textures",
    "trimesh_to_open3d",
]


# ---- trimesh (the conversions are softras.io.trimesh_mesh; these names are kept for callers) -----
def mesh_from_trimesh(mesh: trimesh.Trimesh, **kwargs: Any) -> Mesh:
    """Same as :meth:`softras.Mesh.from_trimesh`."""
    return Mesh.from_trimesh(mesh, **kwargs)


def mesh_to_trimesh(mesh: Mesh, index: int = 0, surface: str = "auto") -> trimesh.Trimesh:
    """Same as :meth:`softras.Mesh.to_trimesh`."""
    return mesh.to_trimesh(index, surface=surface)


def meshes_from_trimesh_scene(scene: trimesh.Scene, **kwargs: Any) -> Mesh:
    """Same as :meth:`softras.Mesh.from_trimesh_scene`: a padded list batch, one item per placed mesh."""
    return Mesh.from_trimesh_scene(scene, **kwargs)


def mesh_to_trimesh_scene(mesh: Mesh, surface: str = "auto") -> trimesh.Scene:
    """Same as :meth:`softras.Mesh.to_trimesh_scene`: a ``trimesh.Scene``, one geometry per item."""
    return mesh.to_trimesh_scene(surface=surface)


# ---- PyTorch3D ----------------------------------------------------------------------------
@overload
def meshes_from_pytorch3d(
    meshes: Any,
    *,
    texture_res: int = ...,
    texture_type: str | None = ...,
    dtype: torch.dtype | None = ...,
    device: torch.device | str | None = ...,
    padded: Literal[False] = ...,
) -> list[Mesh]: ...


@overload
def meshes_from_pytorch3d(
    meshes: Any,
    *,
    texture_res: int = ...,
    texture_type: str | None = ...,
    dtype: torch.dtype | None = ...,
    device: torch.device | str | None = ...,
    padded: Literal[True],
) -> Mesh: ...


def meshes_from_pytorch3d(
    meshes: Any,
    *,
    texture_res: int = 4,
    texture_type: str | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    padded: bool = False,
) -> list[Mesh] | Mesh:
    """The items of a PyTorch3D ``Meshes``, which may differ in size: one :class:`softras.Mesh` (batch 1)
    each, or with ``padded=True`` one padded list batch of them (``sr.Mesh([v_1, ...], [f_1, ...], ...)``:
    :attr:`~softras.Mesh.vertex_counts` and :attr:`~softras.Mesh.face_counts` are the items' own).

    Args:
        meshes: a ``pytorch3d.structures.Meshes`` with N items.
        texture_res: R when surface textures are sampled from a ``TexturesUV``, or made from vertex
            colours (a ``TexturesAtlas`` keeps its own R).
        texture_type: ``'vertex'`` or ``'surface'``; ``None`` picks the natural one (``'vertex'``
            for ``TexturesVertex``, ``'surface'`` otherwise).
        dtype: of the result; ``None`` keeps the vertices' dtype.
        device: of the result; ``None`` keeps the vertices' device.
        padded: return one padded batch of N items instead of a list of N meshes.

    Returns:
        N meshes, or one batch of N; vertices and textures keep the autograd graph of the PyTorch3D tensors.
    """
    items = pytorch3d_items(meshes, texture_res=texture_res, texture_type=texture_type, dtype=dtype, device=device)
    if padded:
        textures = None if items[0].textures is None else [item.textures for item in items]
        return Mesh(
            [item.vertices for item in items],
            [item.faces for item in items],
            textures,
            texture_res=items[0].texture_res,
            texture_type=items[0].texture_type,
        )
    return [
        Mesh(item.vertices, item.faces, item.textures, texture_res=item.texture_res, texture_type=item.texture_type)
        for item in items
    ]


def mesh_from_pytorch3d(meshes: Any, **kwargs: Any) -> Mesh:
    """Same as :meth:`softras.Mesh.from_pytorch3d`."""
    return Mesh.from_pytorch3d(meshes, **kwargs)


def meshes_to_pytorch3d(meshes: Mesh | Sequence[Mesh]) -> Any:
    """A PyTorch3D ``Meshes`` holding every item of ``meshes`` (one Mesh, or a list of them of any sizes).

    Vertex textures become ``TexturesVertex``; surface textures ``TexturesAtlas`` (the same texels:
    PyTorch3D's atlas uses the original SoftRas layout). Each item of a padded list batch keeps its
    own vertices and faces (:meth:`softras.Mesh.item`). The tensors keep their autograd graph.

    Raises:
        ImportError: PyTorch3D is not installed.
        ValueError: the meshes mix texture types, or surface textures of different R, or have UV textures.
    """
    require("pytorch3d.structures", "Mesh.to_pytorch3d")
    require("pytorch3d.renderer", "Mesh.to_pytorch3d")
    items = [meshes] if isinstance(meshes, Mesh) else list(meshes)
    if not items or not all(isinstance(m, Mesh) for m in items):
        raise TypeError("meshes: expected a softras.Mesh or a non-empty list of them")
    if any(m.texture_type == "uv" for m in items):
        raise ValueError(
            "meshes: UV textures are not converted to PyTorch3D's TexturesUV; use "
            "mesh.to_texture_type('surface', texture_res) for a TexturesAtlas"
        )
    return items_to_pytorch3d([item for m in items for item in (m.items() if m.is_padded else [m])])


# ---- Open3D (through trimesh) ---------------------------------------------------------------
def open3d_to_trimesh(mesh: Any) -> trimesh.Trimesh:
    """A ``trimesh.Trimesh`` from an ``open3d.geometry.TriangleMesh`` (positions, triangles, colours, uvs).

    Vertex colours come across as vertex colours. A textured mesh (``triangle_uvs`` and one image in
    ``textures``) becomes a ``TextureVisuals`` with 3 vertices per triangle, as Open3D keeps one uv
    per triangle corner. Then use :meth:`softras.Mesh.from_trimesh`.
    """
    import trimesh

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.triangles, dtype=np.int64)
    uvs = np.asarray(getattr(mesh, "triangle_uvs", np.empty((0, 2))), dtype=np.float64)
    images = list(getattr(mesh, "textures", []))
    if len(uvs) == 3 * len(faces) and len(faces) and images:
        from PIL import Image

        image = np.asarray(images[0])
        if image.dtype != np.uint8:
            image = np.round(clip_colors("mesh.textures", torch.from_numpy(image)).numpy() * 255).astype(np.uint8)
        visual = trimesh.visual.TextureVisuals(uv=uvs, image=Image.fromarray(image))
        corners = vertices[faces].reshape(-1, 3)
        return trimesh.Trimesh(corners, np.arange(len(corners)).reshape(-1, 3), visual=visual, process=False)
    colors = None
    if mesh.has_vertex_colors():
        colors = np.asarray(mesh.vertex_colors, dtype=np.float64)
    return trimesh.Trimesh(vertices, faces, vertex_colors=colors, process=False)


def trimesh_to_open3d(mesh: trimesh.Trimesh) -> Any:
    """An ``open3d.geometry.TriangleMesh`` with the positions, triangles and vertex colours of ``mesh``.

    A textured mesh is written with the colours trimesh derives per vertex (``visual.to_color()``).
    """
    o3d = require("open3d", "trimesh_to_open3d")
    out = o3d.geometry.TriangleMesh()
    out.vertices = o3d.utility.Vector3dVector(np.asarray(mesh.vertices, dtype=np.float64))
    out.triangles = o3d.utility.Vector3iVector(np.asarray(mesh.faces, dtype=np.int32))
    visual = mesh.visual.to_color() if getattr(mesh.visual, "kind", None) == "texture" else mesh.visual
    if getattr(visual, "kind", None) is not None:
        rgb = np.asarray(visual.vertex_colors)[:, :3].astype(np.float64) / 255.0
        out.vertex_colors = o3d.utility.Vector3dVector(rgb)
    return out
