"""Cameras refuse what they cannot be: K, R, the lens distortion, P, up, flags, batches and meta tensors.

Every refusal is a ``TypeError`` / ``ValueError`` naming the argument the caller passed, with what
was expected and what was got. Legal but extreme cameras (a fold beyond the image corners,
k1 = 1e6, R from float32 Rodrigues) are accepted, and the distortion's fold cannot bring points
from outside the field of view back into the image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import softras as sr
import softras.functional as srf
from softras.cameras import LookAtCamera, LookCamera, Orthographic, Pinhole, ProjectionCamera, from_angles, rodrigues
from softras.functional.transform import distortion_fold
from softras.shapes import icosphere

D = torch.float64
K32 = torch.tensor([[40.0, 0.0, 15.5], [0.0, 40.0, 15.5], [0.0, 0.0, 1.0]], dtype=D)  # a 32 × 32 image
I3 = torch.eye(3, dtype=D)
T = torch.tensor([0.0, 0.0, 3.0], dtype=D)
CLASSES = (Pinhole, Orthographic)


def _k(**entries: float) -> torch.Tensor:
    """K32 with entries changed: ``_k(k10=0.5)`` sets K[1, 0]."""
    K = K32.clone()
    for key, value in entries.items():
        K[int(key[1]), int(key[2])] = value
    return K


# ----------------------------------------------------------------------------------- K


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("K", "match"),
    [
        (_k(k10=0.5), r"K: expected an upper-triangular .* got K\[1, 0\] = 0.5"),
        (_k(k20=0.1), r"K: expected an upper-triangular .* got .*K\[2, 0\] = 0.1"),
        (_k(k21=-0.1), r"K: expected an upper-triangular .* got .*K\[2, 1\] = -0.1"),
        (_k(k22=2.0), r"K: expected .*, got .*K\[2, 2\] = 2 in camera 0; divide K by K\[2, 2\]"),
        (torch.zeros(3, 3, dtype=D), r"K: expected an upper-triangular .*K\[2, 2\] = 0 in camera 0"),
        (_k(k00=0.0), r"K: expected focal lengths fx = K\[0, 0\] > 0 and fy = K\[1, 1\] > 0, got fx = 0"),
        (_k(k11=0.0), r"got fy = 0 in camera 0; a zero fy maps every point to one line"),
        (_k(k00=-40.0), r"got fx = -40 in camera 0; a negative fx mirrors the image; flip the image instead"),
        (_k(k11=-40.0), r"got fy = -40 in camera 0; a negative fy mirrors the image; flip the image instead"),
        (_k(k00=float("inf")), r"K: expected finite values"),
    ],
)
def test_k_must_be_an_intrinsic_matrix(cls: type, K: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(K, I3, T)


def test_k_names_the_camera_of_a_batch_and_accepts_a_gradient_check_step() -> None:
    K = torch.stack([K32, _k(k11=-1.0)])
    with pytest.raises(ValueError, match="got fy = -1 in camera 1"):
        Pinhole(K, I3, T)
    Pinhole(_k(k10=1e-6, k22=1 + 1e-6), I3, T)  # within K_ZERO_TOL: gradcheck perturbs every entry


def test_from_opengl_refuses_a_singular_or_mirroring_projection() -> None:
    view, proj = Pinhole(K32, I3, T, image_size=32).to_opengl()
    for i in (0, 1):
        zero = proj.clone()
        zero[:, i, i] = 0
        with pytest.raises(ValueError, match=rf"projection: expected .* got projection\[{i}, {i}\] = 0 .*singular"):
            Pinhole.from_opengl(view, zero, 32)
    mirrored = proj.clone()
    mirrored[:, 1, 1] *= -1
    with pytest.raises(ValueError, match=r"projection\[1, 1\] = -2.5 in camera 0 \(a negative scale mirrors"):
        Pinhole.from_opengl(view, mirrored, 32)
    view, proj = Orthographic(K32, I3, T, image_size=32).to_opengl()
    proj[:, 0, 0] = 0
    with pytest.raises(ValueError, match=r"projection: .*got projection\[0, 0\] = 0"):
        Orthographic.from_opengl(view, proj, 32)
    with pytest.raises(ValueError, match="scale: expected a finite number > 0"):
        Orthographic.from_scale(-1.0, I3, T, 8)


# ----------------------------------------------------------------------------------- R


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("R", "got"),
    [
        (2 * I3, r"max \|RᵀR − I\| = 3 and det = 8"),
        (torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=D)), r"max \|RᵀR − I\| = 0 and det = -1"),
        (
            torch.tensor([[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=D),
            r"max \|RᵀR − I\| = 0.1 and det = 1",
        ),
        (torch.zeros(3, 3, dtype=D), r"max \|RᵀR − I\| = 1 and det = 0"),
    ],
)
def test_r_must_be_a_rotation(cls: type, R: torch.Tensor, got: str) -> None:
    expected = r"R: expected a rotation \(RᵀR = I, det \+1 within rotation_tol=0.0001\), got "
    with pytest.raises(ValueError, match=expected + got + " in camera 0; pass rotation_tol=None to skip this check"):
        cls(K32, R, T)
    assert torch.equal(cls(K32, R, T, rotation_tol=None).R[0], R)  # the explicit opt-out
    with pytest.raises(ValueError, match="rotation_tol: expected a finite number > 0"):
        cls(K32, I3, T, rotation_tol=-1.0)


def test_rotations_from_every_constructor_pass() -> None:
    g = torch.Generator().manual_seed(0)
    rvec = torch.randn(200, 3, generator=g) * 2
    Pinhole.from_rvec(K32.float(), rvec, T.float())  # float32 Rodrigues is orthonormal to ~1e-7
    Orthographic(K32.float(), rodrigues(rvec), T.float())
    cam = Pinhole(K32, rodrigues(rvec[:3].double()), T, image_size=32)
    again = Pinhole.from_opengl(*cam.to_opengl(), 32)
    torch.testing.assert_close(again.R, cam.R)
    with pytest.raises(ValueError, match=r"R: expected a rotation .* in camera 1"):
        Pinhole(K32, torch.stack([I3, -I3]), T)
    view, proj = cam.to_opengl()
    view[:, :3, :3] *= 2
    match = r"view: expected a rotation in view\[:3, :3\] .*, got max \|RᵀR − I\| = 3 and det = 8 in camera 0; a view"
    with pytest.raises(ValueError, match=match):
        Pinhole.from_opengl(view, proj, 32)


def test_legacy_cameras_become_reflections_without_the_rotation_check() -> None:
    """The original's camera frame (x right, y up, z forward) is left-handed: its OpenCV R has det −1."""
    cam = from_angles(2.5, 20.0, 30.0).to_opencv_camera((24, 32))
    assert cam.rotation_tol is None
    torch.testing.assert_close(torch.linalg.det(cam.R), -torch.ones(1, dtype=D))


def test_checks_leave_the_autograd_graph_of_the_parameters() -> None:
    K, rvec, t = K32.clone().requires_grad_(True), torch.tensor([0.1, 0.2, 0.3], dtype=D), T.clone()
    rvec.requires_grad_(True)
    t.requires_grad_(True)
    cam = Pinhole.from_rvec(K, rvec, t, image_size=32, dist_coeffs=torch.tensor([-0.1, 0.01, 0, 0, 0], dtype=D))
    cam.to_screen(torch.rand(1, 5, 3, dtype=D, generator=torch.Generator().manual_seed(1)) - 0.5).sum().backward()
    assert all(x.grad is not None and bool(torch.isfinite(x.grad).all()) for x in (K, rvec, t))


# ----------------------------------------------------------------------------------- distortion


def _raw_opencv(x: torch.Tensor, y: torch.Tensor, d: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's polynomial as written, without the freeze beyond the fold."""
    k1, k2, p1, p2, k3 = d
    r2 = x * x + y * y
    c = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    return x * c + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * c + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y


FOLDING = "dist_coeffs: expected a distortion that is monotonic out to the corners of the 32 × 32 image"


def test_a_distortion_that_folds_inside_the_image_is_refused() -> None:
    """k1 = −3: the radial part folds at r = 1/3 (distorted radius 2/9), inside the image (corner radius 0.566)."""
    folds = [-3.0, 0, 0, 0, 0]
    got = r"\(distorted radius 0.566 from the principal point\), got a radial part that folds at r = 0.333 "
    with pytest.raises(ValueError, match=FOLDING + " " + got + r"\(distorted radius 0.222\) in camera 0"):
        Pinhole(K32, I3, T, image_size=(32, 32), dist_coeffs=folds)
    cam = Pinhole(K32, I3, T, dist_coeffs=folds)  # no image size: nothing to check yet
    points = torch.zeros(1, 1, 3, dtype=D)
    for call in (cam.project, cam.to_screen):
        with pytest.raises(ValueError, match=FOLDING):
            call(points, (32, 32))
    with pytest.raises(ValueError, match="in camera 1"):
        Pinhole(K32, I3, T, image_size=32, dist_coeffs=torch.tensor([[-0.1, 0, 0, 0, 0], folds], dtype=D))
    with pytest.raises(ValueError, match=FOLDING + r".* got a Jacobian determinant of -0.0\d+ at \(x', y'\)"):
        Pinhole(K32, I3, T, image_size=32, dist_coeffs=[-0.4, 0, 0.3, 0, 0])  # folded by p1 alone
    Pinhole(K32, I3, T, image_size=32, dist_coeffs=[-0.4, 0, 0.01, 0.01, 0])  # folds beyond the corners
    # a fold at r ~ 1e55 (k2 = −5e-222) with p2 ≠ 0: the rays are sampled out to the corners, not to the fold
    K2 = torch.tensor([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]], dtype=D)
    Pinhole(K2, I3, T, image_size=2, dist_coeffs=[0.0, -5e-222, 0.0, 7.8125e-3, 0.0])


def test_fold_radius() -> None:
    d = torch.tensor([[-3.0, 0, 0, 0, 0], [0.0, 0, 0, 0, 0], [1e6, 0, 0, 0, 0], [8.0, -29.0, 0, 0, 0]], dtype=D)
    s = distortion_fold(d)
    torch.testing.assert_close(s[0], torch.tensor(1 / 9, dtype=D))
    assert torch.isinf(s[1]) and torch.isinf(s[2])
    torch.testing.assert_close(s[3], torch.tensor(0.2, dtype=D))  # 1 + 24 s − 145 s² = 0


def test_a_huge_k1_is_a_monotonic_lens_with_a_tiny_field_of_view() -> None:
    """k1 = 1e6 never folds (d/dr [r + 1e6 r³] > 0): a valid, extreme pincushion whose 32 × 32 image
    sees 0.42° off the axis to its edges; points outside that land far outside the image, in order."""
    cam = Pinhole(K32, I3, torch.zeros(3, dtype=D), image_size=32, dist_coeffs=[1e6, 0, 0, 0, 0])
    x = torch.linspace(0, 2, 201, dtype=D)
    uv = cam.project(torch.stack([x, torch.zeros_like(x), torch.ones_like(x)], -1)[None], 32)[0]
    assert bool(torch.isfinite(uv).all()) and bool((uv[1:, 0] > uv[:-1, 0]).all())
    edge = cam.project(torch.tensor([[[0.0073, 0.0, 1.0]]], dtype=D))[0, 0, 0]
    assert 31 < float(edge) < 31.5  # x' = 0.0073 (0.42°) lands just inside the image edge u = 31.5


def test_points_beyond_the_fold_do_not_fold_back_into_the_image() -> None:
    """The issue's sphere: off-screen without distortion (u ∈ 35–44 at W = 32). A valid lens that
    folds beyond the image corners (k1 = 8, k2 = −29: fold at r = 0.447, distorted radius 0.644 >
    0.566) would put it in the middle of the image with OpenCV's polynomial; here it stays out."""
    v, f = icosphere(level=2)
    v = (v.to(D) * 0.3 + torch.tensor([1.8, 0.0, 3.0], dtype=D))[None]
    plain = Pinhole(K32, I3, torch.zeros(3, dtype=D), image_size=32)
    u = plain.project(v)[0, :, 0]
    assert 34 < float(u.min()) and float(u.max()) < 45
    dist = [8.0, -29.0, 0.0, 0.0, 0.0]
    lens = Pinhole(K32, I3, torch.zeros(3, dtype=D), image_size=32, dist_coeffs=dist)
    raw_u = 40 * _raw_opencv(v[0, :, 0] / v[0, :, 2], v[0, :, 1] / v[0, :, 2], dist)[0] + 15.5
    assert float(raw_u.min()) < 31.5  # OpenCV's polynomial folds the sphere back into the image
    assert float(lens.project(v)[0, :, 0].min()) > 43  # beyond the fold the radial factor is frozen
    out = sr.render(sr.Mesh(v, f[None]), lens, backend="reference", sigma_val=1e-5)
    assert float(out.alpha.sum()) == 0
    with pytest.raises(ValueError, match=FOLDING):
        lens.replace(dist_coeffs=[-3.0, 0, 0, 0, 0])


def test_the_frozen_distortion_is_continuous_monotonic_and_differentiable() -> None:
    dist = torch.tensor([8.0, -29.0, 0.002, -0.001, 0.0], dtype=D)
    cam = Pinhole(K32, I3, torch.zeros(3, dtype=D), image_size=32, dist_coeffs=dist)
    r = torch.linspace(0, 3, 3001, dtype=D)
    pts = torch.stack([r * 0.8, r * 0.6, torch.ones_like(r)], -1)[None]
    uv = cam.project(pts)[0, :, :2] - torch.tensor([15.5, 15.5], dtype=D)
    radius = uv.norm(dim=1)
    assert bool((radius[1:] > radius[:-1]).all())
    assert float((radius[1:] - radius[:-1]).max()) < 0.1  # no jump at the fold (r = 0.447)
    inside = r * r < 0.2  # before the fold: exactly OpenCV's polynomial
    x2, y2 = _raw_opencv(pts[0, :, 0], pts[0, :, 1], dist.tolist())
    torch.testing.assert_close(uv[inside, 0], 40 * x2[inside], rtol=0, atol=1e-12)
    torch.testing.assert_close(uv[inside, 1], 40 * y2[inside], rtol=0, atol=1e-12)
    # exact gradients on both sides of the fold, in the coefficients too (through the fold radius)
    world = torch.tensor([[[0.1, -0.05, 1.0], [0.5, 0.3, 1.0], [-0.9, 0.7, 1.2]]], dtype=D, requires_grad=True)
    d = dist.clone().requires_grad_(True)
    assert gradcheck(lambda d, x: Pinhole(K32, I3, T * 0, dist_coeffs=d).project(x), (d, world))
    far = torch.tensor([[[1e3, 1e3, 1e-3]]], dtype=torch.float32, requires_grad=True)
    Pinhole(K32.float(), I3.float(), T.float() * 0, dist_coeffs=dist.float()).project(far).sum().backward()
    assert bool(torch.isfinite(far.grad).all())


# ----------------------------------------------------------------------------------- P, up, flags


def test_projection_camera_refuses_a_singular_p() -> None:
    with pytest.raises(
        ValueError, match=r"P: expected P\[:, :3\] \(= K R\) to be invertible, got singular values 0, 0"
    ):
        ProjectionCamera(P=torch.zeros(3, 4))
    rank2 = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 3]])
    with pytest.raises(ValueError, match=r"singular values 1.73, 1, 0 in camera 0"):
        ProjectionCamera(P=rank2)
    with pytest.raises(ValueError, match="P: expected finite values"):
        ProjectionCamera(P=torch.full((3, 4), float("nan")))


@pytest.mark.parametrize("cls", [LookAtCamera, LookCamera])
def test_a_zero_up_vector_is_refused(cls: type) -> None:
    with pytest.raises(ValueError, match=r"up: expected a non-zero up vector \(length >= 1e-05\), got \(0, 0, 0\) "):
        cls(eye=(0.0, 0.0, -3.0), up=(0, 0, 0))
    with pytest.raises(ValueError, match=r"(?s)up: .*\(length 0 in camera 1\)"):
        cls(eye=(0.0, 0.0, -3.0), up=torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    cls(eye=(0.0, 3.0, 0.0), up=(0, 1, 0), **({"direction": (0, -1, 0)} if cls is LookCamera else {}))  # fallback


def test_flags_are_booleans() -> None:
    with pytest.raises(TypeError, match="perspective: expected True or False, got 'no'"):
        LookAtCamera(perspective="no")
    with pytest.raises(TypeError, match="perspective: expected True or False, got 'no'"):
        LookAtCamera().replace(perspective="no")
    assert LookAtCamera(perspective=np.bool_(False)).perspective is False
    for call in (from_angles, LookAtCamera.from_angles, srf.get_points_from_angles):
        with pytest.raises(TypeError, match="degrees: expected True or False, got 'yes'"):
            call(2.0, 30.0, 0.0, degrees="yes")


def test_angle_lengths_must_match() -> None:
    match = (
        r"elevation: length 3 does not match distance \(length 2\); "
        "expected distance, elevation, azimuth of length 1 or one common length"
    )
    for call in (from_angles, srf.get_points_from_angles):
        with pytest.raises(ValueError, match=match):
            call(torch.ones(2), torch.ones(3), 0.0)
    assert srf.get_points_from_angles(torch.ones(2), torch.ones(1), 0.0).shape == (2, 3)


# ----------------------------------------------------------------------------------- batches, meta


def test_parameter_batches_are_one_or_a_common_b() -> None:
    match = r"dist_coeffs: batch 3 does not match K \(batch 2\); expected K, R, t, dist_coeffs of batch 1 or one common"
    with pytest.raises(ValueError, match=match):
        Pinhole(K32.expand(2, 3, 3), I3, T, dist_coeffs=torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"viewing_angle: batch 3 does not match eye \(batch 2\)"):
        LookAtCamera(eye=torch.tensor([[0.0, 0, -3], [0, 0, -4]]), viewing_angle=torch.full((3,), 30.0))
    dist = torch.tensor([[0.0] * 5, [0.05] + [0.0] * 4, [-0.05] + [0.0] * 4])
    cam = Pinhole(K32, I3, T, image_size=16, dist_coeffs=dist)
    assert cam.batch_size == 3  # three cameras: the distortion has batch 3
    with pytest.raises(ValueError, match="dist_coeffs: batch of 3 cameras for 1 item of points; expected points of"):
        cam.project(torch.zeros(1, 1, 3, dtype=D))
    with pytest.raises(ValueError, match="3 cameras for 2 items of points; expected 1 or 2 cameras, or points of"):
        cam.project(torch.zeros(2, 1, 3, dtype=D))
    v, f = icosphere(level=1)
    alpha = sr.render(sr.Mesh(v.to(D)[None] * 0.5, f[None]), cam, backend="reference").alpha
    assert alpha.shape == (3, 1, 16, 16) and not torch.equal(alpha[1], alpha[2])


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda m: Pinhole(K32.to(m), I3, T), "K"),
        (lambda m: Orthographic(K32, I3.to(m), T), "R"),
        (lambda m: Pinhole(K32, I3, T.to(m)), "t"),
        (lambda m: Pinhole(K32, I3, T, dist_coeffs=torch.zeros(5, device=m)), "dist_coeffs"),
        (lambda m: Pinhole.from_rvec(K32, torch.zeros(3, device=m), T), "rvec"),
        (lambda m: LookAtCamera(eye=torch.tensor([0.0, 0, -3], device=m)), "eye"),
        (lambda m: LookAtCamera(at=torch.zeros(3, device=m)), "at"),
        (lambda m: LookCamera(up=torch.tensor([0.0, 1, 0], device=m)), "up"),
        (lambda m: LookAtCamera(viewing_angle=torch.tensor(30.0, device=m)), "viewing_angle"),
        (lambda m: ProjectionCamera(P=torch.eye(3, 4, device=m)), "P"),
        (lambda m: from_angles(torch.ones(2, device=m), 0.0, 0.0), "distance"),
    ],
)
def test_meta_tensors_are_refused(make: object, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: meta tensors hold no data; move them to a real device$"):
        make("meta")  # type: ignore[operator]
