"""Between ``trimesh.Trimesh`` objects and softras tensors (vertices, faces and colours).

:func:`softras.io.load_mesh` reads non-OBJ files with trimesh and takes their colours with
:func:`trimesh_textures`; :meth:`softras.Mesh.from_trimesh` / :meth:`softras.Mesh.to_trimesh`
convert with :func:`trimesh_to_tensors` / :func:`tensors_to_trimesh`, and
:meth:`softras.Mesh.from_trimesh_scene` / :meth:`softras.Mesh.to_trimesh_scene` a ``trimesh.Scene``
with :func:`trimesh_scene_to_tensors` / :func:`items_to_trimesh_scene`. The colour rules are
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
from softras.uv_texture import UVTexture

if TYPE_CHECKING:
    import trimesh

__all__ = [
    "SURFACE_TO_TRIMESH",
    "items_to_trimesh_scene",
    "placed_meshes",
    "tensors_to_trimesh",
    "trimesh_scene_to_tensors",
    "trimesh_textures",
    "trimesh_to_tensors",
    "trimesh_uv_texture",
    "uv_texture_to_trimesh",
]

_TEXTURE_TYPES = ("surface", "vertex", "uv")
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


def trimesh_uv_texture(meshes: list[trimesh.Trimesh], *, name: str = "mesh") -> UVTexture:
    """The UV texture (float32, CPU) of the faces of ``meshes`` taken one after another.

    A mesh whose visual is a texture with an image and one uv per vertex reads that image (RGB,
    at its resolution; meshes sharing a material share one image) with its uvs, whose v = 0 is
    the image's bottom row, as softras's (trimesh flips glTF's v on loading). A mesh without an
    image reads a 1×1 image of its material's base colour, or white without colours.

    Raises:
        ValueError: naming ``name``, for a mesh with vertex or face colours (no UV texture: load it
            with ``texture_type='vertex'`` or ``'surface'``).
    """
    images: list[np.ndarray] = []
    known: dict[int, int] = {}
    points, corners, materials, offset = [], [], [], 0
    for mesh in meshes:
        visual = getattr(mesh, "visual", None)
        kind = getattr(visual, "kind", None)
        if kind in ("vertex", "face"):
            raise ValueError(
                f"{name}: has {kind} colours, not a UV texture; load it with texture_type='vertex' or 'surface'"
            )
        n_v, n_f = len(mesh.vertices), len(mesh.faces)
        image, colour = _material_image(visual.material) if kind == "texture" else (None, None)
        uv = getattr(visual, "uv", None) if kind == "texture" else None
        if image is not None and uv is not None and len(uv) == n_v:
            key = id(visual.material)
            uv_points, uv_faces = np.asarray(uv, dtype=np.float64)[:, :2], np.asarray(mesh.faces, dtype=np.int64)
        else:
            image = np.ones((1, 1, 3), np.float32) if colour is None else colour.reshape(1, 1, 3)
            key = hash(image.tobytes())
            uv_points, uv_faces = np.full((1, 2), 0.5), np.zeros((n_f, 3), dtype=np.int64)
        if key not in known:
            known[key] = len(images)
            images.append(clip_colors(f"{name} texture image", torch.from_numpy(np.ascontiguousarray(image))).numpy())
        points.append(uv_points)
        corners.append(uv_faces + offset)
        materials.append(np.full(n_f, known[key], dtype=np.int64))
        offset += len(uv_points)
    return UVTexture(
        [torch.from_numpy(im) for im in images],
        (torch.from_numpy(np.concatenate(points)), torch.from_numpy(np.concatenate(corners))),
        torch.from_numpy(np.concatenate(materials)),
    )


def trimesh_to_tensors(
    mesh: trimesh.Trimesh,
    *,
    texture_res: int = 4,
    texture_type: str = "surface",
    normalization: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    name: str = "mesh",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | UVTexture, int]:
    """``(vertices [V, 3], faces [F, 3], textures, R)`` of a ``trimesh.Trimesh`` (see :meth:`Mesh.from_trimesh`);
    errors and warnings call it ``name``."""
    trimesh = require("trimesh", "Mesh.from_trimesh")
    if not isinstance(mesh, trimesh.Trimesh):
        hint = (
            " (Mesh.from_trimesh_scene(scene) makes one item per mesh; or merge a scene into one mesh with "
            "scene.to_geometry() or load it with force='mesh')"
        )
        got = type(mesh).__name__
        raise TypeError(f"{name}: expected a trimesh.Trimesh, got {got}" + (hint if "Scene" in got else ""))
    if len(mesh.vertices) == 0 or len(mesh.faces) == 0:
        raise ValueError(
            f"{name}: expected a mesh with vertices and faces, got {len(mesh.vertices)} vertices "
            f"and {len(mesh.faces)} faces"
        )
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    check_float_dtype(dtype)
    r = check_texture_res(texture_res)
    vertices = torch.as_tensor(np.asarray(mesh.vertices, dtype=np.float64))
    if normalization:
        vertices = normalize_vertices(vertices)
    faces = torch.as_tensor(np.asarray(mesh.faces, dtype=np.int64))
    if texture_type == "uv":
        textures = trimesh_uv_texture([mesh], name=name).to(device=device, dtype=dtype)
    else:
        textures = trimesh_textures(mesh, r, texture_type, name=name).to(device=device, dtype=dtype)
    return vertices.to(device=device, dtype=dtype), faces.to(device=device), textures, r


def placed_meshes(scene: trimesh.Scene) -> list[tuple[str, trimesh.Trimesh, trimesh.Trimesh]]:
    """``(node, the scene's mesh, the placed mesh)`` for each node of ``scene.graph.nodes_geometry``
    holding a ``trimesh.Trimesh``, in that order; the placed mesh is a copy with the node's transform
    applied (``Trimesh.apply_transform``, which reverses the winding of a reflection). Other geometry
    (paths, point clouds) is skipped."""
    trimesh = require("trimesh", "Mesh.from_trimesh_scene")
    if not isinstance(scene, trimesh.Scene):
        hint = " (use Mesh.from_trimesh for one mesh)" if isinstance(scene, trimesh.Trimesh) else ""
        raise TypeError(f"scene: expected a trimesh.Scene, got {type(scene).__name__}{hint}")
    out = []
    for node in scene.graph.nodes_geometry:
        transform, geometry_name = scene.graph[node]
        geometry = scene.geometry.get(geometry_name)
        if isinstance(geometry, trimesh.Trimesh):
            placed = geometry.copy()
            placed.apply_transform(transform)
            out.append((node, geometry, placed))
    return out


def trimesh_scene_to_tensors(
    scene: trimesh.Scene,
    *,
    texture_res: int = 4,
    texture_type: str = "surface",
    normalization: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor | UVTexture], int]:
    """``(vertices [V_b, 3], faces [F_b, 3], textures, R)``, lists of one entry per placed mesh of a
    ``trimesh.Scene`` (:func:`placed_meshes`), as :func:`trimesh_to_tensors` converts each (see
    :meth:`softras.Mesh.from_trimesh_scene`). ``normalization`` scales the whole scene at once; the UV
    textures of the placements of one mesh (one object, under one or several geometry names) share
    its image tensors."""
    placed = placed_meshes(scene)
    if not placed:
        raise ValueError(f"scene: expected at least one trimesh.Trimesh, got geometry {sorted(scene.geometry)}")
    parts = [
        trimesh_to_tensors(mesh, texture_res=texture_res, texture_type=texture_type, dtype=torch.float64,
                           name=f"scene node {node!r}")
        for node, _, mesh in placed
    ]  # fmt: skip
    vertices = [p[0] for p in parts]
    if normalization:
        vertices = list(normalize_vertices(torch.cat(vertices)).split([len(v) for v in vertices]))
    textures = [p[2].to(device=device, dtype=dtype) for p in parts]
    if texture_type == "uv":
        textures = _share_images(textures, [id(geometry) for _, geometry, _ in placed])
    vertices = [v.to(device=device, dtype=dtype) for v in vertices]
    return vertices, [p[1].to(device=device) for p in parts], textures, parts[0][3]


def _share_images(textures: list[UVTexture], keys: list[int]) -> list[UVTexture]:
    """``textures`` where those of one key (one mesh's placements: equal images) hold the first one's image tensors."""
    first: dict[int, tuple[torch.Tensor, ...]] = {}
    out = []
    for texture, key in zip(textures, keys, strict=True):
        images = first.setdefault(key, texture.images)
        if len(images) == len(texture.images):
            texture = UVTexture._of(images, texture.uv_vertices, texture.uv_faces, texture.material)
        out.append(texture)
    return out


def items_to_trimesh_scene(meshes: list[trimesh.Trimesh]) -> trimesh.Scene:
    """A ``trimesh.Scene`` holding ``meshes[b]`` as geometry and node ``f"item_{b}"`` at the identity."""
    trimesh = require("trimesh", "Mesh.to_trimesh_scene")
    scene = trimesh.Scene()
    for b, mesh in enumerate(meshes):
        scene.add_geometry(mesh, node_name=f"item_{b}", geom_name=f"item_{b}")
    return scene


def _rgba8(colors: torch.Tensor) -> np.ndarray:
    """uint8 RGBA [N, 4] (opaque) from RGB in [0, 1] [N, 3] (clipped with a warning naming ``textures``)."""
    rgb = np.round(clip_colors("textures", colors.detach().double().cpu()).numpy() * 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)


def tensors_to_trimesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    textures: torch.Tensor | UVTexture,
    texture_type: str,
    surface: str = "auto",
) -> trimesh.Trimesh:
    """A ``trimesh.Trimesh`` of one mesh (``[V, 3]``, ``[F, 3]``, textures ``[V, 3]`` / ``[F, R*R, 3]`` / a
    UVTexture of batch 1).

    See :meth:`softras.Mesh.to_trimesh`, which checks the face indices first.
    """
    trimesh = require("trimesh", "Mesh.to_trimesh")
    from PIL import Image

    check_choice("surface", surface, SURFACE_TO_TRIMESH)
    v = vertices.detach().cpu().double().numpy()
    f = faces.detach().cpu().long().numpy()
    if texture_type == "uv":
        return uv_texture_to_trimesh(v, f, textures)
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


def _pil_image(image: np.ndarray, name: str) -> object:
    """An 8-bit PIL image of ``image`` [H, W, C] (C: 1 grey, 3 RGB, 4 RGBA), clipped to [0, 1]."""
    from PIL import Image

    if image.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name}: trimesh keeps 1 (grey), 3 (RGB) or 4 (RGBA) channel images, got {image.shape[2]}")
    pixels = np.round(clip_colors(name, torch.from_numpy(np.ascontiguousarray(image))).numpy() * 255).astype(np.uint8)
    return Image.fromarray(pixels[:, :, 0] if image.shape[2] == 1 else pixels)


def _packed(texture: UVTexture) -> tuple[np.ndarray, np.ndarray]:
    """(one image [H, W, C], corner uvs [F, 3, 2]) holding every image of ``texture`` (batch 1) side by side.

    Image m keeps its pixels, at the left of the row in order, top-aligned; a face's uvs are mapped
    into its image's place. Only uvs within [0, 1] can be mapped so (a repeat beyond them cannot).
    """
    images = [im.detach().cpu().double().numpy() for im in texture.images]
    corners = texture.face_uv[0].detach().cpu().double().numpy()
    material = texture.material[0].cpu().numpy()
    if len(images) == 1:
        return images[0], corners
    if corners.size and (corners.min() < 0 or corners.max() > 1):
        raise ValueError(
            "textures: a trimesh mesh holds one texture image; this UVTexture's "
            f"{len(images)} images can only be packed into one when every uv lies in [0, 1] "
            f"(got range [{corners.min():g}, {corners.max():g}])"
        )
    height, width = max(im.shape[0] for im in images), sum(im.shape[1] for im in images)
    canvas = np.ones((height, width, images[0].shape[2]))
    left = np.cumsum([0] + [im.shape[1] for im in images])
    for m, image in enumerate(images):
        canvas[: image.shape[0], left[m] : left[m + 1]] = image
    sizes = np.array([[im.shape[1], im.shape[0]] for im in images], dtype=np.float64)[material]  # [F, 2]
    u = (left[material][:, None] + corners[..., 0] * sizes[:, None, 0]) / width
    v = 1.0 - (1.0 - corners[..., 1]) * sizes[:, None, 1] / height
    return canvas, np.stack([u, v], axis=-1)


def uv_texture_to_trimesh(vertices: np.ndarray, faces: np.ndarray, texture: UVTexture) -> trimesh.Trimesh:
    """A ``trimesh.Trimesh`` with a ``TextureVisuals`` of ``texture`` (batch 1) on ``vertices`` [V, 3] and
    ``faces`` [F, 3].

    trimesh keeps one uv per vertex and one image: a vertex whose corners have different uvs
    (a seam) is split, one copy per uv, and several images are packed side by side into one
    (:func:`_packed`; bilinear lookups near an image's edge then read its neighbour instead of
    wrapping). Images are stored with 8 bits per channel.
    """
    trimesh = require("trimesh", "Mesh.to_trimesh")
    if texture.batch_size != 1 or texture.num_faces != len(faces):
        raise ValueError(
            f"textures: expected a UVTexture of batch 1 with {len(faces)} faces, got batch {texture.batch_size} "
            f"with {texture.num_faces} faces"
        )
    image, corners = _packed(texture)
    uv_faces = texture.uv_faces[0].cpu().numpy()
    material = np.broadcast_to(texture.material[0].cpu().numpy()[:, None], faces.shape)
    keys = np.stack([faces, uv_faces, material], axis=-1).reshape(-1, 3)  # one vertex per distinct key
    unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    uv = corners.reshape(-1, 2)[first]
    visual = trimesh.visual.TextureVisuals(uv=uv, image=_pil_image(image, "textures.images"))
    return trimesh.Trimesh(vertices[unique[:, 0]], inverse.reshape(-1, 3), visual=visual, process=False)
