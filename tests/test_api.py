"""The original `soft_renderer` API: names, constructor defaults, call signatures, behaviour."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

import softras as sr
import softras.functional as srf

# Defaults of the original package (soft_renderer 1.0.0), argument by argument.
ORIGINAL_DEFAULTS = {
    sr.SoftRenderer: {
        "image_size": 256, "background_color": [0, 0, 0], "near": 1, "far": 100, "anti_aliasing": False,
        "fill_back": True, "eps": 1e-3, "sigma_val": 1e-5, "dist_func": "euclidean", "dist_eps": 1e-4,
        "gamma_val": 1e-4, "aggr_func_rgb": "softmax", "aggr_func_alpha": "prod", "texture_type": "surface",
        "camera_mode": "projection", "P": None, "dist_coeffs": None, "orig_size": 512, "perspective": True,
        "viewing_angle": 30, "viewing_scale": 1.0, "eye": None, "camera_direction": [0, 0, 1],
        "light_mode": "surface", "light_intensity_ambient": 0.5, "light_color_ambient": [1, 1, 1],
        "light_intensity_directionals": 0.5, "light_color_directionals": [1, 1, 1], "light_directions": [0, 1, 0],
    },
    sr.Renderer: {
        "image_size": 256, "background_color": [0, 0, 0], "near": 1, "far": 100, "anti_aliasing": True,
        "fill_back": True, "eps": 1e-6, "camera_mode": "projection", "P": None, "dist_coeffs": None,
        "orig_size": 512, "perspective": True, "viewing_angle": 30, "viewing_scale": 1.0, "eye": None,
        "camera_direction": [0, 0, 1], "light_mode": "surface", "light_intensity_ambient": 0.5,
        "light_color_ambient": [1, 1, 1], "light_intensity_directionals": 0.5,
        "light_color_directionals": [1, 1, 1], "light_directions": [0, 1, 0],
    },
    sr.SoftRasterizer: {
        "image_size": 256, "background_color": [0, 0, 0], "near": 1, "far": 100, "anti_aliasing": False,
        "fill_back": False, "eps": 1e-3, "sigma_val": 1e-5, "dist_func": "euclidean", "dist_eps": 1e-4,
        "gamma_val": 1e-4, "aggr_func_rgb": "softmax", "aggr_func_alpha": "prod", "texture_type": "surface",
    },
    sr.Rasterizer: {
        "image_size": 256, "background_color": [0, 0, 0], "near": 1, "far": 100, "anti_aliasing": False,
        "fill_back": False, "eps": 1e-6,
    },
    sr.Transform: {
        "camera_mode": "projection", "P": None, "dist_coeffs": None, "orig_size": 512, "perspective": True,
        "viewing_angle": 30, "viewing_scale": 1.0, "eye": None, "camera_direction": [0, 0, 1],
    },
    sr.LookAt: {"perspective": True, "viewing_angle": 30, "viewing_scale": 1.0, "eye": None},
    sr.Look: {
        "camera_direction": [0, 0, 1], "perspective": True, "viewing_angle": 30, "viewing_scale": 1.0, "eye": None,
    },
    sr.Projection: {"dist_coeffs": None, "orig_size": 512},
    sr.Lighting: {
        "light_mode": "surface", "intensity_ambient": 0.5, "color_ambient": [1, 1, 1],
        "intensity_directionals": 0.5, "color_directionals": [1, 1, 1], "directions": [0, 1, 0],
    },
    sr.AmbientLighting: {"light_intensity": 0.5, "light_color": (1, 1, 1)},
    sr.DirectionalLighting: {"light_intensity": 0.5, "light_color": (1, 1, 1), "light_direction": (0, 1, 0)},
    sr.Mesh: {"textures": None, "texture_res": 1, "texture_type": "surface"},
    sr.LaplacianLoss: {"average": False},
    sr.FlattenLoss: {"average": False},
    srf.soft_rasterize: {
        "image_size": 256, "background_color": [0, 0, 0], "near": 1, "far": 100, "fill_back": True, "eps": 1e-3,
        "sigma_val": 1e-5, "dist_func": "euclidean", "dist_eps": 1e-4, "gamma_val": 1e-4,
        "aggr_func_rgb": "softmax", "aggr_func_alpha": "prod", "texture_type": "surface",
    },
    srf.load_obj: {"normalization": False, "load_texture": False, "texture_res": 4, "texture_type": "surface"},
    srf.save_obj: {"textures": None, "texture_res": 16, "texture_type": "surface"},
    srf.look_at: {"at": [0, 0, 0], "up": [0, 1, 0]},
    srf.look: {"direction": [0, 1, 0], "up": None},
    srf.perspective: {"angle": 30.0},
    srf.get_points_from_angles: {"degrees": True},
    srf.ambient_lighting: {"light_intensity": 0.5, "light_color": (1, 1, 1)},
    srf.directional_lighting: {"light_intensity": 0.5, "light_color": (1, 1, 1), "light_direction": (0, 1, 0)},
    srf.voxelization: {"normalize": False},
}  # fmt: skip


def _same(a: object, b: object) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


@pytest.mark.parametrize("obj", list(ORIGINAL_DEFAULTS), ids=lambda o: getattr(o, "__qualname__", str(o)))
def test_original_positional_order_and_defaults(obj: object) -> None:
    params = inspect.signature(obj).parameters
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in positional]
    expected = ORIGINAL_DEFAULTS[obj]
    # The original's defaulted arguments appear in the same positional order...
    assert [n for n in names if n in expected] == list(expected)
    for name, default in expected.items():  # ...with the same defaults
        assert _same(params[name].default, default), (name, params[name].default, default)


def test_public_names() -> None:
    for name in ("Mesh", "Renderer", "SoftRenderer", "SoftRasterizer", "Rasterizer", "Transform", "LookAt",
                 "Look", "Projection", "Lighting", "AmbientLighting", "DirectionalLighting", "LaplacianLoss",
                 "FlattenLoss"):  # fmt: skip
        assert hasattr(sr, name), name
    for name in ("get_points_from_angles", "look_at", "look", "perspective", "orthogonal", "projection",
                 "face_vertices", "vertex_normals", "ambient_lighting", "directional_lighting", "soft_rasterize",
                 "load_obj", "save_obj", "save_voxel", "voxelization"):  # fmt: skip
        assert callable(getattr(srf, name)), name


def _sphere(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    v, f = sr.shapes.icosphere(2)
    return (v * 0.6)[None].repeat(batch, 1, 1), f[None].repeat(batch, 1, 1)


def test_soft_renderer_forward_and_render_mesh_agree_and_do_not_mutate() -> None:
    v, f = _sphere()
    mesh = sr.Mesh(v, f)
    before = mesh.vertices.clone(), mesh.textures.clone()
    r = sr.SoftRenderer(image_size=32, camera_mode="look_at")
    a = r.render_mesh(mesh)
    b = r(v, f)
    assert a.shape == (1, 4, 32, 32)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(mesh.vertices, before[0])
    torch.testing.assert_close(mesh.textures, before[1])
    torch.testing.assert_close(r.render_mesh(mesh), a)  # rendering twice gives the same image


def test_per_item_cameras_match_single_camera_renders() -> None:
    v, f = _sphere(3)
    v = v + torch.tensor([0.2, 0.0, 0.0])  # off-centre, so views differ
    r = sr.SoftRenderer(image_size=24, camera_mode="look_at")
    az = torch.tensor([0.0, 90.0, 200.0])
    r.transform.set_eyes_from_angles(torch.full((3,), 2.732), torch.tensor([30.0, 0.0, -20.0]), az)
    batch = r(v, f)
    for i in range(3):
        r.transform.set_eyes_from_angles(2.732, [30.0, 0.0, -20.0][i], float(az[i]))
        torch.testing.assert_close(r(v[i : i + 1], f[i : i + 1])[0], batch[i], atol=1e-5, rtol=1e-5)
    assert (batch[0] - batch[1]).abs().max() > 0.1


def test_get_points_from_angles_numbers_and_tensors() -> None:
    x, y, z = srf.get_points_from_angles(2.0, 30.0, 0.0)
    assert (x, y) == (0.0, pytest.approx(1.0)) and z == pytest.approx(-2 * math.cos(math.radians(30)))
    pts = srf.get_points_from_angles(torch.tensor([2.0, 2.0]), torch.tensor([30.0, 0.0]), torch.tensor([0.0, 90.0]))
    assert pts.shape == (2, 3)
    torch.testing.assert_close(pts[1], torch.tensor([2.0, 0.0, 0.0]), atol=1e-6, rtol=0)


def test_look_equals_look_at_for_the_same_camera() -> None:
    v, f = _sphere()
    eye = [0.3, 0.5, -2.5]
    direction = (-torch.tensor(eye)).tolist()
    a = sr.SoftRenderer(image_size=24, camera_mode="look_at", eye=eye)(v, f)
    b = sr.SoftRenderer(image_size=24, camera_mode="look", eye=eye, camera_direction=direction)(v, f)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_projection_camera_matches_look_at_for_equivalent_intrinsics() -> None:
    v, f = _sphere()
    dist, angle, size = 2.732, 30.0, 64
    focal = size / 2 / math.tan(math.radians(angle))
    K = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
    Rt = torch.cat([torch.eye(3), torch.tensor([[0.0], [0.0], [dist]])], 1)
    P = (K @ Rt)[None]
    a = sr.SoftRenderer(image_size=32, camera_mode="projection", P=P, orig_size=size)(v, f)
    b = sr.SoftRenderer(image_size=32, camera_mode="look_at", eye=[0, 0, -dist], viewing_angle=angle)(v, f)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    # numpy P works too, and dist_coeffs change the image
    c = sr.SoftRenderer(image_size=32, camera_mode="projection", P=P.numpy(), orig_size=size)(v, f)
    torch.testing.assert_close(a, c)
    d = sr.SoftRenderer(
        image_size=32, camera_mode="projection", P=P, orig_size=size, dist_coeffs=torch.tensor([[0.3, 0, 0, 0, 0]])
    )(v, f)
    assert (d - a).abs().max() > 0.1


def test_orthographic_scale() -> None:
    v, f = _sphere()
    img = sr.SoftRenderer(image_size=32, camera_mode="look_at", perspective=False, viewing_scale=1.0)(v, f)
    # a sphere of radius 0.6 covers ~ π 0.6² / 4 of the [-1, 1]² image
    assert abs(float(img[0, 3].mean()) - math.pi * 0.36 / 4) < 0.03


def test_vertex_textures_and_vertex_lighting() -> None:
    v, f = _sphere()
    colors = torch.zeros(1, v.shape[1], 3)
    colors[..., 0] = 1.0
    r = sr.SoftRenderer(image_size=32, camera_mode="look_at", texture_type="vertex", light_mode="vertex")
    img = r(v, f, colors, texture_type="vertex")
    inside = img[0, 3] > 0.99
    assert img[0, 0][inside].min() > 0.4 and img[0, 1][inside].max() < 1e-6
    # lit from above (+y): the top of the image is brighter than the bottom
    red = img[0, 0]
    assert red[12, 16] > red[20, 16] > 0
    # render_mesh switches the lighting/rasterizer to the mesh's texture type
    r2 = sr.SoftRenderer(image_size=32, camera_mode="look_at")
    torch.testing.assert_close(r2.render_mesh(sr.Mesh(v, f, colors, texture_type="vertex")), img)


def test_mesh_methods() -> None:
    v, f = _sphere(2)
    mesh = sr.Mesh(v, f, texture_res=2)
    assert mesh.face_vertices.shape == (2, f.shape[1], 3, 3)
    assert mesh.surface_normals.shape == (2, f.shape[1], 3)
    assert mesh.vertex_normals.shape == v.shape
    assert mesh.face_textures.shape == (2, f.shape[1], 4, 3)
    # outward normals of a sphere point away from the centre
    centres = mesh.face_vertices.mean(2)
    assert ((mesh.surface_normals * centres).sum(-1) > 0).all()
    assert ((mesh.vertex_normals * v).sum(-1) > 0).all()
    mesh.fill_back_()
    mesh.fill_back_()  # idempotent
    assert mesh.num_faces == 2 * f.shape[1] and mesh.textures.shape[1] == 2 * f.shape[1]
    mesh.reset_()
    assert mesh.num_faces == f.shape[1]
    vox = sr.Mesh(v * 0.8, f).voxelize(16)
    assert vox.shape == (2, 16, 16, 16) and vox[0, 8, 8, 8] == 1 and vox[0, 0, 0, 0] == 0


def test_mesh_obj_roundtrip(tmp_path: object) -> None:
    v, f = _sphere()
    path = str(tmp_path / "s.obj")  # type: ignore[operator]
    textures = torch.rand(1, f.shape[1], 4, 3)
    sr.Mesh(v, f, textures).save_obj(path, save_texture=True, texture_res_out=16)
    back = sr.Mesh.from_obj(path, load_texture=True, texture_res=2)
    torch.testing.assert_close(back.vertices, v, atol=1e-6, rtol=0)
    assert torch.equal(back.faces.long(), f.long())
    torch.testing.assert_close(back.textures, textures, atol=2 / 255, rtol=0)


def test_hard_renderer_gives_binary_silhouettes() -> None:
    v, f = _sphere()
    r = sr.Renderer(image_size=32, camera_mode="look_at", anti_aliasing=False)
    img = r(v, f)
    assert set(img[0, 3].unique().tolist()) <= {0.0, 1.0}
    assert img[0, 3].sum() > 50


def test_losses_on_a_mesh() -> None:
    v, f = _sphere()
    lap = sr.LaplacianLoss(v[0], f[0])
    flat = sr.FlattenLoss(f[0])
    assert lap(v).shape == (1,) and flat(v).shape == (1,)
    assert float(flat(v)) > 0


def test_backend_choice() -> None:
    assert "reference" in sr.available_backends()
    v, f = _sphere()
    r = sr.SoftRenderer(image_size=16, camera_mode="look_at", backend="reference")
    assert r(v, f).shape == (1, 4, 16, 16)
    with pytest.raises(ValueError, match=r"backend: expected one of \[.*'reference'"):
        sr.SoftRenderer(image_size=16, camera_mode="look_at", backend="vulkan")(v, f)


def test_non_square_images() -> None:
    v, f = _sphere()
    r = sr.SoftRasterizer(image_size=(12, 20))
    mesh = sr.Transform("look_at")(sr.Mesh(v, f))
    img = r(mesh)
    assert img.shape == (1, 4, 12, 20)


def test_eyes_property_and_numpy_eye() -> None:
    r = sr.SoftRenderer(camera_mode="look_at")
    r.transform.set_eyes(np.array([[0.0, 0.0, -3.0]]))
    assert np.allclose(r.transform.eyes, [[0.0, 0.0, -3.0]])
