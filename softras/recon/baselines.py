"""Non-learned baselines for the reconstruction table.

* :class:`RetrievalBaseline` -- the paper's *retrieval* baseline: embed the query image and every
  training image (all 24 views of every training object) in a fixed feature space, take the
  nearest training image, and answer with that object's voxels. The feature is a fixed Gaussian
  random projection of the 32×32 area-downsampled RGBA image (a Johnson–Lindenstrauss sketch of
  the pixels; ``dim=0`` uses the raw downsampled pixels). Given the queries' view indices, it
  searches only the training images of the same view (the counterpart of methods that use the
  input's camera, such as :mod:`softras.recon.refine`).
* :class:`MeanShapeBaseline` -- the *mean shape* of each class: the mean training occupancy of the
  class, thresholded at the level that maximises the mean IoU on the training voxels. It is given
  the query's class label (an oracle the other methods do not get), so it is an upper bound for
  any class-conditional constant answer.

Both predict voxels [B, R, R, R] directly in the dataset's frame; :func:`softras.metrics.iou_3d`
scores them like the network's voxelized meshes.

:func:`visual_hull` is not a baseline but a reference: the largest shape consistent with all 24
ground-truth silhouettes of an object (an oracle that sees every view). A model trained only with
silhouettes from these views has no signal to carve anything the hull keeps (e.g. the space under
a table top, never seen empty from 30° elevation), so the hull's IoU indicates what silhouette
consistency alone can reach.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from softras.metrics import iou_3d

from .nmr import VIEWING_ANGLE, NMRDataset, viewpoints

__all__ = ["MeanShapeBaseline", "RetrievalBaseline", "image_features", "visual_hull"]


def image_features(images: torch.Tensor, projection: torch.Tensor | None, size: int = 32) -> torch.Tensor:
    """Features of images [B, 4, S, S] in [0, 1] -> float32 [B, D] (L2-comparable).

    The images are area-downsampled to ``size``², flattened, and multiplied by ``projection``
    [4 * size², D] when given.
    """
    x = F.adaptive_avg_pool2d(images.float(), size).flatten(1)
    return x @ projection if projection is not None else x


class RetrievalBaseline:
    """Nearest training image -> its object's voxels.

    Args:
        train: the training split.
        dim: feature dimension of the random projection (0: raw 32² RGBA pixels).
        seed: seed of the projection.
        batch_size: images embedded at once.
    """

    def __init__(self, train: NMRDataset, dim: int = 128, seed: int = 0, batch_size: int = 512) -> None:
        self.size = 32
        d_in = 4 * self.size * self.size
        g = torch.Generator().manual_seed(seed)
        self.projection = torch.randn(d_in, dim, generator=g) / dim**0.5 if dim > 0 else None
        feats, owners, views = [], [], []
        for cid in train.class_ids:
            imgs = train.images[cid]
            n = imgs.shape[0]
            flat = imgs.reshape(n * imgs.shape[1], *imgs.shape[2:])
            for s in range(0, flat.shape[0], batch_size):
                chunk = torch.from_numpy(np.asarray(flat[s : s + batch_size], np.float32) / 255.0)
                feats.append(image_features(chunk, self.projection, self.size))
            owners.append(train.offsets[cid] + np.repeat(np.arange(n), imgs.shape[1]))
            views.append(np.tile(np.arange(imgs.shape[1]), n))
        self.features = torch.cat(feats)  # [N_train * 24, D]
        self.sq_norms = self.features.pow(2).sum(1)
        self.owner = torch.from_numpy(np.concatenate(owners))
        self.view = torch.from_numpy(np.concatenate(views))  # view index of each training image
        self.train = train

    def nearest(self, images: torch.Tensor, view_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Global training-object index [B] of the nearest training image of each query [B, 4, S, S]
        (among the training images of the query's view when ``view_ids`` [B] is given)."""
        q = image_features(images, self.projection, self.size)
        dist = q.pow(2).sum(1, keepdim=True) - 2 * q @ self.features.T + self.sq_norms[None]
        if view_ids is not None:
            view_ids = torch.as_tensor(view_ids).long()
            if view_ids.shape != (images.shape[0],):
                raise ValueError(f"view_ids: expected [{images.shape[0]}] (one per image), got {tuple(view_ids.shape)}")
            dist = dist.masked_fill(self.view[None] != view_ids[:, None], float("inf"))
        return self.owner[dist.argmin(1)]

    def predict(self, images: torch.Tensor, view_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Voxels [B, R, R, R] (uint8) of the retrieved training objects (see :meth:`nearest`)."""
        idx = self.nearest(images, view_ids)
        return torch.from_numpy(np.stack([self.train.voxel(int(i)) for i in idx]).astype(np.uint8))


class MeanShapeBaseline:
    """Per-class mean training occupancy, thresholded for the best mean training IoU.

    Args:
        train: the training split.
        thresholds: candidate thresholds.
    """

    def __init__(self, train: NMRDataset, thresholds: tuple[float, ...] = tuple(np.linspace(0.05, 0.95, 19))) -> None:
        self.shapes: dict[str, torch.Tensor] = {}
        self.thresholds: dict[str, float] = {}
        for cid in train.class_ids:
            vox = torch.from_numpy(np.asarray(train.voxels[cid]) > 0.5)
            if vox.shape[0] == 0:
                continue
            mean = vox.float().mean(0)
            best, best_t = -1.0, 0.5
            for t in thresholds:
                pred = (mean > t)[None].expand_as(vox)
                score = float(iou_3d(pred, vox).mean())
                if score > best:
                    best, best_t = score, float(t)
            self.thresholds[cid] = best_t
            self.shapes[cid] = (mean > best_t).to(torch.uint8)

    def predict(self, class_id: str, batch: int) -> torch.Tensor:
        """The class's mean shape repeated: uint8 [batch, R, R, R]."""
        if class_id not in self.shapes:
            raise KeyError(f"no training voxels for class {class_id!r}")
        return self.shapes[class_id][None].expand(batch, -1, -1, -1)


def visual_hull(
    alphas: torch.Tensor, view_ids: torch.Tensor | None = None, size: int = 32, level: float = 0.5
) -> torch.Tensor:
    """Visual hull of one object from its silhouettes, as voxels in the dataset's frame.

    A voxel of the ``size``³ grid (the frame of :func:`softras.metrics.mesh_to_nmr_voxels`) is
    kept if, in *every* view, at least one of its 27 corner, edge-centre, face-centre and centre
    points projects onto a pixel whose alpha exceeds ``level``. Testing the whole cell keeps
    parts thinner than a voxel, which the dataset's voxels (every voxel the surface touches) also
    contain.

    Args:
        alphas: silhouettes [V, S, S] in [0, 1] (alpha channel of the NMR views).
        view_ids: NMR view index of each silhouette [V] (default ``0 .. V-1``).
        size: grid resolution.
        level: alpha threshold.

    Returns:
        uint8 [size, size, size].
    """
    from softras.functional.transform import look_at, perspective

    v, s = alphas.shape[0], alphas.shape[-1]
    ids = torch.arange(v) if view_ids is None else torch.as_tensor(view_ids)
    # lattice of half-voxel steps; cell i of the grid spans [i/N, (i+1)/N) after the map
    # p -> p (N-1)/N + 0.5 of the vertices, i.e. lattice points 2i .. 2i+2
    half = torch.arange(2 * size + 1, dtype=torch.float64) / 2
    coord = (half / size - 0.5) * size / (size - 1)
    n = coord.shape[0]
    pts = torch.stack(torch.meshgrid(coord, coord, coord, indexing="ij"), -1).reshape(-1, 3).float()
    cam = perspective(look_at(pts[None].expand(v, -1, -1), viewpoints(ids)), VIEWING_ANGLE)
    px = torch.floor((cam[..., 0] + 1) * s / 2).long()
    py = torch.floor((1 - cam[..., 1]) * s / 2).long()  # image row 0 is the top
    valid = (px >= 0) & (px < s) & (py >= 0) & (py < s)
    hit = torch.zeros(v, pts.shape[0], dtype=torch.bool)
    k = torch.arange(v)[:, None].expand_as(px)
    hit[valid] = alphas[k[valid], py[valid], px[valid]] > level
    # any over each cell's 3x3x3 lattice points, per view; then all views
    cell = F.max_pool3d(hit.reshape(v, 1, n, n, n).float(), kernel_size=3, stride=2)[:, 0] > 0
    keep = cell.all(0)
    # to the dataset's axis order, as mesh_to_nmr_voxels: swap the first two axes, flip the last
    return keep.permute(1, 0, 2).flip(2).to(torch.uint8)
