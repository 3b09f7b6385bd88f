"""Mesh regularisers and silhouette IoU losses.

API-compatible with ``soft_renderer.losses`` of the original SoftRas:

* :class:`LaplacianLoss` -- uniform (umbrella) Laplacian smoothness, stored as a sparse matrix
  (the original built a dense ``V x V`` matrix, which does not fit in memory for large meshes).
* :class:`FlattenLoss` -- the "flatten" regulariser of the paper, penalising sharp dihedral angles.
* :func:`mesh_volume` -- signed volume of closed meshes (a minimal-volume prior; not in the original).
* :func:`iou`, :func:`neg_iou_loss`, :func:`hard_iou` -- silhouette IoU between alpha maps, as in
  the original ``examples/recon/losses.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from softras._precision import no_autocast
from softras._validation import as_float_tensor, as_index_tensor, check_positive, check_shape
from softras.functional.geometry import face_vertices

__all__ = [
    "FlattenLoss",
    "LaplacianLoss",
    "hard_iou",
    "iou",
    "mesh_volume",
    "neg_iou_loss",
]


def _faces_to_numpy(faces: object, num_vertices: int | None = None) -> np.ndarray:
    """Validate ``faces`` ([F, 3] or [1, F, 3], tensor/ndarray/sequence) and return int64 [F, 3]."""
    f = as_index_tensor("faces", faces)
    if f.ndim == 3 and f.shape[0] == 1:
        f = f[0]
    check_shape("faces", f, ("F", 3))
    f_np = f.detach().cpu().numpy().astype(np.int64, copy=False)
    if f_np.size and f_np.min() < 0:
        raise ValueError(f"faces: vertex indices must be >= 0, got minimum {int(f_np.min())}")
    if num_vertices is not None and f_np.size and f_np.max() >= num_vertices:
        raise ValueError(
            f"faces: vertex index {int(f_np.max())} out of range for {num_vertices} vertices"
        )
    return f_np


def _unique_edges(faces: np.ndarray) -> np.ndarray:
    """Undirected edges of a triangle list, each once: int64 [E, 2] with ``e[:, 0] < e[:, 1]``,
    sorted lexicographically. Degenerate pairs (a, a) are dropped."""
    pairs = np.sort(faces[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2), axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    n = int(pairs.max()) + 1
    keys = np.unique(pairs[:, 0] * n + pairs[:, 1])  # sorted, so the edges come out sorted
    return np.stack([keys // n, keys % n], axis=1)


class LaplacianLoss(nn.Module):
    """Uniform Laplacian smoothness loss, ``||L x||^2`` per batch item.

    ``L = I - D^-1 A`` where ``A`` is the (0/1, symmetric) vertex adjacency of ``faces`` -- an edge
    shared by several faces counts once -- and ``D`` the vertex degree. This is exactly the
    original's dense matrix (``-1`` per neighbour, degree on the diagonal, every row divided by its
    diagonal), but stored sparsely: only the ``2E`` off-diagonal index pairs and the degrees are
    kept, so a 40k-vertex mesh needs a few MB instead of ~6.7 GB.

    Isolated vertices (degree 0; a NaN row in the original) get an all-zero row: they are not
    penalised.

    Args:
        vertex: template vertices [V, 3] (only ``V`` is used), tensor or ndarray.
        faces: triangles [F, 3] (or [1, F, 3]), integer tensor or ndarray.
        average: if True, ``forward`` returns ``loss.sum() / B`` (a scalar) instead of [B].

    Buffers (follow ``.to(device)``): ``edge_rows``/``edge_cols`` (int64 [2E], the directed
    off-diagonal entries, row-major sorted) and ``degree`` (int64 [V]).
    """

    edge_rows: torch.Tensor
    edge_cols: torch.Tensor
    degree: torch.Tensor

    def __init__(self, vertex: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray,
                 average: bool = False) -> None:
        super().__init__()
        v = as_float_tensor("vertex", vertex)
        if v.ndim == 3 and v.shape[0] == 1:
            v = v[0]
        check_shape("vertex", v, ("V", 3))
        self.nv = int(v.shape[0])
        f = _faces_to_numpy(faces, self.nv)
        self.nf = int(f.shape[0])
        self.average = bool(average)

        edges = _unique_edges(f)  # [E, 2], each undirected edge once
        rows = np.concatenate([edges[:, 0], edges[:, 1]])
        cols = np.concatenate([edges[:, 1], edges[:, 0]])
        order = np.lexsort((cols, rows))  # row-major order, i.e. coalesced COO order
        rows, cols = rows[order], cols[order]
        degree = np.bincount(rows, minlength=self.nv)

        self.register_buffer("edge_rows", torch.from_numpy(np.ascontiguousarray(rows)))
        self.register_buffer("edge_cols", torch.from_numpy(np.ascontiguousarray(cols)))
        self.register_buffer("degree", torch.from_numpy(degree.astype(np.int64)))

    @property
    def nnz(self) -> int:
        """Number of stored non-zeros of ``L`` (off-diagonal entries plus non-zero diagonal)."""
        return int(self.edge_rows.numel()) + int((self.degree > 0).sum())

    @property
    def laplacian(self) -> torch.Tensor:
        """The Laplacian as a coalesced float32 sparse COO tensor [V, V] (diagonal included).

        Built on demand from the buffers; ``loss.laplacian.to_dense()`` is the original's matrix.
        """
        dev, dtype = self.edge_rows.device, torch.float32
        inv = 1.0 / self.degree.clamp(min=1).to(dtype)
        diag = torch.nonzero(self.degree > 0).flatten()
        idx = torch.cat([torch.stack([self.edge_rows, self.edge_cols]), diag.expand(2, -1)], 1)
        vals = torch.cat([-inv[self.edge_rows], torch.ones(diag.numel(), dtype=dtype, device=dev)])
        return torch.sparse_coo_tensor(
            idx, vals, (self.nv, self.nv), check_invariants=False
        ).coalesce()

    def _apply_laplacian(self, x: torch.Tensor) -> torch.Tensor:
        """``L @ x[b]`` for every batch item: x [B, V, C] -> [B, V, C]."""
        b, nv, c = x.shape
        rows = self.edge_rows.to(x.device)
        cols = self.edge_cols.to(x.device)
        deg = self.degree.to(x.device)
        inv = 1.0 / deg.clamp(min=1).to(x.dtype)  # [V]
        if x.device.type in ("cpu", "cuda"):
            # adjacency A as sparse COO (already coalesced by construction), A @ [V, B*C]
            adj = torch.sparse_coo_tensor(
                torch.stack([rows, cols]), torch.ones_like(rows, dtype=x.dtype), (nv, nv),
                is_coalesced=True, check_invariants=False,
            )
            xt = x.permute(1, 0, 2).reshape(nv, b * c)
            with no_autocast(x.device):  # autocast would lower the product to float16
                ax = torch.sparse.mm(adj, xt).reshape(nv, b, c).permute(1, 0, 2)
        else:  # devices without sparse kernels (e.g. MPS): scatter-add over the edge list
            ax = torch.zeros_like(x).index_add(1, rows, x[:, cols])
        keep = (deg > 0).to(x.dtype)[None, :, None]
        return x * keep - ax * inv[None, :, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Laplacian loss of vertices ``x`` [B, V, 3] -> [B] (or a scalar if ``average``)."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x: expected a floating tensor [B, {self.nv}, 3], got {type(x)}")
        check_shape("x", x, ("B", self.nv, None))
        lx = self._apply_laplacian(x)
        loss = lx.pow(2).sum(dim=(1, 2))
        if self.average:
            return loss.sum() / x.shape[0]
        return loss


def _flatten_pairs(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every interior edge (exactly two adjacent faces) return (v0, v1, v2, v3).

    ``v0 < v1`` are the edge ends; ``v2``/``v3`` the vertices opposite the edge in the
    lower-/higher-indexed adjacent face. Boundary edges (one face) are skipped; an edge shared by
    more than two faces raises ``ValueError``.
    """
    nf = faces.shape[0]
    if nf == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    if np.any((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
              | (faces[:, 2] == faces[:, 0])):
        bad = int(np.flatnonzero((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
                                 | (faces[:, 2] == faces[:, 0]))[0])
        raise ValueError(f"faces: face {bad} {faces[bad].tolist()} repeats a vertex index")
    # the three edges of each face, face-major, and the vertex opposite each edge
    ends = np.sort(faces[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2), axis=1)  # [3F, 2]
    opposite = faces[:, [2, 0, 1]].reshape(-1)  # [3F]
    nv = int(faces.max()) + 1
    keys = ends[:, 0] * nv + ends[:, 1]
    order = np.argsort(keys, kind="stable")  # stable: equal keys stay in face order
    keys_sorted = keys[order]
    starts = np.flatnonzero(np.r_[True, keys_sorted[1:] != keys_sorted[:-1]])
    counts = np.diff(np.r_[starts, keys_sorted.size])
    if np.any(counts > 2):
        n_bad = int((counts > 2).sum())
        first = order[starts[np.argmax(counts > 2)]]
        e = ends[first].tolist()
        raise ValueError(
            f"faces: mesh is not manifold: {n_bad} edge(s) are shared by more than 2 faces "
            f"(e.g. edge {e} by {int(counts.max())} faces); FlattenLoss needs each edge to "
            "border at most 2 faces"
        )
    interior = starts[counts == 2]
    first, second = order[interior], order[interior + 1]
    return ends[first, 0], ends[first, 1], opposite[first], opposite[second]


class FlattenLoss(nn.Module):
    """Flatten loss of the SoftRas paper: ``sum_e (cos theta_e + 1)^2`` over interior edges.

    For an interior edge ``(v0, v1)`` with opposite vertices ``v2``, ``v3`` in its two adjacent
    faces, ``theta_e`` is the angle between the components of ``v2 - v0`` and ``v3 - v0``
    perpendicular to the edge (``pi`` for a flat surface, so the loss is ~0 there), computed with
    the same ``eps`` regularisation as the original.

    Differences from the original: the edge -> opposite-vertex table is built vectorised
    (``O(F log F)``, not a Python loop over faces per edge) from all three edges of every face;
    boundary edges (one adjacent face) are skipped, and an edge with more than two adjacent faces
    raises ``ValueError`` (the original silently mis-paired such edges). Faces that repeat a
    vertex index also raise ``ValueError``.

    Args:
        faces: triangles [F, 3] (or [1, F, 3]), integer tensor or ndarray.
        average: if True, ``forward`` returns ``loss.sum() / B`` (a scalar) instead of [B].

    Buffers: ``v0s``, ``v1s``, ``v2s``, ``v3s`` (int64 [E_interior]).
    """

    v0s: torch.Tensor
    v1s: torch.Tensor
    v2s: torch.Tensor
    v3s: torch.Tensor

    def __init__(self, faces: torch.Tensor | np.ndarray, average: bool = False) -> None:
        super().__init__()
        f = _faces_to_numpy(faces)
        self.nf = int(f.shape[0])
        self.average = bool(average)
        v0, v1, v2, v3 = _flatten_pairs(f)
        self._max_index = int(max(a.max() for a in (v0, v1, v2, v3))) if v0.size else -1
        for name, arr in (("v0s", v0), ("v1s", v1), ("v2s", v2), ("v3s", v3)):
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(arr, np.int64)))

    def forward(self, vertices: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """Flatten loss of ``vertices`` [B, V, 3] -> [B] (or a scalar if ``average``)."""
        if not isinstance(vertices, torch.Tensor) or not vertices.is_floating_point():
            raise TypeError(f"vertices: expected a floating tensor [B, V, 3], got {type(vertices)}")
        check_shape("vertices", vertices, ("B", "V", 3))
        eps = check_positive("eps", eps, allow_zero=True)
        if self._max_index >= vertices.shape[1]:
            raise ValueError(
                f"vertices: got {vertices.shape[1]} vertices, but the faces this loss was built "
                f"with use vertex index {self._max_index}"
            )
        dev = vertices.device
        p0 = vertices[:, self.v0s.to(dev)]
        edge = vertices[:, self.v1s.to(dev)] - p0  # [B, E, 3]
        edge_sq = edge.pow(2).sum(-1)
        edge_len = (edge_sq + eps).sqrt()

        def perpendicular(opp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Component of ``opp - v0`` perpendicular to the edge, and its (regularised) length."""
            side = opp - p0
            side_len = (side.pow(2).sum(-1) + eps).sqrt()
            dot = (edge * side).sum(-1)
            cos = dot / (edge_len * side_len + eps)
            sin = (1.0 - cos.pow(2) + eps).sqrt()
            perp = side - edge * (dot / (edge_sq + eps)).unsqueeze(-1)
            return perp, side_len * sin

        perp_a, len_a = perpendicular(vertices[:, self.v2s.to(dev)])
        perp_b, len_b = perpendicular(vertices[:, self.v3s.to(dev)])
        cos = (perp_a * perp_b).sum(-1) / (len_a * len_b + eps)
        loss = (cos + 1.0).pow(2).sum(-1)
        if self.average:
            return loss.sum() / vertices.shape[0]
        return loss


def mesh_volume(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Signed volume of closed triangle meshes (divergence theorem), differentiable.

    ``V = sum_f v0 . (v1 x v2) / 6``: positive for a closed mesh whose faces wind
    counter-clockwise seen from outside (the convention of :func:`softras.shapes.icosphere`),
    exact for any closed mesh, whatever the origin. For an open mesh the value depends on the
    origin and is not a volume.

    Args:
        vertices: [B, V, 3] floating.
        faces: [F, 3] or [B, F, 3] integer indices into each mesh's vertices.

    Returns:
        [B] signed volumes, dtype and device of ``vertices``.
    """
    v = as_float_tensor("vertices", vertices)
    check_shape("vertices", v, ("B", "V", 3))
    f = as_index_tensor("faces", faces).to(v.device)
    if f.ndim == 2:
        f = f[None].expand(v.shape[0], -1, -1)
    v0, v1, v2 = face_vertices(v, f).unbind(2)  # each [B, F, 3]; checks the faces' shape and range
    return (v0 * torch.cross(v1, v2, dim=-1)).sum((1, 2)) / 6


def _check_alpha_pair(predict: torch.Tensor, target: torch.Tensor) -> None:
    for name, t in (("predict", predict), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor [B, H, W] or [B, 1, H, W], got {type(t)}")
        if t.ndim not in (3, 4) or (t.ndim == 4 and t.shape[1] != 1):
            raise ValueError(f"{name}: expected shape [B, H, W] or [B, 1, H, W], got "
                             f"{tuple(t.shape)}")
    if predict.shape[0] != target.shape[0] or predict.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"predict and target must have the same batch size and image size, got "
            f"{tuple(predict.shape)} and {tuple(target.shape)}"
        )


def _flat_alpha(t: torch.Tensor) -> torch.Tensor:
    t = t.reshape(t.shape[0], -1)
    return t if t.is_floating_point() else t.float()


def iou(predict: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Soft IoU of alpha maps, per item.

    ``sum(p * t) / (sum(p + t - p * t) + eps)`` for ``predict``/``target`` [B, H, W] or
    [B, 1, H, W] with values in [0, 1] -> [B]. (The original recon example returned the batch
    mean; use ``iou(...).mean()`` for that.)
    """
    _check_alpha_pair(predict, target)
    eps = check_positive("eps", eps, allow_zero=True)
    p, t = _flat_alpha(predict), _flat_alpha(target)
    intersect = (p * t).sum(1)
    union = (p + t - p * t).sum(1) + eps
    return intersect / union


def neg_iou_loss(predict: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Silhouette loss of the paper: ``1 - mean_b iou(predict, target)`` (a scalar)."""
    return 1.0 - iou(predict, target).mean()


def hard_iou(predict: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Binary IoU of alpha maps thresholded at ``threshold`` (``> threshold`` is inside) -> [B].

    Items where both masks are empty get IoU 1. Not differentiable (a metric).
    """
    _check_alpha_pair(predict, target)
    threshold = float(threshold)
    p = _flat_alpha(predict) > threshold
    t = _flat_alpha(target) > threshold
    inter = (p & t).sum(1)
    union = (p | t).sum(1)
    out = inter.double() / union.clamp(min=1).double()
    out = torch.where(union == 0, torch.ones_like(out), out)
    dtype = predict.dtype if predict.is_floating_point() else torch.float32
    return out.to(dtype)
