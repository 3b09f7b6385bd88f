"""``perspective_correct=True`` on every backend that has it, against the reference.

Vertex attributes interpolated with the perspective-correct barycentrics
(:func:`softras.raster.model.texture.perspective_weights`): every available backend whose
:class:`~softras.raster.Backend` says ``perspective_correct`` (the reference excepted, which is
the oracle), on each device it runs on that is present. Softmax and hard RGB, soft depth on and
off: the outputs and the gradients w.r.t. the face vertices and both kinds of attributes (a
surface channel before the vertex channels, so the channel offsets are checked); degenerate
depths (a vertex at z = 0, clamped; a face crossing the camera plane); a UV texture beside the
vertex channels where the backend samples them (both paths add into the depth gradients);
finite differences on a tiny scene; the z-buffer's barycentrics reproduce the hard channels;
``perspective_correct=False`` is the default and stays screen-space; bit-identical gradients
from run to run.

Tolerances: float64 outputs 1e-10 (absolute), gradients 1e-8 relative to each gradient's largest
entry; float32 against the float64 reference: outputs 1e-5, gradients 1e-4.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import pytest
import torch

from softras.raster import BACKENDS, RasterSettings, rasterize_channels, uv_maps

from .helpers import Target, assert_grad_close, kernel_targets
from .options import RGB_AGGREGATIONS
from .scenes import degenerate_scene, random_attributes, random_scene

GRAD_NAMES = ("face_vertices", "surface", "vertex")
CASES = list(itertools.product(RGB_AGGREGATIONS, (False, True)))
CASE_IDS = [f"{rgb}-{'depth' if depth else 'nodepth'}" for rgb, depth in CASES]
BACKGROUND = (0.2, 0.4, 0.6)  # one surface channel, two vertex channels
TARGETS = kernel_targets("perspective_correct")


class Scene(NamedTuple):
    """Float64 inputs on the CPU: faces [B, F, 3, 3], surface texels [B, F, 4, 1] and vertex
    attributes [B, F, 3, 2]."""

    face_vertices: torch.Tensor
    surface: torch.Tensor
    vertex: torch.Tensor


def _scene(seed: int) -> Scene:
    """Two items of six faces with depths in [1.2, 4.5] (strongly slanted faces: the perspective
    weights differ from the screen-space ones by up to ~0.3)."""
    fv, _ = random_scene(batch=2, faces=6, seed=seed, size=0.9, z_range=(1.2, 4.5))
    surface, vertex, _ = random_attributes(fv, surface=1, vertex=2, seed=seed)
    return Scene(fv, surface, vertex)


class Run(NamedTuple):
    channels: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor | None
    grads: tuple[torch.Tensor, ...]  # GRAD_NAMES


def _run(target: Target, scene: Scene, s: RasterSettings, dtype: torch.dtype = torch.float64, **kw: object) -> Run:
    """Render ``scene`` and back-propagate a fixed random weighting of the channels, alpha and the
    soft depth; outputs and gradients in float64 on the CPU. ``kw``: more rasterize_channels arguments."""
    fv, surface, vertex = (t.to(target.device, dtype, copy=True).requires_grad_() for t in scene)
    r = rasterize_channels(fv, s, surface=surface, vertex=vertex, backend=target.name, **kw)
    outputs = [r.channels, r.alpha] + ([r.depth] if s.with_depth else [])
    g = torch.Generator().manual_seed(1)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=torch.float64).to(t)).sum() for t in outputs)
    loss.backward()
    depth = _host(r.depth) if s.with_depth else None
    return Run(_host(r.channels), _host(r.alpha), depth, tuple(_host(t.grad) for t in (fv, surface, vertex)))


def _host(t: torch.Tensor) -> torch.Tensor:
    """A float64 CPU copy (never a view of a tensor that a later backward adds into)."""
    return t.detach().to("cpu", torch.float64, copy=True)


def _settings(rgb: str, with_depth: bool = False, perspective_correct: bool = True, **kw: object) -> RasterSettings:
    return RasterSettings.create(
        (14, 17),
        aggr_func_rgb=rgb,
        sigma_val=1e-2,
        gamma_val=1e-2,
        with_depth=with_depth,
        perspective_correct=perspective_correct,
        **kw,
    )


def _assert_close(got: Run, want: Run, out_tol: float, grad_rel: float) -> None:
    torch.testing.assert_close(got.channels, want.channels, rtol=0, atol=out_tol)
    torch.testing.assert_close(got.alpha, want.alpha, rtol=0, atol=out_tol)
    if want.depth is not None:
        torch.testing.assert_close(got.depth, want.depth, rtol=0, atol=out_tol)
    for name, g, w in zip(GRAD_NAMES, got.grads, want.grads, strict=True):
        assert_grad_close(g, w, grad_rel, msg=f"gradient w.r.t. {name}")


REFERENCE = Target("reference", "cpu")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("rgb", "with_depth"), CASES, ids=CASE_IDS)
def test_equals_reference_float64(target: Target, rgb: str, with_depth: bool) -> None:
    scene = _scene(seed=4 + CASES.index((rgb, with_depth)))
    s = _settings(rgb, with_depth)
    got = _run(target, scene, s)
    _assert_close(got, _run(REFERENCE, scene, s), out_tol=1e-10, grad_rel=1e-8)
    screen = _run(REFERENCE, scene, _settings(rgb, with_depth, perspective_correct=False))
    assert (got.channels[:, 1:] - screen.channels[:, 1:]).abs().max() > 1e-2  # the option matters here


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("rgb", "with_depth"), CASES, ids=CASE_IDS)
def test_float32_equals_reference(target: Target, rgb: str, with_depth: bool) -> None:
    scene = _scene(seed=4 + CASES.index((rgb, with_depth)))
    s = _settings(rgb, with_depth)
    got = _run(target, scene, s, dtype=torch.float32)
    _assert_close(got, _run(REFERENCE, scene, s), out_tol=1e-5, grad_rel=1e-4)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", ["zero_depth", "behind_camera"])
@pytest.mark.parametrize("rgb", RGB_AGGREGATIONS)
def test_degenerate_depths_equal_reference(target: Target, kind: str, rgb: str) -> None:
    """Face 0 of each item has a vertex at z = 0 (its 1/z clamped: no gradient through it) or
    crosses the camera plane."""
    fv, _ = degenerate_scene(kind)
    surface, vertex, _ = random_attributes(fv, surface=1, vertex=2, seed=3)
    scene = Scene(fv, surface, vertex)
    s = _settings(rgb, with_depth=True)
    _assert_close(_run(target, scene, s), _run(REFERENCE, scene, s), out_tol=1e-10, grad_rel=1e-8)


@pytest.mark.parametrize("target", TARGETS)
def test_with_uv_texture_equals_reference(target: Target) -> None:
    """Vertex channels beside a trilinear UV texture: both add to the barycentric and depth gradients."""
    if not BACKENDS[target.name].uv_textures:
        pytest.skip(f"{target.name} does not sample UV textures")
    scene = _scene(seed=11)
    g = torch.Generator().manual_seed(11)
    uv = torch.rand(2, 6, 3, 2, generator=g, dtype=torch.float64) * 3.0 - 0.8
    image = torch.rand(16, 16, 3, generator=g, dtype=torch.float64)
    s = _settings("softmax", with_depth=True)
    runs = []
    for t in (target, REFERENCE):
        uv_t, image_t = (x.to(t.device, copy=True).requires_grad_() for x in (uv, image))
        maps = uv_maps(uv_t, image_t, texture_filter="trilinear", texture_wrap="repeat")
        run = _run(t, scene, s, uv=maps, background=(*BACKGROUND, 0.1, 0.2, 0.3))
        runs.append((run, _host(uv_t.grad), _host(image_t.grad)))
    (got, got_uv, got_image), (want, want_uv, want_image) = runs
    _assert_close(got, want, out_tol=1e-10, grad_rel=1e-8)
    assert_grad_close(got_uv, want_uv, 1e-8, msg="gradient w.r.t. uv")
    assert_grad_close(got_image, want_image, 1e-8, msg="gradient w.r.t. the image")


def _tiny_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """Two faces [1, 2, 3, 3] making a perturbed quad over most of an 8 × 8 image, depths 1.8 to
    3.0, and two vertex channels [1, 2, 3, 2]."""
    g = torch.Generator().manual_seed(5)
    quad = torch.tensor([[[-0.7, -0.8, 2.0], [0.8, -0.6, 3.0], [0.7, 0.8, 2.5]],
                         [[-0.7, -0.8, 2.0], [0.7, 0.8, 2.5], [-0.8, 0.7, 1.8]]], dtype=torch.float64)  # fmt: skip
    fv = (quad + 0.05 * torch.randn(quad.shape, generator=g, dtype=torch.float64))[None]
    return fv, torch.rand(1, 2, 3, 2, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("rgb", RGB_AGGREGATIONS)
def test_gradcheck(target: Target, rgb: str) -> None:
    """Finite differences w.r.t. the faces and the vertex attributes on :func:`_tiny_scene`, the
    channels and the soft depth."""
    fv, vertex = (t.to(target.device) for t in _tiny_scene())
    s = RasterSettings.create(
        8, aggr_func_rgb=rgb, sigma_val=4e-2, gamma_val=3e-2, dist_eps=1e-8, with_depth=True, perspective_correct=True
    )

    def fn(fv: torch.Tensor, vertex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = rasterize_channels(fv, s, vertex=vertex, background=(0.1, 0.2), backend=target.name)
        return r.channels, r.depth

    inputs = tuple(t.clone().requires_grad_() for t in (fv, vertex))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("target", TARGETS)
def test_hard_channels_are_the_zbuffer_barycentrics(target: Target) -> None:
    """Hard RGB: the vertex channels are the z-buffer's (perspective-correct) barycentrics times the
    corners' values; the barycentrics are the same as with ``perspective_correct=False``."""
    scene = _scene(seed=12)
    fv, vertex = (t.to(target.device) for t in (scene.face_vertices, scene.vertex))
    results = [
        rasterize_channels(fv, _settings("hard", with_zbuffer=True, perspective_correct=p), vertex=vertex,
                           backend=target.name)
        for p in (True, False)
    ]  # fmt: skip
    r = results[0]
    assert torch.equal(r.barycentrics, results[1].barycentrics)
    covered = r.face_id >= 0
    assert covered.sum() > 20
    bary = r.barycentrics.permute(0, 2, 3, 1)[covered]  # [N, 3]
    item = torch.arange(fv.shape[0], device=fv.device)[:, None, None].expand_as(r.face_id)[covered]
    expected = (bary[:, :, None] * vertex[item, r.face_id[covered]]).sum(1)
    torch.testing.assert_close(r.channels.permute(0, 2, 3, 1)[covered], expected, rtol=0, atol=1e-12)


def _flat(run: Run) -> list[torch.Tensor]:
    """The run's outputs (channels, alpha, depth), then its gradients."""
    return [run.channels, run.alpha, run.depth, *run.grads]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("rgb", RGB_AGGREGATIONS)
def test_off_is_the_default_and_screen_space(target: Target, rgb: str) -> None:
    """``perspective_correct=False`` gives the same bits as the default settings; on fronto-parallel
    faces (equal depths per face) both settings give the same outputs and attribute gradients
    (not the depth gradients: the perspective weights vary with each corner's depth)."""
    scene = _scene(seed=13)
    default = RasterSettings.create((14, 17), aggr_func_rgb=rgb, sigma_val=1e-2, gamma_val=1e-2, with_depth=True)
    off = _run(target, scene, _settings(rgb, with_depth=True, perspective_correct=False))
    base = _run(target, scene, default)
    for a, b in zip(_flat(off), _flat(base), strict=True):
        assert torch.equal(a, b)
    fv = scene.face_vertices.clone()
    fv[..., 2] = fv[..., 2].mean(2, keepdim=True)
    flat = scene._replace(face_vertices=fv)
    on = _run(target, flat, _settings(rgb, with_depth=True))
    screen = _run(target, flat, _settings(rgb, with_depth=True, perspective_correct=False))
    for a, b in zip(_flat(on)[:3], _flat(screen)[:3], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for name, a, b in zip(GRAD_NAMES[1:], on.grads[1:], screen.grads[1:], strict=True):
        assert_grad_close(a, b, 1e-10, msg=f"gradient w.r.t. {name}")


@pytest.mark.parametrize("target", TARGETS)
def test_gradients_are_bit_identical_run_to_run(target: Target) -> None:
    scene = _scene(seed=14)
    s = _settings("softmax", with_depth=True)
    runs = [_run(target, scene, s, dtype=torch.float32) for _ in range(3)]
    for run in runs[1:]:
        for name, g, g0 in zip(GRAD_NAMES, run.grads, runs[0].grads, strict=True):
            assert torch.equal(g, g0), name


@pytest.mark.parametrize("target", [t for t in TARGETS if t.values[0].name == "warp"])
def test_warp_atomic_mode_equals_reference(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTRAS_WARP_DETERMINISTIC", "0")
    scene = _scene(seed=15)
    s = _settings("softmax", with_depth=True)
    _assert_close(_run(target, scene, s), _run(REFERENCE, scene, s), out_tol=1e-10, grad_rel=1e-8)
