"""External oracle for the z-buffer outputs of softras.render: trimesh ray casting.

A ray through each pixel centre of a Pinhole camera (OpenCV convention: pixel (row r,
column c) is (u, v) = (c, r), ray direction Rᵀ K⁻¹ (u, v, 1)) is intersected with the mesh by
``trimesh.ray.ray_triangle.RayMeshIntersector`` (pure NumPy). The nearest hit gives the face
id, the camera depth (z in the camera frame, not the ray length) and the barycentrics of the
hit point, to compare with ``face_id``, ``hard_depth`` and ``barycentrics``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch

import softras
from softras.cameras import Pinhole, rodrigues

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("rtree")
from trimesh.ray.ray_triangle import RayMeshIntersector  # noqa: E402

F64 = torch.float64
EDGE_TOL = 1e-6  # a face id may differ only where the ray passes this close to an edge (world units)


class Agreement(NamedTuple):
    covered: int  # pixels that either renderer covers
    face_id_agree: float  # fraction of those with the same face id
    near_edge_only: bool  # every disagreement is within EDGE_TOL of an edge
    max_depth_rel: float  # max |hard_depth − ray z| / ray z over agreeing pixels
    max_bary: float  # max |barycentrics − ray barycentrics| over agreeing pixels


def ray_cast(
    vertices: np.ndarray, faces: np.ndarray, camera: Pinhole, near: float = -np.inf, far: float = np.inf
) -> tuple[np.ndarray, ...]:
    """Nearest hit of the ray through every pixel centre, among the hits at camera depth in [near, far].

    Returns:
        face id [H, W] (−1: no hit), hit points [H, W, 3] (world), the ray origin [3] and the
        unit ray directions [H, W, 3] (world).
    """
    h, w = camera.image_size
    K, R, t = (x[0].numpy() for x in (camera.K, camera.R, camera.t))
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(h * w)], axis=1)
    directions = pixels @ np.linalg.inv(K).T @ R  # Rᵀ K⁻¹ p, as rows
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    origins = np.broadcast_to(-R.T @ t, directions.shape)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    tri, ray, points = RayMeshIntersector(mesh).intersects_id(
        origins, directions, multiple_hits=True, return_locations=True
    )
    depth = (points @ R.T + t)[:, 2]
    seen = (depth >= near) & (depth <= far)
    tri, ray, points, depth = tri[seen], ray[seen], points[seen], depth[seen]
    face_id = np.full(h * w, -1, dtype=np.int64)
    hit = np.zeros((h * w, 3))
    order = np.argsort(-depth, kind="stable")  # nearest last, so that it wins
    face_id[ray[order]], hit[ray[order]] = tri[order], points[order]
    return face_id.reshape(h, w), hit.reshape(h, w, 3), origins[0], directions.reshape(h, w, 3)


def _ray_edge_distance(origin: np.ndarray, direction: np.ndarray, tri: np.ndarray) -> float:
    """Distance between the ray and the closest of the triangle's 3 edges (sampled finely along each edge)."""
    s = np.linspace(0.0, 1.0, 20001)[:, None]
    best = np.inf
    for k in range(3):
        p = tri[k] + s * (tri[(k + 1) % 3] - tri[k])
        rel = p - origin
        perp = rel - (rel @ direction)[:, None] * direction
        best = min(best, float(np.linalg.norm(perp, axis=1).min()))
    return best


def _exact_ray_edge_distance(origin: np.ndarray, direction: np.ndarray, tri: np.ndarray) -> float:
    """Exact distance between the ray's line and the triangle's closest edge segment."""
    best = np.inf
    for k in range(3):
        a, b = tri[k], tri[(k + 1) % 3]
        e = b - a
        # minimise |a + s e − o − r d| over s ∈ [0, 1], r free: project out d first
        a_p = (a - origin) - ((a - origin) @ direction) * direction
        e_p = e - (e @ direction) * direction
        denom = e_p @ e_p
        s = 0.0 if denom == 0 else float(np.clip(-(a_p @ e_p) / denom, 0.0, 1.0))
        best = min(best, float(np.linalg.norm(a_p + s * e_p)))
    return best


def compare(vertices: torch.Tensor, faces: torch.Tensor, camera: Pinhole) -> Agreement:
    mesh = softras.Mesh(vertices[None], faces[None])
    out = softras.render(mesh, camera, outputs=("face_id", "barycentrics", "hard_depth"), backend="reference")
    ours = out.face_id[0].numpy()
    v, f = vertices.numpy(), faces.numpy().astype(np.int64)
    theirs, hit, origin, directions = ray_cast(v, f, camera)
    covered = (ours >= 0) | (theirs >= 0)
    agree = covered & (ours == theirs)
    near_edge = True
    for r, c in zip(*np.nonzero(covered & ~agree), strict=True):
        faces_hit = [i for i in (ours[r, c], theirs[r, c]) if i >= 0]
        d = min(_exact_ray_edge_distance(origin, directions[r, c], v[f[i]]) for i in faces_hit)
        near_edge &= d < EDGE_TOL
    R, t = camera.R[0].numpy(), camera.t[0].numpy()
    z = (hit @ R.T + t)[..., 2]
    depth_rel = np.abs(out.hard_depth[0, 0].numpy() - z) / z
    corners = v[f[np.where(agree, theirs, 0)]]  # [H, W, 3, 3]
    bary = trimesh.triangles.points_to_barycentric(corners[agree], hit[agree])
    ours_bary = out.barycentrics[0].permute(1, 2, 0).numpy()[agree]
    return Agreement(
        int(covered.sum()),
        float(agree.sum() / covered.sum()),
        bool(near_edge),
        float(depth_rel[agree].max()),
        float(np.abs(ours_bary - bary).max()),
    )


def _camera(size: tuple[int, int], skew: float = 0.0, aspect: float = 1.0) -> Pinhole:
    h, w = size
    f = 1.3 * min(h, w)
    K = torch.tensor([[f, skew, (w - 1) / 2 + 1.7], [0.0, f * aspect, (h - 1) / 2 - 2.3], [0.0, 0.0, 1.0]], dtype=F64)
    R = rodrigues(torch.tensor([0.35, -0.6, 0.15], dtype=F64))
    t = torch.tensor([0.1, -0.05, 3.4], dtype=F64)
    return Pinhole(K, R, t, image_size=size)


MESHES = {
    "icosphere": lambda: softras.shapes.icosphere(3),  # 1280 faces
    "torus": lambda: softras.shapes.torus(),  # 2304 faces, self-occluding
    "star_prism": lambda: softras.shapes.star_prism(),  # 40 faces, concave, sharp edges
}
# trimesh's ray casting takes ~10 s per 10⁴ rays on 10³ faces: one size per mesh and camera.
CASES = [
    ("icosphere", (128, 128), 0.0, 1.0),
    ("torus", (128, 128), 0.0, 1.0),
    ("star_prism", (128, 128), 0.0, 1.0),
    ("torus", (96, 160), 0.8, 1.1),  # non-square, skew, fx != fy
    ("star_prism", (96, 160), 0.8, 1.1),
]


@pytest.mark.parametrize(("name", "size", "skew", "aspect"), CASES)
def test_zbuffer_outputs_agree_with_trimesh_ray_casting(name: str, size, skew: float, aspect: float) -> None:
    vertices, faces = MESHES[name]()[:2]
    result = compare(vertices.to(F64), faces, _camera(size, skew, aspect))
    assert result.covered > 0.1 * size[0] * size[1]
    assert result.face_id_agree >= 0.999, result
    assert result.near_edge_only, result
    # issue 13 asks for 1e-5 relative depth; in float64 both sides agree to ~1e-14
    assert result.max_depth_rel <= 1e-10, result
    assert result.max_bary <= 1e-9, result


def test_edge_distance_helpers_agree() -> None:
    tri = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.5], [0.0, 1.0, 3.0]])
    origin = np.zeros(3)
    for d in ([0.2, 0.2, 1.0], [0.6, -0.1, 1.0], [-0.3, 0.5, 1.0]):
        d = np.asarray(d) / np.linalg.norm(d)
        assert abs(_exact_ray_edge_distance(origin, d, tri) - _ray_edge_distance(origin, d, tri)) < 1e-6
