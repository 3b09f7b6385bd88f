"""Property suite: random scenes (degenerate faces included) on every backend against the reference.

Each example draws every option, a non-square image, float32 or float64, attribute widths, the
extra outputs, and applies degenerate edits of every kind (zero-area, repeated vertices, a vertex
at z = 0 or behind the camera, faces exactly on z = near / z = far, vertices exactly on pixel
centres, duplicate faces). Properties: no exception and nothing non-finite (float32 and float64),
and in float64 every backend equals the reference (1e-10 for outputs, 1e-8 relative for
gradients; equal z-buffer face ids), zero-area faces included (contract.DET_EPS: they are not
rasterized). Only a scene with a sliver, a face with DET_EPS <= |det| < 1e-6, is checked for
finiteness alone: its barycentrics scale with 1 / det, which amplifies the backends' float64
rounding beyond the tolerances. In float32 the
backends round differently (``cpu`` computes in float64), so pixels on an edge may fall either
way and only finiteness and shapes are checked.

``SOFTRAS_FUZZ_EXAMPLES`` sets the number of examples (default 300, CI); long runs:
``SOFTRAS_FUZZ_EXAMPLES=10000 pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from softras.raster import RasterSettings, rasterize_channels
from softras.raster.backends import available_backends
from softras.raster.contract import DET_EPS, has_area, pixel_centers

from .helpers import assert_grad_close
from .options import DIST_FUNCS, RGB_AGGREGATIONS, SOFTRAS_ALPHA_AGGREGATIONS

EXAMPLES = int(os.environ.get("SOFTRAS_FUZZ_EXAMPLES", "300"))
OTHERS = [b for b in os.environ.get("SOFTRAS_FUZZ_BACKENDS", "cpu,warp").split(",") if b in available_backends()]
EDITS = ("collinear", "point", "duplicate_vertex", "zero_depth", "behind_camera", "on_near", "on_far",
         "vertex_on_pixel_centre", "duplicate_face")  # fmt: skip


@st.composite
def scenes(draw: st.DrawFn) -> dict:
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    b, f = draw(st.integers(1, 2)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    near, far = 1.0, draw(st.sampled_from([3.0, 5.0, 100.0]))
    xy = (torch.rand(b, f, 3, 2, generator=g, dtype=torch.float64) * 2 - 1) * 1.3
    z = 1.2 + torch.rand(b, f, 3, 1, generator=g, dtype=torch.float64) * (min(far, 6.0) - 1.4)
    fv = torch.cat([xy, z], -1)
    xs = pixel_centers(w, flip=False, dtype=torch.float64, device="cpu")
    ys = pixel_centers(h, flip=True, dtype=torch.float64, device="cpu")
    for edit in draw(st.lists(st.sampled_from(EDITS), max_size=3)):
        i, k = draw(st.integers(0, b - 1)), draw(st.integers(0, f - 1))
        if edit == "collinear":
            fv[i, k, 2, :2] = 0.5 * (fv[i, k, 0, :2] + fv[i, k, 1, :2])
        elif edit == "point":
            fv[i, k, 1:] = fv[i, k, :1]
        elif edit == "duplicate_vertex":
            fv[i, k, 2] = fv[i, k, 0]
        elif edit == "zero_depth":
            fv[i, k, 0, 2] = 0.0
        elif edit == "behind_camera":
            fv[i, k, :, 2] = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
        elif edit == "on_near":
            fv[i, k, :, 2] = near
        elif edit == "on_far":
            fv[i, k, :, 2] = far
        elif edit == "vertex_on_pixel_centre":
            fv[i, k, 0, 0] = xs[draw(st.integers(0, w - 1))]
            fv[i, k, 0, 1] = ys[draw(st.integers(0, h - 1))]
        elif edit == "duplicate_face" and f > 1:
            fv[i, (k + 1) % f] = fv[i, k]
    cs, cv = draw(st.sampled_from([(3, 0), (0, 3), (0, 1), (3, 4), (0, 0)]))
    r = draw(st.integers(1, 3))
    settings_ = RasterSettings.create(
        (h, w),
        near=near,
        far=far,
        fill_back=draw(st.booleans()),
        sigma_val=10 ** draw(st.floats(-5, -1.5)),
        gamma_val=10 ** draw(st.floats(-4, 0)),
        dist_func=draw(st.sampled_from(DIST_FUNCS)),
        aggr_func_rgb=draw(st.sampled_from(RGB_AGGREGATIONS)),
        aggr_func_alpha=draw(st.sampled_from(SOFTRAS_ALPHA_AGGREGATIONS)),
        with_depth=draw(st.booleans()),
        with_zbuffer=draw(st.booleans()),
    )
    return {
        "fv": fv.to(dtype),
        "surface": torch.rand(b, f, r * r, cs, generator=g, dtype=torch.float64).to(dtype),
        "vertex": torch.rand(b, f, 3, cv, generator=g, dtype=torch.float64).to(dtype),
        "background": tuple(torch.rand(cs + cv, generator=g).tolist()),
        "settings": settings_,
        "seed": seed,
    }


def _has_sliver(fv: torch.Tensor) -> bool:
    """Whether a face is rasterized but nearly without area (DET_EPS <= |det| < 1e-6): its
    barycentrics scale with 1 / det, which amplifies the backends' float64 rounding."""
    x, y = fv[..., 0].double(), fv[..., 1].double()
    det = x[..., 2] * (y[..., 0] - y[..., 1]) + x[..., 0] * (y[..., 1] - y[..., 2])
    det = (det + x[..., 1] * (y[..., 2] - y[..., 0])).abs()
    return bool(((det >= DET_EPS) & (det < 1e-6)).any())


def _run(scene: dict, backend: str) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    leaves = [scene[k].clone().requires_grad_(True) for k in ("fv", "surface", "vertex")]
    out = rasterize_channels(
        leaves[0], scene["settings"], surface=leaves[1], vertex=leaves[2], background=scene["background"],
        backend=backend,
    )  # fmt: skip
    fields = {k: v for k, v in out._asdict().items() if v is not None}
    soft = [v for k, v in fields.items() if k in ("channels", "alpha", "depth")]
    g = torch.Generator().manual_seed(scene["seed"] + 1)
    loss = sum((v * torch.randn(v.shape, generator=g, dtype=torch.float64).to(v.dtype)).sum() for v in soft)
    if not (isinstance(loss, torch.Tensor) and loss.requires_grad):  # e.g. hard coverage and no channels
        return {k: v.detach() for k, v in fields.items()}, [torch.zeros_like(x) for x in leaves]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads = [torch.zeros_like(x) if gr is None else gr for x, gr in zip(leaves, grads, strict=True)]
    return {k: v.detach() for k, v in fields.items()}, grads


@pytest.mark.skipif(not OTHERS, reason="no backend besides the reference")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes())
def test_every_backend_equals_the_reference_on_random_and_degenerate_scenes(scene: dict) -> None:
    want, want_grads = _run(scene, "reference")
    for name, value in want.items():
        assert value.is_floating_point() is False or torch.isfinite(value).all(), f"reference {name} not finite"
    f64 = scene["fv"].dtype == torch.float64
    sliver = _has_sliver(scene["fv"])
    zero_area = not bool(has_area(scene["fv"]).all())
    event("float32: finiteness" if not f64 else "float64 sliver: finiteness" if sliver
          else "float64 zero-area: exact" if zero_area else "float64: exact")  # fmt: skip
    for backend in OTHERS:
        got, got_grads = _run(scene, backend)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].shape == want[name].shape, f"{backend} {name}"
            if want[name].is_floating_point():
                assert torch.isfinite(got[name]).all(), f"{backend} {name} not finite"
        if not f64 or sliver:
            continue  # finiteness only (see the module docstring)
        for name in ("channels", "alpha", "depth", "hard_depth", "barycentrics"):
            if name in want:
                torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-10, msg=f"{backend} {name}")
        if "face_id" in want:
            assert torch.equal(got["face_id"], want["face_id"]), f"{backend} face_id"
        for label, a, r in zip(("face_vertices", "surface", "vertex"), got_grads, want_grads, strict=True):
            assert torch.isfinite(a).all(), f"{backend} grad {label} not finite"
            if f64 and not sliver:
                assert_grad_close(a, r, 1e-8, floor=1.0, msg=f"{backend} grad {label}")
