"""The reference backend's generic outputs (channels of any width, soft depth, z-buffer)
against the plain-Python oracle, and float64 gradcheck of every soft output."""

from __future__ import annotations

import pytest
import torch

from softras.raster import RasterResult, RasterSettings, rasterize_channels
from softras.raster.contract import RasterInputs
from softras.raster.reference import rasterize as reference_rasterize

from .naive import NaiveResult, naive_rasterize_channels
from .options import AGGREGATIONS, RGB_AGGREGATIONS
from .scenes import random_attributes, random_scene

WIDTHS = [(0, 0), (1, 0), (0, 1), (5, 0), (0, 5), (3, 2), (2, 5)]
OPTIONS = AGGREGATIONS


def _settings(size: tuple[int, int] = (9, 11), **kw: object) -> RasterSettings:
    base = {
        "sigma_val": 3e-2,
        "gamma_val": 5e-2,
        "near": 1.0,
        "far": 5.0,
        "fill_back": False,
        "with_depth": True,
        "with_zbuffer": True,
    }
    return RasterSettings.create(size, **{**base, **kw})


def _check_all(got: RasterResult, want: NaiveResult, tol: float = 1e-9) -> None:
    torch.testing.assert_close(got.channels, want.channels, rtol=tol, atol=tol)
    torch.testing.assert_close(got.alpha, want.alpha, rtol=tol, atol=tol)
    torch.testing.assert_close(got.depth, want.depth, rtol=tol, atol=tol)
    assert torch.equal(got.face_id, want.face_id)
    torch.testing.assert_close(got.barycentrics, want.barycentrics, rtol=tol, atol=tol)
    torch.testing.assert_close(got.hard_depth, want.hard_depth, rtol=tol, atol=tol)


@pytest.mark.parametrize(("cs", "cv"), WIDTHS)
@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha"), OPTIONS)
def test_every_output_matches_naive(cs: int, cv: int, dist_func: str, aggr_rgb: str, aggr_alpha: str) -> None:
    seed = OPTIONS.index((dist_func, aggr_rgb, aggr_alpha)) + 31 * WIDTHS.index((cs, cv))
    fv, _ = random_scene(batch=2, faces=8, seed=seed, z_range=(0.7, 5.5))  # straddles near and far
    surface, vertex, bg = random_attributes(fv, cs, cv, texture_res=3, seed=seed)
    s = _settings(dist_func=dist_func, aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, fill_back=seed % 2 == 0)
    got = rasterize_channels(fv, s, surface=surface, vertex=vertex, background=bg, backend="reference")
    assert got.channels.shape == (2, cs + cv, 9, 11) and got.face_id.dtype == torch.int64
    _check_all(got, naive_rasterize_channels(fv, surface, vertex, bg, s))
    # The scene exercises what it should: z-buffer hits and empty pixels, faces cut by near/far.
    assert 0 < float((got.face_id >= 0).double().mean()) < 1
    for out in (got.face_id, got.barycentrics, got.hard_depth):
        assert not out.requires_grad


def test_only_what_is_asked_is_returned() -> None:
    fv, tex = random_scene(batch=1, faces=4, seed=2)
    got = rasterize_channels(fv, _settings(with_depth=False, with_zbuffer=False), surface=tex, backend="reference")
    assert got.depth is None and got.face_id is None and got.barycentrics is None and got.hard_depth is None
    full = rasterize_channels(fv, _settings(), surface=tex, backend="reference")
    assert torch.equal(got.channels, full.channels) and torch.equal(got.alpha, full.alpha)
    depth_only = rasterize_channels(fv, _settings(with_zbuffer=False), backend="reference")
    assert depth_only.channels.shape == (1, 0, 9, 11) and depth_only.face_id is None
    assert torch.equal(depth_only.depth, full.depth)


@pytest.mark.parametrize("aggr_rgb", RGB_AGGREGATIONS)
def test_zbuffer_ties_go_to_the_lowest_face(aggr_rgb: str) -> None:
    tri = torch.tensor([[-0.8, -0.8, 2.0], [0.8, -0.8, 2.0], [0.0, 0.8, 2.0]], dtype=torch.float64)
    farther = tri + torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    fv = torch.stack([farther, tri, tri])[None]  # faces 1 and 2 tie in front of face 0
    vertex = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64).reshape(1, 3, 1, 1).expand(1, 3, 3, 1)
    s = _settings((8, 8), dist_func="hard", aggr_func_rgb=aggr_rgb, fill_back=True)
    got = rasterize_channels(fv, s, vertex=vertex, background=(-1.0,), backend="reference")
    covered = got.face_id >= 0
    assert covered.any() and bool((got.face_id[covered] == 1).all())
    if aggr_rgb == "hard":
        assert bool((got.channels[:, 0][covered] == 1.0).all())
    torch.testing.assert_close(got.hard_depth[:, 0][covered], torch.full_like(got.hard_depth[:, 0][covered], 2.0))
    torch.testing.assert_close(got.barycentrics.sum(1)[covered], torch.ones_like(got.hard_depth[:, 0][covered]))
    _check_all(got, naive_rasterize_channels(fv, None, vertex, (-1.0,), s))


def test_faces_outside_near_far_have_alpha_but_no_colour() -> None:
    tri = torch.tensor([[[[-0.8, -0.8, 0.5], [0.8, -0.8, 0.5], [0.0, 0.8, 0.5]]]], dtype=torch.float64)
    for z in (0.5, 7.0):  # before near = 1, beyond far = 5
        fv = tri.clone()
        fv[..., 2] = z
        s = _settings((8, 8), fill_back=True)
        got = rasterize_channels(fv, s, vertex=torch.ones(1, 1, 3, 2, dtype=torch.float64), background=(0.25, 0.5),
                                 backend="reference")  # fmt: skip
        assert float(got.alpha.amax()) > 0.5
        assert bool((got.face_id == -1).all()) and float(got.hard_depth.abs().amax()) == 0.0
        torch.testing.assert_close(got.depth, torch.zeros_like(got.depth))
        torch.testing.assert_close(got.channels[0, 0], torch.full((8, 8), 0.25, dtype=torch.float64))


@pytest.mark.parametrize("fill_back", [False, True])
def test_back_faces_join_only_when_double_sided(fill_back: bool) -> None:
    front = torch.tensor([[-0.8, -0.8, 2.0], [0.0, 0.8, 2.0], [0.8, -0.8, 2.0]], dtype=torch.float64)
    back = front[[0, 2, 1]] - torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)  # nearer, other winding
    fv = torch.stack([front, back])[None]
    vertex = torch.tensor([3.0, 4.0], dtype=torch.float64).reshape(1, 2, 1, 1).expand(1, 2, 3, 1)
    s = _settings((8, 8), dist_func="hard", aggr_func_rgb="hard", fill_back=fill_back)
    got = rasterize_channels(fv, s, vertex=vertex, background=(0.0,), backend="reference")
    covered = got.face_id >= 0
    assert covered.any() and bool((got.face_id[covered] == (1 if fill_back else 0)).all())
    _check_all(got, naive_rasterize_channels(fv, None, vertex, (0.0,), s))


def test_chunking_does_not_change_any_output() -> None:
    fv, _ = random_scene(batch=2, faces=8, seed=5, z_range=(0.5, 6.0))
    surface, vertex, bg = random_attributes(fv, 2, 3, seed=5)
    s = _settings((12, 10), sigma_val=1e-2)
    results, grads = [], []
    for max_pairs in (1 << 20, 1, 7):
        a, t, v = (x.clone().requires_grad_() for x in (fv, surface, vertex))
        r = reference_rasterize(RasterInputs(a, t, v, bg), s, max_pairs=max_pairs)
        g = torch.Generator().manual_seed(0)
        loss = sum((o * torch.rand(o.shape, generator=g, dtype=o.dtype)).sum() for o in (r.channels, r.alpha, r.depth))
        loss.backward()
        results.append(r)
        grads.append((a.grad, t.grad, v.grad))
    for r, gr in zip(results[1:], grads[1:], strict=True):
        for x, y in zip(r, results[0], strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-12)
        for x, y in zip(gr, grads[0], strict=True):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha"), [
    ("euclidean", "softmax", "prod"), ("barycentric", "softmax", "sum"), ("euclidean", "hard", "prod"),
])  # fmt: skip
def test_gradcheck_every_soft_output(dist_func: str, aggr_rgb: str, aggr_alpha: str) -> None:
    fv, _ = random_scene(batch=2, faces=3, seed=4, size=0.9, z_range=(1.5, 3.0))
    surface, vertex, bg = random_attributes(fv, 2, 2, texture_res=2, seed=4)
    # dist_eps tiny: a pair crossing the cull radius jumps by less than dist_eps.
    s = _settings((5, 6), sigma_val=5e-2, gamma_val=0.3, dist_eps=1e-15, dist_func=dist_func,
                  aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, fill_back=True, with_zbuffer=False)  # fmt: skip

    def fn(a: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        r = reference_rasterize(RasterInputs(a, t, v, bg), s)
        return r.channels, r.alpha, r.depth

    inputs = tuple(x.clone().requires_grad_() for x in (fv, surface, vertex))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)
