"""What only one backend has; everything every backend must do (tile sizes, a deterministic
backward, channels of any width included) is in test_backends.py.

``cpu``: float64 arithmetic inside, its place as the CPU default, its binning internals, its
inlined exp and the original-style wrapper :func:`softras.raster.cpu.rasterize_cpu`.
Warp (``warp`` / ``cuda``): its ``compute_dtype`` and ``deterministic`` options, its binning
internals, its registration as the CUDA default, its missing-dependency message and the wrapper
:func:`softras.raster.warp_backend.rasterize_warp` (skipped where warp is not installed).
"""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType

import numpy as np
import pytest
import torch

import softras.raster as raster
from softras.raster import RasterInputs, RasterSettings, available_backends, default_backend, rasterize
from softras.raster.cpu import rasterize_cpu
from softras.raster.reference import count_box_pairs

from .helpers import assert_grad_close, image_and_grads
from .options import TEXTURE_TYPES
from .scenes import random_scene

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def warp_backend() -> ModuleType:
    """softras.raster.warp_backend (the tests that take it are skipped without warp)."""
    pytest.importorskip("warp")
    from softras.raster import warp_backend

    return warp_backend


# ---- cpu ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("texture_type", TEXTURE_TYPES)
def test_cpu_float32_inputs_get_float64_accuracy(texture_type: str) -> None:
    # The kernels compute in float64 whatever the inputs: only the output rounds to float32.
    fv, tex = random_scene(batch=2, faces=40, texture_type=texture_type, texture_res=1, seed=3, dtype=torch.float32)
    s = RasterSettings.create(48, texture_type=texture_type)  # defaults: sigma 1e-5, gamma 1e-4
    exact = rasterize(fv.double(), tex.double(), s, backend="reference")
    got = rasterize(fv, tex, s, backend="cpu")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), exact, rtol=0, atol=1e-5)


def test_cpu_is_the_default_for_cpu_tensors() -> None:
    assert default_backend(torch.device("cpu")) == "cpu"


def test_rasterize_cpu_rejects_other_dtypes() -> None:
    fv, tex = random_scene(batch=1, faces=2, seed=0)
    with pytest.raises(TypeError, match="float32 and float64"):
        rasterize_cpu(fv.half(), tex.half(), RasterSettings.create(8))


def test_rasterize_cpu_passes_its_tile() -> None:
    fv, tex = random_scene(batch=2, faces=30, seed=8)
    s = RasterSettings.create((20, 45), sigma_val=1e-3, gamma_val=1e-3)
    want = rasterize(fv, tex, s, backend="reference")
    for tile in (1, 7, 16):
        torch.testing.assert_close(rasterize_cpu(fv, tex, s, tile=tile), want, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="tile"):
        rasterize_cpu(fv, tex, s, tile=0)


def test_cpu_kernel_visits_exactly_the_pairs_inside_the_grown_boxes() -> None:
    from softras.raster.cpu import _Prepared

    for seed in range(3):
        fv, tex = random_scene(batch=2, faces=30, seed=seed, dtype=torch.float32)
        s = RasterSettings.create((37, 50), sigma_val=1e-3)
        inputs = RasterInputs(fv, tex, fv.new_zeros(2, 30, 3, 0), s.background_color)
        pr = _Prepared(inputs, s, 16).ranges  # [B, F, (c0, c1, r0, r1)]
        visited = int(((pr[..., 1] - pr[..., 0] + 1).clip(0) * (pr[..., 3] - pr[..., 2] + 1).clip(0)).sum())
        assert visited == count_box_pairs(fv, s) > 0


def test_cpu_inlined_exp_is_within_a_few_ulp_of_libm() -> None:
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


# ---- warp ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("texture_type", TEXTURE_TYPES)
def test_warp_float64_arithmetic_on_float32_inputs(warp_backend: ModuleType, texture_type: str) -> None:
    fv, tex = random_scene(batch=2, faces=40, texture_type=texture_type, texture_res=1, seed=3, dtype=torch.float32)
    s = RasterSettings.create(48, texture_type=texture_type)  # defaults: sigma 1e-5, gamma 1e-4
    exact = rasterize(fv.double(), tex.double(), s, backend="reference")
    f64 = warp_backend.rasterize_warp(fv, tex, s, compute_dtype=torch.float64)
    assert f64.dtype == torch.float32
    torch.testing.assert_close(f64.double(), exact, rtol=0, atol=1e-5)  # only the output rounds


def test_warp_kernel_visits_exactly_the_pairs_inside_the_grown_boxes(warp_backend: ModuleType) -> None:
    for seed in range(3):
        fv, tex = random_scene(batch=2, faces=30, seed=seed, dtype=torch.float32)
        s = RasterSettings.create((37, 50), sigma_val=1e-3)
        inputs = RasterInputs(fv, tex, fv.new_zeros(*fv.shape[:2], 3, 0), s.background_color)
        prep = warp_backend._Prepared(inputs, s, 16, torch.float32, True)
        pr = prep.pr.long()  # [B*F, (c0, c1, r0, r1)]
        visited = int(((pr[:, 1] - pr[:, 0] + 1).clamp(min=0) * (pr[:, 3] - pr[:, 2] + 1).clamp(min=0)).sum())
        assert visited == count_box_pairs(fv, s) > 0
        # every face is listed in exactly the tiles its pixel range meets
        tiles_per_face = torch.bincount(prep.entry_face.long(), minlength=fv.shape[0] * fv.shape[1])
        assert int(tiles_per_face.sum()) == prep.tile_faces.numel() == int(prep.tile_start[-1])


def test_warp_deterministic_backward_is_bit_identical_and_atomics_agree(warp_backend: ModuleType) -> None:
    fv, tex = random_scene(batch=3, faces=150, seed=9, dtype=torch.float32, size=0.3)
    s = RasterSettings.create(48, sigma_val=1e-4, gamma_val=1e-3)

    def grads(deterministic: bool) -> tuple[torch.Tensor, ...]:
        return image_and_grads(lambda a, t: warp_backend.rasterize_warp(a, t, s, deterministic=deterministic), fv, tex)

    first = grads(True)
    for _ in range(2):
        again = grads(True)
        assert torch.equal(first[0], again[0])
        assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])
    atomic = grads(False)
    assert torch.equal(first[0], atomic[0])  # the forward does not depend on the mode
    assert_grad_close(atomic[1], first[1], 1e-5)
    assert_grad_close(atomic[2], first[2], 1e-5)


def test_warp_deterministic_flag_defaults(warp_backend: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_warp_registered_and_default_for_cuda_tensors(warp_backend: ModuleType) -> None:
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


def test_rasterize_warp_rejects_bad_arguments(warp_backend: ModuleType) -> None:
    fv, tex = random_scene(batch=1, faces=2, seed=0)
    s = RasterSettings.create(8)
    rasterize_warp = warp_backend.rasterize_warp
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


@needs_cuda
def test_warp_cuda_default_backend_and_determinism(warp_backend: ModuleType) -> None:
    fv, tex = random_scene(batch=4, faces=200, seed=9, dtype=torch.float32, size=0.3)
    s = RasterSettings.create(64, sigma_val=1e-4, gamma_val=1e-3)
    torch.testing.assert_close(
        rasterize(fv.cuda(), tex.cuda(), s), warp_backend.rasterize_warp(fv.cuda(), tex.cuda(), s), rtol=0, atol=0
    )

    def grads() -> tuple[torch.Tensor, ...]:
        return image_and_grads(lambda a, t: warp_backend.rasterize_warp(a, t, s, deterministic=True), fv, tex, "cuda")

    first, again = grads(), grads()
    assert torch.equal(first[1], again[1]) and torch.equal(first[2], again[2])


def test_warp_gradients_only_where_needed_and_atomics_agree(warp_backend: ModuleType) -> None:
    g = torch.Generator().manual_seed(13)
    fv, _ = random_scene(batch=2, faces=30, seed=13)
    surface = torch.rand(2, 30, 4, 2, generator=g, dtype=torch.float64)  # R = 2
    vertex = torch.randn(2, 30, 3, 8, generator=g, dtype=torch.float64)
    bg = tuple(float(v) for v in torch.rand(10, generator=g))
    s = RasterSettings.create(24, sigma_val=1e-3, gamma_val=1e-2, with_depth=True, far=10.0)
    first = None
    for deterministic in (True, False):
        leaves = [fv.clone().requires_grad_(True), surface, vertex.clone().requires_grad_(True)]
        r = warp_backend.rasterize(RasterInputs(*leaves, bg), s, deterministic=deterministic)
        (r.channels.sum() + r.depth.sum()).backward()
        assert leaves[1].grad is None
        grads = (leaves[0].grad, leaves[2].grad)
        if first is None:
            first = grads
        else:
            assert_grad_close(grads[0], first[0], 1e-10)
            assert_grad_close(grads[1], first[1], 1e-10)


def test_cpu_thread_count_follows_affinity_and_quota(monkeypatch):
    """The cpu kernels' threads: no more than the CPUs the process may use (affinity, cgroup quota)."""
    from softras.raster import cpu

    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0})
    assert cpu.usable_cpus() == 1
    assert cpu._threads() == 1
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(cpu, "_cgroup_cpu_quota", lambda: 1.5)
    assert cpu.usable_cpus() == 2
    monkeypatch.setattr(cpu, "_cgroup_cpu_quota", lambda: None)
    assert cpu.usable_cpus() == 4
