"""Camera objects (softras.cameras): OpenCV oracle, gradients, batching, converters, aspect ratio,
per-call cameras, the legacy modes and degenerate cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import softras as sr
import softras.functional as srf
from softras import cameras
from softras.cameras import (
    LookAtCamera,
    LookCamera,
    Orthographic,
    Pinhole,
    ProjectionCamera,
    ndc_to_pixels,
    pixels_to_ndc,
    rodrigues,
)
from softras.raster.contract import pixel_centers

cv2 = pytest.importorskip("cv2")

D = torch.float64


def _random_pinhole(seed: int, batch: int = 1, skew: bool = False) -> tuple[dict, torch.Tensor]:
    g = np.random.default_rng(seed)
    K = np.zeros((batch, 3, 3))
    K[:, 0, 0] = g.uniform(200, 900, batch)
    K[:, 1, 1] = g.uniform(200, 900, batch)
    K[:, 0, 2] = g.uniform(100, 500, batch)
    K[:, 1, 2] = g.uniform(100, 400, batch)
    K[:, 0, 1] = g.uniform(-5, 5, batch) if skew else 0.0
    K[:, 2, 2] = 1.0
    rvec = g.normal(0, 0.8, (batch, 3))
    t = g.normal(0, 0.3, (batch, 3)) + np.array([0.0, 0.0, 4.0])
    dist = np.stack(
        [g.uniform(-0.3, 0.3, batch), g.uniform(-0.1, 0.1, batch), g.uniform(-0.01, 0.01, batch),
         g.uniform(-0.01, 0.01, batch), g.uniform(-0.05, 0.05, batch)], 1
    )  # fmt: skip
    params = {"K": torch.from_numpy(K), "rvec": torch.from_numpy(rvec), "t": torch.from_numpy(t),
              "dist": torch.from_numpy(dist)}  # fmt: skip
    # points in front of each camera: camera-frame points mapped back to the world
    R = rodrigues(params["rvec"])
    cam = torch.from_numpy(g.uniform(-1, 1, (batch, 50, 3))) * torch.tensor([1.0, 1.0, 0.5], dtype=D)
    cam[..., 2] += 3.0
    world = torch.matmul(cam - params["t"][:, None], R)  # R^T (x - t)
    return params, world


# ----------------------------------------------------------------------------------- OpenCV oracle


def test_rodrigues_matches_opencv() -> None:
    g = np.random.default_rng(0)
    for rvec in [*g.normal(0, 1.5, (20, 3)), np.zeros(3), np.array([1e-6, -2e-6, 0.5e-6])]:
        ours = rodrigues(torch.from_numpy(rvec))[0].numpy()
        np.testing.assert_allclose(ours, cv2.Rodrigues(rvec)[0], atol=1e-14, rtol=0)


def test_pinhole_matches_cv2_project_points() -> None:
    worst = 0.0
    for seed in range(30):
        p, world = _random_pinhole(seed)
        # no image_size: some of these random lenses fold inside a 480 × 640 image, which such a camera refuses
        cam = Pinhole.from_rvec(p["K"][0], p["rvec"][0], p["t"][0], dist_coeffs=p["dist"][0])
        ours = cam.project(world)[0, :, :2].numpy()
        ref, _ = cv2.projectPoints(
            world[0].numpy(), p["rvec"][0].numpy(), p["t"][0].numpy(), p["K"][0].numpy(), p["dist"][0].numpy()
        )
        worst = max(worst, float(np.abs(ours - ref[:, 0]).max()))
    print(f"max |pinhole - cv2.projectPoints| = {worst:.3g} px")
    assert worst <= 1e-9


def test_pinhole_skew_matches_the_formula() -> None:
    p, world = _random_pinhole(3, skew=True)
    cam = Pinhole.from_rvec(p["K"], p["rvec"], p["t"], dist_coeffs=p["dist"])
    uvz = cam.project(world)[0]
    # reference: cv2 without skew gives fx x'' + cx; the skew adds s y'' = s (v - cy) / fy
    K = p["K"][0].numpy()
    ref, _ = cv2.projectPoints(
        world[0].numpy(),
        p["rvec"][0].numpy(),
        p["t"][0].numpy(),
        K * [[1, 0, 1], [1, 1, 1], [1, 1, 1]],
        p["dist"][0].numpy(),
    )
    ref = ref[:, 0]
    y2 = (ref[:, 1] - K[1, 2]) / K[1, 1]
    np.testing.assert_allclose(uvz[:, 0].numpy(), ref[:, 0] + K[0, 1] * y2, atol=1e-9, rtol=0)
    np.testing.assert_allclose(uvz[:, 1].numpy(), ref[:, 1], atol=1e-9, rtol=0)
    # depth = camera-frame z
    np.testing.assert_allclose(uvz[:, 2].numpy(), cam.world_to_camera(world)[0, :, 2].numpy(), rtol=0, atol=0)


# ----------------------------------------------------------------------------------- gradients


def test_gradcheck_pinhole_every_parameter() -> None:
    p, world = _random_pinhole(5, batch=2)
    world = world[:, :6].clone().requires_grad_(True)
    inputs = [p["K"].clone(), p["rvec"].clone(), p["t"].clone(), p["dist"].clone(), world]
    for x in inputs:
        x.requires_grad_(True)

    def f(K: torch.Tensor, rvec: torch.Tensor, t: torch.Tensor, dist: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
        return Pinhole.from_rvec(K, rvec, t, image_size=(48, 64), dist_coeffs=dist).to_screen(pts)

    assert gradcheck(f, inputs)
    R = rodrigues(p["rvec"]).clone().requires_grad_(True)
    assert gradcheck(lambda R: Pinhole(p["K"], R, p["t"], dist_coeffs=p["dist"]).project(world), (R,))


def test_gradcheck_legacy_and_orthographic_cameras() -> None:
    pts = (torch.rand(2, 5, 3, dtype=D, generator=torch.Generator().manual_seed(0)) - 0.5).requires_grad_(True)
    eye = torch.tensor([[0.3, 0.4, -2.5], [0.1, -0.2, -3.0]], dtype=D, requires_grad=True)
    at = torch.tensor([0.05, 0.0, 0.1], dtype=D, requires_grad=True)
    angle = torch.tensor([25.0, 35.0], dtype=D, requires_grad=True)
    assert gradcheck(
        lambda e, a, ang, x: LookAtCamera(eye=e, at=a, viewing_angle=ang).project(x, image_size=(20, 30)),
        (eye, at, angle, pts),
    )
    direction = torch.tensor([-0.2, -0.3, 1.0], dtype=D, requires_grad=True)
    scale = torch.tensor(0.7, dtype=D, requires_grad=True)
    assert gradcheck(
        lambda e, d, s, x: LookCamera(eye=e, direction=d, perspective=False, viewing_scale=s).to_screen(x, (20, 30)),
        (eye, direction, scale, pts),
    )
    P = torch.cat([torch.diag(torch.tensor([30.0, 30.0, 1.0], dtype=D)), torch.tensor([[16.0], [16], [3]], dtype=D)], 1)
    P = P[None].requires_grad_(True)
    dist = torch.tensor([[0.01, 0.001, 0.002, -0.001, 0.0001]], dtype=D, requires_grad=True)
    assert gradcheck(
        lambda P, d, x: ProjectionCamera(P=P, dist_coeffs=d, orig_size=32).project(x, (32, 48)), (P, dist, pts)
    )
    K = torch.tensor([[20.0, 1.0, 15.0], [0.0, 22.0, 10.0], [0, 0, 1]], dtype=D, requires_grad=True)
    R = rodrigues(torch.tensor([0.1, 0.2, 0.3], dtype=D)).requires_grad_(True)
    t = torch.tensor([0.0, 0.1, 3.0], dtype=D, requires_grad=True)
    assert gradcheck(lambda K, R, t, x: Orthographic(K, R, t, image_size=(20, 30)).to_screen(x), (K, R, t, pts))


# ----------------------------------------------------------------------------------- batching


def test_batched_parameters_match_per_item_cameras() -> None:
    p, world = _random_pinhole(7, batch=3)
    batched = Pinhole.from_rvec(p["K"], p["rvec"], p["t"], dist_coeffs=p["dist"]).project(world)
    for i in range(3):
        one = Pinhole.from_rvec(p["K"][i], p["rvec"][i], p["t"][i], dist_coeffs=p["dist"][i]).project(world[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], one, rtol=0, atol=1e-12)
    # batch-1 parameters are shared by every item; mixing batch 1 and batch 3 works
    shared = Pinhole.from_rvec(p["K"][:1], p["rvec"], p["t"][0], dist_coeffs=p["dist"][:1]).project(world)
    for i in range(3):
        one = Pinhole.from_rvec(p["K"][0], p["rvec"][i], p["t"][0], dist_coeffs=p["dist"][0]).project(world[i : i + 1])
        torch.testing.assert_close(shared[i : i + 1], one, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="batch of 3 cameras for 2 items"):
        Pinhole.from_rvec(p["K"], p["rvec"], p["t"]).project(world[:2])
    eyes = torch.tensor([[0.0, 0.5, -3.0], [0.4, 0.0, -2.5], [-0.3, 0.2, 2.8]], dtype=D)
    batch = LookAtCamera(eye=eyes).to_screen(world, (30, 40))
    for i in range(3):
        torch.testing.assert_close(batch[i], LookAtCamera(eye=eyes[i]).to_screen(world[i : i + 1], (30, 40))[0])


# ----------------------------------------------------------------------------------- pixel rule


def test_pixel_ndc_rule_is_the_rasterizer_pixel_centres() -> None:
    h, w = 5, 8
    rows, cols = torch.meshgrid(torch.arange(h, dtype=D), torch.arange(w, dtype=D), indexing="ij")
    ndc = pixels_to_ndc(torch.stack([cols, rows], -1), (h, w))
    torch.testing.assert_close(ndc[0, :, 0], pixel_centers(w, flip=False, dtype=D, device=torch.device("cpu")))
    torch.testing.assert_close(ndc[:, 0, 1], pixel_centers(h, flip=True, dtype=D, device=torch.device("cpu")))
    back = ndc_to_pixels(torch.cat([ndc, torch.ones_like(ndc[..., :1])], -1), (h, w))
    torch.testing.assert_close(back[..., :2], torch.stack([cols, rows], -1), rtol=0, atol=1e-15)
    assert torch.equal(back[..., 2], torch.ones(h, w, dtype=D))


def test_a_point_projected_to_a_pixel_centre_lights_that_pixel() -> None:
    """A tiny triangle around the point Pinhole puts at pixel (row 2, column 6) covers that pixel."""
    K = torch.tensor([[30.0, 0, 4.5], [0, 30.0, 3.0], [0, 0, 1]], dtype=D)
    cam = Pinhole(K, torch.eye(3, dtype=D), torch.zeros(3, dtype=D), image_size=(7, 10))
    u, v = 6.0, 2.0
    centre = torch.tensor([(u - 4.5) / 30 * 3, (v - 3.0) / 30 * 3, 3.0], dtype=D)
    offs = torch.tensor([[-0.02, -0.02, 0], [0.02, -0.02, 0], [0, 0.03, 0]], dtype=D)
    v_ = (centre + offs)[None]
    f = torch.tensor([[[0, 1, 2]]])
    r = sr.SoftRenderer(image_size=(7, 10), camera_mode="look_at", dist_func="hard", aggr_func_alpha="hard",
                        backend="reference")  # fmt: skip
    alpha = r(v_, f, camera=cam)[0, 3]
    assert alpha[2, 6] == 1 and alpha.sum() == 1


# ----------------------------------------------------------------------------------- converters


def test_opencv_round_trip() -> None:
    p, world = _random_pinhole(11, batch=2)
    cam = Pinhole.from_rvec(p["K"], p["rvec"], p["t"], dist_coeffs=p["dist"])  # camera 1 folds inside 100 × 120
    K, R, t, dist = cam.to_opencv()
    again = Pinhole.from_opencv(K, R, t[..., None], None, dist)  # OpenCV's [3, 1] tvec layout
    torch.testing.assert_close(again.project(world), cam.project(world), rtol=0, atol=0)
    assert K.shape == (2, 3, 3) and R.shape == (2, 3, 3) and t.shape == (2, 3) and dist.shape == (2, 5)


@pytest.mark.parametrize("kind", ["pinhole", "orthographic"])
def test_opengl_round_trip_and_clip_space(kind: str) -> None:
    p, world = _random_pinhole(13, batch=2, skew=True)
    size = (90, 130)
    if kind == "pinhole":
        cam = Pinhole.from_rvec(p["K"], p["rvec"], p["t"], image_size=size)
    else:
        K = p["K"].clone()
        K[:, :2, :2] /= 4
        cam = Orthographic(K, rodrigues(p["rvec"]), p["t"], image_size=size)
    view, proj = cam.to_opengl(near=0.5, far=20.0)
    homo = torch.cat([world, torch.ones_like(world[..., :1])], -1)
    clip = torch.einsum("bij,bnj->bni", proj @ view, homo)
    ndc = clip[..., :3] / clip[..., 3:]
    screen = cam.to_screen(world)
    torch.testing.assert_close(ndc[..., :2], screen[..., :2], rtol=0, atol=1e-12)
    depth = -torch.einsum("bij,bnj->bni", view, homo)[..., 2]  # OpenGL eye looks down -z
    torch.testing.assert_close(depth, screen[..., 2], rtol=0, atol=1e-12)
    assert ((ndc[..., 2] > -1) & (ndc[..., 2] < 1)).all()
    again = type(cam).from_opengl(view, proj, size)
    for a, b in zip(again.to_opencv()[:3], cam.to_opencv()[:3], strict=True):
        torch.testing.assert_close(a.expand_as(b), b, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="projection: not an OpenGL"):
        type(cam).from_opengl(view, torch.eye(4, dtype=D) * 2, size)


def test_opengl_refuses_distortion() -> None:
    p, _ = _random_pinhole(1)
    with pytest.raises(ValueError, match="dist_coeffs: OpenGL matrices cannot represent"):
        Pinhole.from_rvec(p["K"], p["rvec"], p["t"], image_size=(10, 10), dist_coeffs=p["dist"]).to_opengl()


def test_from_angles_and_look_at_to_pinhole() -> None:
    cam = cameras.from_angles(torch.tensor([2.5, 3.0], dtype=D), torch.tensor([20.0, -35.0], dtype=D),
                              torch.tensor([30.0, 250.0], dtype=D))  # fmt: skip
    eyes = srf.get_points_from_angles(torch.tensor([2.5, 3.0], dtype=D), torch.tensor([20.0, -35.0], dtype=D),
                                      torch.tensor([30.0, 250.0], dtype=D))  # fmt: skip
    torch.testing.assert_close(cam.eye, eyes)
    assert LookAtCamera.from_angles(2.0, 30.0, 0.0).eye == srf.get_points_from_angles(2.0, 30.0, 0.0)
    # the camera's distance / elevation / azimuth come back from the eye
    e = eyes
    torch.testing.assert_close(e.norm(dim=1), torch.tensor([2.5, 3.0], dtype=D))
    torch.testing.assert_close(torch.rad2deg(torch.asin(e[:, 1] / e.norm(dim=1))), torch.tensor([20.0, -35.0], dtype=D))
    torch.testing.assert_close(
        torch.rad2deg(torch.atan2(e[:, 0], -e[:, 2])) % 360, torch.tensor([30.0, 250.0], dtype=D)
    )
    world = torch.rand(2, 40, 3, dtype=D, generator=torch.Generator().manual_seed(2)) - 0.5
    for size in ((32, 32), (40, 90)):
        for perspective in (True, False):
            legacy = cam.replace(perspective=perspective, viewing_angle=22.0, viewing_scale=0.6)
            opencv = legacy.to_opencv_camera(size)
            assert isinstance(opencv, Pinhole if perspective else Orthographic)
            torch.testing.assert_close(
                opencv.project(world), legacy.project(world, image_size=size), rtol=0, atol=1e-10
            )


def test_look_at_and_equivalent_pinhole_render_the_same() -> None:
    v, f = sr.shapes.icosphere(2)
    v = (v * 0.8 + torch.tensor([0.2, 0.1, 0.0])).to(D)[None]
    for size in ((32, 32), (24, 40)):
        r = sr.SoftRenderer(image_size=size, camera_mode="look_at", sigma_val=1e-4, backend="reference")
        r.transform.set_eyes_from_angles(2.8, 25.0, 40.0)
        pinhole = r.transform.camera.to_opencv_camera(size)
        a, b = r(v, f[None]), r(v, f[None], camera=pinhole)
        assert a[0, 3].sum() > 20
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_legacy_projection_is_pinhole_shifted_half_a_pixel_and_flipped() -> None:
    """ProjectionCamera (the original's 'projection' mode) = Pinhole with cx − ½, cy' = S − ½ − cy, y flipped."""
    S = 40
    K = torch.tensor([[35.0, 0, 19.0], [0, 37.0, 22.0], [0, 0, 1]], dtype=D)
    R = rodrigues(torch.tensor([0.1, -0.2, 0.05], dtype=D))[0]
    t = torch.tensor([0.1, -0.1, 3.0], dtype=D)
    P = (K @ torch.cat([R, t[:, None]], 1))[None]
    flip = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=D))
    K2 = torch.tensor([[35.0, 0, 19.0 - 0.5], [0, 37.0, S - 0.5 - 22.0], [0, 0, 1]], dtype=D)
    pinhole = Pinhole(K2, flip @ R, flip @ t, image_size=(S, S), rotation_tol=None)  # a mirror: det(flip R) = −1
    world = torch.rand(1, 30, 3, dtype=D, generator=torch.Generator().manual_seed(4)) - 0.5
    legacy = ProjectionCamera(P=P, orig_size=S).to_screen(world)
    torch.testing.assert_close(legacy, pinhole.to_screen(world), rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------- aspect ratio


def _extent(alpha: torch.Tensor) -> tuple[float, float]:
    """Height and width (pixels) of the silhouette (alpha > 0.5: inside a face) in the fullest column and row.

    The soft edge itself is not used: σ is in NDC² units, so its width in pixels differs along
    x and y when H ≠ W (a property of the rasterizer, not of the camera).
    """
    inside = (alpha > 0.5).to(alpha.dtype)
    return float(inside.sum(0).max()), float(inside.sum(1).max())


def test_sphere_is_round_in_a_non_square_image_in_every_mode() -> None:
    h, w = 64, 160
    v, f = sr.shapes.icosphere(4)
    v, f = v[None].to(D), f[None]
    kw = dict(image_size=(h, w), backend="reference")
    dist = 1 / math.tan(math.radians(30)) + 1
    focal = 40.0
    K = torch.tensor([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]], dtype=D)
    P = (K @ torch.cat([torch.eye(3, dtype=D), torch.tensor([[0.0], [0.0], [dist]], dtype=D)], 1))[None]
    renders = {
        "look_at": sr.SoftRenderer(camera_mode="look_at", **kw)(v, f),
        "look": sr.SoftRenderer(camera_mode="look", **kw)(v, f),
        "look_at orthographic": sr.SoftRenderer(camera_mode="look_at", perspective=False, viewing_scale=0.7, **kw)(
            v, f
        ),
        "projection": sr.SoftRenderer(camera_mode="projection", P=P, orig_size=h, **kw)(v, f),
    }
    r = sr.SoftRenderer(**kw)
    K2 = torch.tensor([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1]], dtype=D)
    t = torch.tensor([0.0, 0.0, dist], dtype=D)
    renders["pinhole"] = r(v, f, camera=Pinhole(K2, torch.eye(3, dtype=D), t, image_size=(h, w)))
    renders["orthographic"] = r(v, f, camera=Orthographic.from_scale(0.7, torch.eye(3, dtype=D), t, (h, w)))
    for name, img in renders.items():
        height, width = _extent(img[0, 3])
        assert 15 < height < h - 2, (name, height)
        assert abs(height - width) <= 1.0, (name, height, width)


def test_non_square_images_on_every_backend() -> None:
    v, f = sr.shapes.icosphere(2)
    v, f = (v * 0.7).to(D)[None], f[None]
    cam = LookAtCamera(eye=(0.3, 0.4, -2.6)).to_opencv_camera((18, 30))
    ref = sr.SoftRenderer(image_size=(18, 30), sigma_val=1e-4, backend="reference")(v, f, camera=cam)
    for name in sr.available_backends():
        if name in ("reference", "cuda"):
            continue
        img = sr.SoftRenderer(image_size=(18, 30), sigma_val=1e-4, backend=name)(v, f, camera=cam)
        torch.testing.assert_close(img, ref, rtol=0, atol=1e-9, msg=name)


# ----------------------------------------------------------------------------------- renderer API


def test_soft_renderer_without_arguments_renders_the_unit_sphere() -> None:
    v, f = sr.shapes.icosphere(2)
    r = sr.SoftRenderer()
    img = r(v[None], f[None])
    assert img.shape == (1, 4, 256, 256)
    alpha = img[0, 3]
    assert 0.2 < float(alpha.mean()) < 0.8 and alpha[128, 128] > 0.9 and alpha[0, 0] == 0
    assert isinstance(r.transform.camera, LookAtCamera)
    torch.testing.assert_close(img, sr.SoftRenderer(camera_mode="look_at")(v[None], f[None]))
    assert sr.Renderer()(v[None], f[None])[0, 3].mean() > 0.2


def test_per_call_camera_overrides_without_mutating_the_renderer() -> None:
    v, f = sr.shapes.icosphere(2)
    v, f = (v * 0.6 + torch.tensor([0.3, 0.0, 0.0]))[None], f[None]
    r = sr.SoftRenderer(image_size=24, camera_mode="look_at", sigma_val=1e-4)
    before_camera = r.transform.camera
    before = r(v, f)
    other = LookAtCamera(eye=srf.get_points_from_angles(2.7, 10.0, 120.0))
    with_camera = r(v, f, camera=other)
    assert (with_camera - before).abs().max() > 0.1
    configured = sr.SoftRenderer(image_size=24, camera_mode="look_at", sigma_val=1e-4)
    configured.transform.set_eyes(other.eye)
    torch.testing.assert_close(with_camera, configured(v, f))
    torch.testing.assert_close(r.render_mesh(sr.Mesh(v, f), camera=other), with_camera)
    assert r.transform.camera is before_camera
    torch.testing.assert_close(r(v, f), before)
    with pytest.raises(TypeError, match=r"camera: expected a softras\.cameras camera"):
        r(v, f, camera="look_at")
    with pytest.raises(ValueError, match=r"camera: the camera's image_size \(24, 48\) and the rendered \(24, 24\)"):
        r(v, f, camera=other.replace(image_size=(24, 48)))


def test_hard_renderer_takes_a_per_call_camera_with_anti_aliasing() -> None:
    v, f = sr.shapes.icosphere(2)
    v, f = (v * 0.6).to(D)[None], f[None]
    r = sr.Renderer(image_size=(16, 28), camera_mode="look_at", backend="reference")  # anti-aliased: 32 × 56 inside
    r.transform.set_eyes_from_angles(2.7, 20.0, 30.0)
    pinhole = r.transform.camera.to_opencv_camera((16, 28))
    a, b = r(v, f), r(v, f, camera=pinhole)
    assert a.shape == (1, 4, 16, 28) and a[0, 3].sum() > 15
    torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_set_eyes_goes_through_the_camera_object() -> None:
    r = sr.SoftRenderer(image_size=16, camera_mode="look_at")
    first = r.transform.camera
    r.transform.set_eyes([[0.0, 0.0, -3.0]])
    assert r.transform.camera is not first and r.transform.camera.eye == [[0.0, 0.0, -3.0]]
    assert first.eye == [0.0, 0.0, -(1 / math.tan(math.radians(30)) + 1)]  # cameras are immutable
    r.transform.set_eyes_from_angles(np.float32(2.5), np.int64(30), np.float64(90.0))  # NumPy scalars
    np.testing.assert_allclose(r.transform.eyes, srf.get_points_from_angles(2.5, 30.0, 90.0))
    r.transform.transformer.viewing_angle = 20  # the shell's attributes replace the camera
    assert r.transform.camera.viewing_angle == 20
    with pytest.raises(ValueError, match="camera_mode: eyes apply"):
        sr.Transform("projection", P=torch.eye(3, 4)[None]).set_eyes([0, 0, -2])


# ----------------------------------------------------------------------------------- degenerate cameras


def test_camera_straight_above_uses_the_fallback_up_vector() -> None:
    v, f = sr.shapes.color_cube()[:2]
    v, f = (v * 0.8).to(D)[None], f[None]
    r = sr.SoftRenderer(image_size=24, camera_mode="look_at", sigma_val=1e-4, backend="reference")
    for elevation in (90.0, -90.0):
        r.transform.set_eyes([0.0, 3.0 * math.copysign(1, elevation), 0.0])
        pole = r(v, f)
        assert torch.isfinite(pole).all() and pole[0, 3].sum() > 20
        # the fallback is the limit of approaching the pole from azimuth 0
        near_pole = r.transform.camera.replace(eye=srf.get_points_from_angles(3.0, elevation * (1 - 1e-4), 0.0))
        torch.testing.assert_close(near_pole.to_screen(v), r.transform.camera.to_screen(v), rtol=0, atol=1e-3)
        torch.testing.assert_close(r(v, f, camera=near_pole), pole, rtol=0, atol=0.05)
    cam = LookCamera(eye=(0, 0, 0), direction=(0, -1, 0))
    assert torch.isfinite(cam.to_screen(torch.tensor([[[0.1, -2.0, 0.2]]]))).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eye": (0.0, 0.0, 0.0)}, "eye: the camera is at its target"),
        ({"eye": (1.0, 2.0, 3.0), "at": (1.0, 2.0, 3.0)}, "eye: the camera is at its target"),
        ({"eye": (float("nan"), 0.0, -2.0)}, "eye: expected finite values"),
        ({"at": (0.0, float("inf"), 0.0)}, "at: expected finite values"),
        ({"viewing_angle": 0.0}, "viewing_angle: expected a half field of view"),
        ({"viewing_angle": -10}, "viewing_angle: expected a half field of view"),
        ({"viewing_angle": 90.0}, "viewing_angle: expected a half field of view"),
        ({"viewing_angle": 180.0}, "viewing_angle: expected a half field of view"),
        ({"viewing_scale": 0.0}, "viewing_scale: expected a finite number > 0"),
        ({"eye": torch.zeros(2, 4)}, r"eye: expected shape \[3\] or \[B, 3\]"),
        ({"image_size": (0, 4)}, "image_size: expected integers >= 1"),
    ],
)
def test_bad_cameras_raise_naming_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LookAtCamera(**kwargs)


def test_bad_arguments_of_the_other_cameras() -> None:
    with pytest.raises(ValueError, match="direction: expected a non-zero"):
        LookCamera(direction=(0, 0, 0))
    with pytest.raises(ValueError, match=r"K: expected shape \[3, 3\]"):
        Pinhole(torch.eye(2), torch.eye(3), torch.zeros(3))
    with pytest.raises(ValueError, match="t: expected finite"):
        Pinhole(torch.eye(3), torch.eye(3), torch.tensor([0.0, float("nan"), 1]))
    with pytest.raises(ValueError, match="dist_coeffs: expected shape"):
        Pinhole(torch.eye(3), torch.eye(3), torch.zeros(3), dist_coeffs=torch.zeros(3))
    with pytest.raises(ValueError, match="P: camera_mode='projection' needs"):
        sr.Projection(None)
    with pytest.raises(ValueError, match=r"image_size: LookAtCamera has none"):
        LookAtCamera().project(torch.zeros(1, 1, 3))
    with pytest.raises(TypeError, match=r"points: expected a torch\.Tensor"):
        LookAtCamera().to_screen(np.zeros((1, 1, 3)))


def test_numpy_scalars_are_accepted_like_numbers() -> None:
    v, f = sr.shapes.icosphere(1)
    a = sr.SoftRenderer(image_size=16, camera_mode="look_at", viewing_angle=np.float32(25))(v[None], f[None])
    b = sr.SoftRenderer(image_size=np.int64(16), camera_mode="look_at", viewing_angle=25)(v[None], f[None])
    torch.testing.assert_close(a, b)
    cam = cameras.from_angles(np.float32(2.5), np.int32(10), np.float64(45))
    assert cam.eye == srf.get_points_from_angles(2.5, 10.0, 45.0)
    assert cameras.image_hw((np.int64(3), np.int32(5))) == (3, 5)
