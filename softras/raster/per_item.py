"""Per-item σ and γ: a batch whose items each have their own ``sigma_val`` and ``gamma_val``.

:class:`~softras.raster.RasterSettings` takes either a number for ``sigma_val`` / ``gamma_val``
(every item) or one value per item of the batch (a 1-D sequence, NumPy array or tensor of B
values), stored as a tuple of floats (:func:`softras._validation.item_values`). The backends and the kernels only
ever see numbers: a call with per-item values is split here, once, above every backend
(:func:`split_run`, called by :func:`softras.raster.rasterize_channels` and
:func:`softras.raster.rasterize` before the custom op of ``torch.compile``):

* the items are grouped by their (σ, γ) (:func:`groups`); all equal is one group, the call
  then runs once with the numbers, exactly as a call given them;
* each group is rasterized with scalar settings (``dataclasses.replace``, which recomputes the
  values derived from σ, e.g. the cull reach), on its own items of every per-item input (faces,
  surface and vertex attributes, a UV texture's uv and material; the atlas is shared);
* the results are put back in the items' order (``torch.cat`` and ``index_select``: autograd
  flows through both, so each item's outputs and gradients are those of rendering it alone with
  its σ and γ).

σ and γ are constants of the rasterizer (not differentiable, as in the original): a tensor that
requires grad is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from .contract import RasterInputs, RasterResult

if TYPE_CHECKING:
    from .settings import RasterSettings

__all__ = ["PER_ITEM", "check_batch", "groups", "split_run"]

PER_ITEM = ("sigma_val", "gamma_val")
"""The settings that may hold one value per item."""

def _per_batch(settings: RasterSettings, batch: int) -> dict[str, tuple[float, ...]]:
    """The per-item settings as B values each ({} when every one is a number); checks their length."""
    out = {}
    for name in PER_ITEM:
        value = getattr(settings, name)
        if isinstance(value, tuple):
            if len(value) != batch:
                raise ValueError(
                    f"{name}: expected {batch} per-item values (one per item of the batch), got {len(value)}"
                )
            out[name] = value
    return out


def check_batch(settings: RasterSettings, batch: int) -> None:
    """Raise ``ValueError`` naming the setting if a per-item ``sigma_val`` / ``gamma_val`` does not
    hold ``batch`` values."""
    _per_batch(settings, batch)


def groups(settings: RasterSettings, batch: int) -> list[tuple[RasterSettings, list[int]]]:
    """The items grouped by their own (σ, γ), in the order of their first item: (the group's
    settings, all numbers, its item indices ascending). Settings without per-item values, or whose
    per-item values are all equal, are one group of every item."""
    per_item = _per_batch(settings, batch)
    if not per_item:
        return [(settings, list(range(batch)))]
    found: dict[tuple[float, ...], list[int]] = {}
    for b in range(batch):
        found.setdefault(tuple(values[b] for values in per_item.values()), []).append(b)
    names = list(per_item)
    return [
        (dataclasses.replace(settings, **dict(zip(names, key, strict=True))), items) for key, items in found.items()
    ]


def _take(t: torch.Tensor, items: list[int]) -> torch.Tensor:
    """Rows ``items`` of ``t`` (a view for a contiguous run)."""
    if items == list(range(items[0], items[-1] + 1)):
        return t[items[0] : items[-1] + 1]
    return t.index_select(0, torch.tensor(items, device=t.device))


def _slice(inputs: RasterInputs, items: list[int]) -> RasterInputs:
    """The inputs of ``items``: every per-item tensor sliced, the background and the UV atlas shared."""
    uv = inputs.uv
    if uv is not None:
        uv = uv._replace(uv=_take(uv.uv, items), material=_take(uv.material, items))
    return inputs._replace(
        face_vertices=_take(inputs.face_vertices, items),
        surface=_take(inputs.surface, items),
        vertex=_take(inputs.vertex, items),
        uv=uv,
    )


def split_run(
    inputs: RasterInputs,
    settings: RasterSettings,
    call: Callable[[RasterInputs, RasterSettings], RasterResult | torch.Tensor],
) -> RasterResult | torch.Tensor:
    """``call(inputs, settings)`` with per-item σ / γ: ``call`` once per group of :func:`groups`
    (scalar settings, the group's items), the results reassembled in the items' order. Settings
    without per-item values (or all equal): one call with the numbers."""
    batch = int(inputs.face_vertices.shape[0])
    parts = groups(settings, batch)
    if len(parts) == 1:
        return call(inputs, parts[0][0])
    results = [call(_slice(inputs, items), group) for group, items in parts]
    order = [b for _, items in parts for b in items]
    inverse = None
    if order != list(range(batch)):
        where = [0] * batch
        for position, b in enumerate(order):
            where[b] = position
        inverse = where

    def join(tensors: list[torch.Tensor]) -> torch.Tensor:
        joined = torch.cat(tensors)
        return joined if inverse is None else joined.index_select(0, torch.tensor(inverse, device=joined.device))

    if isinstance(results[0], torch.Tensor):
        return join(results)  # type: ignore[arg-type]
    fields = zip(*results, strict=True)
    return RasterResult(*(None if parts_[0] is None else join(list(parts_)) for parts_ in fields))
