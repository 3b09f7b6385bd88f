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
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from softras._memory import check_texels
from softras._validation import as_float_tensor, as_index_tensor, check_choice, check_shape
from softras.io.texture import create_texture_atlas, sample_surface_textures

__all__ = ["load_obj", "save_obj"]

_TEXTURE_TYPES = ("surface", "vertex")
# MTL statements that are valid but carry nothing softras uses (anything else counts as unrecognised).
_MTL_KEYS = {"Ka", "Ks", "Ke", "Ns", "Ni", "d", "Tr", "Tf", "illum", "sharpness", "bump", "disp", "decal", "refl",
             "Pr", "Pm", "Ps", "Pc", "Pcr", "aniso", "anisor", "norm"}
# map_Kd options and how many arguments they take (max).
_MAP_OPTIONS = {
    "-blendu": 1, "-blendv": 1, "-bm": 1, "-boost": 1, "-cc": 1, "-clamp": 1, "-imfchan": 1,
    "-mm": 2, "-o": 3, "-s": 3, "-t": 3, "-texres": 1, "-type": 1,
}


@dataclass
class _ObjData:
    """Parsed OBJ content in compact flat arrays (a 10⁷-vertex file stays within ~2× its tensors).

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
    for positive indices, immediately for negative ones)."""
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
    return i - 1


def _parse_obj(path: str) -> _ObjData:
    name = os.path.basename(path)
    data = _ObjData()
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
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse an MTL file: ``Kd`` colours and resolved ``map_Kd`` paths per material."""
    colors: dict[str, np.ndarray] = {}
    maps: dict[str, str] = {}
    material = ""
    unknown = 0
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
        elif key == "map_Kd":
            fname = _map_filename(args)
            if not fname:
                raise ValueError(f"{where}: map_Kd without a file name")
            maps[material] = _safe_join(root, os.path.dirname(path), fname, f"{name} ({obj_name})",
                                        "texture")
        elif key == "newmtl" or key in _MTL_KEYS or key.startswith("map_"):
            pass
        else:
            unknown += 1
    if not colors and not maps:
        what = f"no materials (and {unknown} unrecognised lines)" if unknown else "no materials"
        warnings.warn(f"{path}: material library has {what}; the faces that use it stay white",
                      UserWarning, stacklevel=4)
    return colors, maps


def _read_image(path: str) -> np.ndarray:
    import imageio.v3 as iio

    try:
        img = iio.imread(path)
    except Exception as exc:  # imageio raises many types
        raise ValueError(f"could not read texture image {path!r}: {exc}") from exc
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
    if out.ndim == 2:
        out = np.stack([out] * 3, axis=-1)
    elif out.shape[2] == 2:
        out = np.repeat(out[:, :, :1], 3, axis=2)
    elif out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out[:, :, :3])


def _surface_textures(path: str, data: _ObjData, texture_res: int) -> torch.Tensor:
    root = os.path.dirname(os.path.realpath(path))
    name = os.path.basename(path)
    if not data.mtllibs:
        raise ValueError(
            f"{path}: load_texture=True with texture_type='surface' needs a material library "
            "('mtllib' line); use texture_type='vertex' for per-vertex colours"
        )
    colors: dict[str, np.ndarray] = {}
    maps: dict[str, str] = {}
    for spec, lineno in data.mtllibs:
        candidates = [spec]
        if not os.path.isfile(os.path.join(root, spec)) and len(spec.split()) > 1:
            candidates = spec.split()
        for cand in candidates:
            mtl = _safe_join(root, root, cand, f"{name}:{lineno}", "material library (mtl)")
            c, m = _load_mtl(mtl, root, name)
            colors.update(c)
            maps.update(m)

    n_faces = data.num_faces
    check_texels(n_faces, texture_res)
    textures = torch.ones(n_faces, texture_res * texture_res, 3, dtype=torch.float32)
    codes, names = data.face_materials()
    undefined = [n for n in names[1:] if n not in colors and n not in maps]
    if undefined:
        listed = ", ".join(map(repr, undefined[:3])) + (", ..." if len(undefined) > 3 else "")
        warnings.warn(f"{path}: material(s) {listed} used but not defined in its material library; "
                      "those faces stay white", UserWarning, stacklevel=3)

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
        for mat, img_path in maps.items():
            sel = faces_of(mat) & has_uv
            if not sel.any():
                continue
            image = _read_image(img_path)
            face_uvs = torch.from_numpy(uv_table[fuv_idx[sel]])
            textures[torch.from_numpy(sel)] = sample_surface_textures(
                torch.from_numpy(image), face_uvs, texture_res
            )
    return textures


def load_obj(
    filename_obj: str | os.PathLike,
    normalization: bool = False,
    load_texture: bool = False,
    texture_res: int = 4,
    texture_type: str = "surface",
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Load a Wavefront ``.obj`` file (same signature and results as ``soft_renderer``).

    Supports ``v x y z [r g b]``, ``vt``, faces ``f`` in the ``v``, ``v/vt``, ``v//vn`` and
    ``v/vt/vn`` forms with positive or negative (relative) indices, polygons (triangulated
    as a fan ``(v0, vi, vi+1)``), ``mtllib`` and ``usemtl``.

    Args:
        filename_obj: path of the OBJ file.
        normalization: if True, scale and shift the vertices into ``[-1, 1]`` as the
            original did (min to 0, divide by the largest coordinate, ×2, centre).
        load_texture: also return textures.
        texture_res: ``R``, texels per triangle side for surface textures (>= 1).
        texture_type: ``'surface'``: ``[F, R*R, 3]`` textures from the MTL (``Kd`` colours,
            ``map_Kd`` images sampled bilinearly at texel centres; faces without a material
            or without uvs for an image keep ``Kd`` or white). ``'vertex'``: ``[V, 3]``
            colours from ``v x y z r g b`` lines (white where a vertex has no colour).

    Returns:
        ``(vertices [V, 3] float32, faces [F, 3] int64)`` and, with ``load_texture``,
        ``textures`` as a third element. All on the CPU.

    Raises:
        FileNotFoundError: the OBJ, an MTL or a texture image is missing.
        ValueError: malformed content (the message names ``file:line``), unsafe paths,
            bad arguments.
    """
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    if isinstance(texture_res, bool) or not isinstance(texture_res, (int, np.integer)):
        raise TypeError(f"texture_res: expected an integer, got {type(texture_res).__name__}")
    if texture_res < 1:
        raise ValueError(f"texture_res: expected an integer >= 1, got {texture_res}")
    path = os.fspath(filename_obj)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"OBJ file not found: {path!r}")
    data = _parse_obj(path)

    vertices = torch.from_numpy(np.frombuffer(data.vertices, dtype=np.float32).reshape(-1, 3))
    faces = torch.from_numpy(np.frombuffer(data.faces, dtype=np.int64).reshape(-1, 3))

    textures = None
    if load_texture and texture_type == "surface":
        textures = _surface_textures(path, data, int(texture_res))
    elif load_texture:
        if data.colors is None:
            textures = torch.ones(data.num_vertices, 3)
        else:
            colors = np.frombuffer(data.colors, dtype=np.float64).reshape(-1, 3)
            textures = torch.from_numpy(np.where(np.isnan(colors), 1.0, colors).astype(np.float32))

    if normalization:
        vertices = vertices - vertices.min(0)[0][None, :]
        scale = vertices.abs().max()
        if float(scale) > 0:
            vertices = vertices / scale
        vertices = vertices * 2
        vertices = vertices - vertices.max(0)[0][None, :] / 2

    if load_texture:
        return vertices, faces, textures
    return vertices, faces


def _to_numpy(name: str, value: object, *, index: bool = False) -> np.ndarray:
    if index:
        t = as_index_tensor(name, value)
    else:
        t = as_float_tensor(name, value)
    return t.detach().cpu().numpy()


def save_obj(
    filename: str | os.PathLike,
    vertices: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    textures: torch.Tensor | np.ndarray | None = None,
    texture_res: int = 16,
    texture_type: str = "surface",
) -> None:
    """Write a mesh as a Wavefront ``.obj`` file (same signature as ``soft_renderer``).

    Vertex textures are written as ``v x y z r g b``. Surface textures are written as a
    texture atlas ``<name>.png`` next to the OBJ plus a material file ``<name>.mtl``
    (``newmtl``/``map_Kd``) and one ``vt`` per face corner. Each face owns a square cell of
    ``texture_res`` pixels (enlarged to at least ``8*R + 4`` so that loading the file back
    with ``load_obj(..., load_texture=True, texture_res=R)`` returns the saved texels up to
    8-bit quantisation).

    Args:
        filename: output path (``.obj``).
        vertices: ``[V, 3]`` (or ``[1, V, 3]``) tensor/array, any device; detached.
        faces: ``[F, 3]`` (or ``[1, F, 3]``) 0-based vertex indices.
        textures: ``None``, ``[F, R*R, 3]`` surface or ``[V, 3]`` vertex colours in [0, 1]
            (a leading batch dimension of 1 is allowed).
        texture_res: pixels per face cell side in the atlas (surface textures only).
        texture_type: ``'surface'`` or ``'vertex'``.
    """
    check_choice("texture_type", texture_type, _TEXTURE_TYPES)
    v = _to_numpy("vertices", vertices)
    f = _to_numpy("faces", faces, index=True)
    if v.ndim == 3 and v.shape[0] == 1:
        v = v[0]
    if f.ndim == 3 and f.shape[0] == 1:
        f = f[0]
    check_shape("vertices", torch.from_numpy(np.ascontiguousarray(v)), ("V", 3))
    check_shape("faces", torch.from_numpy(np.ascontiguousarray(f)), ("F", 3))
    if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
        raise ValueError(f"faces: indices must lie in [0, {v.shape[0]})")
    if isinstance(texture_res, bool) or not isinstance(texture_res, (int, np.integer)):
        raise TypeError(f"texture_res: expected an integer, got {type(texture_res).__name__}")
    if texture_res < 2:
        raise ValueError(f"texture_res: expected an integer >= 2, got {texture_res}")

    path = os.fspath(filename)
    stem, _ = os.path.splitext(path)
    base = os.path.basename(stem)
    tex = None
    if textures is not None:
        tex = _to_numpy("textures", textures)
        if texture_type == "surface":
            if tex.ndim == 4 and tex.shape[0] == 1:
                tex = tex[0]
            if tex.ndim != 3 or tex.shape[0] != f.shape[0] or tex.shape[2] != 3:
                raise ValueError(
                    f"textures: expected surface textures of shape [{f.shape[0]}, R*R, 3], "
                    f"got {tex.shape}"
                )
        else:
            if tex.ndim == 3 and tex.shape[0] == 1:
                tex = tex[0]
            if tex.shape != (v.shape[0], 3):
                raise ValueError(
                    f"textures: expected vertex colours of shape [{v.shape[0]}, 3], got {tex.shape}"
                )

    lines = [f"# {os.path.basename(path)}", "# written by softras", ""]
    face_uvs = None
    if tex is not None and texture_type == "surface":
        import imageio.v3 as iio

        image, face_uvs = create_texture_atlas(tex, int(texture_res))
        png = f"{base}.png"
        mtl = f"{base}.mtl"
        iio.imwrite(stem + ".png", np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
        with open(stem + ".mtl", "w", encoding="utf-8") as fh:
            fh.write(f"# {mtl}\nnewmtl material_1\nKd 1.0 1.0 1.0\nmap_Kd {png}\n")
        lines += [f"mtllib {mtl}", ""]

    if tex is not None and texture_type == "vertex":
        lines += [
            f"v {x:.8f} {y:.8f} {z:.8f} {r:.8f} {g:.8f} {b:.8f}"
            for (x, y, z), (r, g, b) in zip(v.tolist(), tex.tolist(), strict=True)
        ]
    else:
        lines += [f"v {x:.8f} {y:.8f} {z:.8f}" for x, y, z in v.tolist()]
    lines.append("")
    if face_uvs is not None:
        lines += [f"vt {a:.8f} {b:.8f}" for a, b in face_uvs.reshape(-1, 2).tolist()]
        lines += ["", "usemtl material_1"]
        lines += [
            f"f {a + 1}/{3 * i + 1} {b + 1}/{3 * i + 2} {c + 1}/{3 * i + 3}"
            for i, (a, b, c) in enumerate(f.tolist())
        ]
    else:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f.tolist()]
    lines.append("")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
