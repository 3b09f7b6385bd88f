"""Camera objects: world points -> camera frame -> pixels and screen space, passed per call.

Every camera provides (see :class:`Camera`):

- ``image_size``: ``(H, W)`` or ``None`` (the renderer's image size is used);
- ``world_to_camera(points [B, N, 3]) -> [B, N, 3]``: camera-frame coordinates (each class
  documents its frame);
- ``project(points [B, N, 3], image_size=None) -> [B, N, 3]``: (u, v) in OpenCV pixels (the
  centre of pixel (row r, column c) is (u, v) = (c, r)) and z the camera depth;
- ``to_screen(points [B, N, 3], image_size=None) -> [B, N, 3]``: what the rasterizer takes,
  x, y in NDC with y up (:func:`pixels_to_ndc`) and z the camera depth (> 0 in front).

Tensor parameters are differentiable and batched per item: a parameter of batch 1 (or without
a batch dimension) is shared by all B items of ``points``. Cameras are immutable; ``replace``
returns a copy with some parameters changed.

Classes: :class:`LookAtCamera`, :class:`LookCamera` and :class:`ProjectionCamera` are the
original package's three ``camera_mode`` values (same numbers for square images; the
:class:`softras.LookAt` / :class:`softras.Look` / :class:`softras.Projection` ``nn.Module``
shells wrap them); :class:`Pinhole` (OpenCV K, R, t and distortion) and
:class:`Orthographic` are the general cameras. Adding a camera = one class in this file.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from . import functional as srf
from ._precision import matmul
from ._validation import (
    as_float_tensor,
    check_batch_sizes,
    check_bool,
    check_not_meta,
    check_points,
    check_positive,
    image_hw,
)
from .functional.transform import brown_conrady, check_distortion, distorted_pixels, distortion_fold
from .rotations import axis_angle_to_matrix

__all__ = [
    "Camera",
    "LookAtCamera",
    "LookCamera",
    "Orthographic",
    "Pinhole",
    "ProjectionCamera",
    "default_camera",
    "from_angles",
    "image_hw",
    "ndc_to_pixels",
    "pixels_to_ndc",
    "rodrigues",
]

ImageSize = tuple[int, int]
DEFAULT_VIEWING_ANGLE = 30.0
#: K's entries that the projection does not read (K[1, 0], K[2, 0], K[2, 1] and K[2, 2] − 1)
#: must be 0 within this (a gradient check's 1e-6 steps pass).
K_ZERO_TOL = 1e-5
#: The default ``rotation_tol`` of :class:`Pinhole` and :class:`Orthographic`: how far R may be
#: from a rotation (max |RᵀR − I| entry and |det R − 1|); float32 Rodrigues matrices are ~1e-6 off.
ROTATION_TOL = 1e-4
#: ``up`` vectors shorter than this are refused: every viewing direction counts as parallel to them.
MIN_UP_LENGTH = 1e-5


# --------------------------------------------------------------------------- pixel <-> NDC rule


def pixels_to_ndc(uv: torch.Tensor, image_size: object) -> torch.Tensor:
    """OpenCV pixels -> NDC (y up), for an image of H rows × W columns.

    ``uv``: [..., C] with C >= 2, u = column, v = row (the centre of pixel (r, c) is (c, r)).
    Returns [..., C]: x = (2u + 1 − W) / W, y = (H − 1 − 2v) / H, channels 2: unchanged.
    Pixel centres land where the rasterizer samples; the image edges are at x, y = ±1.
    """
    h, w = image_hw(image_size)
    x = (2 * uv[..., 0] + (1 - w)) / w
    y = ((h - 1) - 2 * uv[..., 1]) / h
    return torch.cat([x[..., None], y[..., None], uv[..., 2:]], dim=-1)


def ndc_to_pixels(xy: torch.Tensor, image_size: object) -> torch.Tensor:
    """The inverse of :func:`pixels_to_ndc`: [..., C] NDC (y up) -> OpenCV pixels (u, v)."""
    h, w = image_hw(image_size)
    u = (xy[..., 0] * w + (w - 1)) / 2
    v = ((h - 1) - xy[..., 1] * h) / 2
    return torch.cat([u[..., None], v[..., None], xy[..., 2:]], dim=-1)


# --------------------------------------------------------------------------- parameter helpers


def _points(points: torch.Tensor) -> torch.Tensor:
    return check_points("points", points)


def _param(name: str, value: object, tail: tuple[int, ...]) -> torch.Tensor:
    """A parameter of shape ``tail`` or [B, *tail] as a floating tensor [B, *tail].

    Tensors keep their dtype, device and autograd history; other values become float64.
    """
    check_not_meta(name, value)
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        t = value
    else:
        t = as_float_tensor(name, value, dtype=torch.float64)
    if t.shape == tail:
        t = t[None]
    if t.ndim != len(tail) + 1 or tuple(t.shape[1:]) != tail:
        want = "[" + ", ".join(map(str, tail)) + "]"
        raise ValueError(f"{name}: expected shape {want} or [B, {want[1:]}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t.detach()).all()):
        raise ValueError(f"{name}: expected finite values, got NaN/Inf in {tuple(t.shape)}")
    return t


def _batch(points: torch.Tensor, **params: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cast [b, ...] parameters to the points' dtype/device and broadcast b = 1 to B."""
    b = points.shape[0]
    out = {}
    for name, t in params.items():
        n = t.shape[0]
        if n not in (1, b):
            items = "1 item" if b == 1 else f"{b} items"
            expected = f"points of batch {n}" if b == 1 else f"1 or {b} cameras, or points of batch {n}"
            raise ValueError(f"{name}: batch of {n} cameras for {items} of points; expected {expected}")
        out[name] = t.to(device=points.device, dtype=points.dtype).expand(b, *t.shape[1:])
    return out


def _check_intrinsics(K: torch.Tensor) -> None:
    """``K`` [b, 3, 3]: [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0 (checked detached)."""
    k = K.detach().to("cpu", torch.float64).numpy()
    for i, m in enumerate(k):
        below = {"K[1, 0]": m[1, 0], "K[2, 0]": m[2, 0], "K[2, 1]": m[2, 1]}
        if max(abs(m[1, 0]), abs(m[2, 0]), abs(m[2, 1]), abs(m[2, 2] - 1)) > K_ZERO_TOL:
            got = ", ".join(f"{n} = {v:.6g}" for n, v in below.items()) + f", K[2, 2] = {m[2, 2]:.6g}"
            hint = "; divide K by K[2, 2]" if m[2, 2] != 0 and max(map(abs, below.values())) <= K_ZERO_TOL else ""
            raise ValueError(
                f"K: expected an upper-triangular [[fx, s, cx], [0, fy, cy], [0, 0, 1]] (the projection reads "
                f"only fx, s, cx, fy, cy), got {got} in camera {i}{hint}"
            )
        for n, f in (("fx", m[0, 0]), ("fy", m[1, 1])):
            if not f > 0:
                why = (
                    f"a zero {n} maps every point to one line"
                    if f == 0
                    else f"a negative {n} mirrors the image; flip the image instead"
                )
                raise ValueError(
                    f"K: expected focal lengths fx = K[0, 0] > 0 and fy = K[1, 1] > 0, got {n} = {f:.6g} "
                    f"in camera {i}; {why}"
                )


def _rotation_error(R: torch.Tensor, tol: float) -> str | None:
    """What keeps ``R`` [b, 3, 3] from being a rotation within ``tol`` (max |RᵀR − I| entry and
    |det R − 1|), for the first camera that is not one; None if every camera is."""
    r = R.detach().to("cpu", torch.float64).numpy()
    ortho = np.abs(np.swapaxes(r, 1, 2) @ r - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(r)
    bad = ~((ortho <= tol) & (np.abs(det - 1) <= tol))
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return f"max |RᵀR − I| = {ortho[i]:.3g} and det = {det[i]:.6g} in camera {i}"


def _check_rotation(R: torch.Tensor, tol: float | None) -> None:
    """``R`` [b, 3, 3] a rotation within ``tol`` (None: not checked)."""
    got = None if tol is None else _rotation_error(R, tol)
    if got is not None:
        raise ValueError(
            f"R: expected a rotation (RᵀR = I, det +1 within rotation_tol={tol:g}), got {got}; "
            "pass rotation_tol=None to skip this check"
        )


def _check_view_rotation(R: torch.Tensor) -> None:
    """The rotation ``R`` [b, 3, 3] of an OpenGL view matrix, within :data:`ROTATION_TOL`."""
    got = _rotation_error(R, ROTATION_TOL)
    if got is not None:
        raise ValueError(
            f"view: expected a rotation in view[:3, :3] (RᵀR = I, det +1 within {ROTATION_TOL:g}), got {got}; "
            "a view matrix with a scale or a reflection is not a camera pose"
        )


def _vec3_value(name: str, value: object) -> torch.Tensor:
    """Validate a [3] / [B, 3] value (kept as given by the caller) and return it as float64 [b, 3]."""
    check_not_meta(name, value)
    t = value.detach() if isinstance(value, torch.Tensor) else value
    t = as_float_tensor(name, t, dtype=torch.float64, device="cpu")
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected shape [3] or [B, 3], got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected finite values (no NaN/Inf), got {value!r}")
    return t


def _angle_value(name: str, value: object) -> torch.Tensor:
    check_not_meta(name, value)
    t = value.detach() if isinstance(value, torch.Tensor) else value
    t = as_float_tensor(name, t, dtype=torch.float64, device="cpu")
    if t.ndim > 1:
        raise ValueError(f"{name}: expected a number or shape [B], got {tuple(t.shape)}")
    if not bool(((t > 0) & (t < 90)).all()):
        raise ValueError(f"{name}: expected a half field of view in degrees, in (0, 90) exclusive, got {value!r}")
    return t


def _positive_value(name: str, value: object) -> None:
    check_not_meta(name, value)
    t = value.detach() if isinstance(value, torch.Tensor) else value
    t = as_float_tensor(name, t, dtype=torch.float64, device="cpu")
    if t.ndim > 1:
        raise ValueError(f"{name}: expected a number or shape [B], got {tuple(t.shape)}")
    if not bool((torch.isfinite(t) & (t > 0)).all()):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")


def _size_or_none(image_size: object) -> ImageSize | None:
    return None if image_size is None else image_hw(image_size)


def rodrigues(rvec: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors [B, 3] (or [3]) -> rotation matrices [B, 3, 3] (as ``cv2.Rodrigues``).

    :func:`softras.rotations.axis_angle_to_matrix` on a validated [B, 3] tensor; differentiable
    everywhere, including at rvec = 0.
    """
    return axis_angle_to_matrix(_param("rvec", rvec, (3,)))


# --------------------------------------------------------------------------- the protocol


@dataclasses.dataclass(frozen=True, eq=False)
class Camera:
    """Base class of the cameras (a duck-typed protocol: any object with these methods works)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", _size_or_none(getattr(self, "image_size", None)))

    def replace(self, **changes: Any) -> Camera:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    def _hw(self, image_size: object, *, required: bool) -> ImageSize | None:
        size = image_size if image_size is not None else self.image_size  # type: ignore[attr-defined]
        if size is None and required:
            raise ValueError(f"image_size: {type(self).__name__} has none; pass image_size=(H, W)")
        return _size_or_none(size)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] world -> [B, N, 3] camera frame."""
        raise NotImplementedError

    def to_screen(self, points: torch.Tensor, image_size: object = None) -> torch.Tensor:
        """[B, N, 3] world -> [B, N, 3] screen space: x, y NDC (y up), z camera depth."""
        raise NotImplementedError

    def project(self, points: torch.Tensor, image_size: object = None) -> torch.Tensor:
        """[B, N, 3] world -> [B, N, 3]: (u, v) OpenCV pixels of the rendered image, z depth."""
        size = self._hw(image_size, required=True)
        return ndc_to_pixels(self.to_screen(points, size), size)


# --------------------------------------------------------------------------- the original's modes


def _check_up(up: object) -> None:
    """``up`` ([3] / [B, 3]) at least :data:`MIN_UP_LENGTH` long in every camera."""
    length = torch.linalg.vector_norm(_vec3_value("up", up), dim=1)
    if bool((length < MIN_UP_LENGTH).any()):
        i = int(torch.argmax((length < MIN_UP_LENGTH).to(torch.uint8)))
        raise ValueError(
            f"up: expected a non-zero up vector (length >= {MIN_UP_LENGTH:g}), got {up!r} (length "
            f"{float(length[i]):.3g} in camera {i}); a zero up vector leaves the camera's roll undefined"
        )


def _fallback_up(direction: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``up`` where it is not parallel to the viewing ``direction`` ([B, 3] each), else a fallback.

    Parallel means |up × d̂| < 1e-5, where the original's camera axes degenerate (its
    normalisation of up × d̂ is clamped at 1e-5). The fallback is −sign(d·u)·e, with e the world
    axis least aligned with ``up`` (ties: z, then x, then y). For the default up = +y a camera
    straight above the target gets up = +z and one straight below gets −z: the limit of
    approaching the pole from the −z side (azimuth 0).
    """
    d = F.normalize(direction, eps=1e-5)
    parallel = torch.linalg.vector_norm(torch.cross(up, d, dim=1), dim=1) < 1e-5
    u = F.normalize(up, eps=1e-12)
    order = torch.tensor([2, 0, 1], device=up.device)
    axis = order[u.detach().abs()[:, order].argmin(dim=1)]
    e = F.one_hot(axis, 3).to(up.dtype)
    sign = 1 - 2 * ((d * u).sum(1, keepdim=True) > 0).to(up.dtype)
    return torch.where(parallel[:, None], sign * e, up)


@dataclasses.dataclass(frozen=True, eq=False)
class _EyeCamera(Camera):
    """Shared part of :class:`LookAtCamera` and :class:`LookCamera`: eye, perspective or orthographic.

    Screen space: perspective x, y = X / (Z tan(viewing_angle)), Y / (Z tan(viewing_angle));
    orthographic x, y = X·viewing_scale, Y·viewing_scale, where (X, Y, Z) is the camera frame
    (x right, y up, z forward). For an H × W image with H ≠ W, x is multiplied by H / W: the
    vertical field of view stays ``viewing_angle`` (half-angle, degrees) and pixels are square.
    Square images give the original's numbers exactly.
    """

    eye: object = None
    up: object = (0.0, 1.0, 0.0)
    perspective: bool = True
    viewing_angle: object = DEFAULT_VIEWING_ANGLE
    viewing_scale: object = 1.0
    image_size: object = None

    def __post_init__(self) -> None:
        super().__post_init__()
        angles = _angle_value("viewing_angle", self.viewing_angle)
        _positive_value("viewing_scale", self.viewing_scale)
        if self.eye is None:
            angle = float(angles.reshape(-1)[0])
            object.__setattr__(self, "eye", [0.0, 0.0, -(1.0 / math.tan(math.radians(angle)) + 1)])
        _vec3_value("eye", self.eye)
        _check_up(self.up)
        object.__setattr__(self, "perspective", check_bool("perspective", self.perspective))

    def _direction(self) -> torch.Tensor:  # float64 [b, 3], for checks
        raise NotImplementedError

    def _batches(self) -> dict[str, int]:
        """The batch of each parameter (eye, up, viewing_angle, viewing_scale; at or direction in subclasses)."""
        sizes = {"eye": _vec3_value("eye", self.eye).shape[0], "up": _vec3_value("up", self.up).shape[0]}
        for name in ("viewing_angle", "viewing_scale"):
            sizes[name] = as_float_tensor(name, getattr(self, name)).reshape(-1).shape[0]
        return sizes

    @property
    def batch_size(self) -> int:
        """The number of cameras (1: shared by every item)."""
        return check_batch_sizes(self._batches())

    def _axes(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(eye [B, 3], rows = camera axes [B, 3, 3]) in the points' dtype, as the functional layer."""
        raise NotImplementedError

    def _up(self, points: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        up = as_float_tensor("up", self.up, device=points.device, dtype=points.dtype)
        up = (up[None] if up.ndim == 1 else up).expand(points.shape[0], 3)
        return _fallback_up(direction, up)

    def to_screen(self, points: torch.Tensor, image_size: object = None) -> torch.Tensor:
        cam = self.world_to_camera(points)
        if self.perspective:
            screen = srf.perspective(cam, angle=self.viewing_angle)
        else:
            screen = srf.orthogonal(cam, scale=self.viewing_scale)
        size = self._hw(image_size, required=False)
        if size is not None and size[0] != size[1]:
            screen = torch.cat([screen[..., :1] * (size[0] / size[1]), screen[..., 1:]], dim=-1)
        return screen

    def _opencv_pose(self, points_like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eye, rows = self._axes(points_like)
        flip = torch.tensor([1.0, -1.0, 1.0], dtype=rows.dtype, device=rows.device)
        R = rows * flip[None, :, None]  # x right, y down, z forward
        return R, -matmul(R, eye[:, :, None])[..., 0]

    def _intrinsics(self, size: ImageSize, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        h, w = size
        if self.perspective:
            angle = as_float_tensor("viewing_angle", self.viewing_angle, device=device, dtype=dtype).reshape(-1)
            f = h / (2 * torch.tan(angle * (math.pi / 180)))
        else:
            f = as_float_tensor("viewing_scale", self.viewing_scale, device=device, dtype=dtype).reshape(-1) * (h / 2)
        zero, one = torch.zeros_like(f), torch.ones_like(f)
        cx, cy = torch.full_like(f, (w - 1) / 2), torch.full_like(f, (h - 1) / 2)
        return torch.stack([f, zero, cx, zero, f, cy, zero, zero, one], -1).reshape(-1, 3, 3)

    def to_opencv_camera(
        self, image_size: object = None, *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
    ) -> Pinhole | Orthographic:
        """The same camera as a :class:`Pinhole` (perspective) or :class:`Orthographic` one.

        Same pose (R = the camera axes with y flipped to point down, t = −R·eye) and
        fx = fy = H / (2 tan(viewing_angle)) (orthographic: viewing_scale·H/2),
        (cx, cy) = ((W − 1)/2, (H − 1)/2): it projects every point to the same pixel.
        The original's camera frame (x right, y up, z forward) is left-handed, so this R is a
        reflection (det R = −1), not a rotation: the camera is built with ``rotation_tol=None``.
        """
        size = self._hw(image_size, required=True)
        like = torch.zeros(self.batch_size, 1, 3, dtype=dtype, device=torch.device(device))
        R, t = self._opencv_pose(like)
        K = self._intrinsics(size, dtype, like.device)
        if self.perspective:
            return Pinhole(K, R, t, image_size=size, rotation_tol=None)
        return Orthographic(K, R, t, image_size=size, rotation_tol=None)


@dataclasses.dataclass(frozen=True, eq=False)
class LookAtCamera(_EyeCamera):
    """The original's ``camera_mode='look_at'``: a camera at ``eye`` looking at ``at``.

    Args:
        eye: [3] or [B, 3] camera position(s) (default: (0, 0, −(1/tan(viewing_angle) + 1))).
        at: [3] or [B, 3] target; up: [3] or [B, 3] world up vector. When the viewing direction
            is parallel to ``up`` a fallback up vector is used (see ``_fallback_up``: +z for a
            camera straight above the target, −z straight below, with the default up = +y).
        perspective: perspective (``viewing_angle``: half field of view in degrees, in (0, 90))
            or orthographic (``viewing_scale``: NDC units per world unit) projection.
        image_size: (H, W) or None (the renderer's).

    Camera frame (``world_to_camera``): x right, y up, z forward (towards ``at``), origin at the eye.
    """

    at: object = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        _vec3_value("at", self.at)
        d = self._direction()
        if bool((torch.linalg.vector_norm(d, dim=1) < 1e-12).any()):
            raise ValueError(
                f"eye: the camera is at its target at={self.at!r} (eye={self.eye!r}): no viewing direction"
            )
        check_batch_sizes(self._batches())

    def _batches(self) -> dict[str, int]:
        return {**super()._batches(), "at": _vec3_value("at", self.at).shape[0]}

    def _direction(self) -> torch.Tensor:
        eye, at = _vec3_value("eye", self.eye), _vec3_value("at", self.at)
        if eye.shape[0] != at.shape[0] and 1 not in (eye.shape[0], at.shape[0]):
            raise ValueError(f"at: batch of {at.shape[0]} does not match eye's {eye.shape[0]}")
        return at - eye

    def _vectors(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = points.shape[0]
        eye, at = (
            _expand3(n, as_float_tensor(n, v, device=points.device, dtype=points.dtype), b)
            for n, v in (("eye", self.eye), ("at", self.at))
        )
        return eye, at, self._up(points, at - eye)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        points = _points(points)
        eye, at, up = self._vectors(points)
        return srf.look_at(points, eye, at, up)

    def _axes(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eye, at, up = self._vectors(points)
        return eye, _axes_rows(F.normalize(at - eye, eps=1e-5), up)

    @classmethod
    def from_angles(
        cls, distance: object, elevation: object, azimuth: object, degrees: bool = True, **kwargs: Any
    ) -> LookAtCamera:
        """Camera at (distance, elevation, azimuth) around the origin (see :func:`from_angles`)."""
        return from_angles(distance, elevation, azimuth, degrees=degrees, **kwargs)


@dataclasses.dataclass(frozen=True, eq=False)
class LookCamera(_EyeCamera):
    """The original's ``camera_mode='look'``: a camera at ``eye`` looking along ``direction``.

    Args as :class:`LookAtCamera`, with ``direction`` ([3] or [B, 3], not zero) instead of ``at``.
    Camera frame: x right, y up, z along ``direction``, origin at the eye.
    """

    direction: object = (0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        d = self._direction()
        if bool((torch.linalg.vector_norm(d, dim=1) < 1e-12).any()):
            raise ValueError(f"direction: expected a non-zero viewing direction, got {self.direction!r}")
        check_batch_sizes(self._batches())

    def _batches(self) -> dict[str, int]:
        return {**super()._batches(), "direction": self._direction().shape[0]}

    def _direction(self) -> torch.Tensor:
        return _vec3_value("direction", self.direction)

    def _vectors(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = points.shape[0]
        eye, direction = (
            _expand3(n, as_float_tensor(n, v, device=points.device, dtype=points.dtype), b)
            for n, v in (("eye", self.eye), ("direction", self.direction))
        )
        return eye, direction, self._up(points, direction)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        points = _points(points)
        eye, direction, up = self._vectors(points)
        return srf.look(points, eye, direction, up)

    def _axes(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eye, direction, up = self._vectors(points)
        return eye, _axes_rows(F.normalize(direction, eps=1e-5), up)


def _check_projection_matrix(P: torch.Tensor) -> None:
    """``P`` [b, 3, 4] finite, with an invertible P[:, :3] (= K R for P = K [R | t])."""
    p = P.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(p).all():
        raise ValueError(f"P: expected finite values, got NaN/Inf in {tuple(P.shape)}")
    sv = np.linalg.svd(p[:, :, :3], compute_uv=False)  # [b, 3], descending
    bad = ~(sv[:, 2] > 1e-12 * sv[:, 0])
    if bad.any():
        i = int(np.argmax(bad))
        values = ", ".join(f"{v:.3g}" for v in sv[i])
        raise ValueError(f"P: expected P[:, :3] (= K R) to be invertible, got singular values {values} in camera {i}")


def _expand3(name: str, t: torch.Tensor, b: int) -> torch.Tensor:
    t = t[None] if t.ndim == 1 else t
    if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] not in (1, b):
        raise ValueError(f"{name}: expected shape [3] or [{b}, 3], got {tuple(t.shape)}")
    return t.expand(b, 3)


def _axes_rows(z_axis: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Rows (x, y, z) of the original's camera axes, as :func:`softras.functional.look_at`."""
    x_axis = F.normalize(torch.cross(up, z_axis, dim=1), eps=1e-5)
    y_axis = F.normalize(torch.cross(z_axis, x_axis, dim=1), eps=1e-5)
    return torch.stack([x_axis, y_axis, z_axis], dim=1)


@dataclasses.dataclass(frozen=True, eq=False)
class ProjectionCamera(Camera):
    """The original's ``camera_mode='projection'``: a 3×4 matrix P = K [R | t] in pixel units.

    Args:
        P: [3, 4] or [B, 3, 4]; dist_coeffs: [5] or [B, 5] (k1, k2, p1, p2, k3) or None.
        orig_size: the size of the image P maps to: an int S (an S × S image) or (H0, W0).
        image_size: (H, W) or None (the renderer's).

    Legacy conventions, kept for the original's numbers: the distortion is applied to the
    pixel coordinates (u, v) = (P x)[:2] / z (not to normalised camera coordinates as OpenCV
    does, and as :class:`Pinhole` does), and pixels map to NDC as x = 2(u − S/2)/S,
    y = 2(v − S/2)/S, i.e. without the half-pixel offset of :func:`pixels_to_ndc` and without
    flipping v (row 0 of P's image ends up at the bottom of the rendered image). With an int S
    and an H × W image, x is also multiplied by H / W (as :class:`LookAtCamera`), so equal focal
    lengths give square pixels; with ``orig_size=(H0, W0)`` u is normalised by W0 and v by H0.

    Camera frame (``world_to_camera``): (u·z, v·z, z), P applied to homogeneous points.
    """

    P: object = None
    dist_coeffs: object = None
    orig_size: object = 512
    image_size: object = None
    perspective: ClassVar[bool] = True  # render clips at a near plane > 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.P is None:
            raise ValueError("P: camera_mode='projection' needs a [B, 3, 4] projection matrix P")
        check_not_meta("P", self.P)
        P = as_float_tensor("P", self.P)
        if P.shape == (3, 4):
            P = P[None]
        if P.ndim != 3 or P.shape[1:] != (3, 4):
            raise ValueError(f"P: expected shape [3, 4] or [B, 3, 4], got {tuple(P.shape)}")
        _check_projection_matrix(P)
        object.__setattr__(self, "P", P)
        if self.dist_coeffs is None:
            object.__setattr__(self, "dist_coeffs", torch.zeros(P.shape[0], 5, dtype=P.dtype))
        if isinstance(self.orig_size, (int, np.integer, float, np.floating)):
            if not self.orig_size > 0:
                raise ValueError(f"orig_size: expected a positive size, got {self.orig_size!r}")
        else:
            object.__setattr__(self, "orig_size", image_hw(self.orig_size, "orig_size"))

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        points = _points(points)
        P = as_float_tensor("P", self.P, device=points.device, dtype=points.dtype)
        homo = torch.cat([points, torch.ones_like(points[:, :, :1])], dim=-1)
        return matmul(homo, P.expand(points.shape[0], 3, 4).transpose(2, 1))

    def to_screen(self, points: torch.Tensor, image_size: object = None) -> torch.Tensor:
        size = self._hw(image_size, required=False)
        if not isinstance(self.orig_size, tuple):
            screen = srf.projection(points, self.P, self.dist_coeffs, self.orig_size)
            if size is not None and size[0] != size[1]:
                screen = torch.cat([screen[..., :1] * (size[0] / size[1]), screen[..., 1:]], dim=-1)
            return screen
        h0, w0 = self.orig_size
        u, v, z = distorted_pixels(points, self.P, self.dist_coeffs)
        return torch.stack([2 * (u - w0 / 2.0) / w0, 2 * (v - h0 / 2.0) / h0, z], dim=-1)


# --------------------------------------------------------------------------- OpenCV cameras


@dataclasses.dataclass(frozen=True, eq=False)
class _OpenCVCamera(Camera):
    """Shared part of :class:`Pinhole` and :class:`Orthographic`: K, R, t in the OpenCV convention.

    Construction checks (on detached values; the parameters keep their autograd graph): K is
    [[fx, s, cx], [0, fy, cy], [0, 0, 1]] (within :data:`K_ZERO_TOL`) with fx, fy > 0; R is a
    rotation, RᵀR = I and det R = +1 within ``rotation_tol`` (None skips this check); every
    parameter has batch 1 or one common B.
    """

    K: object = None
    R: object = None
    t: object = None
    image_size: object = None
    rotation_tol: float | None = dataclasses.field(default=ROTATION_TOL, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("K", "R", "t"):
            if getattr(self, name) is None:
                raise ValueError(f"{name}: {type(self).__name__} needs K [3, 3], R [3, 3] and t [3]")
        t = self.t
        if isinstance(t, (torch.Tensor, np.ndarray)) and t.shape[-2:] == (3, 1):  # OpenCV's tvec layout
            t = t[..., 0]
        object.__setattr__(self, "K", _param("K", self.K, (3, 3)))
        object.__setattr__(self, "R", _param("R", self.R, (3, 3)))
        object.__setattr__(self, "t", _param("t", t, (3,)))
        self._init_params()
        if self.rotation_tol is not None:
            object.__setattr__(self, "rotation_tol", check_positive("rotation_tol", self.rotation_tol))
        _check_intrinsics(self.K)  # type: ignore[arg-type]
        _check_rotation(self.R, self.rotation_tol)  # type: ignore[arg-type]
        check_batch_sizes({n: int(p.shape[0]) for n, p in self._params().items()})
        if self.image_size is not None:
            self._check_image(self.image_size)  # type: ignore[arg-type]

    def _init_params(self) -> None:
        """Validate and store the parameters of a subclass (called after K, R and t)."""

    def _check_image(self, size: ImageSize) -> None:
        """Raise ``ValueError`` if the camera cannot render an image of ``size`` (H, W) truthfully."""

    def _params(self) -> dict[str, torch.Tensor]:
        """The batched parameters [b, ...], by name."""
        return {n: getattr(self, n) for n in ("K", "R", "t")}

    @property
    def batch_size(self) -> int:
        """The number of cameras (1: shared by every item)."""
        return check_batch_sizes({n: int(p.shape[0]) for n, p in self._params().items()})

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] world -> OpenCV camera frame R·x + t: x right, y down, z forward."""
        points = _points(points)
        p = _batch(points, R=self.R, t=self.t)
        return matmul(points, p["R"].transpose(1, 2)) + p["t"][:, None, :]

    def _image_plane(self, cam: torch.Tensor, size: ImageSize | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera frame [B, N, 3] -> image plane (x, y) [B, N] each, for an image of ``size`` (or None)."""
        raise NotImplementedError

    def project(self, points: torch.Tensor, image_size: object = None) -> torch.Tensor:
        """[B, N, 3] world -> (u, v) pixels (u = fx·x + s·y + cx, v = fy·y + cy) and z = depth.

        ``image_size`` (default: the camera's): the image the pixels refer to, if known
        (:class:`Pinhole` checks its distortion against it).
        """
        cam = self.world_to_camera(points)
        x, y = self._image_plane(cam, self._hw(image_size, required=False))
        k = _batch(points, K=self.K)["K"][:, None]  # [B, 1, 3, 3]
        u = k[..., 0, 0] * x + k[..., 0, 1] * y + k[..., 0, 2]
        v = k[..., 1, 1] * y + k[..., 1, 2]
        return torch.stack([u, v, cam[..., 2]], dim=-1)

    def to_screen(self, points: torch.Tensor, image_size: object = None) -> torch.Tensor:
        size = self._hw(image_size, required=True)
        return pixels_to_ndc(self.project(points, size), size)

    def to_opencv(self) -> tuple[torch.Tensor, ...]:
        """(K [b, 3, 3], R [b, 3, 3], t [b, 3]) (and for :class:`Pinhole` dist_coeffs [b, 5])."""
        return self.K, self.R, self.t  # type: ignore[return-value]


def _gl_view(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """OpenCV (R, t) [b, 3, 3], [b, 3] -> OpenGL view matrices [b, 4, 4] (camera looks down −z, y up)."""
    b = max(R.shape[0], t.shape[0])
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=R.dtype, device=R.device)[None, :, None]
    top = torch.cat([R.expand(b, 3, 3), t.expand(b, 3)[..., None]], dim=-1) * flip
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=R.dtype, device=R.device).expand(b, 1, 4)
    return torch.cat([top, bottom], dim=1)


def _gl_matrices(R: torch.Tensor, t: torch.Tensor, rows: list[list[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(view, projection) [B, 4, 4] from the pose and the projection's rows of [B] entries."""
    proj = torch.stack([torch.stack(r, -1) for r in rows], -2)
    view = _gl_view(R, t)
    b = max(view.shape[0], proj.shape[0])
    return view.expand(b, 4, 4), proj.expand(b, 4, 4)


def _from_gl_view(view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=view.dtype, device=view.device)[None, :, None]
    rt = view[:, :3, :] * flip
    return rt[:, :, :3], rt[:, :, 3]


def _check_gl(name: str, m: torch.Tensor, row3: tuple[float, ...], cols: tuple[tuple[int, int], ...]) -> None:
    expect = torch.tensor(row3, dtype=m.dtype, device=m.device)
    bad = not torch.allclose(m[:, 3].detach(), expect.expand(m.shape[0], 4))
    bad = bad or any(bool((m[:, i, j].detach() != 0).any()) for i, j in cols)
    if bad:
        raise ValueError(f"{name}: not an OpenGL {'perspective' if row3[2] else 'orthographic'} matrix: {m.tolist()}")
    focal = m[:, [0, 1], [0, 1]].detach().to("cpu", torch.float64).numpy()  # [b, 2]: the x and y scales
    bad_focal = ~(focal > 0)
    if bad_focal.any():
        i, j = (int(a[0]) for a in np.nonzero(bad_focal))
        why = "a singular projection matrix" if focal[i, j] == 0 else "a negative scale mirrors the image"
        raise ValueError(
            f"{name}: expected {name}[0, 0] > 0 and {name}[1, 1] > 0 (the x and y scales 2 fx / W, 2 fy / H), got "
            f"{name}[{j}, {j}] = {focal[i, j]:.6g} in camera {i} ({why})"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class Pinhole(_OpenCVCamera):
    """A perspective camera in the OpenCV convention, with Brown–Conrady lens distortion.

    Args:
        K: [3, 3] or [B, 3, 3] intrinsics ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels
            (s: skew, which OpenCV's projectPoints does not model).
        R: [3, 3] or [B, 3, 3] rotation world -> camera; t: [3] or [B, 3] (or [B, 3, 1]).
        image_size: (H, W) of the image K refers to, or None (the renderer's).
        dist_coeffs: [5] or [B, 5] (k1, k2, p1, p2, k3), [4] / [B, 4] (k3 = 0), or None. It may
            not fold inside the image (checked when the image size is known, here or per call).
        rotation_tol: keyword only: how far R may be from a rotation (max |RᵀR − I| entry and
            |det R − 1|; default 1e-4), or None to skip that check.

    Camera frame: x_cam = R·x_world + t, x right, y down, z forward. With x' = X/Z, y' = Y/Z,
    r² = x'² + y'²: x'' = x'(1 + k1 r² + k2 r⁴ + k3 r⁶) + 2 p1 x'y' + p2 (r² + 2x'²),
    y'' = y'(1 + k1 r² + k2 r⁴ + k3 r⁶) + p1 (r² + 2y'²) + 2 p2 x'y', and
    u = fx x'' + s y'' + cx, v = fy y'' + cy (the centre of pixel (r, c) is (u, v) = (c, r)).
    Beyond the fold of the radial part (where d/dr [r (1 + k1 r² + k2 r⁴ + k3 r⁶)] = 0) its
    factor keeps its value at the fold, so points outside the field of view cannot fold back
    into the image (:func:`~softras.functional.transform.brown_conrady`).
    Points at Z = 0 project to infinity; points behind the camera (Z < 0) have a negative depth.
    """

    dist_coeffs: object = None
    perspective: ClassVar[bool] = True  # render clips at a near plane > 0

    def _init_params(self) -> None:
        d = self.dist_coeffs
        if d is None:
            d = torch.zeros(1, 5, dtype=self.K.dtype, device=self.K.device)  # type: ignore[attr-defined]
        object.__setattr__(self, "dist_coeffs", _dist(d))

    def _check_image(self, size: ImageSize) -> None:
        """The distortion must not fold inside the image (:func:`softras.functional.transform.check_distortion`)."""
        check_distortion("dist_coeffs", self.K, self.dist_coeffs, size)  # type: ignore[arg-type]

    def _params(self) -> dict[str, torch.Tensor]:
        return {**super()._params(), "dist_coeffs": self.dist_coeffs}  # type: ignore[dict-item]

    def _image_plane(self, cam: torch.Tensor, size: ImageSize | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x' = X/Z, y' = Y/Z, then the distortion (:func:`~softras.functional.transform.brown_conrady`,
        whose radial factor is frozen beyond its fold), checked against ``size`` when known."""
        if size is not None:
            self._check_image(size)
        d = _batch(cam, dist_coeffs=self.dist_coeffs)["dist_coeffs"]
        fold = distortion_fold(self.dist_coeffs)  # type: ignore[arg-type]
        return brown_conrady(cam[..., 0] / cam[..., 2], cam[..., 1] / cam[..., 2], d, fold)

    def to_opencv(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(K [b, 3, 3], R [b, 3, 3], t [b, 3], dist_coeffs [b, 5]), as ``cv2.projectPoints`` takes them."""
        return self.K, self.R, self.t, self.dist_coeffs  # type: ignore[return-value]

    @classmethod
    def from_opencv(
        cls, K: object, R: object, t: object, image_size: object = None, dist_coeffs: object = None
    ) -> Pinhole:
        """From OpenCV's K, R (a [3, 3] matrix; see :meth:`from_rvec` for a Rodrigues vector) and t."""
        return cls(K, R, t, image_size=image_size, dist_coeffs=dist_coeffs)

    @classmethod
    def from_rvec(
        cls, K: object, rvec: object, t: object, image_size: object = None, dist_coeffs: object = None
    ) -> Pinhole:
        """From a Rodrigues rotation vector ([3] or [B, 3], as ``cv2.projectPoints``' rvec); differentiable."""
        return cls(K, rodrigues(rvec), t, image_size=image_size, dist_coeffs=dist_coeffs)

    def to_opengl(self, near: float = 0.1, far: float = 100.0, image_size: object = None) -> tuple[torch.Tensor, ...]:
        """(view [b, 4, 4], projection [b, 4, 4]) OpenGL matrices (column vectors, clip = P·V·x).

        OpenGL's eye frame looks down −z with y up; the projection maps depth [near, far] to
        NDC z ∈ [−1, 1] and NDC x, y equal :meth:`to_screen`'s. Lens distortion cannot be
        represented (ValueError if ``dist_coeffs`` is not zero).
        """
        if bool((self.dist_coeffs.detach() != 0).any()):  # type: ignore[attr-defined]
            raise ValueError("dist_coeffs: OpenGL matrices cannot represent lens distortion")
        h, w = self._hw(image_size, required=True)  # type: ignore[misc]
        near, far = _near_far(near, far)
        k = self.K
        zero = torch.zeros_like(k[:, 0, 0])
        one = torch.ones_like(zero)
        rows = [
            [2 * k[:, 0, 0] / w, -2 * k[:, 0, 1] / w, -(2 * k[:, 0, 2] + 1 - w) / w, zero],
            [zero, 2 * k[:, 1, 1] / h, -(h - 1 - 2 * k[:, 1, 2]) / h, zero],
            [zero, zero, -one * (far + near) / (far - near), -one * 2 * far * near / (far - near)],
            [zero, zero, -one, zero],
        ]
        return _gl_matrices(self.R, self.t, rows)  # type: ignore[arg-type]

    @classmethod
    def from_opengl(cls, view: object, projection: object, image_size: object) -> Pinhole:
        """From OpenGL view and perspective projection matrices ([4, 4] or [B, 4, 4]) of an H × W image."""
        h, w = image_hw(image_size)
        view_t, proj = _param("view", view, (4, 4)), _param("projection", projection, (4, 4))
        _check_gl("projection", proj, (0.0, 0.0, -1.0, 0.0), ((0, 3), (1, 0), (1, 3), (2, 0), (2, 1)))
        zero = torch.zeros_like(proj[:, 0, 0])
        K = torch.stack(
            [
                proj[:, 0, 0] * w / 2, -proj[:, 0, 1] * w / 2, (w - 1 - proj[:, 0, 2] * w) / 2,
                zero, proj[:, 1, 1] * h / 2, (h - 1 + proj[:, 1, 2] * h) / 2,
                zero, zero, zero + 1,
            ],
            -1,
        ).reshape(-1, 3, 3)  # fmt: skip
        R, t = _from_gl_view(view_t)
        _check_view_rotation(R)
        return cls(K, R, t, image_size=(h, w))


def _dist(d: object) -> torch.Tensor:
    check_not_meta("dist_coeffs", d)
    t = (
        d
        if isinstance(d, torch.Tensor) and d.is_floating_point()
        else as_float_tensor("dist_coeffs", d, dtype=torch.float64)
    )
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] not in (4, 5):
        raise ValueError(f"dist_coeffs: expected shape [5] or [B, 5] (k1, k2, p1, p2, k3), got {tuple(t.shape)}")
    if t.shape[1] == 4:
        t = torch.cat([t, torch.zeros_like(t[:, :1])], dim=1)
    if not bool(torch.isfinite(t.detach()).all()):
        raise ValueError("dist_coeffs: expected finite values")
    return t


def _near_far(near: float, far: float) -> tuple[float, float]:
    near, far = float(near), float(far)
    if not (math.isfinite(near) and math.isfinite(far) and 0 < near < far):
        raise ValueError(f"near/far: expected finite 0 < near < far, got near={near}, far={far}")
    return near, far


@dataclasses.dataclass(frozen=True, eq=False)
class Orthographic(_OpenCVCamera):
    """An orthographic camera in the OpenCV convention.

    Args:
        K: [3, 3] or [B, 3, 3] ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``, fx, fy in pixels per world unit.
        R: [3, 3] or [B, 3, 3] world-to-camera rotation, as :class:`Pinhole`.
        t: [3] or [B, 3] translation, as :class:`Pinhole`.
        image_size: (H, W) or ``None``, as :class:`Pinhole`.
        rotation_tol: keyword only, as :class:`Pinhole`.

    Camera frame: x_cam = R·x_world + t (x right, y down, z forward = depth);
    u = fx X + s Y + cx, v = fy Y + cy.
    """

    perspective: ClassVar[bool] = False  # orthographic: render accepts any near plane

    def _image_plane(self, cam: torch.Tensor, size: ImageSize | None) -> tuple[torch.Tensor, torch.Tensor]:
        return cam[..., 0], cam[..., 1]

    @classmethod
    def from_scale(cls, scale: float, R: object, t: object, image_size: object) -> Orthographic:
        """``scale`` NDC units per world unit vertically (the legacy ``viewing_scale``), square pixels, centred."""
        h, w = image_hw(image_size)
        f = check_positive("scale", scale) * h / 2
        K = [[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]]
        return cls(K, R, t, image_size=(h, w))

    def to_opengl(self, near: float = 0.1, far: float = 100.0, image_size: object = None) -> tuple[torch.Tensor, ...]:
        """(view [b, 4, 4], projection [b, 4, 4]) OpenGL matrices (orthographic projection)."""
        h, w = self._hw(image_size, required=True)  # type: ignore[misc]
        near, far = _near_far(near, far)
        k = self.K
        zero = torch.zeros_like(k[:, 0, 0])
        one = torch.ones_like(zero)
        rows = [
            [2 * k[:, 0, 0] / w, -2 * k[:, 0, 1] / w, zero, (2 * k[:, 0, 2] + 1 - w) / w],
            [zero, 2 * k[:, 1, 1] / h, zero, (h - 1 - 2 * k[:, 1, 2]) / h],
            [zero, zero, -one * 2 / (far - near), -one * (far + near) / (far - near)],
            [zero, zero, zero, one],
        ]
        return _gl_matrices(self.R, self.t, rows)  # type: ignore[arg-type]

    @classmethod
    def from_opengl(cls, view: object, projection: object, image_size: object) -> Orthographic:
        """From OpenGL view and orthographic projection matrices ([4, 4] or [B, 4, 4])."""
        h, w = image_hw(image_size)
        view_t, proj = _param("view", view, (4, 4)), _param("projection", projection, (4, 4))
        _check_gl("projection", proj, (0.0, 0.0, 0.0, 1.0), ((0, 2), (1, 0), (1, 2), (2, 0), (2, 1)))
        zero = torch.zeros_like(proj[:, 0, 0])
        K = torch.stack(
            [
                proj[:, 0, 0] * w / 2, -proj[:, 0, 1] * w / 2, (proj[:, 0, 3] * w + w - 1) / 2,
                zero, proj[:, 1, 1] * h / 2, (h - 1 - proj[:, 1, 3] * h) / 2,
                zero, zero, zero + 1,
            ],
            -1,
        ).reshape(-1, 3, 3)  # fmt: skip
        R, t = _from_gl_view(view_t)
        _check_view_rotation(R)
        return cls(K, R, t, image_size=(h, w))


# --------------------------------------------------------------------------- converters


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def from_angles(
    distance: object, elevation: object, azimuth: object, degrees: bool = True, **kwargs: Any
) -> LookAtCamera:
    """A :class:`LookAtCamera` at (distance, elevation, azimuth) around the origin.

    Same convention as :func:`softras.functional.get_points_from_angles`: azimuth 0 puts the
    camera on the −z axis, elevation rotates it up towards +y; numbers (NumPy scalars too) or
    [B] tensors (differentiable). ``kwargs`` go to :class:`LookAtCamera` (``at``, ``up``, ...).
    """
    for name, value in (("distance", distance), ("elevation", elevation), ("azimuth", azimuth)):
        check_not_meta(name, value)
    return LookAtCamera(eye=srf.get_points_from_angles(distance, elevation, azimuth, degrees=degrees), **kwargs)


def default_camera() -> LookAtCamera:
    """The camera of ``SoftRenderer()`` without arguments: :class:`LookAtCamera` at
    (0, 0, −(1/tan 30° + 1)) ≈ (0, 0, −2.732) looking at the origin, half field of view 30°,
    so a unit sphere at the origin fills most of the image."""
    return LookAtCamera()
