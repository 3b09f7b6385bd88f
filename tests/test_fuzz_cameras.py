"""Property suite for softras.render with real cameras: geometry behind, around and across the
camera plane, seen by distorted Pinhole cameras, on every backend against the reference.

Each example draws a scene kind (``front``: every vertex in front; ``behind``: every vertex behind
the camera; ``around``: vertices all around the camera, as in a room; ``across``: triangles that
straddle the camera plane), a Pinhole camera (focal lengths, principal point, rotation, Brown–
Conrady distortion; the few that fold inside the image are refused and redrawn), the options, float32 or float64, and
asks for every output. Properties: no exception, every output and every gradient (vertices,
features, the camera's t) finite; ``behind`` renders nothing; and in float64 every backend
equals the reference (1e-10 outputs, 1e-8 relative gradients, equal face ids).

``SOFTRAS_FUZZ_CAMERA_EXAMPLES`` sets the number of examples (default 60, CI).
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

import softras as sr
from softras.cameras import Pinhole, rodrigues
from softras.raster.backends import available_backends

from .helpers import assert_grad_close
from .options import DIST_FUNCS, RGB_AGGREGATIONS, SOFTRAS_ALPHA_AGGREGATIONS

EXAMPLES = int(os.environ.get("SOFTRAS_FUZZ_CAMERA_EXAMPLES", "60"))
OTHERS = [b for b in os.environ.get("SOFTRAS_FUZZ_BACKENDS", "cpu,warp").split(",") if b in available_backends()]
KINDS = ("front", "behind", "around", "across")
D = torch.float64


def _vertices(kind: str, count: int, g: torch.Generator) -> torch.Tensor:
    """[count, 3] camera-frame vertices of a scene kind (before the camera pose is applied)."""
    u = torch.rand(count, 3, generator=g, dtype=D) * 2 - 1
    if kind == "front":
        return u * torch.tensor([1.5, 1.5, 1.0], dtype=D) + torch.tensor([0.0, 0.0, 4.0], dtype=D)
    if kind == "behind":
        return u * torch.tensor([2.0, 2.0, 1.0], dtype=D) - torch.tensor([0.0, 0.0, 3.0], dtype=D)
    if kind == "around":
        return u * torch.tensor([5.0, 4.0, 5.0], dtype=D)
    z = torch.where(torch.arange(count) % 3 == 0, -2.0 - u[:, 2], 3.0 + 2 * u[:, 2])  # one corner behind
    return torch.stack([u[:, 0] * 2, u[:, 1] * 2, z], 1)


@st.composite
def scenes(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(KINDS))
    h, w = draw(st.integers(2, 14)), draw(st.integers(2, 14))
    f = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    focal = max(h, w) * draw(st.floats(0.8, 2.5))
    K = torch.tensor(
        [[focal, 0.0, (w - 1) / 2 + draw(st.floats(-1, 1))],
         [0.0, focal * draw(st.floats(0.9, 1.1)), (h - 1) / 2 + draw(st.floats(-1, 1))],
         [0.0, 0.0, 1.0]], dtype=D,
    )  # fmt: skip
    dist = [draw(st.floats(-0.1, 0.1)), draw(st.floats(-0.02, 0.02)), draw(st.floats(-0.01, 0.01)),
            draw(st.floats(-0.01, 0.01)), 0.0]  # fmt: skip
    try:  # a wide field of view with a strong lens may fold inside the image: such cameras are refused
        Pinhole(K, torch.eye(3, dtype=D), torch.zeros(3, dtype=D), image_size=(h, w), dist_coeffs=dist)
    except ValueError as error:
        assert str(error).startswith("dist_coeffs: ")
        reject()
    rvec = (torch.rand(3, generator=g, dtype=D) * 2 - 1) * draw(st.sampled_from([0.0, 0.3]))
    R = rodrigues(rvec)[0]
    t = torch.rand(3, generator=g, dtype=D) * 0.2 - 0.1
    camera_frame = _vertices(kind, 3 * f, g)
    world = (camera_frame - t) @ R  # R·x + t = the camera-frame point
    options = dict(
        near=draw(st.sampled_from([0.1, 1.0])),
        far=draw(st.sampled_from([6.0, 100.0])),
        fill_back=draw(st.booleans()),
        sigma_val=10 ** draw(st.floats(-5, -2)),
        gamma_val=10 ** draw(st.floats(-4, -1)),
        dist_func=draw(st.sampled_from(DIST_FUNCS)),
        aggr_func_rgb=draw(st.sampled_from(RGB_AGGREGATIONS)),
        aggr_func_alpha=draw(st.sampled_from(SOFTRAS_ALPHA_AGGREGATIONS)),
    )
    return {
        "kind": kind,
        "dtype": draw(st.sampled_from([torch.float32, D])),
        "vertices": world,
        "faces": torch.arange(3 * f).reshape(f, 3),
        "features": torch.rand(3 * f, 2, generator=g, dtype=D),
        "camera": (K, R, t, torch.tensor(dist, dtype=D), (h, w)),
        "options": options,
        "seed": seed,
    }


def _run(scene: dict, backend: str) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    dtype = scene["dtype"]
    K, R, t, dist, size = scene["camera"]
    leaves = [x.to(dtype).clone().requires_grad_(True) for x in (scene["vertices"], scene["features"], t)]
    camera = Pinhole(K.to(dtype), R.to(dtype), leaves[2], image_size=size, dist_coeffs=dist.to(dtype))
    mesh = sr.Mesh(leaves[0][None], scene["faces"][None])
    outputs = ("rgba", "depth", "features", "normals", "face_id", "barycentrics", "hard_depth")
    out = sr.render(mesh, camera, outputs=outputs, features=leaves[1], backend=backend, **scene["options"])
    fields = out.as_dict()
    g = torch.Generator().manual_seed(scene["seed"] + 1)
    soft = [fields[k] for k in ("rgba", "depth", "features", "normals")]
    loss = sum((v * torch.randn(v.shape, generator=g, dtype=D).to(v.dtype)).sum() for v in soft)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads = [torch.zeros_like(x) if gr is None else gr for x, gr in zip(leaves, grads, strict=True)]
    return {k: v.detach() for k, v in fields.items()}, grads


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene=scenes())
def test_real_camera_scenes_are_finite_and_equal_on_every_backend(scene: dict) -> None:
    event(f"{scene['kind']}, {'float64: exact' if scene['dtype'] == D else 'float32: finiteness'}")
    want, want_grads = _run(scene, "reference")
    for name, value in [*want.items(), *zip(("vertices", "features", "t"), want_grads, strict=True)]:
        assert not value.is_floating_point() or bool(torch.isfinite(value).all()), f"reference {name} not finite"
    if scene["kind"] == "behind":
        assert float(want["alpha"].sum()) == 0.0
        assert bool((want["face_id"] < 0).all())
    for backend in OTHERS:
        got, got_grads = _run(scene, backend)
        for name, value in [*got.items(), *zip(("vertices", "features", "t"), got_grads, strict=True)]:
            assert not value.is_floating_point() or bool(torch.isfinite(value).all()), f"{backend} {name} not finite"
        if scene["dtype"] != D:
            continue
        for name, value in want.items():
            if name == "face_id":
                assert torch.equal(got[name], value), f"{backend} face_id"
            else:
                torch.testing.assert_close(got[name], value, rtol=0, atol=1e-10, msg=f"{backend} {name}")
        for label, a, r in zip(("vertices", "features", "t"), got_grads, want_grads, strict=True):
            assert_grad_close(a, r, 1e-8, floor=1.0, msg=f"{backend} grad {label}")


@pytest.mark.parametrize("kind", KINDS)
def test_scene_kinds_are_what_they_say(kind: str) -> None:
    z = _vertices(kind, 300, torch.Generator().manual_seed(0))[:, 2]
    behind = z < 0
    expected = {"front": (0, 0), "behind": (300, 300), "around": (60, 240), "across": (100, 100)}[kind]
    assert expected[0] <= int(behind.sum()) <= expected[1]
