"""The cpu kernels' branch-free pair arithmetic (softras.raster.cpu_pair) and its float32 path.

* :func:`cpu_pair.exp_neg` against NumPy's exp in float64: the stated error bound, and exactly 0
  beyond its range (no subnormal results);
* the pair loop vectorises: a row loop made of the pair functions compiles to packed AVX2 /
  AVX-512 instructions on a machine that has them (read from the compiled assembly);
* float32 inputs are rasterized in float32 arithmetic: outputs within 1e-5 and gradients within
  1e-4 (relative to the largest) of the float64 rasterization of the same inputs, at SoftRas's
  sharp defaults (σ = 1e-5, γ = 1e-4) and at σ = γ = 1e-2.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from numba import njit

import softras as sr
from softras import shapes
from softras.raster import RasterSettings, cpu_pair, rasterize_channels
from softras.raster.cpu_kernels import _load_face


@pytest.mark.parametrize(
    ("dtype", "limit", "ulps"),
    [(np.float32, cpu_pair.EXP_NEG_MAX_32, 4), (np.float64, cpu_pair.EXP_NEG_MAX_64, 4)],
)
def test_exp_neg_error_bound(dtype, limit, ulps):
    @njit
    def run(a):
        out = np.empty_like(a)
        for i in range(a.shape[0]):
            out[i] = cpu_pair.exp_neg(a[i])
        return out

    rng = np.random.default_rng(0)
    a = np.concatenate([np.linspace(0, limit, 200_001), rng.uniform(0, 1, 10_000), [0.0, limit]]).astype(dtype)
    got = run(a).astype(np.float64)
    exact = np.exp(-a.astype(np.float64))
    rel = np.abs(got - exact) / exact
    assert rel.max() <= ulps * np.finfo(dtype).eps, rel.max()
    beyond = np.array([limit * 1.0001, limit + 1, 1e4, np.inf], dtype=dtype)
    assert np.all(run(beyond) == 0)


def test_sigmoid_pair_accuracy():
    @njit
    def run(x):
        d = np.empty_like(x)
        s = np.empty_like(x)
        for i in range(x.shape[0]):
            d[i], s[i] = cpu_pair.sigmoid_pair(x[i])
        return d, s

    x = np.linspace(-45, 45, 90_001).astype(np.float32)
    d, s = run(x)
    x64 = x.astype(np.float64)
    exact_d, exact_s = 1 / (1 + np.exp(-x64)), 1 / (1 + np.exp(x64))
    keep = np.abs(x64) < 40  # beyond SIGMOID_CUTOFF the small side is 0 by definition
    for got, exact in ((d, exact_d), (s, exact_s)):
        rel = np.abs(got[keep] - exact[keep]) / exact[keep]
        assert rel.max() < 8 * np.finfo(np.float32).eps


@njit(error_model="numpy")
def _row_loop(acc, fv, inv, xs, ys, theta, inv_sigma):  # pragma: no cover - compiled
    """A tile's coverage loop as the kernels write it: face row, then one loop over the row."""
    zero = np.float32(0.0)
    fc = _load_face(fv, inv, 0, 0)
    fk = cpu_pair.face_constants(fc, xs[0], xs[1] - xs[0], zero)
    for i in range(ys.shape[0]):
        rw = cpu_pair.row_start(fc, xs[0], ys[i], zero)
        for jj in range(xs.shape[0]):
            j = np.uint64(jj)
            _, _, _, keep, d2, _, _ = cpu_pair.pair_geometry(jj, fk, rw, True, False, theta)
            _, one_minus_d = cpu_pair.sigmoid_pair(d2 * inv_sigma)
            a = acc[i, j]
            acc[i, j] = a * one_minus_d if keep else a


def _cpu_flags() -> set[str]:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return set(re.findall(r"\b(avx2|avx512f)\b", text))


def test_pair_loop_vectorises():
    flags = _cpu_flags()
    if not flags:
        pytest.skip("neither AVX2 nor AVX-512 on this machine (or no /proc/cpuinfo)")
    fv = np.array([[[[-0.5, -0.5, 2.0], [0.5, -0.4, 2.1], [0.0, 0.6, 2.2]]]], np.float32)
    x0, y0, x1, y1, x2, y2 = fv[0, 0, :, :2].astype(np.float64).ravel()
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    adj = [y1 - y2, x2 - x1, x1 * y2 - x2 * y1, y2 - y0, x0 - x2, x2 * y0 - x0 * y2]
    adj += [y0 - y1, x1 - x0, x0 * y1 - x1 * y0]
    inv = (np.array(adj) / det).reshape(1, 1, 9)
    n = 32
    xs = (2 * np.arange(n) + 1 - n) / n
    acc = np.ones((n, n), np.float32)
    _row_loop(acc, fv, inv, xs, xs[::-1].copy(), np.float32(1e-3), np.float32(1e4))
    asm = _row_loop.inspect_asm(_row_loop.signatures[0])
    register = "zmm" if "avx512f" in flags else "ymm"
    packed = re.findall(rf"\bv(?:mul|add|sub|div|min|max)ps\s+[^\n]*%{register}", asm)
    assert len(packed) >= 10, f"expected packed float32 arithmetic on {register} registers"
    assert not re.search(r"\bcall\w*\s+[^\n]*exp", asm), "a libm exp call in the pair loop"
    # and the loop computes what it should: the transmittance of one face, 0 < Π(1 − D) <= 1
    assert np.all((acc > 0) | (acc == 0)) and np.all(acc <= 1) and acc.min() == 0


def _scene(dtype: torch.dtype) -> torch.Tensor:
    v, f = shapes.icosphere(2)
    r = sr.SoftRenderer(image_size=32, camera_mode="look_at")
    r.transform.set_eyes_from_angles(2.732, 20.0, 30.0)
    mesh = sr.Mesh((0.8 * v[None]).repeat(2, 1, 1).to(dtype), f[None].repeat(2, 1, 1))
    return r.transform(mesh).face_vertices.detach()


@pytest.mark.parametrize(("sigma", "gamma"), [(1e-5, 1e-4), (1e-2, 1e-2)])
def test_float32_arithmetic_against_float64(sigma, gamma):
    fv64 = _scene(torch.float64)
    g = torch.Generator().manual_seed(0)
    b, f = fv64.shape[:2]
    surface64 = torch.rand(b, f, 4, 3, generator=g, dtype=torch.float64)
    vertex64 = torch.rand(b, f, 3, 2, generator=g, dtype=torch.float64)
    settings = RasterSettings.create(32, sigma_val=sigma, gamma_val=gamma, with_depth=True)
    weights = torch.rand(b, 5, 32, 32, generator=g, dtype=torch.float64)
    runs = {}
    for dtype in (torch.float64, torch.float32):
        inputs = [t.detach().to(dtype).clone().requires_grad_() for t in (fv64, surface64, vertex64)]
        out = rasterize_channels(inputs[0], settings, surface=inputs[1], vertex=inputs[2], backend="cpu")
        loss = (out.channels * weights.to(dtype)).sum() + out.alpha.square().sum() + 0.1 * out.depth.sum()
        loss.backward()
        runs[dtype] = (out, [t.grad.double() for t in inputs])
    (out64, grads64), (out32, grads32) = runs[torch.float64], runs[torch.float32]
    for name in ("channels", "alpha", "depth"):
        err = (getattr(out32, name).double() - getattr(out64, name)).abs().max().item()
        assert err <= 1e-5, (name, err)
    for name, g32, g64 in zip(("face_vertices", "surface", "vertex"), grads32, grads64, strict=True):
        rel = ((g32 - g64).abs().max() / g64.abs().max()).item()
        assert rel <= 1e-4, (name, rel)


def test_thread_count_follows_affinity_and_quota(monkeypatch):
    from softras.raster import cpu

    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0})
    assert cpu.usable_cpus() == 1
    assert cpu._threads() == 1
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(cpu, "_cgroup_cpu_quota", lambda: 1.5)
    assert cpu.usable_cpus() == 2
