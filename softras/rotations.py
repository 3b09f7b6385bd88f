"""Rotation conversions: axis-angle, quaternion, 6D and matrix; batched and differentiable.

A thin, checked layer over `RoMa <https://github.com/naver/roma>`_ (``roma``), with PyTorch3D-like
names. Every function takes tensors with any leading batch dimensions ``...``, keeps their dtype
(float32 / float64) and device, and is differentiable.

Conventions:

* **Matrices** ``[..., 3, 3]`` rotate column vectors: ``x' = R @ x`` (as :mod:`softras.cameras`
  and OpenCV).
* **Quaternions** ``[..., 4]`` are **XYZW**: scalar part last, ``(x, y, z, w) = (sin(θ/2)·axis,
  cos(θ/2))``, as RoMa and ``scipy.spatial.transform.Rotation``. PyTorch3D and the original
  ``soft_renderer`` examples use WXYZ (scalar first): convert with :func:`wxyz_to_xyzw` and
  :func:`xyzw_to_wxyz`. Functions taking quaternions accept any non-zero norm (they normalise
  first); those returning quaternions return unit ones with ``w >= 0``. ``q`` and ``−q`` are the
  same rotation.
* **Axis-angle** ``[..., 3]`` is the rotation vector ``θ·axis`` (radians, right-hand rule; as
  ``cv2.Rodrigues``' rvec); :func:`matrix_to_axis_angle` returns ``θ`` in ``[0, π]``.
* **6D** ``[..., 6]`` (Zhou et al., "On the Continuity of Rotation Representations in Neural
  Networks", CVPR 2019) is the first two **columns** of the matrix, ``(R[..., :, 0], R[..., :, 1])``;
  :func:`rotation_6d_to_matrix` orthonormalises them by Gram-Schmidt. PyTorch3D's
  ``matrix_to_rotation_6d`` takes the first two rows of its row-vector matrices, i.e. of ``R^T``:
  ``softras.rotations.matrix_to_rotation_6d(R) == pytorch3d.transforms.matrix_to_rotation_6d(R.mT)``.

Example::

    import torch
    from softras import rotations

    R = rotations.axis_angle_to_matrix(torch.tensor([0.0, 0.0, torch.pi / 2]))  # 90° about z
    q = rotations.matrix_to_quaternion(R)                # tensor([0., 0., 0.7071, 0.7071]) (XYZW)
"""

from __future__ import annotations

from types import ModuleType

import torch

__all__ = [
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "quaternion_distance",
    "quaternion_multiply",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "rotation_6d_to_matrix",
    "wxyz_to_xyzw",
    "xyzw_to_wxyz",
]


def _roma() -> ModuleType:
    """RoMa, imported on first use: importing it imports ``torch._dynamo`` (about a second), which
    ``import softras`` should not pay."""
    import roma  # (a statement, not importlib: Dynamo traces it)

    return roma


def _check(name: str, value: object, tail: tuple[int, ...]) -> torch.Tensor:
    """``value`` checked to be a floating tensor of shape [..., *tail]."""
    want = "[..., " + ", ".join(map(str, tail)) + "]"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape {want}, got {type(value).__name__}")
    if value.ndim < len(tail) or tuple(value.shape[value.ndim - len(tail) :]) != tail:
        raise ValueError(f"{name}: expected shape {want}, got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating dtype, got {value.dtype}")
    return value


def _positive_w(q: torch.Tensor) -> torch.Tensor:
    """``q`` or ``−q``, whichever has ``w >= 0`` (the same rotation)."""
    return torch.where(q[..., 3:] < 0, -q, q)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors ``θ·axis`` [..., 3] -> rotation matrices [..., 3, 3] (Rodrigues' formula).

    Below θ = √ε of the dtype the first-order expansion ``I + [θ·axis]×`` is used, exact to
    rounding; the gradient at θ = 0 is exact.
    """
    axis_angle = _check("axis_angle", axis_angle, (3,))
    return _roma().rotvec_to_rotmat(axis_angle, epsilon=torch.finfo(axis_angle.dtype).eps ** 0.5)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> rotation vectors [..., 3] with angle in [0, π]."""
    return _roma().rotmat_to_rotvec(_check("matrix", matrix, (3, 3)))


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """XYZW quaternions [..., 4] (any non-zero norm) -> rotation matrices [..., 3, 3]."""
    return _roma().unitquat_to_rotmat(_roma().quat_normalize(_check("quaternion", quaternion, (4,))))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> unit XYZW quaternions [..., 4] with w >= 0."""
    return _positive_w(_roma().rotmat_to_unitquat(_check("matrix", matrix, (3, 3))))


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors [..., 3] -> unit XYZW quaternions [..., 4] with w >= 0."""
    return _positive_w(_roma().rotvec_to_unitquat(_check("axis_angle", axis_angle, (3,))))


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """XYZW quaternions [..., 4] (any non-zero norm) -> rotation vectors [..., 3], angle in [0, π]."""
    return _roma().unitquat_to_rotvec(_roma().quat_normalize(_check("quaternion", quaternion, (4,))))


def rotation_6d_to_matrix(rotation_6d: torch.Tensor) -> torch.Tensor:
    """6D vectors [..., 6] (two 3-vectors: the first two columns, not necessarily orthonormal)
    -> rotation matrices [..., 3, 3] by Gram-Schmidt: column 0 is the first vector normalised,
    column 1 the second made orthogonal to it and normalised, column 2 their cross product."""
    d6 = _check("rotation_6d", rotation_6d, (6,))
    columns = d6.unflatten(-1, (2, 3)).transpose(-1, -2)  # [..., 3, 2]
    return _roma().special_gramschmidt(columns)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> 6D vectors [..., 6]: columns 0 and 1, concatenated."""
    matrix = _check("matrix", matrix, (3, 3))
    return matrix[..., :, :2].transpose(-1, -2).flatten(-2)


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a ⊗ b`` of XYZW quaternions [..., 4] (broadcast): the rotation ``b``,
    then ``a`` (``quaternion_to_matrix(a ⊗ b) = quaternion_to_matrix(a) @ quaternion_to_matrix(b)``)."""
    return _roma().quat_product(_check("a", a, (4,)), _check("b", b, (4,)))


def quaternion_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle in radians, in [0, π], between the rotations of XYZW quaternions ``a`` and
    ``b`` [..., 4] (any non-zero norms, broadcast) -> [...]; ``q`` and ``−q`` are at distance 0."""
    a, b = torch.broadcast_tensors(
        _roma().quat_normalize(_check("a", a, (4,))), _roma().quat_normalize(_check("b", b, (4,)))
    )
    return _roma().unitquat_geodesic_distance(a, b)


def wxyz_to_xyzw(quaternion: torch.Tensor) -> torch.Tensor:
    """Scalar-first (PyTorch3D) quaternions [..., 4] -> the scalar-last XYZW ones used here."""
    return _roma().quat_wxyz_to_xyzw(_check("quaternion", quaternion, (4,)))


def xyzw_to_wxyz(quaternion: torch.Tensor) -> torch.Tensor:
    """XYZW quaternions [..., 4] -> scalar-first WXYZ (PyTorch3D's convention)."""
    return _roma().quat_xyzw_to_wxyz(_check("quaternion", quaternion, (4,)))
