"""Assertions shared by the test modules."""

from __future__ import annotations

import torch

__all__ = ["assert_grad_close"]


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
