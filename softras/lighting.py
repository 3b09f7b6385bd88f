"""Lighting modules: ambient + directional Lambertian shading of a mesh's textures."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import functional as srf
from ._state import SettingsState
from ._validation import check_choice
from .mesh import Mesh

__all__ = ["AmbientLighting", "DirectionalLighting", "Lighting", "accumulate_light"]


class AmbientLighting(SettingsState, nn.Module):
    """``light + intensity * color`` (intensity and colour may be tensors, [B] / [B, 3]); both are
    in ``state_dict``."""

    _state_attributes = ("light_intensity", "light_color")

    def __init__(self, light_intensity: float = 0.5, light_color: Sequence[float] = (1, 1, 1)) -> None:
        super().__init__()
        self.light_intensity = light_intensity
        self.light_color = light_color

    def forward(self, light: torch.Tensor) -> torch.Tensor:
        return srf.ambient_lighting(light, self.light_intensity, self.light_color)


class DirectionalLighting(SettingsState, nn.Module):
    """``light + intensity * color * max(0, n · direction)``; the three are in ``state_dict``."""

    _state_attributes = ("light_intensity", "light_color", "light_direction")

    def __init__(
        self,
        light_intensity: float = 0.5,
        light_color: Sequence[float] = (1, 1, 1),
        light_direction: Sequence[float] = (0, 1, 0),
    ) -> None:
        super().__init__()
        self.light_intensity = light_intensity
        self.light_color = light_color
        self.light_direction = light_direction

    def forward(self, light: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        return srf.directional_lighting(light, normals, self.light_intensity, self.light_color, self.light_direction)


class Lighting(SettingsState, nn.Module):
    """Shade a mesh's textures per face (``'surface'``) or per vertex (``'vertex'``).

    ``forward(mesh)`` returns a new :class:`Mesh` whose textures are multiplied by the light;
    the input mesh is not modified. ``light_mode`` and the terms' settings are in ``state_dict``.
    """

    _state_attributes = ("light_mode",)

    def __init__(
        self,
        light_mode: str = "surface",
        intensity_ambient: float = 0.5,
        color_ambient: Sequence[float] = (1, 1, 1),
        intensity_directionals: float = 0.5,
        color_directionals: Sequence[float] = (1, 1, 1),
        directions: Sequence[float] = (0, 1, 0),
    ) -> None:
        super().__init__()
        self.light_mode = check_choice("light_mode", light_mode, ("surface", "vertex"))
        self.ambient = AmbientLighting(intensity_ambient, color_ambient)
        self.directionals = nn.ModuleList([DirectionalLighting(intensity_directionals, color_directionals, directions)])

    def set_extra_state(self, state: object) -> None:
        super().set_extra_state(state)
        check_choice("light_mode", self.light_mode, ("surface", "vertex"))

    def light(self, normals: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] light for unit ``normals`` [B, N, 3]: the ambient term, then each directional one."""
        return accumulate_light([self.ambient, *self.directionals], normals)

    def vertex_light(self, mesh: Mesh) -> torch.Tensor:
        """[B, V, 3] light at the mesh's vertices, from its vertex normals (smooth shading)."""
        return self.light(mesh.vertex_normals)

    def forward(self, mesh: Mesh) -> Mesh:
        check_choice("light_mode", self.light_mode, ("surface", "vertex"))
        if mesh.texture_type == "uv":
            raise ValueError(
                "mesh: a UV-textured mesh is lit after rasterization (softras.render and SoftRenderer.render_mesh "
                "multiply its colour by the aggregated light); Lighting(mesh) lights surface or vertex textures"
            )
        if self.light_mode != mesh.texture_type:
            raise ValueError(
                f"light_mode: {self.light_mode!r} lighting needs {self.light_mode} textures, "
                f"but the mesh has texture_type={mesh.texture_type!r} (see SoftRenderer.set_texture_mode)"
            )
        surface = self.light_mode == "surface"
        light = self.light(mesh.surface_normals if surface else mesh.vertex_normals)
        textures = mesh.textures * (light[:, :, None, :] if surface else light)
        return mesh.replace(textures=textures)


def accumulate_light(terms: Sequence[AmbientLighting | DirectionalLighting], normals: torch.Tensor) -> torch.Tensor:
    """[B, N, 3] light of ``terms`` applied in order, starting from 0, for unit ``normals`` [B, N, 3]."""
    light = torch.zeros_like(normals)
    for term in terms:
        light = term(light) if isinstance(term, AmbientLighting) else term(light, normals)
    return light
