"""Per-item σ and γ: ``sigma_val`` / ``gamma_val`` holding one value per item of the batch.

Each item equals rendering it alone with its own σ and γ (float64: 1e-12), every output and the
gradients to the vertices, the attributes, the UV images and a per-item background, on every
backend: through ``rasterize_channels`` (with ``face_counts``, a UV texture and a per-item
background), ``softras.render`` (a list of meshes, per-item cameras) and ``SoftRenderer``. Equal
values are the scalar call, bit for bit. Bad values raise errors naming the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import softras as sr
from softras.cameras import LookAtCamera
from softras.raster import RasterSettings, rasterize, rasterize_channels, uv_maps
from softras.raster.per_item import groups
from softras.shapes import icosphere, torus

from .helpers import CPU_BACKENDS

SIGMAS = [1e-2, 4e-3, 1e-2]  # items 0 and 2 share (σ, γ): one group of two items, not adjacent
GAMMAS = [1e-1, 3e-2, 1e-1]
COUNTS = [5, 3, 4]
HARD = ("face_id", "barycentrics", "hard_depth")


def _scene(seed: int = 0) -> dict[str, torch.Tensor]:
    """Three items padded to 5 faces: faces, R = 2 surface texels (3 channels), 2 vertex channels,
    UVs and materials of two images (3 channels), a per-item background (8 channels)."""
    g = torch.Generator().manual_seed(seed)
    b, f = len(COUNTS), max(COUNTS)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    fv = rand(b, f, 3, 3) * 1.6 - 0.8
    fv[..., 2] = 2 + rand(b, f, 3)
    return {
        "fv": fv,
        "surface": rand(b, f, 4, 3),
        "vertex": rand(b, f, 3, 2),
        "uv": rand(b, f, 3, 2) * 1.4 - 0.2,
        "material": torch.randint(0, 2, (b, f), generator=g),
        "image0": rand(6, 5, 3),
        "image1": rand(3, 4, 3),
        "background": rand(b, 8),
    }


def _leaves(scene: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.clone().requires_grad_() if v.is_floating_point() else v for k, v in scene.items()}


def _call(t: dict[str, torch.Tensor], items: slice, faces: int, settings: RasterSettings, backend: str, counts=None):
    """rasterize_channels on ``items`` and their first ``faces`` faces."""
    fv, surface, vertex = (t[k][items, :faces] for k in ("fv", "surface", "vertex"))
    uv = uv_maps(
        t["uv"][items, :faces],
        [t["image0"], t["image1"]],
        t["material"][items, :faces],
        texture_filter="trilinear",
        texture_wrap="clamp",
    )
    return rasterize_channels(
        fv,
        settings,
        surface=surface,
        vertex=vertex,
        uv=uv,
        background=t["background"][items],
        backend=backend,
        face_counts=counts,
    )


def _upstream(result) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.rand(x.shape, generator=g, dtype=x.dtype) for x in (result.channels, result.alpha, result.depth)]


def _backward(result, upstream: list[torch.Tensor]) -> None:
    torch.autograd.backward([result.channels, result.alpha, result.depth], upstream)


def _settings(alpha: str, **per_item: object) -> RasterSettings:
    return RasterSettings.create(16, aggr_func_alpha=alpha, with_depth=True, with_zbuffer=True, **per_item)


@pytest.mark.parametrize("alpha", ["prod", "sum"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_rasterize_channels_each_item_equals_alone(backend: str, alpha: str) -> None:
    scene = _scene()
    batch_leaves = _leaves(scene)
    batch = _call(
        batch_leaves,
        slice(None),
        max(COUNTS),
        _settings(alpha, sigma_val=SIGMAS, gamma_val=torch.tensor(GAMMAS, dtype=torch.float64)),
        backend,
        COUNTS,
    )
    assert batch.channels.shape == (3, 8, 16, 16)
    upstream = _upstream(batch)
    _backward(batch, upstream)
    alone_leaves = _leaves(scene)  # the images are shared: their gradient sums over the items
    worst = 0.0
    for b, n in enumerate(COUNTS):
        alone = _call(
            alone_leaves, slice(b, b + 1), n, _settings(alpha, sigma_val=SIGMAS[b], gamma_val=GAMMAS[b]), backend
        )
        for name in ("channels", "alpha", "depth", *HARD):
            got, want = getattr(batch, name)[b], getattr(alone, name)[0]
            if name == "face_id":
                assert torch.equal(got, want)
                continue
            torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
            worst = max(worst, float((got - want).detach().abs().max()))
        _backward(alone, [u[b : b + 1] for u in upstream])
        for name in ("fv", "surface", "vertex", "uv", "background"):
            got, want = batch_leaves[name].grad[b], alone_leaves[name].grad[b]
            torch.testing.assert_close(
                got[:n] if name != "background" else got, want[:n] if name != "background" else want, atol=1e-12, rtol=0
            )
            worst = max(worst, float((got - want).detach().abs().max()))
            if name != "background":
                assert (got[n:] == 0).all()
    for name in ("image0", "image1"):
        torch.testing.assert_close(batch_leaves[name].grad, alone_leaves[name].grad, atol=1e-12, rtol=0)
        worst = max(worst, float((batch_leaves[name].grad - alone_leaves[name].grad).abs().max()))
    print(f"{backend} {alpha}: max |batch - alone| = {worst:.3g}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_equal_values_are_the_scalar_call_bit_for_bit(backend: str) -> None:
    scene = _scene(2)
    results, grads = [], []
    for sigma, gamma in (
        (3e-3, 5e-2),
        ([3e-3] * 3, np.full(3, 5e-2)),
        (torch.full((3,), 3e-3, dtype=torch.float64), (5e-2,) * 3),
    ):
        leaves = _leaves(scene)
        out = _call(
            leaves, slice(None), max(COUNTS), _settings("prod", sigma_val=sigma, gamma_val=gamma), backend, COUNTS
        )
        _backward(out, _upstream(out))
        results.append(out)
        grads.append([leaves[k].grad for k in ("fv", "surface", "vertex", "uv", "image0", "image1", "background")])
    for out, grad in zip(results[1:], grads[1:], strict=True):
        for name in out._fields:
            assert torch.equal(getattr(out, name), getattr(results[0], name)), name
        assert all(torch.equal(a, b) for a, b in zip(grad, grads[0], strict=True))


def test_groups_share_one_call_per_sigma_gamma() -> None:
    settings = RasterSettings.create(8, sigma_val=SIGMAS, gamma_val=GAMMAS)
    assert settings.per_item and settings.sigma_val == tuple(SIGMAS)
    found = groups(settings, 3)
    assert [items for _, items in found] == [[0, 2], [1]]
    for group, items in found:
        assert group.sigma_val == SIGMAS[items[0]] and group.gamma_val == GAMMAS[items[0]] and not group.per_item
        assert group.cull_threshold == RasterSettings.create(8, sigma_val=group.sigma_val).cull_threshold
    same = RasterSettings.create(8, sigma_val=[2e-3, 2e-3], gamma_val=1e-2)
    ((one, items),) = groups(same, 2)
    assert items == [0, 1] and one == RasterSettings.create(8, sigma_val=2e-3, gamma_val=1e-2)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_rgba_entry_each_item_equals_alone(backend: str) -> None:
    scene = _scene(3)
    fv, tex = scene["fv"], scene["surface"]
    batch = rasterize(fv, tex, RasterSettings.create(12, sigma_val=SIGMAS, gamma_val=GAMMAS), backend=backend)
    for b in range(3):
        alone = rasterize(
            fv[b : b + 1],
            tex[b : b + 1],
            RasterSettings.create(12, sigma_val=SIGMAS[b], gamma_val=GAMMAS[b]),
            backend=backend,
        )
        torch.testing.assert_close(batch[b], alone[0], atol=1e-12, rtol=0)


def _items() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    v1, f1 = icosphere(1, radius=0.6)
    v2, f2 = torus(major_segments=6, minor_segments=4)
    g = torch.Generator().manual_seed(0)
    return [
        (v.double(), f, torch.rand(v.shape[0], 3, generator=g, dtype=torch.float64))
        for v, f in ((v1, f1), (v2 * 0.5, f2))
    ]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_render_mesh_list_each_item_equals_alone(backend: str) -> None:
    items = _items()
    eyes = torch.tensor([[0.0, 0.4, -2.5], [1.5, 1.0, -1.5]], dtype=torch.float64)
    light = sr.DirectionalLighting(light_intensity=0.6, light_direction=(0.3, 0.5, -1.0))
    outputs = ("rgba", "depth", "normals", "face_id", "barycentrics", "hard_depth")
    sigmas, gammas = [1e-3, 1e-2], [1e-2, 1e-1]
    vertices = [v.clone().requires_grad_() for v, _, _ in items]
    colours = [c.clone().requires_grad_() for *_, c in items]
    mesh = sr.Mesh(vertices, [f for _, f, _ in items], colours, texture_type="vertex")
    batch = sr.render(
        mesh,
        LookAtCamera(eye=eyes),
        lights=light,
        image_size=16,
        outputs=outputs,
        backend=backend,
        sigma_val=sigmas,
        gamma_val=torch.tensor(gammas, dtype=torch.float64),
        aggr_func_alpha="sum",
    )
    (batch.rgba.sum() + batch.depth.sum() + batch.normals.sum()).backward()
    worst = 0.0
    for b, (v, f, c) in enumerate(items):
        v, c = v.clone().requires_grad_(), c.clone().requires_grad_()
        alone = sr.render(
            sr.Mesh(v, f, c, texture_type="vertex"),
            LookAtCamera(eye=eyes[b : b + 1]),
            lights=light,
            image_size=16,
            outputs=outputs,
            backend=backend,
            sigma_val=sigmas[b],
            gamma_val=gammas[b],
            aggr_func_alpha="sum",
        )
        for name in outputs:
            got, want = getattr(batch, name)[b], getattr(alone, name)[0]
            if name == "face_id":
                assert torch.equal(got, want)
                continue
            torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
            worst = max(worst, float((got - want).detach().abs().max()))
        (alone.rgba.sum() + alone.depth.sum() + alone.normals.sum()).backward()
        for got, want in ((vertices[b].grad, v.grad), (colours[b].grad, c.grad)):
            torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
            worst = max(worst, float((got - want).detach().abs().max()))
    print(f"{backend}: max |batch - alone| = {worst:.3g}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_render_uv_mesh_per_item_cameras_each_item_equals_alone(backend: str) -> None:
    """A UV-textured mesh of batch 1 seen by a camera of 2 items: the mesh is broadcast, each view
    has its own σ and γ; the gradient of the shared image sums over the views."""
    g = torch.Generator().manual_seed(6)
    v = torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=torch.float64)
    f = torch.tensor([[0, 2, 1], [0, 3, 2]])
    uv = torch.tensor([[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]], dtype=torch.float64)
    image = torch.rand(8, 12, 3, generator=g, dtype=torch.float64)
    eyes = torch.tensor([[0.3, 0.2, -3.0], [-0.8, 0.5, -2.5]], dtype=torch.float64)
    sigmas, gammas = [2e-3, 1e-2], [3e-2, 1e-1]
    options = {"image_size": 16, "outputs": ("rgba", "depth"), "backend": backend, "texture_filter": "trilinear"}

    def mesh(image: torch.Tensor) -> sr.Mesh:
        return sr.Mesh(v, f, sr.UVTexture(image, (uv, f)))

    batch_image = image.clone().requires_grad_()
    batch = sr.render(mesh(batch_image), LookAtCamera(eye=eyes), sigma_val=sigmas, gamma_val=gammas, **options)
    assert (batch.rgba[:, 3].mean((1, 2)) > 0.2).all()  # both views see the quad
    (batch.rgba.sum() + batch.depth.sum()).backward()
    alone_image = image.clone().requires_grad_()
    for b in range(2):
        alone = sr.render(
            mesh(alone_image), LookAtCamera(eye=eyes[b : b + 1]), sigma_val=sigmas[b], gamma_val=gammas[b], **options
        )
        torch.testing.assert_close(batch.rgba[b], alone.rgba[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(batch.depth[b], alone.depth[0], atol=1e-12, rtol=0)
        (alone.rgba.sum() + alone.depth.sum()).backward()
    torch.testing.assert_close(batch_image.grad, alone_image.grad, atol=1e-12, rtol=0)


@pytest.mark.parametrize("smooth_shading", [False, True])
def test_soft_renderer_each_item_equals_alone(smooth_shading: bool) -> None:
    g = torch.Generator().manual_seed(4)
    items = [(v, f, torch.rand(f.shape[0], 4, 3, generator=g, dtype=torch.float64)) for v, f, _ in _items()]
    sigmas, gammas = [3e-3, 1e-3], [1e-1, 1e-2]
    renderer = sr.SoftRenderer(
        image_size=16,
        sigma_val=sigmas,
        gamma_val=gammas,
        smooth_shading=smooth_shading,
        anti_aliasing=True,
        camera_mode="look_at",
    )
    vertices = [v.clone().requires_grad_() for v, _, _ in items]
    batch = renderer.render_mesh(sr.Mesh(vertices, [f for _, f, _ in items], [t for *_, t in items], texture_res=2))
    batch.sum().backward()
    for b, (v, f, t) in enumerate(items):
        renderer.set_sigma(sigmas[b])
        renderer.set_gamma(gammas[b])
        v = v.clone().requires_grad_()
        alone = renderer.render_mesh(sr.Mesh(v, f, t[None], texture_res=2))
        torch.testing.assert_close(batch[b], alone[0], atol=1e-12, rtol=0)
        alone.sum().backward()
        torch.testing.assert_close(vertices[b].grad, v.grad, atol=1e-12, rtol=0)
    renderer.set_sigma(torch.tensor(sigmas, dtype=torch.float64))
    state = renderer.state_dict()
    fresh = sr.SoftRenderer(image_size=16, camera_mode="look_at")
    fresh.load_state_dict(state)
    assert fresh.rasterizer.settings().sigma_val == tuple(sigmas)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([1e-3, -1e-3, 1e-3], ValueError, r"sigma_val\[1\]: expected a number in \[1e-20, .*got -0.001"),
        ([1e-3, float("nan"), 1e-3], ValueError, r"sigma_val\[1\]: expected a finite number"),
        (
            torch.full((3,), 1e-3, requires_grad=True),
            TypeError,
            "sigma_val: got a tensor that requires grad.*not differentiable",
        ),
        (torch.tensor(1e-3, requires_grad=True), TypeError, "sigma_val: got a tensor that requires grad"),
        (
            torch.full((3, 1), 1e-3),
            ValueError,
            r"sigma_val: expected a number or a 1-D .* got a tensor of shape \(3, 1\)",
        ),
        ([[1e-3], [1e-3], [1e-3]], ValueError, r"sigma_val: expected a number or a 1-D .* nested \(2-D\)"),
        (np.full((3, 2), 1e-3), ValueError, r"sigma_val: expected a number or a 1-D .* array of shape \(3, 2\)"),
        ([], ValueError, "sigma_val: .* got an empty sequence"),
        (["a", 1e-3, 1e-3], TypeError, r"sigma_val\[0\]: expected a number"),
    ],
)
def test_bad_per_item_values_raise(value: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RasterSettings.create(8, sigma_val=value)
    with pytest.raises(error, match=match.replace("sigma_val", "gamma_val")):
        RasterSettings.create(8, gamma_val=value)


def test_wrong_length_raises_at_the_call() -> None:
    scene = _scene()
    settings = RasterSettings.create(8, sigma_val=[1e-3, 2e-3])
    with pytest.raises(ValueError, match=r"sigma_val: expected 3 per-item values \(one per item of the batch\), got 2"):
        rasterize_channels(scene["fv"], settings, backend="reference")
    with pytest.raises(ValueError, match="gamma_val: expected 3 per-item values"):
        rasterize(scene["fv"], scene["surface"], RasterSettings.create(8, gamma_val=[1e-3] * 4), backend="reference")
    (v, f, c), _ = _items()
    with pytest.raises(ValueError, match="sigma_val: expected 1 per-item values"):
        sr.render(
            sr.Mesh(v, f, c, texture_type="vertex"),
            LookAtCamera(eye=[0.0, 0.0, -2.5]),
            image_size=8,
            sigma_val=[1e-3, 1e-3],
            backend="reference",
        )
    with pytest.raises(ValueError, match="gamma_val: expected 2 per-item values"):
        sr.SoftRenderer(image_size=8, gamma_val=(1e-3,) * 3, backend="reference")(
            v.expand(2, -1, -1), f.expand(2, -1, -1), textures=torch.rand(2, f.shape[0], 1, 3, dtype=torch.float64)
        )


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_compiled_call_equals_eager(backend: str) -> None:
    """Under torch.compile the groups are split before the custom op: one op per group (here one
    of two items and one of a single item, whose outputs must not alias each other)."""
    scene = _scene(5)
    settings = RasterSettings.create(12, sigma_val=SIGMAS, gamma_val=GAMMAS, with_depth=True)
    fv = scene["fv"].clone().requires_grad_()

    def loss(fv: torch.Tensor) -> torch.Tensor:
        out = rasterize_channels(fv, settings, vertex=scene["vertex"], backend=backend)
        return out.channels.square().sum() + out.alpha.sum() + out.depth.sum()

    want = loss(fv)
    (want_grad,) = torch.autograd.grad(want, fv)
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    got = compiled(fv)
    (got_grad,) = torch.autograd.grad(got, fv)
    torch._dynamo.reset()
    assert torch.equal(got, want) and torch.equal(got_grad, want_grad)
