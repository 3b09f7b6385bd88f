"""`Mesh`: a batch of triangle meshes with textures (the original's class, non-mutating)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import functional as srf
from ._memory import check_texels
from ._validation import as_float_tensor, as_index_tensor, as_scalar, check_choice, check_finite, reads_values
from .uv_texture import ItemLayout, UVTexture, item_texture, merge_items, pack_items

if TYPE_CHECKING:
    import trimesh

__all__ = ["TEXTURE_TYPES", "Mesh"]

TEXTURE_TYPES = ("surface", "vertex", "uv")
"""A mesh's ``texture_type``: R×R texels per face, a colour per vertex, or a :class:`~softras.UVTexture`."""


class Mesh:
    """A batch of meshes: of equal vertex and face counts, or a list of different meshes.

    Args:
        vertices: [B, V, 3] or [V, 3] float (tensor or ndarray), or a list of B meshes' [V_b, 3].
        faces: [B, F, 3] or [F, 3] integer vertex indices; a batch of 1 is broadcast to B. With a
            list of vertices, a list of B [F_b, 3] (as PyTorch3D's ``Meshes``): the batch is
            padded to the largest V and F (:attr:`vertex_counts`, :attr:`face_counts`), each
            padding face is the zero-area triangle (0, 0, 0), which no backend rasterizes, and
            :func:`softras.render` divides ``aggr_func_alpha='sum'`` by each item's own count, so
            each item renders as it would alone. :meth:`packed` gives the unpadded form.
        textures: surface [B, F, R*R, 3] / [F, R*R, 3], vertex [B, V, 3] / [V, 3], or a
            :class:`softras.UVTexture` (images mapped by per-corner UVs; its faces are these
            faces); ``None`` means white. A batch of 1 is broadcast to B. With lists of vertices
            and faces: None, a list of B per-item surface [F_b, R*R, 3], vertex [V_b, 3] or
            :class:`~softras.UVTexture` (batch 1, F_b faces) textures, or one UVTexture (batch 1
            or B) of F faces when every item has F faces. UV textures merge into one
            (:func:`softras.uv_texture.merge_items`): item b's materials index its own images,
            and an image tensor that several items hold (a shared texture) is packed once.
        texture_res: R for the default white surface texture.
        texture_type: ``'surface'``, ``'vertex'`` or ``'uv'``. A :class:`~softras.UVTexture` makes a
            ``'uv'`` mesh under the default ``'surface'`` too (convert with :meth:`to_texture_type`);
            ``'uv'`` with ``textures=None`` is a white 1×1 image.

    Unlike the original, the renderer's stages (lighting, transform) return *new* meshes and
    never modify this one, so :meth:`reset_` is rarely needed (it is kept for old scripts).
    """

    def __init__(
        self,
        vertices: torch.Tensor | np.ndarray,
        faces: torch.Tensor | np.ndarray,
        textures: torch.Tensor | np.ndarray | UVTexture | None = None,
        texture_res: int = 1,
        texture_type: str = "surface",
    ) -> None:
        check_choice("texture_type", texture_type, TEXTURE_TYPES)
        counts, layout = None, None
        if isinstance(vertices, (list, tuple)):
            vertices, faces, textures, counts, layout = _padded_items(vertices, faces, textures, texture_type)
        elif isinstance(faces, (list, tuple)):
            raise TypeError("faces: a list of faces needs a list of vertices (one [V_b, 3] per item)")
        if isinstance(textures, UVTexture):
            if texture_type == "vertex":
                raise ValueError("texture_type: a UVTexture makes a 'uv' mesh, got texture_type='vertex'")
            texture_type = "uv"
        elif texture_type == "uv" and textures is not None:
            raise TypeError(f"textures: texture_type='uv' needs a softras.UVTexture, got {type(textures).__name__}")
        v = as_float_tensor("vertices", vertices)
        if v.ndim == 2:
            v = v[None]
        if v.ndim != 3 or v.shape[-1] != 3:
            raise ValueError(f"vertices: expected shape [B, V, 3] or [V, 3], got {tuple(v.shape)}")
        if v.shape[0] == 0 or v.shape[1] == 0:
            raise ValueError(f"vertices: expected a non-empty mesh, got shape {tuple(v.shape)}")
        check_finite("vertices", v)
        f = as_index_tensor("faces", faces, device=v.device)
        if isinstance(faces, np.ndarray):
            f = f.int()
        if f.ndim == 2:
            f = f[None]
        if f.ndim != 3 or f.shape[-1] != 3 or f.shape[0] not in (1, v.shape[0]):
            raise ValueError(f"faces: expected shape [{v.shape[0]}, F, 3] or [F, 3], got {tuple(f.shape)}")
        if f.shape[1] == 0:
            raise ValueError("faces: expected at least one face, got 0")
        if reads_values():
            lo, hi = int(f.min()), int(f.max())
            if lo < 0 or hi >= v.shape[1]:
                raise ValueError(f"faces: indices must lie in [0, {v.shape[1] - 1}], got range [{lo}, {hi}]")
        f = f.expand(v.shape[0], -1, -1)
        b, nv, nf = v.shape[0], v.shape[1], f.shape[1]

        if texture_type == "uv":
            t = _uv_textures(textures, b, nf, v)
        elif textures is None:
            if texture_type == "surface":
                texture_res = as_scalar(texture_res)  # a NumPy integer counts as an int
                if isinstance(texture_res, bool) or not isinstance(texture_res, int) or texture_res < 1:
                    raise ValueError(f"texture_res: expected an int >= 1, got {texture_res!r}")
                check_texels(b * nf, texture_res)
                t = torch.ones(b, nf, texture_res**2, 3, dtype=v.dtype, device=v.device)
            else:
                t = torch.ones(b, nv, 3, dtype=v.dtype, device=v.device)
        else:
            t = as_float_tensor("textures", textures, device=v.device)
            if texture_type == "surface":
                if t.ndim == 3:
                    t = t[None]
                ok = t.ndim == 4 and t.shape[0] in (1, b) and t.shape[1] == nf and t.shape[3] == 3
                if not ok or round(t.shape[2] ** 0.5) ** 2 != t.shape[2]:
                    raise ValueError(
                        f"textures: expected surface textures of shape [{b}, {nf}, R*R, 3], got {tuple(t.shape)}"
                    )
                t = t.expand(b, -1, -1, -1)
            else:
                if t.ndim == 2:
                    t = t[None]
                if t.ndim != 3 or t.shape[0] not in (1, b) or t.shape[1:] != (nv, 3):
                    raise ValueError(
                        f"textures: expected vertex textures of shape [{b}, {nv}, 3], got {tuple(t.shape)}"
                    )
                t = t.expand(b, -1, -1)
            check_finite("textures", t)

        self._vertices, self._faces, self._textures = v, f, t
        self._texture_type = texture_type
        self._fill_back = False
        self._origin = (v, f, t)
        self._counts = counts  # (vertex counts [B], face counts [B]) of a padded list, else None
        self._uv_layout = layout  # where each item's UV texture lies in the merged one, else None

    # ---- the original's attributes -------------------------------------------------------
    @property
    def vertices(self) -> torch.Tensor:
        """[B, V, 3]"""
        return self._vertices

    @vertices.setter
    def vertices(self, vertices: torch.Tensor) -> None:
        self._vertices = vertices

    @property
    def faces(self) -> torch.Tensor:
        """[B, F, 3] integer"""
        return self._faces

    @faces.setter
    def faces(self, faces: torch.Tensor) -> None:
        self._faces = faces

    @property
    def textures(self) -> torch.Tensor | UVTexture:
        """Surface [B, F, R*R, 3], vertex [B, V, 3], or a :class:`~softras.UVTexture` of batch B."""
        return self._textures

    @textures.setter
    def textures(self, textures: torch.Tensor | UVTexture) -> None:
        self._textures = textures

    @property
    def texture_type(self) -> str:
        """``'surface'``, ``'vertex'`` or ``'uv'``."""
        return self._texture_type

    @texture_type.setter
    def texture_type(self, texture_type: str) -> None:
        check_choice("texture_type", texture_type, TEXTURE_TYPES)
        if (texture_type == "uv") != isinstance(self._textures, UVTexture):
            raise ValueError(
                f"texture_type: {texture_type!r} does not fit this mesh's {self._texture_type!r} textures; "
                "convert them with mesh.to_texture_type(...)"
            )
        self._texture_type = texture_type

    @property
    def device(self) -> torch.device:
        return self._vertices.device

    @property
    def batch_size(self) -> int:
        return self._vertices.shape[0]

    @property
    def num_vertices(self) -> int:
        return self._vertices.shape[1]

    @property
    def num_faces(self) -> int:
        return self._faces.shape[1]

    @property
    def is_padded(self) -> bool:
        """Whether the batch was made from a list of meshes of different sizes (and padded)."""
        return self._counts is not None

    @property
    def vertex_counts(self) -> torch.Tensor:
        """[B] int64: each item's vertices (V for all unless made from a list)."""
        if self._counts is None:
            return torch.full((self.batch_size,), self.num_vertices, dtype=torch.int64)
        return self._counts[0]

    @property
    def face_counts(self) -> torch.Tensor:
        """[B] int64: each item's faces (F for all unless made from a list)."""
        if self._counts is None:
            return torch.full((self.batch_size,), self.num_faces, dtype=torch.int64)
        return self._counts[1]

    def padded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(vertices [B, V, 3], faces [B, F, 3]): the padded batch, as :attr:`vertices` and :attr:`faces`."""
        return self._vertices, self._faces

    def packed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(vertices [ΣV_b, 3], faces [ΣF_b, 3] indexing the packed vertices, vertex offsets [B + 1],
        face offsets [B + 1]): every item's own vertices and faces one after another, item b's at
        offsets[b] to offsets[b + 1]."""
        v_counts, f_counts = self.vertex_counts, self.face_counts
        v_off = torch.cat([v_counts.new_zeros(1), v_counts.cumsum(0)])
        f_off = torch.cat([f_counts.new_zeros(1), f_counts.cumsum(0)])
        vertices = torch.cat([self._vertices[b, : int(n)] for b, n in enumerate(v_counts)])
        faces = torch.cat([self._faces[b, : int(n)] + v_off[b].to(self._faces) for b, n in enumerate(f_counts)])
        return vertices, faces, v_off, f_off

    def packed_textures(self) -> torch.Tensor | UVTexture:
        """The textures of :meth:`packed`'s vertices and faces: surface [ΣF_b, R*R, 3], vertex [ΣV_b, 3],
        or a UV texture of batch 1 and ΣF_b faces on the merged images (item b's faces at face
        offsets[b] to offsets[b + 1]), so ``Mesh(*mesh.packed()[:2], mesh.packed_textures())`` is
        every item joined into one mesh."""
        f_counts = self.face_counts.tolist()
        if self._texture_type == "uv":
            return pack_items(self._textures, self._item_layout(), f_counts)
        counts = f_counts if self._texture_type == "surface" else self.vertex_counts.tolist()
        return torch.cat([self._textures[b, :n] for b, n in enumerate(counts)])

    def item(self, index: int) -> Mesh:
        """Item ``index`` of the batch as a mesh of batch 1, without padding; also ``mesh[index]``.

        Its textures are its own: surface [1, F_b, R*R, 3], vertex [1, V_b, 3], or for a list of UV
        textures the UVTexture given for the item (its images, UV points, UV faces and materials;
        a ``'uv'`` mesh made otherwise gives each item all the images and UV points). The tensors
        are views of the batch's, so gradients reach them.
        """
        b = self._index(index)
        nv, nf = int(self.vertex_counts[b]), int(self.face_counts[b])
        return Mesh(self._vertices[b, :nv], self._faces[b, :nf], self._item_textures(b, nv, nf),
                    texture_type=self._texture_type)  # fmt: skip

    def __getitem__(self, index: int) -> Mesh:
        """``mesh[b]``: :meth:`item`."""
        return self.item(index)

    def items(self) -> list[Mesh]:
        """The B items as meshes of batch 1, without padding (:meth:`item`)."""
        return [self.item(b) for b in range(self.batch_size)]

    def _index(self, index: int) -> int:
        """``index`` as an item number in [0, B), after checking it (negative ones count from the end)."""
        b = self.batch_size
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -b <= index < b:
            raise IndexError(f"index: expected an int in [-{b}, {b}) for a batch of {b}, got {index!r}")
        return int(index) % b

    def _item_layout(self) -> ItemLayout:
        """Where each item's texture lies in this ``'uv'`` mesh's UV texture."""
        layout = self._uv_layout
        return layout if layout is not None and layout.fits(self._textures) else ItemLayout.whole(self._textures)

    def _item_textures(self, b: int, nv: int, nf: int) -> torch.Tensor | UVTexture:
        """Item ``b``'s own textures (of ``nv`` vertices and ``nf`` faces), without the batch dimension
        for tensors: surface [F_b, R*R, 3], vertex [V_b, 3]; a UV texture of batch 1."""
        if self._texture_type == "uv":
            return item_texture(self._textures, self._item_layout(), b, nf)
        return self._textures[b, :nf] if self._texture_type == "surface" else self._textures[b, :nv]

    def _same_items(self, mesh: Mesh) -> Mesh:
        """``mesh`` (this one with other colours) keeping this batch's per-item vertex and face counts."""
        mesh._counts = self._counts
        return mesh

    @property
    def texture_res(self) -> int:
        return round(self._textures.shape[2] ** 0.5) if self._texture_type == "surface" else 1

    @property
    def face_vertices(self) -> torch.Tensor:
        """[B, F, 3, 3] corner positions of every face."""
        return srf.face_vertices(self._vertices, self._faces)

    @property
    def surface_normals(self) -> torch.Tensor:
        """[B, F, 3] unit face normals."""
        return srf.surface_normals(self.face_vertices)

    @property
    def vertex_normals(self) -> torch.Tensor:
        """[B, V, 3] unit vertex normals."""
        return srf.vertex_normals(self._vertices, self._faces)

    @property
    def face_textures(self) -> torch.Tensor:
        """What the rasterizer samples: surface [B, F, R*R, 3] or vertex [B, F, 3, 3].

        Raises:
            TypeError: a ``'uv'`` mesh (its colours are looked up per pixel; see :attr:`textures`).
        """
        if self._texture_type == "surface":
            return self._textures
        if self._texture_type == "uv":
            raise TypeError(
                "face_textures: a 'uv' mesh has no colours per face (mesh.textures is a UVTexture); "
                "use mesh.to_texture_type('surface', texture_res) for R×R texels"
            )
        return srf.face_vertices(self._textures, self._faces)

    def fill_back_(self) -> None:
        """Append every face with reversed winding (and its texture), once."""
        if not self._fill_back:
            self._faces = torch.cat([self._faces, self._faces[:, :, [2, 1, 0]]], dim=1)
            if self._texture_type == "surface":
                self._textures = torch.cat([self._textures, self._textures], dim=1)
            elif self._texture_type == "uv":
                self._textures = self._textures.with_back_faces()
            self._fill_back = True

    def reset_(self) -> None:
        """Restore the vertices, faces and textures given at construction."""
        self._vertices, self._faces, self._textures = self._origin
        self._fill_back = False

    def replace(self, **changes: torch.Tensor | UVTexture) -> Mesh:
        """A shallow copy with some of ``vertices``, ``faces``, ``textures`` replaced.

        New ``vertices`` must be finite (checked at once, as :class:`Mesh` checks them); the
        other fields are taken as given (``textures`` of a ``'uv'`` mesh: a :class:`~softras.UVTexture`).

        Raises:
            TypeError: an unknown field, or textures of the other kind (UV for tensor, or back).
            ValueError: ``vertices`` holds NaN or Inf.
        """
        new = object.__new__(Mesh)
        new.__dict__.update(self.__dict__)
        for name, value in changes.items():
            if name not in ("vertices", "faces", "textures"):
                raise TypeError(f"replace: unknown field {name!r}")
            if name == "textures" and isinstance(value, UVTexture) != (self._texture_type == "uv"):
                raise TypeError(
                    f"replace: textures of a {self._texture_type!r} mesh cannot become {type(value).__name__}; "
                    "use mesh.to_texture_type(...)"
                )
            if name == "vertices" and isinstance(value, torch.Tensor):
                check_finite("vertices", value)
            setattr(new, "_" + name, value)
        return new

    def to(self, device: torch.device | str) -> Mesh:
        """The same mesh on ``device``."""
        return self.replace(
            vertices=self._vertices.to(device), faces=self._faces.to(device), textures=self._textures.to(device)
        )

    def to_texture_type(self, texture_type: str, texture_res: int = 4, **options: object) -> Mesh:
        """The mesh with its colours converted to ``texture_type`` (the same mesh if it already is).

        - ``'uv'`` -> ``'surface'``: :meth:`UVTexture.to_surface`, the texture at each texel's centre
          (``options``: ``texture_filter``, ``texture_wrap``), in RGB as :meth:`UVTexture.rgb`;
        - ``'surface'`` -> ``'uv'``: :meth:`UVTexture.from_surface`, an atlas image per item holding
          the texels (``options``: ``cell_size``), which converts back to the same texels exactly;
        - ``'vertex'`` -> ``'surface'``: the colours interpolated at the texel centres;
        - ``'vertex'`` -> ``'uv'``: through ``'surface'`` of ``texture_res``.

        A padded list keeps its :attr:`face_counts` (an item of the converted mesh's ``'uv'``
        texture holds every item's atlas image: :meth:`item`).

        To ``'vertex'`` is refused: a vertex shared by faces whose texels or UVs differ there has
        no single colour. Differentiable in the textures (and UVs).
        """
        check_choice("texture_type", texture_type, TEXTURE_TYPES)
        have = self._texture_type
        if have == texture_type:
            return self
        if texture_type == "vertex":
            raise ValueError(
                f"texture_type: {have!r} colours do not convert to 'vertex' (a vertex shared by faces with "
                "different colours there has no single colour)"
            )
        if have == "uv":
            surface = self._textures.rgb().to_surface(texture_res, **options)
            return self._same_items(Mesh(self._vertices, self._faces, surface, texture_type="surface"))
        if have == "vertex":
            from .io.texture import surface_textures_from_vertex_colors

            surface = torch.stack([
                surface_textures_from_vertex_colors(f, t, texture_res)
                for f, t in zip(self._faces, self._textures, strict=True)
            ])
            mesh = self._same_items(Mesh(self._vertices, self._faces, surface, texture_type="surface"))
            return mesh.to_texture_type(texture_type, texture_res, **options)
        return self._same_items(Mesh(self._vertices, self._faces, UVTexture.from_surface(self._textures, **options)))

    # ---- I/O -------------------------------------------------------------------------------
    @classmethod
    def from_obj(
        cls,
        filename_obj: str | os.PathLike | bytes,
        normalization: bool = False,
        load_texture: bool = False,
        texture_res: int = 1,
        texture_type: str = "surface",
        dtype: torch.dtype = torch.float32,
    ) -> Mesh:
        """Load an OBJ (with MTL / texture images when ``load_texture``) as :func:`softras.io.load_obj` does.

        ``texture_type='uv'`` (with ``load_texture``) keeps the MTL's images and the ``vt`` UVs as a
        :class:`~softras.UVTexture`. ``dtype``: of vertices and textures; ``torch.float64`` parses
        coordinates at full precision.
        """
        if load_texture:
            vertices, faces, textures = srf.load_obj(
                filename_obj,
                normalization=normalization,
                texture_res=texture_res,
                load_texture=True,
                texture_type=texture_type,
                dtype=dtype,
            )
        else:
            vertices, faces = srf.load_obj(filename_obj, normalization=normalization, dtype=dtype)
            textures = None
        return cls(vertices, faces, textures, texture_res, texture_type)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike | bytes,
        texture_res: int = 4,
        texture_type: str = "surface",
        normalization: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> Mesh:
        """Load any supported mesh format (OBJ, PLY, STL, OFF, GLB, ...) with its colours.

        See :func:`softras.io.load_mesh`; ``texture_type='uv'`` keeps the file's texture images
        and UVs (a :class:`~softras.UVTexture`); ``dtype`` is that of vertices and textures
        (``torch.float64`` keeps every digit of the file's coordinates).
        """
        from .io import load_mesh

        m = load_mesh(path, texture_res=texture_res, texture_type=texture_type, normalization=normalization,
                      dtype=dtype)
        return cls(m.vertices, m.faces, m.textures, texture_res, m.texture_type)

    def save_obj(self, filename_obj: str | os.PathLike, save_texture: bool = False, texture_res_out: int = 16) -> None:
        """Write the (single) mesh as OBJ; with ``save_texture`` also MTL + texture atlas (or, for a
        ``'uv'`` mesh, its own images and UVs: :func:`softras.io.save_obj`)."""
        if self.batch_size != 1:
            raise ValueError(f"save_obj: expected a batch of 1 mesh, got {self.batch_size}")
        textures = None
        if save_texture:
            textures = self._textures.item(0) if self._texture_type == "uv" else self._textures[0]
        srf.save_obj(
            filename_obj,
            self._vertices[0],
            self._faces[0],
            textures=textures,
            texture_res=texture_res_out,
            texture_type=self._texture_type,
        )

    # ---- other libraries (softras.interop) -------------------------------------------------
    @classmethod
    def from_trimesh(
        cls,
        mesh: trimesh.Trimesh,
        *,
        texture_res: int = 4,
        texture_type: str = "surface",
        normalization: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Mesh:
        """A batch-1 mesh from a ``trimesh.Trimesh``, with its colours (as :meth:`from_file` reads them).

        Vertices and faces keep trimesh's order. Colours: vertex colours, face colours, or the
        texture image sampled with the uvs at the texel centres; white where there are none.

        Args:
            mesh: a ``trimesh.Trimesh`` (a ``Scene``: :meth:`from_trimesh_scene`, or merge it into
                one mesh with ``scene.to_geometry()``).
            texture_res: R of surface textures.
            texture_type: ``'surface'`` ([1, F, R*R, 3]), ``'vertex'`` ([1, V, 3]) or ``'uv'``
                (a :class:`~softras.UVTexture`: the texture image and the per-vertex uvs;
                :func:`softras.io.trimesh_mesh.trimesh_uv_texture`).
            normalization: centre and scale into [-1, 1] like :meth:`from_obj`.
            dtype: floating dtype of vertices and textures (trimesh holds float64; default float32).
            device: where the tensors go (default CPU).
        """
        from .io.trimesh_mesh import trimesh_to_tensors

        vertices, faces, textures, r = trimesh_to_tensors(
            mesh, texture_res=texture_res, texture_type=texture_type, normalization=normalization,
            dtype=dtype, device=device,
        )  # fmt: skip
        return cls(vertices, faces, textures, texture_res=r, texture_type=texture_type)

    @classmethod
    def from_trimesh_scene(
        cls,
        scene: trimesh.Scene,
        *,
        texture_res: int = 4,
        texture_type: str = "surface",
        normalization: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Mesh:
        """A padded list batch from a ``trimesh.Scene``: one item per placed mesh, in world coordinates.

        Item b is the b-th node of ``scene.graph.nodes_geometry`` that holds a ``trimesh.Trimesh``
        (other geometry, such as paths and point clouds, is skipped), with the node's scene-graph
        transform applied (``Trimesh.apply_transform``: a reflection reverses the winding, as trimesh
        does); a mesh placed at several nodes is one item per node. Colours as :meth:`from_trimesh`
        reads them; with ``texture_type='uv'`` the placements of one mesh share its images.
        ``normalization`` centres and scales the whole scene (every item by the same amount) into
        [-1, 1]. :meth:`to_trimesh_scene` writes a batch back.

        Raises:
            TypeError: ``scene`` is not a ``trimesh.Scene``.
            ValueError: naming the node: a mesh without faces; or a scene without any mesh.
        """
        from .io.trimesh_mesh import trimesh_scene_to_tensors

        vertices, faces, textures, r = trimesh_scene_to_tensors(
            scene, texture_res=texture_res, texture_type=texture_type, normalization=normalization,
            dtype=dtype, device=device,
        )  # fmt: skip
        return cls(vertices, faces, textures, texture_res=r, texture_type=texture_type)

    def to_trimesh(self, index: int = 0, *, surface: str = "auto") -> trimesh.Trimesh:
        """Item ``index`` of the batch as a ``trimesh.Trimesh`` (detached, float64 positions).

        Raises ``ValueError`` naming ``faces`` for a face index outside [0, V) (which trimesh would
        read from the end), and warns once when colours outside [0, 1] are clipped.

        Args:
            index: which item of the batch.
            surface: how surface textures are written: ``'auto'`` (face colours when each face has
                one colour, else ``'texture'``), ``'face_colors'`` (each face's mean texel; keeps
                the vertices) or ``'texture'`` (a texture atlas with uvs; 3 vertices per face).

        Vertex textures become vertex colours; a UV texture a ``TextureVisuals`` (vertices split at
        UV seams, several images packed into one: :func:`softras.io.trimesh_mesh.uv_texture_to_trimesh`).
        An item of a padded list is written without its padding (:meth:`item`).
        trimesh stores colours as 8 bits per channel. See :mod:`softras.interop` for the details.
        """
        from .io.trimesh_mesh import SURFACE_TO_TRIMESH, tensors_to_trimesh

        check_choice("surface", surface, SURFACE_TO_TRIMESH)
        b = self._index(index)
        n_v, n_f = int(self.vertex_counts[b]), int(self.face_counts[b])  # a padded list: the item's own
        faces = self.faces[b, :n_f].detach().cpu().long().numpy()
        outside = (faces < 0) | (faces >= n_v)
        if outside.any():
            face = int(np.flatnonzero(outside.any(axis=1))[0])
            raise ValueError(
                f"faces: face {face} of item {index} has vertex index {int(faces[face][outside[face]][0])}, outside "
                f"[0, {n_v}) (trimesh would read a negative index from the end)"
            )
        return tensors_to_trimesh(self.vertices[b, :n_v], self.faces[b, :n_f], self._item_textures(b, n_v, n_f),
                                  self._texture_type, surface)  # fmt: skip

    def to_trimesh_scene(self, *, surface: str = "auto") -> trimesh.Scene:
        """The batch as a ``trimesh.Scene``: item b (its own vertices, faces and colours, as
        :meth:`to_trimesh` writes them) is geometry and node ``f"item_{b}"``, at the identity transform.

        :meth:`from_trimesh_scene` reads it back as this batch (a padded list).
        """
        from .io.trimesh_mesh import items_to_trimesh_scene

        return items_to_trimesh_scene([self.to_trimesh(b, surface=surface) for b in range(self.batch_size)])

    @classmethod
    def from_pytorch3d(
        cls,
        meshes: Any,
        *,
        texture_res: int = 4,
        texture_type: str | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Mesh:
        """A batch of N from a PyTorch3D ``Meshes`` of N items that share vertex and face counts.

        For items of different sizes use :func:`softras.interop.meshes_from_pytorch3d` (a list, or
        with ``padded=True`` one padded batch).
        ``TexturesVertex`` become vertex textures, ``TexturesAtlas`` surface textures (the same
        texels), ``TexturesUV`` surface textures of ``texture_res`` sampled at the texel centres.
        ``dtype`` / ``device`` default to the vertices'; the autograd graph is kept.
        """
        from ._pytorch3d import pytorch3d_items

        items = pytorch3d_items(meshes, texture_res=texture_res, texture_type=texture_type, dtype=dtype,
                                device=device)
        sizes = {(m.vertices.shape[0], m.faces.shape[0], m.texture_res) for m in items}
        if len(sizes) != 1:
            counts = ", ".join(f"{m.vertices.shape[0]}/{m.faces.shape[0]}" for m in items[:4])
            counts += ", ..." if len(items) > 4 else ""
            raise ValueError(
                "meshes: a softras Mesh batch needs equal vertex and face counts, got vertices/faces "
                f"{counts}; use softras.interop.meshes_from_pytorch3d(meshes, padded=True) for one padded batch "
                "of them (or without padded= for a list of meshes)"
            )
        textures = None if items[0].textures is None else torch.cat([m.textures[None] for m in items])
        return cls(
            torch.cat([m.vertices[None] for m in items]),
            torch.cat([m.faces[None] for m in items]),
            textures,
            texture_res=items[0].texture_res,
            texture_type=items[0].texture_type,
        )

    def to_pytorch3d(self) -> Any:
        """The batch as a PyTorch3D ``Meshes`` (``TexturesVertex`` or ``TexturesAtlas``), graph kept.

        A padded list gives each item its own vertices and faces (:attr:`vertex_counts`, :attr:`face_counts`).

        Raises:
            ImportError: PyTorch3D is not installed.
            ValueError: a ``'uv'`` mesh (convert it with :meth:`to_texture_type` first).
        """
        from ._pytorch3d import items_to_pytorch3d

        if self._texture_type == "uv":
            raise ValueError(
                "to_pytorch3d: UV textures are not converted to PyTorch3D's TexturesUV; use "
                "mesh.to_texture_type('surface', texture_res) for a TexturesAtlas"
            )
        return items_to_pytorch3d(self.items() if self.is_padded else [self])

    def voxelize(self, voxel_size: int = 32) -> torch.Tensor:
        """[B, N, N, N] occupancy of the mesh (coordinates in [-0.5, 0.5]^3 fill the grid)."""
        face_vertices_norm = self.face_vertices * voxel_size / (voxel_size - 1) + 0.5
        return srf.voxelization(face_vertices_norm, voxel_size, False)

    def __repr__(self) -> str:
        sizes = f"num_vertices={self.num_vertices}, num_faces={self.num_faces}"
        if self._counts is not None:
            sizes = f"vertex_counts={self.vertex_counts.tolist()}, face_counts={self.face_counts.tolist()} (padded)"
        return (
            f"Mesh(batch_size={self.batch_size}, {sizes}, texture_type={self._texture_type!r}, device={self.device})"
        )


def _padded_items(
    vertices: list | tuple, faces: object, textures: object, texture_type: str
) -> tuple[
    torch.Tensor, torch.Tensor, torch.Tensor | UVTexture | None, tuple[torch.Tensor, torch.Tensor], ItemLayout | None
]:
    """A list of meshes as one padded batch: (vertices [B, V, 3], faces [B, F, 3], textures or None,
    (vertex counts [B], face counts [B]), the items' UV layout or None). Padding vertices are 0;
    padding faces (0, 0, 0)."""
    b = len(vertices)
    if b == 0:
        raise ValueError("vertices: expected at least one mesh in the list")
    if not isinstance(faces, (list, tuple)) or len(faces) != b:
        raise TypeError(f"faces: with a list of {b} vertex arrays, expected a list of {b} face arrays [F_b, 3]")
    vs = [as_float_tensor(f"vertices[{i}]", v) for i, v in enumerate(vertices)]
    for i, v in enumerate(vs):
        if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
            raise ValueError(f"vertices[{i}]: expected a non-empty [V, 3] array, got shape {tuple(v.shape)}")
        if v.dtype != vs[0].dtype or v.device != vs[0].device:
            raise ValueError(f"vertices[{i}]: {v.dtype} on {v.device}, vertices[0] is {vs[0].dtype} on {vs[0].device}")
    fs = [as_index_tensor(f"faces[{i}]", f, device=vs[0].device).long() for i, f in enumerate(faces)]
    for i, (v, f) in enumerate(zip(vs, fs, strict=True)):
        if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
            raise ValueError(f"faces[{i}]: expected a non-empty [F, 3] array, got shape {tuple(f.shape)}")
        if reads_values() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
            lo, hi = int(f.min()), int(f.max())
            raise ValueError(f"faces[{i}]: indices must lie in [0, {v.shape[0] - 1}], got [{lo}, {hi}]")
    nv, nf = max(v.shape[0] for v in vs), max(f.shape[0] for f in fs)
    padded_v = torch.stack([torch.nn.functional.pad(v, (0, 0, 0, nv - v.shape[0])) for v in vs])
    padded_f = torch.stack([torch.nn.functional.pad(f, (0, 0, 0, nf - f.shape[0])) for f in fs])
    counts = (
        torch.tensor([v.shape[0] for v in vs], dtype=torch.int64),
        torch.tensor([f.shape[0] for f in fs], dtype=torch.int64),
    )
    face_counts = counts[1].tolist()
    if textures is None:
        return padded_v, padded_f, None, counts, None
    if isinstance(textures, UVTexture):
        textures = _shared_uv_texture(textures, face_counts)
    if not isinstance(textures, (list, tuple)) or len(textures) != b:
        got = f"a list of {len(textures)}" if isinstance(textures, (list, tuple)) else type(textures).__name__
        raise TypeError(
            f"textures: with a list of {b} meshes, expected None, a list of {b} textures (one per mesh) or one "
            f"UVTexture, got {got}"
        )
    _check_one_kind(textures, texture_type)
    if isinstance(textures[0], UVTexture):
        merged, layout = merge_items(textures, face_counts)
        return padded_v, padded_f, merged, counts, layout
    return padded_v, padded_f, _padded_tensor_textures(textures, vs, fs, texture_type), counts, None


def _shared_uv_texture(texture: UVTexture, face_counts: list[int]) -> list[UVTexture]:
    """One UV texture (batch 1 or B) for a list of B meshes of its face count, as B items' textures
    (which share its images: :func:`softras.uv_texture.merge_items` packs them once)."""
    if any(n != texture.num_faces for n in face_counts):
        raise ValueError(
            f"textures: one UVTexture of {texture.num_faces} faces serves a list of meshes only when each has "
            f"{texture.num_faces} faces, got face counts {face_counts}; give a list of one UVTexture per mesh"
        )
    expanded = texture.expand(len(face_counts))
    return [expanded.item(i) for i in range(len(face_counts))]


def _check_one_kind(textures: list | tuple, texture_type: str) -> None:
    """Raise naming ``textures[i]`` when a list mixes UV textures with tensors (or tensors with ``'uv'``)."""
    uv = [isinstance(t, UVTexture) for t in textures]
    if uv.count(uv[0]) != len(uv):
        i = uv.index(not uv[0])
        want = "a softras.UVTexture" if uv[0] else "a surface or vertex texture (tensor or array)"
        raise TypeError(
            f"textures[{i}]: expected {want} like textures[0] (a list takes one kind of texture), "
            f"got {type(textures[i]).__name__}"
        )
    if texture_type == "uv" and not uv[0]:
        raise TypeError(f"textures: texture_type='uv' needs softras.UVTexture items, got {type(textures[0]).__name__}")


def _padded_tensor_textures(
    textures: list | tuple, vs: list[torch.Tensor], fs: list[torch.Tensor], texture_type: str
) -> torch.Tensor:
    """Per-item surface [F_b, R*R, 3] or vertex [V_b, 3] textures as one padded tensor [B, F or V, ...]
    (padding rows white)."""
    ts = [as_float_tensor(f"textures[{i}]", t, device=vs[0].device) for i, t in enumerate(textures)]
    rows = max(f.shape[0] for f in fs) if texture_type == "surface" else max(v.shape[0] for v in vs)
    for i, t in enumerate(ts):
        own = fs[i].shape[0] if texture_type == "surface" else vs[i].shape[0]
        if t.shape[0] != own or t.shape[-1] != 3 or t.ndim != (3 if texture_type == "surface" else 2):
            shape = f"[{own}, R*R, 3]" if texture_type == "surface" else f"[{own}, 3]"
            raise ValueError(f"textures[{i}]: expected {texture_type} textures {shape}, got {tuple(t.shape)}")
        if t.shape[1:] != ts[0].shape[1:]:
            raise ValueError(f"textures[{i}]: shape {tuple(t.shape)} differs from textures[0]'s beyond the first axis")
    pad = (0, 0, 0, 0) if texture_type == "surface" else (0, 0)
    return torch.stack([torch.nn.functional.pad(t, (*pad, 0, rows - t.shape[0]), value=1.0) for t in ts])


def _uv_textures(textures: UVTexture | None, batch: int, num_faces: int, vertices: torch.Tensor) -> UVTexture:
    """The UV texture of a ``'uv'`` mesh of ``batch`` items and ``num_faces`` faces (None: white)."""
    if textures is None:
        white = torch.ones(1, 1, 3, dtype=vertices.dtype, device=vertices.device)
        return UVTexture(white, torch.zeros(num_faces, 3, 2, dtype=vertices.dtype, device=vertices.device))
    if textures.num_faces != num_faces:
        raise ValueError(f"textures: the UVTexture has {textures.num_faces} faces, the mesh {num_faces}")
    if textures.batch_size not in (1, batch):
        raise ValueError(f"textures: the UVTexture has batch {textures.batch_size}, the mesh {batch}")
    if textures.device != vertices.device:
        textures = textures.to(vertices.device)
    return textures.expand(batch)
