"""Half-precision meshes through the whole render pipeline (softras._precision, rendering.compute_mesh).

A float16 / bfloat16 mesh is lit, transformed (look-at, or a Pinhole with K, R, t and
distortion), clipped and rasterized in float32; the outputs come back in the mesh's dtype, so a
half render is the float32 render of the same (half-rounded) mesh, rounded. Gradients reach the
half leaf tensors in their dtype.

How far off the old behaviour was (the camera transform computed in the half dtype, then the
float32 rasterizer; :func:`_old_alpha` rebuilds it by hand): on this module's sphere at 64² with
σ = 1e-5, its silhouette differed from the float32 one by up to 0.74 (look-at) and 0.91
(Pinhole) in alpha for bfloat16, 0.15 and 0.16 for float16, where the bound below is 1e-2; its
screen vertices were off by up to 0.18 / 0.45 pixels (bfloat16, look-at / Pinhole; 0.7 / 1.8 at
256²). The new pipeline differs by the rounding of alpha to the half dtype only (≤ 2e-3).
"""

from __future__ import annotations

import pytest
import torch

import softras as sr
import softras.functional as srf
from softras import shapes
from softras.cameras import Pinhole, from_angles, rodrigues
from softras.raster import RasterSettings, rasterize_channels
from softras.rendering import compute_mesh

HALF = (torch.float16, torch.bfloat16)
BACKENDS = ("reference", "cpu")
S = 64
SIGMA = 1e-5
BOUND = 1e-2  # max |alpha(half) − alpha(float32)|


def _look_at() -> sr.cameras.LookAtCamera:
    return from_angles(2.732, 20.0, 30.0)


def _pinhole(t: torch.Tensor | None = None) -> Pinhole:
    """A Pinhole with an off-centre principal point, a rotation and a mild lens distortion."""
    K = torch.tensor([[1.2 * S, 0, S / 2 - 0.3], [0, 1.2 * S, S / 2 + 0.2], [0, 0, 1]], dtype=torch.float64)
    R = rodrigues(torch.tensor([[0.3, -0.5, 0.2]], dtype=torch.float64))[0]
    t = torch.tensor([0.05, -0.1, 2.6], dtype=torch.float64) if t is None else t
    dist = torch.tensor([-0.05, 0.01, 1e-3, -1e-3, 0.0], dtype=torch.float64)
    return Pinhole(K, R, t, dist_coeffs=dist, image_size=(S, S))


CAMERAS = {"look_at": _look_at, "pinhole": _pinhole}


def _mesh(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Leaf vertices [1, 162, 3] and per-face colours [1, 320, 1, 3] in ``dtype``, faces [1, 320, 3]."""
    v, f = shapes.icosphere(2)
    colours = torch.rand(1, f.shape[0], 1, 3, generator=torch.Generator().manual_seed(0))
    return (0.8 * v[None]).to(dtype).requires_grad_(), f[None], colours.to(dtype).requires_grad_()


def _alpha_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.detach().float() - want.detach().float()).abs().max())


def _old_alpha(vertices: torch.Tensor, faces: torch.Tensor, camera: object) -> torch.Tensor:
    """The old pipeline by hand: the camera transform in the vertices' (half) dtype, then the
    rasterizer (which computes in float32 and returns the half dtype)."""
    screen = camera.to_screen(vertices, (S, S))
    settings = RasterSettings.create((S, S), sigma_val=SIGMA)
    return rasterize_channels(srf.face_vertices(screen, faces), settings, backend="reference").alpha


@pytest.mark.parametrize("camera", CAMERAS)
@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_half_render_is_the_float32_render_rounded(backend: str, dtype: torch.dtype, camera: str) -> None:
    v, f, c = _mesh(dtype)
    cam = CAMERAS[camera]()
    kw = dict(lights=sr.Lighting(), outputs=("rgba", "depth"), image_size=(S, S), sigma_val=SIGMA, backend=backend)
    out = sr.render(sr.Mesh(v, f, c), cam, **kw)
    with torch.no_grad():
        want = sr.render(sr.Mesh(v.float(), f, c.float()), cam, **kw)
    assert out.rgba.dtype == out.alpha.dtype == out.depth.dtype == dtype
    assert float(want.alpha.max()) > 0.99 and float(want.alpha.min()) < 0.01  # a silhouette with edges
    assert _alpha_error(out.alpha, want.alpha) < BOUND
    for name in ("rgba", "alpha", "depth"):
        assert torch.equal(getattr(out, name), getattr(want, name).to(dtype)), name
    # the old behaviour (half camera arithmetic) misses the bound on the same mesh
    with torch.no_grad():
        assert _alpha_error(_old_alpha(v, f, cam), want.alpha) > BOUND
    (out.alpha.float().sum() + out.rgba[:, :3].float().sum()).backward()
    for leaf in (v, c):
        assert leaf.grad.dtype == dtype and bool(torch.isfinite(leaf.grad).all()) and float(leaf.grad.abs().max()) > 0


@pytest.mark.parametrize("camera", CAMERAS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_half_soft_renderer_is_the_float32_render_rounded(backend: str, camera: str) -> None:
    """SoftRenderer with its own look-at transform, or a per-call Pinhole, with and without clipping."""
    v, f, c = _mesh(torch.bfloat16)
    for clip in (False, True):
        renderer = sr.SoftRenderer(image_size=S, sigma_val=SIGMA, camera_mode="look_at", backend=backend, clip=clip)
        renderer.transform.set_eyes_from_angles(2.732, 20.0, 30.0)
        per_call = None if camera == "look_at" else _pinhole()
        images = renderer(v, f, c, camera=per_call)
        with torch.no_grad():
            want = renderer(v.float(), f, c.float(), camera=per_call)
        assert images.dtype == torch.bfloat16
        assert _alpha_error(images[:, 3], want[:, 3]) < BOUND
        assert torch.equal(images, want.to(torch.bfloat16))
    images.float().mean().backward()
    assert v.grad.dtype == torch.bfloat16 and bool(torch.isfinite(v.grad).all()) and float(v.grad.abs().max()) > 0


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_half_render_clipped_at_the_near_plane(dtype: torch.dtype) -> None:
    """A near plane through the sphere: clipping runs on the float32 vertices; normals and z-buffer
    outputs too (in the camera frame, rotated by the camera in float32)."""
    v, f, c = _mesh(dtype)
    kw = dict(outputs=("alpha", "normals", "hard_depth", "face_id", "barycentrics"), image_size=(S, S),
              sigma_val=SIGMA, near=2.5, backend="reference")  # fmt: skip
    out = sr.render(sr.Mesh(v, f, c), _look_at(), **kw)
    with torch.no_grad():
        want = sr.render(sr.Mesh(v.float(), f, c.float()), _look_at(), **kw)
    assert float(want.alpha.max()) > 0.99  # something is left of the clipped sphere
    for name in ("alpha", "normals", "hard_depth", "barycentrics"):
        got = getattr(out, name)
        assert got.dtype == dtype and torch.equal(got, getattr(want, name).to(dtype)), name
    assert torch.equal(out.face_id, want.face_id)
    out.alpha.float().sum().backward()
    assert v.grad.dtype == dtype and bool(torch.isfinite(v.grad).all()) and float(v.grad.abs().max()) > 0


def test_half_camera_parameters_get_gradients_in_their_dtype() -> None:
    """A Pinhole whose translation is a bfloat16 leaf: it is cast to the float32 vertices' dtype
    inside the camera, and its gradient comes back in bfloat16."""
    v, f, _ = _mesh(torch.bfloat16)
    t = torch.tensor([0.05, -0.1, 2.6], dtype=torch.bfloat16, requires_grad=True)
    out = sr.render(sr.Mesh(v, f), _pinhole(t), outputs=("alpha",), sigma_val=SIGMA, backend="reference")
    with torch.no_grad():
        want = sr.render(sr.Mesh(v.float(), f), _pinhole(t.float()), outputs=("alpha",), sigma_val=SIGMA,
                         backend="reference")  # fmt: skip
    assert out.alpha.dtype == torch.bfloat16 and torch.equal(out.alpha, want.alpha.to(torch.bfloat16))
    out.alpha.float().sum().backward()
    for leaf in (v, t):
        assert leaf.grad.dtype == torch.bfloat16 and bool(torch.isfinite(leaf.grad).all())
        assert float(leaf.grad.abs().max()) > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_full_precision_meshes_pass_through_unchanged(dtype: torch.dtype) -> None:
    """float32 / float64 meshes enter the pipeline as they are (no cast, no copy), and their
    outputs are not cast; half textures on them are cast to float32 (as the rasterizer would)."""
    v, f, c = _mesh(dtype)
    mesh = sr.Mesh(v, f, c)
    assert compute_mesh(mesh) == (mesh, None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_mesh(mesh) == (mesh, None)
    lifted, out = compute_mesh(sr.Mesh(v, f, c.to(torch.bfloat16)))
    assert out is None and lifted.vertices is v and lifted.textures.dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_half_mesh_outputs_are_float32_inside_autocast(dtype: torch.dtype) -> None:
    """Inside torch.autocast a half mesh renders as its float32 mesh, and returns float32."""
    v, f, c = _mesh(dtype)
    kw = dict(outputs=("rgba", "depth"), image_size=(S, S), sigma_val=SIGMA, backend="reference")
    with torch.no_grad():
        want = sr.render(sr.Mesh(v.float(), f, c.float()), _pinhole(), **kw)
    with torch.autocast("cpu", dtype=dtype):
        out = sr.render(sr.Mesh(v, f, c), _pinhole(), **kw)
    assert out.rgba.dtype == out.depth.dtype == torch.float32
    torch.testing.assert_close(out.rgba, want.rgba, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.depth, want.depth, atol=1e-6, rtol=0)
    out.alpha.sum().backward()
    assert v.grad.dtype == dtype and bool(torch.isfinite(v.grad).all())
