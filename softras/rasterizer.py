"""Rasterizer modules over :func:`softras.functional.soft_rasterize`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from . import functional as srf
from ._state import SettingsState
from .cameras import image_hw
from .mesh import Mesh
from .raster import RasterSettings, rasterize, rasterize_channels
from .raster.settings import FAMILY_OPTIONS

__all__ = ["Rasterizer", "SoftRasterizer"]

_MODES = (None, "rgb", "silhouettes")


class SoftRasterizer(SettingsState, nn.Module):
    """Soft rasterization of a (screen-space) mesh into [B, 4, S, S] RGBA images.

    Arguments and defaults are the original's (see :class:`softras.raster.RasterSettings`), plus
    GenDR's coverage families (``distribution``, ``squared_distance``, ``dist_shape``,
    ``dist_shift``, the T-conorms of ``aggr_func_alpha`` and ``t_conorm_p``; docs/families.md);
    ``anti_aliasing`` renders at 2S and average-pools 2×2. Attributes may be changed between
    calls (``sigma_val``, ``gamma_val``, ...); they are validated at every call. ``backend``
    picks the rasterization backend (``None``: the device's default).

    ``sigma_val`` and ``gamma_val`` may also hold one value per item of the rendered batch (a 1-D
    sequence or tensor of B values): each item is rendered with its own σ and γ, exactly as if
    rendered alone (see :class:`softras.raster.RasterSettings`).

    ``state_dict`` holds every option but ``backend`` (which depends on the machine), so that
    ``load_state_dict`` into a fresh module renders the same images.
    """

    _state_attributes = (
        "image_size", "background_color", "near", "far", "anti_aliasing", "fill_back", "eps", "sigma_val",
        "dist_func", "dist_eps", "gamma_val", "aggr_func_rgb", "aggr_func_alpha", "texture_type",
        *FAMILY_OPTIONS,
    )  # fmt: skip
    # GenDR's families, added after the first release: older states lack them and load with the defaults
    _state_defaults: ClassVar[dict[str, object]] = {
        f.name: f.default for f in dataclasses.fields(RasterSettings) if f.name in FAMILY_OPTIONS
    }

    def __init__(
        self,
        image_size: int = 256,
        background_color: Sequence[float] = (0, 0, 0),
        near: float = 1,
        far: float = 100,
        anti_aliasing: bool = False,
        fill_back: bool = False,
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
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.background_color = background_color
        self.near = near
        self.far = far
        self.anti_aliasing = anti_aliasing
        self.fill_back = fill_back
        self.eps = eps
        self.sigma_val = sigma_val
        self.dist_func = dist_func
        self.dist_eps = dist_eps
        self.gamma_val = gamma_val
        self.aggr_func_rgb = aggr_func_rgb
        self.aggr_func_alpha = aggr_func_alpha
        self.texture_type = texture_type
        self.distribution = distribution
        self.squared_distance = squared_distance
        self.dist_shape = dist_shape
        self.dist_shift = dist_shift
        self.t_conorm_p = t_conorm_p
        self.backend = backend
        self.settings()  # validate now, not at the first render

    def set_extra_state(self, state: object) -> None:
        super().set_extra_state(state)
        self.settings()

    def settings(self) -> RasterSettings:
        """The current options as validated :class:`RasterSettings`."""
        size = image_hw(self.image_size)  # an int or (H, W), NumPy integers accepted
        if self.anti_aliasing:
            size = (2 * size[0], 2 * size[1])
        return RasterSettings.create(
            size,
            background_color=self.background_color,
            near=self.near,
            far=self.far,
            fill_back=self.fill_back,
            eps=self.eps,
            sigma_val=self.sigma_val,
            dist_func=self.dist_func,
            dist_eps=self.dist_eps,
            gamma_val=self.gamma_val,
            aggr_func_rgb=self.aggr_func_rgb,
            aggr_func_alpha=self.aggr_func_alpha,
            texture_type=self.texture_type,
            distribution=self.distribution,
            squared_distance=self.squared_distance,
            dist_shape=self.dist_shape,
            dist_shift=self.dist_shift,
            t_conorm_p=self.t_conorm_p,
        )

    def forward(self, mesh: Mesh, mode: str | None = None, *, vertex_light: torch.Tensor | None = None) -> torch.Tensor:
        """Render ``mesh`` (screen space). ``mode`` is accepted for compatibility and ignored,
        as in the original: the output is always RGBA [B, 4, S, S].

        ``vertex_light``: [B, V, 3] light per vertex, interpolated across each face, aggregated
        like the colour and multiplied with it (smooth shading of surface textures); the
        background keeps its colour. ``None``: the textures as they are (the original).
        """
        if mode not in _MODES:
            raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}")
        if getattr(mesh, "texture_type", None) == "uv":  # (mesh-like objects without one: the original's)
            raise ValueError(
                "mesh: a UV-textured mesh is rendered by softras.render or SoftRenderer.render_mesh (from world "
                "space); SoftRasterizer takes surface or vertex textures (see Mesh.to_texture_type)"
            )
        settings = self.settings()
        if vertex_light is None:
            images = rasterize(mesh.face_vertices, mesh.face_textures, settings, backend=self.backend)
        else:
            images = self._lit(mesh, vertex_light, settings)
        if self.anti_aliasing:
            images = F.avg_pool2d(images, kernel_size=2, stride=2)
        return images

    def _lit(self, mesh: Mesh, vertex_light: torch.Tensor, settings: RasterSettings) -> torch.Tensor:
        """RGBA of surface textures times the interpolated ``vertex_light`` [B, V, 3]."""
        if mesh.texture_type != "surface":
            raise ValueError(f"vertex_light: needs surface textures, got texture_type={mesh.texture_type!r}")
        want = (mesh.batch_size, mesh.num_vertices, 3)
        if not isinstance(vertex_light, torch.Tensor) or tuple(vertex_light.shape) != want:
            got = tuple(vertex_light.shape) if isinstance(vertex_light, torch.Tensor) else type(vertex_light).__name__
            raise ValueError(f"vertex_light: expected shape {list(want)}, got {got}")
        result = rasterize_channels(
            mesh.face_vertices,
            settings,
            surface=mesh.face_textures,
            vertex=srf.face_vertices(vertex_light.to(mesh.vertices), mesh.faces),
            background=(*settings.background_color, 1.0, 1.0, 1.0),
            backend=self.backend,
        )
        return torch.cat([result.channels[:, :3] * result.channels[:, 3:], result.alpha], dim=1)


class Rasterizer(SoftRasterizer):
    """The original's hard rasterizer: z-buffer colour, binary coverage, anti-aliased by default.

    Implemented as :class:`SoftRasterizer` with ``dist_func='hard'``, ``aggr_func_rgb='hard'``
    and ``aggr_func_alpha='hard'``; ``fill_back`` makes faces double-sided.
    """

    def __init__(
        self,
        image_size: int = 256,
        background_color: Sequence[float] = (0, 0, 0),
        near: float = 1,
        far: float = 100,
        anti_aliasing: bool = False,
        fill_back: bool = False,
        eps: float = 1e-6,
        *,
        texture_type: str = "surface",
        backend: str | None = None,
    ) -> None:
        super().__init__(
            image_size,
            background_color,
            near,
            far,
            anti_aliasing,
            fill_back,
            eps,
            dist_func="hard",
            aggr_func_rgb="hard",
            aggr_func_alpha="hard",
            texture_type=texture_type,
            backend=backend,
        )
