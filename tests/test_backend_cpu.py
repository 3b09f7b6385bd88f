"""What only the ``cpu`` backend has: tile sizes, float64 arithmetic inside, a deterministic
backward, its inlined exp, its dtypes and its place as the default. Everything every backend
must do is in test_backends.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softras.raster import RasterSettings, default_backend, rasterize
from softras.raster.cpu import rasterize_cpu
from softras.raster.reference import count_box_pairs

from .helpers import assert_grad_close
from .options import TEXTURE_TYPES
from .scenes import crowded_scene, random_scene


def _grads(
    fv: torch.Tensor, tex: torch.Tensor, s: RasterSettings, *, reference: bool = False, **kw: object
) -> tuple[torch.Tensor, ...]:
    a, t = fv.clone().requires_grad_(True), tex.clone().requires_grad_(True)
    img = rasterize(a, t, s, backend="reference") if reference else rasterize_cpu(a, t, s, **kw)
    weights = torch.randn(img.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (img * weights.to(img.dtype)).sum().backward()
    return img.detach(), a.grad, t.grad


def test_tile_size_does_not_change_the_result() -> None:
    fv, tex = crowded_scene()  # 300 small faces piled into one tile, plus faces larger than the image
    s = RasterSettings.create(32, sigma_val=1e-3, gamma_val=1e-2)
    ref = _grads(fv, tex, s, reference=True)
    for tile in (1, 4, 16, 64):
        got = _grads(fv, tex, s, tile=tile)
        torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-10)
        assert_grad_close(got[1], ref[1], 1e-8)
        assert_grad_close(got[2], ref[2], 1e-8)
    fv, tex = random_scene(batch=2, faces=30, seed=8)
    s = RasterSettings.create((20, 45), sigma_val=1e-3, gamma_val=1e-3)
    want = rasterize(fv, tex, s, backend="reference")
    for tile in (1, 7, 16):
        torch.testing.assert_close(rasterize_cpu(fv, tex, s, tile=tile), want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("texture_type", TEXTURE_TYPES)
def test_float32_inputs_get_float64_accuracy(texture_type: str) -> None:
    # The kernels compute in float64 whatever the inputs: only the output rounds to float32.
    fv, tex = random_scene(batch=2, faces=40, texture_type=texture_type, texture_res=1, seed=3, dtype=torch.float32)
    s = RasterSettings.create(48, texture_type=texture_type)  # defaults: sigma 1e-5, gamma 1e-4
    exact = rasterize(fv.double(), tex.double(), s, backend="reference")
    got = rasterize(fv, tex, s, backend="cpu")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), exact, rtol=0, atol=1e-5)


def test_backward_is_deterministic() -> None:
    fv, tex = random_scene(batch=4, faces=200, seed=9, dtype=torch.float32, size=0.3)
    s = RasterSettings.create(64, sigma_val=1e-4, gamma_val=1e-4)
    first = _grads(fv, tex, s)
    for _ in range(2):
        again = _grads(fv, tex, s)
        assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])


def test_cpu_is_the_default_for_cpu_tensors() -> None:
    assert default_backend(torch.device("cpu")) == "cpu"


def test_rejects_other_dtypes() -> None:
    fv, tex = random_scene(batch=1, faces=2, seed=0)
    with pytest.raises(TypeError, match="float32 and float64"):
        rasterize_cpu(fv.half(), tex.half(), RasterSettings.create(8))


def test_kernel_visits_exactly_the_pairs_inside_the_grown_boxes() -> None:
    from softras.raster.contract import RasterInputs
    from softras.raster.cpu import _Prepared

    for seed in range(3):
        fv, tex = random_scene(batch=2, faces=30, seed=seed, dtype=torch.float32)
        s = RasterSettings.create((37, 50), sigma_val=1e-3)
        inputs = RasterInputs(fv, tex, fv.new_zeros(2, 30, 3, 0), s.background_color)
        pr = _Prepared(inputs, s, 16).ranges  # [B, F, (c0, c1, r0, r1)]
        visited = int(((pr[..., 1] - pr[..., 0] + 1).clip(0) * (pr[..., 3] - pr[..., 2] + 1).clip(0)).sum())
        assert visited == count_box_pairs(fv, s) > 0


def test_inlined_exp_is_within_a_few_ulp_of_libm() -> None:
    """The kernels' inlined e^-a (no libm call per pair) against math.exp over its whole range."""
    from numba import njit

    from softras.raster import cpu_kernels

    @njit
    def both(a: np.ndarray, ours: np.ndarray, libm: np.ndarray) -> None:
        for i in range(a.size):
            ours[i] = cpu_kernels._exp_neg(a[i])
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
