"""Built-in procedural meshes.

Every function returns CPU tensors: vertices float32 ``[V, 3]`` and faces int64 ``[F, 3]``
wound counter-clockwise seen from outside (``(v1 - v0) x (v2 - v0)`` points outward). Closed
shapes are watertight (every edge shared by exactly two faces).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from softras._validation import check_positive
from softras.io.texture import surface_textures_from_vertex_colors

__all__ = [
    "bumpy_sphere",
    "color_cube",
    "demo_mesh",
    "fibonacci_sphere",
    "icosphere",
    "star_prism",
    "surface_colors_from_vertex_colors",
    "torus",
    "uv_sphere",
]


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def _out(vertices: np.ndarray, faces: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.from_numpy(np.ascontiguousarray(vertices, dtype=np.float32))
    f = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.int64))
    return v, f


def uv_sphere(
    rings: int = 24, segments: int = 48, radius: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A latitude-longitude sphere with its texture map: (vertices [V, 3], faces [F, 3], uv [F, 3, 2]).

    ``rings`` bands of latitude and ``segments`` of longitude; F = 2·segments·(rings − 1). The
    texture map is equirectangular: u = longitude / 2π (0 at the −z axis, increasing towards +x,
    as the cameras' azimuth), v = latitude / π + ½ (1 at the north pole, +y). The seam's vertices
    are shared; the faces along it carry u = 1 on their eastern corners (per-corner UVs), so the
    map has no wrap-around face. Faces wind counter-clockwise seen from outside.
    """
    rings = _check_int("rings", rings, 2)
    segments = _check_int("segments", segments, 3)
    check_positive("radius", radius)
    lat = np.linspace(-0.5 * math.pi, 0.5 * math.pi, rings + 1)[1:-1]  # the rings between the poles
    lon = np.arange(segments) * (2 * math.pi / segments)
    ring_xyz = np.stack(
        [
            np.cos(lat)[:, None] * np.sin(lon)[None],
            np.repeat(np.sin(lat)[:, None], segments, 1),
            -np.cos(lat)[:, None] * np.cos(lon)[None],
        ],
        -1,
    ).reshape(-1, 3)
    south, north = len(ring_xyz), len(ring_xyz) + 1
    vertices = np.concatenate([ring_xyz, [[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]]]) * radius
    u = np.arange(segments + 1) / segments  # the seam's east side at u = 1
    v = (lat / math.pi + 0.5)[:, None]
    faces, uvs = [], []
    for j in range(segments):
        a, b = j, (j + 1) % segments
        ua, ub = u[j], u[j + 1]
        for i in range(rings - 2):  # quads between rings i and i + 1: two triangles
            lo, hi = i * segments, (i + 1) * segments
            faces += [[lo + a, hi + b, lo + b], [lo + a, hi + a, hi + b]]
            va, vb = v[i, 0], v[i + 1, 0]
            uvs += [[[ua, va], [ub, vb], [ub, va]], [[ua, va], [ua, vb], [ub, vb]]]
        top = (rings - 2) * segments
        faces += [[south, a, b], [top + a, north, top + b]]
        um = 0.5 * (ua + ub)
        uvs += [[[um, 0.0], [ua, v[0, 0]], [ub, v[0, 0]]], [[ua, v[-1, 0]], [um, 1.0], [ub, v[-1, 0]]]]
    vertices, faces = _out(vertices, np.asarray(faces))
    return vertices, faces, torch.tensor(uvs, dtype=torch.float32)


def _unit_icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=level, radius=1.0)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return v, np.asarray(mesh.faces, dtype=np.int64)


def icosphere(level: int = 3, radius: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Geodesic sphere from a subdivided icosahedron.

    Level ``n`` has ``10 * 4**n + 2`` vertices and ``20 * 4**n`` faces: level 3 gives the
    642-vertex / 1280-face template used in the SoftRas paper.

    Args:
        level: number of subdivisions (>= 0).
        radius: sphere radius.

    Returns:
        ``(vertices [V, 3], faces [F, 3])``.
    """
    level = _check_int("level", level, 0)
    radius = check_positive("radius", radius)
    v, f = _unit_icosphere(level)
    return _out(v * radius, f)


def fibonacci_sphere(vertices: int = 1352, radius: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sphere of any vertex count with nearly uniform triangles: the convex hull of a Fibonacci lattice.

    Vertex ``i`` of ``n`` sits at height ``y = 1 - (2i + 1)/n`` and longitude ``i`` times the
    golden angle ``π(3 - √5)``, which spreads the points evenly over the sphere; their convex hull
    (:class:`scipy.spatial.ConvexHull`) has ``2n - 4`` triangles, vertex valences of mostly 6 (and
    5 and 7). The default 1352 vertices / 2700 faces match the resolution and the kind of the
    original SoftRas deformation template (``data/obj/sphere/sphere_1352.obj``, a remeshed
    sphere with edge lengths 0.08-0.14 and valences 5-7; this one has 0.084-0.142).

    Args:
        vertices: number of vertices (>= 4).
        radius: sphere radius.

    Returns:
        ``(vertices [V, 3], faces [2V - 4, 3])``.
    """
    from scipy.spatial import ConvexHull

    n = _check_int("vertices", vertices, 4)
    radius = check_positive("radius", radius)
    i = np.arange(n) + 0.5
    y = 1 - 2 * i / n
    ring = np.sqrt(1 - y * y)
    longitude = math.pi * (3 - math.sqrt(5)) * i
    v = np.stack([ring * np.cos(longitude), y, ring * np.sin(longitude)], axis=1)
    f = ConvexHull(v).simplices.astype(np.int64)
    normal = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    inward = (normal * v[f].sum(axis=1)).sum(axis=1) < 0
    f[inward] = f[inward][:, ::-1]
    return _out(v * radius, f)


_CUBE_SIDES = (
    # (corner indices CCW seen from outside, colour); corner index = x + 2*y + 4*z bits
    ((1, 3, 7, 5), (1.0, 0.0, 0.0)),  # +x red
    ((0, 4, 6, 2), (0.0, 1.0, 1.0)),  # -x cyan
    ((2, 6, 7, 3), (0.0, 1.0, 0.0)),  # +y green
    ((0, 1, 5, 4), (1.0, 0.0, 1.0)),  # -y magenta
    ((4, 5, 7, 6), (0.0, 0.0, 1.0)),  # +z blue
    ((0, 2, 3, 1), (1.0, 1.0, 0.0)),  # -z yellow
)


def color_cube(size: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Axis-aligned cube centred at the origin with one saturated colour per side.

    Sides: +x red, -x cyan, +y green, -y magenta, +z blue, -z yellow.

    Args:
        size: edge length.

    Returns:
        ``(vertices [8, 3], faces [12, 3], textures [12, 1, 3])``; the textures are surface
        textures with ``R = 1`` (both triangles of a side share its colour).
    """
    size = check_positive("size", size)
    idx = np.arange(8)
    bits = np.stack([idx & 1, (idx >> 1) & 1, (idx >> 2) & 1], axis=1).astype(np.float64)
    vertices = (bits - 0.5) * size
    faces, colours = [], []
    for (a, b, c, d), col in _CUBE_SIDES:
        faces += [(a, b, c), (a, c, d)]
        colours += [col, col]
    v, f = _out(vertices, np.array(faces))
    textures = torch.tensor(colours, dtype=torch.float32)[:, None, :]
    return v, f, textures


def _grid_torus_faces(n_major: int, n_minor: int) -> np.ndarray:
    """Faces of an ``n_major x n_minor`` periodic grid (vertex ``i * n_minor + j``)."""
    i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    i, j = i.ravel(), j.ravel()
    i1, j1 = (i + 1) % n_major, (j + 1) % n_minor
    a = i * n_minor + j
    b = i1 * n_minor + j
    c = i1 * n_minor + j1
    d = i * n_minor + j1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)], axis=0)


def _torus_points(major_radius: float, minor: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    ring = major_radius + minor * np.cos(v)
    return np.stack([ring * np.cos(u), ring * np.sin(u), minor * np.sin(v)], axis=-1)


def torus(
    major_radius: float = 0.7,
    minor_radius: float = 0.3,
    major_segments: int = 48,
    minor_segments: int = 24,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Torus around the z axis (lying in the xy plane).

    Args:
        major_radius: distance from the centre to the middle of the tube.
        minor_radius: tube radius (must be smaller than ``major_radius``).
        major_segments: segments around the z axis (>= 3).
        minor_segments: segments around the tube (>= 3).

    Returns:
        ``(vertices [M*N, 3], faces [2*M*N, 3])`` with ``M, N`` the segment counts.
    """
    major_radius = check_positive("major_radius", major_radius)
    minor_radius = check_positive("minor_radius", minor_radius)
    if minor_radius >= major_radius:
        raise ValueError(f"minor_radius ({minor_radius}) must be smaller than major_radius ({major_radius})")
    m = _check_int("major_segments", major_segments, 3)
    n = _check_int("minor_segments", minor_segments, 3)
    u, v = np.meshgrid(np.arange(m) * (2 * math.pi / m), np.arange(n) * (2 * math.pi / n), indexing="ij")
    pts = _torus_points(major_radius, np.full(u.shape, minor_radius), u, v).reshape(-1, 3)
    return _out(pts, _grid_torus_faces(m, n))


def bumpy_sphere(level: int = 4, amplitude: float = 0.1, frequency: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Icosphere with smooth radial bumps (non-convex for ``amplitude > 0``).

    The radius along unit direction ``(x, y, z)`` is
    ``1 + amplitude * sin(f x) * sin(f y) * sin(f z) / max|...|`` with ``f = frequency``,
    normalised so that the bumps reach exactly ``1 ± amplitude`` at the sample vertices.

    Args:
        level: icosphere subdivisions (level 4: 2562 vertices / 5120 faces).
        amplitude: bump height relative to the unit radius, in ``[0, 1)``.
        frequency: angular frequency of the bumps.

    Returns:
        ``(vertices [V, 3], faces [F, 3])``.
    """
    level = _check_int("level", level, 0)
    amplitude = check_positive("amplitude", amplitude, allow_zero=True)
    if amplitude >= 1:
        raise ValueError(f"amplitude: expected a value in [0, 1), got {amplitude}")
    frequency = check_positive("frequency", frequency)
    v, f = _unit_icosphere(level)
    bump = np.prod(np.sin(frequency * v), axis=1)
    peak = np.abs(bump).max()
    if peak > 0:
        bump = bump / peak
    return _out(v * (1.0 + amplitude * bump)[:, None], f)


def star_prism(
    points: int = 5, outer_radius: float = 1.0, inner_radius: float = 0.45, height: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Extruded star (non-convex), centred at the origin, extruded along z.

    Args:
        points: number of star tips (>= 3).
        outer_radius: radius of the tips.
        inner_radius: radius of the notches (``< outer_radius``).
        height: extent along z.

    Returns:
        ``(vertices [4*points + 2, 3], faces [8*points, 3])``.
    """
    n = _check_int("points", points, 3)
    outer_radius = check_positive("outer_radius", outer_radius)
    inner_radius = check_positive("inner_radius", inner_radius)
    height = check_positive("height", height)
    if inner_radius >= outer_radius:
        raise ValueError("inner_radius must be smaller than outer_radius")
    k = 2 * n
    ang = np.arange(k) * (math.pi / n) + math.pi / 2
    rad = np.where(np.arange(k) % 2 == 0, outer_radius, inner_radius)
    ring = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)  # CCW seen from +z
    h = height / 2
    bottom = np.concatenate([ring, np.full((k, 1), -h)], axis=1)
    top = np.concatenate([ring, np.full((k, 1), h)], axis=1)
    verts = np.concatenate([bottom, top, [[0, 0, -h], [0, 0, h]]], axis=0)
    cb, ct = 2 * k, 2 * k + 1
    i = np.arange(k)
    j = (i + 1) % k
    top_f = np.stack([np.full(k, ct), k + i, k + j], axis=1)
    bot_f = np.stack([np.full(k, cb), j, i], axis=1)
    side_a = np.stack([i, j, k + j], axis=1)
    side_b = np.stack([i, k + j, k + i], axis=1)
    return _out(verts, np.concatenate([top_f, bot_f, side_a, side_b], axis=0))


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    h6 = (h % 1.0) * 6.0
    c = v * s
    x = c * (1 - np.abs(h6 % 2 - 1))
    zero = np.zeros_like(h6)
    sector = np.floor(h6).astype(int) % 6
    table = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)]
    rgb = np.zeros((*h6.shape, 3))
    for s_idx, (r, g, b) in enumerate(table):
        mask = sector == s_idx
        rgb[mask] = np.stack([r, g, b], axis=-1)[mask]
    return rgb + (v - c)[..., None]


def demo_mesh() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A colourful built-in mesh for demos: a twisted, three-lobed torus (4608 faces).

    The tube's cross-section has three lobes that turn once around the ring; colours run
    through the hues around the ring and are brighter on the lobes. It lies in the xy plane
    and fits inside the unit sphere (radius < 0.95).

    Returns:
        ``(vertices [2304, 3], faces [4608, 3], vertex colours [2304, 3] in [0, 1])``.
    """
    m, n = 72, 32
    big_r, small_r, lobe_amp, lobes = 0.62, 0.22, 0.3, 3
    u, v = np.meshgrid(np.arange(m) * (2 * math.pi / m), np.arange(n) * (2 * math.pi / n), indexing="ij")
    lobe = np.cos(lobes * v - u)  # turns once around the ring; periodic in u and v
    minor = small_r * (1.0 + lobe_amp * lobe)
    pts = _torus_points(big_r, minor, u, v).reshape(-1, 3)
    hue = u / (2 * math.pi) + 0.08 * lobe
    sat = 0.75 + 0.2 * np.sin(v) ** 2
    val = 0.7 + 0.3 * (0.5 + 0.5 * lobe)
    colours = np.clip(_hsv_to_rgb(hue, sat, val).reshape(-1, 3), 0, 1)
    v_t, f_t = _out(pts, _grid_torus_faces(m, n))
    return v_t, f_t, torch.from_numpy(colours.astype(np.float32))


def surface_colors_from_vertex_colors(
    faces: torch.Tensor | np.ndarray,
    vertex_colors: torch.Tensor | np.ndarray,
    texture_res: int,
) -> torch.Tensor:
    """Surface textures ``[F, R*R, 3]`` from vertex colours ``[V, 3]`` (``faces`` ``[F, 3]``),
    by interpolating the colours at the texel-centre barycentrics (differentiable)."""
    return surface_textures_from_vertex_colors(faces, vertex_colors, texture_res)
