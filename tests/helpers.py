"""Assertions and runs shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

from softras.raster import BACKENDS, available_backends

__all__ = ["CPU_BACKENDS", "Target", "assert_grad_close", "image_and_grads", "kernel_targets"]

CPU_BACKENDS = sorted(n for n in available_backends() if n in BACKENDS and BACKENDS[n].runs_on(torch.device("cpu")))
"""The available backends that run on the CPU (the reference included), sorted."""


class Target(NamedTuple):
    """A backend under test and the device it runs on."""

    name: str
    device: str


def kernel_targets(feature: str | None = None) -> list[pytest.param]:
    """Every available backend but the reference (and, given ``feature``, whose descriptor sets
    that flag, e.g. ``'perspective_correct'``), on each device it runs on that is present: one
    pytest param of a :class:`Target` each, with id ``name`` or ``name@cuda``."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    params = []
    for backend in BACKENDS.values():
        if backend.name == "reference" or not backend.available():
            continue
        if feature is not None and not getattr(backend, feature):
            continue
        for dev in devices:
            if backend.runs_on(torch.device(dev)):
                name = backend.name if dev == "cpu" else f"{backend.name}@{dev}"
                params.append(pytest.param(Target(backend.name, dev), id=name))
    return params


def assert_grad_close(
    got: torch.Tensor, want: torch.Tensor, rel: float, *, floor: float = 1e-12, msg: str | None = None
) -> None:
    """``got`` equals ``want`` within ``rel`` relative to ``want``'s largest entry (a gradient's
    entries that are ~0 differ by rounding only), and within ``rel`` of each entry.

    The scale is ``max(|want|.max(), floor)``; ``floor=1.0`` makes tiny gradients absolute.
    Compared in float64 on the CPU, whatever the tensors' dtype and device.
    """
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    scale = max(float(want.abs().max()) if want.numel() else 0.0, floor)
    torch.testing.assert_close(got, want, rtol=rel, atol=rel * scale, msg=msg)


def image_and_grads(
    render: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``render(face_vertices, textures)`` on ``device``, and the gradients w.r.t. both of the same
    fixed random upstream gradient whatever the dtype (drawn in float64); all detached, on the CPU."""
    a, t = (x.detach().to(device).requires_grad_(True) for x in (face_vertices, textures))
    image = render(a, t)
    weights = torch.randn(image.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (image * weights.to(device=image.device, dtype=image.dtype)).sum().backward()
    return image.detach().cpu(), a.grad.cpu(), t.grad.cpu()
