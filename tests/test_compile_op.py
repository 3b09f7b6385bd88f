"""The rasterizer as one custom op (softras.raster.op) under torch.compile and torch.export.

Traced calls go through ``softras::rasterize``: a render step compiles as one graph (no graph
break in softras), its images and gradients equal the eager ones, ``torch.export`` exports a
module that renders, the op's fake implementation gives the real outputs' shapes and dtypes, and
``torch.library.opcheck`` accepts the op. Runs on the ``cpu`` and ``reference`` backends (Warp
compiles for minutes: tests/test_torch_integration.py covers it under torch.compile).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

import softras as sr
from softras import shapes
from softras.raster import RasterInputs, RasterResult, RasterSettings, op, rasterize_channels
from softras.raster.dispatch import run

from .scenes import random_attributes, random_scene

BACKENDS = ["cpu", "reference"]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    yield
    torch._dynamo.reset()  # compiled graphs of one test must not serve the next


def _step(backend: str) -> tuple[nn.Module, object]:
    """A module that renders a translated level-1 icosphere (16², one parameter) and its loss."""

    class Fit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            v, f = shapes.icosphere(1)
            self.register_buffer("base", 0.8 * v[None])
            self.register_buffer("faces", f[None])
            self.offset = nn.Parameter(torch.tensor([0.05, -0.03, 0.02]))
            self.renderer = sr.SoftRenderer(image_size=16, sigma_val=1e-4, camera_mode="look_at", backend=backend)
            self.renderer.transform.set_eyes_from_angles(2.732, 20.0, 30.0)

        def forward(self) -> torch.Tensor:
            return self.renderer(self.base + self.offset, self.faces)

    target = torch.rand(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    return Fit(), lambda model: (model() - target).square().mean()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_render_step_is_one_graph(backend: str) -> None:
    model, loss = _step(backend)
    explained = torch._dynamo.explain(loss)(model)
    assert (explained.graph_break_count, explained.graph_count) == (0, 1), explained.break_reasons


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_step_equals_eager_images_and_gradients(backend: str) -> None:
    # aot_eager runs the traced graph op by op (no fusion): every number equals the eager run's
    model, loss = _step(backend)
    compiled = torch.compile(lambda: loss(model), fullgraph=True, backend="aot_eager")
    for _ in range(2):  # the second call runs the cached graph
        model.zero_grad()
        want = loss(model)
        want.backward()
        want_grad = model.offset.grad.clone()
        model.zero_grad()
        got = compiled()
        got.backward()
        assert torch.equal(got, want)
        assert torch.equal(model.offset.grad, want_grad)
        assert float(want_grad.abs().max()) > 0


def test_a_whole_step_with_its_backward_is_one_graph() -> None:
    # Dynamo traces loss.backward() with trace_autograd_ops (torch >= 2.13, experimental); the
    # returned loss is detached, as Dynamo requires of a tensor whose graph the step consumed
    model, loss = _step("cpu")

    def step() -> torch.Tensor:
        value = loss(model)
        value.backward()
        return value.detach()

    results = []
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        for run in (step, torch.compile(step, fullgraph=True, backend="aot_eager")):
            model.zero_grad()
            results.append((run(), model.offset.grad.clone()))
    assert torch.equal(results[1][0], results[0][0]) and torch.equal(results[1][1], results[0][1])
    assert float(results[0][1].abs().max()) > 0


def _channels_call(backend: str, dtype: torch.dtype = torch.float64, **settings: object):
    """A call with 2 surface and 3 vertex channels on a 6 × 7 image: (the function of face
    vertices, surface and vertex running it eagerly or through the op, those three tensors, the
    call's encoding)."""
    fv, _ = random_scene(batch=2, faces=5, dtype=dtype, seed=4)
    surface, vertex, background = random_attributes(fv, 2, 3)
    s = RasterSettings.create((6, 7), sigma_val=3e-3, gamma_val=1e-2, **settings)

    def call(fv: torch.Tensor, surface: torch.Tensor, vertex: torch.Tensor, through_op: bool) -> RasterResult:
        rasterize = op.rasterize if through_op else run
        return rasterize(RasterInputs(fv, surface, vertex, background), s, backend, False, dtype)

    return call, (fv, surface, vertex), op.encode(op.Call(s, backend, background, False, dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_op_gradients_are_the_backends_own(backend: str) -> None:
    call, tensors, _ = _channels_call(backend, torch.float32, with_depth=True, with_zbuffer=True)
    results = {}
    for through_op in (False, True):
        leaves = [t.clone().requires_grad_(True) for t in tensors]
        r = call(*leaves, through_op)
        g = torch.Generator().manual_seed(2)
        loss = sum((t * torch.randn(t.shape, generator=g)).sum() for t in (r.channels, r.alpha, r.depth))
        loss.backward()
        results[through_op] = (r, [leaf.grad for leaf in leaves])
    (eager, eager_grads), (traced, traced_grads) = results[False], results[True]
    for name in RasterResult._fields:
        assert torch.equal(getattr(traced, name), getattr(eager, name)), name
    assert not traced.barycentrics.requires_grad and not traced.face_id.requires_grad
    for got, want in zip(traced_grads, eager_grads, strict=True):
        assert torch.equal(got, want) and float(want.abs().max()) > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_op_passes_gradcheck_in_float64(backend: str) -> None:
    call, tensors, _ = _channels_call(backend, with_depth=True)
    leaves = [t.clone().requires_grad_(True) for t in tensors]

    def f(*ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        r = call(*ts, True)
        return r.channels, r.alpha, r.depth

    # the reference's own gradients are checked entry by entry in tests/test_reference_outputs.py;
    # here, through the op, a random projection of its Jacobian (fast mode: a minute less)
    fast = backend == "reference"
    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=fast)


@pytest.mark.parametrize(("with_depth", "with_zbuffer", "rgba"), list(itertools.product((False, True), repeat=3)))
def test_fake_outputs_have_the_real_shapes_and_dtypes(with_depth: bool, with_zbuffer: bool, rgba: bool) -> None:
    fv, _ = random_scene(batch=2, faces=5, dtype=torch.float32)
    surface, vertex, background = random_attributes(fv, 2, 1)
    s = RasterSettings.create((6, 7), with_depth=with_depth, with_zbuffer=with_zbuffer)
    for backend in BACKENDS:
        call = op.encode(op.Call(s, backend, background, rgba, torch.float32))
        real = torch.ops.softras.rasterize(fv, surface, vertex, call, [False] * 3)
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            fake = torch.ops.softras.rasterize(*(mode.from_tensor(t) for t in (fv, surface, vertex)), call, [True] * 3)
        assert [(t.shape, t.dtype) for t in fake] == [(t.shape, t.dtype) for t in real], backend
    made = [t.numel() > 0 for t in real]
    assert made == [True, not rgba, with_depth and not rgba] + [with_zbuffer and not rgba] * 3


@pytest.mark.parametrize("backend", BACKENDS)  # cpu has an RGBA entry; reference concatenates
def test_rgba_entry_compiles_and_equals_eager(backend: str) -> None:
    fv, textures = random_scene(batch=1, faces=4, dtype=torch.float32, texture_type="vertex")
    settings = RasterSettings.create(8, sigma_val=1e-3, texture_type="vertex")
    compiled = torch.compile(sr.raster.rasterize, fullgraph=True, backend="aot_eager")
    results = []
    for rasterize in (sr.raster.rasterize, compiled):
        leaves = [t.clone().requires_grad_(True) for t in (fv, textures)]
        image = rasterize(*leaves, settings, backend=backend)
        (image * torch.linspace(-1, 1, image.numel()).reshape(image.shape)).sum().backward()
        results.append((image, *(leaf.grad for leaf in leaves)))
    for got, want in zip(results[1], results[0], strict=True):
        assert torch.equal(got, want) and float(want.detach().abs().max()) > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_accepts_both_ops(backend: str) -> None:
    # opcheck runs its schema, fake-tensor, autograd-registration and AOT-dispatch checks on a
    # float64 call with every output (the AOT check runs the backward op through the gradients)
    _, tensors, text = _channels_call(backend, with_depth=True, with_zbuffer=True)
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    checks = torch.library.opcheck(torch.ops.softras.rasterize.default, (*leaves, text, [True] * 3))
    assert set(checks.values()) == {"SUCCESS"}, checks
    # the backward op has no gradient of its own (second derivatives are not supported): its
    # autograd-registration check applies to inputs that do not require grad
    grads = [torch.rand(shape, dtype=torch.float64) for shape, _ in op.output_layout(*tensors, op.decode(text))[:3]]
    anchor = torch.rand(2, 1, 6, 7, dtype=torch.float64)  # no forward's anchor: the backward runs the call again
    args = (*tensors, anchor, *grads, text, [True, True, False])
    checks = torch.library.opcheck(torch.ops.softras.rasterize_backward.default, args)
    assert set(checks.values()) == {"SUCCESS"}, checks


def test_calls_round_trip_through_their_encoding() -> None:
    s = RasterSettings.create((5, 9), sigma_val=1 / 3, distribution="gamma", dist_shape=0.7, with_depth=True)
    call = op.Call(s, None, (0.1, 1 / 7), True, torch.bfloat16)
    assert op.decode(op.encode(call)) == call


def test_export_of_a_module_that_renders() -> None:
    class Render(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.settings = RasterSettings.create(8, sigma_val=1e-3, with_depth=True)

        def forward(self, fv: torch.Tensor, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            r = rasterize_channels(fv, self.settings, vertex=colours, backend="cpu")
            return r.channels, r.depth

    fv, colours = random_scene(batch=1, faces=4, dtype=torch.float32, texture_type="vertex")
    exported = torch.export.export(Render(), (fv, colours))
    assert "softras.rasterize" in str(exported.graph)
    for got, want in zip(exported.module()(fv, colours), Render()(fv, colours), strict=True):
        assert torch.equal(got, want)


def test_import_softras_does_not_import_dynamo() -> None:
    root = str(Path(__file__).resolve().parents[1])
    code = "import sys, softras; print('torch._dynamo' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root, env=env)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_traced_forward_keeps_its_graph_until_the_backward_or_until_dropped(backend: str) -> None:
    model, loss = _step(backend)
    compiled = torch.compile(lambda: loss(model), fullgraph=True, backend="aot_eager")
    assert not op._TAPES
    value = compiled()
    assert len(op._TAPES) == 1  # the backend's graph, for the backward
    value.backward()
    assert not op._TAPES  # taken by the backward
    value = compiled()
    assert len(op._TAPES) == 1
    del value  # the graph goes with the forward's autograd graph, with no backward
    assert not op._TAPES
    with torch.no_grad():
        compiled()
    assert not op._TAPES  # nothing recorded without gradients
