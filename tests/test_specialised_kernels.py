"""The ``cpu`` backend's specialised kernels (options compiled in) against its generic kernels
(options read at run time): the same source with constants folded, so bit-identical results."""

from __future__ import annotations

import pytest
import torch

from softras.raster import RasterSettings, cpu_kernels, rasterize

# Each case is one specialised variant: the defaults, and one case that folds every other value
# of the options the variants fold (hard colour aggregation, a parametric T-conorm, another
# distribution, unsquared distances, fill_back off, vertex channels with perspective-correct
# weights, the depth and z-buffer outputs). Kept to two: every case is one more cold compile (~1.5 min) in
# CI. tests/test_uv_cpu.py checks one UV variant (softmax, with depth); the registered families'
# variant is checked in tests/test_registry_extension.py.
CASES = {
    "softras-defaults-surface": ({}, "surface"),
    "hard-rgb-gaussian-yager-distance-vertex-perspective-zbuffer-depth": (
        {
            "aggr_func_rgb": "hard",
            "distribution": "gaussian",
            "squared_distance": False,
            "aggr_func_alpha": "yager",
            "t_conorm_p": 2.0,
            "perspective_correct": True,
            "with_zbuffer": True,
            "with_depth": True,
            "fill_back": False,
        },
        "vertex",
    ),
}


def _scene() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    fv = torch.rand(2, 10, 3, 3, generator=gen, dtype=torch.float64) * 1.6 - 0.8
    fv[..., 2] = fv[..., 2].abs() + 1.5
    textures = {
        "surface": torch.rand(2, 10, 4, 3, generator=gen, dtype=torch.float64),
        "vertex": torch.rand(2, 10, 3, 3, generator=gen, dtype=torch.float64),
    }
    return fv, textures


def _render(kernels: str, options: dict, texture_type: str, monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    monkeypatch.setenv(cpu_kernels.KERNELS_ENV, kernels)
    fv, textures = _scene()
    fv = fv.requires_grad_(True)
    tex = textures[texture_type].requires_grad_(True)
    settings = RasterSettings.create(12, texture_type=texture_type, sigma_val=3e-3, gamma_val=1e-2, **options)
    out = rasterize(fv, tex, settings, backend="cpu")
    outputs = list(out) if isinstance(out, tuple) else [out]
    weights = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).reshape(o.shape) for o in outputs]
    sum((o * w).sum() for o, w in zip(outputs, weights, strict=True)).backward()
    return [o.detach() for o in outputs] + [fv.grad, tex.grad]


@pytest.mark.heavy(150)
@pytest.mark.parametrize("case", list(CASES))
def test_specialised_kernels_equal_the_generic_ones(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    options, texture_type = CASES[case]
    specialised = _render("specialised", options, texture_type, monkeypatch)
    generic = _render("generic", options, texture_type, monkeypatch)
    assert len(specialised) == len(generic)
    for a, b in zip(specialised, generic, strict=True):
        assert torch.equal(a, b)
    assert any(float(t.abs().sum()) > 0 for t in specialised[-2:])  # the backward did run


def test_kernel_choice_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from softras.raster.contract import AlphaAggregation, DistFunc, RgbAggregation
    from softras.raster.model import DISTRIBUTIONS

    fv, textures = _scene()
    settings = RasterSettings.create(8, texture_type="surface", distribution="uniform", aggr_func_alpha="max")
    params: list = []
    real = cpu_kernels.kernel_variant
    monkeypatch.setattr(cpu_kernels, "kernel_variant", lambda p: params.append(p) or real(p))
    monkeypatch.setenv(cpu_kernels.KERNELS_ENV, "generic")
    rasterize(fv, textures["surface"], settings, backend="cpu")
    p = params[-1]
    assert real(p) is None
    monkeypatch.setenv(cpu_kernels.KERNELS_ENV, "specialised")
    assert real(p) == cpu_kernels.Variant(
        dist_func=int(DistFunc.EUCLIDEAN), rgb_aggregation=int(RgbAggregation.SOFTMAX),
        alpha_aggregation=int(AlphaAggregation.MAX), distribution=DISTRIBUTIONS["uniform"].code, squared=1,
        fill_back=1, num_surface=3, num_vertex=0, with_depth=0, with_zbuffer=0,
    )  # fmt: skip
    monkeypatch.setenv(cpu_kernels.KERNELS_ENV, "fast")
    with pytest.raises(ValueError, match="SOFTRAS_CPU_KERNELS: expected 'specialised' or 'generic', got 'fast'"):
        real(p)
