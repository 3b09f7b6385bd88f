"""Small stand-ins for PyTorch3D and Open3D (neither installs here), following their public APIs.

PyTorch3D: ``pytorch3d.structures.Meshes(verts, faces, textures)`` with ``verts_list()``,
``faces_list()``, ``verts_padded()``, ``faces_padded()`` (padded with -1), ``num_verts_per_mesh()``,
``textures``; ``pytorch3d.renderer.TexturesVertex(verts_features)``, ``TexturesAtlas(atlas)`` with
an ``[F, R, R, C]`` atlas per mesh, and ``TexturesUV(maps, faces_uvs, verts_uvs, padding_mode,
align_corners)``. Open3D: ``open3d.geometry.TriangleMesh`` with ``vertices``, ``triangles``,
``vertex_colors``, ``triangle_uvs``, ``textures`` and ``has_vertex_colors()``, and
``open3d.utility.Vector3dVector`` / ``Vector3iVector``.

:func:`install` puts them into ``sys.modules`` for one test (through ``monkeypatch``).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch


def _as_list(x: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return list(x.unbind(0)) if isinstance(x, torch.Tensor) else list(x)


def _pad(items: list[torch.Tensor], value: float) -> torch.Tensor:
    size = max(t.shape[0] for t in items)
    out = torch.full((len(items), size, *items[0].shape[1:]), value, dtype=items[0].dtype, device=items[0].device)
    for i, t in enumerate(items):
        out[i, : t.shape[0]] = t
    return out


class TexturesVertex:
    def __init__(self, verts_features: torch.Tensor | list[torch.Tensor]) -> None:
        self._list = _as_list(verts_features)

    def verts_features_list(self) -> list[torch.Tensor]:
        return self._list

    def verts_features_padded(self) -> torch.Tensor:
        return _pad(self._list, 0.0)


class TexturesAtlas:
    def __init__(self, atlas: torch.Tensor | list[torch.Tensor]) -> None:
        self._list = _as_list(atlas)
        if not all(a.ndim == 4 and a.shape[1] == a.shape[2] == self._list[0].shape[1] for a in self._list):
            raise ValueError("Expected atlas to be a list of tensors of shape (F, R, R, D) with the same value of R.")

    def atlas_list(self) -> list[torch.Tensor]:
        return self._list

    def atlas_padded(self) -> torch.Tensor:
        return _pad(self._list, 0.0)

    def sample_face(self, i: int, face: int, w0: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
        """Texels [N, C] of one face at barycentrics (w0, w1): the cell (floor(w0 R), floor(w1 R)), whose
        upper half (past the cell's diagonal) is stored mirrored at (R-1-wx, R-1-wy); atlas[wy, wx]."""
        atlas = self._list[i][face]
        r = atlas.shape[0]
        wx = (w0 * r).long().clamp(max=r - 1)
        wy = (w1 * r).long().clamp(max=r - 1)
        below = (w0 + w1) * r - wx - wy <= 1.0
        wx = torch.where(below, wx, r - 1 - wx)
        wy = torch.where(below, wy, r - 1 - wy)
        return atlas[wy, wx]


class TexturesUV:
    def __init__(
        self,
        maps: torch.Tensor | list[torch.Tensor],
        faces_uvs: torch.Tensor | list[torch.Tensor],
        verts_uvs: torch.Tensor | list[torch.Tensor],
        padding_mode: str = "border",
        align_corners: bool = True,
    ) -> None:
        self._maps, self._faces_uvs, self._verts_uvs = _as_list(maps), _as_list(faces_uvs), _as_list(verts_uvs)
        self.padding_mode, self.align_corners = padding_mode, align_corners

    def maps_list(self) -> list[torch.Tensor]:
        return self._maps

    def maps_padded(self) -> torch.Tensor:
        return torch.stack(self._maps)

    def faces_uvs_list(self) -> list[torch.Tensor]:
        return self._faces_uvs

    def verts_uvs_list(self) -> list[torch.Tensor]:
        return self._verts_uvs


class Meshes:
    def __init__(
        self,
        verts: torch.Tensor | list[torch.Tensor],
        faces: torch.Tensor | list[torch.Tensor],
        textures: TexturesVertex | TexturesAtlas | TexturesUV | None = None,
    ) -> None:
        self._verts, self._faces = _as_list(verts), _as_list(faces)
        if len(self._verts) != len(self._faces):
            raise ValueError("verts and faces must have the same batch size")
        if any(f.dtype != torch.int64 for f in self._faces):
            raise ValueError("faces must be int64")
        self.textures = textures
        self.device = self._verts[0].device

    def __len__(self) -> int:
        return len(self._verts)

    def verts_list(self) -> list[torch.Tensor]:
        return self._verts

    def faces_list(self) -> list[torch.Tensor]:
        return self._faces

    def verts_padded(self) -> torch.Tensor:
        return _pad(self._verts, 0.0)

    def faces_padded(self) -> torch.Tensor:
        return _pad(self._faces, -1)

    def num_verts_per_mesh(self) -> torch.Tensor:
        return torch.tensor([len(v) for v in self._verts])


class Vector3dVector:
    def __init__(self, data: np.ndarray) -> None:
        self._data = np.asarray(data, dtype=np.float64).reshape(-1, 3).copy()

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return self._data if dtype is None else self._data.astype(dtype)

    def __len__(self) -> int:
        return len(self._data)


class Vector3iVector(Vector3dVector):
    def __init__(self, data: np.ndarray) -> None:
        self._data = np.asarray(data, dtype=np.int32).reshape(-1, 3).copy()


class Vector2dVector(Vector3dVector):
    def __init__(self, data: np.ndarray) -> None:
        self._data = np.asarray(data, dtype=np.float64).reshape(-1, 2).copy()


class TriangleMesh:
    def __init__(self) -> None:
        self.vertices = Vector3dVector(np.empty((0, 3)))
        self.triangles = Vector3iVector(np.empty((0, 3)))
        self.vertex_colors = Vector3dVector(np.empty((0, 3)))
        self.triangle_uvs = Vector2dVector(np.empty((0, 2)))
        self.textures: list[np.ndarray] = []

    def has_vertex_colors(self) -> bool:
        return len(self.vertex_colors) > 0 and len(self.vertex_colors) == len(self.vertices)


def install(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Put the fake ``'pytorch3d'`` and/or ``'open3d'`` packages into ``sys.modules``."""
    modules: dict[str, types.ModuleType] = {}
    if "pytorch3d" in names:
        root, structures, renderer = (types.ModuleType(n) for n in ("pytorch3d", "pytorch3d.structures",
                                                                     "pytorch3d.renderer"))
        structures.Meshes = Meshes
        renderer.TexturesVertex, renderer.TexturesAtlas, renderer.TexturesUV = TexturesVertex, TexturesAtlas, TexturesUV
        root.structures, root.renderer = structures, renderer
        modules.update({"pytorch3d": root, "pytorch3d.structures": structures, "pytorch3d.renderer": renderer})
    if "open3d" in names:
        root, geometry, utility = (types.ModuleType(n) for n in ("open3d", "open3d.geometry", "open3d.utility"))
        geometry.TriangleMesh = TriangleMesh
        utility.Vector3dVector, utility.Vector3iVector, utility.Vector2dVector = (
            Vector3dVector, Vector3iVector, Vector2dVector,
        )
        root.geometry, root.utility = geometry, utility
        modules.update({"open3d": root, "open3d.geometry": geometry, "open3d.utility": utility})
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
