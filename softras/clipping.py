"""Depth-range clipping of world-space faces, before projection, as a real camera does.

A face is clipped against the near plane (camera depth z = ``near``) in world space: a face
with every corner at z >= near is kept whole, one crossing the plane is cut along it (one corner
behind: a quad, split into two triangles; two corners behind: one triangle), and one wholly
behind (every corner at z < near) or wholly beyond the far plane (every corner at z > far) is
dropped. Projection then only ever sees points at depth >= near, so nothing behind the camera
can reach the image through a division by a negative or zero depth.

Every clipped face is described by the face it comes from and a 3×3 weight matrix: its corner k
is Σ_j weights[k, j] · corner j of that face. The camera depth is affine in world coordinates
for every camera (the perspective division comes after it), so the corner on an edge where the
depth crosses ``near`` is found by linear interpolation in world space, and the same weights
carry any per-corner attribute (colours, normals, features) and the barycentrics of the
z-buffer outputs. The weights are differentiable in the corner depths, so gradients reach the
vertices behind the plane through the points where their edges cross it.

:func:`clip_faces` finds the clipped faces; :class:`ClippedFaces` moves attributes onto them and
maps the z-buffer outputs back to the original faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import functional as srf
from ._precision import matmul
from ._validation import reads_values
from .raster.contract import texel_index

__all__ = ["ClippedFaces", "check_screen", "clip_faces", "point_at_depth", "project_faces", "vertex_depth"]


@dataclass(frozen=True)
class ClippedFaces:
    """Faces after depth-range clipping, padded to the same count F' in every item.

    Attributes:
        face_index: [B, F'] int64 index of the original face each clipped face comes from
            (0 for padding).
        weights: [B, F', 3, 3] corner k of the clipped face = Σ_j weights[..., k, j] · corner j of
            the original face (zeros for padding); rows sum to 1; differentiable.
        valid: [B, F'] bool, False for the padding that fills items with fewer faces.
        num_faces: F, the number of faces before clipping.
    """

    face_index: torch.Tensor
    weights: torch.Tensor
    valid: torch.Tensor
    num_faces: int

    @property
    def count(self) -> int:
        """F', the number of clipped faces per item (padding included)."""
        return int(self.face_index.shape[1])

    def _gather_faces(self, per_face: torch.Tensor) -> torch.Tensor:
        """[B, F, T, C] -> [B, F', T, C]: the rows of each clipped face's original face."""
        b, _, t, c = per_face.shape
        index = self.face_index[:, :, None, None].expand(b, self.count, t, c)
        return per_face.gather(1, index)

    def corners(self, per_corner: torch.Tensor) -> torch.Tensor:
        """Per-corner values [B, F, 3, C] (positions, colours, ...) -> [B, F', 3, C] of the clipped faces."""
        return matmul(self.weights.to(per_corner.dtype), self._gather_faces(per_corner))

    def texels(self, surface: torch.Tensor) -> torch.Tensor:
        """Surface texels [B, F, R·R, C] -> [B, F', R·R, C] laid out on the clipped faces.

        Texel i of a clipped face takes the original face's texel at the centre of its cell,
        mapped through the weights (nearest texel; a face that is not clipped keeps its texels
        exactly). Differentiable with respect to ``surface``.
        """
        b, _, t, c = surface.shape
        r = round(t**0.5)
        centres = _texel_centres(r, self.weights.dtype, self.weights.device)  # [T, 3]
        original = matmul(centres, self.weights.detach())  # [B, F', T, 3] barycentrics of the face
        index = texel_index(original[..., 0], original[..., 1], r)  # [B, F', T]
        return self._gather_faces(surface).gather(2, index[..., None].expand(b, self.count, t, c))

    def face_id(self, face_id: torch.Tensor) -> torch.Tensor:
        """Z-buffer face ids [B, H, W] of the clipped faces -> ids of the original faces (−1 stays)."""
        flat = face_id.clamp(min=0).flatten(1)
        original = self.face_index.gather(1, flat).view_as(face_id)
        return torch.where(face_id >= 0, original, face_id)

    def barycentrics(self, face_id: torch.Tensor, barycentrics: torch.Tensor) -> torch.Tensor:
        """Barycentrics [B, 3, H, W] w.r.t. the clipped z-buffer faces -> w.r.t. the original faces."""
        b, h, w = face_id.shape
        flat = face_id.clamp(min=0).flatten(1)  # [B, H·W]
        weights = self.weights.detach().to(barycentrics.dtype)
        picked = weights.gather(1, flat[:, :, None, None].expand(b, h * w, 3, 3))  # [B, H·W, 3, 3]
        mapped = matmul(barycentrics.flatten(2).transpose(1, 2)[:, :, None, :], picked)[:, :, 0]  # [B, H·W, 3]
        mapped = mapped.transpose(1, 2).reshape(b, 3, h, w)
        return torch.where((face_id >= 0)[:, None], mapped, torch.zeros_like(mapped))


def _texel_centres(r: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[R·R, 3] barycentrics of a point inside each texel cell of the surface layout (its centroid)."""
    cells = torch.arange(r, dtype=torch.float64)
    wx, wy = torch.meshgrid(cells, cells, indexing="xy")
    lower = torch.stack([wx + 1 / 3, wy + 1 / 3], -1)[wx + wy <= r - 1]  # R(R+1)/2 cells
    upper = torch.stack([wx + 2 / 3, wy + 2 / 3], -1)[wx + wy <= r - 2]  # R(R−1)/2 cells
    points = torch.cat([lower, upper]) / r
    centres = torch.empty(r * r, 3, dtype=torch.float64)
    centres[texel_index(points[:, 0], points[:, 1], r)] = torch.cat([points, 1 - points.sum(1, keepdim=True)], 1)
    return centres.to(dtype=dtype, device=device)


def clip_faces(depth: torch.Tensor, near: float, far: float) -> ClippedFaces | None:
    """Clip faces with corner depths ``depth`` [B, F, 3] to ``near`` and drop those beyond ``far``.

    Returns ``None`` when every face lies whole within z >= near and none wholly beyond far
    (nothing to clip: the caller renders the faces as they are); otherwise the
    :class:`ClippedFaces`, in face order (a split face's two triangles next to each other),
    with the winding of each original face kept.
    """
    inside = depth.detach() >= near
    count = inside.sum(-1)  # [B, F] corners in front of the near plane
    beyond = (depth.detach() > far).all(-1)
    whole = (count == 3) & ~beyond
    if bool(whole.all()):
        return None
    b, f = count.shape
    # Rotate each face so that its odd corner out comes first: the one corner behind (count 2)
    # or the one corner in front (count 1). Then corners 1 and 2 lie on the same side.
    odd = torch.where(count == 2, (~inside).int().argmax(-1), inside.int().argmax(-1))
    order = (odd[..., None] + torch.arange(3, device=depth.device)) % 3  # [B, F, 3]
    z = depth.gather(2, order)
    basis = torch.nn.functional.one_hot(order, 3).to(depth.dtype)  # [B, F, 3, 3]: row k = e_order[k]
    e0, e1, e2 = basis.unbind(2)
    crossing = (count == 1) | (count == 2)
    p01 = _crossing(e0, e1, z[..., 0], z[..., 1], near, crossing)
    p20 = _crossing(e2, e0, z[..., 2], z[..., 0], near, crossing)
    identity = torch.eye(3, dtype=depth.dtype, device=depth.device).expand(b, f, 3, 3)
    two_in = (count == 2)[..., None, None]
    first = torch.where(
        (count == 3)[..., None, None],
        identity,
        torch.where(two_in, torch.stack([e1, e2, p20], 2), torch.stack([e0, p01, p20], 2)),
    )
    second = torch.stack([e1, p20, p01], 2)
    candidates = torch.stack([first, second], 2).flatten(1, 2)  # [B, 2F, 3, 3]
    valid = torch.stack([whole | crossing, count == 2], 2).flatten(1)  # [B, 2F]
    kept = max(int(valid.sum(1).max()), 1)
    pick = torch.sort((~valid).int(), dim=1, stable=True).indices[:, :kept]  # valid first, in order
    valid = valid.gather(1, pick)
    weights = candidates.gather(1, pick[..., None, None].expand(b, kept, 3, 3))
    weights = weights * valid[..., None, None]
    face_index = torch.where(valid, pick // 2, torch.zeros_like(pick))
    return ClippedFaces(face_index, weights, valid, f)


def _crossing(
    ea: torch.Tensor, eb: torch.Tensor, za: torch.Tensor, zb: torch.Tensor, near: float, crossing: torch.Tensor
) -> torch.Tensor:
    """Weights [B, F, 3] of the point on the edge a -> b at depth ``near`` (``ea``, ``eb``: one-hot
    rows of the corners, ``za``, ``zb``: their depths [B, F]); arbitrary where not ``crossing``."""
    span = torch.where(crossing, zb - za, torch.ones_like(za))
    t = torch.where(crossing, (near - za) / span, torch.zeros_like(za)).clamp(0, 1)
    return (1 - t)[..., None] * ea + t[..., None] * eb


def point_at_depth(camera: object, like: torch.Tensor, depth: float) -> torch.Tensor:
    """[B, 1, 3] world points at camera depth ``depth`` (no gradient), for placeholders.

    The depth of a world point is affine, z(p) = a·p + c, for every camera; a and c are read from
    ``camera.world_to_camera`` at the origin and the unit axes, and the point returned is the one
    nearest the origin on the plane z = ``depth``. ``like``: [B, N, 3] points giving B, dtype and device.
    """
    b = like.shape[0]
    probe = torch.cat([torch.zeros(1, 3), torch.eye(3)]).to(like)[None].expand(b, 4, 3)
    with torch.no_grad():
        z = camera.world_to_camera(probe)[..., 2]  # [B, 4]
    offset, slope = z[:, :1], z[:, 1:] - z[:, :1]  # c [B, 1], a [B, 3]
    norm2 = (slope * slope).sum(1, keepdim=True).clamp(min=torch.finfo(like.dtype).tiny)
    return (slope * (depth - offset) / norm2)[:, None, :]


def vertex_depth(camera: object, vertices: torch.Tensor) -> torch.Tensor:
    """[B, V] camera depth of world ``vertices`` [B, V, 3] (``camera.world_to_camera``'s z)."""
    return camera.world_to_camera(vertices)[..., 2]


def _screen_stats(screen: torch.Tensor) -> tuple[bool, float, float]:
    """(every entry finite, min depth, max depth) of ``screen`` [B, N, 3], read once on the host.

    CPU tensors are read through NumPy: a PyTorch reduction over a large tensor would wake
    PyTorch's OpenMP pool, whose spinning threads then slow the rasterizer's own threads.
    """
    values = screen.detach()
    if values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        array = values.numpy()
        depth = array[..., 2]
        return bool(np.isfinite(array).all()), float(depth.min()), float(depth.max())
    depth = values[..., 2]
    return bool(torch.isfinite(values).all()), float(depth.min()), float(depth.max())


def _check_shape(screen: object, vertices: torch.Tensor, camera: object) -> torch.Tensor:
    if not isinstance(screen, torch.Tensor) or screen.shape != vertices.shape:
        got = tuple(screen.shape) if isinstance(screen, torch.Tensor) else type(screen).__name__
        name = type(camera).__name__
        raise ValueError(f"camera: {name}.to_screen must return {list(vertices.shape)} for these vertices, got {got}")
    return screen


def check_screen(screen: object, vertices: torch.Tensor, camera: object) -> torch.Tensor:
    """``screen`` [B, N, 3] (``camera.to_screen(vertices)``) checked: its shape, and finite values.

    A non-finite screen point comes from a vertex on the camera plane (depth 0, a perspective
    division by zero) or from a camera whose projection overflows; the error names ``vertices``
    and the camera, and counts the vertices on the camera plane.
    """
    screen = _check_shape(screen, vertices, camera)
    if not reads_values() or _screen_stats(screen)[0]:
        return screen
    finite = torch.isfinite(screen.detach()).all(-1)
    bad = int((~finite).sum())
    why = ""
    if callable(getattr(camera, "world_to_camera", None)):
        with torch.no_grad():
            on_plane = int(((vertex_depth(camera, vertices) == 0) & ~finite).sum())
        if on_plane:
            why = f" ({on_plane} of them lie on its camera plane, depth 0, and project to infinity)"
    raise ValueError(
        f"vertices: {bad} of {finite.numel()} vertices project to non-finite screen coordinates with this "
        f"{type(camera).__name__}{why}; softras.render and SoftRenderer(clip=True) clip faces at the near "
        "plane instead"
    )


def project_faces(
    vertices: torch.Tensor, faces: torch.Tensor, camera: object, camera_size: tuple[int, int], near: float, far: float
) -> tuple[torch.Tensor, ClippedFaces | None]:
    """World-space faces -> clipped screen-space faces, for the rasterizer.

    Args:
        vertices: [B, V, 3] world-space vertices.
        faces: [B, F, 3] vertex indices of every face.
        camera: the camera (``to_screen`` and ``world_to_camera``).
        camera_size: the (H, W) passed to ``camera.to_screen``.
        near, far: the depth range.

    Returns:
        (screen [B, F', 3, 3], clip): ``clip`` is None when nothing needed clipping (then F' = F
        and the faces are projected as they are), else the :class:`ClippedFaces` the screen
        faces follow (padding faces are zero-area points, which no backend rasterizes).
    """
    # Most calls have every vertex within [near, far]: one projection of the vertices, as without
    # clipping (its z is the camera depth), decides it. Otherwise faces are classified by depth.
    screen = _check_shape(camera.to_screen(vertices, image_size=camera_size), vertices, camera)
    finite, lowest, highest = _screen_stats(screen)
    if finite and near <= lowest and highest <= far:
        return srf.face_vertices(screen, faces), None
    depth = vertex_depth(camera, vertices)  # [B, V]
    clip = clip_faces(srf.face_vertices(depth[..., None], faces)[..., 0], near, far)
    if clip is None and finite and near <= lowest:
        return srf.face_vertices(screen, faces), None
    # Project only face corners (a vertex used by no face may lie on the camera plane) and,
    # where clipped, the points of the cut; padding faces are a point at mid-depth.
    points = srf.face_vertices(vertices, faces)
    if clip is not None:
        placeholder = point_at_depth(camera, vertices, near + 0.5 * (far - near))
        points = torch.where(clip.valid[..., None, None], clip.corners(points), placeholder[:, :, None, :])
    flat = points.flatten(1, 2)
    screen = check_screen(camera.to_screen(flat, image_size=camera_size), flat, camera)
    return screen.reshape(points.shape), clip
