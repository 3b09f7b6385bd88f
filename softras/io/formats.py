"""Format-independent mesh loading and saving (OBJ natively, PLY/STL/OFF/GLB/GLTF via trimesh)."""

from __future__ import annotations

import json
import os
import struct
import urllib.parse
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from softras._memory import check_texels
from softras._validation import as_float_tensor, as_index_tensor, check_choice, check_shape
from softras.io.obj import load_obj, save_obj
from softras.io.texture import surface_textures_from_vertex_colors

__all__ = ["MESH_EXTENSIONS", "LoadedMesh", "load_mesh", "save_mesh"]

#: File extensions understood by :func:`load_mesh`.
MESH_EXTENSIONS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
_TEXTURE_TYPES = ("surface", "vertex")


@dataclass
class LoadedMesh:
    """A mesh read from a file.

    Attributes:
        vertices: ``[V, 3]`` float32.
        faces: ``[F, 3]`` int64, 0-based, counter-clockwise seen from outside.
        textures: ``[F, R*R, 3]`` (``texture_type == 'surface'``) or ``[V, 3]``
            (``'vertex'``) float32 colours in [0, 1]; white where the file has no colour.
        texture_type: ``'surface'`` or ``'vertex'``.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    textures: torch.Tensor
    texture_type: str


def _check_res(texture_res: int) -> int:
    if isinstance(texture_res, bool) or not isinstance(texture_res, (int, np.integer)):
        raise TypeError(f"texture_res: expected an integer, got {type(texture_res).__name__}")
    if texture_res < 1:
        raise ValueError(f"texture_res: expected an integer >= 1, got {texture_res}")
    return int(texture_res)


def _obj_has_mtllib(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return any(line.split()[:1] == ["mtllib"] for line in fh)


def _normalize(vertices: torch.Tensor) -> torch.Tensor:
    v = vertices - vertices.min(0)[0][None, :]
    scale = v.abs().max()
    if float(scale) > 0:
        v = v / scale
    v = v * 2
    return v - v.max(0)[0][None, :] / 2


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


def _load_trimesh(path: str, texture_res: int, texture_type: str) -> LoadedMesh:
    import trimesh

    from softras.interop import trimesh_textures

    if path.lower().endswith((".gltf", ".glb")):
        _warn_missing_gltf_images(path)

    try:
        mesh = trimesh.load(path, force="mesh")
    except Exception as exc:
        raise ValueError(f"could not read mesh file {path!r}: {_reason(exc)}") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise ValueError(f"could not read mesh file {path!r}: no triangles found (an empty or corrupt file)")
    vertices = torch.from_numpy(np.asarray(mesh.vertices, dtype=np.float32).copy())
    faces = torch.from_numpy(np.asarray(mesh.faces, dtype=np.int64).copy())
    return LoadedMesh(vertices, faces, trimesh_textures(mesh, texture_res, texture_type), texture_type)


def load_mesh(
    path: str | os.PathLike,
    texture_res: int = 4,
    texture_type: str = "surface",
    normalization: bool = False,
) -> LoadedMesh:
    """Load a triangle mesh from OBJ, PLY, STL, OFF, GLB or GLTF.

    OBJ files go through :func:`softras.io.load_obj` (textures from the MTL when the file
    names one, per-vertex ``v x y z r g b`` colours otherwise, else white). Other formats
    are read with ``trimesh`` (scenes are merged into one mesh); colours come from the
    vertex colours, the texture image (sampled at the texel centres with the uvs) or the
    face colours, whichever the file has; white otherwise.

    Args:
        path: mesh file.
        texture_res: ``R`` for surface textures.
        texture_type: ``'surface'`` (textures ``[F, R*R, 3]``) or ``'vertex'`` (``[V, 3]``).
        normalization: centre and scale into ``[-1, 1]`` like ``load_obj``.

    Returns:
        A :class:`LoadedMesh` with CPU tensors.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension or unreadable / empty file.
    """
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    r = _check_res(texture_res)
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext not in MESH_EXTENSIONS:
        raise ValueError(
            f"{p}: unknown mesh file extension {ext!r}; "
            f"expected one of {', '.join(MESH_EXTENSIONS)}"
        )
    if not os.path.isfile(p):
        raise FileNotFoundError(f"mesh file not found: {p!r}")
    if ext == ".obj":
        if texture_type == "surface" and _obj_has_mtllib(p):
            vertices, faces, textures = load_obj(p, load_texture=True, texture_res=r)
        else:
            vertices, faces, colors = load_obj(p, load_texture=True, texture_type="vertex")
            if texture_type == "vertex":
                textures = colors
            else:
                check_texels(faces.shape[0], r)
                textures = surface_textures_from_vertex_colors(faces, colors, r)
        mesh = LoadedMesh(vertices, faces, textures.float().contiguous(), texture_type)
    else:
        mesh = _load_trimesh(p, r, texture_type)
    if normalization:
        mesh.vertices = _normalize(mesh.vertices)
    return mesh


def save_mesh(
    path: str | os.PathLike,
    vertices: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    textures: torch.Tensor | np.ndarray | None = None,
    texture_type: str = "surface",
    texture_res: int = 16,
) -> None:
    """Save a mesh; the format follows the extension.

    ``.obj`` is written by :func:`softras.io.save_obj` (lossless colours). Other formats go
    through ``trimesh``: vertex textures become vertex colours; surface textures are averaged
    per face into face colours (lossy); STL stores no colour.

    Args:
        path: output file (``.obj``, ``.ply``, ``.stl``, ``.off``, ``.glb``).
        vertices: ``[V, 3]``; faces: ``[F, 3]``; textures: ``[F, R*R, 3]`` / ``[V, 3]`` / None.
        texture_type: ``'surface'`` or ``'vertex'``.
        texture_res: atlas pixels per face cell (OBJ surface textures only).
    """
    import trimesh

    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    p = os.fspath(path)
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
    kwargs: dict[str, np.ndarray] = {}
    if textures is not None:
        t = as_float_tensor("textures", textures).detach().cpu().clamp(0, 1)
        rgba = None
        if texture_type == "vertex":
            check_shape("textures", t, (v.shape[0], 3))
            rgba = t
        else:
            check_shape("textures", t, (f.shape[0], "T", 3))
            rgba = t.mean(1)
        rgba8 = np.round(rgba.numpy() * 255).astype(np.uint8)
        rgba8 = np.concatenate([rgba8, np.full((len(rgba8), 1), 255, np.uint8)], axis=1)
        kwargs["vertex_colors" if texture_type == "vertex" else "face_colors"] = rgba8
    mesh = trimesh.Trimesh(v.numpy().astype(np.float64), f.numpy(), process=False, **kwargs)
    mesh.export(p)
