"""Lambertian lighting terms (the original's ambient + directional model)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .._validation import as_float_tensor

__all__ = ["ambient_lighting", "directional_lighting"]

Color = torch.Tensor | np.ndarray | Sequence[float]


def _per_item(name: str, value: Color, like: torch.Tensor) -> torch.Tensor:
    """[3] or [B, 3] -> [B or 1, 1, 3] broadcastable against ``like`` [B, N, 3]."""
    t = as_float_tensor(name, value, device=like.device, dtype=like.dtype)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] not in (1, like.shape[0]):
        raise ValueError(f"{name}: expected shape [3] or [{like.shape[0]}, 3], got {tuple(t.shape)}")
    return t[:, None, :]


def _intensity(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    t = as_float_tensor("light_intensity", value, device=like.device, dtype=like.dtype)
    return t.reshape(-1, 1, 1) if t.ndim else t


def ambient_lighting(
    light: torch.Tensor, light_intensity: float | torch.Tensor = 0.5, light_color: Color = (1, 1, 1)
) -> torch.Tensor:
    """``light + intensity * color``; light: [B, N, 3] -> [B, N, 3] (a new tensor)."""
    return light + _intensity(light_intensity, light) * _per_item("light_color", light_color, light)


def directional_lighting(
    light: torch.Tensor,
    normals: torch.Tensor,
    light_intensity: float | torch.Tensor = 0.5,
    light_color: Color = (1, 1, 1),
    light_direction: Color = (0, 1, 0),
) -> torch.Tensor:
    """``light + intensity * color * max(0, n · direction)``.

    Args:
        light: [B, N, 3] accumulated light; normals: [B, N, 3] unit normals.
        light_direction: [3] or [B, 3], direction *towards* the light (not normalised, as the
            original).

    Returns:
        [B, N, 3] (a new tensor; differentiable in every tensor argument).
    """
    direction = _per_item("light_direction", light_direction, light)
    cosine = torch.relu((normals * direction).sum(dim=2, keepdim=True))
    return light + _intensity(light_intensity, light) * _per_item("light_color", light_color, light) * cosine
