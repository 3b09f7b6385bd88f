"""softras: the Soft Rasterizer as a differentiable renderer for any PyTorch device.

``import softras as sr`` exposes the original ``soft_renderer`` API (``sr.Mesh``,
``sr.SoftRenderer``, ``sr.functional``, ...); see docs/api.md.
"""

from . import cameras, functional, rotations, shapes
from .cameras import LookAtCamera, LookCamera, Orthographic, Pinhole, ProjectionCamera
from .lighting import AmbientLighting, DirectionalLighting, Lighting
from .losses import FlattenLoss, LaplacianLoss
from .mesh import Mesh
from .raster import RasterSettings, available_backends, default_backend
from .rasterizer import Rasterizer, SoftRasterizer
from .renderer import Renderer, SoftRenderer
from .rendering import RenderOutput, render
from .transform import Look, LookAt, Projection, Transform
from .uv_texture import UVTexture

__version__ = "0.1.0"

__all__ = [
    "AmbientLighting",
    "DirectionalLighting",
    "FlattenLoss",
    "LaplacianLoss",
    "Lighting",
    "Look",
    "LookAt",
    "LookAtCamera",
    "LookCamera",
    "Mesh",
    "Orthographic",
    "Pinhole",
    "Projection",
    "ProjectionCamera",
    "RasterSettings",
    "Rasterizer",
    "RenderOutput",
    "Renderer",
    "SoftRasterizer",
    "SoftRenderer",
    "Transform",
    "UVTexture",
    "available_backends",
    "cameras",
    "default_backend",
    "functional",
    "render",
    "rotations",
    "shapes",
]
