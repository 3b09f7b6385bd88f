"""Plain functions on tensors, under the original ``soft_renderer.functional`` names."""

from ..raster import soft_rasterize
from .geometry import face_vertices, surface_normals, vertex_normals
from .lighting import ambient_lighting, directional_lighting
from .transform import get_points_from_angles, look, look_at, orthogonal, perspective, projection

__all__ = [
    "ambient_lighting",
    "directional_lighting",
    "face_vertices",
    "get_points_from_angles",
    "look",
    "look_at",
    "orthogonal",
    "perspective",
    "projection",
    "soft_rasterize",
    "surface_normals",
    "vertex_normals",
]
