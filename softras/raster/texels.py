"""The texel lookup rule of surface textures (R×R texels per triangle)."""

from __future__ import annotations

import torch

__all__ = ["TEXEL_EDGE_TOLERANCE", "texel_index"]

# Points on the edge v0-v1 (w2 = 0, e.g. every clamped pixel outside that edge) sit exactly on
# the lower/upper split (w0 + w1)·R − wx − wy = 1; the original's `<= 1` then flipped with
# rounding between the right texel and a mirrored one. A small tolerance keeps them on the
# lower texel, which is the one that touches the edge.
TEXEL_EDGE_TOLERANCE = 1e-4


def texel_index(w0: torch.Tensor, w1: torch.Tensor, texture_res: int) -> torch.Tensor:
    """Index of the texel containing the point with barycentrics ``(w0, w1, 1 - w0 - w1)``.

    Texel ``i`` covers the cell ``(wx, wy) = (i % R, i // R)``: lower cells (wx + wy < R) at
    ``wy·R + wx``; upper cells, mirrored, at ``(R−1−wy)·R + (R−1−wx)``.

    Args:
        w0, w1: tensors of equal shape with barycentrics in ``[0, 1]``.
        texture_res: R.

    Returns:
        int64 tensor of the same shape, indices in ``[0, R*R)``.
    """
    r = int(texture_res)
    wx = torch.floor(w0 * r).clamp(0, r - 1)
    wy = torch.floor(w1 * r).clamp(0, r - 1)
    lower = (w0 + w1) * r - wx - wy <= 1 + TEXEL_EDGE_TOLERANCE
    return torch.where(lower, wy * r + wx, (r - 1 - wy) * r + (r - 1 - wx)).long()
