"""Up-front memory bounds: refuse a request the machine cannot hold before allocating it.

:func:`check_raster_request` estimates what one rasterization needs (output images, per-pixel
kernel state, per-face data, the (face, tile) bins with their gradient slots, the reference
backend's pair chunks, and the backward's gradients); :func:`check_texels` what a surface
texture of ``texture_res`` needs. When the estimate exceeds the memory available (``MemAvailable``
of ``/proc/meminfo``, capped by a cgroup limit, or free GPU memory for CUDA tensors), they raise
:class:`RequestTooLargeError` naming the argument, the estimate and what is available.

Set ``SOFTRAS_ALLOW_LARGE=1`` to skip the check (the request may then fail in the allocator or
make the machine swap). When the available memory cannot be read, nothing is refused.
The per-pixel and per-entry constants were measured on the ``cpu`` backend (peak RSS of forward
and backward); estimates are meant to be right within a factor of about 1.5.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

__all__ = [
    "ALLOW_LARGE_ENV",
    "RequestTooLargeError",
    "available_memory",
    "check_raster_request",
    "check_texels",
    "estimate_raster_bytes",
]

ALLOW_LARGE_ENV = "SOFTRAS_ALLOW_LARGE"
#: Screen tile size of each backend's face binning (entries = faces × tiles they touch).
_TILES = {"cpu": 32, "warp": 8, "cuda": 8}
_PIXEL_STATE = 24  # bytes per pixel of kernel state kept for the backward (sums, maxima, products)
_FACE_STATE = 160  # bytes per face: inverse matrices, boxes, pixel ranges, flags
_ENTRY_FWD = 16  # bytes per (face, tile) bin entry: tile lists and their offsets
_ENTRY_GRAD = 18 * 8  # gradient slot of an entry (float64), plus 3·8 bytes per texel
_PAIR_BYTES = 800  # reference backend: bytes per (pixel, face) pair of a chunk (one chunk alive)
_REFERENCE_MAX_PAIRS = 1 << 20
_ALWAYS_FITS = 256 * 2**20  # requests below this are not checked against the free memory


class RequestTooLargeError(MemoryError, ValueError):
    """A request needs more memory than is available (a ``ValueError`` too, for one-line CLI errors)."""


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory(device: torch.device | None = None) -> int | None:
    """Bytes that can still be allocated on ``device`` (CPU: RAM), or ``None`` when unknown."""
    if device is not None and device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
        except (RuntimeError, AssertionError):
            return None
    if device is not None and device.type not in ("cpu", "cuda"):
        return None
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(found) if found else None


def _allowed() -> bool:
    return os.environ.get(ALLOW_LARGE_ENV, "") not in ("", "0")


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n < 2**30 else f"{n / 2**30:,.1f} GiB"


def _refuse(argument: str, what: str, need: float, have: int) -> None:
    raise RequestTooLargeError(
        f"{argument}: {what} needs about {_mb(need)}, but only {_mb(have)} is available "
        f"(set {ALLOW_LARGE_ENV}=1 to try anyway)"
    )


def _bin_counts(face_vertices: torch.Tensor, height: int, width: int, radius: float, tile: int) -> tuple[int, int]:
    """(face, tile) entries and (pixel, face) box pairs of the grown screen boxes, clipped to the image."""
    xy = face_vertices.detach()[..., :2].to(torch.float64)
    lo, hi = xy.amin(dim=2) - radius, xy.amax(dim=2) + radius  # [B, F, 2] in NDC
    size = torch.tensor([width, height], dtype=torch.float64, device=xy.device)
    # NDC -> pixel index (row direction does not change the counts)
    p0 = ((lo + 1) * size / 2).floor().clamp(min=0)
    p1 = ((hi + 1) * size / 2).ceil().clamp(max=size)
    extent = (p1 - p0).clamp(min=0)
    pairs = float((extent[..., 0] * extent[..., 1]).sum())
    t0, t1 = (p0 / tile).floor(), (p1 / tile).ceil()
    tiles = ((t1 - t0).clamp(min=0) * (extent > 0)).prod(dim=-1)
    return int(tiles.sum()), int(min(pairs, 2**62))


def estimate_raster_bytes(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    height: int,
    width: int,
    cull_radius: float,
    backend: str,
    requires_grad: bool,
) -> dict[str, float]:
    """Bytes a rasterization needs, by argument (``'image_size'``, ``'face_vertices'``, ``'textures'``), plus
    ``'chunk'``: the reference backend's working set of (pixel, face) pairs, bounded by its chunk size.

    Args:
        face_vertices: [B, F, 3, 3] screen-space triangles (only their x, y boxes are read).
        textures: [B, F, T, 3] texels or per-corner colours.
        height, width: output size in pixels; cull_radius: √θ of the settings.
        backend: its name (``'reference'`` counts pair chunks, the others (face, tile) bins).
        requires_grad: include the backward's buffers.
    """
    b, f = face_vertices.shape[:2]
    texels = textures.shape[2]
    item = face_vertices.element_size()
    grad = 2 if requires_grad else 1
    pixels = b * height * width
    image = pixels * (4 * item * grad + _PIXEL_STATE + (8 if requires_grad else 0))
    faces = b * f * (_FACE_STATE + (9 + 3 * texels) * item * (grad - 1))
    tex = b * f * texels * 3 * item * (grad - 1)
    chunk = 0
    if backend == "reference":
        _, pairs = _bin_counts(face_vertices, height, width, cull_radius, 1)
        chunk = min(pairs, _REFERENCE_MAX_PAIRS) * _PAIR_BYTES * grad
    else:
        entries, _ = _bin_counts(face_vertices, height, width, cull_radius, _TILES.get(backend, 32))
        per_entry = _ENTRY_FWD + ((_ENTRY_GRAD + 24 * texels) if requires_grad else 0)
        faces += entries * per_entry
    return {"image_size": float(image), "face_vertices": float(faces), "textures": float(tex), "chunk": float(chunk)}


def check_raster_request(
    face_vertices: torch.Tensor,
    textures: torch.Tensor,
    height: int,
    width: int,
    cull_radius: float,
    backend: str,
) -> None:
    """Raise :class:`RequestTooLargeError` when a rasterization would not fit in memory.

    The error names the argument that needs the most (``image_size``, ``face_vertices`` or
    ``textures``). Skipped with ``SOFTRAS_ALLOW_LARGE=1`` or when the free memory is unknown.
    """
    if _allowed():
        return
    # an upper bound first: most calls are far below any limit and need neither /proc nor a bin count
    b, f = face_vertices.shape[:2]
    tiles = math.ceil(height / 8) * math.ceil(width / 8)
    per_entry = _ENTRY_FWD + _ENTRY_GRAD + 24 * textures.shape[2]
    rough = b * height * width * 96 + b * f * (400 + 48 * textures.shape[2])
    rough += 2 * _REFERENCE_MAX_PAIRS * _PAIR_BYTES if backend == "reference" else b * f * tiles * per_entry
    if rough < _ALWAYS_FITS:
        return
    have = available_memory(face_vertices.device)
    if have is None or rough < have:
        return
    needs = estimate_raster_bytes(
        face_vertices, textures, height, width, cull_radius, backend,
        torch.is_grad_enabled() and (face_vertices.requires_grad or textures.requires_grad),
    )  # fmt: skip
    total = sum(needs.values())
    if total > have:
        argument = max(("image_size", "face_vertices", "textures"), key=needs.__getitem__)
        what = f"rendering {b}×{height}×{width} pixels, {f} faces and {textures.shape[2]} texels per face"
        _refuse(argument, what, total, have)


def check_texels(faces: int, texture_res: int, argument: str = "texture_res") -> None:
    """Refuse a ``[faces, texture_res², 3]`` float32 texture (and its sampling temporaries) that would not fit."""
    if _allowed():
        return
    have = available_memory()
    need = faces * texture_res**2 * 3 * 4 * 3  # the texels, the sampled copy and the uv grid
    if have is not None and need > have:
        _refuse(argument, f"{faces} faces × {texture_res}² texels", need, have)
