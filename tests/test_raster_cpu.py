"""The fused `cpu` backend against the reference backend, for every option."""

from __future__ import annotations

import itertools

import pytest
import torch

from softras.raster import RasterSettings, default_backend, rasterize
from softras.raster.cpu import rasterize_cpu

from .scenes import DEGENERATE_KINDS, crowded_scene, degenerate_scene, random_scene

COMBOS = list(
    itertools.product(
        ("hard", "barycentric", "euclidean"), ("hard", "softmax"), ("hard", "sum", "prod"), ("surface", "vertex")
    )
)


def _grads(backend: str, fv: torch.Tensor, tex: torch.Tensor, s: RasterSettings, **kw: object) -> tuple:
    a, t = fv.clone().requires_grad_(True), tex.clone().requires_grad_(True)
    img = rasterize_cpu(a, t, s, **kw) if backend == "cpu" else rasterize(a, t, s, backend=backend)
    weights = torch.randn(img.shape, dtype=img.dtype, generator=torch.Generator().manual_seed(1))
    (img * weights).sum().backward()
    grad_v = torch.zeros_like(fv) if a.grad is None else a.grad
    grad_t = torch.zeros_like(tex) if t.grad is None else t.grad
    return img.detach(), grad_v, grad_t


def _assert_grad_close(got: torch.Tensor, want: torch.Tensor) -> None:
    # ≤ 1e-6 relative to the gradient's scale (entries that are ~0 differ by rounding only)
    scale = max(float(want.abs().max()), 1e-12)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha", "texture_type"), COMBOS)
@pytest.mark.parametrize("batch", [1, 3])
def test_cpu_matches_reference_float64(dist_func: str, aggr_rgb: str, aggr_alpha: str, texture_type: str, batch: int):
    seed = COMBOS.index((dist_func, aggr_rgb, aggr_alpha, texture_type)) + 100 * batch
    fv, tex = random_scene(batch=batch, faces=10, texture_type=texture_type, texture_res=3, seed=seed)
    s = RasterSettings.create(
        (13, 17), sigma_val=3e-2, gamma_val=3e-2, dist_func=dist_func, aggr_func_rgb=aggr_rgb,
        aggr_func_alpha=aggr_alpha, texture_type=texture_type, background_color=(0.2, 0.3, 0.4), near=1.0,
        far=10.0, fill_back=bool(batch % 2),
    )  # fmt: skip
    ref = _grads("reference", fv, tex, s)
    cpu = _grads("cpu", fv, tex, s, tile=4)
    torch.testing.assert_close(cpu[0], ref[0], rtol=0, atol=1e-10)
    _assert_grad_close(cpu[1], ref[1])
    _assert_grad_close(cpu[2], ref[2])


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha", "texture_type"), COMBOS)
def test_cpu_matches_reference_float32_default_sigma_gamma(
    dist_func: str, aggr_rgb: str, aggr_alpha: str, texture_type: str
) -> None:
    seed = COMBOS.index((dist_func, aggr_rgb, aggr_alpha, texture_type))
    fv, tex = random_scene(batch=2, faces=40, texture_type=texture_type, texture_res=1, seed=seed, dtype=torch.float32)
    s = RasterSettings.create(
        48, dist_func=dist_func, aggr_func_rgb=aggr_rgb, aggr_func_alpha=aggr_alpha, texture_type=texture_type
    )  # defaults: sigma 1e-5, gamma 1e-4
    exact = rasterize(fv.double(), tex.double(), s, backend="reference")
    cpu = rasterize(fv, tex, s, backend="cpu")
    assert cpu.dtype == torch.float32
    torch.testing.assert_close(cpu.double(), exact, rtol=0, atol=1e-5)
    # The float32 *reference* rounds pixel centres, barycentrics and depths in float32 (the
    # cpu backend computes in float64 inside): at σ = 1e-5, γ = 1e-4 that costs the reference
    # up to a few 1e-4 near edges and depth ties; the two agree within that.
    torch.testing.assert_close(cpu, rasterize(fv, tex, s, backend="reference"), rtol=0, atol=1e-3)


def test_crowded_tile_and_huge_faces() -> None:
    fv, tex = crowded_scene()  # 300 small faces piled into one tile, plus faces larger than the image
    s = RasterSettings.create(32, sigma_val=1e-3, gamma_val=1e-2)
    ref = _grads("reference", fv, tex, s)
    for tile in (4, 16, 64):
        cpu = _grads("cpu", fv, tex, s, tile=tile)
        torch.testing.assert_close(cpu[0], ref[0], rtol=0, atol=1e-10)
        _assert_grad_close(cpu[1], ref[1])
        _assert_grad_close(cpu[2], ref[2])


@pytest.mark.parametrize("degenerate", DEGENERATE_KINDS)
def test_degenerate_faces_match_reference(degenerate: str) -> None:
    fv, tex = degenerate_scene(degenerate)
    s = RasterSettings.create(16, sigma_val=1e-2, gamma_val=1e-2, texture_type="vertex", near=0.1)
    ref = _grads("reference", fv, tex, s)
    cpu = _grads("cpu", fv, tex, s)
    torch.testing.assert_close(cpu[0], ref[0], rtol=0, atol=1e-10)
    for got, want in zip(cpu[1:], ref[1:], strict=True):
        assert torch.isfinite(got).all()
        # Face 0's own gradient runs through 1 / det with det clamped to 1e-10 when it has no
        # area: ill-conditioned (any summation order changes it), so only finiteness is
        # required there; every other face must agree.
        _assert_grad_close(got[:, 1:], want[:, 1:])


def test_non_square_and_tile_independent() -> None:
    fv, tex = random_scene(batch=2, faces=30, seed=8)
    s = RasterSettings.create((20, 45), sigma_val=1e-3, gamma_val=1e-3)
    ref = rasterize(fv, tex, s, backend="reference")
    for tile in (1, 7, 16):
        torch.testing.assert_close(rasterize_cpu(fv, tex, s, tile=tile), ref, rtol=0, atol=1e-10)


def test_backward_is_deterministic() -> None:
    fv, tex = random_scene(batch=4, faces=200, seed=9, dtype=torch.float32, size=0.3)
    s = RasterSettings.create(64, sigma_val=1e-4, gamma_val=1e-4)
    first = _grads("cpu", fv, tex, s)
    for _ in range(2):
        again = _grads("cpu", fv, tex, s)
        assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])


@pytest.mark.parametrize(("dist_func", "aggr_rgb", "aggr_alpha", "texture_type"), COMBOS)
def test_cpu_gradcheck(dist_func: str, aggr_rgb: str, aggr_alpha: str, texture_type: str) -> None:
    seed = COMBOS.index((dist_func, aggr_rgb, aggr_alpha, texture_type))
    fv, tex = random_scene(batch=1, faces=3, texture_type=texture_type, texture_res=2, seed=seed, size=1.0)
    s = RasterSettings.create(
        (5, 6), sigma_val=4e-2, gamma_val=3e-2, dist_func=dist_func, aggr_func_rgb=aggr_rgb,
        aggr_func_alpha=aggr_alpha, texture_type=texture_type, near=1.0, far=6.0, dist_eps=1e-6,
        background_color=(0.3, 0.5, 0.7),
    )  # fmt: skip
    inputs = (fv.requires_grad_(True), tex.requires_grad_(True))
    assert torch.autograd.gradcheck(lambda f, t: rasterize_cpu(f, t, s), inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_cpu_is_the_default_for_cpu_tensors() -> None:
    assert default_backend(torch.device("cpu")) == "cpu"


def test_cpu_backend_rejects_other_dtypes() -> None:
    fv, tex = random_scene(batch=1, faces=2, seed=0)
    with pytest.raises(TypeError, match="float32 and float64"):
        rasterize_cpu(fv.half(), tex.half(), RasterSettings.create(8))


def test_kernel_visits_exactly_the_pairs_inside_the_grown_boxes() -> None:
    from softras.raster.contract import RasterInputs
    from softras.raster.cpu import _Prepared
    from softras.raster.reference import count_box_pairs

    for seed in range(3):
        fv, tex = random_scene(batch=2, faces=30, seed=seed, dtype=torch.float32)
        s = RasterSettings.create((37, 50), sigma_val=1e-3)
        none = fv.new_zeros(2, 30, 3, 0)
        pr = _Prepared(RasterInputs(fv, tex, none, s.background_color), s, 16).ranges  # [B, F, (c0, c1, r0, r1)]
        visited = int(((pr[..., 1] - pr[..., 0] + 1).clip(0) * (pr[..., 3] - pr[..., 2] + 1).clip(0)).sum())
        assert visited == count_box_pairs(fv, s) > 0


def test_inlined_exp_is_within_a_few_ulp_of_libm() -> None:
    """The kernels' inlined e^-a (no libm call per pair) against math.exp over its whole range."""
    import math

    import numpy as np
    from numba import njit

    from softras.raster import cpu_kernels as K

    @njit
    def both(a: np.ndarray, ours: np.ndarray, libm: np.ndarray) -> None:
        for i in range(a.size):
            ours[i] = K._exp_neg(a[i])
            libm[i] = math.exp(-a[i])

    rng = np.random.default_rng(0)
    a = np.concatenate([[0.0, 1e-300, 5e-324, 40.0, 700.0, np.nextafter(700.0, 800.0), 745.2, 800.0],
                        rng.uniform(0, 40, 200_000), rng.uniform(0, 760, 200_000)])  # fmt: skip
    ours, libm = np.empty_like(a), np.empty_like(a)
    both(a, ours, libm)
    normal = libm > 2.3e-308
    rel = np.abs(ours[normal] - libm[normal]) / libm[normal]
    assert rel.max() <= 4 * np.finfo(np.float64).eps
    np.testing.assert_array_equal(ours[~normal], libm[~normal])  # subnormal range: libm itself
    assert ours[0] == 1.0
