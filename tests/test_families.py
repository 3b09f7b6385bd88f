"""GenDR's coverage families rendered: every distribution × every alpha aggregation on every
backend that runs them, against finite differences (gradcheck, float64) and against the
reference; the defaults keep SoftRas's numbers. The option lists derive from the registries
(:mod:`softras.raster.model`), so a new family is tested by registering it."""

from __future__ import annotations

import itertools

import pytest
import torch

import softras as sr
from softras.raster import RasterSettings, available_backends, model, rasterize_channels, soft_rasterize

from .scenes import random_scene

DISTRIBUTIONS = list(model.DISTRIBUTION_NAMES)
ALPHAS = ["hard", "sum", *model.T_CONORMS]
FAMILY_BACKENDS = ["reference", "cpu", *(["warp"] if "warp" in available_backends() else [])]
KERNEL_BACKENDS = FAMILY_BACKENDS[1:]


def family_kwargs(distribution: str, alpha: str) -> dict[str, object]:
    """The family's parameters at their registered examples."""
    kwargs: dict[str, object] = {"distribution": distribution, "aggr_func_alpha": alpha}
    spec = model.DISTRIBUTIONS.get(distribution)
    if spec is not None and spec.shape:
        kwargs["dist_shape"] = 2.0
    tc = model.T_CONORMS.get(alpha)
    if tc is not None and tc.p_example is not None:
        kwargs["t_conorm_p"] = tc.p_example
    return kwargs


MATRIX = list(itertools.product(DISTRIBUTIONS, ALPHAS))


@pytest.mark.parametrize("backend", FAMILY_BACKENDS)
@pytest.mark.parametrize(("distribution", "alpha"), MATRIX)
def test_gradcheck_every_family(backend: str, distribution: str, alpha: str) -> None:
    """d(RGBA)/d(face vertices, vertex colours) equals finite differences for every distribution ×
    alpha aggregation; squared and plain distances alternate over the matrix."""
    seed = MATRIX.index((distribution, alpha))
    fv, tex = random_scene(batch=1, faces=3, texture_type="vertex", seed=seed, size=1.0)
    fv.requires_grad_(True)
    tex.requires_grad_(True)
    kwargs = family_kwargs(distribution, alpha)

    def render(f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return soft_rasterize(
            f, t, (4, 5), sigma_val=4e-2, gamma_val=3e-2, texture_type="vertex", near=1.0, far=6.0, dist_eps=1e-7,
            background_color=(0.3, 0.5, 0.7), backend=backend, squared_distance=seed % 2 == 0, **kwargs,
        )  # fmt: skip

    assert torch.autograd.gradcheck(render, (fv, tex), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


CONFORMANCE = [(d, "prod") for d in model.DISTRIBUTIONS] + [("gaussian", a) for a in ALPHAS if a != "prod"]


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize(("distribution", "alpha"), CONFORMANCE)
def test_kernels_equal_reference(backend: str, distribution: str, alpha: str) -> None:
    """Every output and gradient of the cpu and warp kernels equals the reference's (float64, surface
    texels, vertex attributes and soft depth at once, two batch items)."""
    i = CONFORMANCE.index((distribution, alpha))
    fv, tex = random_scene(batch=2, faces=12, texture_type="surface", seed=i)
    vert = torch.rand(2, 12, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(i))
    s = RasterSettings.create(
        (14, 17), sigma_val=1e-3, gamma_val=1e-2, squared_distance=i % 2 == 1, with_depth=True, dist_eps=1e-5,
        **family_kwargs(distribution, alpha),
    )  # fmt: skip
    results = {}
    for name in ("reference", backend):
        f, v, t = (x.clone().requires_grad_(True) for x in (fv, vert, tex))
        r = rasterize_channels(f, s, surface=t, vertex=v, backend=name)
        weights = torch.linspace(0, 1, r.channels.numel(), dtype=torch.float64).reshape(r.channels.shape)
        ((r.channels * weights).sum() + (r.alpha**2).sum() + 0.1 * r.depth.sum()).backward()
        results[name] = (r.channels, r.alpha, r.depth, f.grad, v.grad, t.grad)
    for ref, got in zip(results["reference"], results[backend], strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-10)


def test_defaults_are_softras() -> None:
    """The defaults are SoftRas's family: naming it changes nothing, bit for bit, on every backend."""
    fv, tex = random_scene(batch=2, faces=8, seed=4)
    for backend in sr.available_backends():
        base = soft_rasterize(fv, tex, 16, backend=backend)
        named = soft_rasterize(
            fv,
            tex,
            16,
            backend=backend,
            distribution="logistic",
            squared_distance=True,
            aggr_func_alpha="probabilistic",
        )
        assert torch.equal(base, named), backend


def test_model_logistic_equals_softras_path() -> None:
    """The model's logistic (the generic path, through the T-conorm machinery) renders SoftRas's
    image to rounding: the two formulations of one family agree."""
    fv, tex = random_scene(batch=1, faces=10, seed=5)
    softras_path = soft_rasterize(fv, tex, 16, sigma_val=1e-3, backend="cpu")
    s = RasterSettings.create(16, sigma_val=1e-3, aggr_func_alpha="hamacher", t_conorm_p=1.0)  # Hamacher p=1: product
    generic = rasterize_channels(fv, s, surface=tex, backend="cpu")
    torch.testing.assert_close(generic.alpha, softras_path[:, 3:], rtol=0, atol=1e-12)
    torch.testing.assert_close(generic.channels, softras_path[:, :3], rtol=0, atol=1e-12)


def test_heaviside_is_hard() -> None:
    fv, tex = random_scene(batch=1, faces=6, seed=2)
    hard = soft_rasterize(fv, tex, 12, dist_func="hard", backend="cpu")
    heaviside = soft_rasterize(fv, tex, 12, distribution="heaviside", backend="cpu")
    assert torch.equal(hard, heaviside)


def test_cpu_backward_is_deterministic() -> None:
    fv, tex = random_scene(batch=2, faces=30, seed=6)
    grads = []
    for _ in range(2):
        f = fv.clone().requires_grad_(True)
        img = soft_rasterize(
            f, tex, 24, sigma_val=1e-3, distribution="cauchy", aggr_func_alpha="einstein", backend="cpu"
        )
        img.square().sum().backward()
        grads.append(f.grad)
    assert torch.equal(grads[0], grads[1])


def test_cull_radius_follows_the_distribution() -> None:
    """Finite supports cull at their edge, heavy tails at their quantile (much further out)."""
    uniform = RasterSettings(sigma_val=1e-2, distribution="uniform", squared_distance=False)
    cauchy = RasterSettings(sigma_val=1e-2, distribution="cauchy", squared_distance=False)
    assert uniform.cull_radius == pytest.approx(1e-2 * (1 - 2e-4), rel=1e-9)
    assert cauchy.cull_radius > 100 * uniform.cull_radius


def test_family_arguments_reach_every_entry_point() -> None:
    vertices, faces = sr.shapes.icosphere(1)
    mesh = sr.Mesh(vertices[None], faces[None])
    kwargs = {"distribution": "gamma", "dist_shape": 2.0, "aggr_func_alpha": "yager", "t_conorm_p": 2.0}
    renderer = sr.SoftRenderer(image_size=16, backend="cpu", **kwargs)
    image = renderer(mesh.vertices, mesh.faces, mesh.textures)
    assert torch.isfinite(image).all() and image[:, 3].max() > 0.5
    settings = renderer.rasterizer.settings()
    assert (settings.distribution, settings.aggr_func_alpha, settings.t_conorm_p) == ("gamma", "yager", 2.0)
    state = renderer.state_dict()
    fresh = sr.SoftRenderer(image_size=16, backend="cpu")
    fresh.load_state_dict(state)
    assert torch.equal(fresh(mesh.vertices, mesh.faces, mesh.textures), image)
    out = sr.render(mesh, sr.cameras.default_camera(), outputs=("rgba",), image_size=16, backend="cpu", **kwargs)
    torch.testing.assert_close(out.rgba[:, 3], image[:, 3].to(out.rgba.dtype), rtol=0, atol=1e-5)


def test_state_saved_before_the_families_loads() -> None:
    """A SoftRasterizer state without the family keys (saved by an older softras) loads with the defaults."""
    rasterizer = sr.SoftRasterizer(image_size=8)
    state = rasterizer.state_dict()
    extra = state["_extra_state"]
    for key in ("distribution", "squared_distance", "dist_shape", "dist_shift", "t_conorm_p"):
        del extra[key]
    fresh = sr.SoftRasterizer(image_size=8, distribution="uniform")
    fresh.load_state_dict(state)
    assert fresh.distribution == "logistic"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"distribution": "beta"}, "distribution"),
        ({"distribution": "gamma"}, "dist_shape"),
        ({"aggr_func_alpha": "frank", "t_conorm_p": 1.0}, "t_conorm_p"),
        ({"aggr_func_alpha": "yager"}, "t_conorm_p"),
        ({"dist_shift": 0.5}, "dist_shift"),
        ({"squared_distance": "no"}, "squared_distance"),
    ],
)
def test_bad_family_arguments_are_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        RasterSettings(**kwargs)


def test_docs_tables_follow_the_registry() -> None:
    """docs/families.md shows the registries' tables as they are."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "families.md").read_text(encoding="utf-8")
    assert model.registry_tables() in text
