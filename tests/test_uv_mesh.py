"""UV textures for users: softras.UVTexture, a Mesh carrying one, render, loaders and converters.

The per-pair sampling itself is tested against its own oracle in the raster tests; here: what a
user builds and reads (construction and its errors, OBJ / trimesh / GLB round trips, the light
channels of render, gradients to images, UVs and vertices, the texel converters, batches).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import softras as sr
from softras.cameras import Pinhole
from softras.io import load_obj
from softras.raster.backends import BACKENDS
from softras.rendering import corner_light, shade

F64 = torch.float64
UV_BACKENDS = [b.name for b in BACKENDS.values() if b.uv_textures and b.available() and b.runs_on(torch.device("cpu"))]
BACKEND = UV_BACKENDS[0]


# ---- scenes ----------------------------------------------------------------------------------
def quad(z: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A square [-1, 1]² at depth z, two faces, facing the camera of :func:`camera`."""
    v = torch.tensor([[-1, -1, z], [1, -1, z], [1, 1, z], [-1, 1, z]], dtype=F64)
    return v, torch.tensor([[0, 2, 1], [0, 3, 2]])


def camera(size: int = 16, distance: float = 3.0) -> Pinhole:
    """Looking down +z from (0, 0, −distance) with y down (OpenCV), the quad filling most of the image."""
    f = 1.2 * size
    K = torch.tensor([[f, 0.0, (size - 1) / 2], [0.0, f, (size - 1) / 2], [0.0, 0.0, 1.0]], dtype=F64)
    return Pinhole(K, torch.eye(3, dtype=F64), torch.tensor([0.0, 0.0, distance], dtype=F64), image_size=(size, size))


def quad_uv() -> torch.Tensor:
    """[4, 2] UVs of the quad's corners: (u, v) = ((x + 1)/2, (y + 1)/2), slightly inside [0, 1]."""
    return torch.tensor([[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]], dtype=F64)


def image(h: int = 8, w: int = 12, c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(h, w, c, dtype=F64, generator=torch.Generator().manual_seed(seed))


def uv_quad(**kwargs: object) -> sr.Mesh:
    v, f = quad()
    return sr.Mesh(v, f, sr.UVTexture(image(), (quad_uv(), f), **kwargs))


def hard(mesh: sr.Mesh, **kwargs: object) -> sr.RenderOutput:
    """``mesh`` rendered by :func:`camera` with a z-buffer (on the first UV backend unless ``backend`` says)."""
    kwargs = {"aggr_func_rgb": "hard", "backend": BACKEND, **kwargs}
    return sr.render(mesh, camera(), **kwargs)


backends = pytest.mark.parametrize("backend", UV_BACKENDS)


# ---- construction ------------------------------------------------------------------------------
def test_a_uv_texture_makes_a_uv_mesh_in_either_uv_form() -> None:
    v, f = quad()
    table = sr.UVTexture(image(), (quad_uv(), f))
    corners = sr.UVTexture(image(), quad_uv()[f])
    for texture in (table, corners):
        mesh = sr.Mesh(v, f, texture)
        assert mesh.texture_type == "uv" and mesh.textures.num_faces == 2 and mesh.texture_res == 1
        torch.testing.assert_close(mesh.textures.face_uv[0], quad_uv()[f], rtol=0, atol=0)
    assert "UVTexture(batch_size=1, num_faces=2" in repr(table)
    torch.testing.assert_close(hard(sr.Mesh(v, f, table)).rgba, hard(sr.Mesh(v, f, corners)).rgba, rtol=0, atol=0)
    assert sr.Mesh(v, f, texture_type="uv").textures.images[0].shape == (1, 1, 3)  # white


def test_the_original_mesh_api_is_unchanged() -> None:
    v, f = quad()
    assert sr.Mesh(v, f).texture_type == "surface" and sr.Mesh(v, f).textures.shape == (1, 2, 1, 3)
    assert sr.Mesh(v, f, texture_type="vertex").textures.shape == (1, 4, 3)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda v, f: sr.UVTexture(image(), torch.zeros(2, 3)), ValueError, r"uv: expected per-corner UVs \[F, 3, 2\]"),
        (lambda v, f: sr.UVTexture(image(), (quad_uv(), f + 2)), ValueError, r"uv_faces: indices must lie in \[0, 3\]"),
        (lambda v, f: sr.UVTexture(image(), (quad_uv(), f), material=[0, 1]), ValueError, r"material: .*\[0, 1\)"),
        (lambda v, f: sr.UVTexture(image(), (quad_uv(), f), material=[0]), ValueError, "material: expected one"),
        (lambda v, f: sr.UVTexture([image(), image(c=1)], quad_uv()[f]), ValueError, "images.1.: has 1 channels"),
        (lambda v, f: sr.UVTexture(image()[0, 0], quad_uv()[f]), ValueError, "images.0.: expected a non-empty image"),
        (lambda v, f: sr.UVTexture([], quad_uv()[f]), TypeError, "images: expected"),
        (lambda v, f: sr.UVTexture(image(), quad_uv()[f] * np.nan), ValueError, "uv: expected finite"),
        (lambda v, f: sr.UVTexture(image(), (quad_uv(), f, f)), TypeError, "uv: expected"),
        (lambda v, f: sr.Mesh(v, f[:1], sr.UVTexture(image(), quad_uv()[f])), ValueError, "UVTexture has 2 faces"),
        (lambda v, f: sr.Mesh(v, f, sr.UVTexture(image(), quad_uv()[f]), texture_type="vertex"), ValueError, "uv"),
        (lambda v, f: sr.Mesh(v, f, torch.ones(2, 1, 3), texture_type="uv"), TypeError, "needs a softras.UVTexture"),
        (lambda v, f: uv_quad().face_textures, TypeError, "face_textures: a 'uv' mesh"),
        (lambda v, f: uv_quad().replace(textures=torch.ones(1, 2, 1, 3)), TypeError, "replace: textures"),
        (lambda v, f: setattr(uv_quad(), "texture_type", "surface"), ValueError, "texture_type: 'surface' does"),
        (lambda v, f: hard(sr.Mesh(v, f), texture_filter="nearest"), ValueError, "texture_filter: applies to UV"),
        (lambda v, f: hard(sr.Mesh(v, f), texture_wrap="clamp"), ValueError, "texture_wrap: applies to UV"),
        (lambda v, f: hard(uv_quad(), texture_filter="cubic"), ValueError, "texture_filter: expected one of"),
        (lambda v, f: shade(uv_quad(), None), ValueError, "lit after rasterization"),
        (lambda v, f: sr.SoftRasterizer()(uv_quad()), ValueError, "softras.render or SoftRenderer"),
        (lambda v, f: uv_quad().to_texture_type("vertex"), ValueError, "do not convert to 'vertex'"),
        (lambda v, f: uv_quad().textures.to_surface(2, texture_filter="trilinear"), ValueError, "'bilinear' or"),
        (lambda v, f: uv_quad().to_pytorch3d(), ValueError, "to_pytorch3d: UV textures"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(build: object, error: type, match: str) -> None:
    v, f = quad()
    with pytest.raises(error, match=match):
        build(v, f)


# ---- render: images, channels, lights --------------------------------------------------------------
def test_images_of_other_sizes_and_channel_counts_render_per_material() -> None:
    v, f = quad()
    first, second = image(5, 7, 4, seed=1), image(9, 4, 4, seed=2)  # RGBA: rgba shows channels 0-2
    out = hard(
        sr.Mesh(v, f, sr.UVTexture([first, second], (quad_uv(), f), material=[0, 1])), outputs=("rgba", "face_id")
    )
    face = out.face_id[0]
    assert bool((face == 0).any() and (face == 1).any())
    for k, im in enumerate((first, second)):
        alone = hard(sr.Mesh(v, f, sr.UVTexture(im[..., :3], (quad_uv(), f))))
        np.testing.assert_array_equal(out.rgba[0, :, face == k].numpy(), alone.rgba[0, :, face == k].numpy())
    grey = image(5, 7, 1, seed=3)  # one channel: rgba shows it as grey
    torch.testing.assert_close(
        hard(sr.Mesh(v, f, sr.UVTexture(grey, (quad_uv(), f)))).rgba,
        hard(sr.Mesh(v, f, sr.UVTexture(grey.expand(-1, -1, 3), (quad_uv(), f)))).rgba,
        rtol=0,
        atol=0,
    )


def test_other_outputs_share_the_call_without_changing_the_colour() -> None:
    mesh = uv_quad()
    features = torch.rand(1, 4, 2, dtype=F64, generator=torch.Generator().manual_seed(9))
    together = hard(mesh, lights=LIGHTS, outputs=("rgba", "normals", "features", "depth"), features=features)
    torch.testing.assert_close(together.rgba, hard(mesh, lights=LIGHTS).rgba, rtol=0, atol=0)
    alone = hard(mesh, outputs=("normals", "features"), features=features)
    torch.testing.assert_close(together.normals, alone.normals, rtol=0, atol=0)
    torch.testing.assert_close(together.features, alone.features, rtol=0, atol=0)


def test_a_half_mesh_renders_in_float32_and_returns_its_dtype() -> None:
    v, f = quad()
    half = sr.Mesh(v.half(), f, sr.UVTexture(image().half(), (quad_uv().half(), f)))
    single = sr.Mesh(v.float(), f, sr.UVTexture(image().half().float(), (quad_uv().half().float(), f)))
    out = hard(half)
    assert out.rgba.dtype == torch.float16
    torch.testing.assert_close(out.rgba, hard(single).rgba.half(), rtol=0, atol=0)


def _constant_pair(colour: torch.Tensor) -> tuple[sr.Mesh, sr.Mesh]:
    """The same tilted quad with a 1×1 UV image of ``colour`` and with surface texels of ``colour``."""
    v, f = quad()
    v[2, 2] = -0.4  # bent along its diagonal: the two faces' normals differ, and the vertices'
    v = v @ torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.8, 0.6], [0.0, -0.6, 0.8]], dtype=F64)
    uv_mesh = sr.Mesh(v, f, sr.UVTexture(colour.reshape(1, 1, 3), quad_uv()[f]))
    return uv_mesh, sr.Mesh(v, f, colour.expand(2, 4, 3))


LIGHTS = [sr.DirectionalLighting(0.7, (1.0, 0.9, 0.8), (0.3, 0.5, -1.0)), sr.AmbientLighting(0.3)]


@backends
def test_flat_light_at_the_corners_equals_per_face_lighting_under_a_z_buffer(backend: str) -> None:
    uv_mesh, surface_mesh = _constant_pair(torch.tensor([0.9, 0.6, 0.3], dtype=F64))
    ours, theirs = hard(uv_mesh, lights=LIGHTS, backend=backend), hard(surface_mesh, lights=LIGHTS, backend=backend)
    torch.testing.assert_close(ours.rgba, theirs.rgba, rtol=0, atol=1e-12)
    assert not torch.allclose(ours.rgba, hard(uv_mesh).rgba)  # the light did something


@backends
def test_smooth_light_equals_smooth_shading_of_surface_textures_under_softmax(backend: str) -> None:
    uv_mesh, surface_mesh = _constant_pair(torch.tensor([0.9, 0.6, 0.3], dtype=F64))
    options = {"lights": LIGHTS, "smooth_shading": True, "sigma_val": 1e-3, "gamma_val": 1e-2, "backend": backend}
    ours = sr.render(uv_mesh, camera(), **options).rgba
    theirs = sr.render(surface_mesh, camera(), **options).rgba
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


def test_lights_none_is_the_texture_and_the_light_multiplies_it() -> None:
    mesh = uv_quad()
    unlit, lit = hard(mesh, outputs=("rgba", "face_id")), hard(mesh, lights=LIGHTS, outputs=("rgba", "face_id"))
    face = unlit.face_id[0]
    light = corner_light(mesh, LIGHTS)[0, :, 0]  # [F, 3], flat
    covered = face >= 0
    expected = unlit.rgba[0, :3][:, covered] * light[face[covered]].T
    torch.testing.assert_close(lit.rgba[0, :3][:, covered], expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(lit.rgba[0, :3][:, ~covered], unlit.rgba[0, :3][:, ~covered], rtol=0, atol=0)


def test_a_linear_image_shows_the_perspective_correct_u_also_where_the_near_plane_clips() -> None:
    # Red grows linearly with the column, so bilinear (clamp) reads u itself inside [½/W, 1 − ½/W].
    w = 16
    ramp = ((torch.arange(w, dtype=F64) + 0.5) / w)[None, :, None].expand(2, w, 3).clone()
    v = torch.tensor([[-1, -1, -2.4], [1, -1, 3.0], [1, 1, 3.0], [-1, 1, -2.4]], dtype=F64)  # x = -1 before near
    f = torch.tensor([[0, 2, 1], [0, 3, 2]])
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=F64)
    mesh = sr.Mesh(v, f, sr.UVTexture(ramp, (uv, f)))
    cam = camera(16, distance=2.5)
    out = sr.render(
        mesh, cam, aggr_func_rgb="hard", outputs=("rgba", "face_id"), texture_wrap="clamp", near=0.5, backend=BACKEND
    )
    # The ray (c − cx, ·, f)·s/f from (0, 0, −2.5) through pixel column c meets the quad's plane
    # z = 0.3 + 2.7x at camera depth s = 2.8 / (1 − 2.7·dx); there u = (x + 1)/2 with x = s·dx.
    K = cam.K[0].numpy()
    dx = (np.arange(16.0) - K[0, 2]) / K[0, 0]
    s = 2.8 / (1.0 - 2.7 * dx)
    u = np.broadcast_to((s * dx + 1.0) / 2.0, (16, 16))
    inside = (out.face_id[0].numpy() >= 0) & (u > 0.5 / w) & (u < 1 - 0.5 / w)
    assert inside.sum() > 50 and float(v[:, 2].min()) + 2.5 < 0.5  # corners before the near plane: clipped
    np.testing.assert_allclose(out.rgba[0, 0].numpy()[inside], u[inside], atol=1e-9)


# ---- gradients -------------------------------------------------------------------------------------------
@backends
@pytest.mark.parametrize("texture_filter", ["bilinear", "trilinear"])
def test_gradients_reach_the_images_the_uvs_and_the_vertices(backend: str, texture_filter: str) -> None:
    v, f = quad()
    vertices = v.clone().requires_grad_()
    img = image(16, 16).requires_grad_()
    uv = quad_uv().requires_grad_()
    mesh = sr.Mesh(vertices, f, sr.UVTexture(img, (uv, f)))
    out = sr.render(
        mesh, camera(), lights=LIGHTS, texture_filter=texture_filter, sigma_val=1e-3, gamma_val=1e-2, backend=backend
    )
    weights = torch.rand(out.rgba.shape, dtype=F64, generator=torch.Generator().manual_seed(3))
    (out.rgba * weights).sum().backward()
    for name, t in (("images", img), ("uv", uv), ("vertices", vertices)):
        assert t.grad is not None and bool(torch.isfinite(t.grad).all()) and float(t.grad.abs().sum()) > 0, name
    # The image enters linearly: a finite step along its gradient changes the loss by exactly that much.
    step = 1e-3 * img.grad
    with torch.no_grad():
        moved = sr.Mesh(v, f, sr.UVTexture(img + step, (uv, f)))
        again = sr.render(
            moved, camera(), lights=LIGHTS, texture_filter=texture_filter, sigma_val=1e-3, gamma_val=1e-2,
            backend=backend,
        )  # fmt: skip
        change = ((again.rgba - out.rgba) * weights).sum()
    torch.testing.assert_close(change, (step * img.grad).sum(), rtol=1e-9, atol=1e-12)


def test_the_uv_gradient_matches_a_finite_difference() -> None:
    v, f = quad()
    img = image(6, 6)

    def loss(uv: torch.Tensor) -> torch.Tensor:
        mesh = sr.Mesh(v, f, sr.UVTexture(img, (uv, f)))
        rgba = sr.render(mesh, camera(), sigma_val=1e-3, gamma_val=1e-2, backend=BACKEND).rgba
        return (rgba * torch.linspace(0, 1, rgba.numel(), dtype=F64).reshape(rgba.shape)).sum()

    uv = quad_uv().requires_grad_()
    loss(uv).backward()
    direction = torch.tensor([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2], [0.2, 0.1]], dtype=F64)
    eps = 1e-6
    with torch.no_grad():
        numeric = (loss(quad_uv() + eps * direction) - loss(quad_uv() - eps * direction)) / (2 * eps)
    torch.testing.assert_close((uv.grad * direction).sum(), numeric, rtol=1e-5, atol=1e-8)


# ---- the renderer modules ------------------------------------------------------------------------------
def test_the_renderer_modules_light_a_uv_mesh_as_surface_textures() -> None:
    uv_mesh, surface_mesh = _constant_pair(torch.tensor([0.9, 0.6, 0.3], dtype=F64))
    for module in (
        sr.SoftRenderer(16, camera_mode="look_at", backend=BACKEND, smooth_shading=True, clip=True, sigma_val=1e-3),
        sr.Renderer(16, camera_mode="look_at", backend=BACKEND),  # flat light, z-buffer, anti-aliased
    ):
        ours = module.render_mesh(uv_mesh)
        torch.testing.assert_close(ours, module.render_mesh(surface_mesh), rtol=0, atol=1e-12)
        torch.testing.assert_close(module(uv_mesh.vertices, uv_mesh.faces, uv_mesh.textures), ours, rtol=0, atol=0)
    renderer = sr.SoftRenderer(16, camera_mode="look_at", backend=BACKEND)
    assert renderer.render_mesh(uv_quad(), texture_filter="nearest").shape == (1, 4, 16, 16)
    with pytest.raises(ValueError, match="texture_filter: applies to UV"):
        renderer.render_mesh(surface_mesh, texture_filter="nearest")


# ---- converters --------------------------------------------------------------------------------------
def test_texels_from_the_uv_texture_approach_the_uv_render_as_r_grows() -> None:
    mesh = uv_quad()
    direct = hard(mesh).rgba
    errors = []
    for r in (2, 8, 32):
        texels = mesh.to_texture_type("surface", r)
        assert texels.texture_type == "surface" and texels.textures.shape == (1, 2, r * r, 3)
        errors.append(float((hard(texels).rgba - direct).abs().mean()))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02, errors


def test_texels_sample_the_texture_at_their_centres() -> None:
    _, f = quad()
    img = image()
    texels = sr.UVTexture(img, (quad_uv(), f)).to_surface(3, texture_filter="nearest")  # [1, 2, 9, 3]
    centres = sr.io.texel_barycentrics(3, dtype=F64)  # [9, 3]
    uv = centres @ quad_uv()[f[1]]  # face 1's texel centres, [9, 2]
    col = torch.floor(uv[:, 0] * 12).long()
    row = torch.floor((1 - uv[:, 1]) * 8).long()
    torch.testing.assert_close(texels[0, 1], img[row, col], rtol=0, atol=0)


def test_surface_texels_through_a_uv_atlas_come_back_exactly() -> None:
    v, f = quad()
    texels = torch.rand(2, 2, 16, 3, dtype=F64, generator=torch.Generator().manual_seed(4)).requires_grad_()
    mesh = sr.Mesh(v.expand(2, -1, -1), f, texels)
    as_uv = mesh.to_texture_type("uv")
    assert as_uv.texture_type == "uv" and as_uv.textures.num_materials == 2  # one atlas per item
    back = as_uv.to_texture_type("surface", 4)
    torch.testing.assert_close(back.textures, texels, rtol=0, atol=1e-12)
    back.textures.sum().backward()  # differentiable both ways
    torch.testing.assert_close(texels.grad, torch.ones_like(texels), rtol=0, atol=1e-12)


def test_vertex_colours_convert_to_surface_and_uv() -> None:
    v, f = quad()
    colours = torch.rand(4, 3, dtype=F64)
    mesh = sr.Mesh(v, f, colours, texture_type="vertex")
    surface = mesh.to_texture_type("surface", 2)
    torch.testing.assert_close(surface.textures[0], sr.io.surface_textures_from_vertex_colors(f, colours, 2))
    torch.testing.assert_close(mesh.to_texture_type("uv", 2).to_texture_type("surface", 2).textures, surface.textures)


# ---- batches -------------------------------------------------------------------------------------------
@backends
def test_a_batch_of_two_renders_each_item_as_alone(backend: str) -> None:
    v, f = quad()
    images = [image(seed=5), image(4, 4, seed=6)]
    uvs = torch.stack([quad_uv(), quad_uv().flip(1)])  # item 1 reads the texture transposed
    texture = sr.UVTexture(images, (uvs, f), material=torch.tensor([[0, 0], [1, 1]]))
    batch = sr.Mesh(torch.stack([v, v * 0.8]), f, texture)
    out = hard(batch, lights=LIGHTS, backend=backend)
    for b, (scale, im) in enumerate(zip((1.0, 0.8), images, strict=True)):
        alone = sr.Mesh(v * scale, f, sr.UVTexture(im, (uvs[b], f)))
        torch.testing.assert_close(out.rgba[b], hard(alone, lights=LIGHTS, backend=backend).rgba[0], rtol=0, atol=1e-12)


def test_a_mesh_of_one_item_renders_for_a_batch_of_cameras() -> None:
    mesh = uv_quad()
    one = camera()
    two = Pinhole(one.K.expand(2, -1, -1), one.R.expand(2, -1, -1), torch.stack([one.t[0], one.t[0] * 1.1]))
    out = sr.render(mesh, two, aggr_func_rgb="hard", image_size=16, backend=BACKEND)
    torch.testing.assert_close(out.rgba[0], hard(mesh).rgba[0], rtol=0, atol=1e-12)


def test_fill_back_adds_the_reversed_faces_with_their_uvs() -> None:
    mesh = uv_quad()
    mesh.fill_back_()
    uv = mesh.textures.face_uv[0]
    assert mesh.num_faces == 4 and mesh.textures.num_faces == 4
    torch.testing.assert_close(uv[2:], uv[:2].flip(1), rtol=0, atol=0)


# ---- files and trimesh ---------------------------------------------------------------------------------
def _two_material_mesh() -> sr.Mesh:
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0]], dtype=torch.float32)
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    uv_points = torch.tensor([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9], [0.5, 0.2]])
    uv_faces = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    images = [image(6, 10, seed=7).float(), image(5, 3, seed=8).float()]
    return sr.Mesh(v, f, sr.UVTexture(images, (uv_points, uv_faces), material=[0, 1, 0]))


def _assert_same_texture(ours: sr.UVTexture, theirs: sr.UVTexture, image_atol: float) -> None:
    assert len(ours.images) == len(theirs.images)
    for a, b in zip(ours.images, theirs.images, strict=True):
        torch.testing.assert_close(a, b.to(a.dtype), rtol=0, atol=image_atol)
    torch.testing.assert_close(ours.face_uv, theirs.face_uv.to(ours.face_uv.dtype), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.material.numpy(), theirs.material.numpy())


def test_obj_write_and_read_keep_uvs_images_and_materials(tmp_path) -> None:
    mesh = _two_material_mesh()
    mesh.save_obj(tmp_path / "m.obj", save_texture=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mtl", "m.obj", "m_0.png", "m_1.png"]
    loaded = sr.Mesh.from_file(tmp_path / "m.obj", texture_type="uv")
    quantised = sr.UVTexture([torch.round(im * 255) / 255 for im in mesh.textures.images],
                             (mesh.textures.uv_vertices, mesh.textures.uv_faces), mesh.textures.material)  # fmt: skip
    _assert_same_texture(quantised, loaded.textures, 1e-6)
    torch.testing.assert_close(loaded.textures.uv_vertices, mesh.textures.uv_vertices, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.textures.uv_faces.numpy(), mesh.textures.uv_faces.numpy())
    *_, texture = load_obj(tmp_path / "m.obj", load_texture=True, texture_type="uv")
    assert isinstance(texture, sr.UVTexture) and texture.num_materials == 2
    via_from_obj = sr.Mesh.from_obj(tmp_path / "m.obj", load_texture=True, texture_type="uv")
    _assert_same_texture(via_from_obj.textures, loaded.textures, 0)


def test_obj_faces_without_vt_or_image_read_their_kd_colour(tmp_path) -> None:
    (tmp_path / "m.mtl").write_text("newmtl red\nKd 1 0 0\nnewmtl pic\nmap_Kd t.png\n")
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "t.png", np.full((2, 2, 3), 128, np.uint8))
    (tmp_path / "m.obj").write_text(
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 1 1\n"
        "usemtl red\nf 1/1 2/2 3/3\nusemtl pic\nf 1/1 2/2 3/3\nf 1 2 3\nusemtl\nf 1 2 3\n"
    )
    texture = sr.Mesh.from_file(tmp_path / "m.obj", texture_type="uv").textures
    colours = np.stack([texture.images[int(m)].reshape(-1, 3)[0].numpy() for m in texture.material[0]])
    np.testing.assert_allclose(colours, [[1, 0, 0], [128 / 255] * 3, [1, 1, 1], [1, 1, 1]], rtol=1e-6)
    assert texture.images[texture.material[0, 1]].shape == (2, 2, 3)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nvt 0 x\nf 1/1 2/1 3/1\n", r"m\.obj:5: bad number in vt"),
        ("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nvt 0 0\nf 1/1 2/1 3/2\n", r"m\.obj:6: texture coordinate index 2"),
    ],
)
def test_malformed_obj_errors_name_the_file_and_line(tmp_path, text: str, match: str) -> None:
    (tmp_path / "m.mtl").write_text("newmtl a\nKd 1 1 1\n")
    (tmp_path / "m.obj").write_text(text)
    with pytest.raises(ValueError, match=match):
        sr.Mesh.from_file(tmp_path / "m.obj", texture_type="uv")


def test_an_obj_with_vertex_colours_only_is_not_read_as_uv(tmp_path) -> None:
    (tmp_path / "m.obj").write_text("v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 1 1 0 0 0 1\nf 1 2 3\n")
    with pytest.raises(ValueError, match="per-vertex colours and no material library"):
        sr.Mesh.from_file(tmp_path / "m.obj", texture_type="uv")


trimesh = pytest.importorskip("trimesh")


def test_trimesh_round_trip_keeps_the_texture() -> None:
    mesh = uv_quad()
    tm = mesh.to_trimesh()
    assert isinstance(tm.visual, trimesh.visual.TextureVisuals) and len(tm.vertices) == 4
    back = sr.Mesh.from_trimesh(tm, texture_type="uv", dtype=F64)
    quantised = torch.round(mesh.textures.images[0] * 255) / 255
    torch.testing.assert_close(back.textures.images[0], quantised, rtol=0, atol=1e-7)
    torch.testing.assert_close(back.textures.face_uv, mesh.textures.face_uv, rtol=0, atol=0)
    torch.testing.assert_close(back.vertices, mesh.vertices, rtol=0, atol=0)


def test_trimesh_packs_several_images_into_one_that_reads_the_same_texels() -> None:
    mesh = _two_material_mesh()
    tm = mesh.to_trimesh()
    assert len(tm.vertices) == 7  # vertices 0 and 2 lie on faces of both images: one copy per image
    back = sr.Mesh.from_trimesh(tm, texture_type="uv")
    ours = mesh.textures.to_surface(3, texture_filter="nearest")
    theirs = back.textures.to_surface(3, texture_filter="nearest")
    torch.testing.assert_close(theirs, torch.round(ours * 255) / 255, rtol=0, atol=1e-6)


def test_glb_keeps_the_texture_and_its_v_orientation(tmp_path) -> None:
    corners = torch.zeros(2, 2, 3)
    corners[1, 0] = torch.tensor([1.0, 0.0, 0.0])  # bottom-left texel red (row 1 is the bottom row)
    v, f = quad()
    mesh = sr.Mesh(v.float(), f, sr.UVTexture(corners, torch.full((2, 3, 2), 0.25)))  # u = v = ¼: bottom left
    assert mesh.textures.to_surface(1, texture_filter="nearest")[0, 0, 0].tolist() == [1.0, 0.0, 0.0]
    tm = mesh.to_trimesh()
    assert trimesh.visual.color.uv_to_color(np.array([[0.25, 0.25]]), tm.visual.material.image)[0, :3].tolist() == [
        255, 0, 0,
    ]  # fmt: skip
    tm.export(tmp_path / "m.glb")
    loaded = sr.Mesh.from_file(tmp_path / "m.glb", texture_type="uv")
    np.testing.assert_array_equal(loaded.textures.images[0].numpy(), corners.numpy())
    torch.testing.assert_close(loaded.textures.face_uv, torch.full((1, 2, 3, 2), 0.25), rtol=0, atol=1e-7)


def test_a_file_with_vertex_colours_is_not_read_as_uv(tmp_path) -> None:
    v, f = quad()
    tm = trimesh.Trimesh(v.numpy(), f.numpy(), vertex_colors=np.full((4, 4), 200, np.uint8), process=False)
    tm.export(tmp_path / "m.ply")
    with pytest.raises(ValueError, match=r"m\.ply: has vertex colours, not a UV texture"):
        sr.Mesh.from_file(tmp_path / "m.ply", texture_type="uv")
