"""softras.rotations against scipy.spatial.transform.Rotation (an independent oracle), round trips,
float32/float64, batch shapes, gradcheck in float64 and argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from softras import rotations

F64 = torch.float64


def _scipy(n: int = 64, seed: int = 0) -> Rotation:
    """``n`` random rotations, plus the identity, a 180° turn and a tiny one (the hard cases)."""
    special = Rotation.from_rotvec([[0.0, 0.0, 0.0], [math.pi, 0.0, 0.0], [0.0, 0.0, 1e-7], [0.0, 3.0, 0.0]])
    return Rotation.concatenate([Rotation.random(n, random_state=seed), special])


def _t(a: np.ndarray, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conversions_agree_with_scipy(dtype: torch.dtype) -> None:
    rot = _scipy()
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    R, q, rvec = _t(rot.as_matrix(), dtype), _t(rot.as_quat(), dtype), _t(rot.as_rotvec(), dtype)
    torch.testing.assert_close(rotations.axis_angle_to_matrix(rvec), R, atol=tol, rtol=0)
    torch.testing.assert_close(rotations.quaternion_to_matrix(q), R, atol=tol, rtol=0)
    # quaternions: scipy's sign is arbitrary, ours has w >= 0 (at θ = π, w ≈ 0: either sign)
    for ours in (rotations.matrix_to_quaternion(R), rotations.axis_angle_to_quaternion(rvec)):
        assert bool((ours[:, 3] >= 0).all())
        torch.testing.assert_close(ours * (ours * q).sum(-1, keepdim=True).sign(), q, atol=tol * 10, rtol=0)
    # axis-angle: compare as matrices (θ = π has two rotation vectors)
    back = Rotation.from_rotvec(rotations.matrix_to_axis_angle(R).double().numpy())
    torch.testing.assert_close(_t(back.as_matrix(), dtype), R, atol=tol * 10, rtol=0)
    back = Rotation.from_rotvec(rotations.quaternion_to_axis_angle(q).double().numpy())
    torch.testing.assert_close(_t(back.as_matrix(), dtype), R, atol=tol * 10, rtol=0)
    assert all(t.dtype == dtype for t in (rotations.matrix_to_axis_angle(R), rotations.matrix_to_quaternion(R)))


def test_product_and_distance_agree_with_scipy() -> None:
    a, b = _scipy(32, seed=1), _scipy(32, seed=2)
    qa, qb = _t(a.as_quat()), _t(b.as_quat())
    ab = rotations.quaternion_multiply(qa, qb)
    torch.testing.assert_close(rotations.quaternion_to_matrix(ab), _t((a * b).as_matrix()), atol=1e-13, rtol=0)
    angle = rotations.quaternion_distance(qa, qb)
    torch.testing.assert_close(angle, _t((a.inv() * b).magnitude()), atol=1e-7, rtol=0)  # asin near π: √ε
    assert float(rotations.quaternion_distance(qa, -3.0 * qa).max()) < 1e-7  # any norm, either sign


def test_rotation_6d_is_zhou_et_al_columns() -> None:
    R = _t(_scipy().as_matrix())
    d6 = rotations.matrix_to_rotation_6d(R)
    torch.testing.assert_close(d6[:, :3], R[:, :, 0], atol=0, rtol=0)
    torch.testing.assert_close(d6[:, 3:], R[:, :, 1], atol=0, rtol=0)
    torch.testing.assert_close(rotations.rotation_6d_to_matrix(d6), R, atol=1e-14, rtol=0)
    # any two independent vectors give a rotation whose first column is the first one normalised
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(100, 6, generator=g, dtype=F64)
    M = rotations.rotation_6d_to_matrix(raw)
    eye = torch.eye(3, dtype=F64).expand(100, 3, 3)
    torch.testing.assert_close(M @ M.mT, eye, atol=1e-13, rtol=0)
    torch.testing.assert_close(torch.linalg.det(M), torch.ones(100, dtype=F64), atol=1e-13, rtol=0)
    torch.testing.assert_close(M[:, :, 0], torch.nn.functional.normalize(raw[:, :3], dim=-1), atol=1e-14, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trips(dtype: torch.dtype) -> None:
    tol = 2e-6 if dtype == torch.float32 else 1e-12
    R = _t(_scipy().as_matrix(), dtype)
    for there, back in [
        (rotations.matrix_to_quaternion, rotations.quaternion_to_matrix),
        (rotations.matrix_to_axis_angle, rotations.axis_angle_to_matrix),
        (rotations.matrix_to_rotation_6d, rotations.rotation_6d_to_matrix),
    ]:
        torch.testing.assert_close(back(there(R)), R, atol=tol, rtol=0)
    q = rotations.matrix_to_quaternion(R)
    torch.testing.assert_close(rotations.wxyz_to_xyzw(rotations.xyzw_to_wxyz(q)), q, atol=0, rtol=0)
    assert torch.equal(rotations.xyzw_to_wxyz(q)[:, 0], q[:, 3])  # scalar first
    rvec = rotations.matrix_to_axis_angle(R[:-4])  # away from θ = π, where ±axis are both right
    torch.testing.assert_close(rotations.quaternion_to_axis_angle(rotations.axis_angle_to_quaternion(rvec)), rvec,
                               atol=tol * 5, rtol=0)  # fmt: skip


def test_any_batch_shape() -> None:
    rvec = torch.randn(2, 5, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    R = rotations.axis_angle_to_matrix(rvec)
    assert R.shape == (2, 5, 3, 3)
    assert rotations.matrix_to_quaternion(R).shape == (2, 5, 4)
    assert rotations.matrix_to_rotation_6d(R).shape == (2, 5, 6)
    assert rotations.axis_angle_to_matrix(rvec[0, 0]).shape == (3, 3)  # no batch dimension
    assert rotations.quaternion_multiply(
        rotations.matrix_to_quaternion(R), torch.tensor([0.0, 0, 0, 1], dtype=F64)
    ).shape == (2, 5, 4)


@pytest.mark.parametrize(
    ("fn", "shape"),
    [
        (rotations.axis_angle_to_matrix, (4, 3)),
        (rotations.quaternion_to_matrix, (4, 4)),
        (rotations.matrix_to_quaternion, None),
        (rotations.matrix_to_axis_angle, None),
        (rotations.rotation_6d_to_matrix, (4, 6)),
        (rotations.matrix_to_rotation_6d, None),
        (rotations.axis_angle_to_quaternion, (4, 3)),
        (rotations.quaternion_to_axis_angle, (4, 4)),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_gradcheck_float64(fn, shape) -> None:
    g = torch.Generator().manual_seed(1)
    if shape is None:  # functions of matrices: check on rotations (their domain)
        x = rotations.axis_angle_to_matrix(torch.randn(4, 3, generator=g, dtype=F64))
    else:
        x = torch.randn(*shape, generator=g, dtype=F64)
    assert torch.autograd.gradcheck(fn, (x.requires_grad_(),))


def test_axis_angle_gradient_is_exact_at_zero() -> None:
    zero = torch.zeros(1, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(rotations.axis_angle_to_matrix, (zero,))
    R = rotations.axis_angle_to_matrix(zero)
    (J,) = torch.autograd.grad(R[0, 1, 0], zero)  # d R_10 / d r = e_z (R = I + [r]x to first order)
    assert torch.equal(J[0], torch.tensor([0.0, 0.0, 1.0], dtype=F64))


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"axis_angle: expected shape \[\.\.\., 3\], got \(2, 4\)"):
        rotations.axis_angle_to_matrix(torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"quaternion: expected a torch\.Tensor of shape \[\.\.\., 4\], got list"):
        rotations.quaternion_to_matrix([0.0, 0.0, 0.0, 1.0])
    with pytest.raises(TypeError, match=r"matrix: expected a floating dtype, got torch\.int64"):
        rotations.matrix_to_quaternion(torch.eye(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"rotation_6d: expected shape \[\.\.\., 6\]"):
        rotations.rotation_6d_to_matrix(torch.zeros(3, 3))
