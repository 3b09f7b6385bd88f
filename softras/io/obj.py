"""Wavefront OBJ (+ MTL) reading and writing, compatible with the original ``soft_renderer``.

This parser is kept rather than trimesh's OBJ loader (which :func:`softras.io.load_mesh` uses for
the other formats), because that loader does not keep what ``load_obj`` promises: it splits
vertices by uv and material and regroups faces by material (the file's vertex and face order is
lost), packs several texture images into one resampled atlas, reads ``map_Kd -s 1 1 1 tex.png`` as
a file name, drops a missing texture without a warning, and names no line on bad input. Its peak
memory is also 8-15x the final arrays (on 10⁶ vertices), against the streaming bound of 2x here.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, TextIO

import numpy as np
import torch

from softras._memory import check_texels
from softras._validation import as_float_tensor, as_index_tensor, check_choice, check_finite, check_shape
from softras.io.texture import clip_colors, create_texture_atlas, sample_surface_textures
from softras.uv_texture import UVTexture

__all__ = ["load_obj", "save_obj"]

_TEXTURE_TYPES = ("surface", "vertex", "uv")
# MTL statements that are valid but carry nothing softras uses (anything else counts as unrecognised).
_MTL_KEYS = {"Ka", "Ks", "Ke", "Ns", "Ni", "d", "Tr", "Tf", "illum", "sharpness", "bump", "disp", "decal", "refl",
             "Pr", "Pm", "Ps", "Pc", "Pcr", "aniso", "anisor", "norm"}
# map_Kd options and how many arguments they take (max).
_MAP_OPTIONS = {
    "-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1, "-imfchan": 1,
    "-mm": 2, "-o": 3, "-s": 3, "-t": 3, "-texres": 1, "-type": 1,
}
# Largest index an OBJ face may hold (the parser keeps indices as int64).
_MAX_INDEX = 2**63 - 1


def fspath_arg(name: str, value: object) -> str:
    """``value`` (``str``, ``bytes`` or ``os.PathLike``) as a ``str`` path.

    Raises:
        TypeError: naming ``name``, for anything else (``None`` included).
    """
    if isinstance(value, (str, bytes, os.PathLike)):
        return os.fsdecode(value)
    raise TypeError(f"{name}: expected a file path (str, bytes or os.PathLike), got {type(value).__name__}")


def check_load_dtype(dtype: object) -> torch.dtype:
    """``dtype`` checked to be a floating ``torch.dtype`` (the dtype of the loaded vertices)."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype: expected a floating torch.dtype such as torch.float64, got {dtype!r}")
    return dtype


def normalize_vertices(vertices: torch.Tensor) -> torch.Tensor:
    """``[V, 3]`` vertices shifted and scaled into ``[-1, 1]`` (the ``normalization`` of :func:`load_obj`)."""
    v = vertices - vertices.min(0)[0][None, :]
    scale = v.abs().max()
    if float(scale) > 0:
        v = v / scale
    v = v * 2
    return v - v.max(0)[0][None, :] / 2


def nonfinite_rows(values: torch.Tensor) -> np.ndarray:
    """Indices of the rows of a 2-D CPU tensor that hold NaN or Inf."""
    if values.dtype in (torch.float32, torch.float64):
        finite = np.isfinite(values.numpy())  # NumPy: no wake-up of PyTorch's thread pool
    else:
        finite = torch.isfinite(values).numpy()
    return np.flatnonzero(~finite.all(axis=1))


@dataclass
class _ObjData:
    """Parsed OBJ content in compact flat arrays (a 10⁷-vertex file stays within ~2× its tensors).

    ``vertices`` is ``array('f')`` (float32), or ``array('d')`` when float64 vertices are asked for.
    ``colors`` (3 per vertex, NaN where a vertex has none) and ``face_uvs`` (3 per triangle, -1
    where a face has none) are only allocated once the first vertex colour / face uv appears.
    ``material_runs`` holds ``(first triangle, material)`` for every ``usemtl`` change.
    """

    vertices: array = field(default_factory=lambda: array("f"))
    colors: array | None = None
    uvs: array = field(default_factory=lambda: array("d"))
    faces: array = field(default_factory=lambda: array("q"))
    face_uvs: array | None = None
    material_runs: list[tuple[int, str | None]] = field(default_factory=list)
    mtllibs: list[tuple[str, int]] = field(default_factory=list)

    @property
    def num_vertices(self) -> int:
        return len(self.vertices) // 3

    @property
    def num_faces(self) -> int:
        return len(self.faces) // 3

    def face_materials(self) -> tuple[np.ndarray, list[str | None]]:
        """Per-triangle material code [F] (int32) and the material of each code (code 0: none)."""
        names: list[str | None] = [None]
        codes = np.zeros(self.num_faces, dtype=np.int32)
        runs = [(0, None), *self.material_runs, (self.num_faces, None)]
        for (start, mat), (end, _) in itertools.pairwise(runs):
            if mat not in names:
                names.append(mat)
            codes[start:end] = names.index(mat)
        return codes, names


def _logical_lines(path: str) -> Iterator[tuple[int, str]]:
    """Stream ``path`` as (line number, text) pairs, joining ``\\``-continued lines."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        buf, start = "", 0
        for n, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not buf:
                start = n
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            yield start, buf + line
            buf = ""
        if buf:
            yield start, buf


def _floats(tokens: list[str], where: str, what: str) -> list[float]:
    try:
        vals = [float(t) for t in tokens]
    except ValueError:
        raise ValueError(f"{where}: bad number in {what} line: {' '.join(tokens)!r}") from None
    if not all(np.isfinite(vals)):
        raise ValueError(f"{where}: non-finite number in {what} line: {' '.join(tokens)!r}")
    return vals


def _resolve_index(token: str, count: int, where: str, kind: str) -> int:
    """Turn a 1-based (or negative, relative) OBJ index into a 0-based one (bounds checked later
    for positive indices below 2**63, immediately for the others)."""
    try:
        i = int(token)
    except ValueError:
        raise ValueError(f"{where}: bad {kind} index {token!r}") from None
    if i == 0:
        raise ValueError(f"{where}: {kind} index 0 is invalid (OBJ indices start at 1)")
    if i < 0:
        if -i > count:
            raise ValueError(f"{where}: relative {kind} index {i} refers before the first {kind}")
        return count + i
    if i > _MAX_INDEX:
        raise ValueError(f"{where}: {kind} index {i} out of range (indices must be below 2**63)")
    return i - 1


def _parse_obj(path: str, vertex_typecode: str = "f") -> _ObjData:
    name = os.path.basename(path)
    data = _ObjData(vertices=array(vertex_typecode))
    material: str | None = None
    for lineno, line in _logical_lines(path):
        hash_pos = line.find("#")
        if hash_pos >= 0:
            line = line[:hash_pos]
        tokens = line.split()
        if not tokens:
            continue
        key, args = tokens[0], tokens[1:]
        where = f"{name}:{lineno}"
        if key == "v":
            if len(args) < 3:
                raise ValueError(f"{where}: vertex needs 3 coordinates, got {len(args)}")
            vals = _floats(args, where, "v")
            if len(vals) >= 6 and data.colors is None:
                data.colors = array("d", [math.nan]) * len(data.vertices)
            if data.colors is not None:
                data.colors.extend(vals[3:6] if len(vals) >= 6 else (math.nan, math.nan, math.nan))
            data.vertices.extend(vals[:3])
        elif key == "vt":
            if len(args) < 1:
                raise ValueError(f"{where}: texture coordinate needs at least 1 value")
            vals = _floats(args[:2], where, "vt")
            data.uvs.extend(vals + [0.0] * (2 - len(vals)))
        elif key == "f":
            if len(args) < 3:
                raise ValueError(f"{where}: face needs at least 3 vertices, got {len(args)}")
            vis, tis = [], []
            for a in args:
                parts = a.split("/")
                if len(parts) > 3 or not parts[0]:
                    raise ValueError(f"{where}: malformed face vertex {a!r}")
                vis.append(_resolve_index(parts[0], data.num_vertices, where, "vertex"))
                if len(parts) >= 2 and parts[1]:
                    tis.append(_resolve_index(parts[1], len(data.uvs) // 2, where, "texture coordinate"))
            has_uv = len(tis) == len(vis)
            if has_uv and data.face_uvs is None:
                data.face_uvs = array("q", [-1]) * len(data.faces)
            for i in range(1, len(vis) - 1):
                data.faces.extend((vis[0], vis[i], vis[i + 1]))
                if data.face_uvs is not None:
                    data.face_uvs.extend((tis[0], tis[i], tis[i + 1]) if has_uv else (-1, -1, -1))
        elif key == "usemtl":
            material = " ".join(args) if args else None
            data.material_runs.append((data.num_faces, material))
        elif key == "mtllib":
            if not args:
                raise ValueError(f"{where}: mtllib without a file name")
            data.mtllibs.append((line.split(None, 1)[1].strip(), lineno))
    if not data.vertices:
        raise ValueError(f"{path}: no vertices ('v' lines) found")
    if not data.faces:
        raise ValueError(f"{path}: no faces ('f' lines) found")
    nv, nt = data.num_vertices, len(data.uvs) // 2
    faces = np.frombuffer(data.faces, dtype=np.int64).reshape(-1, 3).max(axis=1)
    fuvs = None if data.face_uvs is None else np.frombuffer(data.face_uvs, dtype=np.int64).reshape(-1, 3).max(axis=1)
    bad_v = np.flatnonzero(faces >= nv)
    bad_t = np.flatnonzero(fuvs >= nt) if fuvs is not None else np.empty(0, dtype=np.int64)
    if bad_v.size or bad_t.size:
        first = int(min(bad_v[:1].tolist() + bad_t[:1].tolist()))
        where = f"{name}:{_face_line(path, first)}"
        if bad_v.size and bad_v[0] == first:
            raise ValueError(f"{where}: vertex index {int(faces[first]) + 1} out of range (file has {nv})")
        raise ValueError(
            f"{where}: texture coordinate index {int(fuvs[first]) + 1} out of range (file has {nt})"  # type: ignore[index]
        )
    return data


def _vertex_line(path: str, vertex: int) -> tuple[int, list[str]]:
    """Line number and coordinate tokens of the ``v`` line of vertex number ``vertex`` (0-based)."""
    seen = 0
    for lineno, line in _logical_lines(path):
        tokens = line.split("#", 1)[0].split()
        if tokens and tokens[0] == "v":
            if seen == vertex:
                return lineno, tokens[1:4]
            seen += 1
    return 0, []


def _check_overflow(path: str, vertices: torch.Tensor) -> None:
    """Raise, naming ``file:line``, if a (finite) coordinate of the file became Inf in ``vertices``' dtype."""
    bad = nonfinite_rows(vertices)
    if not bad.size:
        return
    lineno, tokens = _vertex_line(path, int(bad[0]))
    limit = torch.finfo(vertices.dtype).max
    token = next((t for t in tokens if abs(float(t)) > limit), tokens[0] if tokens else "?")
    dtype = str(vertices.dtype).removeprefix("torch.")
    raise ValueError(
        f"{os.path.basename(path)}:{lineno}: vertex coordinate {token} overflows {dtype}; "
        "load with dtype=torch.float64"
    )


def _face_line(path: str, triangle: int) -> int:
    """Line number of the ``f`` line that produced triangle number ``triangle`` (for error messages)."""
    seen = 0
    for lineno, line in _logical_lines(path):
        tokens = line.split("#", 1)[0].split()
        if tokens and tokens[0] == "f":
            seen += max(len(tokens) - 3, 0)
            if seen > triangle:
                return lineno
    return 0


def _safe_join(root: str, base_dir: str, filename: str, referrer: str, what: str) -> str:
    """Resolve ``filename`` (relative to ``base_dir``) and make sure it stays under ``root``."""
    filename = filename.strip().strip('"').replace("\\", "/")
    full = filename if os.path.isabs(filename) else os.path.join(base_dir, filename)
    real = os.path.realpath(full)
    root_real = os.path.realpath(root)
    if os.path.commonpath([root_real, real]) != root_real:
        raise ValueError(
            f"{referrer}: {what} path {filename!r} points outside the mesh folder {root_real!r}"
        )
    if not os.path.isfile(real):
        raise FileNotFoundError(f"{what} file {full!r} referenced by {referrer} not found")
    return real


def _map_filename(args: list[str]) -> str:
    """File name of a ``map_Kd`` statement, skipping its options (``-s 1 1 1`` etc.)."""
    i = 0
    while i < len(args) - 1 and args[i] in _MAP_OPTIONS:
        n = _MAP_OPTIONS[args[i]]
        i += 1
        if n == 1:
            i += 1
            continue
        taken = 0
        while taken < n and i < len(args) - 1 and _is_number(args[i]):
            i += 1
            taken += 1
    return " ".join(args[i:])


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _load_mtl(
    path: str, root: str, obj_name: str
) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    """Parse an MTL file: ``Kd`` colours and ``map_Kd`` images per material.

    Images come as ``(resolved path, "<mtl>:<line> (<obj>)")``. ``Kd`` values outside [0, 1] are
    clipped, with one ``UserWarning`` for the file naming the first such line.
    """
    colors: dict[str, np.ndarray] = {}
    maps: dict[str, tuple[str, str]] = {}
    material = ""
    unknown = 0
    first_bad_kd = 0
    name = os.path.basename(path)
    for lineno, line in _logical_lines(path):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        key, args = tokens[0], tokens[1:]
        where = f"{name}:{lineno}"
        if key == "newmtl":
            material = " ".join(args)
        elif key == "Kd":
            if len(args) < 3:
                if len(args) == 1:
                    args = args * 3
                else:
                    raise ValueError(f"{where}: Kd needs 3 values, got {len(args)}")
            colors[material] = np.array(_floats(args[:3], where, "Kd"), dtype=np.float32)
            if not first_bad_kd and ((colors[material] < 0) | (colors[material] > 1)).any():
                first_bad_kd = lineno
        elif key == "map_Kd":
            fname = _map_filename(args)
            if not fname:
                raise ValueError(f"{where}: map_Kd without a file name")
            referrer = f"{name}:{lineno} ({obj_name})"
            maps[material] = (_safe_join(root, os.path.dirname(path), fname, referrer, "texture"), referrer)
        elif key == "newmtl" or key in _MTL_KEYS or key.startswith("map_"):
            pass
        else:
            unknown += 1
    if not colors and not maps:
        what = f"no materials (and {unknown} unrecognised lines)" if unknown else "no materials"
        warnings.warn(f"{path}: material library has {what}; the faces that use it stay white",
                      UserWarning, stacklevel=4)
    if first_bad_kd:
        clipped = clip_colors(f"{path}:{first_bad_kd}: Kd", torch.from_numpy(np.stack(list(colors.values()))))
        colors = dict(zip(colors, clipped.numpy(), strict=True))
    return colors, maps


def _image_error(path: str, exc: BaseException) -> str:
    """Why an image file could not be read, in one line (not imageio's plugin advice)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as err:
        return f"cannot open it: {err.strerror}"
    if not head:
        return "the file is empty"
    if head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff"):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"corrupt {'PNG' if head[0] == 0x89 else 'JPEG'} data ({text})"
    return f"unrecognised image header {head!r}"


def _read_image(path: str, referrer: str) -> np.ndarray:
    """An image file as float32 RGB ``[H, W, 3]`` in [0, 1]; ``referrer`` names the file that uses it.

    Float images with values above 1 are taken as 0-255 and divided by 255; values still
    outside [0, 1] are clipped with one ``UserWarning`` naming the image.
    """
    import imageio.v3 as iio

    try:
        img = iio.imread(path)
    except Exception as exc:  # imageio raises many types
        raise ValueError(
            f"{path}: could not read texture image (not a valid PNG/JPEG: {_image_error(path, exc)}); "
            f"referenced by {referrer}"
        ) from exc
    img = np.asarray(img)
    if img.ndim == 4:  # animated / multi-page: first frame
        img = img[0]
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        out = img.astype(np.float32) / 65535.0
    elif img.dtype == np.bool_:
        out = img.astype(np.float32)
    else:
        out = img.astype(np.float32)
        if out.max(initial=0.0) > 1.0:
            out = out / 255.0
        out = clip_colors(f"{path}: texture image", torch.from_numpy(out)).numpy()
    if out.ndim == 2:
        out = np.stack([out] * 3, axis=-1)
    elif out.shape[2] == 2:
        out = np.repeat(out[:, :, :1], 3, axis=2)
    elif out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out[:, :, :3])


def _materials(
    path: str, data: _ObjData, texture_type: str
) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    """``Kd`` colours and ``map_Kd`` images (path, referrer) of every material in the OBJ's material libraries."""
    root = os.path.dirname(os.path.realpath(path))
    name = os.path.basename(path)
    if not data.mtllibs:
        raise ValueError(
            f"{path}: load_texture=True with texture_type={texture_type!r} needs a material library "
            "('mtllib' line); use texture_type='vertex' for per-vertex colours"
        )
    colors: dict[str, np.ndarray] = {}
    maps: dict[str, tuple[str, str]] = {}
    for spec, lineno in data.mtllibs:
        candidates = [spec]
        if not os.path.isfile(os.path.join(root, spec)) and len(spec.split()) > 1:
            candidates = spec.split()
        for cand in candidates:
            mtl = _safe_join(root, root, cand, f"{name}:{lineno}", "material library (mtl)")
            c, m = _load_mtl(mtl, root, name)
            colors.update(c)
            maps.update(m)
    return colors, maps


def _warn_undefined(path: str, names: list[str | None], colors: dict, maps: dict) -> None:
    undefined = [n for n in names[1:] if n not in colors and n not in maps]
    if undefined:
        listed = ", ".join(map(repr, undefined[:3])) + (", ..." if len(undefined) > 3 else "")
        warnings.warn(f"{path}: material(s) {listed} used but not defined in its material library; "
                      "those faces stay white", UserWarning, stacklevel=4)


def _surface_textures(path: str, data: _ObjData, texture_res: int) -> torch.Tensor:
    colors, maps = _materials(path, data, "surface")
    n_faces = data.num_faces
    check_texels(n_faces, texture_res)
    textures = torch.ones(n_faces, texture_res * texture_res, 3, dtype=torch.float32)
    codes, names = data.face_materials()
    _warn_undefined(path, names, colors, maps)

    def faces_of(mat: str) -> np.ndarray:
        return codes == names.index(mat) if mat in names else np.zeros(n_faces, dtype=bool)

    for mat, col in colors.items():
        sel = torch.from_numpy(faces_of(mat))
        if bool(sel.any()):
            textures[sel] = torch.from_numpy(col)[None, None, :]
    if maps:
        uv_table = np.frombuffer(data.uvs, dtype=np.float64).astype(np.float32).reshape(-1, 2)
        if data.face_uvs is None:
            fuv_idx = np.zeros((n_faces, 3), dtype=np.int64)
        else:
            fuv_idx = np.frombuffer(data.face_uvs, dtype=np.int64).reshape(-1, 3)
        has_uv = fuv_idx[:, 0] >= 0
        for mat, (img_path, referrer) in maps.items():
            sel = faces_of(mat) & has_uv
            if not sel.any():
                continue
            image = _read_image(img_path, referrer)
            face_uvs = torch.from_numpy(uv_table[fuv_idx[sel]])
            textures[torch.from_numpy(sel)] = sample_surface_textures(
                torch.from_numpy(image), face_uvs, texture_res
            )
    return textures


def _uv_texture(path: str, data: _ObjData, dtype: torch.dtype) -> UVTexture:
    """The OBJ's UV texture: one image per ``map_Kd`` file, the ``vt`` table and the faces' ``vt`` indices.

    A face whose material has an image and which has ``vt`` indices reads that image; any other face
    reads a 1×1 image of its material's ``Kd`` colour (white without a material or ``Kd``).
    """
    colors, maps = _materials(path, data, "uv")
    codes, names = data.face_materials()
    _warn_undefined(path, names, colors, maps)
    n_faces = data.num_faces
    table = np.frombuffer(data.uvs, dtype=np.float64).reshape(-1, 2)
    if data.face_uvs is None:
        face_uvs = np.full((n_faces, 3), -1, dtype=np.int64)
    else:
        face_uvs = np.frombuffer(data.face_uvs, dtype=np.int64).reshape(-1, 3)
    has_uv = face_uvs[:, 0] >= 0
    images: list[np.ndarray] = []
    known: dict[object, int] = {}

    def image_index(key: object, read: Callable[[], np.ndarray]) -> int:
        if key not in known:
            known[key] = len(images)
            images.append(read())
        return known[key]

    material = np.zeros(n_faces, dtype=np.int64)
    white = np.ones(3, dtype=np.float32)
    for code, name in enumerate(names):
        faces = codes == code
        if name in maps:
            image_path, referrer = maps[name]
            textured = faces & has_uv
            if textured.any():
                material[textured] = image_index(image_path, lambda p=image_path, r=referrer: _read_image(p, r))
            faces = faces & ~has_uv
        if faces.any():
            colour = colors.get(name, white).astype(np.float32)  # type: ignore[arg-type]
            material[faces] = image_index(tuple(colour.tolist()), lambda c=colour: c[None, None, :])
    points = table
    if not has_uv.all():  # one more UV point for the faces without vt indices (they read 1×1 images)
        points = np.concatenate([table, np.full((1, 2), 0.5)])
        face_uvs = np.where(has_uv[:, None], face_uvs, len(table))
    return UVTexture(
        [torch.from_numpy(np.ascontiguousarray(im)).to(dtype) for im in images],
        (torch.from_numpy(points).to(dtype), torch.from_numpy(face_uvs)),
        torch.from_numpy(material),
    )


def _vertex_colors(path: str, data: _ObjData) -> np.ndarray:
    """Per-vertex colours [V, 3] float64 in [0, 1] of the ``v x y z r g b`` lines (white where none).

    When every colour value is an integer in [0, 255] and one is above 1, the file holds 8-bit
    colours (as OpenCV and trimesh write them) and they are divided by 255. Otherwise values
    outside [0, 1] are clipped, with one ``UserWarning`` naming the file.
    """
    if data.colors is None:
        return np.ones((data.num_vertices, 3))
    colors = np.frombuffer(data.colors, dtype=np.float64).reshape(-1, 3)
    given = colors[~np.isnan(colors[:, 0])]
    if given.size and given.max() > 1 and given.min() >= 0 and given.max() <= 255 and (given == np.round(given)).all():
        colors = colors / 255.0
    else:
        colors = clip_colors(f"{path}: vertex colours", torch.from_numpy(colors)).numpy()
    return np.where(np.isnan(colors), 1.0, colors)


def load_obj(
    filename_obj: str | os.PathLike | bytes,
    normalization: bool = False,
    load_texture: bool = False,
    texture_res: int = 4,
    texture_type: str = "surface",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Load a Wavefront ``.obj`` file (same signature and results as ``soft_renderer``).

    Supports ``v x y z [r g b]``, ``vt``, faces ``f`` in the ``v``, ``v/vt``, ``v//vn`` and
    ``v/vt/vn`` forms with positive or negative (relative) indices, polygons (triangulated
    as a fan ``(v0, vi, vi+1)``), ``mtllib`` and ``usemtl``.

    Args:
        filename_obj: path of the OBJ file (``str``, ``bytes`` or ``os.PathLike``).
        normalization: if True, scale and shift the vertices into ``[-1, 1]`` as the
            original did (min to 0, divide by the largest coordinate, ×2, centre).
        load_texture: also return textures.
        texture_res: ``R``, texels per triangle side for surface textures (>= 1).
        texture_type: ``'surface'``: ``[F, R*R, 3]`` textures from the MTL (``Kd`` colours,
            ``map_Kd`` images sampled bilinearly at texel centres; faces without a material
            or without uvs for an image keep ``Kd`` or white). ``'vertex'``: ``[V, 3]``
            colours from ``v x y z r g b`` lines (white where a vertex has no colour). When
            every colour value in the file is an integer in [0, 255] and one is above 1, the
            colours are 8-bit (OpenCV / trimesh convention) and are divided by 255.
            Colours outside [0, 1] (vertex colours, ``Kd``, float images) are clipped, with
            one ``UserWarning`` per file naming it, the count and the range of the values.
            ``'uv'``: a :class:`softras.UVTexture` (not in the original): every ``map_Kd``
            image at its full resolution (RGB), the ``vt`` table and each face's ``vt``
            indices, and each face's image; a face without ``vt`` indices or without an image
            reads a 1×1 image of its ``Kd`` colour (white where none).
        dtype: floating dtype of the vertices and textures. With ``torch.float64`` the
            coordinates are parsed at full double precision (``500000.123`` stays
            ``500000.123``; float32 reads ``500000.125``).

    Returns:
        ``(vertices [V, 3] dtype, faces [F, 3] int64)`` and, with ``load_texture``,
        ``textures`` (``dtype``) as a third element. All on the CPU.

    Raises:
        FileNotFoundError: the OBJ, an MTL or a texture image is missing.
        TypeError: ``filename_obj`` is not a path, ``dtype`` not a floating dtype.
        ValueError: malformed content (the message names ``file:line``): bad numbers, face
            indices out of range, a coordinate that overflows ``dtype``; an unreadable texture
            image (naming it and the MTL line); unsafe paths; bad arguments.
    """
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    if isinstance(texture_res, bool) or not isinstance(texture_res, (int, np.integer)):
        raise TypeError(f"texture_res: expected an integer, got {type(texture_res).__name__}")
    if texture_res < 1:
        raise ValueError(f"texture_res: expected an integer >= 1, got {texture_res}")
    dtype = check_load_dtype(dtype)
    path = fspath_arg("filename_obj", filename_obj)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"OBJ file not found: {path!r}")
    data = _parse_obj(path, "d" if dtype == torch.float64 else "f")

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    vertices = torch.from_numpy(np.frombuffer(data.vertices, dtype=np_dtype).reshape(-1, 3)).to(dtype)
    _check_overflow(path, vertices)
    faces = torch.from_numpy(np.frombuffer(data.faces, dtype=np.int64).reshape(-1, 3))

    textures = None
    if load_texture and texture_type == "surface":
        textures = _surface_textures(path, data, int(texture_res)).to(dtype)
    elif load_texture and texture_type == "uv":
        textures = _uv_texture(path, data, dtype)
    elif load_texture:
        textures = torch.from_numpy(_vertex_colors(path, data)).to(dtype)

    if normalization:
        vertices = normalize_vertices(vertices)

    if load_texture:
        return vertices, faces, textures
    return vertices, faces


def _to_numpy(name: str, value: object, *, index: bool = False) -> np.ndarray:
    if index:
        t = as_index_tensor(name, value)
    else:
        t = as_float_tensor(name, value)
        if t.dtype not in (torch.float32, torch.float64):
            t = t.float()  # float16 / bfloat16: exact in float32
    return t.detach().cpu().numpy()


# Rows written per chunk by save_obj (bounds the memory of the formatted text).
_WRITE_CHUNK = 1 << 16


def _number_format(values: np.ndarray) -> str:
    """A %-format that writes the numbers of ``values`` so that they read back bit for bit.

    float64: ``%r`` (Python's shortest round-trip repr). float32: ``%.9g`` (9 significant
    digits identify every float32, read back through a double or directly).
    """
    return "%r" if values.dtype == np.float64 else "%.9g"


def _write_rows(fh: TextIO, fmt: str, rows: np.ndarray) -> None:
    """Write ``fmt % tuple(row)`` for every row of the 2-D array ``rows``, in chunks."""
    for start in range(0, len(rows), _WRITE_CHUNK):
        fh.write("".join(map(fmt.__mod__, map(tuple, rows[start : start + _WRITE_CHUNK].tolist()))))


def _check_save_textures(tex: np.ndarray, texture_type: str, n_v: int, n_f: int) -> np.ndarray:
    """``textures`` of :func:`save_obj` without a batch dimension, shape-checked."""
    if texture_type == "surface":
        if tex.ndim == 4 and tex.shape[0] == 1:
            tex = tex[0]
        if tex.ndim != 3 or tex.shape[0] != n_f or tex.shape[2] != 3:
            raise ValueError(f"textures: expected surface textures of shape [{n_f}, R*R, 3], got {tex.shape}")
    else:
        if tex.ndim == 3 and tex.shape[0] == 1:
            tex = tex[0]
        if tex.shape != (n_v, 3):
            raise ValueError(f"textures: expected vertex colours of shape [{n_v}, 3], got {tex.shape}")
    check_finite("textures", torch.from_numpy(np.ascontiguousarray(tex)))
    return tex


class _UVWrite(NamedTuple):
    """What an OBJ with a material library holds besides positions: ``vt`` points [T, 2], each face's
    ``vt`` indices [F, 3] (0-based) and material [F], named ``material_<k + 1>``."""

    points: np.ndarray
    faces: np.ndarray
    material: np.ndarray


def _write_mtl(stem: str, images: list[str]) -> None:
    """``<stem>.mtl``: material ``material_<k + 1>`` shows the image file ``images[k]``."""
    base = os.path.basename(stem)
    with open(stem + ".mtl", "w", encoding="utf-8") as fh:
        fh.write(f"# {base}.mtl\n")
        for k, image in enumerate(images):
            fh.write(f"newmtl material_{k + 1}\nKd 1.0 1.0 1.0\nmap_Kd {image}\n")


def _write_png(path: str, image: np.ndarray, name: str) -> None:
    """``image`` [H, W, C] (C of 1 to 4: grey, grey + alpha, RGB, RGBA) as an 8-bit PNG, clipped to [0, 1]."""
    import imageio.v3 as iio

    if image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{name}: a PNG holds 1 to 4 channels, the image has {image.shape[2]}")
    image = clip_colors(name, torch.from_numpy(np.ascontiguousarray(image))).numpy()
    pixels = np.round(image * 255).astype(np.uint8)
    iio.imwrite(path, pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def _write_atlas(stem: str, tex: np.ndarray, texture_res: int) -> _UVWrite:
    """Write ``<stem>.png`` (the texture atlas) and ``<stem>.mtl``; return the faces' uvs."""
    image, face_uvs = create_texture_atlas(tex, texture_res)
    _write_png(stem + ".png", image, "textures")
    _write_mtl(stem, [os.path.basename(stem) + ".png"])
    n_faces = len(face_uvs)
    corners = np.arange(3 * n_faces, dtype=np.int64).reshape(-1, 3)
    return _UVWrite(face_uvs.reshape(-1, 2), corners, np.zeros(n_faces, dtype=np.int64))


def _write_uv_texture(stem: str, texture: UVTexture, n_faces: int) -> _UVWrite:
    """Write one PNG per image of ``texture`` (batch 1) and ``<stem>.mtl``; return its uvs."""
    if texture.batch_size != 1 or texture.num_faces != n_faces:
        raise ValueError(
            f"textures: expected a UVTexture of batch 1 with {n_faces} faces, got batch {texture.batch_size} with "
            f"{texture.num_faces} faces"
        )
    base = os.path.basename(stem)
    count = texture.num_materials
    names = [f"{base}.png"] if count == 1 else [f"{base}_{k}.png" for k in range(count)]
    for k, (image, name) in enumerate(zip(texture.images, names, strict=True)):
        what = f"textures.images[{k}]"
        _write_png(os.path.join(os.path.dirname(stem), name), _to_numpy(what, image), what)
    _write_mtl(stem, names)
    points = _to_numpy("textures.uv_vertices", texture.uv_vertices[0])
    check_finite("textures.uv_vertices", torch.from_numpy(points))
    return _UVWrite(points, texture.uv_faces[0].cpu().numpy(), texture.material[0].cpu().numpy())


def _write_faces(fh: TextIO, faces: np.ndarray, uvs: _UVWrite | None) -> None:
    """The ``f`` lines (``f a/ta b/tb c/tc`` under a ``usemtl`` per run of one material with ``uvs``)."""
    f1 = faces.astype(np.int64) + 1
    if uvs is None:
        _write_rows(fh, "f %d %d %d\n", f1)
        return
    _write_rows(fh, f"vt {_number_format(uvs.points)} {_number_format(uvs.points)}\n", uvs.points)
    rows = np.stack([f1, uvs.faces.astype(np.int64) + 1], axis=2).reshape(-1, 6)  # a/ta b/tb c/tc
    starts = np.concatenate([[0], np.flatnonzero(np.diff(uvs.material)) + 1, [len(rows)]])
    for start, end in itertools.pairwise(starts.tolist()):
        fh.write(f"\nusemtl material_{int(uvs.material[start]) + 1}\n")
        _write_rows(fh, "f %d/%d %d/%d %d/%d\n", rows[start:end])


def save_obj(
    filename: str | os.PathLike | bytes,
    vertices: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    textures: torch.Tensor | np.ndarray | UVTexture | None = None,
    texture_res: int = 16,
    texture_type: str = "surface",
) -> None:
    """Write a mesh as a Wavefront ``.obj`` file (same signature as ``soft_renderer``).

    Vertex textures are written as ``v x y z r g b``. Surface textures are written as a
    texture atlas ``<name>.png`` next to the OBJ plus a material file ``<name>.mtl``
    (``newmtl``/``map_Kd``) and one ``vt`` per face corner. Each face owns a square cell of
    ``texture_res`` pixels (enlarged to at least ``8*R + 4`` so that loading the file back
    with ``load_obj(..., load_texture=True, texture_res=R)`` returns the saved texels up to
    8-bit quantisation). A :class:`softras.UVTexture` (``texture_type='uv'``, not in the
    original) is written as it is: its ``vt`` points, each face's ``vt`` indices, one 8-bit PNG
    per image (``<name>.png``, or ``<name>_<k>.png`` for several; 1 to 4 channels) and one
    material per image, so ``load_obj(..., texture_type='uv')`` reads it back (images as RGB,
    up to 8-bit quantisation).

    Numbers are written so that they read back bit for bit: float64 arrays with Python's
    shortest round-trip ``repr``, others as float32 with 9 significant digits (``1e-09``
    stays ``1e-09``). Load float64 files with ``load_obj(..., dtype=torch.float64)``.

    Args:
        filename: output path (``.obj``; ``str``, ``bytes`` or ``os.PathLike``).
        vertices: ``[V, 3]`` (or ``[1, V, 3]``) finite tensor/array, any device; detached.
        faces: ``[F, 3]`` (or ``[1, F, 3]``) 0-based vertex indices.
        textures: ``None``, ``[F, R*R, 3]`` surface or ``[V, 3]`` vertex colours in [0, 1]
            (a leading batch dimension of 1 is allowed), or a UVTexture of batch 1. Values
            outside [0, 1] are clipped, with one ``UserWarning`` naming ``textures``.
        texture_res: pixels per face cell side in the atlas (surface textures only).
        texture_type: ``'surface'``, ``'vertex'`` or ``'uv'`` (implied by a UVTexture).
    """
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    if isinstance(textures, UVTexture):
        texture_type = "uv"
    elif texture_type == "uv" and textures is not None:
        raise TypeError(f"textures: texture_type='uv' needs a softras.UVTexture, got {type(textures).__name__}")
    path = fspath_arg("filename", filename)
    v = _to_numpy("vertices", vertices)
    f = _to_numpy("faces", faces, index=True)
    if v.ndim == 3 and v.shape[0] == 1:
        v = v[0]
    if f.ndim == 3 and f.shape[0] == 1:
        f = f[0]
    check_shape("vertices", torch.from_numpy(np.ascontiguousarray(v)), ("V", 3))
    check_shape("faces", torch.from_numpy(np.ascontiguousarray(f)), ("F", 3))
    check_finite("vertices", torch.from_numpy(np.ascontiguousarray(v)))
    if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
        raise ValueError(f"faces: indices must lie in [0, {v.shape[0]})")
    if isinstance(texture_res, bool) or not isinstance(texture_res, (int, np.integer)):
        raise TypeError(f"texture_res: expected an integer, got {type(texture_res).__name__}")
    if texture_res < 2:
        raise ValueError(f"texture_res: expected an integer >= 2, got {texture_res}")
    tex = None
    if textures is not None and texture_type != "uv":
        tex = _check_save_textures(_to_numpy("textures", textures), texture_type, v.shape[0], f.shape[0])

    stem = os.path.splitext(path)[0]
    uvs = None
    if isinstance(textures, UVTexture):
        uvs = _write_uv_texture(stem, textures, f.shape[0])
    elif tex is not None and texture_type == "surface":
        uvs = _write_atlas(stem, tex, int(texture_res))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# {os.path.basename(path)}\n# written by softras\n\n")
        if uvs is not None:
            fh.write(f"mtllib {os.path.basename(stem)}.mtl\n\n")
        vf = _number_format(v)
        if tex is not None and texture_type == "vertex":
            colors = clip_colors("textures", torch.from_numpy(tex)).numpy()
            fmt = f"v {vf} {vf} {vf} " + " ".join([_number_format(colors)] * 3) + "\n"
            _write_rows(fh, fmt, np.concatenate([v.astype(np.float64), colors.astype(np.float64)], axis=1))
        else:
            _write_rows(fh, f"v {vf} {vf} {vf}\n", v)
        fh.write("\n")
        _write_faces(fh, f, uvs)
