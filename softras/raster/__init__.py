"""Soft rasterization: settings, input validation and backend dispatch.

Backends are plain functions ``(face_vertices, textures, settings) -> images`` that are
differentiable (by autograd or by their own ``torch.autograd.Function``). Choose one with
``backend=...``; ``None`` picks the default for the tensors' device.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

import torch

from .._memory import check_raster_request
from .._validation import check_finite, check_shape
from .reference import rasterize_reference
from .settings import (
    ALPHA_AGGREGATIONS,
    DIST_FUNCS,
    RGB_AGGREGATIONS,
    TEXTURE_TYPES,
    RasterSettings,
)

__all__ = [
    "ALPHA_AGGREGATIONS",
    "BACKENDS",
    "DIST_FUNCS",
    "RGB_AGGREGATIONS",
    "TEXTURE_TYPES",
    "RasterSettings",
    "available_backends",
    "default_backend",
    "rasterize",
    "register_backend",
    "soft_rasterize",
]

Backend = Callable[[torch.Tensor, torch.Tensor, RasterSettings], torch.Tensor]
BACKENDS: dict[str, Backend] = {"reference": rasterize_reference}


def _rasterize_cpu(face_vertices: torch.Tensor, textures: torch.Tensor, settings: RasterSettings) -> torch.Tensor:
    from .cpu import rasterize_cpu  # imported (and its cache folder chosen) on first use only

    return rasterize_cpu(face_vertices, textures, settings)


# The fused CPU kernels need Numba (a dependency); without it CPU tensors use 'reference'.
if importlib.util.find_spec("numba") is not None:
    BACKENDS["cpu"] = _rasterize_cpu
# The GPU backend needs NVIDIA Warp (the optional extra softras[gpu]); it is imported on first
# use only, so that importing softras never needs it.
_WARP_NAMES = ("warp", "cuda")
_WARP_MISSING = "backend {name!r} needs NVIDIA Warp (warp-lang), which is not installed: pip install 'softras[gpu]'"


def _rasterize_warp(face_vertices: torch.Tensor, textures: torch.Tensor, settings: RasterSettings) -> torch.Tensor:
    from .warp_backend import rasterize_warp

    return rasterize_warp(face_vertices, textures, settings)


if importlib.util.find_spec("warp") is not None:
    for _name in _WARP_NAMES:
        BACKENDS[_name] = _rasterize_warp
# Preferred backend per device type, in order; the first one registered wins.
_PREFERRED: dict[str, tuple[str, ...]] = {"cpu": ("cpu", "reference"), "cuda": ("cuda", "reference")}


def register_backend(name: str, fn: Backend) -> None:
    """Make ``fn`` selectable as ``backend=name``."""
    BACKENDS[name] = fn


def available_backends() -> list[str]:
    """Names accepted by ``backend=``."""
    return sorted(BACKENDS)


def default_backend(device: torch.device) -> str:
    """The backend used when ``backend=None`` for tensors on ``device``."""
    for name in _PREFERRED.get(device.type, ("reference",)):
        if name in BACKENDS:
            return name
    return "reference"


def _check_inputs(
    face_vertices: torch.Tensor, textures: torch.Tensor, texture_type: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(face_vertices, torch.Tensor):
        raise TypeError(f"face_vertices: expected a torch.Tensor, got {type(face_vertices).__name__}")
    if not isinstance(textures, torch.Tensor):
        raise TypeError(f"textures: expected a torch.Tensor, got {type(textures).__name__}")
    if face_vertices.device.type == "meta":  # (meta textures with real face_vertices: the device check below)
        raise ValueError("face_vertices: meta tensors hold no data to render; move them to a real device")
    if face_vertices.ndim == 3 and face_vertices.shape[-1] == 9:
        face_vertices = face_vertices.reshape(*face_vertices.shape[:2], 3, 3)
    check_shape("face_vertices", face_vertices, ("B", "F", 3, 3))
    if not face_vertices.is_floating_point():
        raise TypeError(f"face_vertices: expected a floating dtype, got {face_vertices.dtype}")
    b, f = face_vertices.shape[:2]
    if b == 0 or f == 0:
        raise ValueError(
            f"face_vertices: expected at least one item and one face, got shape {tuple(face_vertices.shape)}"
        )
    check_finite("face_vertices", face_vertices)
    if textures.device != face_vertices.device:
        raise ValueError(f"textures: expected device {face_vertices.device} (as face_vertices), got {textures.device}")
    if texture_type == "vertex":
        check_shape("textures (texture_type='vertex')", textures, (b, f, 3, 3))
    else:
        check_shape("textures (texture_type='surface')", textures, (b, f, None, 3))
        t = textures.shape[2]
        if t < 1 or round(t**0.5) ** 2 != t:
            raise ValueError(f"textures: expected R*R texels per face (a perfect square), got {t}")
    if not textures.is_floating_point():
        raise TypeError(f"textures: expected a floating dtype, got {textures.dtype}")
    check_finite("textures", textures)
    return face_vertices, textures.to(face_vertices.dtype)


def rasterize(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    settings: RasterSettings,
    backend: str | None = None,
) -> torch.Tensor:
    """Rasterize with validated ``settings`` (see :func:`soft_rasterize` for shapes)."""
    face_vertices, textures = _check_inputs(face_vertices, textures, settings.texture_type)
    name = default_backend(face_vertices.device) if backend is None else backend
    if name not in BACKENDS and name in _WARP_NAMES:
        raise ImportError(_WARP_MISSING.format(name=name))
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {available_backends()}, got {backend!r}")
    check_raster_request(face_vertices, textures, settings.image_height, settings.image_width,
                         settings.cull_radius, name)  # fmt: skip
    return BACKENDS[name](face_vertices, textures, settings)


def soft_rasterize(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    image_size: int | Sequence[int] = 256,
    background_color: Sequence[float] = (0, 0, 0),
    near: float = 1,
    far: float = 100,
    fill_back: bool = True,
    eps: float = 1e-3,
    sigma_val: float = 1e-5,
    dist_func: str = "euclidean",
    dist_eps: float = 1e-4,
    gamma_val: float = 1e-4,
    aggr_func_rgb: str = "softmax",
    aggr_func_alpha: str = "prod",
    texture_type: str = "surface",
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """Render screen-space triangles into soft RGBA images (the original's signature).

    Args:
        face_vertices: [B, F, 3, 3] (or [B, F, 9]) triangles in screen space: x, y in NDC
            ([-1, 1], y up), z the camera depth (> 0 in front of the camera).
        textures: [B, F, R*R, 3] surface texels (``texture_type='surface'``) or
            [B, F, 3, 3] per-corner colours (``texture_type='vertex'``).
        image_size: S (square) or (H, W).
        background_color, near, far, fill_back, eps, sigma_val, dist_func, dist_eps,
        gamma_val, aggr_func_rgb, aggr_func_alpha, texture_type: see :class:`RasterSettings`.
        backend: ``'reference'`` (pure PyTorch, any device), ``'cpu'`` (fused kernels, when
            installed), ``'warp'`` / ``'cuda'`` (Warp kernels on CPU or CUDA tensors, with the
            ``softras[gpu]`` extra) or ``None`` for the device's default (``'cuda'`` for CUDA
            tensors when Warp is installed, else ``'reference'``).

    Returns:
        [B, 4, H, W] images: RGB and alpha (coverage).
    """
    settings = RasterSettings.create(
        image_size,
        background_color=background_color,
        near=near,
        far=far,
        fill_back=fill_back,
        eps=eps,
        sigma_val=sigma_val,
        dist_func=dist_func,
        dist_eps=dist_eps,
        gamma_val=gamma_val,
        aggr_func_rgb=aggr_func_rgb,
        aggr_func_alpha=aggr_func_alpha,
        texture_type=texture_type,
    )
    return rasterize(face_vertices, textures, settings, backend=backend)
