"""Conversions between :class:`softras.Mesh` and trimesh, PyTorch3D and Open3D meshes.

==================== ============================ =========================================================
other library        to softras                   from softras
==================== ============================ =========================================================
``trimesh.Trimesh``  :meth:`Mesh.from_trimesh`    :meth:`Mesh.to_trimesh`
PyTorch3D ``Meshes`` :meth:`Mesh.from_pytorch3d`, :meth:`Mesh.to_pytorch3d`, :func:`meshes_to_pytorch3d`
                     :func:`meshes_from_pytorch3d`
Open3D               :func:`open3d_to_trimesh`    :func:`trimesh_to_open3d`
                     then ``Mesh.from_trimesh``   after ``Mesh.to_trimesh``
==================== ============================ =========================================================

How colours map (softras keeps colours as per-vertex ``[V, 3]`` or per-face ``R×R`` texels ``[F, R*R, 3]``):

- trimesh → softras: vertex colours, face colours, or a texture image sampled with the uvs at the
  texel centres (the same rule as :func:`softras.io.load_mesh`); white where the mesh has none.
- softras → trimesh: vertex textures become vertex colours; surface textures that are constant on
  every face become face colours; other surface textures become a ``TextureVisuals`` with a texture
  atlas (one cell per face, :func:`softras.io.create_texture_atlas`) and ``uv``. A trimesh texture
  needs one uv per vertex, so the atlas form has 3 vertices per face (the corners are not shared).
  trimesh keeps colours as 8-bit integers, so colours round to multiples of 1/255; positions are
  float64 in trimesh and come back exactly.
- PyTorch3D: ``TexturesVertex`` ↔ vertex textures; ``TexturesAtlas`` ↔ surface textures exactly
  (PyTorch3D's atlas ``[F, R, R, 3]`` uses the original SoftRas texel layout, so it is a reshape);
  ``TexturesUV`` → surface textures: the map read at the texel centres as PyTorch3D reads it.
  Tensors keep their autograd graph.

PyTorch3D and Open3D are optional: the functions that need them import them when called and raise
an ``ImportError`` naming the package when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from softras._memory import check_texels
from softras._validation import check_choice
from softras.io.texture import (
    clip_colors,
    create_texture_atlas,
    sample_surface_textures,
    surface_textures_from_vertex_colors,
    texel_barycentrics,
)

if TYPE_CHECKING:
    import trimesh

    from softras.mesh import Mesh

__all__ = [
    "SURFACE_TO_TRIMESH",
    "meshes_from_pytorch3d",
    "meshes_to_pytorch3d",
    "open3d_to_trimesh",
    "trimesh_textures",
    "trimesh_to_open3d",
]

_TEXTURE_TYPES = ("surface", "vertex")
#: How :meth:`Mesh.to_trimesh` writes surface textures: ``'auto'`` (face colours when every face is
#: one colour, else a texture atlas), ``'face_colors'`` (the mean texel of each face) or ``'texture'``.
SURFACE_TO_TRIMESH = ("auto", "face_colors", "texture")
_ATLAS_CELL = 16  # pixels per face cell of the atlas (create_texture_atlas enlarges it to fit R)


def _require(package: str, purpose: str) -> Any:
    """Import ``package`` or raise an ImportError that names it and what needs it."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional package {package.split('.')[0]!r}, which is not installed"
        ) from exc


def _check_dtype(dtype: object) -> None:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")


# ---- trimesh ------------------------------------------------------------------------------
def _colors01(colors: np.ndarray) -> torch.Tensor:
    """RGB in [0, 1] (float32 [N, 3]) from trimesh's uint8 RGBA (or float) colours [N, 3|4]."""
    c = np.asarray(colors)
    out = c[:, :3].astype(np.float32)
    if c.dtype == np.uint8 or out.max(initial=0.0) > 1.0:
        out = out / 255.0
    return torch.from_numpy(np.ascontiguousarray(out))


def _material_image(material: object) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(image as float [H, W, 3] or None, base colour [3] or None) of a trimesh material."""
    image = getattr(material, "image", None)
    if image is None:
        image = getattr(material, "baseColorTexture", None)
    colour = getattr(material, "baseColorFactor", None)
    if colour is None:
        colour = getattr(material, "diffuse", None)
    img = None
    if image is not None:
        arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        img = arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0)
    col = None
    if colour is not None:
        col = np.asarray(colour, dtype=np.float32).reshape(-1)[:3]
        if col.max(initial=0.0) > 1.0:
            col = col / 255.0
    return img, col


def trimesh_textures(
    mesh: trimesh.Trimesh, texture_res: int, texture_type: str, *, name: str = "mesh"
) -> torch.Tensor:
    """The colours of a trimesh mesh as softras textures (float32, CPU, in [0, 1]).

    Vertex colours, face colours, or the texture image sampled with the uvs at the texel centres,
    whichever ``mesh.visual`` has; a material's base colour when it has an image but no uvs; white
    otherwise. Float colours above 1 are taken as 0-255; values still outside [0, 1] are clipped,
    with one ``UserWarning`` naming ``name``.

    Args:
        mesh: a ``trimesh.Trimesh``.
        texture_res: R for surface textures.
        texture_type: ``'surface'`` (returns [F, R*R, 3]) or ``'vertex'`` (returns [V, 3]).
        name: what the warning calls the mesh (the argument, or the file it was read from).
    """
    faces = torch.from_numpy(np.asarray(mesh.faces, dtype=np.int64))
    n_v, n_f, r = len(mesh.vertices), len(faces), texture_res
    if texture_type == "surface":
        check_texels(n_f, r)
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)

    vertex_colors: torch.Tensor | None = None
    surface: torch.Tensor | None = None
    if kind == "vertex":
        vertex_colors = _colors01(visual.vertex_colors)
    elif kind == "face":
        face_colors = _colors01(visual.face_colors)
        if texture_type == "surface":
            surface = face_colors[:, None, :].expand(n_f, r * r, 3).contiguous()
        else:
            vertex_colors = _colors01(visual.vertex_colors)
    elif kind == "texture":
        image, colour = _material_image(visual.material)
        uv = getattr(visual, "uv", None)
        if image is not None and uv is not None and len(uv) == n_v:
            uv_t = torch.from_numpy(np.asarray(uv, dtype=np.float32))
            if texture_type == "surface":
                surface = sample_surface_textures(torch.from_numpy(image), uv_t[faces], r)
            else:
                vertex_colors = sample_surface_textures(
                    torch.from_numpy(image), uv_t[:, None, :].expand(n_v, 3, 2), 1
                )[:, 0, :]
        elif colour is not None:
            vertex_colors = torch.from_numpy(colour)[None, :].expand(n_v, 3).contiguous()

    if texture_type == "vertex":
        textures = vertex_colors if vertex_colors is not None else torch.ones(n_v, 3)
    elif surface is not None:
        textures = surface
    elif vertex_colors is not None:
        textures = surface_textures_from_vertex_colors(faces, vertex_colors, r)
    else:
        textures = torch.ones(n_f, r * r, 3)
    return clip_colors(f"{name} colours", textures.float()).contiguous()


def mesh_from_trimesh(
    mesh: trimesh.Trimesh,
    *,
    texture_res: int = 4,
    texture_type: str = "surface",
    normalization: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Mesh:
    """Implementation of :meth:`softras.Mesh.from_trimesh` (see there)."""
    trimesh = _require("trimesh", "Mesh.from_trimesh")
    from softras.io.formats import _check_res, _normalize
    from softras.mesh import Mesh

    if not isinstance(mesh, trimesh.Trimesh):
        hint = " (merge a scene with scene.to_geometry() or load it with force='mesh')"
        got = type(mesh).__name__
        raise TypeError(f"mesh: expected a trimesh.Trimesh, got {got}" + (hint if "Scene" in got else ""))
    if len(mesh.vertices) == 0 or len(mesh.faces) == 0:
        raise ValueError(f"mesh: expected a mesh with vertices and faces, got {len(mesh.vertices)} vertices "
                         f"and {len(mesh.faces)} faces")
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    _check_dtype(dtype)
    r = _check_res(texture_res)
    vertices = torch.as_tensor(np.asarray(mesh.vertices, dtype=np.float64))
    if normalization:
        vertices = _normalize(vertices)
    faces = torch.as_tensor(np.asarray(mesh.faces, dtype=np.int64))
    textures = trimesh_textures(mesh, r, texture_type)
    return Mesh(
        vertices.to(device=device, dtype=dtype),
        faces.to(device=device),
        textures.to(device=device, dtype=dtype),
        texture_res=r,
        texture_type=texture_type,
    )


def _rgba8(colors: torch.Tensor) -> np.ndarray:
    """uint8 RGBA [N, 4] (opaque) from RGB in [0, 1] [N, 3] (clipped with a warning naming ``textures``)."""
    rgb = np.round(clip_colors("textures", colors.detach().double().cpu()).numpy() * 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)


def mesh_to_trimesh(mesh: Mesh, index: int = 0, surface: str = "auto") -> trimesh.Trimesh:
    """Implementation of :meth:`softras.Mesh.to_trimesh` (see there)."""
    trimesh = _require("trimesh", "Mesh.to_trimesh")
    from PIL import Image

    check_choice("surface", surface, SURFACE_TO_TRIMESH)
    if isinstance(index, bool) or not isinstance(index, int) or not -mesh.batch_size <= index < mesh.batch_size:
        b = mesh.batch_size
        raise IndexError(f"index: expected an int in [-{b}, {b}) for a batch of {b}, got {index!r}")
    vertices = mesh.vertices[index].detach().cpu().double().numpy()
    faces = mesh.faces[index].detach().cpu().long().numpy()
    outside = (faces < 0) | (faces >= len(vertices))
    if outside.any():
        face = int(np.flatnonzero(outside.any(axis=1))[0])
        raise ValueError(
            f"faces: face {face} of item {index} has vertex index {int(faces[face][outside[face]][0])}, outside "
            f"[0, {len(vertices)}) (trimesh would read a negative index from the end)"
        )
    textures = mesh.textures[index].detach()
    if mesh.texture_type == "vertex":
        return trimesh.Trimesh(vertices, faces, vertex_colors=_rgba8(textures), process=False)
    constant = bool((textures == textures[:, :1]).all())
    if surface == "face_colors" or (surface == "auto" and constant):
        return trimesh.Trimesh(vertices, faces, face_colors=_rgba8(textures.mean(1)), process=False)
    image, face_uvs = create_texture_atlas(textures.cpu(), _ATLAS_CELL)
    visual = trimesh.visual.TextureVisuals(
        uv=face_uvs.reshape(-1, 2).astype(np.float64),
        image=Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)),
    )
    corners = vertices[faces].reshape(-1, 3)
    return trimesh.Trimesh(corners, np.arange(len(corners)).reshape(-1, 3), visual=visual, process=False)


# ---- PyTorch3D ----------------------------------------------------------------------------
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


def meshes_from_pytorch3d(
    meshes: Any,
    *,
    texture_res: int = 4,
    texture_type: str | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> list[Mesh]:
    """One :class:`softras.Mesh` (batch 1) per item of a PyTorch3D ``Meshes``; items may differ in size.

    Args:
        meshes: a ``pytorch3d.structures.Meshes`` with N items.
        texture_res: R when surface textures are sampled from a ``TexturesUV``, or made from vertex
            colours (a ``TexturesAtlas`` keeps its own R).
        texture_type: ``'vertex'`` or ``'surface'``; ``None`` picks the natural one (``'vertex'``
            for ``TexturesVertex``, ``'surface'`` otherwise).
        dtype: of the result; ``None`` keeps the vertices' dtype.
        device: of the result; ``None`` keeps the vertices' device.

    Returns:
        N meshes; vertices and textures keep the autograd graph of the PyTorch3D tensors.
    """
    from softras.io.formats import _check_res
    from softras.mesh import Mesh

    if not all(hasattr(meshes, name) for name in ("verts_list", "faces_list", "textures")):
        raise TypeError(f"meshes: expected a pytorch3d.structures.Meshes, got {type(meshes).__name__}")
    if texture_type is not None:
        check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    if dtype is not None:
        _check_dtype(dtype)
    r = _check_res(texture_res)
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
            Mesh(
                verts.to(device=device, dtype=ftype),
                faces.to(device=device if device is not None else verts.device).long(),
                None if colours is None else colours.to(device=device),
                texture_res=res,
                texture_type=wanted,
            )
        )
    return out


def mesh_from_pytorch3d(meshes: Any, **kwargs: Any) -> Mesh:
    """Implementation of :meth:`softras.Mesh.from_pytorch3d` (see there)."""
    from softras.mesh import Mesh

    items = meshes_from_pytorch3d(meshes, **kwargs)
    sizes = {(m.num_vertices, m.num_faces, m.texture_res) for m in items}
    if len(sizes) != 1:
        counts = ", ".join(f"{m.num_vertices}/{m.num_faces}" for m in items[:4]) + (", ..." if len(items) > 4 else "")
        raise ValueError(
            "meshes: a softras Mesh batch needs equal vertex and face counts, got vertices/faces "
            f"{counts}; use softras.interop.meshes_from_pytorch3d(meshes) for a list of meshes"
        )
    return Mesh(
        torch.cat([m.vertices for m in items]),
        torch.cat([m.faces for m in items]),
        torch.cat([m.textures for m in items]),
        texture_res=items[0].texture_res,
        texture_type=items[0].texture_type,
    )


def meshes_to_pytorch3d(meshes: Mesh | Sequence[Mesh]) -> Any:
    """A PyTorch3D ``Meshes`` holding every item of ``meshes`` (one Mesh, or a list of them of any sizes).

    Vertex textures become ``TexturesVertex``; surface textures ``TexturesAtlas`` (the same texels:
    PyTorch3D's atlas uses the original SoftRas layout). The tensors keep their autograd graph.

    Raises:
        ImportError: PyTorch3D is not installed.
        ValueError: the meshes mix texture types, or surface textures of different R.
    """
    from softras.mesh import Mesh

    structures = _require("pytorch3d.structures", "Mesh.to_pytorch3d")
    renderer = _require("pytorch3d.renderer", "Mesh.to_pytorch3d")
    items = [meshes] if isinstance(meshes, Mesh) else list(meshes)
    if not items or not all(isinstance(m, Mesh) for m in items):
        raise TypeError("meshes: expected a softras.Mesh or a non-empty list of them")
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
    o3d = _require("open3d", "trimesh_to_open3d")
    out = o3d.geometry.TriangleMesh()
    out.vertices = o3d.utility.Vector3dVector(np.asarray(mesh.vertices, dtype=np.float64))
    out.triangles = o3d.utility.Vector3iVector(np.asarray(mesh.faces, dtype=np.int32))
    visual = mesh.visual.to_color() if getattr(mesh.visual, "kind", None) == "texture" else mesh.visual
    if getattr(visual, "kind", None) is not None:
        rgb = np.asarray(visual.vertex_colors)[:, :3].astype(np.float64) / 255.0
        out.vertex_colors = o3d.utility.Vector3dVector(rgb)
    return out
