"""Backends whose backward is a compiled kernel give first derivatives only, and say so.

The ``cpu`` and ``warp`` backends compute their backward with Numba / Warp kernels, which
autograd cannot differentiate again. A double backward (``torch.autograd.grad(...,
create_graph=True)`` and then differentiating that gradient, as a Hessian-vector product or a
gradient penalty does) through them would silently miss the rasterizer's second-derivative
terms. Their backward passes its results through :func:`first_order_only`, which, when autograd
records the backward (``create_graph=True``), links each gradient to the inputs and upstream
gradients of the call through a node that raises :class:`SecondDerivativeError` when it is
differentiated. A first backward, with or without ``create_graph``, is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["SecondDerivativeError", "first_order_only", "second_derivative_message"]


class SecondDerivativeError(RuntimeError):
    """A second derivative (double backward) through a backend that computes first derivatives only."""


def second_derivative_message(backend: str) -> str:
    """The message of :class:`SecondDerivativeError` for ``backend``."""
    return (
        f"the {backend!r} raster backend does not support second derivatives (double backward): its "
        "backward is a compiled kernel that autograd cannot differentiate, so the result would be wrong. "
        "Use backend='reference' (pure PyTorch), which computes second derivatives exactly; first "
        f"derivatives from the {backend!r} backend are exact"
    )


class _SecondDerivativeGuard(torch.autograd.Function):
    """Returns the gradients unchanged; differentiating them raises :class:`SecondDerivativeError`."""

    @staticmethod
    def forward(ctx, backend: str, count: int, *tensors: torch.Tensor):  # type: ignore[override]
        ctx.backend = backend
        return tuple(t.clone() for t in tensors[:count])

    @staticmethod
    def backward(ctx, *_):  # type: ignore[override]
        raise SecondDerivativeError(second_derivative_message(ctx.backend))


def first_order_only(
    backend: str, grads: Sequence[torch.Tensor | None], links: Sequence[torch.Tensor | None]
) -> tuple[torch.Tensor | None, ...]:
    """``grads`` (the results of a kernel backward), guarded against a second derivative.

    Outside a recorded backward (``create_graph=False``, the usual case) they are returned as they
    are. Inside one, they come back attached to ``links`` (the differentiable inputs of the forward
    and the upstream gradients): any later derivative that reaches them, with respect to anything
    the forward or the loss depends on, raises :class:`SecondDerivativeError` naming ``backend``.
    """
    grads = tuple(grads)
    if not torch.is_grad_enabled():
        return grads
    present = [i for i, g in enumerate(grads) if g is not None]
    anchors = [t for t in links if isinstance(t, torch.Tensor) and t.requires_grad]
    if not present or not anchors:
        return grads
    guarded = _SecondDerivativeGuard.apply(backend, len(present), *(grads[i] for i in present), *anchors)
    out = list(grads)
    for i, g in zip(present, guarded, strict=True):
        out[i] = g
    return tuple(out)
