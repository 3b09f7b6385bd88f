"""The cpu kernels' vectorised coverage (softras.raster.cpu_lanes) against the scalar pair code.

``coverage_lanes`` must give, lane for lane, the bits the scalar ``_coverage`` and
``_sigmoid_pair`` give, so that the kernels render bit-identically with it on or off
(``SOFTRAS_CPU_LANES``; compiling a second set of kernels to show that again here would cost
minutes, and the conformance suite checks the kernels, lanes on, against the reference). It must
mark the lanes past ``n`` and the pairs the scalar code culls as not kept, and compile to packed
instructions.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from numba import njit

from softras.raster import cpu_kernels, cpu_lanes
from softras.raster.contract import SIGMOID_CUTOFF, DistFunc, pixel_centers

_EUCLID = int(DistFunc.EUCLIDEAN)
_LANES = cpu_lanes.LANES
_ROWS = ("keep", "x", "d", "one_minus_d", "w0", "w1", "w2", "edge")  # cpu_lanes' L_* order


@njit(cache=False)
def _scalar_pairs(fv, inv, xs, ys, theta, sigma, out):  # pragma: no cover - compiled
    for f in range(fv.shape[1]):
        fc = cpu_kernels._load_face(fv, inv, 0, f)
        for r in range(ys.shape[0]):
            for c in range(xs.shape[0]):
                w0, w1, w2, keep, x, edge = cpu_kernels._coverage(xs[c], ys[r], fc, _EUCLID, theta, sigma)
                d, one_minus_d = cpu_kernels._sigmoid_pair(x, _EUCLID)
                values = (1.0 if keep else 0.0, x, d, one_minus_d, w0, w1, w2, float(edge))
                for k in range(8):
                    out[f, r, c, k] = values[k]


@njit(cache=False)
def _lane_pairs(fv, inv, ys, width, theta, sigma, out, tail):  # pragma: no cover - compiled
    lane = np.empty(cpu_lanes.N_ROWS * cpu_lanes.LANES)
    for f in range(fv.shape[1]):
        fc = cpu_kernels._load_face(fv, inv, 0, f)
        for r in range(ys.shape[0]):
            for c0 in range(0, width, cpu_lanes.LANES):
                n = min(cpu_lanes.LANES, width - c0)
                cpu_lanes.coverage_lanes(lane, c0, n, width, ys[r], fc, theta, sigma)
                for j in range(cpu_lanes.LANES):
                    if j < n:
                        for k in range(8):
                            out[f, r, c0 + j, k] = lane[k * cpu_lanes.LANES + j]
                    elif lane[cpu_lanes.L_KEEP * cpu_lanes.LANES + j] != 0.0:
                        tail[0] += 1


def _random_faces(rng: np.random.Generator, count: int, spread: float) -> np.ndarray:
    """[count, 3, 3] float64 triangles: centres within ±spread, sides of 0.02-0.5, depths 1-2."""
    centres = rng.uniform(-spread, spread, size=(count, 1, 2))
    corners = centres + rng.uniform(-0.25, 0.25, size=(count, 3, 2)) * rng.uniform(0.1, 1.0, size=(count, 1, 1))
    return np.concatenate([corners, rng.uniform(1.0, 2.0, size=(count, 3, 1))], axis=2)


def _faces(kind: str, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """[1, F, 3, 3] float64 screen triangles: random ones, or ones whose vertices and edges lie on
    pixel centres (the barycentrics' snapping and the closed/open inside tests at work)."""
    if kind == "random":
        return _random_faces(rng, 40, spread=1.2)[None]
    xs = pixel_centers(width, flip=False, dtype=torch.float64, device="cpu").numpy()
    ys = pixel_centers(height, flip=True, dtype=torch.float64, device="cpu").numpy()
    faces = []
    for _ in range(40):
        c = rng.integers(0, width - 4, size=3)
        r = rng.integers(0, height - 4, size=3)
        tri = [(xs[c[k]], ys[r[k]], 1.0 + rng.random()) for k in range(3)]
        faces.append(tri)
    faces.append([(xs[2], ys[2], 1.0), (xs[9], ys[2], 1.0), (xs[2], ys[9], 1.0)])  # axis-aligned edges
    faces.append([(xs[1], ys[1], 1.0), (xs[12], ys[2], 1.0), (xs[20], ys[3], 1.0)])  # a sliver
    return np.asarray(faces, dtype=np.float64)[None]


@pytest.mark.parametrize("kind", ["random", "on_pixel_centres"])
@pytest.mark.parametrize("sigma", [1e-4, 1e-2])
@pytest.mark.parametrize("width", [23, 32])
def test_lanes_equal_scalar_pairs_bit_for_bit(kind, sigma, width):
    rng = np.random.default_rng(7)
    height = 24
    fv = _faces(kind, rng, width, height)
    theta = sigma * SIGMOID_CUTOFF
    xs = pixel_centers(width, flip=False, dtype=torch.float64, device="cpu").numpy()
    ys = pixel_centers(height, flip=True, dtype=torch.float64, device="cpu").numpy()
    nf = fv.shape[1]
    inv = np.empty((1, nf, 9))
    cpu_kernels.prepare_faces(
        fv, np.array([np.sqrt(theta)]), xs, ys, np.empty((1, nf, 4), np.int64), np.empty((1, nf), np.bool_), inv
    )
    scalar = np.zeros((nf, height, width, 8))
    lanes = np.zeros((nf, height, width, 8))
    tail = np.zeros(1, np.int64)
    _scalar_pairs(fv, inv, xs, ys, theta, sigma, scalar)
    _lane_pairs(fv, inv, ys, width, theta, sigma, lanes, tail)
    assert tail[0] == 0, "a lane past n was kept"
    keep = scalar[..., 0] != 0
    np.testing.assert_array_equal(lanes[..., 0] != 0, keep)
    assert keep.sum() > 100 and (~keep).sum() > 100, "the scene must have kept and culled pairs"
    assert (scalar[..., 1][keep] > 0).any() and (scalar[..., 1][keep] < 0).any(), "inside and outside pairs"
    for k, name in enumerate(_ROWS[1:], start=1):
        a, b = lanes[..., k][keep], scalar[..., k][keep]
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), f"{name}: not bit-identical"


_PACKED = re.compile(r"\bv(?:add|sub|mul|div|fmadd\w*|min|max)pd\s+[^\n]*%(?:ymm|zmm)")


@pytest.mark.parametrize("name", ["_coverage_lanes", "_distance_grad_lanes"])
def test_lanes_compile_to_packed_instructions(name):
    """The loops are vectorised: packed float64 arithmetic on ymm (AVX2) or zmm (AVX-512) registers."""
    fresh = njit(cache=False, nogil=True, error_model="numpy")(getattr(cpu_lanes, name).py_func)
    lane = np.zeros(cpu_lanes.N_ROWS * cpu_lanes.LANES)
    fc = tuple(float(v) for v in np.linspace(0.1, 1.0, 27))
    if name == "_coverage_lanes":
        fresh(lane, 0, 5, 32, 0.1, fc, 1e-3, 1e-4)
    else:
        fresh(lane, 0, 32, 0.1, fc, 1e-4)
    asm = fresh.inspect_asm(fresh.signatures[0])
    packed = len(_PACKED.findall(asm))
    assert packed >= 30, f"only {packed} packed float64 instructions in {name}"


def test_exp_neg_core_within_a_few_ulp():
    @njit(cache=False)
    def core(a):  # pragma: no cover - compiled
        out = np.empty_like(a)
        for i in range(a.shape[0]):
            out[i] = cpu_lanes.exp_neg_core(a[i])
        return out

    a = np.concatenate([np.linspace(0.0, 50.0, 100_001), np.geomspace(1e-12, cpu_lanes.EXP_CORE_MAX, 10_001)])
    got, want = core(a), np.exp(-a)
    ulp = np.abs(got - want) / np.spacing(want)
    assert ulp.max() <= 4, ulp.max()


def test_lanes_env_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv(cpu_kernels.LANES_ENV, "fast")
    with pytest.raises(ValueError, match="SOFTRAS_CPU_LANES"):
        cpu_kernels.lanes_enabled()
