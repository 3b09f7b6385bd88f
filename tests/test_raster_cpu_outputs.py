"""The `cpu` backend under the contract: channels of any width, soft depth, z-buffer outputs,
the compiled binning and the face-constant layout.

Oracles: the 3-channel colour path (itself tested against the reference in
test_raster_cpu.py), per-face constant depths (where the soft depth equals a vertex channel),
the contract's torch binning, and float64 gradcheck.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from softras.raster import RasterSettings, rasterize_channels
from softras.raster.contract import FaceConst, bin_faces, has_area, pixel_ranges

from . import options
from .helpers import assert_grad_close
from .scenes import random_scene

# The soft alpha aggregations (hard alpha is tested with the z-buffer).
AGGREGATIONS = [a for a in options.AGGREGATIONS if a[2] != "hard"]


def _settings(dist_func: str = "euclidean", aggr_rgb: str = "softmax", aggr_alpha: str = "prod", **kw: object):
    base = {"sigma_val": 3e-2, "gamma_val": 3e-2, "near": 1.0, "far": 10.0, "fill_back": False}
    base.update(kw)
    return RasterSettings.create(
        (13, 17), dist_func=dist_func, aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, **base
    )


def _cpu(fv, s, **kw):
    return rasterize_channels(fv, s, backend="cpu", **kw)


def _groups_of_three(attrs: torch.Tensor) -> list[torch.Tensor]:
    """[B, F, T, C] -> 3-wide groups (the last one zero-padded)."""
    c = attrs.shape[-1]
    padded = torch.cat([attrs, attrs.new_zeros(*attrs.shape[:-1], (-c) % 3)], dim=-1)
    return list(padded.split(3, dim=-1))


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha"), AGGREGATIONS)
def test_any_width_equals_the_colour_path_channel_by_channel(dist_func: str, aggr_rgb: str, aggr_alpha: str) -> None:
    """Surface Cs = 4 and vertex Cv = 5 at once give, per 3-channel group, exactly the colour
    path's result (the weights do not depend on the channels)."""
    seed = AGGREGATIONS.index((dist_func, aggr_rgb, aggr_alpha))
    fv, _ = random_scene(batch=2, faces=12, seed=seed)
    g = torch.Generator().manual_seed(seed)
    surface = torch.rand(2, 12, 4, 4, generator=g, dtype=torch.float64)
    vertex = torch.rand(2, 12, 3, 5, generator=g, dtype=torch.float64)
    s = _settings(dist_func, aggr_rgb, aggr_alpha)
    bg = tuple(float(v) for v in torch.rand(9, generator=g))
    both = _cpu(fv, s, surface=surface, vertex=vertex, background=bg)
    assert both.channels.shape == (2, 9, 13, 17)
    got = []
    for i, grp in enumerate(_groups_of_three(surface)):
        r = _cpu(fv, s, surface=grp, background=(*bg[:4], 0.0, 0.0)[3 * i : 3 * i + 3])
        got.append(r.channels)
        torch.testing.assert_close(r.alpha, both.alpha, rtol=0, atol=0)
    for i, grp in enumerate(_groups_of_three(vertex)):
        got.append(_cpu(fv, s, vertex=grp, background=(*bg[4:], 0.0)[3 * i : 3 * i + 3]).channels)
    want = torch.cat([got[0], got[1][:, :1], got[2], got[3][:, :2]], dim=1)
    torch.testing.assert_close(both.channels, want, rtol=0, atol=1e-14)


def test_zero_channels_gives_alpha_only() -> None:
    fv, tex = random_scene(batch=1, faces=8, seed=3)
    s = _settings()
    r = _cpu(fv, s)
    assert r.channels.shape == (1, 0, 13, 17)
    torch.testing.assert_close(r.alpha, _cpu(fv, s, surface=tex).alpha, rtol=0, atol=0)
    assert r.depth is None and r.face_id is None


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha"), AGGREGATIONS)
def test_soft_depth_is_the_depth_channel(dist_func: str, aggr_rgb: str, aggr_alpha: str) -> None:
    """With a constant depth per face the pair depth is that constant, so the soft depth must
    equal a vertex channel holding z (background 0), with the same aggregation."""
    seed = 50 + AGGREGATIONS.index((dist_func, aggr_rgb, aggr_alpha))
    fv, _ = random_scene(batch=2, faces=10, seed=seed)
    fv[..., 2] = fv[..., :1, 2]  # one depth per face
    s = dataclasses.replace(_settings(dist_func, aggr_rgb, aggr_alpha), with_depth=True)
    r = _cpu(fv, s)
    z_channel = _cpu(fv, s, vertex=fv[..., 2:].clone()).channels
    torch.testing.assert_close(r.depth, z_channel, rtol=1e-13, atol=1e-13)


def test_zbuffer_outputs_against_the_hard_colour_path() -> None:
    """face id, barycentrics and hard depth of the z-buffer from the 'hard' colour path:
    vertex channels (f, f, f) give the winner, one-hot corners its screen barycentrics c."""
    fv, _ = random_scene(batch=2, faces=15, seed=11)
    s = dataclasses.replace(_settings(aggr_rgb="softmax"), with_zbuffer=True, with_depth=True)
    r = _cpu(fv, s)
    hard = dataclasses.replace(s, aggr_func_rgb="hard", with_zbuffer=False, with_depth=False)
    f_idx = torch.arange(15, dtype=torch.float64).reshape(1, 15, 1, 1).expand(2, 15, 3, 3).contiguous()
    winner = _cpu(fv, hard, vertex=f_idx, background=(-1.0,) * 3).channels[:, 0]
    assert (winner >= 0).any() and (winner < 0).any()
    torch.testing.assert_close(r.face_id, winner.round().long(), rtol=0, atol=0)
    eye = torch.eye(3, dtype=torch.float64).expand(2, 15, 3, 3).contiguous()
    c = _cpu(fv, hard, vertex=eye).channels  # [B, 3, H, W] screen barycentrics of the winner
    fid = r.face_id.clamp(min=0)
    zk = torch.stack([fv[b, fid[b], :, 2].permute(2, 0, 1) for b in range(2)])  # [B, 3, H, W]
    inv = c / zk
    zp = 1 / inv.sum(1, keepdim=True)
    empty = (r.face_id < 0)[:, None]
    torch.testing.assert_close(r.hard_depth, torch.where(empty, 0.0, zp), rtol=1e-13, atol=0)
    torch.testing.assert_close(r.barycentrics, torch.where(empty, 0.0, inv * zp), rtol=1e-12, atol=1e-14)
    assert r.face_id.dtype == torch.int64
    assert not r.barycentrics.requires_grad and not r.hard_depth.requires_grad


def test_zbuffer_and_depth_do_not_change_the_other_outputs() -> None:
    fv, tex = random_scene(batch=2, faces=20, seed=4)
    for aggr_rgb in options.RGB_AGGREGATIONS:
        s = _settings(aggr_rgb=aggr_rgb)
        plain = _cpu(fv, s, surface=tex)
        full = _cpu(fv, dataclasses.replace(s, with_depth=True, with_zbuffer=True), surface=tex)
        assert torch.equal(plain.channels, full.channels) and torch.equal(plain.alpha, full.alpha)


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha"), [a for a in AGGREGATIONS if a[0] != "hard"])
def test_gradcheck_channels_and_depth(dist_func: str, aggr_rgb: str, aggr_alpha: str) -> None:
    seed = AGGREGATIONS.index((dist_func, aggr_rgb, aggr_alpha))
    fv, _ = random_scene(batch=1, faces=3, seed=seed, size=1.0)
    g = torch.Generator().manual_seed(seed)
    surface = torch.rand(1, 3, 4, 2, generator=g, dtype=torch.float64)
    vertex = torch.rand(1, 3, 3, 2, generator=g, dtype=torch.float64)
    s = RasterSettings.create(
        (5, 6), sigma_val=4e-2, gamma_val=3e-2, dist_func=dist_func, aggr_func_rgb=aggr_rgb,
        aggr_func_alpha=aggr_alpha, near=1.0, far=6.0, dist_eps=1e-6, with_depth=True,
    )  # fmt: skip

    def run(f, a, b):
        r = rasterize_channels(f, s, surface=a, vertex=b, background=(0.1, 0.2, 0.3, 0.4), backend="cpu")
        return r.channels, r.alpha, r.depth

    inputs = tuple(t.requires_grad_(True) for t in (fv, surface, vertex))
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_only_the_needed_gradients_are_returned() -> None:
    fv, _ = random_scene(batch=1, faces=6, seed=2)
    vertex = torch.rand(1, 6, 3, 4, dtype=torch.float64, requires_grad=True)
    surface = torch.rand(1, 6, 1, 2, dtype=torch.float64)
    r = _cpu(fv, _settings(), surface=surface, vertex=vertex)
    r.channels.sum().backward()
    assert vertex.grad is not None and vertex.grad.abs().sum() > 0 and surface.grad is None


def test_float32_gradients_use_the_float64_outputs() -> None:
    """γ·(far − near) tiny: the softmax backward multiplies (value − output) by 1/((far − near)·γ),
    so it must read the output before rounding to float32."""
    g = torch.Generator().manual_seed(0)
    fv = torch.tensor([[[[0.67, -1.21, 1.5630], [0.24, -0.11, 1.5710], [0.37, 0.07, 1.5518]]]], dtype=torch.float64)
    fv = fv.float().double()  # float32 inputs; the float64 run on the same values is the truth
    vertex = (torch.rand(1, 1, 3, 3, generator=g, dtype=torch.float64) * 900).float().double()
    s = RasterSettings.create(
        43, near=1.55, far=1.576, sigma_val=2e-4, dist_func="hard", gamma_val=4e-7, aggr_func_alpha="hard"
    )
    w = torch.randn(1, 3, 43, 43, generator=g, dtype=torch.float64)

    def grad(dtype: torch.dtype) -> torch.Tensor:
        f = fv.to(dtype).detach().clone().requires_grad_(True)
        (_cpu(f, s, vertex=vertex.to(dtype)).channels * w.to(dtype)).sum().backward()
        return f.grad.double()

    want = grad(torch.float64)
    assert want.abs().max() > 1
    assert_grad_close(grad(torch.float32), want, 1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tile", [1, 5, 16, 32])
def test_compiled_binning_equals_the_contract(dtype: torch.dtype, tile: int) -> None:
    from softras.raster import cpu_binning, cpu_kernels

    for seed in range(4):
        fv, _ = random_scene(batch=3, faces=40, seed=seed, dtype=dtype, spread=1.5, size=0.3 + seed * 0.3)
        fv[0, 3, 2] = fv[0, 3, 0]  # zero-area faces (contract.has_area): a repeated vertex,
        fv[1, 5, 2, :2] = 0.5 * (fv[1, 5, 0, :2] + fv[1, 5, 1, :2])  # a collinear one,
        fv[2, 7, 1:, :2] = fv[2, 7, :1, :2] + 1e-9  # and a tiny one
        h, w = (21, 34) if seed % 2 else (40, 9)
        cull = math.sqrt(1e-3 * math.log(1 / 1e-4 - 1)) * (seed + 1)
        want = pixel_ranges(fv, cull, (h, w))
        ranges = np.empty((3, 40, 4), dtype=np.int64)
        front = np.empty((3, 40), dtype=np.bool_)
        xs = ((2 * torch.arange(w, dtype=torch.float64) + 1 - w) / w).to(dtype).numpy()
        ys = ((2 * (h - 1 - torch.arange(h, dtype=torch.float64)) + 1 - h) / h).to(dtype).numpy()
        inv = np.empty((3, 40, 9))
        # both compiled forms of each pass (parallel for many faces / batch items, else serial)
        for prepare in (cpu_kernels._prepare_faces_parallel, cpu_kernels._prepare_faces_serial):
            prepare(fv.numpy(), np.array([cull], dtype=xs.dtype), xs, ys, ranges, front, inv)
            got = torch.from_numpy(ranges)
            assert want.empty[~has_area(fv)].all()
            for k, t in enumerate((want.c0, want.c1, want.r0, want.r1)):
                assert torch.equal(got[..., k], t)
            assert torch.equal(torch.from_numpy(front), want.front)
        bins = bin_faces(want, tile, (h, w))
        for binning in (cpu_binning._bin_faces_parallel, cpu_binning._bin_faces_serial, cpu_binning.bin_faces):
            tile_start, tile_faces, face_start, entry_slot = binning(ranges, tile, bins.ntx, bins.nty)
            for a, b in ((tile_start, bins.tile_start), (tile_faces, bins.tile_faces),
                         (face_start, bins.face_start), (entry_slot, bins.entry_slot)):  # fmt: skip
                assert torch.equal(torch.from_numpy(a), b)


def test_face_tuple_follows_the_face_const_layout() -> None:
    from numba import njit

    from softras.raster import cpu_kernels

    @njit
    def load(fv, inv):
        return cpu_kernels._load_face(fv, inv, 0, 0)

    fv = torch.tensor([[[[0.1, 0.2, 2.0], [0.7, 0.3, 0.0], [0.2, 0.9, 3.0]]]], dtype=torch.float64)
    inv = np.empty((1, 1, 9))
    xs = np.linspace(-0.5, 0.5, 2)
    ranges, front = np.empty((1, 1, 4), dtype=np.int64), np.empty((1, 1), dtype=np.bool_)
    cpu_kernels.prepare_faces(fv.numpy(), np.array([0.1]), xs, xs, ranges, front, inv)
    fc = load(fv.numpy(), inv)
    assert len(fc) == FaceConst.COUNT
    (x0, y0, _), (x1, y1, _), (x2, y2, _) = fv[0, 0].tolist()
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    assert fc[FaceConst.INV + 0] == pytest.approx((y1 - y2) / det)
    assert fc[FaceConst.XY + 3] == y1
    assert fc[FaceConst.INV_Z : FaceConst.INV_Z + 3] == (0.5, 1e12, 1 / 3)
    assert fc[FaceConst.Z_OK : FaceConst.Z_OK + 3] == (1.0, 0.0, 1.0)
    assert fc[FaceConst.INV_EDGE_LEN2 + 1] == pytest.approx(1 / ((x2 - x1) ** 2 + (y2 - y1) ** 2))
    edge1 = math.hypot(x2 - x1, y2 - y1)  # opposite vertex 0
    assert fc[FaceConst.ALTITUDE2 + 0] == pytest.approx((det / edge1) ** 2)
