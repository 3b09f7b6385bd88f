"""Camera transforms: world -> camera -> screen (x, y in NDC, z = camera depth)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._precision import matmul
from .._validation import as_float_tensor, check_points

__all__ = [
    "distorted_pixels",
    "get_points_from_angles",
    "look",
    "look_at",
    "orthogonal",
    "perspective",
    "projection",
]

Vec3 = torch.Tensor | np.ndarray | Sequence[float]


def _vertices(vertices: torch.Tensor) -> torch.Tensor:
    return check_points("vertices", vertices, "V")


def _batched_vec3(name: str, value: Vec3, vertices: torch.Tensor) -> torch.Tensor:
    """[3] or [B, 3] (list / ndarray / tensor) -> [B, 3] on the vertices' device and dtype."""
    t = as_float_tensor(name, value, device=vertices.device, dtype=vertices.dtype)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] not in (1, vertices.shape[0]):
        raise ValueError(f"{name}: expected shape [3] or [{vertices.shape[0]}, 3], got {tuple(t.shape)}")
    return t.expand(vertices.shape[0], 3)


def _rotate_into(vertices: torch.Tensor, eye: torch.Tensor, z_axis: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    x_axis = F.normalize(torch.cross(up, z_axis, dim=1), eps=1e-5)
    y_axis = F.normalize(torch.cross(z_axis, x_axis, dim=1), eps=1e-5)
    r = torch.stack([x_axis, y_axis, z_axis], dim=1)  # [B, 3, 3] rows = camera axes
    return matmul(vertices - eye[:, None, :], r.transpose(1, 2))


def look_at(vertices: torch.Tensor, eye: Vec3, at: Vec3 = (0, 0, 0), up: Vec3 = (0, 1, 0)) -> torch.Tensor:
    """Camera at ``eye`` looking at ``at``: [B, V, 3] world -> camera coordinates (z forward).

    ``eye``, ``at``, ``up``: [3] or [B, 3] (one camera per batch item); differentiable.
    """
    vertices = _vertices(vertices)
    eye = _batched_vec3("eye", eye, vertices)
    at = _batched_vec3("at", at, vertices)
    up = _batched_vec3("up", up, vertices)
    z_axis = F.normalize(at - eye, eps=1e-5)
    return _rotate_into(vertices, eye, z_axis, up)


def look(vertices: torch.Tensor, eye: Vec3, direction: Vec3 = (0, 1, 0), up: Vec3 | None = None) -> torch.Tensor:
    """Camera at ``eye`` looking along ``direction``: [B, V, 3] -> camera coordinates.

    ``up`` defaults to (0, 1, 0) (the original crashed on its own default ``None``).
    """
    vertices = _vertices(vertices)
    eye = _batched_vec3("eye", eye, vertices)
    direction = _batched_vec3("direction", direction, vertices)
    up = _batched_vec3("up", (0, 1, 0) if up is None else up, vertices)
    return _rotate_into(vertices, eye, F.normalize(direction, eps=1e-5), up)


def perspective(vertices: torch.Tensor, angle: float | torch.Tensor = 30.0) -> torch.Tensor:
    """Perspective divide: x, y <- x / (z tan(angle)), y / (z tan(angle)); z kept.

    ``angle``: half field of view in degrees (number or tensor, [] or [B]).
    """
    vertices = _vertices(vertices)
    angle = as_float_tensor("angle", angle, device=vertices.device, dtype=vertices.dtype)
    width = torch.tan(angle * (math.pi / 180)).reshape(-1, 1)
    z = vertices[:, :, 2]
    return torch.stack([vertices[:, :, 0] / z / width, vertices[:, :, 1] / z / width, z], dim=2)


def orthogonal(vertices: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Orthographic projection: x, y scaled by ``scale`` (scalar or [B]); z kept."""
    vertices = _vertices(vertices)
    scale = as_float_tensor("scale", scale, device=vertices.device, dtype=vertices.dtype).reshape(-1, 1)
    return torch.stack([vertices[:, :, 0] * scale, vertices[:, :, 1] * scale, vertices[:, :, 2]], dim=2)


def distorted_pixels(
    vertices: torch.Tensor,
    P: torch.Tensor | np.ndarray,
    dist_coeffs: torch.Tensor | np.ndarray | None,
    eps: float = 1e-9,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pixel coordinates (u, v) [B, V] and depth z [B, V] of :func:`projection`, before NDC.

    The distortion acts on the pixel coordinates (P x)[:2] / z, as in the original package.
    """
    vertices = _vertices(vertices)
    b = vertices.shape[0]
    P = as_float_tensor("P", P, device=vertices.device, dtype=vertices.dtype)
    if P.ndim != 3 or P.shape[1:] != (3, 4) or P.shape[0] not in (1, b):
        raise ValueError(f"P: expected shape [{b}, 3, 4], got {tuple(P.shape)}")
    if dist_coeffs is None:
        dist_coeffs = torch.zeros(1, 5, dtype=vertices.dtype, device=vertices.device)
    dist_coeffs = as_float_tensor("dist_coeffs", dist_coeffs, device=vertices.device, dtype=vertices.dtype)
    if dist_coeffs.ndim == 1:
        dist_coeffs = dist_coeffs[None]
    if dist_coeffs.ndim != 2 or dist_coeffs.shape[1] != 5 or dist_coeffs.shape[0] not in (1, b):
        raise ValueError(f"dist_coeffs: expected shape [{b}, 5], got {tuple(dist_coeffs.shape)}")
    homo = torch.cat([vertices, torch.ones_like(vertices[:, :, :1])], dim=-1)
    x = matmul(homo, P.expand(b, 3, 4).transpose(2, 1))
    z = x[:, :, 2]
    x_, y_ = x[:, :, 0] / (z + eps), x[:, :, 1] / (z + eps)
    k1, k2, p1, p2, k3 = (dist_coeffs[:, i : i + 1] for i in range(5))
    r2 = x_**2 + y_**2  # r² directly: the original's sqrt then square had a NaN gradient at r = 0
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    x__ = x_ * radial + 2 * p1 * x_ * y_ + p2 * (r2 + 2 * x_**2)
    y__ = y_ * radial + p1 * (r2 + 2 * y_**2) + 2 * p2 * x_ * y_
    return x__, y__, z


def projection(
    vertices: torch.Tensor,
    P: torch.Tensor | np.ndarray,
    dist_coeffs: torch.Tensor | np.ndarray | None,
    orig_size: float,
    eps: float = 1e-9,
) -> torch.Tensor:
    """Pinhole projection with the original's distortion, to NDC.

    Args:
        vertices: [B, V, 3] world points.
        P: [B, 3, 4] (or [1, 3, 4], broadcast) projection matrices K [R | t], pixel units.
        dist_coeffs: [B, 5] (k1, k2, p1, p2, k3), or ``None`` for no distortion; applied to the
            pixel coordinates, as the original does (:class:`softras.Pinhole` applies it to
            normalised camera coordinates, as OpenCV does).
        orig_size: size in pixels of the image P maps to; u, v are mapped to [-1, 1] by
            2 (u − S/2) / S (no half-pixel offset, v not flipped; see docs/cameras.md).

    Returns:
        [B, V, 3]: (u, v) in NDC and z the depth.
    """
    x__, y__, z = distorted_pixels(vertices, P, dist_coeffs, eps)
    x__ = 2 * (x__ - orig_size / 2.0) / orig_size
    y__ = 2 * (y__ - orig_size / 2.0) / orig_size
    return torch.stack([x__, y__, z], dim=-1)


def _is_number(v: object) -> bool:
    """Python or NumPy real scalars (bools excluded)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def get_points_from_angles(
    distance: float | torch.Tensor, elevation: float | torch.Tensor, azimuth: float | torch.Tensor, degrees: bool = True
) -> tuple[float, float, float] | torch.Tensor:
    """Camera position on a sphere around the origin.

    Python (or NumPy) numbers -> a tuple (x, y, z); tensors (or arrays) of shape [B] -> [B, 3].
    Azimuth 0 puts the camera on the -z axis; elevation rotates it up towards +y.
    """
    if all(_is_number(v) for v in (distance, elevation, azimuth)):
        distance, elevation, azimuth = float(distance), float(elevation), float(azimuth)  # type: ignore[arg-type]
        el = math.radians(elevation) if degrees else elevation
        az = math.radians(azimuth) if degrees else azimuth
        return (
            distance * math.cos(el) * math.sin(az),
            distance * math.sin(el),
            -distance * math.cos(el) * math.cos(az),
        )
    tensors = [v for v in (distance, elevation, azimuth) if isinstance(v, torch.Tensor)]
    ref = tensors[0] if tensors else None
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    device = ref.device if ref is not None else None
    d, el, az = (
        as_float_tensor(n, v, device=device, dtype=dtype).reshape(-1)
        for n, v in (("distance", distance), ("elevation", elevation), ("azimuth", azimuth))
    )
    d, el, az = torch.broadcast_tensors(d, el, az)
    if degrees:
        el, az = el * (math.pi / 180), az * (math.pi / 180)
    return torch.stack(
        [d * torch.cos(el) * torch.sin(az), d * torch.sin(el), -d * torch.cos(el) * torch.cos(az)], dim=1
    )
