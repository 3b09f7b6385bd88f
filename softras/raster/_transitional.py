"""Temporary bridge: runs a backend written for the RGBA-only signature under the contract.

Deleted once every backend implements :mod:`softras.raster.contract` natively.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from .contract import RasterInputs, RasterResult
from .settings import RasterSettings

RgbaFn = Callable[[torch.Tensor, torch.Tensor, RasterSettings], torch.Tensor]


def run_rgba_backend(fn: RgbaFn, name: str, inputs: RasterInputs, settings: RasterSettings) -> RasterResult:
    """Run ``fn(face_vertices, textures, settings) -> [B, 4, H, W]`` for 3-channel colour only."""
    cs, cv = inputs.surface.shape[3], inputs.vertex.shape[3]
    if settings.with_depth or settings.with_zbuffer or (cs, cv) not in ((3, 0), (0, 3)):
        raise NotImplementedError(f"backend {name!r}: only 3 colour channels without depth or z-buffer outputs yet")
    surface = cs == 3
    s = dataclasses.replace(
        settings, texture_type="surface" if surface else "vertex", background_color=tuple(inputs.background)
    )
    images = fn(inputs.face_vertices, inputs.surface if surface else inputs.vertex, s)
    return RasterResult(channels=images[:, :3], alpha=images[:, 3:])
