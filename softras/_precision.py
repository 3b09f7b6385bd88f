"""Precision rules shared by the rasterizer dispatch and the camera geometry.

* Half inputs (:data:`HALF_DTYPES`) are computed in float32, float32 and float64 in their own
  dtype (:func:`compute_dtype`); the rasterizer returns the input dtype.
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

__all__ = ["HALF_DTYPES", "autocast_enabled", "compute_dtype", "matmul", "no_autocast", "result_dtype"]

HALF_DTYPES = (torch.float16, torch.bfloat16)
"""Input dtypes that are computed in float32."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic runs in for inputs of ``dtype``: float32 for half types, else ``dtype``."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


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
