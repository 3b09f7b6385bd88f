"""Rendered images to files: RGBA frames composited to 8-bit RGB, and animated GIFs.

Used by the apps (``softras render`` and the fitting demos) and by :mod:`softras.recon`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["DEFAULT_GIF_FPS", "Color", "as_images", "composite", "save_gif"]

#: Frames per second of :func:`save_gif` when none is given.
DEFAULT_GIF_FPS = 20.0

Color = Sequence[float]


def composite(frames: torch.Tensor | np.ndarray, background: Color = (1.0, 1.0, 1.0)) -> np.ndarray:
    """RGBA ``[N, 4, S, S]`` (or RGB ``[N, 3, S, S]``) in [0, 1] -> uint8 ``[N, S, S, 3]`` over ``background``.

    A single image ``[C, S, S]`` is accepted too (returns ``[1, S, S, 3]``).
    """
    x = torch.as_tensor(frames).detach().float().cpu()
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] not in (3, 4):
        raise ValueError(f"frames: expected shape [N, 4, S, S] or [N, 3, S, S], got {tuple(x.shape)}")
    bg = torch.tensor([float(c) for c in background], dtype=torch.float32)
    if bg.shape != (3,):
        raise ValueError(f"background: expected 3 numbers (r, g, b), got {background!r}")
    rgb = x[:, :3].clamp(0, 1)
    if x.shape[1] == 4:
        alpha = x[:, 3:4].clamp(0, 1)
        rgb = rgb * alpha + bg[None, :, None, None] * (1 - alpha)
    out = (rgb * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def as_images(frames: torch.Tensor | np.ndarray, background: Color) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` images as given, or float frames through :func:`composite`."""
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames: expected uint8 images [N, H, W, 3], got shape {frames.shape}")
        return frames
    return composite(frames, background)


def save_gif(
    frames: torch.Tensor | np.ndarray,
    path: str | os.PathLike,
    fps: float = DEFAULT_GIF_FPS,
    background: Color = (1.0, 1.0, 1.0),
) -> Path:
    """Write frames as an animated GIF that loops forever.

    Args:
        frames: RGBA ``[N, 4, S, S]`` or RGB ``[N, 3, S, S]`` floats in [0, 1] (alpha is composited
            over ``background``), or uint8 ``[N, S, S, 3]`` images as made by :func:`composite`.
        path: output file (``.gif``).
        fps: frames per second (GIF timing has 10 ms resolution).
        background: RGB in [0, 1] behind transparent pixels.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import imageio.v3 as iio

    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    images = as_images(frames, background)
    path = Path(path)
    # Pillow merges identical consecutive frames; duration is per frame in milliseconds.
    iio.imwrite(path, images, extension=".gif", duration=1000.0 / fps, loop=0)
    return path
