"""UV textures on the ``warp`` backend (Warp's CPU device; CUDA too where present) against the reference.

Every filter × wrap × RGB aggregation: the outputs and the gradients with respect to the face
vertices, the corner UVs and both texture images (two materials of different sizes, so the atlas
holds levels of different shapes; UVs well outside [0, 1], so the wrap matters; a vertex channel
before the UV channels, so the channel offsets are checked). The UV spans are large enough for
the trilinear level of detail to fall strictly between levels, where its gradient flows. Then
finite differences on tiny scenes, one input requiring a gradient at a time (the gradient row's
layouts), the atomic mode, and bit-identical gradients from run to run.

Tolerances: float64 outputs 1e-10 (absolute), gradients 1e-8 relative to each gradient's largest
entry; float32 against the float64 reference: outputs 2e-5, gradients 2e-4.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import pytest
import torch

from softras.raster import RasterSettings, rasterize_channels, uv_maps
from softras.raster.uv import TEXTURE_FILTERS, TEXTURE_WRAPS

from .helpers import assert_grad_close
from .options import RGB_AGGREGATIONS
from .scenes import random_scene

pytest.importorskip("warp", reason="NVIDIA Warp (warp-lang) is not installed")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CASES = list(itertools.product(TEXTURE_FILTERS, TEXTURE_WRAPS, RGB_AGGREGATIONS))
CASE_IDS = ["-".join(c) for c in CASES]
GRAD_NAMES = ("face_vertices", "vertex", "uv", "image0", "image1")


class Scene(NamedTuple):
    """Float64 inputs on the CPU: faces [B, F, 3, 3], a vertex channel [B, F, 3, 1], corner UVs
    [B, F, 3, 2], two images [H_m, W_m, 3] and the material of each face [B, F]."""

    face_vertices: torch.Tensor
    vertex: torch.Tensor
    uv: torch.Tensor
    images: tuple[torch.Tensor, ...]
    material: torch.Tensor


def _scene(seed: int) -> Scene:
    """Two items of six faces; images 16 × 16 and 8 × 32; UVs in [-0.8, 2.2]."""
    batch, faces, sizes = 2, 6, ((16, 16), (8, 32))
    fv, _ = random_scene(batch=batch, faces=faces, seed=seed, size=0.9, z_range=(1.5, 3.5))
    g = torch.Generator().manual_seed(100 + seed)
    vertex = torch.rand(batch, faces, 3, 1, generator=g, dtype=torch.float64)
    uv = torch.rand(batch, faces, 3, 2, generator=g, dtype=torch.float64) * 3.0 - 0.8  # in [-0.8, 2.2]
    images = tuple(torch.rand(h, w, 3, generator=g, dtype=torch.float64) for h, w in sizes)
    material = torch.randint(0, len(sizes), (batch, faces), generator=g)
    return Scene(fv, vertex, uv, images, material)


class Run(NamedTuple):
    channels: torch.Tensor
    alpha: torch.Tensor
    grads: tuple[torch.Tensor | None, ...]  # GRAD_NAMES


def _run(
    backend: str,
    scene: Scene,
    s: RasterSettings,
    texture_filter: str,
    texture_wrap: str,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    requires: tuple[bool, ...] = (True,) * len(GRAD_NAMES),
) -> Run:
    """Render ``scene`` (the vertex channel, then the UV texture) and back-propagate a fixed random
    weighting of the channels and alpha; outputs and gradients in float64 on the CPU."""
    fv, vertex, uv, *images = (
        t.to(device=device, dtype=dtype, copy=True).requires_grad_(need)
        for t, need in zip((scene.face_vertices, scene.vertex, scene.uv, *scene.images), requires, strict=True)
    )
    maps = uv_maps(uv, images, scene.material.to(device), texture_filter=texture_filter, texture_wrap=texture_wrap)
    r = rasterize_channels(fv, s, vertex=vertex, background=(0.2, 0.4, 0.6, 0.8), uv=maps, backend=backend)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=g, dtype=torch.float64).to(device, dtype) for t in (r.channels, r.alpha)]
    (r.channels * weights[0]).sum().add((r.alpha * weights[1]).sum()).backward()
    grads = tuple(None if t.grad is None else _host(t.grad) for t in (fv, vertex, uv, *images))
    return Run(_host(r.channels), _host(r.alpha), grads)


def _host(t: torch.Tensor) -> torch.Tensor:
    """A float64 CPU copy (never a view of a tensor that a later backward adds into)."""
    return t.detach().to("cpu", torch.float64, copy=True)


def _settings(rgb: str, **kw: object) -> RasterSettings:
    return RasterSettings.create((14, 17), aggr_func_rgb=rgb, sigma_val=1e-2, gamma_val=1e-2, **kw)


def _assert_close(got: Run, want: Run, out_tol: float, grad_rel: float) -> None:
    torch.testing.assert_close(got.channels, want.channels, rtol=0, atol=out_tol)
    torch.testing.assert_close(got.alpha, want.alpha, rtol=0, atol=out_tol)
    for name, g, w in zip(GRAD_NAMES, got.grads, want.grads, strict=True):
        if w is None:  # nearest: the reference's autograd never reaches the UVs
            w = torch.zeros_like(g)
        assert_grad_close(g, w, grad_rel, msg=f"gradient w.r.t. {name}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("texture_filter", "texture_wrap", "rgb"), CASES, ids=CASE_IDS)
def test_warp_equals_reference_float64(device: str, texture_filter: str, texture_wrap: str, rgb: str) -> None:
    scene = _scene(seed=CASES.index((texture_filter, texture_wrap, rgb)))
    s = _settings(rgb)
    got = _run("warp", scene, s, texture_filter, texture_wrap, device=device)
    want = _run("reference", scene, s, texture_filter, texture_wrap)
    assert got.channels[:, 1:].abs().sum() > 0  # the UV channels are there
    if texture_filter != "nearest":
        assert got.grads[2].abs().sum() > 0
    _assert_close(got, want, out_tol=1e-10, grad_rel=1e-8)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("texture_filter", "texture_wrap", "rgb"), CASES, ids=CASE_IDS)
def test_warp_float32_equals_reference(device: str, texture_filter: str, texture_wrap: str, rgb: str) -> None:
    scene = _scene(seed=CASES.index((texture_filter, texture_wrap, rgb)))
    s = _settings(rgb)
    got = _run("warp", scene, s, texture_filter, texture_wrap, dtype=torch.float32, device=device)
    want = _run("reference", scene, s, texture_filter, texture_wrap)
    _assert_close(got, want, out_tol=2e-5, grad_rel=2e-4)


def _tiny_scene() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two faces [1, 2, 3, 3] making a perturbed quad over most of an 8 × 8 image, corner UVs
    [1, 2, 3, 2] spanning about [-1.1, 1.9] and one 4 × 4 image: a trilinear lookup's level of
    detail is between 0.7 and 1.6 at every pair (strictly between levels: its gradient flows)."""
    g = torch.Generator().manual_seed(5)
    quad = torch.tensor([[[-0.7, -0.8, 2.0], [0.8, -0.6, 3.0], [0.7, 0.8, 2.5]],
                         [[-0.7, -0.8, 2.0], [0.7, 0.8, 2.5], [-0.8, 0.7, 1.8]]], dtype=torch.float64)  # fmt: skip
    fv = (quad + 0.05 * torch.randn(quad.shape, generator=g, dtype=torch.float64))[None]
    corners = torch.tensor([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]], dtype=torch.float64)
    uv = (corners * 3.0 - 1.1 + 0.1 * torch.randn(2, 3, 2, generator=g, dtype=torch.float64))[None]
    return fv, uv, torch.rand(4, 4, 3, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("texture_filter", TEXTURE_FILTERS)
def test_gradcheck(texture_filter: str) -> None:
    """Finite differences w.r.t. the faces, the corner UVs and the atlas (the kernels' inputs; the
    mip levels are PyTorch's) on :func:`_tiny_scene`."""
    fv, uv, image = _tiny_scene()
    maps = uv_maps(uv, image, texture_filter=texture_filter)
    s = RasterSettings.create(8, sigma_val=4e-2, gamma_val=3e-2, dist_eps=1e-8)

    def fn(fv: torch.Tensor, uv: torch.Tensor, atlas: torch.Tensor) -> torch.Tensor:
        uv_texture = maps._replace(uv=uv, atlas=atlas)
        return rasterize_channels(fv, s, background=(0.1, 0.2, 0.3), uv=uv_texture, backend="warp").channels

    inputs = tuple(t.clone().requires_grad_() for t in (fv, uv, maps.atlas))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("which", range(len(GRAD_NAMES)), ids=GRAD_NAMES)
def test_gradient_for_one_input_only(which: int) -> None:
    """One input requiring a gradient at a time: each layout of the gradient row."""
    scene = _scene(seed=21)
    s = _settings("softmax")
    requires = tuple(k == which for k in range(len(GRAD_NAMES)))
    got = _run("warp", scene, s, "trilinear", "clamp", requires=requires)
    want = _run("reference", scene, s, "trilinear", "clamp", requires=requires)
    assert [g is not None for g in got.grads] == list(requires)
    assert_grad_close(got.grads[which], want.grads[which], 1e-8)


def test_atomic_mode_equals_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTRAS_WARP_DETERMINISTIC", "0")
    scene = _scene(seed=22)
    s = _settings("softmax")
    _assert_close(
        _run("warp", scene, s, "trilinear", "repeat"), _run("reference", scene, s, "trilinear", "repeat"), 1e-10, 1e-8
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("deterministic", ["1", "0"])
def test_gradients_are_bit_identical_run_to_run(
    device: str, deterministic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three backward passes give the same bits: every gradient by default; the atlas gradient
    (fixed point) also in the atomic mode."""
    monkeypatch.setenv("SOFTRAS_WARP_DETERMINISTIC", deterministic)
    scene = _scene(seed=23)
    s = _settings("softmax")
    runs = [_run("warp", scene, s, "trilinear", "repeat", dtype=torch.float32, device=device) for _ in range(3)]
    checked = GRAD_NAMES if deterministic == "1" else ("image0", "image1")
    for run in runs[1:]:
        for name in checked:
            k = GRAD_NAMES.index(name)
            assert torch.equal(run.grads[k], runs[0].grads[k]), name


def test_float64_arithmetic_on_float32_inputs() -> None:
    """``compute_dtype=torch.float64``: float32 UVs and atlas computed in float64, the outputs and
    the uv and atlas gradients returned in float32, within float32 rounding of the exact ones."""
    from softras.raster import RasterInputs, warp_backend

    scene = _scene(seed=24)
    s = _settings("softmax")
    want = _run("reference", scene, s, "trilinear", "repeat")
    fv, vertex, uv, *images = (
        t.float().requires_grad_() for t in (scene.face_vertices, scene.vertex, scene.uv, *scene.images)
    )
    maps = uv_maps(uv, images, scene.material, texture_filter="trilinear", texture_wrap="repeat")
    inputs = RasterInputs(fv, fv.new_zeros(2, 6, 1, 0), vertex, (0.2, 0.4, 0.6, 0.8), maps)
    r = warp_backend.rasterize(inputs, s, compute_dtype=torch.float64)
    assert r.channels.dtype == torch.float32
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=g, dtype=torch.float64).float() for t in (r.channels, r.alpha)]
    (r.channels * weights[0]).sum().add((r.alpha * weights[1]).sum()).backward()
    assert uv.grad.dtype == images[0].grad.dtype == torch.float32
    got = Run(_host(r.channels), _host(r.alpha), tuple(_host(t.grad) for t in (fv, vertex, uv, *images)))
    _assert_close(got, want, out_tol=1e-6, grad_rel=1e-5)
