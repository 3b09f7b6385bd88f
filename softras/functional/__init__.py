"""Plain functions on tensors, under the original ``soft_renderer.functional`` names."""

from ..io.obj import load_obj, save_obj
from ..raster import soft_rasterize
from .geometry import face_vertices, surface_normals, vertex_normals
from .lighting import ambient_lighting, directional_lighting
from .transform import get_points_from_angles, look, look_at, orthogonal, perspective, projection
from .voxelization import save_voxel, voxelization

__all__ = [
    "ambient_lighting",
    "directional_lighting",
    "face_vertices",
    "get_points_from_angles",
    "load_obj",
    "look",
    "look_at",
    "orthogonal",
    "perspective",
    "projection",
    "save_obj",
    "save_voxel",
    "soft_rasterize",
    "surface_normals",
    "vertex_normals",
    "voxelization",
]
