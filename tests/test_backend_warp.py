"""What only the Warp (``warp`` / ``cuda``) backend has: tile sizes, its compute dtype, the
deterministic and atomic backward, its registration as the CUDA default and its argument
checks. Everything every backend must do is in test_backends.py (where Warp runs on CPU
tensors, and on CUDA tensors when a GPU is present)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

pytest.importorskip("warp")

import softras.raster as raster
from softras.raster import RasterInputs, RasterSettings, available_backends, default_backend, rasterize
from softras.raster.reference import count_box_pairs
from softras.raster.warp_backend import _Prepared, rasterize_warp

from .helpers import assert_grad_close
from .options import RGB_AGGREGATIONS, TEXTURE_TYPES
from .scenes import crowded_scene, random_scene

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _grads(
    fv: torch.Tensor, tex: torch.Tensor, s: RasterSettings, *, reference: bool = False, **kw: object
) -> tuple[torch.Tensor, ...]:
    a, t = fv.clone().requires_grad_(True), tex.clone().requires_grad_(True)
    img = rasterize(a, t, s, backend="reference") if reference else rasterize_warp(a, t, s, **kw)
    # The same upstream gradient whatever the dtype (drawn in float64).
    weights = torch.randn(img.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (img * weights.to(device=img.device, dtype=img.dtype)).sum().backward()
    return img.detach(), a.grad, t.grad


def test_tile_size_does_not_change_the_result() -> None:
    fv, tex = crowded_scene()  # 300 small faces piled into one tile, plus faces larger than the image
    s = RasterSettings.create(32, sigma_val=1e-3, gamma_val=1e-2)
    ref = _grads(fv, tex, s, reference=True)
    for tile in (4, 16, 64):
        got = _grads(fv, tex, s, tile=tile)
        torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-10)
        assert_grad_close(got[1], ref[1], 1e-8)
        assert_grad_close(got[2], ref[2], 1e-8)
    fv, tex = random_scene(batch=2, faces=30, seed=8, spread=1.5)  # many faces cross the borders
    s = RasterSettings.create((20, 45), sigma_val=1e-3, gamma_val=1e-3)
    want = rasterize(fv, tex, s, backend="reference")
    for tile in (1, 7, 16, 64):
        torch.testing.assert_close(rasterize_warp(fv, tex, s, tile=tile), want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("texture_type", TEXTURE_TYPES)
def test_float64_arithmetic_on_float32_inputs(texture_type: str) -> None:
    fv, tex = random_scene(batch=2, faces=40, texture_type=texture_type, texture_res=1, seed=3, dtype=torch.float32)
    s = RasterSettings.create(48, texture_type=texture_type)  # defaults: sigma 1e-5, gamma 1e-4
    exact = rasterize(fv.double(), tex.double(), s, backend="reference")
    f64 = rasterize_warp(fv, tex, s, compute_dtype=torch.float64)
    assert f64.dtype == torch.float32
    torch.testing.assert_close(f64.double(), exact, rtol=0, atol=1e-5)  # only the output rounds


def test_kernel_visits_exactly_the_pairs_inside_the_grown_boxes() -> None:
    for seed in range(3):
        fv, tex = random_scene(batch=2, faces=30, seed=seed, dtype=torch.float32)
        s = RasterSettings.create((37, 50), sigma_val=1e-3)
        inputs = RasterInputs(fv, tex, fv.new_zeros(*fv.shape[:2], 3, 0), s.background_color)
        prep = _Prepared(inputs, s, 16, torch.float32, True)
        pr = prep.pr.long()  # [B*F, (c0, c1, r0, r1)]
        visited = int(((pr[:, 1] - pr[:, 0] + 1).clamp(min=0) * (pr[:, 3] - pr[:, 2] + 1).clamp(min=0)).sum())
        assert visited == count_box_pairs(fv, s) > 0
        # every face is listed in exactly the tiles its pixel range meets
        tiles_per_face = torch.bincount(prep.entry_face.long(), minlength=fv.shape[0] * fv.shape[1])
        assert int(tiles_per_face.sum()) == prep.tile_faces.numel() == int(prep.tile_start[-1])


def test_deterministic_backward_is_bit_identical_and_atomics_agree() -> None:
    fv, tex = random_scene(batch=3, faces=150, seed=9, dtype=torch.float32, size=0.3)
    s = RasterSettings.create(48, sigma_val=1e-4, gamma_val=1e-3)
    first = _grads(fv, tex, s, deterministic=True)
    for _ in range(2):
        again = _grads(fv, tex, s, deterministic=True)
        assert torch.equal(first[0], again[0])
        assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])
    atomic = _grads(fv, tex, s, deterministic=False)
    assert torch.equal(first[0], atomic[0])  # the forward does not depend on the mode
    assert_grad_close(atomic[1], first[1], 1e-5)
    assert_grad_close(atomic[2], first[2], 1e-5)


def test_deterministic_flag_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from softras.raster import warp_backend

    monkeypatch.delenv("SOFTRAS_WARP_DETERMINISTIC", raising=False)
    assert warp_backend._default_deterministic() is True
    monkeypatch.setenv("SOFTRAS_WARP_DETERMINISTIC", "0")
    assert warp_backend._default_deterministic() is False
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert warp_backend._default_deterministic() is True
    finally:
        torch.use_deterministic_algorithms(prev)


def test_registered_and_default_for_cuda_tensors() -> None:
    assert {"warp", "cuda"} <= set(available_backends())
    assert default_backend(torch.device("cuda")) == "cuda"
    assert default_backend(torch.device("cpu")) == "cpu"
    fv, tex = random_scene(batch=1, faces=5, seed=4)
    s = RasterSettings.create(12, sigma_val=1e-2)
    want = rasterize(fv, tex, s, backend="reference")
    for name in ("warp", "cuda"):
        torch.testing.assert_close(rasterize(fv, tex, s, backend=name), want, rtol=0, atol=1e-10)


def test_missing_warp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = {"softras_no_such_module": "pip install 'softras[gpu]'"}
    monkeypatch.setitem(raster.BACKENDS, "warp", dataclasses.replace(raster.BACKENDS["warp"], requires=missing))
    assert default_backend(torch.device("cuda")) == "reference"  # falls back, no error
    fv, tex = random_scene(batch=1, faces=2, seed=0)
    with pytest.raises(ImportError, match=r"pip install 'softras\[gpu\]'"):
        rasterize(fv, tex, RasterSettings.create(8), backend="warp")


def test_rejects_bad_arguments() -> None:
    fv, tex = random_scene(batch=1, faces=2, seed=0)
    s = RasterSettings.create(8)
    with pytest.raises(TypeError, match="float32 and float64"):
        rasterize_warp(fv.half(), tex.half(), s)
    with pytest.raises(ValueError, match="compute_dtype"):
        rasterize_warp(fv, tex, s, compute_dtype=torch.float32)
    with pytest.raises(TypeError, match="compute_dtype"):
        rasterize_warp(fv.float(), tex.float(), s, compute_dtype=torch.float16)
    with pytest.raises(ValueError, match="tile"):
        rasterize_warp(fv, tex, s, tile=0)
    with pytest.raises(ValueError, match="meta"):
        rasterize_warp(fv.to("meta"), tex.to("meta"), s)


@needs_cuda
def test_cuda_default_backend_and_determinism() -> None:
    fv, tex = random_scene(batch=4, faces=200, seed=9, dtype=torch.float32, size=0.3)
    fv, tex = fv.cuda(), tex.cuda()
    s = RasterSettings.create(64, sigma_val=1e-4, gamma_val=1e-3)
    torch.testing.assert_close(rasterize(fv, tex, s), rasterize_warp(fv, tex, s), rtol=0, atol=0)
    first = _grads(fv, tex, s, deterministic=True)
    again = _grads(fv, tex, s, deterministic=True)
    assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])


# ---- attribute channels of any width -------------------------------------------------------------
def _contract_scene(batch: int, faces: int, cs: int, cv: int, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    fv, _ = random_scene(batch=batch, faces=faces, seed=seed)
    surface = torch.rand(batch, faces, 4, cs, generator=g, dtype=torch.float64)  # R = 2
    vertex = torch.randn(batch, faces, 3, cv, generator=g, dtype=torch.float64)
    bg = tuple(float(v) for v in torch.rand(cs + cv, generator=g))
    return fv, surface, vertex, bg


def _warp_outputs(fv, surface, vertex, bg, s, **kw):
    from softras.raster.warp_backend import rasterize as warp_rasterize

    return warp_rasterize(RasterInputs(fv, surface, vertex, bg), s, **kw)


@pytest.mark.parametrize("aggr_rgb", RGB_AGGREGATIONS)
def test_channels_of_any_width_equal_separate_runs(aggr_rgb: str) -> None:
    fv, surface, vertex, bg = _contract_scene(2, 10, 3, 8, seed=21)
    s = RasterSettings.create((12, 10), sigma_val=1e-2, gamma_val=1e-2, aggr_func_rgb=aggr_rgb, far=10.0)
    both = _warp_outputs(fv, surface, vertex, bg, s)
    assert both.channels.shape == (2, 11, 12, 10) and both.depth is None and both.face_id is None
    surface_only = _warp_outputs(fv, surface, vertex[..., :0], bg[:3], s)
    vertex_only = _warp_outputs(fv, surface[..., :0], vertex, bg[3:], s)
    none = _warp_outputs(fv, surface[..., :0], vertex[..., :0], (), s)
    # The weights do not depend on the channels: each channel is computed exactly as alone.
    assert torch.equal(both.channels, torch.cat([surface_only.channels, vertex_only.channels], 1))
    assert none.channels.shape == (2, 0, 12, 10)
    for r in (surface_only, vertex_only, none):
        assert torch.equal(r.alpha, both.alpha)
    legacy = rasterize_warp(fv, surface, dataclasses.replace(s, background_color=bg[:3]))
    assert torch.equal(legacy, torch.cat([surface_only.channels, surface_only.alpha], 1))


def test_contract_gradients_only_where_needed_and_atomics_agree() -> None:
    fv, surface, vertex, bg = _contract_scene(2, 30, 2, 8, seed=13)
    s = RasterSettings.create(24, sigma_val=1e-3, gamma_val=1e-2, with_depth=True, far=10.0)
    first = None
    for deterministic in (True, False):
        leaves = [fv.clone().requires_grad_(True), surface, vertex.clone().requires_grad_(True)]
        r = _warp_outputs(*leaves, bg, s, deterministic=deterministic)
        (r.channels.sum() + r.depth.sum()).backward()
        assert leaves[1].grad is None
        grads = (leaves[0].grad, leaves[2].grad)
        if first is None:
            first = grads
        else:
            assert_grad_close(grads[0], first[0], 1e-10)
            assert_grad_close(grads[1], first[1], 1e-10)
