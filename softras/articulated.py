"""A procedural articulated model: boxes connected by revolute joints, posed by forward kinematics.

The mesh is regenerated from the joint angles on every call, so image-loss gradients reach the
angles through the renderer. :func:`humanoid` builds a small box humanoid (torso, head, arms
with hands, legs: 10 parts, 10 joint angles) with one colour per part.

Example::

    import torch
    from softras.articulated import humanoid

    model = humanoid()
    angles = model.rest_angles()[None].clone().requires_grad_(True)  # [1, J] radians
    mesh = model.mesh(angles)                                         # softras.Mesh, batch 1
    # render mesh, compute a loss, loss.backward() -> angles.grad [1, J]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from softras._precision import no_autocast
from softras.mesh import Mesh
from softras.rotations import axis_angle_to_matrix
from softras.shapes import color_cube

__all__ = ["ArticulatedModel", "Part", "humanoid"]

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Part:
    """One rigid part: a box attached to its parent by a joint with 0 or more rotation axes.

    Attributes:
        name: part name (e.g. ``'r_hand'``).
        parent: index of the parent part (an earlier part), or ``-1`` for the root.
        offset: joint position in the parent's frame (the root's: in world space).
        axes: joint rotation axes in the parent's frame, applied as ``R(a0, θ0) @ R(a1, θ1) @ ...``.
        lo, hi: opposite box corners in the part's own frame (origin at the joint).
        color: RGB of the part.
        rest: rest angle per axis, in degrees.
    """

    name: str
    parent: int
    offset: Vec3
    axes: tuple[Vec3, ...]
    lo: Vec3
    hi: Vec3
    color: Vec3
    rest: tuple[float, ...] = ()


class ArticulatedModel:
    """A tree of box parts with revolute joints; a triangle mesh per pose.

    Args:
        parts: the parts, parents before children.

    Attributes:
        parts: the parts.
        joint_names: one name per degree of freedom (``'<part>.<i>'``), ``J`` in all.
        joint_part: the part index of each degree of freedom, ``[J]``.
        faces: ``[12 P, 3]`` int64 (12 triangles per box).
        textures: ``[12 P, 1, 3]`` surface colours (one per part).
        face_part: part index of each face, ``[12 P]``.
    """

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = list(parts)
        for i, p in enumerate(self.parts):
            if not -1 <= p.parent < i:
                raise ValueError(f"part {p.name!r}: parent must be an earlier part or -1, got {p.parent}")
            if p.rest and len(p.rest) != len(p.axes):
                raise ValueError(f"part {p.name!r}: expected {len(p.axes)} rest angles, got {len(p.rest)}")
        cube_v, cube_f, _ = color_cube(1.0)
        unit = cube_v + 0.5  # corners in {0, 1}^3
        self._boxes = torch.stack(
            [torch.tensor(p.lo) + unit * (torch.tensor(p.hi) - torch.tensor(p.lo)) for p in self.parts]
        )  # [P, 8, 3]
        self.faces = torch.cat([cube_f + 8 * i for i in range(len(self.parts))])
        self.textures = torch.tensor([p.color for p in self.parts for _ in range(12)], dtype=torch.float32)[:, None]
        self.face_part = torch.arange(len(self.parts)).repeat_interleave(12)
        self.joint_names = [f"{p.name}.{k}" for p in self.parts for k in range(len(p.axes))]
        self.joint_part = torch.tensor([i for i, p in enumerate(self.parts) for _ in p.axes], dtype=torch.long)

    @property
    def num_joints(self) -> int:
        """Number of joint angles ``J``."""
        return len(self.joint_names)

    @property
    def num_parts(self) -> int:
        """Number of parts ``P``."""
        return len(self.parts)

    def rest_angles(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The rest pose ``[J]`` in radians (each part's ``rest``, default 0)."""
        vals = [r for p in self.parts for r in (p.rest or (0.0,) * len(p.axes))]
        return torch.tensor([math.radians(v) for v in vals], dtype=dtype)

    def joints_of(self, names: Sequence[str]) -> list[int]:
        """Indices of the joint angles of the parts called ``names``."""
        want = {i for i, p in enumerate(self.parts) if p.name in names}
        missing = set(names) - {p.name for p in self.parts}
        if missing:
            raise KeyError(f"no part named {sorted(missing)}")
        return [j for j, part in enumerate(self.joint_part.tolist()) if part in want]

    def transforms(self, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics: world rotations ``[B, P, 3, 3]`` and joint positions ``[B, P, 3]``.

        Args:
            angles: joint angles ``[B, J]`` in radians.
        """
        if angles.ndim != 2 or angles.shape[1] != self.num_joints:
            raise ValueError(f"angles: expected shape [B, {self.num_joints}], got {tuple(angles.shape)}")
        with no_autocast(angles.device):  # autocast's bfloat16 matmul would move the joints by ~1e-3
            return self._transforms(angles)

    def _transforms(self, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = angles.shape[0]
        eye = torch.eye(3, dtype=angles.dtype, device=angles.device).expand(b, 3, 3)
        rots: list[torch.Tensor] = []
        pos: list[torch.Tensor] = []
        j = 0
        for p in self.parts:
            local = eye
            for axis in p.axes:
                a = torch.tensor(axis, dtype=angles.dtype, device=angles.device)
                local = local @ axis_angle_to_matrix(a / a.norm() * angles[:, j, None])
                j += 1
            offset = torch.tensor(p.offset, dtype=angles.dtype, device=angles.device)
            if p.parent < 0:
                rots.append(local)
                pos.append(offset.expand(b, 3))
            else:
                pr, pp = rots[p.parent], pos[p.parent]
                rots.append(pr @ local)
                pos.append(pp + pr @ offset)
        return torch.stack(rots, 1), torch.stack(pos, 1)

    def vertices(self, angles: torch.Tensor) -> torch.Tensor:
        """Posed vertices ``[B, 8 P, 3]`` for joint angles ``[B, J]`` (differentiable)."""
        rots, pos = self.transforms(angles)
        boxes = self._boxes.to(angles)
        with no_autocast(angles.device):
            v = torch.einsum("bpij,pvj->bpvi", rots, boxes) + pos[:, :, None, :]
        return v.reshape(angles.shape[0], -1, 3)

    def part_centers(self, angles: torch.Tensor) -> torch.Tensor:
        """Box centres ``[B, P, 3]`` in world space."""
        return self.vertices(angles).reshape(angles.shape[0], self.num_parts, 8, 3).mean(2)

    def mesh(self, angles: torch.Tensor) -> Mesh:
        """The posed model as a batch of ``B`` meshes with surface textures ``[B, 12 P, 1, 3]``."""
        v = self.vertices(angles)
        b = v.shape[0]
        f = self.faces.to(v.device)[None].expand(b, -1, -1)
        t = self.textures.to(v)[None].expand(b, -1, -1, -1)
        return Mesh(v, f, t)


def humanoid() -> ArticulatedModel:
    """A box humanoid facing the -z axis (towards a camera on -z), standing around the origin.

    Parts (colour): torso (blue), head (skin), for each side an upper arm (green), forearm
    (yellow) and hand (right: red, left: magenta), and a leg (purple). Joints (10 angles):
    shoulders 2 (about z: raise sideways, about x: swing forward), elbows 1 (z), wrists 1 (z),
    hips 1 (z). ``+x`` is the model's right side as seen by the camera (image right).
    """
    z_axis, x_axis = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)
    parts = [
        Part("torso", -1, (0.0, 0.1, 0.0), (), (-0.24, -0.42, -0.11), (0.24, 0.36, 0.11), (0.25, 0.4, 0.85)),
        Part("head", 0, (0.0, 0.36, 0.0), (), (-0.12, 0.03, -0.12), (0.12, 0.29, 0.12), (0.95, 0.78, 0.6)),
    ]
    for side, sign, hand_color in (("r", 1.0, (0.95, 0.1, 0.1)), ("l", -1.0, (0.85, 0.1, 0.85))):
        base = len(parts)
        parts += [
            Part(f"{side}_upper_arm", 0, (sign * 0.3, 0.3, 0.0), (z_axis, x_axis),
                 (-0.06, -0.36, -0.06), (0.06, 0.0, 0.06), (0.2, 0.75, 0.25), (sign * 55.0, 0.0)),
            Part(f"{side}_forearm", base, (0.0, -0.36, 0.0), (z_axis,),
                 (-0.05, -0.32, -0.05), (0.05, 0.0, 0.05), (0.95, 0.85, 0.15), (sign * 35.0,)),
            Part(f"{side}_hand", base + 1, (0.0, -0.32, 0.0), (z_axis,),
                 (-0.07, -0.17, -0.035), (0.07, 0.0, 0.035), hand_color, (sign * 10.0,)),
        ]  # fmt: skip
    for side, sign in (("r", 1.0), ("l", -1.0)):
        parts.append(
            Part(f"{side}_leg", 0, (sign * 0.13, -0.42, 0.0), (z_axis,),
                 (-0.08, -0.62, -0.08), (0.08, 0.0, 0.08), (0.45, 0.25, 0.6), (sign * 8.0,))
        )  # fmt: skip
    return ArticulatedModel(parts)
