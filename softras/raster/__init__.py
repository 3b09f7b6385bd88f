"""Soft rasterization: settings, input validation and backend dispatch.

:func:`rasterize_channels` is the core: screen-space faces with attributes of any width in,
:class:`~softras.raster.contract.RasterResult` out. Every backend implements it through the
contract of :mod:`softras.raster.contract` and is described in :mod:`softras.raster.backends`.
:func:`rasterize` and :func:`soft_rasterize` are the original's RGBA entry points on top of it.
Choose a backend with ``backend=...``; ``None`` picks the default for the tensors' device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from .._precision import result_dtype
from .._validation import check_finite, check_shape
from . import op, per_item
from .backends import BACKENDS, Backend, available_backends, default_backend, register_backend
from .contract import RasterInputs, RasterResult
from .dispatch import run
from .settings import (
    ALPHA_AGGREGATIONS,
    DIST_FUNCS,
    RGB_AGGREGATIONS,
    TEXTURE_TYPES,
    RasterSettings,
)
from .uv import UVMaps, uv_maps

__all__ = [
    "ALPHA_AGGREGATIONS",
    "BACKENDS",
    "DIST_FUNCS",
    "RGB_AGGREGATIONS",
    "TEXTURE_TYPES",
    "Backend",
    "RasterInputs",
    "RasterResult",
    "RasterSettings",
    "UVMaps",
    "available_backends",
    "default_backend",
    "rasterize",
    "rasterize_channels",
    "register_backend",
    "soft_rasterize",
    "uv_maps",
]


def _check_face_vertices(face_vertices: object) -> torch.Tensor:
    if not isinstance(face_vertices, torch.Tensor):
        raise TypeError(f"face_vertices: expected a torch.Tensor, got {type(face_vertices).__name__}")
    if face_vertices.device.type == "meta":  # (meta attributes with real face_vertices: the device check)
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
    return face_vertices


def _check_attributes(name: str, value: object, face_vertices: torch.Tensor, corners: int | None) -> torch.Tensor:
    """[B, F, T, C] attributes (``corners``: required T, None: any perfect square) or None -> C = 0."""
    b, f = face_vertices.shape[:2]
    if value is None:
        return face_vertices.new_zeros(b, f, corners or 1, 0)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor or None, got {type(value).__name__}")
    if value.device != face_vertices.device:
        raise ValueError(f"{name}: expected device {face_vertices.device} (as face_vertices), got {value.device}")
    check_shape(name, value, (b, f, corners, None))
    if corners is None:
        t = value.shape[2]
        if t < 1 or round(t**0.5) ** 2 != t:
            raise ValueError(f"{name}: expected R*R texels per face (a perfect square), got {t}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating dtype, got {value.dtype}")
    check_finite(name, value)
    return value


def _check_settings(settings: object, face_vertices: torch.Tensor) -> RasterSettings:
    if not isinstance(settings, RasterSettings):
        raise TypeError(
            "settings: expected a softras.raster.RasterSettings (e.g. RasterSettings.create(image_size)), "
            f"got {type(settings).__name__}"
        )
    per_item.check_batch(settings, face_vertices.shape[0])  # per-item σ / γ: one value per item
    return settings


def _check_backend(backend: object) -> str | None:
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend: expected a backend name (str) or None, got {type(backend).__name__}")
    return backend


def _check_background(background: Sequence[float] | None, channels: int) -> tuple[float, ...]:
    if background is None:
        return (0.0,) * channels
    if isinstance(background, torch.Tensor):
        background = background.detach().cpu().reshape(-1).tolist()
    numbers = TypeError(f"background: expected {channels} numbers (one per channel), got {background!r}")
    if isinstance(background, (str, bytes)) or not isinstance(background, Iterable):
        raise numbers
    try:
        values = tuple(float(v) for v in background)
    except (TypeError, ValueError):
        raise numbers from None
    if len(values) != channels or not all(math.isfinite(v) for v in values):
        raise ValueError(f"background: expected {channels} finite numbers (one per channel), got {background!r}")
    return values


def _run(
    inputs: RasterInputs, settings: RasterSettings, backend: str | None, rgba: bool = False
) -> RasterResult | torch.Tensor:
    """Run a backend (:func:`softras.raster.dispatch.run`; with ``rgba``, its RGBA form). Eager
    calls run it directly; while ``torch.compile`` or ``torch.export`` traces, it is the custom op
    of :mod:`softras.raster.op`, one node of the graph that Dynamo does not trace into. Per-item
    σ / γ: one run per group of items sharing them (:func:`softras.raster.per_item.split_run`)."""
    backend = _check_backend(backend)
    if settings.per_item:
        return per_item.split_run(inputs, settings, lambda part, scalar: _run(part, scalar, backend, rgba))
    face_vertices = inputs.face_vertices
    out = result_dtype(face_vertices.dtype, face_vertices.device)
    if torch.compiler.is_compiling() and inputs.uv is None:  # (UV textures: traced into, not one op yet)
        return op.rasterize(inputs, settings, backend, rgba, out)
    return run(inputs, settings, backend, rgba, out)


def rasterize_channels(
    face_vertices: torch.Tensor,
    settings: RasterSettings,
    *,
    surface: torch.Tensor | None = None,
    vertex: torch.Tensor | None = None,
    background: Sequence[float] | None = None,
    backend: str | None = None,
    uv: UVMaps | None = None,
    face_counts: torch.Tensor | Sequence[int] | None = None,
) -> RasterResult:
    """Rasterize screen-space faces with attributes of any width (the core entry point).

    Args:
        face_vertices: [B, F, 3, 3] (or [B, F, 9]) triangles: x, y in NDC (y up), z the camera depth.
        settings: validated :class:`RasterSettings` (``with_depth`` / ``with_zbuffer`` ask for
            the extra outputs). Its ``sigma_val`` and ``gamma_val`` may hold one value per item
            (B values): each item is then rendered with its own σ and γ and equals rendering it
            alone with them, every output and gradient; the items are rasterized in groups sharing
            (σ, γ) (:mod:`softras.raster.per_item`), all equal is one call.
        surface: [B, F, R*R, Cs] texels per face, or None (Cs = 0).
        vertex: [B, F, 3, Cv] per-corner attributes, or None (Cv = 0).
        background: Cs + Cv + Cu values where no face colours a pixel (default zeros), or a
            per-item [B, Cs + Cv + Cu] tensor (differentiable; rendered with one extra channel whose
            aggregate is 1 minus the background's weight, so each item equals rendering it alone
            with its own background).
        backend: a name from :func:`available_backends`, or None for the device's default.
        uv: a UV texture (:func:`softras.raster.uv.uv_maps`, Cu channels) sampled per pair, or None.
        face_counts: [B] the faces of each item, for a batch of meshes with different face
            counts padded to F: item b's faces F_b and beyond are not rendered (they become
            zero-area triangles, which no backend bins or visits, see
            :data:`~softras.raster.contract.DET_EPS`) and get no gradient, and ``aggr_func_alpha='sum'``
            divides by F_b. So each item equals rendering its own faces alone. None: all F.

    Returns:
        :class:`RasterResult`: ``channels`` [B, Cs + Cv + Cu, H, W] (surface channels first,
        then vertex, then UV texture channels), ``alpha`` [B, 1, H, W], and the outputs the
        settings ask for.
    """
    face_vertices = _check_face_vertices(face_vertices)
    settings = _check_settings(settings, face_vertices)
    surface = _check_attributes("surface", surface, face_vertices, None)
    vertex = _check_attributes("vertex", vertex, face_vertices, 3)
    uv = _check_uv(uv, face_vertices)
    num_uv = 0 if uv is None else uv.channels
    item_background = None
    if isinstance(background, torch.Tensor) and background.ndim == 2:
        item_background = _check_item_background(background, face_vertices, surface.shape[3] + vertex.shape[3] + num_uv)
        # one more vertex channel, 1 on every face: it aggregates to 1 − (the background's share)
        vertex = torch.cat([vertex, vertex.new_ones(*vertex.shape[:3], 1)], 3)
        background = None
    background = _check_background(background, surface.shape[3] + vertex.shape[3] + num_uv)
    counts = None
    if face_counts is not None:
        counts = _check_face_counts(face_counts, face_vertices)
        padded = torch.arange(face_vertices.shape[1], device=counts.device)[None] >= counts[:, None]
        face_vertices = face_vertices.masked_fill(padded[..., None, None], 0.0)
    result = _run(RasterInputs(face_vertices, surface, vertex, background, uv), settings, backend)
    if counts is not None and settings.aggr_func_alpha == "sum":
        # the kernels divided Σ D by F: item b's mean is over its F_b faces (0 for an empty item)
        per_item = face_vertices.shape[1] / counts.clamp(min=1).to(result.alpha.dtype)
        result = result._replace(alpha=result.alpha * per_item[:, None, None, None])
    if item_background is not None:
        k = surface.shape[3] + vertex.shape[3] - 1  # the ones channel
        ch = result.channels
        share = 1 - ch[:, k : k + 1]  # the background's weight at each pixel (1 where no face colours it)
        rest = torch.cat([ch[:, :k], ch[:, k + 1 :]], 1)
        result = result._replace(channels=rest + share * item_background.to(ch.dtype)[:, :, None, None])
    return result


def _check_item_background(background: torch.Tensor, face_vertices: torch.Tensor, channels: int) -> torch.Tensor:
    """A per-item background [B, C] (differentiable), checked."""
    b = face_vertices.shape[0]
    if background.shape != (b, channels):
        raise ValueError(
            f"background: expected {channels} values or a per-item tensor [{b}, {channels}], got shape "
            f"{tuple(background.shape)}"
        )
    if not background.is_floating_point() or background.device != face_vertices.device:
        raise TypeError(
            f"background: a per-item background must be a floating tensor on {face_vertices.device}, got "
            f"{background.dtype} on {background.device}"
        )
    check_finite("background", background)
    return background


def _check_face_counts(face_counts: object, face_vertices: torch.Tensor) -> torch.Tensor:
    """[B] int64 on the faces' device, each in [0, F]."""
    b, f = face_vertices.shape[:2]
    counts = torch.as_tensor(face_counts, device=face_vertices.device)
    if counts.is_floating_point() or counts.is_complex() or counts.dtype == torch.bool:
        raise TypeError(f"face_counts: expected integers (one per item), got {counts.dtype}")
    if counts.shape != (b,):
        raise ValueError(f"face_counts: expected shape [{b}] (one count per item), got {tuple(counts.shape)}")
    if bool(((counts < 0) | (counts > f)).any()):
        raise ValueError(f"face_counts: expected counts in [0, {f}] (F, the padded face count), got {counts.tolist()}")
    return counts.long()


def _check_uv(uv: object, face_vertices: torch.Tensor) -> UVMaps | None:
    """A :class:`UVMaps` matching ``face_vertices`` ([1, F] maps expanded to B items), or None."""
    if uv is None:
        return None
    if not isinstance(uv, UVMaps):
        raise TypeError(f"uv: expected softras.raster.uv.UVMaps (from uv_maps(...)) or None, got {type(uv).__name__}")
    b, f = face_vertices.shape[:2]
    if uv.uv.shape[1] != f or uv.uv.shape[0] not in (1, b):
        raise ValueError(f"uv: its uv has shape {tuple(uv.uv.shape)}; expected [{b}, {f}, 3, 2] for these faces")
    if uv.uv.device != face_vertices.device:
        raise ValueError(f"uv: expected device {face_vertices.device} (as face_vertices), got {uv.uv.device}")
    check_finite("uv.uv", uv.uv)
    check_finite("uv.atlas (the texture images)", uv.atlas)
    return uv.with_batch(b)


def rasterize(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    settings: RasterSettings,
    backend: str | None = None,
) -> torch.Tensor:
    """Rasterize colours into [B, 4, H, W] RGBA with validated ``settings`` (see :func:`soft_rasterize`)."""
    face_vertices = _check_face_vertices(face_vertices)
    settings = _check_settings(settings, face_vertices)
    if not isinstance(textures, torch.Tensor):
        raise TypeError(f"textures: expected a torch.Tensor, got {type(textures).__name__}")
    vertex_colours = settings.texture_type == "vertex"
    b, f = face_vertices.shape[:2]
    corners = 3 if vertex_colours else None
    check_shape(f"textures (texture_type={settings.texture_type!r})", textures, (b, f, corners, 3))
    textures = _check_attributes("textures", textures, face_vertices, corners)
    return _run(RasterInputs.from_textures(face_vertices, textures, settings), settings, backend, rgba=True)


def soft_rasterize(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    image_size: int | Sequence[int] = 256,
    background_color: Sequence[float] = (0, 0, 0),
    near: float = 1,
    far: float = 100,
    fill_back: bool = True,
    eps: float = 1e-3,
    sigma_val: float | Sequence[float] | torch.Tensor = 1e-5,
    dist_func: str = "euclidean",
    dist_eps: float = 1e-4,
    gamma_val: float | Sequence[float] | torch.Tensor = 1e-4,
    aggr_func_rgb: str = "softmax",
    aggr_func_alpha: str = "prod",
    texture_type: str = "surface",
    *,
    backend: str | None = None,
    distribution: str = "logistic",
    squared_distance: bool = True,
    dist_shape: float | None = None,
    dist_shift: float | None = None,
    t_conorm_p: float | None = None,
) -> torch.Tensor:
    """Render screen-space triangles into soft RGBA images (the original's signature).

    Args:
        face_vertices: [B, F, 3, 3] (or [B, F, 9]) triangles in screen space: x, y in NDC
            ([-1, 1], y up), z the camera depth (> 0 in front of the camera).
        textures: [B, F, R*R, 3] surface texels (``texture_type='surface'``) or
            [B, F, 3, 3] per-corner colours (``texture_type='vertex'``).
        image_size: S (square) or (H, W).
        background_color: see :class:`RasterSettings`.
        near: see :class:`RasterSettings`.
        far: see :class:`RasterSettings`.
        fill_back: see :class:`RasterSettings`.
        eps: see :class:`RasterSettings`.
        sigma_val: see :class:`RasterSettings` (a number, or B values: one per item).
        dist_func: see :class:`RasterSettings`.
        dist_eps: see :class:`RasterSettings`.
        gamma_val: see :class:`RasterSettings` (a number, or B values: one per item).
        aggr_func_rgb: see :class:`RasterSettings`.
        aggr_func_alpha: see :class:`RasterSettings`.
        texture_type: see :class:`RasterSettings`.
        backend: ``'reference'`` (pure PyTorch, any device), ``'cpu'`` (fused kernels, when
            installed), ``'warp'`` / ``'cuda'`` (Warp kernels on CPU or CUDA tensors, with the
            ``softras[gpu]`` extra) or ``None`` for the device's default (``'cuda'`` for CUDA
            tensors when Warp is installed, else ``'reference'``).
        distribution: see :class:`RasterSettings` (GenDR's coverage families).
        squared_distance: see :class:`RasterSettings`.
        dist_shape: see :class:`RasterSettings`.
        dist_shift: see :class:`RasterSettings`.
        t_conorm_p: see :class:`RasterSettings`.

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
        distribution=distribution,
        squared_distance=squared_distance,
        dist_shape=dist_shape,
        dist_shift=dist_shift,
        t_conorm_p=t_conorm_p,
    )
    return rasterize(face_vertices, textures, settings, backend=backend)
