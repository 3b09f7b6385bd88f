"""Camera modules: `LookAt`, `Look`, `Projection` and the `Transform` that picks one.

Thin ``nn.Module`` shells with the original's constructor arguments over the camera objects of
:mod:`softras.cameras`, which own the parameters: each shell holds one immutable camera in
``.camera``; setting an attribute (``eye``, ``viewing_angle``, ...) replaces that camera.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from . import functional as srf
from ._state import check_state, plain
from ._validation import check_choice
from .cameras import Camera, LookAtCamera, LookCamera, ProjectionCamera, _EyeCamera
from .mesh import Mesh

__all__ = ["Look", "LookAt", "Projection", "Transform"]


def _camera_field(name: str, doc: str) -> property:
    def get(self: _CameraModule) -> object:
        return getattr(self.camera, name)

    def set_(self: _CameraModule, value: object) -> None:
        self.camera = self.camera.replace(**{name: value})

    return property(get, set_, doc=doc)


class _CameraModule(nn.Module):
    """An ``nn.Module`` around one camera object; ``forward`` is its ``to_screen``.

    ``state_dict`` holds the camera's class name and parameters; ``load_state_dict`` replaces the
    camera by one of the same class with the saved parameters.
    """

    camera: Camera

    def forward(self, vertices: torch.Tensor, image_size: object = None) -> torch.Tensor:
        """[B, V, 3] world -> [B, V, 3] screen (x, y NDC, z depth); ``image_size`` (H, W) or None (square)."""
        return self.camera.to_screen(vertices, image_size)

    def get_extra_state(self) -> dict[str, object]:
        fields = {f.name: plain(getattr(self.camera, f.name)) for f in dataclasses.fields(self.camera)}
        return {"camera": type(self.camera).__name__, "parameters": fields}

    def set_extra_state(self, state: object) -> None:
        state = check_state(type(self).__name__, state, ("camera", "parameters"))
        have = type(self.camera).__name__
        if state["camera"] != have:
            raise ValueError(
                f"state_dict: the saved camera is a {state['camera']}, this {type(self).__name__} holds a {have} "
                "(build the module with the same camera_mode)"
            )
        self.camera = self.camera.replace(**state["parameters"])


class _EyeModule(_CameraModule):
    camera: _EyeCamera
    eye = _camera_field("eye", "Camera position(s): [3] or [B, 3].")
    perspective = _camera_field("perspective", "Perspective (True) or orthographic projection.")
    viewing_angle = _camera_field("viewing_angle", "Half field of view in degrees (perspective).")
    viewing_scale = _camera_field("viewing_scale", "NDC units per world unit (orthographic).")


class LookAt(_EyeModule):
    """Camera at ``eye`` ([3] or [B, 3]) looking at the origin, then perspective / orthographic.

    The camera is a :class:`softras.cameras.LookAtCamera` (``self.camera``).
    """

    def __init__(
        self, perspective: bool = True, viewing_angle: float = 30, viewing_scale: float = 1.0, eye: object = None
    ) -> None:
        super().__init__()
        self.camera = LookAtCamera(
            eye=eye, perspective=perspective, viewing_angle=viewing_angle, viewing_scale=viewing_scale
        )


class Look(_EyeModule):
    """Camera at ``eye`` looking along ``camera_direction``, then perspective / orthographic.

    The camera is a :class:`softras.cameras.LookCamera` (``self.camera``).
    """

    camera_direction = _camera_field("direction", "Viewing direction: [3] or [B, 3].")

    def __init__(
        self,
        camera_direction: Sequence[float] = (0, 0, 1),
        perspective: bool = True,
        viewing_angle: float = 30,
        viewing_scale: float = 1.0,
        eye: object = None,
    ) -> None:
        super().__init__()
        self.camera = LookCamera(
            eye=eye,
            direction=camera_direction,
            perspective=perspective,
            viewing_angle=viewing_angle,
            viewing_scale=viewing_scale,
        )


class Projection(_CameraModule):
    """Pinhole camera from 3×4 matrices ``P`` ([B, 3, 4]) with optional distortion ([B, 5]).

    The camera is a :class:`softras.cameras.ProjectionCamera` (``self.camera``).
    """

    P = _camera_field("P", "[B, 3, 4] projection matrices K [R | t] (pixel units).")
    dist_coeffs = _camera_field("dist_coeffs", "[B, 5] distortion (k1, k2, p1, p2, k3).")
    orig_size = _camera_field("orig_size", "Size of the image P maps to: S or (H0, W0).")

    def __init__(
        self, P: torch.Tensor | np.ndarray, dist_coeffs: torch.Tensor | np.ndarray | None = None, orig_size: int = 512
    ) -> None:
        super().__init__()
        self.camera = ProjectionCamera(P=P, dist_coeffs=dist_coeffs, orig_size=orig_size)


class Transform(nn.Module):
    """World -> screen transform of a mesh; ``camera_mode``: 'projection', 'look' or 'look_at'.

    ``camera_mode='projection'`` without ``P`` (the original's defaults, with which the
    original raised) uses the default camera :func:`softras.cameras.default_camera`: a
    look-at camera at (0, 0, −2.732) aimed at the origin with ``viewing_angle``.
    """

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
        self.transformer: _CameraModule
        if camera_mode == "projection" and P is not None:
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

    @property
    def camera(self) -> Camera:
        """The current camera object (immutable; :meth:`set_eyes` and friends replace it)."""
        return self.transformer.camera

    @camera.setter
    def camera(self, camera: Camera) -> None:
        if not callable(getattr(camera, "to_screen", None)):
            raise TypeError(f"camera: expected a softras.cameras camera, got {type(camera).__name__}")
        self.transformer.camera = camera

    def forward(self, mesh: Mesh, image_size: object = None) -> Mesh:
        """A new mesh with screen-space vertices (the input mesh is not modified).

        ``image_size``: the (H, W) rendered, for the aspect ratio; None: square.
        """
        return mesh.replace(vertices=self.transformer(mesh.vertices, image_size))

    def _eye_module(self) -> _EyeModule:
        if not isinstance(self.transformer, _EyeModule):
            raise ValueError(f"camera_mode: eyes apply to 'look' and 'look_at', not {self.camera_mode!r}")
        return self.transformer

    def set_eyes_from_angles(self, distances: object, elevations: object, azimuths: object) -> None:
        """Place the camera(s) by distance, elevation and azimuth (degrees; numbers or [B])."""
        self._eye_module().eye = srf.get_points_from_angles(distances, elevations, azimuths)

    def set_eyes(self, eyes: object) -> None:
        """Place the camera(s) at ``eyes`` ([3] or [B, 3])."""
        self._eye_module().eye = eyes

    @property
    def eyes(self) -> object:
        """Camera position(s) as set: [3] or [B, 3]."""
        return self._eye_module().eye
