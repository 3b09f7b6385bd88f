"""Smooth (vertex-normal) shading and the picture helpers: stipple-free alpha, premultiplied pooling."""

from __future__ import annotations

import pytest
import torch

import softras as sr
from softras import cameras
from softras.apps.render import composite, display_render
from softras.lighting import AmbientLighting, DirectionalLighting
from softras.shapes import icosphere

SIZE = 32
LIGHTS = [AmbientLighting(0.4), DirectionalLighting(0.6, light_direction=(0.3, 1.0, -0.5))]


def _sphere() -> tuple[torch.Tensor, torch.Tensor]:
    v, f = icosphere(2)
    return v.double()[None] * 0.8, f[None]


def _white(v: torch.Tensor, f: torch.Tensor, texture_type: str) -> sr.Mesh:
    if texture_type == "surface":
        textures = torch.ones(1, f.shape[1], 4, 3, dtype=v.dtype)
    else:
        textures = torch.ones(1, v.shape[1], 3, dtype=v.dtype)
    return sr.Mesh(v, f, textures, texture_type=texture_type)


def _renderer(**kw: object) -> sr.SoftRenderer:
    r = sr.SoftRenderer(image_size=SIZE, camera_mode="look_at", light_directions=(0.3, 1.0, -0.5), **kw)
    r.transform.set_eyes_from_angles(2.732, 20.0, 30.0)
    return r


def test_smooth_surface_shading_equals_gouraud_vertex_colours() -> None:
    # Uniform white texels lit per vertex and interpolated are exactly what the original's vertex
    # colours give (light computed per vertex, colour·light interpolated): Gouraud shading.
    v, f = _sphere()
    smooth = _renderer(smooth_shading=True).render_mesh(_white(v, f, "surface"))
    gouraud = _renderer().render_mesh(_white(v, f, "vertex"))
    torch.testing.assert_close(smooth, gouraud, atol=1e-9, rtol=0)
    flat = _renderer().render_mesh(_white(v, f, "surface"))
    assert float((flat[:, :3] - smooth[:, :3]).abs().amax()) > 0.02  # per-face light differs


def test_render_smooth_shading_equals_gouraud_vertex_colours() -> None:
    v, f = _sphere()
    camera = cameras.from_angles(2.732, 20.0, 30.0)
    smooth = sr.render(_white(v, f, "surface"), camera, lights=LIGHTS, image_size=SIZE, smooth_shading=True)
    gouraud = sr.render(_white(v, f, "vertex"), camera, lights=LIGHTS, image_size=SIZE)
    torch.testing.assert_close(smooth.rgba, gouraud.rgba, atol=1e-9, rtol=0)
    # the original's renderer interpolates the vertex light with screen-space weights
    screen = sr.render(_white(v, f, "surface"), camera, lights=LIGHTS, image_size=SIZE, smooth_shading=True,
                       perspective_correct=False)  # fmt: skip
    legacy = _renderer(smooth_shading=True, light_intensity_ambient=0.4, light_intensity_directionals=0.6)
    torch.testing.assert_close(legacy.render_mesh(_white(v, f, "surface")), screen.rgba, atol=1e-9, rtol=0)


def test_smooth_shading_of_a_flat_mesh_is_flat_shading() -> None:
    # On a planar mesh every vertex normal is the face normal: both shadings give the same image.
    v = torch.tensor([[[-0.6, -0.6, 0.0], [0.6, -0.6, 0.0], [0.6, 0.6, 0.0], [-0.6, 0.6, 0.0]]], dtype=torch.float64)
    f = torch.tensor([[[0, 2, 1], [0, 3, 2]]])
    textures = torch.rand(1, 2, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mesh = sr.Mesh(v, f, textures)
    smooth = _renderer(smooth_shading=True).render_mesh(mesh)
    flat = _renderer().render_mesh(mesh)
    assert float(flat[:, 3].amax()) > 0.99
    torch.testing.assert_close(smooth, flat, atol=1e-9, rtol=0)


def test_smooth_shading_is_differentiable() -> None:
    v, f = _sphere()
    v = v.clone().requires_grad_(True)
    mesh = sr.Mesh(v, f, torch.ones(1, f.shape[1], 4, 3, dtype=v.dtype))
    _renderer(smooth_shading=True).render_mesh(mesh)[:, :3].sum().backward()
    assert v.grad is not None and bool(v.grad.abs().sum() > 0)


def test_smooth_shading_bad_input() -> None:
    with pytest.raises(TypeError, match="smooth_shading"):
        sr.SoftRenderer(smooth_shading="yes")
    v, f = _sphere()
    with pytest.raises(TypeError, match="smooth_shading"):
        sr.render(_white(v, f, "surface"), cameras.from_angles(2.7, 0, 0), image_size=8, smooth_shading=2)
    raster = sr.SoftRasterizer(image_size=8)
    with pytest.raises(ValueError, match="vertex_light"):
        raster(_white(v, f, "surface"), vertex_light=torch.ones(1, 3, 3))


def test_display_alpha_has_no_stipple_and_keeps_the_blur() -> None:
    v, f = _sphere()
    mesh = _white(v, f, "surface")
    camera = cameras.from_angles(2.732, 20.0, 30.0)
    raw = sr.render(mesh, camera, lights=LIGHTS, image_size=2 * SIZE, outputs=("rgba", "face_id"), sigma_val=1e-5)
    inside = raw.face_id >= 0
    # the method's own alpha dips below 1 on the shared edges inside the silhouette (the stipple)
    assert float(raw.alpha[:, 0][inside].min()) < 0.95
    shown = display_render(mesh, camera, image_size=SIZE, lights=LIGHTS, supersample=2)
    covered = torch.nn.functional.avg_pool2d(inside[:, None].double(), 2)[:, 0] == 1
    assert int(covered.sum()) > 100
    assert float(shown[:, 3][covered].min()) == 1.0
    # outside the silhouette the soft alpha (σ's blur) is kept
    blurred = display_render(mesh, camera, image_size=SIZE, lights=LIGHTS, sigma_val=1e-3, gamma_val=1e-2)
    sharp = display_render(mesh, camera, image_size=SIZE, lights=LIGHTS)
    assert float(blurred[:, 3].sum()) > float(sharp[:, 3].sum()) + 10


def test_display_pooling_does_not_darken_edges() -> None:
    # A red, unshaded mesh composited over white must keep R = 255 everywhere: averaging
    # straight colour with the black background under it would leave a dark rim.
    v, f = _sphere()
    red = sr.Mesh(v, f, torch.tensor([1.0, 0.0, 0.0], dtype=v.dtype).expand(1, f.shape[1], 4, 3))
    shown = display_render(red, cameras.from_angles(2.732, 0.0, 0.0), image_size=SIZE, lights=AmbientLighting(1.0))
    image = composite(shown)[0]
    assert image[..., 0].min() == 255
    edge = (shown[0, 3] > 0.05) & (shown[0, 3] < 0.95)
    assert int(edge.sum()) > 10  # the silhouette is anti-aliased
