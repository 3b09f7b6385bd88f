"""The reference backend against the plain-Python oracle, for every option."""

from __future__ import annotations

import pytest
import torch

from softras.raster import RasterSettings, rasterize, soft_rasterize
from softras.raster.reference import rasterize_reference

from .naive import naive_rasterize
from .options import COMBOS, TEXTURE_TYPES
from .scenes import random_scene


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha", "texture_type"), COMBOS)
@pytest.mark.parametrize("gamma", [1e-4, 5e-2])
def test_reference_matches_naive(
    dist_func: str, aggr_rgb: str, aggr_alpha: str, texture_type: str, gamma: float
) -> None:
    fv, tex = random_scene(
        batch=2,
        faces=6,
        texture_type=texture_type,
        texture_res=3,
        seed=COMBOS.index((dist_func, aggr_rgb, aggr_alpha, texture_type)),
    )
    s = RasterSettings.create(
        (9, 11),
        background_color=(0.2, 0.4, 0.6),
        sigma_val=3e-2,
        gamma_val=gamma,
        dist_func=dist_func,
        aggr_func_rgb=aggr_rgb,
        aggr_func_alpha=aggr_alpha,
        texture_type=texture_type,
        fill_back=False,
        near=1.0,
        far=10.0,
    )
    got = rasterize_reference(fv, tex, s)
    want = naive_rasterize(fv, tex, s)
    assert got.shape == (2, 4, 9, 11)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    # The scene exercises what it should: some coverage, some background.
    assert 0 < float((got[:, 3] > 0).double().mean()) < 1


@pytest.mark.parametrize("fill_back", [False, True])
def test_fill_back_and_near_far_clipping(fill_back: bool) -> None:
    # Depths straddle near and far: parts of faces are clipped from RGB but keep alpha.
    fv, tex = random_scene(batch=1, faces=8, seed=3, z_range=(0.5, 6.0))
    s = RasterSettings.create(12, sigma_val=1e-2, gamma_val=1e-2, near=1.5, far=5.0, fill_back=fill_back)
    torch.testing.assert_close(rasterize_reference(fv, tex, s), naive_rasterize(fv, tex, s), rtol=1e-9, atol=1e-9)


def test_chunking_does_not_change_the_result() -> None:
    fv, tex = random_scene(batch=3, faces=10, seed=5)
    s = RasterSettings.create(16, sigma_val=1e-2)
    full = rasterize_reference(fv, tex, s)
    for max_pairs in (1, 7, 100):
        torch.testing.assert_close(rasterize_reference(fv, tex, s, max_pairs=max_pairs), full, rtol=0, atol=1e-12)


def test_chunked_gradients_equal_unchunked() -> None:
    fv, tex = random_scene(batch=2, faces=6, seed=6)
    s = RasterSettings.create(10, sigma_val=1e-2, gamma_val=1e-2)
    grads = []
    for max_pairs in (5, 1 << 20):
        a, t = fv.clone().requires_grad_(), tex.clone().requires_grad_()
        img = rasterize_reference(a, t, s, max_pairs=max_pairs)
        (img * torch.linspace(0, 1, img.numel(), dtype=img.dtype).reshape(img.shape)).sum().backward()
        grads.append((a.grad, t.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-12)


def test_image_layout_row_zero_is_top() -> None:
    # A triangle in the upper-left quadrant lands in the top-left of the image array.
    fv = torch.tensor([[[[-0.9, 0.1, 2.0], [-0.1, 0.9, 2.0], [-0.1, 0.1, 2.0]]]], dtype=torch.float64)
    tex = torch.ones(1, 1, 1, 3, dtype=torch.float64)
    img = soft_rasterize(fv, tex, 8, dist_func="hard", aggr_func_rgb="hard", fill_back=True)
    alpha = img[0, 3]
    assert alpha[:4, :4].sum() > 0 and alpha[4:, :].sum() == 0 and alpha[:, 4:].sum() == 0


def test_front_facing_is_clockwise_on_screen() -> None:
    # Counter-clockwise in the world seen from the camera = clockwise in NDC (x right, y up)?
    # The original's test: front iff (y2-y0)(x1-x0) < (y1-y0)(x2-x0).
    cw = torch.tensor([[[[-0.5, -0.5, 2.0], [0.0, 0.5, 2.0], [0.5, -0.5, 2.0]]]], dtype=torch.float64)
    ccw = cw[:, :, [0, 2, 1]]
    tex = torch.ones(1, 1, 1, 3, dtype=torch.float64)
    kw = {"dist_func": "hard", "aggr_func_rgb": "hard", "fill_back": False}
    assert soft_rasterize(cw, tex, 8, **kw)[0, :3].sum() > 0
    assert soft_rasterize(ccw, tex, 8, **kw)[0, :3].sum() == 0
    # Back faces still cover (alpha) and are drawn when double-sided.
    assert soft_rasterize(ccw, tex, 8, **kw)[0, 3].sum() > 0
    assert soft_rasterize(ccw, tex, 8, dist_func="hard", aggr_func_rgb="hard", fill_back=True)[0, :3].sum() > 0


def test_zbuffer_picks_nearest_face() -> None:
    near_face = torch.tensor([[-0.8, -0.8, 2.0], [0.0, 0.8, 2.0], [0.8, -0.8, 2.0]], dtype=torch.float64)
    far_face = near_face.clone()
    far_face[:, 2] = 3.0
    tex = torch.tensor([[[1.0, 0, 0]], [[0, 1.0, 0]]], dtype=torch.float64)[None]
    for order in ([0, 1], [1, 0]):
        fv = torch.stack([near_face, far_face])[order][None]
        img = soft_rasterize(fv, tex[:, order], 8, dist_func="hard", aggr_func_rgb="hard")
        assert img[0, 0, 4, 4] == 1.0 and img[0, 1, 4, 4] == 0.0


def test_alpha_modes_on_known_overlap() -> None:
    # Two identical full-screen faces: hard -> 1, sum -> D sum / F = 1, prod -> 1 - (1-D)^2 = 1.
    big = torch.tensor([[-5.0, -5.0, 2.0], [0.0, 5.0, 2.0], [5.0, -5.0, 2.0]], dtype=torch.float64)
    fv = torch.stack([big, big])[None]
    tex = torch.ones(1, 2, 1, 3, dtype=torch.float64)
    for mode, want in (("hard", 1.0), ("sum", 1.0), ("prod", 1.0)):
        img = soft_rasterize(fv, tex, 4, aggr_func_alpha=mode, sigma_val=1e-4)
        torch.testing.assert_close(img[0, 3], torch.full((4, 4), want, dtype=torch.float64))


def test_anti_aliasing_average_pools() -> None:
    import softras as sr

    fv, tex = random_scene(batch=1, faces=4, seed=9, dtype=torch.float32)
    r_aa = sr.SoftRasterizer(image_size=8, anti_aliasing=True, sigma_val=1e-3)
    r_2x = sr.SoftRasterizer(image_size=16, anti_aliasing=False, sigma_val=1e-3)

    class _M:
        face_vertices, face_textures = fv, tex

    torch.testing.assert_close(r_aa(_M()), torch.nn.functional.avg_pool2d(r_2x(_M()), 2))


@pytest.mark.parametrize("texture_type", TEXTURE_TYPES)
def test_float32_close_to_float64(texture_type: str) -> None:
    # R = 1: with R > 1 the texel picked at a clamped barycentric on a texel border can
    # legitimately flip with rounding (a discontinuity of the original's sampling).
    fv, tex = random_scene(batch=2, faces=12, seed=11, texture_res=1, texture_type=texture_type)
    s = RasterSettings.create(24, sigma_val=1e-4, gamma_val=1e-4, texture_type=texture_type)
    ref = rasterize(fv, tex, s, backend="reference")
    f32 = rasterize(fv.float(), tex.float(), s, backend="reference")
    assert f32.dtype == torch.float32
    torch.testing.assert_close(f32.double(), ref, rtol=0, atol=2e-4)
