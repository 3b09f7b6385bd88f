"""UV textures: the model functions, the atlas, and the reference backend's lookups.

The model functions (softras.raster.model.texture) are checked against autograd and finite
differences; the reference backend's rendering against a plain NumPy lookup at the z-buffer's
perspective-correct barycentrics; its gradients against finite differences (gradcheck).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softras.raster import RasterSettings, rasterize_channels, uv_maps
from softras.raster.model import python_model, torch_model
from softras.raster.uv import fixed_point_scale, mip_pyramid

FILTERS = ("nearest", "bilinear", "trilinear")


def _random_pairs(n: int = 64, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, 3, generator=g, dtype=torch.float64)
    c = c / c.sum(1, keepdim=True)
    iz = 0.2 + torch.rand(n, 3, generator=g, dtype=torch.float64)
    u, v = torch.rand(n, 3, generator=g, dtype=torch.float64), torch.rand(n, 3, generator=g, dtype=torch.float64)
    a, b = torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randn(n, 3, generator=g, dtype=torch.float64)
    return [t.requires_grad_() for t in (c, iz, u, v, a, b)]


def test_uv_at_vjp_is_autograd():
    tm = torch_model()
    c, iz, u, v, _, _ = _random_pairs()
    args = [*c.unbind(1), *iz.unbind(1), *u.unbind(1), *v.unbind(1)]
    pu, pv = tm["uv_at"](*args)
    gu, gv = torch.randn_like(pu), torch.randn_like(pv)
    auto = torch.autograd.grad((pu * gu + pv * gv).sum(), [c, iz, u, v])
    hand = torch.stack(tm["uv_at_vjp"](*[x.detach() for x in args], gu, gv), 1)
    for k, expected in enumerate(auto):
        torch.testing.assert_close(hand[:, 3 * k : 3 * k + 3], expected, rtol=1e-12, atol=1e-13)


def test_mip_level_vjp_is_autograd():
    tm = torch_model()
    c, iz, u, v, a, b = _random_pairs(seed=1)
    args = [*c.unbind(1), *iz.unbind(1), *u.unbind(1), *v.unbind(1), *a.unbind(1), *b.unbind(1)]
    scales = (7.0, 5.0, 3.0, 11.0)
    lam = tm["mip_level"](*args, *scales)
    g = torch.randn_like(lam)
    auto = torch.autograd.grad((lam * g).sum(), [c, iz, u, v, a, b])
    hand = torch.stack(tm["mip_level_vjp"](*[x.detach() for x in args], *scales, g), 1)
    for k, expected in enumerate(auto):
        torch.testing.assert_close(hand[:, 3 * k : 3 * k + 3], expected, rtol=1e-10, atol=1e-12)


def test_mip_level_is_the_footprint_of_one_pixel():
    """λ from the analytic derivatives equals log2 of the texel distance between the perspective-correct
    UVs of neighbouring pixel positions (central differences on the face's plane)."""
    py_model = python_model()
    xy = np.array([[-0.7, -0.6], [0.8, -0.5], [0.1, 0.9]])
    z = np.array([2.0, 5.0, 3.0])
    uvs = np.array([[0.1, 0.2], [0.9, 0.1], [0.4, 0.8]])
    size, tex = (64, 48), (32, 16)  # image (H, W), texture (H0, W0)
    m = np.vstack([xy.T, np.ones(3)])  # columns: vertices; rows x, y, 1
    inv = np.linalg.inv(m)  # w = inv @ (x, y, 1)

    def uv_of(p: np.ndarray) -> np.ndarray:
        w = inv @ np.array([p[0], p[1], 1.0])
        q = w / z
        return (q @ uvs) / q.sum()

    p = np.array([0.15, 0.05])
    w = inv @ np.array([*p, 1.0])
    pixel = (2.0 / size[1], 2.0 / size[0])
    h = 1e-6
    rho2 = []
    for axis, step in enumerate(pixel):
        e = np.zeros(2)
        e[axis] = h
        d = (uv_of(p + e) - uv_of(p - e)) / (2 * h) * step
        rho2.append((d[0] * tex[1]) ** 2 + (d[1] * tex[0]) ** 2)
    expected = 0.5 * math.log2(max(rho2))
    lam = py_model["mip_level"](
        *w, *(1 / z), *uvs[:, 0], *uvs[:, 1], *inv[:, 0], *inv[:, 1],
        tex[1] * pixel[0], tex[0] * pixel[0], tex[1] * pixel[1], tex[0] * pixel[1],
    )  # fmt: skip
    assert lam == pytest.approx(expected, abs=1e-7)


def test_mip_blend_and_wrap():
    m = python_model()
    assert m["mip_blend"](2.25, 4.0) == (2.0, 3.0, 0.25, 1.0)
    assert m["mip_blend"](-1.0, 4.0) == (0.0, 1.0, 0.0, 0.0)
    assert m["mip_blend"](7.0, 4.0) == (3.0, 3.0, 0.0, 0.0)
    assert m["wrap_index"](-1.0, 4.0, 1.0) == 3.0
    assert m["wrap_index"](4.0, 4.0, 1.0) == 0.0
    assert m["wrap_index"](-1.0, 4.0, 0.0) == 0.0
    assert m["wrap_index"](9.0, 4.0, 0.0) == 3.0
    assert m["texel_xy"](0.0, 1.0, 4.0, 2.0) == (-0.5, -0.5)


def test_mip_pyramid_sizes_values_and_gradient():
    image = torch.rand(5, 8, 2, dtype=torch.float64, requires_grad=True)
    levels = mip_pyramid(image)
    assert [tuple(level.shape[:2]) for level in levels] == [(5, 8), (2, 4), (1, 2), (1, 1)]
    # an odd size: level 1's rows average image rows 0-2 and 2-4 (overlapping windows)
    torch.testing.assert_close(levels[1][0, 0], image[:3, :2].mean((0, 1)))
    torch.testing.assert_close(levels[1][1, 3], image[2:, 6:].mean((0, 1)))
    even = torch.rand(8, 4, 1, dtype=torch.float64)
    torch.testing.assert_close(mip_pyramid(even)[1][0, 0, 0], even[:2, :2, 0].mean())
    torch.testing.assert_close(mip_pyramid(even)[-1][0, 0], even.mean((0, 1)))
    levels[1].sum().backward()
    assert image.grad.abs().sum() > 0


def test_uv_maps_layout_and_errors():
    uv = torch.rand(4, 3, 2)
    images = [torch.rand(8, 4, 3), torch.rand(2, 2, 3)]
    maps = uv_maps(uv, images, torch.tensor([0, 1, 1, 0]), texture_filter="trilinear", texture_wrap="clamp")
    assert maps.uv.shape == (1, 4, 3, 2) and maps.channels == 3
    assert maps.level_count.tolist() == [4, 2]
    assert maps.levels[0].tolist() == [[0, 8, 4], [96, 4, 2], [120, 2, 1], [126, 1, 1]]
    assert maps.levels[1].tolist()[:2] == [[129, 2, 2], [141, 1, 1]]
    assert maps.levels[1, 3].tolist() == [141, 1, 1]  # missing levels repeat the last one
    assert maps.atlas.numel() == 129 + 12 + 3
    assert uv_maps(uv, images[0]).level_count.tolist() == [1]  # bilinear: no mip levels
    with pytest.raises(ValueError, match="texture_filter"):
        uv_maps(uv, images, texture_filter="linear")
    with pytest.raises(ValueError, match="texture_wrap"):
        uv_maps(uv, images, texture_wrap="mirror")
    with pytest.raises(ValueError, match=r"material: expected indices in \[0, 2\)"):
        uv_maps(uv, images, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="channel count"):
        uv_maps(uv, [torch.rand(2, 2, 3), torch.rand(2, 2, 4)])
    with pytest.raises(ValueError, match=r"uv: expected shape"):
        uv_maps(torch.rand(4, 3, 3), images)
    with pytest.raises(TypeError, match="images\\[0\\]: expected a floating dtype"):
        uv_maps(uv, torch.zeros(2, 2, 3, dtype=torch.uint8))


def test_fixed_point_scale_bounds_the_sum():
    for bound in (1e-9, 0.3, 1.0, 7.5, 1e12):
        s = fixed_point_scale(bound)
        assert bound * s < 2.0**61 and bound * s >= 2.0**60
        assert math.log2(s).is_integer()
    assert fixed_point_scale(0.0) == 1.0
    with pytest.raises(ValueError, match="not finite"):
        fixed_point_scale(math.inf)


# ---- rendering ---------------------------------------------------------------------------
def _scene(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two faces of a quad slanted in depth (perspective matters), UVs reaching outside [0, 1]."""
    fv = torch.tensor(
        [
            [[-0.8, -0.7, 2.0], [0.7, -0.8, 5.0], [0.8, 0.75, 5.0]],
            [[-0.8, -0.7, 2.0], [0.8, 0.75, 5.0], [-0.75, 0.8, 2.0]],
        ],
        dtype=dtype,
    )[None]
    uv = torch.tensor([[[-0.2, -0.1], [1.3, 0.0], [1.2, 1.1]], [[-0.2, -0.1], [1.2, 1.1], [0.0, 1.2]]], dtype=dtype)
    return fv, uv, torch.tensor([0, 1])


def _numpy_lookup(image: np.ndarray, u: float, v: float, filt: str, wrap: str) -> np.ndarray:
    h, w, _ = image.shape
    x, y = u * w - 0.5, (1 - v) * h - 0.5

    def fix(i: int, n: int) -> int:
        return i % n if wrap == "repeat" else min(max(i, 0), n - 1)

    if filt == "nearest":
        return image[fix(math.floor(y + 0.5), h), fix(math.floor(x + 0.5), w)]
    x0, y0 = math.floor(x), math.floor(y)
    fx, fy = x - x0, y - y0
    row0 = (1 - fx) * image[fix(y0, h), fix(x0, w)] + fx * image[fix(y0, h), fix(x0 + 1, w)]
    row1 = (1 - fx) * image[fix(y0 + 1, h), fix(x0, w)] + fx * image[fix(y0 + 1, h), fix(x0 + 1, w)]
    return (1 - fy) * row0 + fy * row1


@pytest.mark.parametrize("wrap", ["repeat", "clamp"])
@pytest.mark.parametrize("filt", ["nearest", "bilinear"])
def test_reference_zbuffer_matches_numpy_lookup(filt: str, wrap: str):
    fv, uv, material = _scene()
    g = torch.Generator().manual_seed(3)
    images = [torch.rand(h, w, 3, generator=g, dtype=torch.float64) for h, w in ((6, 9), (4, 4))]
    maps = uv_maps(uv, images, material, texture_filter=filt, texture_wrap=wrap)
    s = RasterSettings.create((20, 24), aggr_func_rgb="hard", with_zbuffer=True)
    r = rasterize_channels(fv, s, uv=maps, backend="reference", background=(0.5, 0.5, 0.5))
    face_id, bary = r.face_id[0].numpy(), r.barycentrics[0].numpy()
    covered = np.argwhere(face_id >= 0)
    assert len(covered) > 200
    for row, col in covered:
        f = face_id[row, col]
        u, v = bary[:, row, col] @ uv[f].numpy()
        expected = _numpy_lookup(images[int(material[f])].numpy(), u, v, filt, wrap)
        np.testing.assert_allclose(r.channels[0, :, row, col].numpy(), expected, atol=1e-9)
    assert (r.channels[0, :, face_id < 0] == 0.5).all()


def test_trilinear_filters_a_minified_checker():
    """A 64 × 64 checker squeezed into ~10 pixels: trilinear reads the coarse levels (≈ its mean,
    0.5), bilinear aliases."""
    fv, uv, _ = _scene()
    checker = torch.from_numpy(np.indices((64, 64)).sum(0) % 2).double()[..., None]
    s = RasterSettings.create(12, aggr_func_rgb="hard", with_zbuffer=True)
    out = {}
    for filt in ("bilinear", "trilinear"):
        maps = uv_maps(uv.clamp(0, 1), checker, texture_filter=filt)
        r = rasterize_channels(fv, s, uv=maps, backend="reference")
        out[filt] = r.channels[0, 0][r.face_id[0] >= 0]
    assert (out["trilinear"] - 0.5).abs().max() < 0.05
    assert (out["bilinear"] - 0.5).abs().max() > 0.2


def test_reference_float32_agrees_with_float64():
    fv, uv, material = _scene()
    images = [torch.rand(6, 9, 3, dtype=torch.float64), torch.rand(4, 4, 3, dtype=torch.float64)]
    s = RasterSettings.create(16, sigma_val=1e-4, gamma_val=1e-3)
    outs = [
        rasterize_channels(
            fv.to(dt), s, uv=uv_maps(uv.to(dt), [im.to(dt) for im in images], material, texture_filter="trilinear"),
            backend="reference",
        ).channels.double()
        for dt in (torch.float64, torch.float32)
    ]  # fmt: skip
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("filt", FILTERS)
def test_reference_gradcheck(filt: str):
    fv, uv, _ = _scene()
    fv = fv.requires_grad_()
    g = torch.Generator().manual_seed(5)
    image = torch.rand(4, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    uv = uv.requires_grad_()
    s = RasterSettings.create(8, sigma_val=3e-2, gamma_val=1e-1)

    def render(fv: torch.Tensor, uv: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        maps = uv_maps(uv, image, texture_filter=filt)
        return rasterize_channels(fv, s, uv=maps, backend="reference").channels

    inputs = (fv, uv, image) if filt != "nearest" else (fv, uv.detach(), image)
    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_perspective_weights_vjp_is_autograd():
    tm = torch_model()
    c, iz, *_ = _random_pairs(seed=2)
    args = [*c.unbind(1), *iz.unbind(1)]
    b = tm["perspective_weights"](*args)
    gb = [torch.randn_like(x) for x in b]
    auto = torch.autograd.grad(sum((x * g).sum() for x, g in zip(b, gb, strict=True)), [c, iz])
    hand = torch.stack(tm["perspective_weights_vjp"](*[x.detach() for x in args], *gb), 1)
    torch.testing.assert_close(hand[:, :3], auto[0], rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(hand[:, 3:], auto[1], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("perspective", [False, True])
def test_vertex_attributes_screen_space_or_perspective_correct(perspective: bool):
    """Vertex attributes: the z-buffer's perspective-correct barycentrics reproduce them with
    perspective_correct=True; the original's screen-space weights differ on a face slanted in depth."""
    fv, _, _ = _scene()
    colours = torch.rand(1, 2, 3, 3, dtype=torch.float64)
    s = RasterSettings.create(24, aggr_func_rgb="hard", with_zbuffer=True, perspective_correct=perspective)
    r = rasterize_channels(fv, s, vertex=colours, backend="reference")
    covered = r.face_id[0] >= 0
    face = r.face_id[0][covered]
    bary = r.barycentrics[0].permute(1, 2, 0)[covered]  # perspective-correct, [N, 3]
    expected = (bary[:, :, None] * colours[0, face]).sum(1)
    error = (r.channels[0].permute(1, 2, 0)[covered] - expected).abs().max()
    assert error < 1e-12 if perspective else error > 1e-2
