"""3D evaluation metrics: voxel IoU, and the ShapeNet (NMR) voxel IoU protocol of the original
``examples/recon`` single-view reconstruction benchmark."""

from __future__ import annotations

import numpy as np
import torch

from softras._validation import as_float_tensor, as_index_tensor, check_shape
from softras.functional.voxelization import voxelization

__all__ = ["iou_3d", "mesh_to_nmr_voxels", "voxel_iou_from_mesh"]


def _as_occupancy(name: str, v: object) -> torch.Tensor:
    """bool/0-1 grid [B, N0, N1, N2] (tensor or ndarray) -> bool tensor (values > 0.5 occupied)."""
    if isinstance(v, np.ndarray):
        v = torch.from_numpy(np.ascontiguousarray(v))
    if not isinstance(v, torch.Tensor):
        raise TypeError(
            f"{name}: expected a tensor or ndarray [B, N, N, N], got {type(v).__name__}"
        )
    check_shape(name, v, ("B", "N0", "N1", "N2"))
    return v if v.dtype == torch.bool else v > 0.5


def iou_3d(voxels_a: torch.Tensor | np.ndarray, voxels_b: torch.Tensor | np.ndarray
           ) -> torch.Tensor:
    """Intersection over union of two occupancy grids, per item.

    Args:
        voxels_a: [B, N0, N1, N2] bool or 0/1 (values > 0.5 count as occupied), tensor or ndarray.
        voxels_b: the same for the other grid, of ``voxels_a``'s shape.

    Returns:
        float32 [B]: ``|a & b| / |a | b|``; 1 where both grids are empty. On ``voxels_a``'s device
        (CPU for ndarrays).
    """
    a = _as_occupancy("voxels_a", voxels_a)
    b = _as_occupancy("voxels_b", voxels_b)
    if a.shape != b.shape:
        raise ValueError(
            f"voxels_a and voxels_b must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    b = b.to(a.device)
    inter = (a & b).flatten(1).sum(1)
    union = (a | b).flatten(1).sum(1)
    out = inter.double() / union.clamp(min=1).double()
    return torch.where(union == 0, torch.ones_like(out), out).float()


def mesh_to_nmr_voxels(vertices: torch.Tensor, faces: torch.Tensor, size: int = 32
                       ) -> torch.Tensor:
    """Voxelize meshes in the frame of ShapeNet's NMR voxels (see :func:`voxel_iou_from_mesh`).

    Args:
        vertices: [B, V, 3] in the recon convention (object inside ``[-0.5, 0.5]^3``).
        faces: [B, F, 3] (or [F, 3], shared by the batch) integer indices.
        size: grid resolution N.

    Returns:
        int32 [B, N, N, N] occupancy, indexed like the dataset's voxels, on ``vertices``' device.
    """
    v = as_float_tensor("vertices", vertices)
    check_shape("vertices", v, ("B", "V", 3))
    f = as_index_tensor("faces", faces, device=v.device).long()
    if f.ndim == 2:
        f = f[None].expand(v.shape[0], -1, -1)
    check_shape("faces", f, (v.shape[0], "F", 3))
    if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[1]):
        raise ValueError(f"faces: indices must lie in [0, {v.shape[1]}), got "
                         f"[{int(f.min())}, {int(f.max())}]")
    batch = torch.arange(v.shape[0], device=v.device)[:, None, None]
    face_vertices = v.detach()[batch, f]  # [B, F, 3, 3]
    face_vertices = face_vertices * ((size - 1.0) / size) + 0.5
    vox = voxelization(face_vertices, size, normalize=False)
    # to the dataset's axis order: swap axes 1 and 2, flip the last one
    return vox.permute(0, 2, 1, 3).flip(3).contiguous()


def voxel_iou_from_mesh(vertices: torch.Tensor, faces: torch.Tensor,
                        target_voxels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """3D IoU of predicted meshes against ShapeNet (NMR) voxels, the original recon protocol.

    Convention (``examples/recon/models.py``, ``Model.evaluate_iou``): vertices live in
    ``[-0.5, 0.5]^3``; face vertices are mapped to ``fv * (N - 1) / N + 0.5`` and solid-voxelized
    with ``voxelization(..., N, normalize=False)`` (so voxel ``i`` along axis ``d`` covers
    coordinate ``d`` in ``[i / N, (i + 1) / N)`` after that map); the prediction is then brought
    to the dataset's frame with ``pred.transpose(0, 2, 1, 3)[:, :, :, ::-1]`` (swap the first two
    spatial axes, flip the last one) and compared with
    ``sum(target * pred) / sum((target + pred) > 0)``. (Note the scale is ``(N - 1) / N``, unlike
    ``Mesh.voxelize`` which uses ``N / (N - 1)``.)

    Args:
        vertices: [B, V, 3] predicted vertices.
        faces: [B, F, 3] (or [F, 3]) faces.
        target_voxels: [B, N, N, N] ground-truth occupancy (bool or 0/1), tensor or ndarray.

    Returns:
        float32 [B] IoU per item (1 where both are empty), on ``vertices``' device.
    """
    target = _as_occupancy("target_voxels", target_voxels)
    n = target.shape[1]
    if not target.shape[1] == target.shape[2] == target.shape[3]:
        raise ValueError(f"target_voxels: expected a cubic grid [B, N, N, N], got "
                         f"{tuple(target.shape)}")
    v = as_float_tensor("vertices", vertices)
    check_shape("vertices", v, (target.shape[0], "V", 3))
    pred = mesh_to_nmr_voxels(v, faces, n)
    return iou_3d(pred, target.to(pred.device))
