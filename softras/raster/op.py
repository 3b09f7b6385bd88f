"""The rasterizer as one PyTorch custom op, ``softras::rasterize``, for ``torch.compile`` and ``torch.export``.

Dynamo cannot trace the backends (Numba and Warp kernels, the reference backend's data-dependent
chunking), so a traced rasterizer call is one opaque node of the graph:

* its real implementation is :func:`softras.raster.dispatch.run`, the eager call itself;
* its fake implementation gives every output's shape and dtype (:func:`output_layout`);
* its gradient is the backend's own backward: ``softras::rasterize_backward`` runs the backend
  again with autograd on and differentiates that call (so a traced backward costs one more
  rasterizer forward than an eager one, whose backend keeps its forward state).

Custom ops take tensors and plain scalars only: the options of one call travel as one string,
the Python literal of a :class:`Call` (:func:`encode`; :func:`decode` reads it back, cached).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
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


@torch.library.custom_op("softras::rasterize", mutates_args=())
def _rasterize_op(
    face_vertices: Tensor, surface: Tensor, vertex: Tensor, call: str
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """face_vertices [B, F, 3, 3], surface [B, F, T, Cs], vertex [B, F, 3, Cv] -> the six outputs of
    :func:`output_layout` (``call``: an :func:`encode` string)."""
    c = decode(call)
    with torch.no_grad():  # the gradient is the backward op's: keep no autograd state here
        result = _run(face_vertices, surface, vertex, c)
    made = (result,) + (None,) * 5 if c.rgba else tuple(result)
    layout = output_layout(face_vertices, surface, vertex, c)
    return tuple(
        face_vertices.new_empty(shape, dtype=dtype) if t is None else t.contiguous()
        for t, (shape, dtype) in zip(made, layout, strict=True)
    )


@_rasterize_op.register_fake
def _(face_vertices: Tensor, surface: Tensor, vertex: Tensor, call: str) -> tuple[Tensor, ...]:
    layout = output_layout(face_vertices, surface, vertex, decode(call))
    return tuple(face_vertices.new_empty(shape, dtype=dtype) for shape, dtype in layout)


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


@torch.library.custom_op("softras::rasterize_backward", mutates_args=())
def _rasterize_backward_op(
    face_vertices: Tensor,
    surface: Tensor,
    vertex: Tensor,
    grad_channels: Tensor,
    grad_alpha: Tensor,
    grad_depth: Tensor,
    call: str,
    needs: list[bool],
) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of ``softras::rasterize`` w.r.t. face_vertices, surface and vertex (zeros where
    ``needs`` is False), from the upstream gradients of its differentiable outputs (channels or
    RGBA, alpha, depth): the backend runs again with autograd on and its backward runs on that."""
    c = decode(call)
    leaves = [t.detach().requires_grad_(need) for t, need in zip((face_vertices, surface, vertex), needs, strict=True)]
    wanted = [leaf for leaf in leaves if leaf.requires_grad]
    got: dict[int, Tensor | None] = {}
    if wanted:
        with _autograd():  # (the backward too: the reference backend recomputes checkpointed chunks there)
            result = _run(*leaves, c)
            outputs = (result,) if c.rgba else (result.channels, result.alpha, result.depth)
            upstream = (grad_channels, grad_alpha, grad_depth)[: len(outputs)]
            pairs = [(o, g) for o, g in zip(outputs, upstream, strict=True) if o is not None and o.requires_grad]
            if pairs:
                outs, grads = zip(*pairs, strict=True)
                found = torch.autograd.grad(outs, wanted, grads, allow_unused=True)
                got = dict(zip(map(id, wanted), found, strict=True))
    return tuple(torch.zeros_like(leaf) if got.get(id(leaf)) is None else got[id(leaf)].contiguous() for leaf in leaves)


@_rasterize_backward_op.register_fake
def _(face_vertices: Tensor, surface: Tensor, vertex: Tensor, *_: object) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(face_vertices), torch.empty_like(surface), torch.empty_like(vertex)


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: tuple) -> None:
    face_vertices, surface, vertex, call = inputs
    ctx.save_for_backward(face_vertices, surface, vertex)
    ctx.call = call
    ctx.mark_non_differentiable(*output[3:])  # the z-buffer outputs, as in eager calls


def _backward(ctx: torch.autograd.function.FunctionCtx, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
    face_vertices, surface, vertex = ctx.saved_tensors
    needs = list(ctx.needs_input_grad[:3])
    layout = output_layout(face_vertices, surface, vertex, decode(ctx.call))
    upstream = [
        face_vertices.new_zeros(shape, dtype=dtype) if g is None else g
        for g, (shape, dtype) in zip(grads[:3], layout[:3], strict=True)
    ]
    got = torch.ops.softras.rasterize_backward(face_vertices, surface, vertex, *upstream, ctx.call, needs)
    return (*(g if need else None for g, need in zip(got, needs, strict=True)), None)


_rasterize_op.register_autograd(_backward, setup_context=_setup_context)


def rasterize(
    inputs: RasterInputs, settings: RasterSettings, backend: str | None, rgba: bool, out: torch.dtype
) -> RasterResult | Tensor:
    """:func:`softras.raster.dispatch.run` (same arguments, same results) through the op."""
    call = encode(Call(settings, backend, inputs.background, rgba, out))
    outputs = torch.ops.softras.rasterize(inputs.face_vertices, inputs.surface, inputs.vertex, call)
    return outputs[0] if rgba else RasterResult.asked(settings, *outputs)
