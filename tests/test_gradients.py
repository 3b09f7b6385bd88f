"""Exact gradients: gradcheck in float64, and the paper's claims about where gradients reach."""

from __future__ import annotations

import pytest
import torch

import softras as sr
from softras.raster import soft_rasterize

from .options import COMBOS
from .scenes import random_scene


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha", "texture_type"), COMBOS)
def test_gradcheck_every_option(dist_func: str, aggr_rgb: str, aggr_alpha: str, texture_type: str) -> None:
    """d(image)/d(face_vertices, textures) equals finite differences, for all 36 combinations.

    Hard coverage and the z-buffer are piecewise constant in x, y; gradcheck still holds
    away from their jumps (the random scene keeps pixel centres away from them), and there
    the gradient through depth and vertex colours must still be exact.

    gradcheck's fast mode (random projections of the Jacobian, ~10x cheaper over the sweep):
    tests/test_reference_outputs.py checks every entry of the Jacobian of every output for
    three of the combinations, and the other backends' gradients are compared with the reference's.
    """
    seed = COMBOS.index((dist_func, aggr_rgb, aggr_alpha, texture_type))
    fv, tex = random_scene(batch=1, faces=3, texture_type=texture_type, texture_res=2, seed=seed, size=1.0)
    fv.requires_grad_(True)
    tex.requires_grad_(True)

    def render(f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return soft_rasterize(
            f, t, (5, 6), sigma_val=4e-2, gamma_val=3e-2, dist_func=dist_func, aggr_func_rgb=aggr_rgb,
            aggr_func_alpha=aggr_alpha, texture_type=texture_type, near=1.0, far=6.0, dist_eps=1e-6,
            background_color=(0.3, 0.5, 0.7), backend="reference",
        )  # fmt: skip

    assert torch.autograd.gradcheck(render, (fv, tex), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradcheck_full_pipeline_wrt_cameras_and_lights() -> None:
    """Gradients reach eye positions, light intensity/colour/direction and vertices."""
    torch.manual_seed(0)
    vertices = (
        torch.tensor([[-0.5, -0.4, 0.1], [0.5, -0.5, 0.0], [0.0, 0.6, -0.1], [0.1, 0.0, -0.6]], dtype=torch.float64)
    )[None]
    faces = torch.tensor([[[0, 1, 2], [0, 2, 3], [1, 3, 2], [0, 3, 1]]])
    textures = torch.rand(1, 4, 1, 3, dtype=torch.float64)
    eye = torch.tensor([[0.3, 0.4, -2.5]], dtype=torch.float64, requires_grad=True)
    light_dir = torch.tensor([0.3, 1.0, -0.2], dtype=torch.float64, requires_grad=True)
    intensity = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    verts = vertices.clone().requires_grad_(True)

    def render(v: torch.Tensor, e: torch.Tensor, d: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        r = sr.SoftRenderer(
            image_size=6, camera_mode="look_at", eye=e, sigma_val=3e-2, gamma_val=3e-2, dist_eps=1e-6,
            light_directions=d, light_intensity_directionals=i, backend="reference",
        )  # fmt: skip
        return r(v, faces, textures)

    assert torch.autograd.gradcheck(render, (verts, eye, light_dir, intensity), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_projection_matrix_and_distortion() -> None:
    vertices = torch.tensor([[[-0.5, -0.4, 0.1], [0.5, -0.5, 0.0], [0.0, 0.6, -0.1]]], dtype=torch.float64)
    faces = torch.tensor([[[0, 1, 2]]])
    K = torch.tensor([[8.0, 0, 4], [0, 8.0, 4], [0, 0, 1]], dtype=torch.float64)
    Rt = torch.cat([torch.eye(3, dtype=torch.float64), torch.tensor([[0.0], [0.0], [3.0]], dtype=torch.float64)], 1)
    P = (K @ Rt)[None].requires_grad_(True)
    dist = torch.tensor([[0.01, -0.02, 0.001, 0.002, 0.0]], dtype=torch.float64, requires_grad=True)

    def render(p: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        r = sr.SoftRenderer(
            image_size=5, camera_mode="projection", P=p, dist_coeffs=d, orig_size=8, sigma_val=3e-2,
            gamma_val=3e-2, dist_eps=1e-6, backend="reference",
        )  # fmt: skip
        return r(vertices, faces)

    assert torch.autograd.gradcheck(render, (P, dist), eps=1e-6, atol=1e-6, rtol=1e-4)


def _two_stacked_faces(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A red face at depth 2 fully covering a green face at depth 2.5 (screen space)."""
    front = torch.tensor([[-0.9, -0.9, 2.0], [0.0, 0.9, 2.0], [0.9, -0.9, 2.0]], dtype=dtype)
    back = torch.tensor([[-0.4, -0.4, 2.5], [0.0, 0.3, 2.5], [0.4, -0.4, 2.5]], dtype=dtype)
    tex = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]], dtype=dtype)[None]
    return torch.stack([front, back])[None], tex


@pytest.mark.parametrize("aggr_rgb", ["softmax", "hard"])
def test_fully_occluded_face_receives_gradient_under_softmax(aggr_rgb: str) -> None:
    fv, tex = _two_stacked_faces()
    fv.requires_grad_(True)
    tex.requires_grad_(True)
    img = soft_rasterize(fv, tex, 16, sigma_val=1e-4, gamma_val=1e-2, near=1, far=10, aggr_func_rgb=aggr_rgb)
    # The back face is invisible: every pixel it covers is red-dominated.
    assert img[0, 1].max() < 0.05
    img[0, 1].sum().backward()  # loss on the green channel: the hidden face's colour
    back_vertex_grad = fv.grad[0, 1].abs().sum()
    back_texture_grad = tex.grad[0, 1].abs().sum()
    if aggr_rgb == "softmax":  # the paper's claim
        assert back_vertex_grad > 1e-6 and back_texture_grad > 1e-3
    else:  # a z-buffer gives the hidden face nothing
        assert back_vertex_grad == 0 and back_texture_grad == 0


@pytest.mark.parametrize("dist_func", ["euclidean", "barycentric", "hard"])
def test_face_just_outside_silhouette_receives_gradient(dist_func: str) -> None:
    # A target pixel lies outside the triangle by less than √θ: the soft coverage reaches it.
    sigma, s = 1e-3, 16
    fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.0, 0.25, 2.0], [0.5, -0.5, 2.0]]]], dtype=torch.float64)
    fv.requires_grad_(True)
    tex = torch.ones(1, 1, 1, 3, dtype=torch.float64)
    img = soft_rasterize(fv, tex, s, sigma_val=sigma, dist_func=dist_func)
    alpha = img[0, 3]
    outside = alpha < 0.5
    assert outside.any() and (alpha[outside] > 0).any() == (dist_func != "hard")
    # Loss on pixels outside the silhouette only: pulls the triangle towards them.
    alpha[outside].sum().backward()
    assert (fv.grad.abs().sum() > 1e-6) == (dist_func != "hard")


def test_alpha_gradient_of_faces_beyond_far() -> None:
    # Depth outside [near, far] removes a face from RGB, but not from coverage (alpha):
    # its alpha gradient must not be dropped (the original's backward skipped it).
    fv = torch.tensor([[[[-0.5, -0.5, 50.0], [0.0, 0.5, 50.0], [0.5, -0.5, 50.0]]]], dtype=torch.float64)
    fv.requires_grad_(True)
    tex = torch.ones(1, 1, 1, 3, dtype=torch.float64)
    img = soft_rasterize(fv, tex, 16, sigma_val=1e-3, near=1, far=10)
    assert img[0, :3].abs().sum() == 0 and img[0, 3].sum() > 1
    img[0, 3].sum().backward()
    assert fv.grad[..., :2].abs().sum() > 1e-3


def _square(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    a, b, c, d = [-0.5, -0.5, 2.0], [-0.5, 0.5, 2.0], [0.5, 0.5, 2.0], [0.5, -0.5, 2.0]
    fv = torch.tensor([[a, b, c], [a, c, d]], dtype=dtype)[None]
    return fv, torch.ones(1, 2, 1, 3, dtype=dtype)


def test_larger_sigma_blurs_edges_monotonically() -> None:
    fv, tex = _square()
    widths = []
    for sigma in (1e-5, 1e-4, 1e-3, 1e-2):
        alpha = soft_rasterize(fv, tex, 64, sigma_val=sigma, dist_eps=1e-8)[0, 3]
        widths.append(int(((alpha > 0.02) & (alpha < 0.98)).sum()))
    assert widths == sorted(widths) and widths[-1] > 4 * max(widths[0], 1)


def test_larger_gamma_mixes_occluded_colour_monotonically() -> None:
    fv, tex = _two_stacked_faces()
    green = []
    for gamma in (1e-4, 1e-3, 1e-2, 1e-1):
        img = soft_rasterize(fv, tex, 32, sigma_val=1e-5, gamma_val=gamma, near=1, far=10)
        green.append(float(img[0, 1, 16, 16]))  # centre pixel, covered by both faces
    assert green == sorted(green) and green[0] < 1e-6 and green[-1] > 0.2


def test_softmax_is_accurate_in_float32_at_tiny_gamma() -> None:
    fv, tex = random_scene(batch=2, faces=20, seed=4, texture_type="vertex")
    kw = {"sigma_val": 1e-4, "gamma_val": 1e-4, "texture_type": "vertex", "backend": "reference"}
    f64 = soft_rasterize(fv, tex, 32, **kw)
    f32 = soft_rasterize(fv.float(), tex.float(), 32, **kw)
    assert torch.isfinite(f32).all()
    # float32 depth carries ~1e-7 relative error; divided by γ = 1e-4 that moves softmax
    # weights by ~1e-3 relative: colours agree to a few 1e-4, with no overflow.
    torch.testing.assert_close(f32.double(), f64, rtol=0, atol=1e-3)
