"""The contract's pixel-range rule and binning compiled for the ``cpu`` backend (Numba).

:func:`softras.raster.contract.pixel_ranges` and :func:`~softras.raster.contract.bin_faces` are
the definition. They are some thirty element-wise PyTorch passes over the B·F faces and the E
entries; on many small faces (W1: 256 × 1280 faces at 64²) that costs as much as rasterizing
them, so the ``cpu`` backend runs this fused, parallel form of the same rule instead.
``tests/test_raster_cpu_outputs.py`` asserts that both give identical tensors (ranges, front flags,
tile lists, face starts, entry slots) on random scenes, float32 and float64, any tile size.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._jit_cache import configure_numba_cache
from .contract import DET_EPS

__all__ = ["bin_faces", "face_range"]

_JIT = {"cache": configure_numba_cache(), "nogil": True, "error_model": "numpy"}


@njit(inline="always", **_JIT)
def face_range(fv, b, f, g, xs, ys, ranges, front):  # pragma: no cover - compiled
    """Face (b, f)'s exact pixel range and front flag (contract ``pixel_ranges``: same operations,
    in fv's dtype; a face without area gets none). g: √θ in fv's dtype; xs: [W], ys: [H] (top row
    first) pixel centres in fv's dtype. Writes ranges[b, f] (c0, c1, r0, r1; empty: 0, -1, 0, -1)
    and front[b, f]."""
    h, w = ys.shape[0], xs.shape[0]
    x0, y0 = fv[b, f, 0, 0], fv[b, f, 0, 1]
    x1, y1 = fv[b, f, 1, 0], fv[b, f, 1, 1]
    x2, y2 = fv[b, f, 2, 0], fv[b, f, 2, 1]
    front[b, f] = (y2 - y0) * (x1 - x0) < (y1 - y0) * (x2 - x0)
    xmin = min(min(x0, x1), x2) - g
    xmax = max(max(x0, x1), x2) + g
    ymin = min(min(y0, y1), y2) - g
    ymax = max(max(y0, y1), y2) + g
    # A conservative guess in float64, then exact: the centres inside the box in fv's dtype.
    c0 = math.ceil((np.float64(xmin) * w + w - 1) / 2) - 1
    c1 = math.floor((np.float64(xmax) * w + w - 1) / 2) + 1
    r0 = math.ceil((h - 1 - np.float64(ymax) * h) / 2) - 1
    r1 = math.floor((h - 1 - np.float64(ymin) * h) / 2) + 1
    c0 = min(max(c0, 0), w)
    c1 = min(max(c1, -1), w - 1)
    r0 = min(max(r0, 0), h)
    r1 = min(max(r1, -1), h - 1)
    while c0 <= c1 and xs[c0] < xmin:
        c0 += 1
    while c1 >= c0 and xs[c1] > xmax:
        c1 -= 1
    while r0 <= r1 and ys[r0] > ymax:
        r0 += 1
    while r1 >= r0 and ys[r1] < ymin:
        r1 -= 1
    dx0, dy0 = np.float64(x0), np.float64(y0)
    dx1, dy1 = np.float64(x1), np.float64(y1)
    dx2, dy2 = np.float64(x2), np.float64(y2)
    det = dx2 * (dy0 - dy1) + dx0 * (dy1 - dy2) + dx1 * (dy2 - dy0)
    empty = c1 < c0 or r1 < r0 or not abs(det) >= DET_EPS  # contract.has_area
    ranges[b, f, 0] = 0 if empty else c0
    ranges[b, f, 1] = -1 if empty else c1
    ranges[b, f, 2] = 0 if empty else r0
    ranges[b, f, 3] = -1 if empty else r1


def bin_faces(ranges: np.ndarray, tile: int, ntx: int, nty: int) -> tuple[np.ndarray, ...]:
    """Contract ``bin_faces`` on [B, F, 4] int64 ranges: (tile_start [B·T + 1], tile_faces [E],
    face_start [B·F + 1], entry_slot [E]), int64, in the contract's ``Bins`` layout.

    The loops run over the batch items in parallel; a single image is binned on this thread,
    which saves the two parallel launches (~0.2 ms each) that could give it nothing.
    """
    kernel = _bin_faces_parallel if ranges.shape[0] > 1 else _bin_faces_serial
    return kernel(ranges, tile, ntx, nty)


def _make_bin_faces(parallel: bool):
    """The binning kernel, its loops over the batch items parallel or not. ``batch_loop`` is a
    closure constant of the kernel, which also keeps the two compiled versions apart in Numba's
    on-disk cache (its key hashes the closure's values, not the decorator's options)."""
    batch_loop = prange if parallel else range

    @njit(parallel=parallel, **_JIT)
    def kernel(ranges, tile, ntx, nty):  # pragma: no cover - compiled
        nb, nf = ranges.shape[0], ranges.shape[1]
        nt = ntx * nty
        counts = np.zeros(nb * nt + 1, dtype=np.int64)
        face_counts = np.zeros(nb * nf + 1, dtype=np.int64)
        for b in batch_loop(nb):
            for f in range(nf):
                c0, c1, r0, r1 = ranges[b, f, 0], ranges[b, f, 1], ranges[b, f, 2], ranges[b, f, 3]
                if c1 < c0:
                    continue
                tx0, tx1 = c0 // tile, c1 // tile
                ty0, ty1 = r0 // tile, r1 // tile
                face_counts[b * nf + f + 1] = (ty1 - ty0 + 1) * (tx1 - tx0 + 1)
                for ty in range(ty0, ty1 + 1):
                    for tx in range(tx0, tx1 + 1):
                        counts[b * nt + ty * ntx + tx + 1] += 1
        tile_start = np.cumsum(counts)
        face_start = np.cumsum(face_counts)
        tile_faces = np.empty(tile_start[-1], dtype=np.int64)
        entry_slot = np.empty(tile_start[-1], dtype=np.int64)
        for b in batch_loop(nb):
            cursor = tile_start[b * nt : (b + 1) * nt].copy()
            for f in range(nf):
                c0, c1, r0, r1 = ranges[b, f, 0], ranges[b, f, 1], ranges[b, f, 2], ranges[b, f, 3]
                if c1 < c0:
                    continue
                k = face_start[b * nf + f]
                for ty in range(r0 // tile, r1 // tile + 1):
                    for tx in range(c0 // tile, c1 // tile + 1):
                        t = ty * ntx + tx
                        tile_faces[cursor[t]] = f
                        entry_slot[k] = cursor[t]
                        cursor[t] += 1
                        k += 1
        return tile_start, tile_faces, face_start, entry_slot

    return kernel


_bin_faces_parallel = _make_bin_faces(True)
_bin_faces_serial = _make_bin_faces(False)
