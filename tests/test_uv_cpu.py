"""UV textures on the ``cpu`` backend: outputs and gradients against the reference backend (the
oracle), finite differences, bit-identical atlas gradients, and specialised kernels against the
generic ones.

Kept fast: tiny scenes, and one kernel compile for all the generic cases (the suite runs the
generic kernels, see ``conftest.py``); one specialised variant only.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from softras.raster import RasterSettings, cpu, cpu_kernels, rasterize_channels, uv_maps
from softras.raster.contract import RasterInputs
from softras.raster.uv import TEXTURE_FILTERS, TEXTURE_WRAPS

from .helpers import assert_grad_close
from .scenes import random_attributes, random_scene

IMAGE_HW = (12, 16)  # not square: the level of detail scales x and y differently


def _scene(dtype: torch.dtype, seed: int = 0) -> dict:
    """Two items of 6 faces with surface (Cs = 1) and vertex (Cv = 2) channels besides the UV
    texture (Cu = 3): two materials of different sizes, corner UVs in [-0.7, 1.7] (outside
    [0, 1]: the wrap mode matters). Every tensor is made in ``dtype`` (float32 values are exact in
    float64)."""
    fv, _ = random_scene(batch=2, faces=6, seed=seed, dtype=dtype)
    surface, vertex, background = random_attributes(fv, 1, 2, seed=seed)
    g = torch.Generator().manual_seed(100 + seed)
    uv = (torch.rand(2, 6, 3, 2, generator=g, dtype=torch.float64) * 2.4 - 0.7).to(dtype)
    images = [torch.rand(h, w, 3, generator=g, dtype=torch.float64).to(dtype) for h, w in ((6, 9), (5, 4))]
    material = torch.randint(0, 2, (2, 6), generator=g)
    background = (*background, 0.2, 0.4, 0.6)
    return {"fv": fv, "surface": surface, "vertex": vertex, "background": background, "uv": uv,
            "images": images, "material": material}  # fmt: skip


def _render(scene: dict, settings: RasterSettings, backend: str, texture_filter: str, texture_wrap: str) -> list:
    """Channels, alpha (and depth) of one call, and the gradients of a fixed weighting of them with
    respect to the face vertices, the corner UVs and the images (detached, float64)."""
    fv, uv = (scene[k].detach().clone().requires_grad_(True) for k in ("fv", "uv"))
    images = [im.detach().clone().requires_grad_(True) for im in scene["images"]]
    maps = uv_maps(uv, images, scene["material"], texture_filter=texture_filter, texture_wrap=texture_wrap)
    result = rasterize_channels(
        fv, settings, surface=scene["surface"], vertex=scene["vertex"], background=scene["background"],
        backend=backend, uv=maps,
    )  # fmt: skip
    outputs = [result.channels, result.alpha] + ([result.depth] if settings.with_depth else [])
    g = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum() for o in outputs)
    loss.backward()
    grads = [(t.grad if t.grad is not None else torch.zeros_like(t)) for t in (fv, uv, *images)]  # nearest: no uv path
    return [o.detach().double() for o in outputs] + [x.double() for x in grads]


def _settings(rgb: str) -> RasterSettings:
    if rgb == "hard":
        return RasterSettings.create(IMAGE_HW, aggr_func_rgb="hard", sigma_val=1e-2, with_zbuffer=True)
    return RasterSettings.create(IMAGE_HW, sigma_val=1e-2, gamma_val=3e-2, with_depth=True)


CASES = list(itertools.product(TEXTURE_FILTERS, TEXTURE_WRAPS, ("softmax", "hard")))


@pytest.mark.parametrize(("texture_filter", "texture_wrap", "rgb"), CASES)
def test_cpu_equals_the_reference_float64(texture_filter: str, texture_wrap: str, rgb: str) -> None:
    scene = _scene(torch.float64)
    settings = _settings(rgb)
    got = _render(scene, settings, "cpu", texture_filter, texture_wrap)
    want = _render(scene, settings, "reference", texture_filter, texture_wrap)
    n_out = 3 if settings.with_depth else 2
    for a, b in zip(got[:n_out], want[:n_out], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    names = ("face_vertices", "uv", "image 0", "image 1")
    for name, a, b in zip(names, got[n_out:], want[n_out:], strict=True):
        assert_grad_close(a, b, 1e-8, msg=f"{name}: {texture_filter}, {texture_wrap}, {rgb}")
    assert float(got[n_out + 2].abs().sum()) > 0 and float(got[n_out + 3].abs().sum()) > 0  # both materials seen
    if texture_filter != "nearest":
        assert float(got[n_out + 1].abs().sum()) > 0


@pytest.mark.parametrize("texture_filter", TEXTURE_FILTERS)
def test_cpu_equals_the_reference_float32(texture_filter: str) -> None:
    """float32 in, float32 out: the kernels compute in float64, so within float32 rounding of the
    float64 reference on the same values."""
    scene = _scene(torch.float32)
    settings = _settings("softmax")
    got = _render(scene, settings, "cpu", texture_filter, "repeat")
    scene64 = {**scene, "images": [im.double() for im in scene["images"]]}
    scene64.update({k: scene[k].double() for k in ("fv", "surface", "vertex", "uv")})
    want = _render(scene64, settings, "reference", texture_filter, "repeat")
    for a, b in zip(got[:3], want[:3], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    for a, b in zip(got[3:], want[3:], strict=True):
        assert_grad_close(a, b, 1e-6)


@pytest.mark.parametrize("texture_filter", TEXTURE_FILTERS)
def test_gradcheck_uv_textures_on_cpu(texture_filter: str) -> None:
    """d(image)/d(face vertices, corner UVs, texture image) equals finite differences (float64)."""
    faces = [
        [[-0.7, -0.6, 2.0], [0.8, -0.5, 3.0], [0.1, 0.7, 2.5]],
        [[-0.8, 0.3, 2.2], [0.2, 0.9, 2.8], [-0.3, -0.1, 3.1]],
    ]
    fv = torch.tensor([faces], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    uv = torch.rand(1, 2, 3, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3
    image = torch.rand(4, 4, 3, generator=g, dtype=torch.float64)
    settings = RasterSettings.create(8, sigma_val=2e-2, gamma_val=5e-2)

    def render(f: torch.Tensor, u: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        maps = uv_maps(u, im, texture_filter=texture_filter)
        r = rasterize_channels(f, settings, backend="cpu", uv=maps)
        return torch.cat([r.channels, r.alpha], 1)

    inputs = tuple(t.clone().requires_grad_(True) for t in (fv, uv, image))
    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_atlas_gradient_is_bit_identical_run_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """2 threads, small tiles (many tasks adding into the same texels): the same bits every run."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    fv, _ = random_scene(batch=1, faces=40, seed=3, size=0.6)
    g = torch.Generator().manual_seed(3)
    uv = torch.rand(1, 40, 3, 2, generator=g, dtype=torch.float64) * 0.5
    image = torch.rand(4, 4, 3, generator=g, dtype=torch.float64)
    settings = RasterSettings.create(24, sigma_val=1e-2, gamma_val=3e-2)
    runs = []
    for _ in range(3):
        f, u, im = (t.clone().requires_grad_(True) for t in (fv, uv, image))
        maps = uv_maps(u, im, texture_filter="trilinear")
        inputs = RasterInputs(f, f.new_zeros(1, 40, 1, 0), f.new_zeros(1, 40, 3, 0), (0.0, 0.0, 0.0), maps)
        out = cpu.rasterize(inputs, settings, tile=4).channels
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        runs.append([t.grad.numpy().tobytes() for t in (f, u, im)])
    assert runs[0] == runs[1] == runs[2]
    assert float(im.grad.abs().sum()) > 0


def test_nearest_gives_the_uvs_no_gradient() -> None:
    """A nearest lookup is piecewise constant in the UVs: no gradient reaches them (None, as from
    the reference), while the vertices and the image get theirs."""
    scene = _scene(torch.float64)
    fv, uv, image = (t.clone().requires_grad_(True) for t in (scene["fv"], scene["uv"], scene["images"][0]))
    maps = uv_maps(uv, image, texture_filter="nearest")
    rasterize_channels(fv, _settings("softmax"), backend="cpu", uv=maps).channels.sum().backward()
    assert uv.grad is None and fv.grad is not None and image.grad is not None


@pytest.mark.heavy(150)
@pytest.mark.parametrize("texture_filter", ["trilinear"])
def test_specialised_uv_kernels_equal_the_generic_ones(texture_filter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One specialised variant (the trilinear lookup, the most code) bit-identical to the generic kernels."""
    scene = _scene(torch.float64)
    runs = {}
    for kernels in ("specialised", "generic"):
        monkeypatch.setenv(cpu_kernels.KERNELS_ENV, kernels)
        runs[kernels] = _render(scene, _settings("softmax"), "cpu", texture_filter, "clamp")
    for a, b in zip(runs["specialised"], runs["generic"], strict=True):
        assert torch.equal(a, b)
