"""Camera transforms: world -> camera -> screen (x, y in NDC, z = camera depth)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._precision import matmul
from .._validation import as_float_tensor, check_batch_sizes, check_bool, check_points

__all__ = [
    "brown_conrady",
    "check_distortion",
    "distorted_pixels",
    "distortion_fold",
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


# --------------------------------------------------------------------------- Brown–Conrady distortion


def _radial(r2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """1 + k1 r² + k2 r⁴ + k3 r⁶ for NumPy r² [b, ...] and coefficients d [b, 5] (float64)."""
    k1, k2, k3 = (d[:, i].reshape(-1, *([1] * (r2.ndim - 1))) for i in (0, 1, 4))
    return 1 + r2 * (k1 + r2 * (k2 + r2 * k3))


def distortion_fold(dist_coeffs: torch.Tensor) -> torch.Tensor:
    """r² at the fold of the radial distortion, per camera: [b, 5] -> float64 CPU [b] (detached).

    The fold is the first r > 0 where d/dr [r (1 + k1 r² + k2 r⁴ + k3 r⁶)] = 1 + 3 k1 r² +
    5 k2 r⁴ + 7 k3 r⁶ = 0: beyond it the distorted radius shrinks again. +inf where there is
    none. With q = 1/r² the condition is the monic cubic q³ + 3 k1 q² + 5 k2 q + 7 k3 = 0,
    whose largest positive real root gives the first fold.
    """
    return torch.from_numpy(_fold_r2(dist_coeffs.detach().to("cpu", torch.float64).numpy()))


def _fold_r2(d: np.ndarray) -> np.ndarray:
    """:func:`distortion_fold` on NumPy coefficients [b, 5] (float64)."""
    companion = np.zeros((d.shape[0], 3, 3))
    companion[:, 0] = -np.stack([3 * d[:, 0], 5 * d[:, 1], 7 * d[:, 4]], axis=1)
    companion[:, 1, 0] = companion[:, 2, 1] = 1.0
    q = np.linalg.eigvals(companion)
    real = (q.imag == 0) & (q.real > 0)  # LAPACK returns real eigenvalues with an exact 0 imaginary part
    qmax = np.where(real, q.real, 0.0).max(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(qmax > 0, 1.0 / qmax, np.inf)


def _frozen_r2(r2: torch.Tensor, fold: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """r² [B, N], replaced by the fold's r² where it lies beyond it (fold [B] or [1], +inf: no fold).

    The fold's r² comes from detached values; one Newton step on 1 + 3 k1 s + 5 k2 s² +
    7 k3 s³ = 0 (which leaves its value) gives it its derivative in k1, k2, k3.
    """
    s0 = fold.to(device=r2.device, dtype=r2.dtype)[:, None]
    finite = torch.isfinite(s0)
    s0 = torch.where(finite, s0, torch.zeros_like(s0))
    k1, k2, k3 = d[:, 0:1], d[:, 1:2], d[:, 4:5]
    g = 1 + s0 * (3 * k1 + s0 * (5 * k2 + s0 * (7 * k3)))
    slope = 3 * k1 + s0 * (10 * k2 + s0 * (21 * k3))
    ok = finite & (s0 * slope).abs().gt(1e-6)  # a simple root (not a double one, where ρ' only touches 0)
    step = torch.where(ok, g, torch.zeros_like(g)) / torch.where(ok, slope, torch.ones_like(slope))
    return torch.where(finite & (r2 > s0), s0 - step, r2)


def brown_conrady(
    x: torch.Tensor, y: torch.Tensor, dist_coeffs: torch.Tensor, fold: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's lens distortion of normalised camera coordinates: (x', y') [B, N] -> (x'', y'') [B, N].

    ``dist_coeffs``: [B, 5] (k1, k2, p1, p2, k3) in the dtype and on the device of ``x``.
    With r² = x'² + y'²: x'' = x' c + 2 p1 x'y' + p2 (r² + 2x'²), y'' = y' c + p1 (r² + 2y'²) +
    2 p2 x'y', where c = 1 + k1 r² + k2 r⁴ + k3 r⁶ up to the fold of the radial part
    (:func:`distortion_fold`; ``fold``: its [B] or [1] result, computed if None) and c frozen at
    its value there beyond it. So the radial part is monotonic and continuous, and a point far
    outside the field of view cannot fold back into the image, as it does in OpenCV's
    polynomial. Differentiable everywhere (the gradient of c is 0 in r beyond the fold).
    """
    if fold is None:
        fold = distortion_fold(dist_coeffs)
    k1, k2, p1, p2, k3 = (dist_coeffs[:, i : i + 1] for i in range(5))
    r2 = x * x + y * y
    s = r2 if bool(torch.isinf(fold).all()) else _frozen_r2(r2, fold, dist_coeffs)
    radial = 1 + s * (k1 + s * (k2 + s * k3))
    xy = x * y
    return (
        x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x),
        y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy,
    )


def _corner_radius(intrinsics: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[b]: the largest distance from the principal point, in distorted normalised coordinates
    (x'', y''), of the corners (u, v) ∈ {−½, W − ½} × {−½, H − ½} of the image
    (``intrinsics``: [b, 5] fx, s, cx, fy, cy)."""
    h, w = image_size
    u = np.array([-0.5, w - 0.5, -0.5, w - 0.5])
    v = np.array([-0.5, -0.5, h - 0.5, h - 0.5])
    fx, s, cx, fy, cy = (intrinsics[:, i, None] for i in range(5))
    y2 = (v - cy) / fy
    x2 = (u - cx - s * y2) / fx
    return np.hypot(x2, y2).max(axis=1)


def _reach(d: np.ndarray, target: np.ndarray, r_max: np.ndarray) -> np.ndarray:
    """[b]: an r ≤ ``r_max`` with r* ≤ r < 2 r*, where r* (1 + k1 r*² + k2 r*⁴ + k3 r*⁶) = ``target``,
    or ``r_max`` where the radial part, increasing up to ``r_max`` (its fold, or +inf: then it
    grows without bound), does not reach ``target`` before it."""
    r = np.minimum(target, r_max)
    for _ in range(2100):  # halve or double from r = target: a few steps unless k is extreme
        short = (r * _radial(r**2, d) < target) & (r < r_max)
        long = r / 2 * _radial(r**2 / 4, d) >= target
        if not (short.any() or long.any()):
            break
        r = np.where(short, np.minimum(2 * r, r_max), np.where(long, r / 2, r))
    return r


def _rays(d: np.ndarray, corner: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, ...]:
    """Undistorted samples along 64 rays from the principal point, 128 per ray, up to about where
    the radial part reaches twice the corner radius (:func:`_reach`), or to its fold before that.

    Returns x, y, the distorted radius |(x'', y'')| and the Jacobian determinant of
    (x', y') -> (x'', y''), each [b, 64, 128], and the rays' angles [64] (radians).
    """
    r_end = _reach(d, 2 * corner, np.sqrt(fold))
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    r = r_end[:, None, None] * (1 - 1e-6) * np.arange(1, 129)[None, None, :] / 128
    x, y = r * np.cos(theta)[None, :, None], r * np.sin(theta)[None, :, None]
    k1, k2, p1, p2, k3 = (d[:, i, None, None] for i in range(5))
    r2 = x * x + y * y
    c = _radial(r2, d)
    dc = k1 + r2 * (2 * k2 + r2 * (3 * k3))  # dc/d(r²)
    jxx = c + 2 * x * x * dc + 2 * p1 * y + 6 * p2 * x
    jyy = c + 2 * y * y * dc + 6 * p1 * y + 2 * p2 * x
    jxy = 2 * x * y * dc + 2 * p1 * x + 2 * p2 * y
    xd = x * c + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * c + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return x, y, np.hypot(xd, yd), jxx * jyy - jxy * jxy, theta


def _tangential_failure(d: np.ndarray, corner: np.ndarray, fold: np.ndarray) -> tuple[int, str] | None:
    """The first camera (and what fails) whose full model (with p1, p2) folds inside its image.

    Along each ray (:func:`_rays`) the Jacobian determinant must stay > 0 until the distorted
    point is beyond the corner radius, and that must happen before the radial fold.
    """
    x, y, out, det, theta = _rays(d, corner, fold)
    beyond = out > corner[:, None, None]
    upto = np.cumsum(beyond, axis=2) - beyond == 0  # samples up to the first one beyond the corner radius
    bad = (det <= 0) & upto
    stuck = ~beyond.any(axis=2)  # [b, rays]
    failing = bad.any(axis=(1, 2)) | stuck.any(axis=1)
    if not failing.any():
        return None
    i = int(np.argmax(failing))
    if bad[i].any():
        k, j = np.argwhere(bad[i])[0]
        return i, f"a Jacobian determinant of {det[i, k, j]:.3g} at (x', y') = ({x[i, k, j]:.3g}, {y[i, k, j]:.3g})"
    k = int(np.argmax(stuck[i]))
    return i, f"distorted points that get no farther than radius {out[i, k].max():.3g} at {np.degrees(theta[k]):.0f}°"


def check_distortion(name: str, K: torch.Tensor, dist_coeffs: torch.Tensor, image_size: tuple[int, int]) -> None:
    """Raise ``ValueError`` naming ``name`` if the distortion folds inside an H × W image.

    ``K``: [b, 3, 3] intrinsics (or [1, 3, 3]); ``dist_coeffs``: [b, 5] (k1, k2, p1, p2, k3).
    Going outward from the principal point, the map (x', y') -> (x'', y'') must have a positive
    Jacobian determinant until the distorted point is beyond the farthest image corner, and the
    radial part's fold (:func:`distortion_fold`) must lie beyond that corner. The radial part
    is checked exactly; with p1, p2 ≠ 0 the full map is sampled along 64 rays. Results are
    cached by value, so a camera rendered again is not checked again.
    """
    d = dist_coeffs.detach().to("cpu", torch.float64).numpy()
    if not d.any():
        return
    k = K.detach().to("cpu", torch.float64).numpy()[:, [0, 0, 0, 1, 1], [0, 1, 2, 1, 2]]  # fx, s, cx, fy, cy
    b = max(k.shape[0], d.shape[0])
    params = np.concatenate([np.broadcast_to(k, (b, 5)), np.broadcast_to(d, (b, 5))], axis=1)
    failure = _distortion_failure(params.tobytes(), (int(image_size[0]), int(image_size[1])))
    if failure is not None:
        i, corner, what = failure
        h, w = image_size
        raise ValueError(
            f"{name}: expected a distortion that is monotonic out to the corners of the {h} × {w} image "
            f"(distorted radius {corner:.3g} from the principal point), got {what} in camera {i}: "
            "points beyond the fold would land back inside the image"
        )


@functools.lru_cache(maxsize=256)
def _distortion_failure(params: bytes, image_size: tuple[int, int]) -> tuple[int, float, str] | None:
    """(camera, its corner radius, what fails) for the first camera that fails
    :func:`check_distortion`, or None; ``params``: the bytes of float64 [b, 10] rows
    (fx, s, cx, fy, cy, k1, k2, p1, p2, k3)."""
    rows = np.frombuffer(params).reshape(-1, 10)
    d = rows[:, 5:]
    corner = _corner_radius(rows[:, :5], image_size)
    fold = _fold_r2(d)
    r_fold = np.sqrt(np.where(np.isfinite(fold), fold, 0.0))
    rho_fold = r_fold * _radial(np.where(np.isfinite(fold), fold, 0.0), d)
    folds = np.isfinite(fold) & (rho_fold <= corner)
    failure = None
    if folds.any():
        i = int(np.argmax(folds))
        failure = i, f"a radial part that folds at r = {r_fold[i]:.3g} (distorted radius {rho_fold[i]:.3g})"
    elif (d[:, 2:4] != 0).any():
        failure = _tangential_failure(d, corner, fold)
    return None if failure is None else (failure[0], float(corner[failure[0]]), failure[1])


def _is_number(v: object) -> bool:
    """Python or NumPy real scalars (bools excluded)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def get_points_from_angles(
    distance: float | torch.Tensor, elevation: float | torch.Tensor, azimuth: float | torch.Tensor, degrees: bool = True
) -> tuple[float, float, float] | torch.Tensor:
    """Camera position on a sphere around the origin.

    Python (or NumPy) numbers -> a tuple (x, y, z); tensors (or arrays) of shape [B] (or [1],
    or numbers, shared) -> [B, 3]. Azimuth 0 puts the camera on the -z axis; elevation rotates
    it up towards +y. ``degrees``: True or False (anything else is a ``TypeError``).
    """
    degrees = check_bool("degrees", degrees)
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
    named = {"distance": distance, "elevation": elevation, "azimuth": azimuth}
    d, el, az = (as_float_tensor(n, v, device=device, dtype=dtype).reshape(-1) for n, v in named.items())
    check_batch_sizes({"distance": len(d), "elevation": len(el), "azimuth": len(az)}, unit="length")
    d, el, az = torch.broadcast_tensors(d, el, az)
    if degrees:
        el, az = el * (math.pi / 180), az * (math.pi / 180)
    return torch.stack(
        [d * torch.cos(el) * torch.sin(az), d * torch.sin(el), -d * torch.cos(el) * torch.cos(az)], dim=1
    )
