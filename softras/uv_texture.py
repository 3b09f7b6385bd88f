"""`UVTexture`: texture images mapped onto a mesh by per-corner (u, v) coordinates.

A :class:`softras.Mesh` carries one as its ``textures`` (``texture_type == 'uv'``) and
:func:`softras.render` samples it per (pixel, face) pair inside the soft aggregation (see
:mod:`softras.raster.uv`), differentiably with respect to the images, the UVs and the vertices.

Conventions (those of OBJ, and of glTF after trimesh's flip): (u, v) = (0, 0) is the bottom-left
corner of an image and (1, 1) its top-right; image row 0 is the top, as stored in an image file.
Texel (column i, row j) of a W × H image is centred at u = (i + ½)/W, v = 1 − (j + ½)/H.

The UVs are kept as OBJ keeps them: a table of UV points ``uv_vertices`` [B, T, 2] and, per face,
the indices of its corners' points ``uv_faces`` [B, F, 3]; per-corner UVs [B, F, 3, 2] are the
special case T = 3F. :meth:`UVTexture.to_surface` and :meth:`UVTexture.from_surface` convert to and
from the original package's R×R surface texels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ._precision import upcast
from ._validation import as_float_tensor, as_index_tensor, check_finite, reads_values
from .raster.uv import TEXTURE_FILTERS, TEXTURE_WRAPS, TextureFilter, UVMaps, level_lookup, uv_maps

__all__ = ["ItemLayout", "UVTexture", "item_texture", "merge_items", "pack_items"]

ImageLike = torch.Tensor | np.ndarray
UVLike = torch.Tensor | np.ndarray | tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]


def _image(name: str, image: object) -> torch.Tensor:
    """One image [H, W, C] as a floating tensor (uint8 / uint16 arrays scaled to [0, 1]; [H, W]: C = 1)."""
    if isinstance(image, np.ndarray) and image.dtype in (np.uint8, np.uint16):
        scale = 255.0 if image.dtype == np.uint8 else 65535.0
        image = torch.from_numpy(image.astype(np.float32) / scale)
    elif isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
        image = image.float() / 255.0
    t = as_float_tensor(name, image)
    if t.ndim == 2:
        t = t[:, :, None]
    if t.ndim != 3 or min(t.shape) < 1:
        raise ValueError(f"{name}: expected a non-empty image [H, W, C] or [H, W], got shape {tuple(t.shape)}")
    check_finite(name, t)
    return t


def _images(images: object) -> tuple[torch.Tensor, ...]:
    """The M images of ``images`` (one [H, W, C], a stack [M, H, W, C] or a sequence), checked."""
    if isinstance(images, torch.Tensor | np.ndarray) and images.ndim == 4:
        images = list(images)
    elif isinstance(images, torch.Tensor | np.ndarray):
        images = [images]
    elif not isinstance(images, Sequence) or isinstance(images, str | bytes) or not images:
        raise TypeError(
            f"images: expected an image [H, W, C], a stack [M, H, W, C] or a non-empty sequence of images, "
            f"got {type(images).__name__}"
        )
    out = tuple(_image(f"images[{k}]", im) for k, im in enumerate(images))
    for k, image in enumerate(out):
        if image.shape[2] != out[0].shape[2]:
            raise ValueError(f"images[{k}]: has {image.shape[2]} channels, images[0] has {out[0].shape[2]}")
        if image.device != out[0].device:
            raise ValueError(f"images[{k}]: on {image.device}, images[0] on {out[0].device}")
    return out


def _batched(name: str, t: torch.Tensor, expected: str) -> torch.Tensor:
    """``t`` with a leading batch dimension, added when it has one dimension less than ``expected``
    (its shape with the batch, e.g. ``'[B, T, 2]'``), which names the shape in the error."""
    ndim = expected.count(",") + 1
    if t.ndim == ndim - 1:
        t = t[None]
    if t.ndim != ndim:
        unbatched = expected.replace("[B, ", "[")
        raise ValueError(f"{name}: expected shape {unbatched} or {expected}, got {tuple(t.shape)}")
    return t


def _uv_tables(uv: object, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(uv_vertices [B, T, 2], uv_faces [B', F, 3] int64) of ``uv`` (per-corner or a (table, faces) pair)."""
    if isinstance(uv, tuple | list):
        if len(uv) != 2:
            raise TypeError(
                f"uv: expected [F, 3, 2] per-corner UVs or a pair (uv_vertices, uv_faces), got {len(uv)} items"
            )
        points = _batched("uv_vertices", as_float_tensor("uv_vertices", uv[0], device=device), "[B, T, 2]")
        faces = _batched("uv_faces", as_index_tensor("uv_faces", uv[1], device=device).long(), "[B, F, 3]")
        if points.shape[-1] != 2 or points.shape[1] == 0:
            raise ValueError(f"uv_vertices: expected shape [T, 2] or [B, T, 2] with T >= 1, got {tuple(points.shape)}")
        if faces.shape[-1] != 3:
            raise ValueError(f"uv_faces: expected shape [F, 3] or [B, F, 3], got {tuple(faces.shape)}")
        if reads_values() and faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= points.shape[1]):
            raise ValueError(
                f"uv_faces: indices must lie in [0, {points.shape[1] - 1}] (one per uv_vertices row), got range "
                f"[{int(faces.min())}, {int(faces.max())}]"
            )
        check_finite("uv_vertices", points)
        return points, faces
    corners = as_float_tensor("uv", uv, device=device)
    corners = corners[None] if corners.ndim == 3 else corners
    if corners.ndim != 4 or corners.shape[2:] != (3, 2):
        raise ValueError(
            f"uv: expected per-corner UVs [F, 3, 2] or [B, F, 3, 2] (or a pair (uv_vertices, uv_faces)), "
            f"got shape {tuple(corners.shape)}"
        )
    check_finite("uv", corners)
    b, f = corners.shape[:2]
    faces = torch.arange(3 * f, device=device).reshape(1, f, 3)
    return corners.reshape(b, 3 * f, 2), faces


class UVTexture:
    """Texture images and the per-corner (u, v) coordinates that map them onto a mesh's faces.

    Args:
        images: the texture images: one [H, W, C], a stack [M, H, W, C], or a sequence of M images
            [H_m, W_m, C] of any sizes and one channel count C (any C; :func:`softras.render` shows
            channels 0-2 as RGB, or channel 0 as grey when C < 3). Floating tensors or arrays
            (values as they are, usually in [0, 1]); uint8 / uint16 arrays are scaled to [0, 1].
            Row 0 is the top of the picture. Shared by every item of a batch: give items their own
            images through ``material``.
        uv: per-corner UVs [F, 3, 2] / [B, F, 3, 2], or a pair ``(uv_vertices, uv_faces)`` as an OBJ
            file keeps them (``vt`` lines and the ``vt`` indices of ``f v/vt`` corners):
            ``uv_vertices`` [T, 2] / [B, T, 2], ``uv_faces`` [F, 3] / [B, F, 3] integer indices into it.
            (u, v) = (0, 0) is an image's bottom-left corner, (1, 1) its top-right.
        material: [F] / [B, F] integer index of each face's image in ``images``; None: all 0.

    The tensors are kept as given (not copied), so gradients reach the images and ``uv`` /
    ``uv_vertices`` through autograd.

    Raises:
        TypeError / ValueError naming the argument: bad types, shapes, batch sizes, devices,
        non-finite values, indices out of range.
    """

    __slots__ = ("_images", "_material", "_uv_faces", "_uv_vertices")

    def __init__(self, images: object, uv: UVLike, material: torch.Tensor | np.ndarray | None = None) -> None:
        ims = _images(images)
        device = ims[0].device
        points, faces = _uv_tables(uv, device)
        f = faces.shape[1]
        if material is None:
            mat = torch.zeros(1, f, dtype=torch.int64, device=device)
        else:
            mat = _batched("material", as_index_tensor("material", material, device=device).long(), "[B, F]")
            if mat.shape[1] != f:
                raise ValueError(f"material: expected one index per face ({f}), got shape {tuple(mat.shape)}")
            if reads_values() and mat.numel() and (int(mat.min()) < 0 or int(mat.max()) >= len(ims)):
                raise ValueError(
                    f"material: expected indices in [0, {len(ims)}) (one per image), got range "
                    f"[{int(mat.min())}, {int(mat.max())}]"
                )
        batch = {"uv_vertices": points.shape[0], "uv_faces": faces.shape[0], "material": mat.shape[0]}
        big = {n: s for n, s in batch.items() if s != 1}
        if len(set(big.values())) > 1:
            raise ValueError(f"uv: batch sizes {batch} differ; each must be 1 or one common B")
        b = max(batch.values())
        self._images = ims
        self._uv_vertices = points.expand(b, -1, -1)
        self._uv_faces = faces.expand(b, -1, -1)
        self._material = mat.expand(b, -1)

    @classmethod
    def _of(
        cls, images: tuple[torch.Tensor, ...], uv_vertices: torch.Tensor, uv_faces: torch.Tensor, material: torch.Tensor
    ) -> UVTexture:
        """A texture of already checked parts (batch sizes equal), without copying them."""
        new = object.__new__(cls)
        new._images, new._uv_vertices, new._uv_faces, new._material = images, uv_vertices, uv_faces, material
        return new

    # ---- the parts ---------------------------------------------------------------------------
    @property
    def images(self) -> tuple[torch.Tensor, ...]:
        """The M images [H_m, W_m, C]."""
        return self._images

    @property
    def uv_vertices(self) -> torch.Tensor:
        """[B, T, 2] the UV points."""
        return self._uv_vertices

    @property
    def uv_faces(self) -> torch.Tensor:
        """[B, F, 3] int64: the UV point of each face corner."""
        return self._uv_faces

    @property
    def material(self) -> torch.Tensor:
        """[B, F] int64: the image of each face."""
        return self._material

    @property
    def face_uv(self) -> torch.Tensor:
        """[B, F, 3, 2] the (u, v) of every face corner (differentiable in ``uv_vertices``)."""
        b, f = self._uv_faces.shape[:2]
        index = self._uv_faces.reshape(b, 3 * f, 1).expand(b, 3 * f, 2)
        return self._uv_vertices.gather(1, index).reshape(b, f, 3, 2)

    @property
    def batch_size(self) -> int:
        return self._uv_faces.shape[0]

    @property
    def num_faces(self) -> int:
        return self._uv_faces.shape[1]

    @property
    def num_materials(self) -> int:
        return len(self._images)

    @property
    def channels(self) -> int:
        """C, the channel count of the images."""
        return self._images[0].shape[2]

    @property
    def device(self) -> torch.device:
        return self._images[0].device

    # ---- derived textures --------------------------------------------------------------------
    def expand(self, batch: int) -> UVTexture:
        """The texture for ``batch`` items (a batch of 1 repeated, as views)."""
        if self.batch_size == batch:
            return self
        if self.batch_size != 1:
            raise ValueError(f"textures: a UV texture of batch {self.batch_size} cannot serve {batch} items")
        return UVTexture._of(
            self._images,
            self._uv_vertices.expand(batch, -1, -1),
            self._uv_faces.expand(batch, -1, -1),
            self._material.expand(batch, -1),
        )

    def item(self, index: int) -> UVTexture:
        """Item ``index`` of the batch, as a texture of batch 1."""
        pick = slice(index, index + 1 or None)
        return UVTexture._of(self._images, self._uv_vertices[pick], self._uv_faces[pick], self._material[pick])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> UVTexture:
        """The texture on ``device`` with floating parts (images, UV points) in ``dtype`` (None: as they are)."""
        ims = tuple(im.to(device=device, dtype=dtype) for im in self._images)
        return UVTexture._of(
            ims,
            self._uv_vertices.to(device=device, dtype=dtype),
            self._uv_faces.to(device=device),
            self._material.to(device=device),
        )

    def upcast(self) -> UVTexture:
        """The texture with half images / UV points in float32 (:func:`softras._precision.upcast`)."""
        ims = tuple(upcast(im) for im in self._images)
        points = upcast(self._uv_vertices)
        if points is self._uv_vertices and all(a is b for a, b in zip(ims, self._images, strict=True)):
            return self
        return UVTexture._of(ims, points, self._uv_faces, self._material)

    def with_back_faces(self) -> UVTexture:
        """The texture of the faces followed by the same faces with reversed winding (``Mesh.fill_back_``)."""
        flipped = self._uv_faces[:, :, [2, 1, 0]]
        return UVTexture._of(
            self._images,
            self._uv_vertices,
            torch.cat([self._uv_faces, flipped], dim=1),
            torch.cat([self._material, self._material], dim=1),
        )

    def rgb(self) -> UVTexture:
        """The texture with 3-channel images: channels 0-2, or channel 0 as grey where C < 3 (the colour
        :func:`softras.render` shows); itself when C = 3."""
        if self.channels == 3:
            return self
        ims = tuple(im[:, :, :3] if im.shape[2] > 3 else im[:, :, :1].expand(-1, -1, 3) for im in self._images)
        return UVTexture._of(ims, self._uv_vertices, self._uv_faces, self._material)

    def maps(self, texture_filter: str = "bilinear", texture_wrap: str = "repeat") -> UVMaps:
        """The :class:`softras.raster.uv.UVMaps` the rasterizer samples (see :func:`softras.raster.uv.uv_maps`)."""
        return uv_maps(
            self.face_uv, self._images, self._material, texture_filter=texture_filter, texture_wrap=texture_wrap
        )

    # ---- conversions to and from R×R surface texels --------------------------------------------
    def to_surface(
        self, texture_res: int, *, texture_filter: str = "bilinear", texture_wrap: str = "repeat"
    ) -> torch.Tensor:
        """[B, F, R*R, C] surface texels: the texture sampled at each texel's centre.

        Texel i of a face is centred at the barycentrics of :func:`softras.io.texel_barycentrics`
        (the original's layout, looked up by :func:`softras.raster.contract.texel_index`); its UV
        is the barycentric interpolation of the face's corner UVs there (exact: UVs are affine on
        the face) and its value is the lookup :func:`softras.render` makes (``'bilinear'`` or
        ``'nearest'``, under ``texture_wrap``). Differentiable in the images and the UVs.
        """
        from .io.texture import check_texture_res, texel_barycentrics

        r = check_texture_res(texture_res)
        if texture_filter not in TEXTURE_FILTERS or texture_filter == TEXTURE_FILTERS[TextureFilter.TRILINEAR]:
            raise ValueError(f"texture_filter: expected 'bilinear' or 'nearest' for texels, got {texture_filter!r}")
        if texture_wrap not in TEXTURE_WRAPS:
            choices = ", ".join(map(repr, TEXTURE_WRAPS))
            raise ValueError(f"texture_wrap: expected one of {choices}, got {texture_wrap!r}")
        maps = self.maps(texture_filter, texture_wrap)
        bary = texel_barycentrics(r, dtype=maps.uv.dtype).to(maps.uv.device)  # [T, 3]
        uv = torch.einsum("tk,bfkc->bftc", bary, maps.uv)  # [B, F, T, 2]
        b, f, t = uv.shape[:3]
        material = maps.material[:, :, None].expand(b, f, t).reshape(-1)
        values = sample(maps, material, uv[..., 0].reshape(-1), uv[..., 1].reshape(-1))
        return values.reshape(b, f, t, maps.channels)

    @classmethod
    def from_surface(cls, textures: torch.Tensor, cell_size: int = 16) -> UVTexture:
        """A UV texture holding surface texels [B, F, R*R, C] (or [F, R*R, C]): one atlas image per item.

        Each face gets a square cell of the atlas (:func:`softras.io.create_texture_atlas`'s layout,
        at least 8R + 4 pixels wide) painted with its texels, so :meth:`to_surface` with the same
        R gives the texels back exactly (bilinear lookups at texel centres read one texel only).
        Item b's faces use image b. Differentiable in ``textures`` (the atlas is a gather of them).
        """
        from .io.texture import texture_atlas

        t = _batched("textures", as_float_tensor("textures", textures), "[B, F, T, C]")
        images, corners = [], None
        for item in t.unbind(0):
            image, corners = texture_atlas(item, cell_size)
            images.append(image)
        b, f = t.shape[:2]
        points = corners.to(device=t.device, dtype=t.dtype).reshape(1, 3 * f, 2).expand(b, -1, -1)
        faces = torch.arange(3 * f, device=t.device).reshape(1, f, 3).expand(b, -1, -1)
        material = torch.arange(b, device=t.device)[:, None].expand(b, f)
        return cls._of(tuple(images), points, faces, material)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{im.shape[0]}x{im.shape[1]}" for im in self._images[:4])
        sizes += ", ..." if len(self._images) > 4 else ""
        return (
            f"UVTexture(batch_size={self.batch_size}, num_faces={self.num_faces}, "
            f"uv_vertices={self._uv_vertices.shape[1]}, images=[{sizes}], channels={self.channels})"
        )


# ---- a batch of different meshes (softras.Mesh of a list), one texture per item -------------------
class ItemLayout(NamedTuple):
    """Where each item's own texture lies in a texture merged from items (:func:`merge_items`).

    Attributes:
        uv_counts: T_b, the UV points of item b (the first T_b rows of its ``uv_vertices``; the
            rest are padding).
        image_index: for item b, the index in the merged ``images`` of each of its own images.
    """

    uv_counts: tuple[int, ...]
    image_index: tuple[tuple[int, ...], ...]

    @classmethod
    def whole(cls, texture: UVTexture) -> ItemLayout:
        """The layout of a texture not merged from items: each item owns all its images and UV points."""
        everything = tuple(range(texture.num_materials))
        return cls((texture.uv_vertices.shape[1],) * texture.batch_size, (everything,) * texture.batch_size)

    def fits(self, texture: UVTexture) -> bool:
        """Whether ``texture`` can be the merged texture of this layout (its batch, images, UV points)."""
        return (
            len(self.uv_counts) == texture.batch_size
            and max(self.uv_counts) <= texture.uv_vertices.shape[1]
            and max(max(own) for own in self.image_index) < texture.num_materials
        )


def _check_item(name: str, texture: object, first: UVTexture, num_faces: int) -> UVTexture:
    """``texture``, one item's UV texture, checked against the item's face count and ``first``'s kind."""
    if not isinstance(texture, UVTexture):
        raise TypeError(
            f"{name}: expected a softras.UVTexture like the other items' (a list takes textures of one kind), "
            f"got {type(texture).__name__}"
        )
    if texture.batch_size != 1:
        raise ValueError(f"{name}: expected a UVTexture of batch 1 (one item's), got batch {texture.batch_size}")
    if texture.num_faces != num_faces:
        raise ValueError(f"{name}: the UVTexture has {texture.num_faces} faces, its mesh {num_faces}")
    if texture.channels != first.channels:
        raise ValueError(f"{name}: images of {texture.channels} channels, the first item's have {first.channels}")
    if texture.device != first.device:
        raise ValueError(f"{name}: on {texture.device}, the first item's texture on {first.device}")
    if texture.uv_vertices.dtype != first.uv_vertices.dtype:
        raise ValueError(
            f"{name}: UVs of {texture.uv_vertices.dtype}, the first item's of {first.uv_vertices.dtype}"
        )
    return texture


def _shared_images(textures: Sequence[UVTexture]) -> tuple[tuple[torch.Tensor, ...], tuple[tuple[int, ...], ...]]:
    """(the merged images, each item's image indices into them): an image tensor that several items
    hold is kept once (one item holding one tensor twice keeps both, so its indices stay distinct)."""
    images: list[torch.Tensor] = []
    first_of: dict[int, int] = {}
    index = []
    for texture in textures:
        own: list[int] = []
        for image in texture.images:
            j = first_of.get(id(image))
            if j is None or j in own:
                j = len(images)
                images.append(image)
                first_of.setdefault(id(image), j)
            own.append(j)
        index.append(tuple(own))
    return tuple(images), tuple(index)


def merge_items(textures: Sequence[object], face_counts: Sequence[int]) -> tuple[UVTexture, ItemLayout]:
    """One UV texture of batch B from B items' textures of batch 1 (item b with F_b faces), padded.

    The merged images are every item's images one after another, an image tensor held by several
    items once (so a shared image is packed once, and its gradient sums the items' shares); item
    b's materials point to its own images there. ``uv_vertices`` [B, max T_b, 2] and ``uv_faces`` /
    ``material`` [B, max F_b] are padded: a padding face reads UV point 0 of its item's first image
    (valid, and never rendered: a padded mesh's padding faces have zero area). Differentiable in
    the images and UVs; :func:`item_texture` gives each item's texture back.

    Raises:
        TypeError / ValueError naming ``textures[b]``: not a UVTexture, a batch other than 1, a face
        count other than F_b, another channel count, device or UV dtype than ``textures[0]``.
    """
    first = textures[0]
    if not isinstance(first, UVTexture):
        raise TypeError(f"textures[0]: expected a softras.UVTexture, got {type(first).__name__}")
    pairs = enumerate(zip(textures, face_counts, strict=True))
    items = [_check_item(f"textures[{b}]", t, first, n) for b, (t, n) in pairs]
    images, image_index = _shared_images(items)
    uv_counts = tuple(t.uv_vertices.shape[1] for t in items)
    n_uv, n_f = max(uv_counts), max(face_counts)
    pad = torch.nn.functional.pad
    points = torch.cat([pad(t.uv_vertices, (0, 0, 0, n_uv - t.uv_vertices.shape[1])) for t in items])
    faces = torch.cat([pad(t.uv_faces, (0, 0, 0, n_f - t.num_faces)) for t in items])
    material = torch.cat([
        pad(torch.as_tensor(own, device=t.device)[t.material], (0, n_f - t.num_faces), value=own[0])
        for t, own in zip(items, image_index, strict=True)
    ])
    return UVTexture._of(images, points, faces, material), ItemLayout(uv_counts, image_index)


def item_texture(texture: UVTexture, layout: ItemLayout, index: int, num_faces: int) -> UVTexture:
    """Item ``index`` (of ``num_faces`` faces) of a texture merged by :func:`merge_items`: its own
    images, UV points [1, T_b, 2], UV faces [1, F_b, 3] and materials [1, F_b] (indices into its
    own images), equal to the item's texture given to :func:`merge_items`. Keeps the autograd graph."""
    own = layout.image_index[index]
    lookup = torch.full((texture.num_materials,), -1, dtype=torch.int64, device=texture.material.device)
    lookup[list(own)] = torch.arange(len(own), device=lookup.device)
    pick = slice(index, index + 1)
    return UVTexture._of(
        tuple(texture.images[j] for j in own),
        texture.uv_vertices[pick, : layout.uv_counts[index]],
        texture.uv_faces[pick, :num_faces],
        lookup[texture.material[pick, :num_faces]],
    )


def pack_items(texture: UVTexture, layout: ItemLayout, face_counts: Sequence[int]) -> UVTexture:
    """The texture of every item's own faces one after another (ΣF_b faces, batch 1), on the merged
    images: UV points [1, ΣT_b, 2], UV faces [1, ΣF_b, 3] indexing them, materials [1, ΣF_b]."""
    offsets = np.cumsum([0, *layout.uv_counts[:-1]])
    points = torch.cat([texture.uv_vertices[b, :t] for b, t in enumerate(layout.uv_counts)])
    faces = torch.cat([texture.uv_faces[b, :n] + int(offsets[b]) for b, n in enumerate(face_counts)])
    material = torch.cat([texture.material[b, :n] for b, n in enumerate(face_counts)])
    return UVTexture._of(texture.images, points[None], faces[None], material[None])


def sample(maps: UVMaps, material: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[N, C] values of the base level of ``maps`` at (u, v) [N] in images ``material`` [N],
    with the lookup every backend makes per pair (nearest or bilinear, ``maps.wrap``)."""
    return level_lookup(maps, material, torch.zeros_like(material), u, v)
