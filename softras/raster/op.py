"""The rasterizer as one PyTorch custom op, ``softras::rasterize``, for ``torch.compile`` and ``torch.export``.

Dynamo cannot trace the backends (Numba and Warp kernels, the reference backend's data-dependent
chunking), so a traced rasterizer call is one opaque node of the graph:

* its real implementation is :func:`softras.raster.dispatch.run`, the eager call itself;
* its fake implementation gives every output's shape and dtype (:func:`output_layout`);
* its gradient is the backend's own backward, run by ``softras::rasterize_backward``: a forward
  whose inputs require grad records the backend's autograd graph (as an eager call does) and
  keeps it in :data:`_TAPES`, found again through one output saved for the backward (the
  *anchor*); the backward op differentiates that graph, or a call run again if it is gone (a
  second backward, or an :func:`torch.library.opcheck` of the backward op alone).

Custom ops take tensors and plain scalars only: the options of one call travel as one string,
the Python literal of a :class:`Call` (:func:`encode`; :func:`decode` reads it back, cached).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import weakref
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from .contract import RasterInputs, RasterResult
from .dispatch import run
from .settings import RasterSettings

__all__ = ["Call", "decode", "encode", "output_layout", "rasterize"]

_SETTINGS = tuple(f.name for f in dataclasses.fields(RasterSettings) if f.init)
_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32", torch.float64: "float64"}


class Call(NamedTuple):
    """Everything of one rasterizer call but its tensors."""

    settings: RasterSettings
    backend: str | None  # None: the device's default
    background: tuple[float, ...]  # one value per channel
    rgba: bool  # the RGBA entry (one [B, C + 1, H, W] output) instead of the full result
    out: torch.dtype  # the dtype of the floating outputs


def encode(call: Call) -> str:
    """``call`` as a Python literal (a dict: settings fields, then backend, background, rgba, out).
    Plain attribute reads and ``repr``, so Dynamo folds it to a constant while tracing."""
    fields = {name: getattr(call.settings, name) for name in _SETTINGS}
    extra = {"backend": call.backend, "background": tuple(call.background), "rgba": call.rgba}
    return repr({**fields, **extra, "out": _DTYPES[call.out]})


@functools.lru_cache(maxsize=256)
def decode(text: str) -> Call:
    """The :class:`Call` that :func:`encode` wrote (floats round-trip exactly through ``repr``)."""
    d = ast.literal_eval(text)
    settings = RasterSettings(**{name: d[name] for name in _SETTINGS})
    return Call(settings, d["backend"], tuple(d["background"]), d["rgba"], getattr(torch, d["out"]))


def output_layout(
    face_vertices: Tensor, surface: Tensor, vertex: Tensor, call: Call
) -> list[tuple[tuple, torch.dtype]]:
    """(shape, dtype) of the op's six outputs: channels [B, C, H, W] (with ``rgba``: the RGBA
    image [B, C + 1, H, W]), alpha [B, 1, H, W], depth [B, 1, H, W], face_id [B, H, W] int64,
    barycentrics [B, 3, H, W], hard_depth [B, 1, H, W]; an output the call does not make is an
    empty [0] tensor (every output but the first, with ``rgba``)."""
    b = face_vertices.shape[0]
    c = surface.shape[3] + vertex.shape[3]
    s, out = call.settings, call.out
    h, w = s.image_height, s.image_width
    if call.rgba:
        return [((b, c + 1, h, w), out), ((0,), out), ((0,), out), ((0,), torch.int64), ((0,), out), ((0,), out)]
    depth, zbuffer = s.with_depth, s.with_zbuffer
    return [
        ((b, c, h, w), out),
        ((b, 1, h, w), out),
        ((b, 1, h, w) if depth else (0,), out),
        ((b, h, w) if zbuffer else (0,), torch.int64),
        ((b, 3, h, w) if zbuffer else (0,), out),
        ((b, 1, h, w) if zbuffer else (0,), out),
    ]


def _run(face_vertices: Tensor, surface: Tensor, vertex: Tensor, call: Call) -> RasterResult | Tensor:
    return run(
        RasterInputs(face_vertices, surface, vertex, call.background), call.settings, call.backend, call.rgba, call.out
    )


@contextlib.contextmanager
def _autograd() -> Iterator[None]:
    """Autograd on inside an op's implementation, which runs below the dispatcher's autograd layer
    (the autograd keys are excluded there, so PyTorch operations would record nothing)."""
    keys = (torch._C.DispatchKey.AutogradFunctionality, torch._C.DispatchKey.AutogradOther,
            torch._C.DispatchKey.AutogradNestedTensor)  # fmt: skip
    with contextlib.ExitStack() as stack:
        for key in keys:
            stack.enter_context(torch._C._SetExcludeDispatchKeyGuard(key, False))
        stack.enter_context(torch.enable_grad())
        yield


class _Tape(NamedTuple):
    """The autograd graph of one backend call: its leaves (the detached face_vertices, surface and
    vertex, each requiring grad or not) and differentiable outputs (channels or RGBA, alpha,
    depth; None where the call makes none)."""

    leaves: tuple[Tensor, Tensor, Tensor]
    outputs: tuple[Tensor | None, ...]


def _record(
    face_vertices: Tensor, surface: Tensor, vertex: Tensor, call: Call, needs: list[bool]
) -> tuple[_Tape, RasterResult | Tensor]:
    """Run the backend, recording its autograd graph for the inputs that ``needs`` names: the tape
    and the call's result."""
    leaves = tuple(t.detach().requires_grad_(n) for t, n in zip((face_vertices, surface, vertex), needs, strict=True))
    with _autograd():
        result = _run(*leaves, call)
    return _Tape(leaves, (result,) if call.rgba else (result.channels, result.alpha, result.depth)), result


_TAPES: dict[int, _Tape] = {}
"""The graphs of forward calls whose backward has not run yet, by the storage address of their
anchor output (:func:`_anchor`). An entry goes when the backward takes it or when that storage is
freed (the forward's autograd graph was dropped without a backward)."""


def _anchor(call: Call) -> int:
    """Which output keys a call's tape: alpha, or the RGBA image of an RGBA call (never empty)."""
    return 0 if call.rgba else 1


def _keep(anchor: Tensor, tape: _Tape) -> None:
    storage = anchor.untyped_storage()
    _TAPES[storage.data_ptr()] = tape
    weakref.finalize(storage, _TAPES.pop, storage.data_ptr(), None)


@torch.library.custom_op("softras::rasterize", mutates_args=())
def _rasterize_op(
    face_vertices: Tensor, surface: Tensor, vertex: Tensor, call: str, needs: list[bool]
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """face_vertices [B, F, 3, 3], surface [B, F, T, Cs], vertex [B, F, 3, Cv] -> the six outputs of
    :func:`output_layout` (``call``: an :func:`encode` string). When ``needs`` names an input that
    requires grad, the backend's autograd graph is kept for the backward op (:data:`_TAPES`)."""
    c = decode(call)
    taped = any(needs)
    if taped:
        tape, result = _record(face_vertices, surface, vertex, c, needs)
    else:
        with torch.no_grad():
            result = _run(face_vertices, surface, vertex, c)
    made = (result,) + (None,) * 5 if c.rgba else tuple(result)
    layout = output_layout(face_vertices, surface, vertex, c)
    outputs = [
        face_vertices.new_empty(shape, dtype=dtype) if t is None else t.detach().contiguous()
        for t, (shape, dtype) in zip(made, layout, strict=True)
    ]
    # outputs must not share storage with the inputs or each other: a backend may return views of
    # one buffer (channels and depth), which .contiguous() leaves as they are for one item (B = 1)
    seen = {t.untyped_storage().data_ptr() for t in (face_vertices, surface, vertex) if t.numel()}
    for i, t in enumerate(outputs):
        if t.numel():
            if t.untyped_storage().data_ptr() in seen:
                outputs[i] = t = t.clone()
            seen.add(t.untyped_storage().data_ptr())
    if taped:  # the anchor gets a storage of its own: the tape's outputs hold theirs alive
        anchor = _anchor(c)
        outputs[anchor] = outputs[anchor].clone()
        _keep(outputs[anchor], tape)
    return tuple(outputs)


@_rasterize_op.register_fake
def _(face_vertices: Tensor, surface: Tensor, vertex: Tensor, call: str, needs: list[bool]) -> tuple[Tensor, ...]:
    layout = output_layout(face_vertices, surface, vertex, decode(call))
    return tuple(face_vertices.new_empty(shape, dtype=dtype) for shape, dtype in layout)


@torch.library.custom_op("softras::rasterize_backward", mutates_args=())
def _rasterize_backward_op(
    face_vertices: Tensor,
    surface: Tensor,
    vertex: Tensor,
    anchor: Tensor,
    grad_channels: Tensor,
    grad_alpha: Tensor,
    grad_depth: Tensor,
    call: str,
    needs: list[bool],
) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of ``softras::rasterize`` w.r.t. face_vertices, surface and vertex (zeros where
    ``needs`` is False), from the upstream gradients of its differentiable outputs (channels or
    RGBA, alpha, depth): the backend's backward, on the forward's graph (found by the forward's
    ``anchor`` output in :data:`_TAPES`) or, when it is gone, on a call run again."""
    c = decode(call)
    tape = _TAPES.pop(anchor.untyped_storage().data_ptr(), None)
    if tape is None or not all(leaf.requires_grad for leaf, n in zip(tape.leaves, needs, strict=True) if n):
        tape = _record(face_vertices, surface, vertex, c, needs)[0]
    wanted = [leaf for leaf, n in zip(tape.leaves, needs, strict=True) if n]
    upstream = (grad_channels, grad_alpha, grad_depth)[: len(tape.outputs)]
    pairs = [(o, g) for o, g in zip(tape.outputs, upstream, strict=True) if o is not None and o.requires_grad]
    got: dict[int, Tensor | None] = {}
    if wanted and pairs:
        outs, grads = zip(*pairs, strict=True)
        with _autograd():  # (the reference backend recomputes its checkpointed chunks in its backward)
            found = torch.autograd.grad(outs, wanted, grads, allow_unused=True)
        got = dict(zip(map(id, wanted), found, strict=True))
    return tuple(
        torch.zeros_like(t) if got.get(id(leaf)) is None else got[id(leaf)].contiguous()
        for t, leaf in zip((face_vertices, surface, vertex), tape.leaves, strict=True)
    )


@_rasterize_backward_op.register_fake
def _(face_vertices: Tensor, surface: Tensor, vertex: Tensor, *_: object) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(face_vertices), torch.empty_like(surface), torch.empty_like(vertex)


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: tuple) -> None:
    face_vertices, surface, vertex, call, _ = inputs
    ctx.save_for_backward(face_vertices, surface, vertex, output[_anchor(decode(call))])
    ctx.call = call
    ctx.mark_non_differentiable(*output[3:])  # the z-buffer outputs, as in eager calls


def _backward(ctx: torch.autograd.function.FunctionCtx, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
    face_vertices, surface, vertex, anchor = ctx.saved_tensors
    needs = list(ctx.needs_input_grad[:3])
    layout = output_layout(face_vertices, surface, vertex, decode(ctx.call))
    upstream = [
        face_vertices.new_zeros(shape, dtype=dtype) if g is None else g
        for g, (shape, dtype) in zip(grads[:3], layout[:3], strict=True)
    ]
    got = torch.ops.softras.rasterize_backward(face_vertices, surface, vertex, anchor, *upstream, ctx.call, needs)
    return (*(g if need else None for g, need in zip(got, needs, strict=True)), None, None)


_rasterize_op.register_autograd(_backward, setup_context=_setup_context)


def rasterize(
    inputs: RasterInputs, settings: RasterSettings, backend: str | None, rgba: bool, out: torch.dtype
) -> RasterResult | Tensor:
    """:func:`softras.raster.dispatch.run` (same arguments, same results) through the op."""
    call = encode(Call(settings, backend, inputs.background, rgba, out))
    tensors = (inputs.face_vertices, inputs.surface, inputs.vertex)
    needs = [torch.is_grad_enabled() and t.requires_grad for t in tensors]
    outputs = torch.ops.softras.rasterize(*tensors, call, needs)
    return outputs[0] if rgba else RasterResult.asked(settings, *outputs)
