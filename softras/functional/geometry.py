"""Mesh geometry on batched tensors: face gathering and normals."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validation import check_shape, reads_values

__all__ = ["face_vertices", "surface_normals", "vertex_normals"]


def _check_mesh(vertices: torch.Tensor, faces: torch.Tensor, *, last: int | None = 3) -> None:
    check_shape("vertices", vertices, ("B", "V", last))
    check_shape("faces", faces, (vertices.shape[0], "F", 3))
    if faces.is_floating_point():
        raise TypeError(f"faces: expected an integer dtype, got {faces.dtype}")
    if faces.device != vertices.device:
        raise ValueError(f"faces: expected device {vertices.device} (as vertices), got {faces.device}")
    if faces.numel() and reads_values() and (int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[1]):
        raise ValueError(
            f"faces: indices must lie in [0, {vertices.shape[1] - 1}], "
            f"got range [{int(faces.min())}, {int(faces.max())}]"
        )


def face_vertices(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Gather per-face corner attributes.

    Args:
        vertices: [B, V, C] per-vertex attributes (positions, colours, ...).
        faces: [B, F, 3] integer vertex indices.

    Returns:
        [B, F, 3, C]: ``out[b, f, k] = vertices[b, faces[b, f, k]]``.
    """
    _check_mesh(vertices, faces, last=None)
    b, v = vertices.shape[:2]
    offset = (torch.arange(b, device=faces.device) * v)[:, None, None]
    return vertices.reshape(b * v, -1)[(faces.long() + offset)]


def surface_normals(face_vertices_: torch.Tensor) -> torch.Tensor:
    """Unit normals of triangles [B, F, 3, 3] -> [B, F, 3]; (v1 - v0) x (v2 - v0) orientation."""
    v10 = face_vertices_[:, :, 0] - face_vertices_[:, :, 1]
    v12 = face_vertices_[:, :, 2] - face_vertices_[:, :, 1]
    return F.normalize(torch.cross(v12, v10, dim=2), p=2, dim=2, eps=1e-6)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals.

    Args:
        vertices: [B, V, 3]; faces: [B, F, 3] integer.

    Returns:
        [B, V, 3] unit normals (sum of the corner cross products of adjacent faces).
    """
    _check_mesh(vertices, faces)
    b, v = vertices.shape[:2]
    fv = face_vertices(vertices, faces)  # [B, F, 3, 3]
    idx = (faces.long() + (torch.arange(b, device=faces.device) * v)[:, None, None]).reshape(-1)
    corner = torch.stack(
        [
            torch.cross(fv[:, :, 1] - fv[:, :, 0], fv[:, :, 2] - fv[:, :, 0], dim=-1),
            torch.cross(fv[:, :, 2] - fv[:, :, 1], fv[:, :, 0] - fv[:, :, 1], dim=-1),
            torch.cross(fv[:, :, 0] - fv[:, :, 2], fv[:, :, 1] - fv[:, :, 2], dim=-1),
        ],
        dim=2,
    ).reshape(-1, 3)
    normals = torch.zeros(b * v, 3, dtype=vertices.dtype, device=vertices.device).index_add(0, idx, corner)
    return F.normalize(normals, eps=1e-6, dim=1).reshape(b, v, 3)
