"""One conformance suite for every rasterization backend, against the reference backend.

Every available backend of :data:`softras.raster.backends.BACKENDS` except the reference (which
is tested against the plain-Python oracle in test_raster_reference.py and
test_reference_outputs.py) runs every case here, on every device it supports that is present:
a backend registered there is tested with no test written by hand. A twin of the reference
(``reference_chunked``: the reference in chunks of 500 pairs) runs the float64 cases too, so the
suite itself is checked to find nothing where there is nothing to find.

The kernels' options are held to the same answers: the tile size, repeated backward passes
(bit-identical by default) and channels of any width (each computed exactly as alone). What only
one backend has (its options, its internals, its wrapper) is in test_backend_specific.py.

Run it for one backend with ``pytest tests/test_backends.py -k cpu`` (ids: ``<backend>`` on CPU
tensors, ``<backend>@cuda`` on CUDA tensors).

Tolerances: float64 outputs 1e-10 (absolute), gradients 1e-8 relative to each gradient's
largest entry; float32 backends against the float64 reference: 1e-5 at σ = γ = 1e-2 with
gradients 1e-4, and 1.5e-4 at the defaults σ = 1e-5, γ = 1e-4.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

from softras.raster import (
    BACKENDS,
    Backend,
    RasterInputs,
    RasterResult,
    RasterSettings,
    rasterize,
    rasterize_channels,
)
from softras.raster import reference as reference_module

from .helpers import Target, assert_grad_close, image_and_grads, kernel_targets
from .options import AGGREGATIONS, COMBO_IDS, COMBOS, RGB_AGGREGATIONS
from .scenes import DEGENERATE_KINDS, crowded_scene, degenerate_scene, random_attributes, random_scene

WIDTHS = [(0, 0), (1, 0), (0, 1), (3, 0), (0, 3), (5, 0), (0, 5), (3, 2), (2, 5)]
# Every (dist_func, aggr_func_rgb, aggr_func_alpha) once, each width of WIDTHS twice.
OUTPUT_CASES = [(c, *WIDTHS[i % len(WIDTHS)]) for i, c in enumerate(AGGREGATIONS)]
SOFT = ("channels", "alpha", "depth")
TWIN = "reference_chunked"


# ---- targets: (backend, device) --------------------------------------------------------------------
@pytest.fixture(params=[pytest.param(Target(TWIN, "cpu"), id=TWIN), *kernel_targets()])
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Target:
    """A backend compared with the reference: every kernel backend, and the reference's twin."""
    t: Target = request.param
    if t.name == TWIN:
        twin = Backend(
            name=TWIN,
            summary="the reference with tiny chunks (the suite's self-check)",
            devices=("*",),
            priority=-1,
            entry="softras.raster.reference:rasterize",
            _fn=[functools.partial(reference_module.rasterize, max_pairs=500)],
        )
        monkeypatch.setitem(BACKENDS, TWIN, twin)
    return t


@pytest.fixture(params=kernel_targets())
def kernel(request: pytest.FixtureRequest) -> Target:
    """A kernel backend: for the checks that the twin cannot take (gradcheck: the reference's is
    in test_reference_outputs.py; float32 against the float64 reference, whose tolerances are
    the kernels' and finer than the float32 *reference*'s own error)."""
    return request.param


# ---- running a backend and the reference -------------------------------------------------------------
class Run(NamedTuple):
    result: RasterResult  # detached, on the CPU
    grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # w.r.t. face_vertices, surface, vertex


def _run(
    backend: str,
    device: str,
    fv: torch.Tensor,
    surface: torch.Tensor,
    vertex: torch.Tensor,
    background: tuple[float, ...],
    s: RasterSettings,
    *,
    grads: bool = True,
) -> Run:
    """Forward, and backward of a fixed random upstream gradient of every soft output."""
    inputs = [x.detach().to(device).requires_grad_(grads) for x in (fv, surface, vertex)]
    r = rasterize_channels(inputs[0], s, surface=inputs[1], vertex=inputs[2], background=background, backend=backend)
    if grads:
        g = torch.Generator().manual_seed(1)
        outs = [getattr(r, k) for k in SOFT if getattr(r, k) is not None]
        ups = [torch.randn(o.shape, dtype=torch.float64, generator=g).to(device=device, dtype=o.dtype) for o in outs]
        loss = sum((o * u).sum() for o, u in zip(outs, ups, strict=True))
        if loss.requires_grad:
            loss.backward()
    got = tuple(torch.zeros_like(x) if x.grad is None else x.grad.detach() for x in inputs)
    fields = (None if v is None else v.detach().cpu() for v in r)
    return Run(RasterResult(*fields), tuple(x.cpu() for x in got))


_REFERENCE_CACHE: dict[tuple, Run] = {}


def _key(x: torch.Tensor) -> tuple:
    return (tuple(x.shape), x.dtype, x.detach().cpu().contiguous().numpy().tobytes())


def _reference(
    fv: torch.Tensor,
    surface: torch.Tensor,
    vertex: torch.Tensor,
    background: tuple[float, ...],
    s: RasterSettings,
    *,
    grads: bool = True,
) -> Run:
    """The reference in float64 (whatever the inputs' dtype), computed once per case for all targets."""
    key = (_key(fv), _key(surface), _key(vertex), background, s, grads)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = _run(
            "reference", "cpu", fv.double(), surface.double(), vertex.double(), background, s, grads=grads
        )
    return _REFERENCE_CACHE[key]


def _assert_zbuffer_equal(got: RasterResult, want: RasterResult, tol: float) -> None:
    """Equal z-buffers (ties within contract.ZBUFFER_RTOL go to the lowest face everywhere)."""
    assert got.face_id.dtype == torch.int64
    assert torch.equal(got.face_id, want.face_id)
    torch.testing.assert_close(got.barycentrics.double(), want.barycentrics.double(), rtol=0, atol=tol)
    torch.testing.assert_close(got.hard_depth.double(), want.hard_depth.double(), rtol=0, atol=tol)


def _assert_conforms(got: Run, want: Run, s: RasterSettings, *, out_tol: float, grad_rel: float | None) -> None:
    """Every output the settings ask for (and no other), and the gradients."""
    for name in SOFT:
        g, w = getattr(got.result, name), getattr(want.result, name)
        if name == "depth" and not s.with_depth:
            assert g is None
            continue
        assert g.shape == w.shape, name
        torch.testing.assert_close(g.double(), w.double(), rtol=0, atol=out_tol, msg=lambda m, n=name: f"{n}: {m}")
    if s.with_zbuffer:
        _assert_zbuffer_equal(got.result, want.result, out_tol)
    else:
        assert got.result.face_id is None and got.result.barycentrics is None and got.result.hard_depth is None
    if grad_rel is not None:
        for g, w in zip(got.grads, want.grads, strict=True):
            assert_grad_close(g, w, grad_rel)


def _legacy_attributes(tex: torch.Tensor, texture_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(surface, vertex) of the colour path: the 3-channel textures and an empty other one."""
    b, f = tex.shape[:2]
    if texture_type == "vertex":
        return tex.new_zeros(b, f, 1, 0), tex
    return tex, tex.new_zeros(b, f, 3, 0)


def _settings(combo: tuple[str, ...], size: object, **kw: object) -> RasterSettings:
    dist_func, aggr_rgb, aggr_alpha = combo[:3]
    return RasterSettings.create(size, dist_func=dist_func, aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, **kw)


# ---- the colour path: every option, batches of 1 and 3, float64 -------------------------------------
@pytest.mark.parametrize("combo", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("batch", [1, 3])
def test_colour_every_option_float64(target: Target, combo: tuple[str, ...], batch: int) -> None:
    seed = COMBOS.index(combo) + 100 * batch
    fv, tex = random_scene(batch=batch, faces=10, texture_type=combo[3], texture_res=3, seed=seed)
    surface, vertex = _legacy_attributes(tex, combo[3])
    bg = (0.2, 0.3, 0.4)
    s = _settings(combo, (13, 17), sigma_val=3e-2, gamma_val=3e-2, near=1.0, far=10.0, fill_back=bool(batch % 2))
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    assert got.result.channels.dtype == torch.float64
    _assert_conforms(got, _reference(fv, surface, vertex, bg, s), s, out_tol=1e-10, grad_rel=1e-8)


@pytest.mark.parametrize("combo", COMBOS, ids=COMBO_IDS)
def test_original_rgba_entry_point(target: Target, combo: tuple[str, ...]) -> None:
    """The original's [B, 4, H, W] call (a backend's ``rgba_entry`` where it has one, else the
    dispatch's concatenation): images and gradients equal the reference's."""
    texture_type = combo[3]
    fv, tex = random_scene(batch=2, faces=6, texture_type=texture_type, texture_res=2, seed=4)
    bg = (0.1, 0.2, 0.3)
    s = _settings(combo, (12, 14), sigma_val=1e-2, gamma_val=1e-2, texture_type=texture_type, background_color=bg)
    upstream = torch.randn(2, 4, 12, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def run(backend: str, device: str) -> tuple[torch.Tensor, ...]:
        leaves = [x.detach().to(device).requires_grad_(True) for x in (fv, tex)]
        image = rasterize(*leaves, s, backend=backend)
        (image * upstream.to(device)).sum().backward()
        grads = tuple(torch.zeros_like(x) if x.grad is None else x.grad for x in leaves)
        return tuple(t.detach().cpu() for t in (image, *grads))

    got, want = run(target.name, target.device), run("reference", "cpu")
    assert got[0].shape == (2, 4, 12, 14)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-10)
    for g, w in zip(got[1:], want[1:], strict=True):
        assert_grad_close(g, w, 1e-8)


# ---- attributes of any width, soft depth and the z-buffer, float64 -----------------------------------
@pytest.mark.parametrize(
    ("combo", "cs", "cv"), OUTPUT_CASES, ids=[f"{'-'.join(c)}-cs{a}-cv{b}" for c, a, b in OUTPUT_CASES]
)
def test_outputs_any_width_float64(target: Target, combo: tuple[str, ...], cs: int, cv: int) -> None:
    seed = OUTPUT_CASES.index((combo, cs, cv))
    fv, _ = random_scene(batch=2, faces=9, seed=seed, z_range=(0.7, 5.5))  # straddles near and far
    surface, vertex, bg = random_attributes(fv, cs, cv, texture_res=3, seed=seed)
    s = _settings(combo, (11, 9), sigma_val=3e-2, gamma_val=3e-2, near=1.0, far=5.0, fill_back=seed % 2 == 0,
                  with_depth=True, with_zbuffer=True)  # fmt: skip
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    _assert_conforms(got, _reference(fv, surface, vertex, bg, s), s, out_tol=1e-10, grad_rel=1e-8)


@pytest.mark.parametrize(("with_depth", "with_zbuffer"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("aggr_rgb", RGB_AGGREGATIONS)
def test_only_the_outputs_asked_for(target: Target, with_depth: bool, with_zbuffer: bool, aggr_rgb: str) -> None:
    fv, _ = random_scene(batch=2, faces=8, seed=12)
    surface, vertex, bg = random_attributes(fv, 2, 3, seed=12)
    s = RasterSettings.create((10, 12), sigma_val=1e-2, gamma_val=1e-2, aggr_func_rgb=aggr_rgb,
                              with_depth=with_depth, with_zbuffer=with_zbuffer)  # fmt: skip
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    _assert_conforms(got, _reference(fv, surface, vertex, bg, s), s, out_tol=1e-10, grad_rel=1e-8)


def test_zbuffer_outputs_are_detached(target: Target) -> None:
    fv, _ = random_scene(batch=1, faces=5, seed=3)
    surface, vertex, bg = random_attributes(fv, 1, 1, seed=3)
    s = RasterSettings.create(8, sigma_val=1e-2, with_depth=True, with_zbuffer=True)
    a, t, v = (x.to(target.device).requires_grad_() for x in (fv, surface, vertex))
    r = rasterize_channels(a, s, surface=t, vertex=v, background=bg, backend=target.name)
    assert r.channels.requires_grad and r.alpha.requires_grad and r.depth.requires_grad
    assert not (r.face_id.requires_grad or r.barycentrics.requires_grad or r.hard_depth.requires_grad)


def test_zbuffer_ties_go_to_the_lowest_face(target: Target) -> None:
    tri = torch.tensor([[-0.8, -0.8, 2.0], [0.8, -0.8, 2.0], [0.0, 0.8, 2.0]], dtype=torch.float64)
    fv = torch.stack([tri + torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), tri, tri, tri])[None]
    vertex = torch.arange(4.0, dtype=torch.float64).reshape(1, 4, 1, 1).expand(1, 4, 3, 2).contiguous()
    surface = fv.new_zeros(1, 4, 1, 0)
    for aggr_rgb in RGB_AGGREGATIONS:
        s = RasterSettings.create(8, dist_func="hard", aggr_func_rgb=aggr_rgb, with_zbuffer=True, with_depth=True)
        got = _run(target.name, target.device, fv, surface, vertex, (0.0, 0.0), s)
        assert bool((got.result.face_id[got.result.face_id >= 0] == 1).all())
        _assert_conforms(got, _reference(fv, surface, vertex, (0.0, 0.0), s), s, out_tol=1e-10, grad_rel=1e-8)


# ---- float32 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("combo", COMBOS, ids=COMBO_IDS)
def test_colour_float32(kernel: Target, combo: tuple[str, ...]) -> None:
    seed = COMBOS.index(combo)
    fv, tex = random_scene(batch=2, faces=10, texture_type=combo[3], texture_res=3, seed=seed, dtype=torch.float32)
    surface, vertex = _legacy_attributes(tex, combo[3])
    bg = (0.2, 0.3, 0.4)
    # float32 rounding of a barycentric (~1e-7) moves x = d²/σ by ~2·1e-7·√θ/σ ∝ σ^-1/2: at
    # σ = 1e-2 outputs stay within 1e-5.
    s = _settings(combo, (13, 17), sigma_val=1e-2, gamma_val=1e-2, far=10.0)
    got = _run(kernel.name, kernel.device, fv, surface, vertex, bg, s)
    assert got.result.channels.dtype == torch.float32 and got.grads[0].dtype == torch.float32
    _assert_conforms(got, _reference(fv, surface, vertex, bg, s), s, out_tol=1e-5, grad_rel=1e-4)


@pytest.mark.parametrize("combo", COMBOS, ids=COMBO_IDS)
def test_colour_float32_default_sigma_gamma(kernel: Target, combo: tuple[str, ...]) -> None:
    seed = COMBOS.index(combo)
    fv, tex = random_scene(batch=2, faces=30, texture_type=combo[3], texture_res=1, seed=seed, dtype=torch.float32)
    surface, vertex = _legacy_attributes(tex, combo[3])
    s = _settings(combo, 32)  # defaults: sigma 1e-5, gamma 1e-4
    got = _run(kernel.name, kernel.device, fv, surface, vertex, (0.0, 0.0, 0.0), s, grads=False)
    # At σ = 1e-5 a float32 rounding of 1e-7 in a barycentric moves D by ~1e-5; float32
    # arithmetic measured worst 6e-5 over these scenes (the float32 *reference*: 4e-4).
    want = _reference(fv, surface, vertex, (0.0, 0.0, 0.0), s, grads=False)
    _assert_conforms(got, want, s, out_tol=1.5e-4, grad_rel=None)


@pytest.mark.parametrize("aggr_rgb", RGB_AGGREGATIONS)
def test_outputs_float32(kernel: Target, aggr_rgb: str) -> None:
    fv, _ = random_scene(batch=2, faces=10, seed=21, dtype=torch.float32)
    surface, vertex, bg = random_attributes(fv, 2, 3, texture_res=1, seed=21)
    s = RasterSettings.create((13, 17), sigma_val=1e-2, gamma_val=1e-2, far=10.0, aggr_func_rgb=aggr_rgb,
                              with_depth=True, with_zbuffer=True)  # fmt: skip
    got = _run(kernel.name, kernel.device, fv, surface, vertex, bg, s)
    want = _reference(fv, surface, vertex, bg, s)
    for name in SOFT:
        torch.testing.assert_close(getattr(got.result, name).double(), getattr(want.result, name).double(), rtol=0,
                                   atol=1e-5)  # fmt: skip
    for g, w in zip(got.grads, want.grads, strict=True):
        assert_grad_close(g, w, 1e-4)
    # The z-buffer: the same face except where float32 rounding moves a pixel across an edge or a depth tie.
    same = got.result.face_id == want.result.face_id
    assert float(same.double().mean()) >= 0.98
    same3 = same[:, None].expand_as(got.result.barycentrics)
    torch.testing.assert_close(got.result.barycentrics[same3].double(), want.result.barycentrics[same3].double(),
                               rtol=0, atol=1e-4)  # fmt: skip
    torch.testing.assert_close(got.result.hard_depth[:, 0][same].double(), want.result.hard_depth[:, 0][same].double(),
                               rtol=1e-5, atol=0)  # fmt: skip


# ---- what the kernels' options must not change: tile size, the backward's order, channel widths -----------
def _tiled(name: str, s: RasterSettings, tile: int) -> list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The backend's entry and its RGBA entry (where it has one) at ``tile``, as the original's
    (face_vertices, textures) -> [B, 4, H, W] call."""
    backend = BACKENDS[name]
    entries = [backend.load(), *([backend.load_rgba()] if backend.rgba_entry is not None else [])]
    if any("tile" not in inspect.signature(fn).parameters for fn in entries):
        pytest.skip(f"backend {name!r} has no tile option")

    def call(fn: Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def render(fv: torch.Tensor, tex: torch.Tensor) -> torch.Tensor:
            out = fn(RasterInputs.from_textures(fv, tex, s), s, tile=tile)
            return out if isinstance(out, torch.Tensor) else torch.cat([out.channels, out.alpha], 1)

        return render

    return [call(fn) for fn in entries]


def test_tile_size_does_not_change_the_result(kernel: Target) -> None:
    fv, tex = crowded_scene()  # 300 small faces piled into one tile, plus faces larger than the image
    s = RasterSettings.create(32, sigma_val=1e-3, gamma_val=1e-2)
    want = image_and_grads(lambda a, t: rasterize(a, t, s, backend="reference"), fv, tex)
    for tile in (1, 4, 16, 64):
        for render in _tiled(kernel.name, s, tile):
            got = image_and_grads(render, fv, tex, kernel.device)
            torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-10)
            assert_grad_close(got[1], want[1], 1e-8)
            assert_grad_close(got[2], want[2], 1e-8)
    s = RasterSettings.create((20, 45), sigma_val=1e-3, gamma_val=1e-3)
    for spread in (1.2, 1.5):  # at 1.5 many faces cross the borders
        fv, tex = random_scene(batch=2, faces=30, seed=8, spread=spread)
        want = rasterize(fv, tex, s, backend="reference")
        for tile in (1, 7, 16, 64):
            for render in _tiled(kernel.name, s, tile):
                got = render(fv.to(kernel.device), tex.to(kernel.device)).cpu()
                torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_backward_is_deterministic_by_default(kernel: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated calls give bit-identical images and gradients (a backend may offer a faster
    non-deterministic backward, Warp's ``SOFTRAS_WARP_DETERMINISTIC=0``, only when asked)."""
    monkeypatch.delenv("SOFTRAS_WARP_DETERMINISTIC", raising=False)
    fv, tex = random_scene(batch=4, faces=200, seed=9, dtype=torch.float32, size=0.3)
    s = RasterSettings.create(64, sigma_val=1e-4, gamma_val=1e-4)

    def render(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return rasterize(a, t, s, backend=kernel.name)

    first = image_and_grads(render, fv, tex, kernel.device)
    for _ in range(2):
        again = image_and_grads(render, fv, tex, kernel.device)
        assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


@pytest.mark.parametrize("aggr_rgb", RGB_AGGREGATIONS)
def test_channels_of_any_width_equal_separate_runs(kernel: Target, aggr_rgb: str) -> None:
    g = torch.Generator().manual_seed(21)
    fv, _ = random_scene(batch=2, faces=10, seed=21)
    surface = torch.rand(2, 10, 4, 3, generator=g, dtype=torch.float64)  # R = 2
    vertex = torch.randn(2, 10, 3, 8, generator=g, dtype=torch.float64)
    bg = tuple(float(v) for v in torch.rand(11, generator=g))
    fv, surface, vertex = (x.to(kernel.device) for x in (fv, surface, vertex))
    s = RasterSettings.create((12, 10), sigma_val=1e-2, gamma_val=1e-2, aggr_func_rgb=aggr_rgb, far=10.0)

    def run(sf: torch.Tensor, vx: torch.Tensor, background: tuple[float, ...]) -> RasterResult:
        return rasterize_channels(fv, s, surface=sf, vertex=vx, background=background, backend=kernel.name)

    both = run(surface, vertex, bg)
    assert both.channels.shape == (2, 11, 12, 10) and both.depth is None and both.face_id is None
    surface_only, vertex_only = run(surface, vertex[..., :0], bg[:3]), run(surface[..., :0], vertex, bg[3:])
    none = run(surface[..., :0], vertex[..., :0], ())
    # The weights do not depend on the channels: each channel is computed exactly as alone.
    assert torch.equal(both.channels, torch.cat([surface_only.channels, vertex_only.channels], 1))
    assert none.channels.shape == (2, 0, 12, 10)
    for r in (surface_only, vertex_only, none):
        assert torch.equal(r.alpha, both.alpha)
    legacy = rasterize(fv, surface, dataclasses.replace(s, background_color=bg[:3]), backend=kernel.name)
    assert torch.equal(legacy, torch.cat([surface_only.channels, surface_only.alpha], 1))


# ---- crowding, borders, degenerate faces, near/far, image shapes -----------------------------------------
@pytest.mark.parametrize("outputs", ["colour", "all"])
def test_crowded_tile_and_huge_faces(target: Target, outputs: str) -> None:
    fv, tex = crowded_scene()  # 300 small faces piled into one tile, plus faces larger than the image
    surface, vertex = _legacy_attributes(tex, "surface")
    bg: tuple[float, ...] = (0.0, 0.0, 0.0)
    if outputs == "all":
        surface, vertex, bg = random_attributes(fv, 2, 2, seed=1)
    s = RasterSettings.create(32, sigma_val=1e-3, gamma_val=1e-2, with_depth=outputs == "all",
                              with_zbuffer=outputs == "all")  # fmt: skip
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    _assert_conforms(got, _reference(fv, surface, vertex, bg, s), s, out_tol=1e-10, grad_rel=1e-8)


@pytest.mark.parametrize("outputs", ["colour", "all"])
@pytest.mark.parametrize("degenerate", DEGENERATE_KINDS)
def test_degenerate_faces(target: Target, degenerate: str, outputs: str) -> None:
    fv, tex = degenerate_scene(degenerate)  # collinear, a point, a vertex at z = 0, behind the camera
    surface, vertex = _legacy_attributes(tex, "vertex")
    bg: tuple[float, ...] = (0.0, 0.0, 0.0)
    if outputs == "all":
        surface, vertex, bg = random_attributes(fv, 1, 4, seed=2)
    s = RasterSettings.create(16, sigma_val=1e-2, gamma_val=1e-2, near=0.1, with_depth=outputs == "all",
                              with_zbuffer=outputs == "all")  # fmt: skip
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    want = _reference(fv, surface, vertex, bg, s)
    _assert_conforms(got, want, s, out_tol=1e-10, grad_rel=None)
    for g, w in zip(got.grads, want.grads, strict=True):
        assert torch.isfinite(g).all()
        # Face 0's own gradient runs through 1 / det with det clamped to 1e-10 when it has no
        # area (ill-conditioned: any summation order changes it); every other face must agree.
        assert_grad_close(g[:, 1:], w[:, 1:], 1e-8)


def test_duplicate_vertices_and_zero_area_faces(target: Target) -> None:
    fv, _ = random_scene(batch=2, faces=8, seed=14)
    fv[:, 1, 2] = fv[:, 1, 0]  # two equal vertices
    fv[:, 2, :, :2] = fv[:, 2, :1, :2]  # zero area, three depths
    fv[:, 3] = fv[:, 4]  # a duplicated face (a depth tie everywhere)
    surface, vertex, bg = random_attributes(fv, 2, 2, seed=14)
    s = RasterSettings.create((9, 10), sigma_val=2e-2, gamma_val=2e-2, with_depth=True, with_zbuffer=True)
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    want = _reference(fv, surface, vertex, bg, s)
    _assert_conforms(got, want, s, out_tol=1e-10, grad_rel=None)
    for g, w in zip(got.grads, want.grads, strict=True):
        assert torch.isfinite(g).all()
        keep = [0, 3, 4, 5, 6, 7]  # faces 1 and 2 have no area: ill-conditioned, see above
        assert_grad_close(g[:, keep], w[:, keep], 1e-8)


@pytest.mark.parametrize("fill_back", [False, True])
def test_faces_crossing_near_and_far(target: Target, fill_back: bool) -> None:
    fv, _ = random_scene(batch=2, faces=10, seed=3, z_range=(0.5, 6.0))
    surface, vertex, bg = random_attributes(fv, 3, 1, seed=3)
    s = RasterSettings.create(12, sigma_val=1e-2, gamma_val=1e-2, near=1.5, far=5.0, fill_back=fill_back,
                              with_depth=True, with_zbuffer=True)  # fmt: skip
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    _assert_conforms(got, _reference(fv, surface, vertex, bg, s), s, out_tol=1e-10, grad_rel=1e-8)


@pytest.mark.parametrize("outputs", ["colour", "all"])
@pytest.mark.parametrize("size", [(7, 13), (16, 5), (20, 45), (1, 1)], ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_non_square_images_and_borders(target: Target, size: tuple[int, int], outputs: str) -> None:
    fv, tex = random_scene(batch=2, faces=30, seed=8, spread=1.5)  # many faces cross the borders
    surface, vertex = _legacy_attributes(tex, "surface")
    bg: tuple[float, ...] = (0.1, 0.2, 0.3)
    if outputs == "all":
        surface, vertex, bg = random_attributes(fv, 2, 1, seed=8)
    s = RasterSettings.create(size, sigma_val=1e-3, gamma_val=1e-3, with_depth=outputs == "all",
                              with_zbuffer=outputs == "all")  # fmt: skip
    got = _run(target.name, target.device, fv, surface, vertex, bg, s)
    _assert_conforms(got, _reference(fv, surface, vertex, bg, s), s, out_tol=1e-10, grad_rel=1e-8)


def test_faces_all_off_image(target: Target) -> None:
    fv, tex = random_scene(batch=2, faces=4, seed=5)
    fv[..., 0] += 10.0  # nothing lands on the image
    surface, vertex = _legacy_attributes(tex, "surface")
    s = RasterSettings.create(8, sigma_val=1e-2)
    got = _run(target.name, target.device, fv, surface, vertex, (0.1, 0.2, 0.3), s)
    _assert_conforms(got, _reference(fv, surface, vertex, (0.1, 0.2, 0.3), s), s, out_tol=1e-12, grad_rel=1e-8)
    assert not any(g.any() for g in got.grads)


# ---- gradients: finite differences, partial requires_grad ------------------------------------------------
@pytest.mark.parametrize("combo", COMBOS, ids=COMBO_IDS)
def test_gradcheck_colour(kernel: Target, combo: tuple[str, ...]) -> None:
    seed = COMBOS.index(combo)
    fv, tex = random_scene(batch=1, faces=3, texture_type=combo[3], texture_res=2, seed=seed, size=1.0)
    s = _settings(combo, (5, 6), sigma_val=4e-2, gamma_val=3e-2, near=1.0, far=6.0, dist_eps=1e-6,
                  background_color=(0.3, 0.5, 0.7), texture_type=combo[3])  # fmt: skip
    dev = kernel.device

    def fn(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return rasterize(a, t, s, backend=kernel.name)

    inputs = (fv.to(dev).requires_grad_(True), tex.to(dev).requires_grad_(True))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha"), [
    ("euclidean", "softmax", "prod"), ("barycentric", "softmax", "sum"), ("euclidean", "hard", "prod"),
    ("hard", "softmax", "sum"),
])  # fmt: skip
def test_gradcheck_every_soft_output(kernel: Target, dist_func: str, aggr_rgb: str, aggr_alpha: str) -> None:
    fv, _ = random_scene(batch=2, faces=3, seed=4, size=0.9, z_range=(1.5, 3.0))
    surface, vertex, bg = random_attributes(fv, 2, 2, texture_res=2, seed=4)
    # dist_eps tiny: a pair crossing the cull radius jumps by less than dist_eps.
    s = RasterSettings.create((5, 6), sigma_val=5e-2, gamma_val=0.3, dist_eps=1e-15, dist_func=dist_func,
                              aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, with_depth=True)  # fmt: skip

    def fn(a: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        r = rasterize_channels(a, s, surface=t, vertex=v, background=bg, backend=kernel.name)
        return r.channels, r.alpha, r.depth

    inputs = tuple(x.to(kernel.device).requires_grad_() for x in (fv, surface, vertex))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("outputs", ["colour", "all"])
@pytest.mark.parametrize("which", [0, 1, 2], ids=["face_vertices", "surface", "vertex"])
def test_gradient_for_one_input_only(target: Target, which: int, outputs: str) -> None:
    fv, tex = random_scene(batch=2, faces=8, seed=11)
    if outputs == "all":
        surface, vertex, bg = random_attributes(fv, 2, 2, seed=11)
    else:  # the surface colours, or the vertex colours when the vertex attributes get the gradient
        surface, vertex = _legacy_attributes(
            tex if which != 2 else tex[:, :, :3], "vertex" if which == 2 else "surface"
        )
        bg = (0.1, 0.2, 0.3)
    s = RasterSettings.create(16, sigma_val=1e-2, gamma_val=1e-2, with_depth=outputs == "all")
    want = _reference(fv, surface, vertex, bg, s)
    inputs = [x.to(target.device) for x in (fv, surface, vertex)]
    inputs[which].requires_grad_(True)
    r = rasterize_channels(inputs[0], s, surface=inputs[1], vertex=inputs[2], background=bg, backend=target.name)
    g = torch.Generator().manual_seed(1)
    outs = [getattr(r, k) for k in SOFT if getattr(r, k) is not None]
    ups = [torch.randn(o.shape, dtype=torch.float64, generator=g).to(target.device) for o in outs]
    sum((o * u).sum() for o, u in zip(outs, ups, strict=True)).backward()
    assert_grad_close(inputs[which].grad.cpu(), want.grads[which], 1e-8)
    with torch.no_grad():
        r = rasterize_channels(inputs[0], s, surface=inputs[1], vertex=inputs[2], background=bg, backend=target.name)
    assert not any(getattr(r, k).requires_grad for k in SOFT if getattr(r, k) is not None)
