"""Precision rules shared by the rasterizer dispatch and the camera geometry.

* Half inputs (:data:`HALF_DTYPES`) are computed in float32, float32 and float64 in their own
  dtype (:func:`compute_dtype`); the rasterizer returns the input dtype.
* The render pipelines (:func:`softras.render`, ``SoftRenderer`` / ``Renderer``) apply the same
  rule to everything before the rasterizer: at their entry the mesh (vertices, textures) is cast
  to its compute dtype with :func:`upcast` (``softras.rendering.compute_mesh``), so lighting,
  normals, the camera transform, projection, distortion and clipping all run in float32 for a
  half mesh, and the outputs are cast back to :func:`result_dtype` of the vertices' dtype at the
  end. One cast at the entry covers every camera and every step, present or future; a rule in
  each transform would be repeated in every camera class, the normals, lighting and clipping,
  and would still round the screen vertices to half between the transform and the rasterizer.
  Gradients pass back through the cast to the half leaf tensors in their dtype. Measured on a
  sphere of radius 0.8 (tests/test_half_precision.py): a bfloat16 look-at / Pinhole transform
  moves screen vertices by up to 0.7 / 1.8 pixels at 256²; rounding the float32 result to
  bfloat16 only, by up to 0.25 pixels. Cameras, lighting modules and functional transforms
  called on their own compute in the dtype of the points they are given.
* Inside a :func:`torch.autocast` region softras behaves as one of autocast's float32 ops
  (``softmax``, ``mse_loss``, ...): it runs with autocast off, in the compute dtype, and returns
  that dtype (float32 for float16 / bfloat16 / float32 inputs, float64 for float64 ones).
* Camera transforms multiply with :func:`matmul`, which autocast does not lower: autocast's
  bfloat16 matmul would move screen-space vertices by ~1e-2 of their size, more than a pixel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = [
    "HALF_DTYPES",
    "autocast_enabled",
    "compute_dtype",
    "matmul",
    "no_autocast",
    "result_dtype",
    "upcast",
]

HALF_DTYPES = (torch.float16, torch.bfloat16)
"""Input dtypes that are computed in float32."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic runs in for inputs of ``dtype``: float32 for half types, else ``dtype``."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in its compute dtype: float32 for half types, else ``tensor`` itself (no copy).

    Differentiable: the gradient comes back to ``tensor`` in its own dtype.
    """
    return tensor.to(compute_dtype(tensor.dtype))


def autocast_enabled(device: torch.device) -> bool:
    """Whether a :func:`torch.autocast` region is active for ``device``'s type."""
    return torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type)


def result_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype a computation on ``dtype`` inputs returns: the compute dtype under autocast
    (autocast's float32-op rule), else ``dtype`` itself."""
    return compute_dtype(dtype) if autocast_enabled(device) else dtype


@contextlib.contextmanager
def no_autocast(device: torch.device) -> Iterator[None]:
    """Turn autocast off for ``device``'s type inside the block (nothing to do when it is off)."""
    if not autocast_enabled(device):
        yield
        return
    with torch.autocast(device.type, enabled=False):
        yield


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.matmul(a, b)`` in the operands' promoted dtype, also inside an autocast region."""
    if not autocast_enabled(a.device):
        return torch.matmul(a, b)
    dtype = torch.promote_types(a.dtype, b.dtype)
    with torch.autocast(a.device.type, enabled=False):
        return torch.matmul(a.to(dtype), b.to(dtype))
