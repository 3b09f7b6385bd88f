"""softras.render: every output's shape, dtype and meaning; one rasterization with only what is
asked; equality with SoftRenderer; float64 gradcheck of the soft outputs; errors."""

from __future__ import annotations

import math

import pytest
import torch

import softras
import softras.rendering as rendering
from softras.cameras import LookAtCamera, Pinhole, rodrigues
from softras.raster import RasterResult, available_backends

F64 = torch.float64
SIZE = (20, 28)  # (H, W), non-square on purpose


def sphere_mesh(
    level: int = 1, texture_type: str = "surface", dtype: torch.dtype = F64, batch: int = 1
) -> softras.Mesh:
    """A unit icosphere with random colours (surface R = 2 texels or vertex colours)."""
    v, f = softras.shapes.icosphere(level)
    v = v.to(dtype).expand(batch, -1, -1).clone()
    g = torch.Generator().manual_seed(1)
    shape = (batch, f.shape[0], 4, 3) if texture_type == "surface" else (batch, v.shape[1], 3)
    tex = torch.rand(*shape, generator=g, dtype=F64).to(dtype)  # the same colours in every dtype
    return softras.Mesh(v, f, tex, texture_type=texture_type)


def pinhole(size: tuple[int, int] = SIZE, dtype: torch.dtype = F64) -> Pinhole:
    """A camera 3.2 units from the origin, slightly rotated, focal length ~1.1 image heights."""
    h, w = size
    f, cx, cy = 1.1 * h, (w - 1) / 2 + 0.3, (h - 1) / 2 - 0.2
    K = torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], dtype=dtype)
    R = rodrigues(torch.tensor([0.2, -0.4, 0.1], dtype=dtype))
    t = torch.tensor([0.05, -0.1, 3.2], dtype=dtype)
    return Pinhole(K, R, t, image_size=size)


def rotation(camera: Pinhole) -> torch.Tensor:
    return camera.R[0]


# ---- rgba: the same image as SoftRenderer --------------------------------------------------
@pytest.mark.parametrize("texture_type", ["surface", "vertex"])
@pytest.mark.parametrize("anti_aliasing", [False, True])
def test_rgba_equals_soft_renderer(texture_type: str, anti_aliasing: bool) -> None:
    mesh = sphere_mesh(texture_type=texture_type)
    eye = [0.4, 0.9, -2.6]
    options = {"sigma_val": 1e-4, "gamma_val": 1e-3, "background_color": (0.1, 0.2, 0.3)}
    renderer = softras.SoftRenderer(
        image_size=SIZE, camera_mode="look_at", eye=eye, anti_aliasing=anti_aliasing, backend="reference", **options
    )
    expected = renderer(mesh.vertices, mesh.faces, mesh.textures, texture_type=texture_type)
    out = softras.render(
        mesh,
        LookAtCamera(eye=eye, image_size=SIZE),
        lights=renderer.lighting,
        backend="reference",
        anti_aliasing=anti_aliasing,
        perspective_correct=False,  # the original's screen-space weights, as SoftRenderer's
        **options,
    )
    assert out.rgba.shape == (1, 4, *SIZE)
    assert torch.equal(out.rgba, expected)
    assert torch.equal(out.alpha, expected[:, 3:])


# ---- perspective-correct vertex attributes by default ---------------------------------------
@pytest.mark.parametrize("backend", available_backends())
def test_vertex_colours_are_perspective_correct_by_default(backend: str) -> None:
    """Under hard RGB and no lights, a pixel's vertex colour is Σ b_k·colour_k with b_k the
    z-buffer's perspective-correct barycentrics (the 3-D point's, an oracle independent of the
    colour path); ``perspective_correct=False`` gives the original's screen-space weights."""
    mesh, camera = sphere_mesh(texture_type="vertex"), pinhole()
    asked = ("rgba", "face_id", "barycentrics")
    out = softras.render(mesh, camera, outputs=asked, lights=None, aggr_func_rgb="hard", backend=backend)
    fid = out.face_id[0]
    covered = fid >= 0
    corners = mesh.textures[0][mesh.faces[0][fid[covered]]]  # [N, 3, 3] corner colours
    b = out.barycentrics[0].permute(1, 2, 0)[covered]
    expected = (b[:, :, None] * corners).sum(1)
    torch.testing.assert_close(out.rgba[0, :3].permute(1, 2, 0)[covered], expected, rtol=0, atol=1e-10)
    hard = {"lights": None, "aggr_func_rgb": "hard", "backend": backend}
    assert torch.equal(softras.render(mesh, camera, perspective_correct=True, **hard).rgba, out.rgba)
    screen = softras.render(mesh, camera, perspective_correct=False, **hard)
    assert float((screen.rgba - out.rgba).abs().max()) > 1e-4  # the sphere's faces are not parallel to the image


@pytest.mark.skipif("cpu" not in available_backends(), reason="numba not installed")
def test_rgba_on_cpu_backend_matches_reference() -> None:
    mesh, camera = sphere_mesh(), pinhole()
    ref = softras.render(mesh, camera, lights=softras.Lighting(), backend="reference", sigma_val=1e-4)
    cpu = softras.render(mesh, camera, lights=softras.Lighting(), backend="cpu", sigma_val=1e-4)
    torch.testing.assert_close(cpu.rgba, ref.rgba, rtol=0, atol=1e-10)


def test_lights_none_renders_colours_unlit_and_lists_add_up() -> None:
    mesh, camera = sphere_mesh(texture_type="vertex"), pinhole()
    unlit = softras.render(mesh, camera, **_hard())
    # unlit colour is the C = 3 case of features: the vertex colours, interpolated
    as_features = softras.render(mesh, camera, outputs=("features",), features=mesh.textures, **_hard())
    assert torch.equal(unlit.rgba[:, :3], as_features.features)
    white = softras.Mesh(mesh.vertices, mesh.faces, torch.ones_like(mesh.textures), texture_type="vertex")
    ambient_only = softras.render(white, camera, lights=softras.AmbientLighting(0.7, (1.0, 0.5, 0.25)),
                                  aggr_func_rgb="hard", dist_func="hard")  # fmt: skip
    inside = unlit.alpha[:, 0] > 0
    assert inside.sum() > 50
    expected = torch.tensor([0.7, 0.35, 0.175], dtype=F64)
    torch.testing.assert_close(ambient_only.rgba[0, :3][:, inside[0]].T, expected.expand(int(inside.sum()), 3))
    lighting = softras.Lighting(intensity_ambient=0.3, intensity_directionals=0.6, directions=(0.2, 1.0, -0.5))
    terms = [softras.AmbientLighting(0.3), softras.DirectionalLighting(0.6, light_direction=(0.2, 1.0, -0.5))]
    a = softras.render(mesh, camera, lights=lighting)
    b = softras.render(mesh, camera, lights=terms)
    assert torch.equal(a.rgba, b.rgba)
    assert not torch.allclose(a.rgba, unlit.rgba)


# ---- one rasterization, only what is asked ----------------------------------------------------
class _Recorder:
    """Stands in for rasterize_channels: records its arguments, returns well-shaped zeros."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, face_vertices, settings, *, surface=None, vertex=None, background=None, backend=None, uv=None):
        self.calls.append(
            {"settings": settings, "surface": surface, "vertex": vertex, "background": background, "uv": uv}
        )
        b, h, w = face_vertices.shape[0], settings.image_height, settings.image_width
        c = sum(t.shape[-1] for t in (surface, vertex) if t is not None) + (0 if uv is None else uv.channels)
        z = face_vertices.new_zeros
        zb = settings.with_zbuffer
        return RasterResult(
            channels=z(b, c, h, w),
            alpha=z(b, 1, h, w),
            depth=z(b, 1, h, w) if settings.with_depth else None,
            face_id=torch.full((b, h, w), -1) if zb else None,
            barycentrics=z(b, 3, h, w) if zb else None,
            hard_depth=z(b, 1, h, w) if zb else None,
        )


@pytest.mark.parametrize(
    ("texture_type", "outputs", "surface_c", "vertex_c", "depth", "zbuffer"),
    [
        ("surface", ("rgba",), 3, 0, False, False),
        ("vertex", ("rgba",), 0, 3, False, False),
        ("surface", ("alpha",), 0, 0, False, False),
        ("surface", ("depth",), 0, 0, True, False),
        ("surface", ("face_id",), 0, 0, False, True),
        ("surface", ("barycentrics", "hard_depth"), 0, 0, False, True),
        ("surface", ("normals",), 0, 3, False, False),
        ("surface", ("features",), 0, 5, False, False),
        ("vertex", ("rgba", "normals", "features", "depth", "face_id"), 0, 11, True, True),
        ("surface", ("rgba", "normals", "features"), 3, 8, False, False),
    ],
)
def test_one_call_with_only_the_channels_asked(
    monkeypatch: pytest.MonkeyPatch, texture_type, outputs, surface_c, vertex_c, depth, zbuffer
) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(rendering, "rasterize_channels", recorder)
    mesh = sphere_mesh(texture_type=texture_type)
    feats = torch.rand(mesh.num_vertices, 5, dtype=F64)
    out = softras.render(mesh, pinhole(), outputs=outputs, features=feats, background_color=(0.5, 0.5, 0.5))
    assert len(recorder.calls) == 1
    call = recorder.calls[0]
    s = call["settings"]
    assert (s.with_depth, s.with_zbuffer, s.texture_type) == (depth, zbuffer, texture_type)
    assert (call["surface"] is None) == (surface_c == 0)
    assert (call["vertex"] is None) == (vertex_c == 0)
    if surface_c:
        assert call["surface"].shape == (1, mesh.num_faces, 4, surface_c)
    if vertex_c:
        assert call["vertex"].shape == (1, mesh.num_faces, 3, vertex_c)
    rgba_bg = (0.5,) * 3 if "rgba" in outputs else ()
    assert call["background"] == rgba_bg + (0.0,) * (surface_c + vertex_c - len(rgba_bg))
    for name in rendering.OUTPUTS:
        assert (getattr(out, name) is not None) == (name in outputs or name == "alpha"), name


# ---- every output on the reference backend ------------------------------------------------------
ALL = ("rgba", "alpha", "depth", "hard_depth", "normals", "features", "face_id", "barycentrics")


def test_every_output_shape_dtype_and_background() -> None:
    mesh, camera = sphere_mesh(batch=2), pinhole()
    feats = torch.rand(2, mesh.num_vertices, 4, dtype=F64)
    out = softras.render(mesh, camera, outputs=ALL, features=feats, backend="reference")
    h, w = SIZE
    shapes = {"rgba": 4, "alpha": 1, "depth": 1, "hard_depth": 1, "normals": 3, "features": 4, "barycentrics": 3}
    for name, c in shapes.items():
        t = getattr(out, name)
        assert t.shape == (2, c, h, w) and t.dtype == F64, name
    assert out.face_id.shape == (2, h, w) and out.face_id.dtype == torch.int64
    empty = out.face_id == -1
    covered = ~empty
    assert 0.2 < covered.double().mean() < 0.9  # the sphere is inside the image, with background around
    assert int(out.face_id.max()) < mesh.num_faces and int(out.face_id.min()) == -1
    assert torch.equal(out.rgba[:, 3:], out.alpha)
    bary = out.barycentrics.permute(0, 2, 3, 1)
    torch.testing.assert_close(bary[covered].sum(-1), torch.ones(int(covered.sum()), dtype=F64))
    assert bool((bary[covered] >= -1e-12).all())
    assert bool((bary[empty] == 0).all()) and bool((out.hard_depth[:, 0][empty] == 0).all())
    assert bool((out.hard_depth[:, 0][covered] > 2.0).all())  # the sphere is 3.2 − 1 away at least
    far_from_faces = out.alpha[:, 0] < 1e-12
    for name in ("depth", "normals", "features"):
        assert bool((getattr(out, name).permute(0, 2, 3, 1)[far_from_faces] == 0).all()), name


def _hard(**extra):
    return {"aggr_func_rgb": "hard", "dist_func": "hard", "backend": "reference", **extra}


def test_depth_with_hard_aggregation_is_the_zbuffer_depth() -> None:
    out = softras.render(sphere_mesh(), pinhole(), outputs=("depth", "hard_depth"), **_hard())
    assert torch.equal(out.depth, out.hard_depth)


def test_hard_depth_is_the_camera_depth_of_the_barycentric_point() -> None:
    mesh, camera = sphere_mesh(), pinhole()
    out = softras.render(mesh, camera, outputs=("face_id", "barycentrics", "hard_depth"), backend="reference")
    covered = out.face_id[0] >= 0
    corners = camera.world_to_camera(mesh.vertices)[0][mesh.faces[0][out.face_id[0][covered]]]  # [N, 3, 3]
    point = (out.barycentrics[0].permute(1, 2, 0)[covered][:, :, None] * corners).sum(1)
    torch.testing.assert_close(point[:, 2], out.hard_depth[0, 0][covered], rtol=1e-12, atol=0)
    # and the point projects to its pixel centre
    rows, cols = torch.nonzero(covered, as_tuple=True)
    k = camera.K[0]
    u = (k[0, 0] * point[:, 0] + k[0, 1] * point[:, 1]) / point[:, 2] + k[0, 2]
    v = k[1, 1] * point[:, 1] / point[:, 2] + k[1, 2]
    torch.testing.assert_close(u, cols.to(F64), rtol=0, atol=1e-9)
    torch.testing.assert_close(v, rows.to(F64), rtol=0, atol=1e-9)


@pytest.mark.parametrize("frame", ["world", "camera"])
def test_normals_are_interpolated_vertex_or_constant_face_normals(frame: str) -> None:
    mesh, camera = sphere_mesh(), pinhole()
    asked = ("normals", "face_id", "barycentrics")
    vert = softras.render(mesh, camera, outputs=asked, normals="vertex", normals_frame=frame, **_hard())
    face = softras.render(mesh, camera, outputs=asked, normals="face", normals_frame=frame, **_hard())
    fid = vert.face_id[0]
    covered = fid >= 0
    r = rotation(camera) if frame == "camera" else torch.eye(3, dtype=F64)
    face_n = mesh.surface_normals[0] @ r.T  # [F, 3]
    torch.testing.assert_close(face.normals[0].permute(1, 2, 0)[covered], face_n[fid[covered]], rtol=0, atol=1e-12)
    # vertex normals use the perspective-correct barycentrics b_k (the z-buffer's) by default
    vertex_n = (mesh.vertex_normals[0] @ r.T)[mesh.faces[0][fid[covered]]]  # [N, 3, 3]
    b = vert.barycentrics[0].permute(1, 2, 0)[covered]
    expected = (b[:, :, None] * vertex_n).sum(1)
    torch.testing.assert_close(vert.normals[0].permute(1, 2, 0)[covered], expected, rtol=0, atol=1e-9)
    # and with perspective_correct=False the screen-space barycentrics c_k ∝ b_k z_k
    screen = softras.render(mesh, camera, outputs=("normals",), normals="vertex", normals_frame=frame,
                            perspective_correct=False, **_hard())  # fmt: skip
    z = camera.world_to_camera(mesh.vertices)[0, :, 2][mesh.faces[0][fid[covered]]]  # [N, 3]
    c = b * z
    c = c / c.sum(-1, keepdim=True)
    expected = (c[:, :, None] * vertex_n).sum(1)
    torch.testing.assert_close(screen.normals[0].permute(1, 2, 0)[covered], expected, rtol=0, atol=1e-9)
    # a point on the visible side of the sphere faces the camera: n_z < 0 in the camera frame
    if frame == "camera":
        assert bool((face.normals[0, 2][covered] < 0).float().mean() > 0.99)


def test_camera_frame_normals_are_the_rotated_world_normals() -> None:
    mesh, camera = sphere_mesh(), pinhole()
    world = softras.render(mesh, camera, outputs=("normals",), normals_frame="world", backend="reference")
    cam = softras.render(mesh, camera, outputs=("normals",), normals_frame="camera", backend="reference")
    rotated = torch.einsum("ij,bjhw->bihw", rotation(camera), world.normals)
    torch.testing.assert_close(cam.normals, rotated, rtol=0, atol=1e-12)


def test_features_go_through_the_same_aggregation_as_normals() -> None:
    mesh, camera = sphere_mesh(batch=2), pinhole()
    mesh.vertices[1] *= 0.8
    out = softras.render(
        mesh, camera, outputs=("normals", "features"), features=mesh.vertex_normals, normals_frame="world",
        backend="reference",
    )  # fmt: skip
    assert torch.equal(out.features, out.normals)
    feats = torch.rand(mesh.num_vertices, 6, dtype=F64)
    shared = softras.render(mesh, camera, outputs=("features",), features=feats, backend="reference")
    batched = softras.render(mesh, camera, outputs=("features",), features=feats.expand(2, -1, -1), backend="reference")
    assert shared.features.shape == (2, 6, *SIZE)
    assert torch.equal(shared.features, batched.features)


def _two_cameras(kind: str) -> tuple[object, list[object]]:
    """A batch of 2 cameras and the same 2 cameras one by one."""
    if kind == "pinhole":
        camera = pinhole()
        t = torch.stack([camera.t[0], camera.t[0] + torch.tensor([0.3, -0.2, 0.5], dtype=F64)])
        return camera.replace(t=t), [camera.replace(t=t[i]) for i in range(2)]
    eyes = torch.tensor([[0.0, 0.0, -3.0], [1.5, 1.0, -2.0]], dtype=F64)
    return LookAtCamera(eye=eyes, image_size=SIZE), [LookAtCamera(eye=e, image_size=SIZE) for e in eyes]


@pytest.mark.parametrize("kind", ["pinhole", "look_at"])
def test_a_camera_batch_renders_a_single_mesh_many_times(kind: str) -> None:
    mesh = sphere_mesh()
    batch, singles = _two_cameras(kind)
    both = softras.render(mesh, batch, outputs=("rgba", "depth"), backend="reference")
    assert both.rgba.shape == (2, 4, *SIZE)
    for i, camera in enumerate(singles):
        one = softras.render(mesh, camera, outputs=("rgba", "depth"), backend="reference")
        torch.testing.assert_close(both.rgba[i : i + 1], one.rgba, rtol=0, atol=1e-12)
        torch.testing.assert_close(both.depth[i : i + 1], one.depth, rtol=0, atol=1e-12)


def test_image_size_option_and_anti_aliasing_pools_a_render_at_twice_the_size() -> None:
    mesh = sphere_mesh()
    camera = LookAtCamera(eye=[0.0, 0.5, -3.0])  # no image size of its own
    asked = ("rgba", "depth", "normals")
    out = softras.render(mesh, camera, outputs=asked, image_size=(12, 16), anti_aliasing=True, backend="reference")
    big = softras.render(mesh, camera, outputs=asked, image_size=(24, 32), backend="reference")
    for name in (*asked, "alpha"):
        expected = torch.nn.functional.avg_pool2d(getattr(big, name), kernel_size=2, stride=2)
        assert getattr(out, name).shape[-2:] == (12, 16)
        assert torch.equal(getattr(out, name), expected), name


# ---- gradients ------------------------------------------------------------------------------------
def _tiny() -> tuple[softras.Mesh, Pinhole]:
    v, f = softras.shapes.icosphere(0)
    mesh = softras.Mesh(v.to(F64) * 0.9, f, texture_type="vertex")
    return mesh, pinhole(size=(6, 7))


SMOOTH = {"sigma_val": 2e-2, "gamma_val": 0.3, "backend": "reference", "dist_eps": 1e-8}


@pytest.mark.parametrize(
    ("output", "kwargs"),
    [
        ("depth", {}),
        ("normals", {"normals": "vertex", "normals_frame": "camera"}),
        ("normals", {"normals": "face", "normals_frame": "world"}),
        # a light direction no vertex normal is orthogonal to (max(0, n·d) has a kink at 0)
        ("rgba", {"lights": softras.Lighting(directions=(0.3, 1.0, -0.4))}),
    ],
)
def test_gradcheck_soft_outputs_wrt_vertices(output: str, kwargs: dict) -> None:
    mesh, camera = _tiny()

    def fn(vertices: torch.Tensor) -> torch.Tensor:
        m = mesh.replace(vertices=vertices)
        return getattr(softras.render(m, camera, outputs=(output,), **kwargs, **SMOOTH), output)

    verts = mesh.vertices.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (verts,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_features_wrt_features_and_vertices() -> None:
    mesh, camera = _tiny()
    feats = torch.rand(mesh.num_vertices, 2, dtype=F64, generator=torch.Generator().manual_seed(4))

    def fn(vertices: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        m = mesh.replace(vertices=vertices)
        return softras.render(m, camera, outputs=("features",), features=features, **SMOOTH).features

    args = (mesh.vertices.clone().requires_grad_(True), feats.requires_grad_(True))
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_hard_outputs_carry_no_gradient() -> None:
    mesh, camera = _tiny()
    verts = mesh.vertices.clone().requires_grad_(True)
    out = softras.render(mesh.replace(vertices=verts), camera, outputs=("hard_depth", "barycentrics", "depth"),
                         backend="reference")  # fmt: skip
    assert not out.hard_depth.requires_grad and not out.barycentrics.requires_grad
    assert out.depth.requires_grad


# ---- errors ----------------------------------------------------------------------------------------
def test_errors_name_the_argument() -> None:
    mesh, camera = sphere_mesh(), pinhole()
    with pytest.raises(ValueError, match=r"outputs: unknown output 'colour'.*rgba, alpha, depth"):
        softras.render(mesh, camera, outputs=("rgba", "colour"))
    with pytest.raises(TypeError, match="outputs"):
        softras.render(mesh, camera, outputs=())
    with pytest.raises(ValueError, match="features: outputs asks for 'features'"):
        softras.render(mesh, camera, outputs=("features",))
    with pytest.raises(ValueError, match=r"features: expected shape \[1, 42, C\]"):
        softras.render(mesh, camera, outputs=("features",), features=torch.rand(41, 2, dtype=F64))
    with pytest.raises(TypeError, match="unknown option 'sigma'; did you mean 'sigma_val'"):
        softras.render(mesh, camera, sigma=1e-4)
    with pytest.raises(TypeError, match="unknown option 'bogus'"):
        softras.render(mesh, camera, bogus=1)
    with pytest.raises(TypeError, match="'with_depth' is set by render itself"):
        softras.render(mesh, camera, with_depth=True)
    with pytest.raises(ValueError, match="image_size: the camera"):
        softras.render(mesh, LookAtCamera())
    with pytest.raises(TypeError, match="camera: expected a camera with a to_screen"):
        softras.render(mesh, object(), image_size=8)
    with pytest.raises(TypeError, match=r"mesh: expected a softras\.Mesh"):
        softras.render(mesh.vertices, camera)
    with pytest.raises(ValueError, match="normals: expected one of"):
        softras.render(mesh, camera, outputs=("normals",), normals="corner")
    with pytest.raises(ValueError, match="normals_frame"):
        softras.render(mesh, camera, outputs=("normals",), normals_frame="screen")
    with pytest.raises(TypeError, match=r"lights: expected None, a softras\.Lighting"):
        softras.render(mesh, camera, lights="sun")
    with pytest.raises(ValueError, match="anti_aliasing: cannot average the z-buffer outputs"):
        softras.render(mesh, camera, outputs=("face_id",), anti_aliasing=True)
    with pytest.raises(ValueError, match="sigma_val"):
        softras.render(mesh, camera, sigma_val=-1.0)


def test_render_output_is_frozen_and_lists_what_is_set() -> None:
    out = softras.render(sphere_mesh(), pinhole(), outputs=("rgba",))
    assert set(out.as_dict()) == {"rgba", "alpha"}
    with pytest.raises(AttributeError):
        out.rgba = None  # type: ignore[misc]
    assert math.isclose(float(out.alpha.max()), 1.0, abs_tol=1e-6)


def test_float32_meshes_give_float32_outputs() -> None:
    mesh = sphere_mesh(dtype=torch.float32)
    out = softras.render(mesh, pinhole(dtype=torch.float32), outputs=ALL, features=mesh.vertices, backend="reference")
    for name, t in out.as_dict().items():
        assert t.dtype == (torch.int64 if name == "face_id" else torch.float32), name
    ref = softras.render(sphere_mesh(), pinhole(), outputs=("rgba", "depth"), backend="reference")
    torch.testing.assert_close(out.rgba, ref.rgba.float(), rtol=0, atol=1e-4)
    torch.testing.assert_close(out.depth, ref.depth.float(), rtol=1e-4, atol=1e-4)
