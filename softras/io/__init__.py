"""Mesh input/output: OBJ/MTL (compatible with ``soft_renderer``), other formats via trimesh,
and surface-texture helpers."""

from softras.io.formats import MESH_EXTENSIONS, LoadedMesh, load_mesh, save_mesh
from softras.io.obj import load_obj, save_obj
from softras.io.texture import (
    create_texture_atlas,
    sample_surface_textures,
    surface_textures_from_vertex_colors,
    texel_barycentrics,
    texel_index,
)

__all__ = [
    "MESH_EXTENSIONS",
    "LoadedMesh",
    "create_texture_atlas",
    "load_mesh",
    "load_obj",
    "sample_surface_textures",
    "save_mesh",
    "save_obj",
    "surface_textures_from_vertex_colors",
    "texel_barycentrics",
    "texel_index",
]
