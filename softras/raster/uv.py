"""UV-mapped texture images as the rasterizer takes them: one flat atlas of every level.

A mesh's UV texture is per-corner UVs [B, F, 3, 2], a material per face [B, F] and M texture
images [H_m, W_m, C] (any sizes, one channel count C). :func:`uv_maps` packs the images, and for
``texture_filter='trilinear'`` their mip levels (2 × 2 area averages, down to 1 × 1), into one
flat tensor, the *atlas*, channels last, with a table of where each (material, level) starts.
The levels are computed from the images by differentiable PyTorch ops, so the gradient that a
backend returns for the atlas reaches the images through autograd, every level's share included.

The sampling rules themselves (perspective-correct UVs, level of detail, wrap, texel centres)
are model functions, :mod:`softras.raster.model.texture`, that every backend runs. The lookups:

* ``nearest``: the base level's texel containing (u, v);
* ``bilinear``: the base level's four texels around (u, v), weighted by distance;
* ``trilinear``: bilinear in levels ⌊λ⌋ and ⌊λ⌋ + 1 blended by the fraction of λ, the level of
  detail of the pair (clamped to the material's levels).

A backend that accumulates the atlas gradient from many threads adds integers, not floats
(:func:`fixed_point_scale`): integer addition is associative, so the gradient is bit-identical
from run to run whatever order the threads take.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import IntEnum
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .model import torch_model

__all__ = [
    "TEXTURE_FILTERS",
    "TEXTURE_WRAPS",
    "TextureFilter",
    "TextureWrap",
    "UVMaps",
    "fixed_point_scale",
    "level_lookup",
    "mip_pyramid",
    "uv_maps",
]


class TextureFilter(IntEnum):
    """``texture_filter``: how a UV texture is looked up."""

    NEAREST = 0
    BILINEAR = 1
    TRILINEAR = 2


class TextureWrap(IntEnum):
    """``texture_wrap``: which texel a position outside [0, 1) reads."""

    REPEAT = 0  # u mod 1
    CLAMP = 1  # the edge texel


TEXTURE_FILTERS = tuple(f.name.lower() for f in TextureFilter)
TEXTURE_WRAPS = tuple(w.name.lower() for w in TextureWrap)


class UVMaps(NamedTuple):
    """A UV texture in the form every backend reads (made by :func:`uv_maps`).

    Attributes:
        uv: [B, F, 3, 2] (u, v) per face corner, in the faces' dtype.
        material: [B, F] int64, the material (image) of each face.
        atlas: [N] every material's levels, each [H_l, W_l, C] row-major, one after another.
        levels: [M, L, 3] int64: (offset into ``atlas``, height, width) of level l of material m,
            L the most levels of any material; a material's missing levels repeat its last one.
        level_count: [M] int64, the levels of each material (1 unless trilinear).
        channels: C.
        filter: a :class:`TextureFilter` code.
        wrap: a :class:`TextureWrap` code.
    """

    uv: torch.Tensor
    material: torch.Tensor
    atlas: torch.Tensor
    levels: torch.Tensor
    level_count: torch.Tensor
    channels: int
    filter: int
    wrap: int

    def with_batch(self, batch: int) -> UVMaps:
        """The maps for ``batch`` items (an item-less [1, ...] uv and material expanded)."""
        if self.uv.shape[0] == batch:
            return self
        return self._replace(uv=self.uv.expand(batch, *self.uv.shape[1:]), material=self.material.expand(batch, -1))

    def to(self, dtype: torch.dtype) -> UVMaps:
        """The maps with uv and atlas in ``dtype``."""
        return self._replace(uv=self.uv.to(dtype), atlas=self.atlas.to(dtype))


def mip_pyramid(image: torch.Tensor) -> list[torch.Tensor]:
    """The mip levels of one image [H, W, C]: the image, then each level's 2 × 2 area average
    (an odd size rounds down, the averaging windows then overlap: ``adaptive_avg_pool2d``), down
    to 1 × 1. Differentiable. Returns [H_l, W_l, C] tensors."""
    levels = [image]
    level = image.permute(2, 0, 1)[None]
    h, w = image.shape[:2]
    while h > 1 or w > 1:
        h, w = max(1, h // 2), max(1, w // 2)
        level = F.adaptive_avg_pool2d(level, (h, w))
        levels.append(level[0].permute(1, 2, 0))
    return levels


def _images(images: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        images = [images] if images.ndim == 3 else list(images.unbind(0))
    images = list(images)
    if not images:
        raise ValueError("images: expected at least one texture image [H, W, C]")
    for k, image in enumerate(images):
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"images[{k}]: expected a torch.Tensor [H, W, C], got {type(image).__name__}")
        if image.ndim != 3 or min(image.shape) < 1:
            raise ValueError(f"images[{k}]: expected a non-empty [H, W, C] image, got shape {tuple(image.shape)}")
        if not image.is_floating_point():
            raise TypeError(f"images[{k}]: expected a floating dtype (e.g. float32 in [0, 1]), got {image.dtype}")
        if image.shape[2] != images[0].shape[2]:
            raise ValueError(
                f"images[{k}]: every image needs the same channel count, got {image.shape[2]} and {images[0].shape[2]}"
            )
        if image.device != images[0].device:
            raise ValueError(f"images[{k}]: on {image.device}, images[0] on {images[0].device}")
    return images


def _code(name: str, value: str, choices: tuple[str, ...]) -> int:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return choices.index(value)


def uv_maps(
    uv: torch.Tensor,
    images: torch.Tensor | Sequence[torch.Tensor],
    material: torch.Tensor | None = None,
    *,
    texture_filter: str = "bilinear",
    texture_wrap: str = "repeat",
) -> UVMaps:
    """Pack a UV texture for the rasterizer.

    Args:
        uv: [B, F, 3, 2] or [F, 3, 2] (u, v) per face corner (origin at the image's bottom left).
        images: one [H, W, C] image, [M, H, W, C], or a sequence of M images of any sizes and
            one channel count C.
        material: [B, F] or [F] integer material of each face, in [0, M); None: all 0.
        texture_filter: 'nearest', 'bilinear' or 'trilinear' (mip-mapped).
        texture_wrap: 'repeat' or 'clamp'.

    Raises:
        ValueError / TypeError naming the argument: bad shapes, dtypes, devices, material out of range.
    """
    filter_code = _code("texture_filter", texture_filter, TEXTURE_FILTERS)
    wrap_code = _code("texture_wrap", texture_wrap, TEXTURE_WRAPS)
    images = _images(images)
    if not isinstance(uv, torch.Tensor) or not uv.is_floating_point():
        raise TypeError(f"uv: expected a floating torch.Tensor [B, F, 3, 2], got {getattr(uv, 'dtype', type(uv))}")
    if uv.ndim == 3:
        uv = uv[None]
    if uv.ndim != 4 or uv.shape[2:] != (3, 2):
        raise ValueError(f"uv: expected shape [B, F, 3, 2] or [F, 3, 2], got {tuple(uv.shape)}")
    b, f = uv.shape[:2]
    if material is None:
        material = torch.zeros(b, f, dtype=torch.int64, device=uv.device)
    if not isinstance(material, torch.Tensor) or material.is_floating_point() or material.is_complex():
        raise TypeError("material: expected an integer torch.Tensor [B, F] or [F]")
    if material.ndim == 1:
        material = material[None]
    if material.ndim != 2 or material.shape[1] != f or material.shape[0] not in (1, b):
        raise ValueError(f"material: expected shape [{b}, {f}] or [{f}], got {tuple(material.shape)}")
    material = material.to(device=uv.device, dtype=torch.int64).expand(b, f)
    if material.numel() and (int(material.min()) < 0 or int(material.max()) >= len(images)):
        raise ValueError(
            f"material: expected indices in [0, {len(images)}) (one per image), got "
            f"[{int(material.min())}, {int(material.max())}]"
        )
    for k, image in enumerate(images):
        if image.device != uv.device:
            raise ValueError(f"images[{k}]: on {image.device}, uv on {uv.device}")
    pyramids = [mip_pyramid(im) if filter_code == TextureFilter.TRILINEAR else [im] for im in images]
    most = max(len(p) for p in pyramids)
    parts, table, offset = [], [], 0
    for pyramid in pyramids:
        rows = []
        for level in pyramid:
            rows.append((offset, level.shape[0], level.shape[1]))
            parts.append(level.reshape(-1))
            offset += level.numel()
        rows += [rows[-1]] * (most - len(rows))
        table.append(rows)
    return UVMaps(
        uv=uv,
        material=material,
        atlas=torch.cat(parts) if len(parts) > 1 else parts[0],
        levels=torch.tensor(table, dtype=torch.int64, device=uv.device),
        level_count=torch.tensor([len(p) for p in pyramids], dtype=torch.int64, device=uv.device),
        channels=int(images[0].shape[2]),
        filter=filter_code,
        wrap=wrap_code,
    )


FIXED_POINT_BITS = 61
"""The atlas gradient's integer accumulators hold sums of magnitude up to 2^61 (int64 with room for
rounding): :func:`fixed_point_scale`."""


def fixed_point_scale(bound: float) -> float:
    """The power of two s by which a backend scales each atlas-gradient contribution before
    rounding it to an int64 and adding it, for contributions whose absolute values sum to at most
    ``bound`` over the whole call (the sum of |upstream gradient| over the UV channels: each
    pair's lookup weights sum to at most 1, and so do a pixel's pair weights). Then no
    accumulator exceeds 2^61, and each texel's gradient is off by at most n/(2·s) for n
    contributions, i.e. within n·2^-62·bound: far below float64 rounding of the total."""
    if not math.isfinite(bound):
        raise ValueError(f"the UV channels' upstream gradient is not finite (sum of magnitudes {bound})")
    if bound <= 0:
        return 1.0
    return math.ldexp(1.0, FIXED_POINT_BITS - math.frexp(bound)[1])


def _texels(
    maps: UVMaps, offset: torch.Tensor, width: torch.Tensor, col: torch.Tensor, row: torch.Tensor
) -> torch.Tensor:
    """[N, C] texels (col, row) of the levels starting at ``offset`` (all [N] long)."""
    c = maps.channels
    start = offset + (row * width + col) * c
    return maps.atlas[start[:, None] + torch.arange(c, device=start.device)]


def level_lookup(
    maps: UVMaps, material: torch.Tensor, level: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """[N, C]: the lookup of the pairs' (u, v) [N] in level ``level`` [N] (long) of their
    material [N], nearest or bilinear (``maps.filter``) under ``maps.wrap``, with the model's
    texel and wrap rules (:mod:`softras.raster.model.texture`), differentiable in (u, v) and the
    atlas. The reference backend's lookup, also used to sample a texture outside rendering."""
    tm = torch_model()
    offset, height, width = maps.levels[material, level].unbind(1)
    hf, wf = height.to(u.dtype), width.to(u.dtype)
    repeat = 1.0 if maps.wrap == TextureWrap.REPEAT else 0.0
    x, y = tm["texel_xy"](u, v, wf, hf)

    def wrapped(i: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        return tm["wrap_index"](i, size, repeat).long()

    if maps.filter == TextureFilter.NEAREST:
        with torch.no_grad():
            col, row = wrapped(torch.floor(x + 0.5), wf), wrapped(torch.floor(y + 0.5), hf)
        return _texels(maps, offset, width, col, row)
    with torch.no_grad():
        x0, y0 = torch.floor(x), torch.floor(y)
        c0, c1 = wrapped(x0, wf), wrapped(x0 + 1, wf)
        r0, r1 = wrapped(y0, hf), wrapped(y0 + 1, hf)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = (1 - fx) * _texels(maps, offset, width, c0, r0) + fx * _texels(maps, offset, width, c1, r0)
    bottom = (1 - fx) * _texels(maps, offset, width, c0, r1) + fx * _texels(maps, offset, width, c1, r1)
    return (1 - fy) * top + fy * bottom
