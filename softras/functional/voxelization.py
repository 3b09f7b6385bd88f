"""Solid voxelization of triangle meshes, and saving voxel grids as OBJ.

Conventions (identical to the original ``soft_renderer.functional.voxelization``):

* Input: face vertices [B, F, 3, 3]. With ``normalize=False`` (the default, and what
  ``Mesh.voxelize`` uses) the coordinates are multiplied by ``size`` first, so the grid spans
  ``[0, 1)^3``; with ``normalize=True`` they are taken as already in voxel units,
  spanning ``[0, size)^3``.
* Output: ``voxels[b, i, j, k]`` (int32 [B, size, size, size]) is 1 iff voxel
  ``[i, i+1) x [j, j+1) x [k, k+1)`` (in voxel units) is occupied: axis ``d`` of the grid is
  coordinate ``d`` of the vertices, no flip or transpose. A point ``p`` lies in voxel
  ``floor(p)``.
* Occupied = every voxel the surface touches (exact triangle/box overlap, separating-axis test)
  plus every empty voxel that cannot be reached from the grid border through 6-connected empty
  voxels (the filled interior; same rule as the original CUDA flood fill). Geometry outside the
  grid is clipped.

The work is done on the CPU (in float64) whatever the input device; the result is returned on the
input device.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from scipy import ndimage

from softras._validation import as_float_tensor, check_finite, check_shape

__all__ = ["save_voxel", "voxelization"]

# Largest number of (face, candidate voxel) pairs tested at once; bounds peak memory (~0.3 GB).
_CHUNK = 1 << 19
# Triangles wider than this (voxels) are subdivided first, so no triangle has a huge candidate box.
_MAX_EXTENT = 4.0
# Voxel i is tested as the closed box [i, i + 1 - _SHRINK], approximating the half-open
# [i, i + 1): a triangle lying exactly on the plane x = i marks voxel i, not i - 1.
_SHRINK = 1e-7


def _triangle_box_overlap(tri: np.ndarray, upper: float) -> np.ndarray:
    """Separating-axis test of triangles against the axis-aligned cube ``[0, upper]^3``.

    Args:
        tri: triangles [N, 3, 3] (vertex, xyz), float64, relative to the cube's lower corner
            (so a triangle lying on a voxel's lower face has exact zeros there).
        upper: cube edge length.

    Returns:
        bool [N]: whether triangle n overlaps the cube (boundaries included).
    """

    def separated(proj: np.ndarray, axis: np.ndarray) -> np.ndarray:
        # the cube projects onto ``axis`` as [sum min(0, a_k * upper), sum max(0, a_k * upper)]
        box_lo = np.minimum(axis * upper, 0.0).sum(1)
        box_hi = np.maximum(axis * upper, 0.0).sum(1)
        return (proj.max(1) < box_lo) | (proj.min(1) > box_hi)

    # 1) the cube face normals (x, y, z axes)
    overlap = np.all((tri.max(1) >= 0.0) & (tri.min(1) <= upper), axis=1)
    edges = np.stack([tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 1], tri[:, 0] - tri[:, 2]], axis=1)
    # 2) the triangle's plane (all three vertices project to the same value, up to round-off)
    normal = np.cross(edges[:, 0], edges[:, 1])
    overlap &= ~separated(np.einsum("nvc,nc->nv", tri, normal), normal)
    # 3) the nine cross products edge_i x axis_j
    for i in range(3):
        e = edges[:, i]
        for j in range(3):
            k1, k2 = (j + 1) % 3, (j + 2) % 3
            axis = np.zeros_like(e)  # e x unit_j
            axis[:, k1] = e[:, k2]
            axis[:, k2] = -e[:, k1]
            overlap &= ~separated(np.einsum("nvc,nc->nv", tri, axis), axis)
    return overlap


def _meets_grid(faces: np.ndarray, size: int) -> np.ndarray:
    """Whether each triangle's bounding box meets the grid ``[0, size)^3`` -> bool [F]."""
    return np.all((faces.max(1) >= 0) & (faces.min(1) < size), axis=1)


def _subdivide(faces: np.ndarray, max_extent: float, size: int) -> np.ndarray:
    """Split triangles [F, 3, 3] 1-to-4 at edge midpoints until each one's bounding box is at most
    ``max_extent`` wide along every axis, dropping pieces off the grid. The union of the pieces
    is the original triangle, so the set of overlapped voxels is unchanged; this only keeps the
    candidate boxes small."""
    done = []
    while faces.shape[0]:
        faces = faces[_meets_grid(faces, size)]
        big = (faces.max(1) - faces.min(1)).max(1) > max_extent
        done.append(faces[~big])
        faces = faces[big]
        if faces.shape[0] == 0:
            break
        v0, v1, v2 = faces[:, 0], faces[:, 1], faces[:, 2]
        m01, m12, m20 = (v0 + v1) * 0.5, (v1 + v2) * 0.5, (v2 + v0) * 0.5
        faces = np.concatenate([
            np.stack([v0, m01, m20], 1), np.stack([m01, v1, m12], 1),
            np.stack([m20, m12, v2], 1), np.stack([m01, m12, m20], 1),
        ])
    return np.concatenate(done) if done else faces


def _surface_voxels(faces: np.ndarray, size: int) -> np.ndarray:
    """Voxels touched by triangles ``faces`` [F, 3, 3] (voxel units) -> bool [size]*3."""
    grid = np.zeros((size, size, size), dtype=bool)
    if faces.shape[0] == 0:
        return grid
    inside = _meets_grid(faces, size)
    if not inside.any():
        return grid
    # the voxel holding each vertex (as the original does), in case of float round-off
    verts = np.floor(faces[inside].reshape(-1, 3)).astype(np.int64)
    verts = verts[np.all((verts >= 0) & (verts < size), axis=1)]
    grid[verts[:, 0], verts[:, 1], verts[:, 2]] = True
    faces = _subdivide(faces[inside], _MAX_EXTENT, size)
    lo = np.clip(np.floor(faces.min(1)).astype(np.int64), 0, size - 1)
    hi = np.clip(np.floor(faces.max(1)).astype(np.int64), 0, size - 1)
    ext = hi - lo + 1  # [F, 3] candidate block extent per face
    counts = ext.prod(1)
    # split the faces into chunks of at most ~_CHUNK candidate voxels
    bounds = np.searchsorted(np.cumsum(counts), np.arange(_CHUNK, counts.sum(), _CHUNK))
    for part in np.split(np.arange(faces.shape[0]), np.unique(bounds)):
        if part.size == 0:
            continue
        c = counts[part]
        face_id = np.repeat(part, c)
        local = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)  # index inside each block
        e = ext[face_id]
        offs = np.stack([local // (e[:, 1] * e[:, 2]), (local // e[:, 2]) % e[:, 1],
                         local % e[:, 2]], axis=1)
        idx = lo[face_id] + offs
        hit = _triangle_box_overlap(faces[face_id] - idx[:, None, :], 1.0 - _SHRINK)
        idx = idx[hit]
        grid[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return grid


def voxelization(face_vertices: torch.Tensor, size: int, normalize: bool = False) -> torch.Tensor:
    """Solid voxelization of triangle soups.

    Args:
        face_vertices: [B, F, 3, 3] triangle vertex positions (see the module docstring for the
            coordinate convention; ``Mesh.voxelize`` passes
            ``face_vertices * size / (size - 1) + 0.5``).
        size: grid resolution N.
        normalize: False: coordinates are in ``[0, 1)`` and get multiplied by ``size``;
            True: coordinates are already in voxel units ``[0, size)``.

    Returns:
        int32 [B, N, N, N] occupancy (1 = surface or interior), on the input's device.
        ``out[b, i, j, k]`` covers ``[i, i+1) x [j, j+1) x [k, k+1)`` in voxel units.
    """
    fv = as_float_tensor("face_vertices", face_vertices)
    check_shape("face_vertices", fv, ("B", "F", 3, 3))
    check_finite("face_vertices", fv)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: expected a positive integer, got {size!r}")
    size = int(size)
    device = fv.device
    faces = fv.detach().to("cpu", torch.float64).numpy()
    if not normalize:
        faces = faces * size
    out = np.empty((faces.shape[0], size, size, size), dtype=np.int32)
    for b in range(faces.shape[0]):
        surface = _surface_voxels(faces[b], size)
        out[b] = ndimage.binary_fill_holes(surface)  # default structure: 6-connectivity
    return torch.from_numpy(out).to(device)


# the 6 faces of a unit cube as quads of corner offsets, wound counter-clockwise seen from outside
_CUBE_QUADS = {
    (0, -1): [(0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0)],
    (0, +1): [(1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)],
    (1, -1): [(0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)],
    (1, +1): [(0, 1, 0), (0, 1, 1), (1, 1, 1), (1, 1, 0)],
    (2, -1): [(0, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 0)],
    (2, +1): [(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)],
}


def _voxel_cubes(occ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boundary surface of the occupied voxels: vertices in lattice units [V, 3] (int) and
    triangles [F, 3] (0-based), only faces between an occupied and an empty voxel."""
    _, n1, n2 = occ.shape
    padded = np.pad(occ, 1)
    quads = []
    for (axis, direction), corners in _CUBE_QUADS.items():
        neighbour = np.roll(padded, -direction, axis=axis)[1:-1, 1:-1, 1:-1]
        exposed = np.argwhere(occ & ~neighbour)  # [K, 3] voxels with this face exposed
        quads.append(exposed[:, None, :] + np.asarray(corners)[None])  # [K, 4, 3]
    quad = np.concatenate(quads, 0)
    if quad.shape[0] == 0:
        return np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64)
    keys = (quad[..., 0] * (n1 + 1) + quad[..., 1]) * (n2 + 1) + quad[..., 2]
    uniq, inverse = np.unique(keys.reshape(-1), return_inverse=True)
    inverse = inverse.reshape(-1, 4)
    verts = np.stack([uniq // ((n1 + 1) * (n2 + 1)), (uniq // (n2 + 1)) % (n1 + 1),
                      uniq % (n2 + 1)], axis=1)
    tris = np.concatenate([inverse[:, [0, 1, 2]], inverse[:, [0, 2, 3]]], 0)
    return verts, tris


def save_voxel(filename: str | os.PathLike, voxel: torch.Tensor | np.ndarray,
               mode: str = "cubes") -> None:
    """Write an occupancy grid [N0, N1, N2] (or [1, N0, N1, N2]) as a Wavefront OBJ.

    Coordinates are normalised like the original: voxel ``(i, j, k)`` sits at
    ``(i / N0, j / N1, k / N2)``.

    Args:
        filename: output path.
        voxel: occupancy; any value > 0.5 counts as occupied.
        mode: ``"cubes"`` (default): a closed triangle mesh of the occupied cubes (only the faces
            between occupied and empty voxels, cube ``(i, j, k)`` spanning
            ``[i/N0, (i+1)/N0] x ...``, shared corners merged, outward winding).
            ``"points"``: the original's output, one ``v`` line per occupied voxel at
            ``(i/N0, j/N1, k/N2)`` and no faces.
    """
    if mode not in ("cubes", "points"):
        raise ValueError(f"mode: expected 'cubes' or 'points', got {mode!r}")
    v = as_float_tensor("voxel", voxel)
    if v.ndim == 4 and v.shape[0] == 1:
        v = v[0]
    check_shape("voxel", v, ("N0", "N1", "N2"))
    occ = v.detach().cpu().numpy() > 0.5
    scale = np.asarray(occ.shape, dtype=np.float64)
    if mode == "points":
        verts = np.argwhere(occ) / scale
        tris = np.zeros((0, 3), np.int64)
    else:
        lattice, tris = _voxel_cubes(occ)
        verts = lattice / scale
    lines = [f"# {os.path.basename(os.fspath(filename))}\n#\n\n"]
    if len(verts):
        lines.append("\n".join(f"v {a:.8f} {b:.8f} {c:.8f}" for a, b, c in verts.tolist()))
        lines.append("\n\n")
    if len(tris):
        lines.append("\n".join(f"f {a} {b} {c}" for a, b, c in (tris + 1).tolist()))
        lines.append("\n")
    with open(filename, "w") as f:
        f.write("".join(lines))
