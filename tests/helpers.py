"""Assertions and runs shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["assert_grad_close", "image_and_grads"]


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
