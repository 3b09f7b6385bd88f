"""PyTorch integration on every backend: half inputs, torch.autocast, torch.compile, state_dict.

The rule under test (softras._precision, applied in the raster dispatch and at the entry of the
render pipelines): float16 / bfloat16 inputs are computed in float32 and come back in their
dtype, so a half rasterization (or render, tests/test_half_precision.py) equals the float32 one
of the same (rounded) inputs, rounded; gradients flow back in the inputs' dtype. Inside
torch.autocast the rasterizer and the camera transforms run as in float32 and return float32.
torch.compile'd models trace the rasterizer as one custom op (softras::rasterize, see
softras.raster.op and tests/test_compile_op.py): no graph break.
Every case runs on each available backend (Warp on its CPU device) and, where CUDA is present,
on CUDA tensors too.
"""

from __future__ import annotations

import copy
import io
import logging
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import softras as sr
from softras import shapes
from softras.articulated import humanoid
from softras.cameras import Pinhole
from softras.losses import FlattenLoss, LaplacianLoss, iou
from softras.raster import BACKENDS, RasterSettings, rasterize_channels

from .helpers import assert_grad_close
from .scenes import random_scene

HALF = (torch.float16, torch.bfloat16)
TARGETS = [
    pytest.param(b.name, device, id=b.name if device == "cpu" else f"{b.name}@{device}")
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for b in BACKENDS.values()
    if b.available() and b.runs_on(torch.device(device))
]
FLOAT_OUTPUTS = ("channels", "alpha", "depth", "barycentrics", "hard_depth")


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    yield
    torch._dynamo.reset()  # compiled graphs of one test must not serve the next


def _sphere(device: str, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A level-1 icosphere [1, 42, 3], its faces [1, 80, 3] and per-face colours [1, 80, 1, 3]."""
    v, f = shapes.icosphere(1)
    g = torch.Generator().manual_seed(0)
    colours = torch.rand(1, f.shape[0], 1, 3, generator=g)
    return (0.8 * v[None]).to(device, dtype), f[None].to(device), colours.to(device, dtype)


def _renderer(backend: str, device: str, **kw: object) -> sr.SoftRenderer:
    r = sr.SoftRenderer(image_size=16, sigma_val=1e-4, gamma_val=1e-3, camera_mode="look_at", backend=backend, **kw)
    r.transform.set_eyes_from_angles(2.732, 20.0, 30.0)  # a camera that rotates the mesh
    return r.to(device)


# ----------------------------------------------------------------------------- half inputs
@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize(("backend", "device"), TARGETS)
def test_half_inputs_are_the_float32_result_rounded(backend: str, device: str, dtype: torch.dtype) -> None:
    fv, tex = random_scene(batch=2, faces=8, seed=0)
    s = RasterSettings.create((12, 16), sigma_val=1e-3, gamma_val=1e-2, with_depth=True, with_zbuffer=True)
    fv_h, tex_h = (t.to(device, dtype).requires_grad_(True) for t in (fv, tex))
    fv_32, tex_32 = (t.detach().float().requires_grad_(True) for t in (fv_h, tex_h))
    out = rasterize_channels(fv_h, s, surface=tex_h, background=(0.1, 0.2, 0.3), backend=backend)
    want = rasterize_channels(fv_32, s, surface=tex_32, background=(0.1, 0.2, 0.3), backend=backend)
    for name in FLOAT_OUTPUTS:
        got, ref = getattr(out, name), getattr(want, name)
        assert got.dtype == dtype, name
        assert torch.equal(got, ref.to(dtype)), name
    assert torch.equal(out.face_id, want.face_id)
    # gradients: the same upstream gradient (as the half outputs see it) gives the float32
    # gradients, rounded to the inputs' dtype
    g = torch.Generator().manual_seed(1)
    w_c, w_a, w_d = (torch.rand(t.shape, generator=g).to(device) for t in (out.channels, out.alpha, out.depth))
    ((out.channels.float() * w_c).sum() + (out.alpha.float() * w_a).sum() + (out.depth.float() * w_d).sum()).backward()
    rounded = [w.to(dtype).float() for w in (w_c, w_a, w_d)]
    ((want.channels * rounded[0]).sum() + (want.alpha * rounded[1]).sum() + (want.depth * rounded[2]).sum()).backward()
    for got, ref in ((fv_h.grad, fv_32.grad), (tex_h.grad, tex_32.grad)):
        assert got.dtype == dtype and bool(torch.isfinite(got).all())
        assert torch.equal(got, ref.to(dtype))
        assert float(got.abs().max()) > 0


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize(("backend", "device"), TARGETS)
def test_renderer_with_half_meshes(backend: str, device: str, dtype: torch.dtype) -> None:
    v, f, c = _sphere(device, dtype)
    v.requires_grad_(True)
    renderer = _renderer(backend, device)
    images = renderer(v, f, c)
    assert images.dtype == dtype
    images.float().mean().backward()
    assert v.grad.dtype == dtype and bool(torch.isfinite(v.grad).all()) and float(v.grad.abs().max()) > 0
    # lighting and the camera transform run in float32 too: the float32 render, rounded
    with torch.no_grad():
        full = renderer(v.detach().float(), f, c.float())
    assert torch.equal(images, full.to(dtype))


# ----------------------------------------------------------------------------- autocast
@pytest.mark.parametrize("amp_dtype", HALF, ids=str)
@pytest.mark.parametrize(("backend", "device"), TARGETS)
def test_autocast_renders_as_float32(backend: str, device: str, amp_dtype: torch.dtype) -> None:
    v, f, c = _sphere(device)
    renderer = _renderer(backend, device)
    v_plain, v_amp = v.clone().requires_grad_(True), v.clone().requires_grad_(True)
    plain = renderer(v_plain, f, c)
    with torch.autocast(device, dtype=amp_dtype):
        amp = renderer(v_amp, f, c)
    assert amp.dtype == torch.float32
    torch.testing.assert_close(amp, plain, atol=1e-6, rtol=0)  # the camera's matmul is not lowered
    plain.square().mean().backward()
    amp.square().mean().backward()
    assert v_amp.grad.dtype == torch.float32
    torch.testing.assert_close(v_amp.grad, v_plain.grad, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("amp_dtype", HALF, ids=str)
@pytest.mark.parametrize(("backend", "device"), TARGETS)
def test_autocast_network_output_is_rendered_in_float32(backend: str, device: str, amp_dtype: torch.dtype) -> None:
    """A network under autocast emits half vertices; the rasterizer computes in float32 and returns
    float32 (autocast's rule for float32 ops), and gradients reach the network's weights."""
    v, f, c = _sphere(device)
    net = nn.Linear(3, 3).to(device)
    with torch.no_grad():
        net.weight.copy_(torch.eye(3) * 0.9)
        net.bias.zero_()
    renderer = _renderer(backend, device)
    with torch.autocast(device, dtype=amp_dtype):
        verts = net(v)
        assert verts.dtype == amp_dtype
        images = renderer(verts, f, c)
    assert images.dtype == torch.float32
    with torch.no_grad():
        want = renderer(verts, f, c)  # the same half vertices outside autocast: a half result
    assert want.dtype == amp_dtype and torch.equal(images.to(amp_dtype), want)
    (1 - iou(images[:, 3], torch.ones_like(images[:, 3]))).mean().backward()
    assert net.weight.grad.dtype == torch.float32 and bool(torch.isfinite(net.weight.grad).all())
    assert float(net.weight.grad.abs().max()) > 0


@pytest.mark.parametrize("amp_dtype", HALF, ids=str)
def test_render_losses_and_cameras_under_autocast(amp_dtype: torch.dtype) -> None:
    """The rest of the render path (Pinhole camera, lighting, normals, depth, losses, the
    articulated model's kinematics) gives the float32 numbers inside an autocast region."""
    v, f, c = _sphere("cpu")
    mesh = sr.Mesh(v, f, textures=c)
    R = sr.rotations.axis_angle_to_matrix(torch.tensor([0.3, -0.5, 0.1]))
    K = torch.tensor([[20.0, 0.0, 8.0], [0.0, 20.0, 8.0], [0.0, 0.0, 1.0]])
    camera = Pinhole(K, R, torch.tensor([0.0, 0.0, 3.0]), image_size=(16, 16))
    lights = sr.Lighting()
    laplacian, flatten = LaplacianLoss(v[0], f[0]), FlattenLoss(f[0])
    body = humanoid()
    angles = body.rest_angles()[None] + 0.3

    def everything() -> dict[str, torch.Tensor]:
        out = sr.render(mesh, camera, lights=lights, outputs=("rgba", "depth", "normals"), sigma_val=1e-4)
        losses = {"laplacian": laplacian(v), "flatten": flatten(v), "iou": iou(out.alpha[:, 0], out.alpha[:, 0])}
        return {**out.as_dict(), **losses, "articulated": body.vertices(angles)}

    plain = everything()
    with torch.autocast("cpu", dtype=amp_dtype):
        amp = everything()
    for name, value in plain.items():
        assert amp[name].dtype == torch.float32, name
        torch.testing.assert_close(amp[name], value, atol=1e-6, rtol=1e-6, msg=name)


# ----------------------------------------------------------------------------- torch.compile
class _Fit(nn.Module):
    """A model that renders a translated sphere: its one parameter is the translation."""

    def __init__(self, backend: str, device: str) -> None:
        super().__init__()
        v, f, c = _sphere(device)
        self.register_buffer("base", v)
        self.register_buffer("faces", f)
        self.register_buffer("colours", c)
        self.offset = nn.Parameter(torch.tensor([0.05, -0.03, 0.02], device=device))
        self.renderer = _renderer(backend, device)

    def forward(self) -> torch.Tensor:
        return self.renderer(self.base + self.offset, self.faces, self.colours)


def _assert_close_to(got: torch.Tensor, want: torch.Tensor, rel: float, what: str) -> None:
    assert float(want.detach().abs().max()) > 0, what  # not a comparison of zeros
    assert_grad_close(got, want, rel, msg=what)


def _compiled_matches_eager(backends: list[str], compiler: str, rel: float) -> None:
    """One compiled model renders with each of ``backends`` in turn (the backend is a constant of
    the graph: each one compiles it again); images and gradients match the eager model's within
    ``rel``."""
    model = _Fit(backends[0], "cpu")
    compiled = torch.compile(model, backend=compiler)
    for backend in backends:
        model.renderer.rasterizer.backend = backend
        eager = _Fit(backend, "cpu")
        for call in range(2):  # the second call runs the cached graphs
            what = f"{backend}, call {call}"
            for m in (eager, compiled):
                m.zero_grad()
                m().square().mean().backward()
            _assert_close_to(compiled(), eager(), rel, what)
            _assert_close_to(model.offset.grad, eager.offset.grad, rel, what)


def test_compiled_model_renders_and_backprops_on_every_backend() -> None:
    _compiled_matches_eager([b.values[0] for b in TARGETS if b.values[1] == "cpu"], "aot_eager", 1e-6)


def test_compiled_model_with_inductor_on_the_default_backend() -> None:
    # inductor fuses the camera arithmetic: screen coordinates differ by float32 rounding, which
    # the sharp coverage (σ = 1e-4: a slope of ~100 per NDC unit) amplifies to ~1e-5
    _compiled_matches_eager([sr.default_backend("cpu")], "inductor", 1e-4)


# ----------------------------------------------------------------------------- state_dict
def test_renderer_state_round_trips_into_a_fresh_renderer() -> None:
    v, f, c = _sphere("cpu")
    P = torch.tensor([[[40.0, 0.0, 32.0, 0.0], [0.0, 40.0, 32.0, 0.0], [0.0, 0.0, 1.0, 3.0]]], dtype=torch.float64)
    configured = [
        sr.SoftRenderer(image_size=(20, 24), sigma_val=3e-4, gamma_val=2e-3, background_color=(0.2, 0.3, 0.4),
                        camera_mode="look_at", light_intensity_ambient=0.3, light_directions=(0.3, 1.0, -0.5),
                        aggr_func_alpha="sum", anti_aliasing=True),
        sr.SoftRenderer(camera_mode="projection", P=P, orig_size=64, image_size=16, dist_func="barycentric"),
        sr.SoftRenderer(camera_mode="look", image_size=16, camera_direction=(0.0, 0.1, 1.0)),
    ]  # fmt: skip
    configured[0].transform.set_eyes_from_angles(2.5, 20.0, 40.0)
    configured[0].set_sigma(2e-4)
    configured[0].lighting.directionals[0].light_color = torch.tensor([1.0, 0.8, 0.6])
    configured[2].transform.set_eyes(torch.tensor([[0.0, 0.2, -3.0]]))
    for r in configured:
        buffer = io.BytesIO()
        torch.save(r.state_dict(), buffer)
        buffer.seek(0)
        mode = r.transform.camera_mode
        fresh = sr.SoftRenderer(camera_mode=mode, P=P if mode == "projection" else None)
        before, want = fresh(v, f, c), r(v, f, c)
        assert before.shape != want.shape or not torch.equal(before, want)  # a default renderer differs
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        assert torch.equal(fresh(v, f, c), want), mode
    assert configured[0].state_dict()["rasterizer._extra_state"]["sigma_val"] == 2e-4


def test_state_of_another_camera_or_bad_settings_is_refused() -> None:
    state = sr.SoftRenderer(camera_mode="look").state_dict()
    with pytest.raises(ValueError, match="the saved camera is a LookCamera, this LookAt holds a LookAtCamera"):
        sr.SoftRenderer(camera_mode="look_at").load_state_dict(state)
    bad = dict(state, **{"rasterizer._extra_state": {**state["rasterizer._extra_state"], "sigma_val": -1.0}})
    with pytest.raises(ValueError, match="sigma_val"):
        sr.SoftRenderer(camera_mode="look").load_state_dict(bad)
    with pytest.raises(ValueError, match=r"state_dict: Lighting expected settings \['light_mode'\]"):
        sr.Lighting().load_state_dict({"_extra_state": {"mode": "surface"}})


def test_docs_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/pytorch.md's Python blocks, in order, as a reader pastes them (they write a file)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "pytorch.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    for name in ("handlers", "level"):  # the last block configures logging: undo it afterwards
        monkeypatch.setattr(logging.root, name, copy.copy(getattr(logging.root, name)))
    scope: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/pytorch.md block {i}", "exec"), scope)
    assert scope["vertices"].grad.dtype == torch.bfloat16 and scope["net"].weight.grad.dtype == torch.float32
