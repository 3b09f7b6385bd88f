"""The Warp (`warp` / `cuda`) backend against the reference backend, for every option.

The kernels run on Warp's CPU device here (the same source Warp compiles for CUDA), so these
tests exercise the GPU backend's code on machines without a GPU; the CUDA tests at the end are
skipped when no GPU is present.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

pytest.importorskip("warp")

import softras.raster as raster
from softras.raster import RasterInputs, RasterSettings, available_backends, default_backend, rasterize
from softras.raster.reference import count_box_pairs
from softras.raster.warp_backend import _Prepared, rasterize_warp

from .scenes import DEGENERATE_KINDS, crowded_scene, degenerate_scene, random_scene

COMBOS = list(
    itertools.product(
        ("hard", "barycentric", "euclidean"), ("hard", "softmax"), ("hard", "sum", "prod"), ("surface", "vertex")
    )
)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _grads(backend: str, fv: torch.Tensor, tex: torch.Tensor, s: RasterSettings, **kw: object) -> tuple:
    a, t = fv.clone().requires_grad_(True), tex.clone().requires_grad_(True)
    img = rasterize_warp(a, t, s, **kw) if backend == "warp" else rasterize(a, t, s, backend=backend)
    # The same upstream gradient whatever the dtype (drawn in float64).
    weights = torch.randn(img.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (img * weights.to(device=img.device, dtype=img.dtype)).sum().backward()
    grad_v = torch.zeros_like(fv) if a.grad is None else a.grad
    grad_t = torch.zeros_like(tex) if t.grad is None else t.grad
    return img.detach(), grad_v, grad_t


def _assert_grad_close(got: torch.Tensor, want: torch.Tensor, rel: float) -> None:
    # ≤ rel relative to the gradient's scale (entries that are ~0 differ by rounding only)
    want = want.to(torch.float64)
    scale = max(float(want.abs().max()), 1e-12)
    torch.testing.assert_close(got.to(torch.float64).cpu(), want.cpu(), rtol=rel, atol=rel * scale)


def _settings(combo: tuple[str, str, str, str], size: object, **kw: object) -> RasterSettings:
    dist_func, aggr_rgb, aggr_alpha, texture_type = combo
    return RasterSettings.create(
        size, dist_func=dist_func, aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, texture_type=texture_type, **kw
    )


# ---- float64: every option, batches of 1 and 3 ----------------------------------------------------
@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c) for c in COMBOS])
@pytest.mark.parametrize("batch", [1, 3])
def test_warp_matches_reference_float64(combo: tuple[str, str, str, str], batch: int) -> None:
    seed = COMBOS.index(combo) + 100 * batch
    fv, tex = random_scene(batch=batch, faces=10, texture_type=combo[3], texture_res=3, seed=seed)
    s = _settings(
        combo, (13, 17), sigma_val=3e-2, gamma_val=3e-2, background_color=(0.2, 0.3, 0.4), near=1.0, far=10.0,
        fill_back=bool(batch % 2),
    )  # fmt: skip
    ref = _grads("reference", fv, tex, s)
    got = _grads("warp", fv, tex, s, tile=4)
    assert got[0].dtype == torch.float64
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-10)
    _assert_grad_close(got[1], ref[1], 1e-8)
    _assert_grad_close(got[2], ref[2], 1e-8)


# ---- float32 arithmetic: every option ----------------------------------------------------------------
@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_warp_float32_matches_reference(combo: tuple[str, str, str, str]) -> None:
    seed = COMBOS.index(combo)
    fv, tex = random_scene(batch=2, faces=10, texture_type=combo[3], texture_res=3, seed=seed, dtype=torch.float32)
    # float32 rounding of a barycentric (~1e-7) moves x = d²/σ by ~2·1e-7·√θ/σ ∝ σ^-1/2: at
    # σ = 1e-2 outputs stay within 1e-5 (at σ = 1e-3, 2e-5; the defaults: see the next test).
    s = _settings(combo, (13, 17), sigma_val=1e-2, gamma_val=1e-2, background_color=(0.2, 0.3, 0.4), far=10.0)
    exact = _grads("reference", fv.double(), tex.double(), s)
    got = _grads("warp", fv, tex, s)
    assert got[0].dtype == torch.float32 and got[1].dtype == torch.float32
    torch.testing.assert_close(got[0].double(), exact[0], rtol=0, atol=1e-5)
    _assert_grad_close(got[1], exact[1], 1e-4)
    _assert_grad_close(got[2], exact[2], 1e-4)


@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_warp_float32_default_sigma_gamma(combo: tuple[str, str, str, str]) -> None:
    seed = COMBOS.index(combo)
    fv, tex = random_scene(batch=2, faces=40, texture_type=combo[3], texture_res=1, seed=seed, dtype=torch.float32)
    s = _settings(combo, 48)  # defaults: sigma 1e-5, gamma 1e-4
    exact = rasterize(fv.double(), tex.double(), s, backend="reference")
    # float64 arithmetic on float32 inputs: the cpu backend's accuracy (only the output rounds).
    f64 = rasterize_warp(fv, tex, s, compute_dtype=torch.float64)
    assert f64.dtype == torch.float32
    torch.testing.assert_close(f64.double(), exact, rtol=0, atol=1e-5)
    # float32 arithmetic (the default): at σ = 1e-5 a rounding of 1e-7 in a barycentric moves
    # D by ~1e-5; measured worst 6e-5 over these scenes (the float32 *reference*: 4e-4).
    f32 = rasterize_warp(fv, tex, s)
    torch.testing.assert_close(f32.double(), exact, rtol=0, atol=1.5e-4)


# ---- crowding, borders, degenerate faces, tiles -----------------------------------------------------
def test_crowded_tile_and_huge_faces() -> None:
    fv, tex = crowded_scene()  # 300 small faces piled into one tile, plus faces larger than the image
    s = RasterSettings.create(32, sigma_val=1e-3, gamma_val=1e-2)
    ref = _grads("reference", fv, tex, s)
    for tile in (4, 16, 64):
        got = _grads("warp", fv, tex, s, tile=tile)
        torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-10)
        _assert_grad_close(got[1], ref[1], 1e-8)
        _assert_grad_close(got[2], ref[2], 1e-8)


@pytest.mark.parametrize("degenerate", DEGENERATE_KINDS)
def test_degenerate_faces_match_reference(degenerate: str) -> None:
    fv, tex = degenerate_scene(degenerate)
    s = RasterSettings.create(16, sigma_val=1e-2, gamma_val=1e-2, texture_type="vertex", near=0.1)
    ref = _grads("reference", fv, tex, s)
    got = _grads("warp", fv, tex, s)
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-10)
    for g, want in zip(got[1:], ref[1:], strict=True):
        assert torch.isfinite(g).all()
        # Face 0's own gradient runs through 1 / det with det clamped to 1e-10 when it has no
        # area (ill-conditioned: any summation order changes it); every other face must agree.
        _assert_grad_close(g[:, 1:], want[:, 1:], 1e-8)


def test_non_square_borders_and_tile_independent() -> None:
    fv, tex = random_scene(batch=2, faces=30, seed=8, spread=1.5)  # many faces cross the borders
    s = RasterSettings.create((20, 45), sigma_val=1e-3, gamma_val=1e-3)
    ref = rasterize(fv, tex, s, backend="reference")
    for tile in (1, 7, 16, 64):
        torch.testing.assert_close(rasterize_warp(fv, tex, s, tile=tile), ref, rtol=0, atol=1e-10)


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


# ---- gradients: finite differences, partial requires_grad --------------------------------------------
@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_warp_gradcheck(combo: tuple[str, str, str, str]) -> None:
    seed = COMBOS.index(combo)
    fv, tex = random_scene(batch=1, faces=3, texture_type=combo[3], texture_res=2, seed=seed, size=1.0)
    s = _settings(
        combo, (5, 6), sigma_val=4e-2, gamma_val=3e-2, near=1.0, far=6.0, dist_eps=1e-6,
        background_color=(0.3, 0.5, 0.7),
    )  # fmt: skip
    inputs = (fv.requires_grad_(True), tex.requires_grad_(True))
    assert torch.autograd.gradcheck(lambda f, t: rasterize_warp(f, t, s), inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradient_for_one_input_only() -> None:
    fv, tex = random_scene(batch=2, faces=8, seed=11)
    s = RasterSettings.create(16, sigma_val=1e-2, gamma_val=1e-2)
    _, want_v, want_t = _grads("reference", fv, tex, s)
    weights = torch.randn(2, 4, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = fv.clone().requires_grad_(True)
    (rasterize_warp(a, tex, s) * weights).sum().backward()
    _assert_grad_close(a.grad, want_v, 1e-8)
    t = tex.clone().requires_grad_(True)
    (rasterize_warp(fv, t, s) * weights).sum().backward()
    _assert_grad_close(t.grad, want_t, 1e-8)
    with torch.no_grad():
        assert not rasterize_warp(fv.requires_grad_(True), tex, s).requires_grad


# ---- determinism ---------------------------------------------------------------------------------------
def test_deterministic_backward_is_bit_identical_and_atomics_agree() -> None:
    fv, tex = random_scene(batch=3, faces=150, seed=9, dtype=torch.float32, size=0.3)
    s = RasterSettings.create(48, sigma_val=1e-4, gamma_val=1e-3)
    first = _grads("warp", fv, tex, s, deterministic=True)
    for _ in range(2):
        again = _grads("warp", fv, tex, s, deterministic=True)
        assert torch.equal(first[0], again[0])
        assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])
    atomic = _grads("warp", fv, tex, s, deterministic=False)
    assert torch.equal(first[0], atomic[0])  # the forward does not depend on the mode
    _assert_grad_close(atomic[1], first[1], 1e-5)
    _assert_grad_close(atomic[2], first[2], 1e-5)


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


# ---- registry and errors -------------------------------------------------------------------------------
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


def test_faces_all_off_image() -> None:
    fv, tex = random_scene(batch=2, faces=4, seed=5)
    fv[..., 0] += 10.0  # nothing lands on the image: no (face, tile) entries at all
    s = RasterSettings.create(8, sigma_val=1e-2, background_color=(0.1, 0.2, 0.3))
    ref = _grads("reference", fv, tex, s)
    got = _grads("warp", fv, tex, s)
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-12)
    assert not got[1].any() and not got[2].any()


# ---- CUDA (skipped without a GPU) ------------------------------------------------------------------------
@needs_cuda
@pytest.mark.parametrize("combo", COMBOS[::5], ids=["-".join(c) for c in COMBOS[::5]])
def test_cuda_matches_reference(combo: tuple[str, str, str, str]) -> None:
    fv, tex = random_scene(batch=2, faces=20, texture_type=combo[3], texture_res=3, seed=COMBOS.index(combo))
    s = _settings(combo, (24, 33), sigma_val=1e-2, gamma_val=1e-2, far=10.0)
    ref = _grads("reference", fv, tex, s)
    got = _grads("warp", fv.cuda(), tex.cuda(), s)
    assert got[0].device.type == "cuda" and got[1].device.type == "cuda"
    torch.testing.assert_close(got[0].cpu(), ref[0], rtol=0, atol=1e-10)
    _assert_grad_close(got[1], ref[1], 1e-8)
    _assert_grad_close(got[2], ref[2], 1e-8)


@needs_cuda
def test_cuda_default_backend_and_determinism() -> None:
    fv, tex = random_scene(batch=4, faces=200, seed=9, dtype=torch.float32, size=0.3)
    fv, tex = fv.cuda(), tex.cuda()
    s = RasterSettings.create(64, sigma_val=1e-4, gamma_val=1e-3)
    torch.testing.assert_close(rasterize(fv, tex, s), rasterize_warp(fv, tex, s), rtol=0, atol=0)
    first = _grads("warp", fv, tex, s, deterministic=True)
    again = _grads("warp", fv, tex, s, deterministic=True)
    assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])


# ---- the contract's outputs: attribute channels of any width, soft depth, z-buffer -----------------
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


CONTRACT_COMBOS = list(itertools.product(("hard", "barycentric", "euclidean"), ("hard", "softmax"), ("sum", "prod")))


@pytest.mark.parametrize("channels", [(3, 0), (0, 3), (2, 5), (0, 0)], ids=["surface3", "vertex3", "both", "none"])
@pytest.mark.parametrize("combo", CONTRACT_COMBOS, ids=["-".join(c) for c in CONTRACT_COMBOS])
def test_contract_outputs_match_reference(combo: tuple[str, str, str], channels: tuple[int, int]) -> None:
    dist_func, aggr_rgb, aggr_alpha = combo
    fv, surface, vertex, bg = _contract_scene(2, 8, *channels, seed=CONTRACT_COMBOS.index(combo))
    s = RasterSettings.create(
        (9, 11), dist_func=dist_func, aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, sigma_val=3e-2,
        gamma_val=3e-2, near=1.0, far=10.0, fill_back=CONTRACT_COMBOS.index(combo) % 2 == 0, with_depth=True,
        with_zbuffer=True,
    )  # fmt: skip
    results, grads = [], []
    for backend in ("reference", "warp"):
        leaves = [t.clone().requires_grad_(True) for t in (fv, surface, vertex)]
        r = raster.rasterize_channels(leaves[0], s, surface=leaves[1], vertex=leaves[2], background=bg, backend=backend)
        gen = torch.Generator().manual_seed(2)
        outs = (r.channels, r.alpha, r.depth)
        loss = sum((t * torch.randn(t.shape, dtype=t.dtype, generator=gen)).sum() for t in outs)
        loss.backward()
        results.append(r)
        grads.append([torch.zeros_like(t) if t.grad is None else t.grad for t in leaves])
    want, got = results
    for name in ("channels", "alpha", "depth", "barycentrics", "hard_depth"):
        value, expected = getattr(got, name).detach(), getattr(want, name).detach()
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-10, msg=name)
    assert torch.equal(got.face_id, want.face_id) and got.face_id.dtype == torch.int64
    assert (got.face_id >= 0).any() and (got.face_id < 0).any()
    assert not (got.face_id.requires_grad or got.barycentrics.requires_grad or got.hard_depth.requires_grad)
    for g, w in zip(grads[1], grads[0], strict=True):
        assert g.shape == w.shape
        if w.numel():
            _assert_grad_close(g, w, 1e-8)


@pytest.mark.parametrize("aggr_rgb", ["hard", "softmax"])
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


@pytest.mark.parametrize("aggr_rgb", ["hard", "softmax"])
def test_depth_and_features_gradcheck(aggr_rgb: str) -> None:
    fv, surface, vertex, bg = _contract_scene(1, 3, 1, 2, seed=5)
    s = RasterSettings.create(
        (5, 6), sigma_val=4e-2, gamma_val=3e-2, near=1.0, far=6.0, dist_eps=1e-6, aggr_func_rgb=aggr_rgb,
        with_depth=True, with_zbuffer=True,
    )  # fmt: skip

    def run(f, a, v):
        r = _warp_outputs(f, a, v, bg, s)
        return r.channels, r.alpha, r.depth

    inputs = tuple(t.requires_grad_(True) for t in (fv, surface, vertex))
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


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
            _assert_grad_close(grads[0], first[0], 1e-10)
            _assert_grad_close(grads[1], first[1], 1e-10)
