"""Camera modules: `LookAt`, `Look`, `Projection` and the `Transform` that picks one."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from . import functional as srf
from ._validation import as_float_tensor, check_choice
from .mesh import Mesh

__all__ = ["Look", "LookAt", "Projection", "Transform"]


def _default_eye(viewing_angle: float) -> list[float]:
    return [0.0, 0.0, -(1.0 / math.tan(math.radians(viewing_angle)) + 1)]


class _EyeCamera(nn.Module):
    def __init__(self, perspective: bool, viewing_angle: float, viewing_scale: float, eye: object) -> None:
        super().__init__()
        self.perspective = perspective
        self.viewing_angle = viewing_angle
        self.viewing_scale = viewing_scale
        self._eye = _default_eye(viewing_angle) if eye is None else eye

    @property
    def eye(self) -> object:
        """Camera position(s): [3] or [B, 3]."""
        return self._eye

    def _project(self, vertices: torch.Tensor) -> torch.Tensor:
        if self.perspective:
            return srf.perspective(vertices, angle=self.viewing_angle)
        return srf.orthogonal(vertices, scale=self.viewing_scale)


class LookAt(_EyeCamera):
    """Camera at ``eye`` ([3] or [B, 3]) looking at the origin, then perspective / orthographic."""

    def __init__(
        self, perspective: bool = True, viewing_angle: float = 30, viewing_scale: float = 1.0, eye: object = None
    ) -> None:
        super().__init__(perspective, viewing_angle, viewing_scale, eye)

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        """[B, V, 3] world -> [B, V, 3] screen (x, y NDC, z depth)."""
        return self._project(srf.look_at(vertices, self._eye))


class Look(_EyeCamera):
    """Camera at ``eye`` looking along ``camera_direction``, then perspective / orthographic."""

    def __init__(
        self,
        camera_direction: Sequence[float] = (0, 0, 1),
        perspective: bool = True,
        viewing_angle: float = 30,
        viewing_scale: float = 1.0,
        eye: object = None,
    ) -> None:
        super().__init__(perspective, viewing_angle, viewing_scale, eye)
        self.camera_direction = camera_direction

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        """[B, V, 3] world -> [B, V, 3] screen."""
        return self._project(srf.look(vertices, self._eye, self.camera_direction))


class Projection(nn.Module):
    """Pinhole camera from 3×4 matrices ``P`` ([B, 3, 4]) with optional distortion ([B, 5])."""

    def __init__(
        self, P: torch.Tensor | np.ndarray, dist_coeffs: torch.Tensor | np.ndarray | None = None, orig_size: int = 512
    ) -> None:
        super().__init__()
        if P is None:
            raise ValueError("P: camera_mode='projection' needs a [B, 3, 4] projection matrix P")
        P = as_float_tensor("P", P)
        if P.ndim != 3 or P.shape[1:] != (3, 4):
            raise ValueError(f"P: expected shape [B, 3, 4], got {tuple(P.shape)}")
        self.P = P
        self.dist_coeffs = dist_coeffs if dist_coeffs is not None else torch.zeros(P.shape[0], 5, dtype=P.dtype)
        self.orig_size = orig_size

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        """[B, V, 3] world -> [B, V, 3] screen."""
        return srf.projection(vertices, self.P, self.dist_coeffs, self.orig_size)


class Transform(nn.Module):
    """World -> screen transform of a mesh; ``camera_mode``: 'projection', 'look' or 'look_at'."""

    def __init__(
        self,
        camera_mode: str = "projection",
        P: torch.Tensor | np.ndarray | None = None,
        dist_coeffs: torch.Tensor | np.ndarray | None = None,
        orig_size: int = 512,
        perspective: bool = True,
        viewing_angle: float = 30,
        viewing_scale: float = 1.0,
        eye: object = None,
        camera_direction: Sequence[float] = (0, 0, 1),
    ) -> None:
        super().__init__()
        self.camera_mode = check_choice("camera_mode", camera_mode, ("projection", "look", "look_at"))
        self.transformer: nn.Module
        if camera_mode == "projection":
            self.transformer = Projection(P, dist_coeffs, orig_size)
        elif camera_mode == "look":
            self.transformer = Look(
                camera_direction=camera_direction,
                perspective=perspective,
                viewing_angle=viewing_angle,
                viewing_scale=viewing_scale,
                eye=eye,
            )
        else:
            self.transformer = LookAt(perspective, viewing_angle, viewing_scale, eye)

    def forward(self, mesh: Mesh) -> Mesh:
        """A new mesh with screen-space vertices (the input mesh is not modified)."""
        return mesh.replace(vertices=self.transformer(mesh.vertices))

    def _check_eye_mode(self) -> None:
        if self.camera_mode not in ("look", "look_at"):
            raise ValueError(f"camera_mode: eyes apply to 'look' and 'look_at', not {self.camera_mode!r}")

    def set_eyes_from_angles(self, distances: object, elevations: object, azimuths: object) -> None:
        """Place the camera(s) by distance, elevation and azimuth (degrees; numbers or [B])."""
        self._check_eye_mode()
        self.transformer._eye = srf.get_points_from_angles(distances, elevations, azimuths)

    def set_eyes(self, eyes: object) -> None:
        """Place the camera(s) at ``eyes`` ([3] or [B, 3])."""
        self._check_eye_mode()
        self.transformer._eye = eyes

    @property
    def eyes(self) -> object:
        return self.transformer._eye
