"""One rasterizer call on a backend: choose it, check the request, apply the precision rules.

:func:`run` is what :func:`softras.raster.rasterize_channels` and :func:`softras.raster.rasterize`
end in. Eager calls run it directly; traced calls (``torch.compile``, ``torch.export``) run it as
the real implementation of the custom op of :mod:`softras.raster.op`.
"""

from __future__ import annotations

import torch

from .._memory import check_raster_request
from .._precision import compute_dtype, no_autocast
from .backends import BACKENDS, default_backend, get_backend
from .contract import RasterInputs, RasterResult
from .settings import RasterSettings

__all__ = ["run"]


def run(
    inputs: RasterInputs, settings: RasterSettings, backend: str | None, rgba: bool, out: torch.dtype
) -> RasterResult | torch.Tensor:
    """Run a backend (with ``rgba``, its RGBA form: :meth:`Backend.load_rgba`) under the precision
    rules of :mod:`softras._precision`: the kernels compute in float32 (half inputs) or the input
    dtype with autocast off, and the floating outputs come back in ``out`` (the input dtype, or
    the compute dtype inside an autocast region). Gradients flow back in the dtype of each input.

    Args:
        inputs: validated :class:`RasterInputs` (any floating dtype).
        settings: validated :class:`RasterSettings`.
        backend: a backend name, or None for the device's default.
        rgba: return the [B, C + 1, H, W] RGBA tensor instead of a :class:`RasterResult`.
        out: the dtype of the floating outputs.
    """
    device = inputs.face_vertices.device
    chosen = get_backend(default_backend(device) if backend is None else backend)
    if not chosen.runs_on(device):
        raise ValueError(f"backend: {chosen.name!r} runs on {', '.join(chosen.devices)} tensors, got device {device}")
    dtype = inputs.face_vertices.dtype
    compute = compute_dtype(dtype)
    if compute not in chosen.dtypes:
        raise TypeError(
            f"face_vertices: backend {chosen.name!r} computes in {', '.join(map(str, chosen.dtypes))}, got {dtype}"
        )
    for wanted, feature, what in (
        (inputs.uv is not None, "uv_textures", "sample UV textures"),
        (settings.perspective_correct and inputs.vertex.shape[3] > 0, "perspective_correct",
         "interpolate vertex attributes perspective-correct (perspective_correct=True)"),
    ):  # fmt: skip
        if wanted and not getattr(chosen, feature):
            able = sorted(b.name for b in BACKENDS.values() if getattr(b, feature) and b.runs_on(device))
            raise NotImplementedError(f"backend: {chosen.name!r} does not {what} yet; use one of {able}")
    inputs = inputs._replace(
        face_vertices=inputs.face_vertices.to(compute),
        surface=inputs.surface.to(compute),
        vertex=inputs.vertex.to(compute),
        uv=None if inputs.uv is None else inputs.uv.to(compute),
    )
    in_place_rgba = rgba and chosen.rgba_entry is not None  # the RGBA entries make no depth or z-buffer
    check_raster_request(
        inputs.face_vertices,
        inputs.surface,
        settings.image_height,
        settings.image_width,
        settings.cull_radius,
        chosen.name,
        vertex=inputs.vertex,
        with_depth=settings.with_depth and not in_place_rgba,
        with_zbuffer=settings.with_zbuffer and not in_place_rgba,
        softmax=settings.aggr_func_rgb == "softmax",
        concatenate_rgba=rgba and chosen.rgba_entry is None,
        result_dtype=out,
        names=("textures", "textures") if rgba else ("surface", "vertex"),
    )
    with no_autocast(device):
        if rgba:
            return chosen.load_rgba()(inputs, settings).to(out)
        result = chosen.load()(inputs, settings)
    return RasterResult(*(t.to(out) if t is not None and t.is_floating_point() else t for t in result))
