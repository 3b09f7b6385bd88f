"""Between ``trimesh.Trimesh`` objects and softras tensors (vertices, faces and colours).

:func:`softras.io.load_mesh` reads non-OBJ files with trimesh and takes their colours with
:func:`trimesh_textures`; :meth:`softras.Mesh.from_trimesh` / :meth:`softras.Mesh.to_trimesh`
convert with :func:`trimesh_to_tensors` / :func:`tensors_to_trimesh`. The colour rules are
described in :mod:`softras.interop`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from softras._memory import check_texels
from softras._optional import require
from softras._validation import check_choice, check_float_dtype
from softras.io.obj import normalize_vertices
from softras.io.texture import (
    check_texture_res,
    clip_colors,
    create_texture_atlas,
    sample_surface_textures,
    surface_textures_from_vertex_colors,
)

if TYPE_CHECKING:
    import trimesh

__all__ = ["SURFACE_TO_TRIMESH", "tensors_to_trimesh", "trimesh_textures", "trimesh_to_tensors"]

_TEXTURE_TYPES = ("surface", "vertex")
#: How :meth:`Mesh.to_trimesh` writes surface textures: ``'auto'`` (face colours when every face is
#: one colour, else a texture atlas), ``'face_colors'`` (the mean texel of each face) or ``'texture'``.
SURFACE_TO_TRIMESH = ("auto", "face_colors", "texture")
_ATLAS_CELL = 16  # pixels per face cell of the atlas (create_texture_atlas enlarges it to fit R)


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


def trimesh_textures(mesh: trimesh.Trimesh, texture_res: int, texture_type: str, *, name: str = "mesh") -> torch.Tensor:
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
                vertex_colors = sample_surface_textures(torch.from_numpy(image), uv_t[:, None, :].expand(n_v, 3, 2), 1)[
                    :, 0, :
                ]
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


def trimesh_to_tensors(
    mesh: trimesh.Trimesh,
    *,
    texture_res: int = 4,
    texture_type: str = "surface",
    normalization: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``(vertices [V, 3], faces [F, 3], textures, R)`` of a ``trimesh.Trimesh`` (see :meth:`Mesh.from_trimesh`)."""
    trimesh = require("trimesh", "Mesh.from_trimesh")
    if not isinstance(mesh, trimesh.Trimesh):
        hint = " (merge a scene with scene.to_geometry() or load it with force='mesh')"
        got = type(mesh).__name__
        raise TypeError(f"mesh: expected a trimesh.Trimesh, got {got}" + (hint if "Scene" in got else ""))
    if len(mesh.vertices) == 0 or len(mesh.faces) == 0:
        raise ValueError(
            f"mesh: expected a mesh with vertices and faces, got {len(mesh.vertices)} vertices "
            f"and {len(mesh.faces)} faces"
        )
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    check_float_dtype(dtype)
    r = check_texture_res(texture_res)
    vertices = torch.as_tensor(np.asarray(mesh.vertices, dtype=np.float64))
    if normalization:
        vertices = normalize_vertices(vertices)
    faces = torch.as_tensor(np.asarray(mesh.faces, dtype=np.int64))
    textures = trimesh_textures(mesh, r, texture_type)
    return (
        vertices.to(device=device, dtype=dtype),
        faces.to(device=device),
        textures.to(device=device, dtype=dtype),
        r,
    )


def _rgba8(colors: torch.Tensor) -> np.ndarray:
    """uint8 RGBA [N, 4] (opaque) from RGB in [0, 1] [N, 3] (clipped with a warning naming ``textures``)."""
    rgb = np.round(clip_colors("textures", colors.detach().double().cpu()).numpy() * 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)


def tensors_to_trimesh(
    vertices: torch.Tensor, faces: torch.Tensor, textures: torch.Tensor, texture_type: str, surface: str = "auto"
) -> trimesh.Trimesh:
    """A ``trimesh.Trimesh`` of one mesh (``[V, 3]``, ``[F, 3]``, textures ``[V, 3]`` / ``[F, R*R, 3]``).

    See :meth:`softras.Mesh.to_trimesh`, which checks the face indices first.
    """
    trimesh = require("trimesh", "Mesh.to_trimesh")
    from PIL import Image

    check_choice("surface", surface, SURFACE_TO_TRIMESH)
    v = vertices.detach().cpu().double().numpy()
    f = faces.detach().cpu().long().numpy()
    textures = textures.detach()
    if texture_type == "vertex":
        return trimesh.Trimesh(v, f, vertex_colors=_rgba8(textures), process=False)
    constant = bool((textures == textures[:, :1]).all())
    if surface == "face_colors" or (surface == "auto" and constant):
        return trimesh.Trimesh(v, f, face_colors=_rgba8(textures.mean(1)), process=False)
    image, face_uvs = create_texture_atlas(textures.cpu(), _ATLAS_CELL)
    visual = trimesh.visual.TextureVisuals(
        uv=face_uvs.reshape(-1, 2).astype(np.float64),
        image=Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)),
    )
    corners = v[f].reshape(-1, 3)
    return trimesh.Trimesh(corners, np.arange(len(corners)).reshape(-1, 3), visual=visual, process=False)
