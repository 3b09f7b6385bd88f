"""Format-independent mesh loading and saving (OBJ natively, PLY/STL/OFF/GLB/GLTF via trimesh)."""

from __future__ import annotations

import itertools
import json
import os
import struct
import urllib.parse
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from softras._memory import check_texels
from softras._validation import as_float_tensor, as_index_tensor, check_choice, check_shape
from softras.io.obj import check_load_dtype, fspath_arg, load_obj, nonfinite_rows, normalize_vertices, save_obj
from softras.io.texture import check_texture_res, clip_colors, surface_textures_from_vertex_colors
from softras.io.trimesh_mesh import tensors_to_trimesh, trimesh_textures, trimesh_uv_texture
from softras.uv_texture import UVTexture

if TYPE_CHECKING:
    import trimesh

__all__ = ["MESH_EXTENSIONS", "LoadedMesh", "load_mesh", "save_mesh"]

#: File extensions understood by :func:`load_mesh`.
MESH_EXTENSIONS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
_TEXTURE_TYPES = ("surface", "vertex", "uv")


@dataclass
class LoadedMesh:
    """A mesh read from a file.

    Attributes:
        vertices: ``[V, 3]`` of the ``dtype`` asked for (float32 by default).
        faces: ``[F, 3]`` int64, 0-based, counter-clockwise seen from outside.
        textures: ``[F, R*R, 3]`` (``texture_type == 'surface'``) or ``[V, 3]``
            (``'vertex'``) colours in [0, 1], of the vertices' dtype; white where the file has
            no colour; or a :class:`softras.UVTexture` (``'uv'``).
        texture_type: ``'surface'``, ``'vertex'`` or ``'uv'``.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    textures: torch.Tensor | UVTexture
    texture_type: str


def _obj_has_mtllib(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return any(line.split()[:1] == ["mtllib"] for line in fh)


def _reason(exc: BaseException) -> str:
    """A one-line reason for a reader's exception (trimesh raises many kinds)."""
    if isinstance(exc, ImportError):
        return f"its reader needs the optional package {exc.name!r}, which is not installed (pip install {exc.name})"
    if isinstance(exc, KeyError):
        return f"malformed file (missing entry {exc.args[0]!r})" if exc.args else "malformed file"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else f"malformed file ({type(exc).__name__})"


def _gltf_json(path: str) -> dict | None:
    """The JSON part of a ``.gltf`` / ``.glb`` file, or None when it cannot be read (trimesh reports that)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(12)
            if raw[:4] == b"glTF":
                length, kind = struct.unpack("<II", fh.read(8))
                if kind != 0x4E4F534A:  # 'JSON'
                    return None
                return json.loads(fh.read(length))
            return json.loads(raw + fh.read())
    except (OSError, ValueError, struct.error):
        return None


def _warn_missing_gltf_images(path: str) -> None:
    """Warn, naming the file, about glTF images that are outside the mesh folder or missing (trimesh drops them)."""
    doc = _gltf_json(path)
    folder = os.path.dirname(os.path.realpath(path))
    for image in (doc or {}).get("images", []) if isinstance(doc, dict) else []:
        uri = image.get("uri") if isinstance(image, dict) else None
        if not isinstance(uri, str) or uri.startswith("data:"):
            continue
        target = os.path.realpath(os.path.join(folder, urllib.parse.unquote(uri)))
        if os.path.commonpath([folder, target]) != folder:
            why = "lies outside the mesh folder, so it is not loaded (copy it next to the mesh)"
        elif not os.path.isfile(target):
            why = "was not found"
        else:
            continue
        warnings.warn(f"{path}: texture image {uri!r} {why}; the faces it textures are untextured",
                      UserWarning, stacklevel=4)


def _ply_face_count(path: str) -> int | None:
    """The count of the ``element face`` line of a PLY header (ASCII in every PLY variant), or None."""
    try:
        with open(path, "rb") as fh:
            for raw in itertools.islice(fh, 200):
                words = raw.split()
                if words[:2] == [b"element", b"face"] and len(words) == 3 and words[2].isdigit():
                    return int(words[2])
                if words[:1] == [b"end_header"]:
                    break
    except OSError:
        pass
    return None


def _check_geometry(path: str, mesh: trimesh.Trimesh, part: str) -> None:
    """Raise, naming the file, for a non-finite vertex or a face index outside [0, V) of an unprocessed mesh.

    trimesh would drop the vertex (leaving "no triangles") or read index -1 as the last vertex.
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    bad = nonfinite_rows(torch.from_numpy(vertices))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{path}: {part}vertex {i} is not finite: {tuple(vertices[i].tolist())} "
                         f"({bad.size} of the {len(vertices)} vertices are not finite)")
    faces = np.asarray(mesh.faces, dtype=np.int64)
    n_v = len(vertices)
    outside = (faces < 0) | (faces >= n_v)
    if outside.any():
        t = int(np.flatnonzero(outside.any(axis=1))[0])
        index = int(faces[t][outside[t]][0])
        face = f"face {t}" if path.lower().endswith(".ply") and _ply_face_count(path) == len(faces) else f"triangle {t}"
        raise ValueError(f"{path}: {part}{face} has vertex index {index}, outside [0, {n_v}) "
                         f"(the file has {n_v} vertices)")


def _read_parts(path: str) -> list[trimesh.Trimesh]:
    """The meshes of the file, each checked, processed as ``trimesh.load(path, force='mesh')``
    processes it (NaN rows dropped, duplicate vertices merged) and moved to its place in the scene."""
    import trimesh

    try:
        scene = trimesh.load_scene(path, process=False)
    except Exception as exc:
        raise ValueError(f"could not read mesh file {path!r}: {_reason(exc)}") from exc
    parts = {name: g for name, g in scene.geometry.items() if isinstance(g, trimesh.Trimesh)}
    for name, geometry in parts.items():
        _check_geometry(path, geometry, f"mesh {name!r}: " if len(parts) > 1 else "")
        geometry.process()
    try:
        return [g for g in scene.dump() if isinstance(g, trimesh.Trimesh)]
    except Exception as exc:
        raise ValueError(f"could not read mesh file {path!r}: {_reason(exc)}") from exc


def _geometry(parts: list[trimesh.Trimesh], path: str, keep_visuals: bool) -> tuple[np.ndarray, np.ndarray, object]:
    """(vertices [V, 3] float64, faces [F, 3] int64, the merged mesh or None) of ``parts`` one after another.

    ``keep_visuals``: merge them into one ``trimesh.Trimesh`` with its colours (as ``scene.to_mesh()``);
    else only stack the positions and faces (a UV texture keeps each part's image, which merging
    would pack into one).
    """
    import trimesh

    if not keep_visuals:
        if not parts or not sum(len(p.faces) for p in parts):
            return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), None
        offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
        vertices = np.concatenate([np.asarray(p.vertices, dtype=np.float64) for p in parts])
        faces = np.concatenate([np.asarray(p.faces, dtype=np.int64) + o for p, o in zip(parts, offsets, strict=False)])
        return vertices, faces, None
    try:
        mesh = trimesh.util.concatenate(parts)
    except Exception as exc:
        raise ValueError(f"could not read mesh file {path!r}: {_reason(exc)}") from exc
    if not isinstance(mesh, trimesh.Trimesh):
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), None
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64), mesh


def _load_trimesh(path: str, texture_res: int, texture_type: str, dtype: torch.dtype) -> LoadedMesh:
    if path.lower().endswith((".gltf", ".glb")):
        _warn_missing_gltf_images(path)

    parts = _read_parts(path)
    v, f, mesh = _geometry(parts, path, keep_visuals=texture_type != "uv")
    if len(f) == 0 or len(v) == 0:
        raise ValueError(f"could not read mesh file {path!r}: no triangles found (an empty or corrupt file)")
    vertices = torch.from_numpy(v).to(dtype)
    overflow = nonfinite_rows(vertices)
    if overflow.size:
        i = int(overflow[0])
        name = str(dtype).removeprefix("torch.")
        raise ValueError(f"{path}: vertex {i} {tuple(v[i].tolist())} overflows {name}; "
                         "load with dtype=torch.float64")
    faces = torch.from_numpy(f.copy())
    if texture_type == "uv":
        textures = trimesh_uv_texture(parts, name=path).to(dtype=dtype)
    else:
        textures = trimesh_textures(mesh, texture_res, texture_type, name=path).to(dtype)
    return LoadedMesh(vertices, faces, textures, texture_type)


def _load_obj_uv(path: str, dtype: torch.dtype) -> LoadedMesh:
    """An OBJ with its UV texture (its MTL's), or white when it names no material library."""
    if _obj_has_mtllib(path):
        vertices, faces, texture = load_obj(path, load_texture=True, texture_type="uv", dtype=dtype)
        return LoadedMesh(vertices, faces, texture, "uv")
    vertices, faces, colors = load_obj(path, load_texture=True, texture_type="vertex", dtype=dtype)
    if bool((colors != 1).any()):
        raise ValueError(
            f"{path}: has per-vertex colours and no material library (no UV texture); load it with "
            "texture_type='vertex' or 'surface'"
        )
    white = torch.ones(1, 1, 3, dtype=dtype)
    return LoadedMesh(vertices, faces, UVTexture(white, torch.zeros(faces.shape[0], 3, 2, dtype=dtype)), "uv")


def load_mesh(
    path: str | os.PathLike | bytes,
    texture_res: int = 4,
    texture_type: str = "surface",
    normalization: bool = False,
    dtype: torch.dtype = torch.float32,
) -> LoadedMesh:
    """Load a triangle mesh from OBJ, PLY, STL, OFF, GLB or GLTF.

    OBJ files go through :func:`softras.io.load_obj` (textures from the MTL when the file
    names one, per-vertex ``v x y z r g b`` colours otherwise, else white). Other formats
    are read with ``trimesh`` (scenes are merged into one mesh); colours come from the
    vertex colours, the texture image (sampled at the texel centres with the uvs) or the
    face colours, whichever the file has; white otherwise. Colours outside [0, 1] are clipped
    with one ``UserWarning`` naming the file (see :func:`softras.io.load_obj` for OBJ colours).

    ``texture_type='uv'`` keeps the file's UV texture as a :class:`softras.UVTexture`: for OBJ
    the images of the MTL's ``map_Kd`` (one per file, full resolution), the ``vt`` table and
    the faces' ``vt`` indices (:func:`softras.io.load_obj`); for the other formats each part's
    texture image and per-vertex uvs as trimesh reads them (:func:`softras.io.trimesh_mesh.trimesh_uv_texture`).
    Faces without an image read a 1×1 image of their material's colour (white where none); a
    file with vertex or face colours and no UV texture raises (load it as ``'vertex'`` or
    ``'surface'``).

    Args:
        path: mesh file (``str``, ``bytes`` or ``os.PathLike``).
        texture_res: ``R`` for surface textures.
        texture_type: ``'surface'`` (textures ``[F, R*R, 3]``), ``'vertex'`` (``[V, 3]``) or
            ``'uv'`` (a :class:`softras.UVTexture`).
        normalization: centre and scale into ``[-1, 1]`` like ``load_obj``.
        dtype: floating dtype of vertices and textures; ``torch.float64`` keeps every digit of
            the file's coordinates (OBJ is parsed in double precision, trimesh reads float64).

    Returns:
        A :class:`LoadedMesh` with CPU tensors.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TypeError: ``path`` is not a path (e.g. ``None``), ``dtype`` not a floating dtype.
        ValueError: unknown extension, unreadable / empty file, a non-finite vertex, a face
            index outside [0, V) (naming the file and the face, or ``file:line`` for OBJ), a
            coordinate that overflows ``dtype``.
    """
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    r = check_texture_res(texture_res)
    dtype = check_load_dtype(dtype)
    p = fspath_arg("path", path)
    ext = os.path.splitext(p)[1].lower()
    if ext not in MESH_EXTENSIONS:
        raise ValueError(
            f"{p}: unknown mesh file extension {ext!r}; "
            f"expected one of {', '.join(MESH_EXTENSIONS)}"
        )
    if not os.path.isfile(p):
        raise FileNotFoundError(f"mesh file not found: {p!r}")
    if ext == ".obj" and texture_type == "uv":
        mesh = _load_obj_uv(p, dtype)
    elif ext == ".obj":
        if texture_type == "surface" and _obj_has_mtllib(p):
            vertices, faces, textures = load_obj(p, load_texture=True, texture_res=r, dtype=dtype)
        else:
            vertices, faces, colors = load_obj(p, load_texture=True, texture_type="vertex", dtype=dtype)
            if texture_type == "vertex":
                textures = colors
            else:
                check_texels(faces.shape[0], r)
                textures = surface_textures_from_vertex_colors(faces, colors, r)
        mesh = LoadedMesh(vertices, faces, textures.to(dtype).contiguous(), texture_type)
    else:
        mesh = _load_trimesh(p, r, texture_type, dtype)
    if normalization:
        mesh.vertices = normalize_vertices(mesh.vertices)
    return mesh


def save_mesh(
    path: str | os.PathLike,
    vertices: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    textures: torch.Tensor | np.ndarray | UVTexture | None = None,
    texture_type: str = "surface",
    texture_res: int = 16,
) -> None:
    """Save a mesh; the format follows the extension.

    ``.obj`` is written by :func:`softras.io.save_obj` (lossless colours). Other formats go
    through ``trimesh``: vertex textures become vertex colours; surface textures are averaged
    per face into face colours (lossy); a :class:`softras.UVTexture` becomes trimesh's texture
    (:meth:`softras.Mesh.to_trimesh`; GLB keeps it); STL stores no colour.

    Args:
        path: output file (``.obj``, ``.ply``, ``.stl``, ``.off``, ``.glb``).
        vertices: ``[V, 3]``; faces: ``[F, 3]``; textures: ``[F, R*R, 3]`` / ``[V, 3]`` / a
            UVTexture of batch 1 / None, in [0, 1] (values outside are clipped, with one
            ``UserWarning`` naming ``textures``).
        texture_type: ``'surface'``, ``'vertex'`` or ``'uv'`` (implied by a UVTexture).
        texture_res: atlas pixels per face cell (OBJ surface textures only).
    """
    import trimesh

    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    p = fspath_arg("path", path)
    ext = os.path.splitext(p)[1].lower()
    if ext == ".obj":
        save_obj(p, vertices, faces, textures, texture_res=texture_res, texture_type=texture_type)
        return
    if ext not in (".ply", ".stl", ".off", ".glb"):
        raise ValueError(f"{p}: cannot save meshes with extension {ext!r}")
    v = as_float_tensor("vertices", vertices).detach().cpu()
    f = as_index_tensor("faces", faces).detach().cpu().long()
    check_shape("vertices", v, ("V", 3))
    check_shape("faces", f, ("F", 3))
    if isinstance(textures, UVTexture):
        tensors_to_trimesh(v, f, textures, "uv").export(p)
        return
    kwargs: dict[str, np.ndarray] = {}
    if textures is not None:
        t = as_float_tensor("textures", textures).detach().cpu()
        if texture_type == "vertex":
            check_shape("textures", t, (v.shape[0], 3))
        else:
            check_shape("textures", t, (f.shape[0], "T", 3))
        t = clip_colors("textures", t)
        rgba = t if texture_type == "vertex" else t.mean(1)
        rgba8 = np.round(rgba.numpy() * 255).astype(np.uint8)
        rgba8 = np.concatenate([rgba8, np.full((len(rgba8), 1), 255, np.uint8)], axis=1)
        kwargs["vertex_colors" if texture_type == "vertex" else "face_colors"] = rgba8
    mesh = trimesh.Trimesh(v.numpy().astype(np.float64), f.numpy(), process=False, **kwargs)
    mesh.export(p)
