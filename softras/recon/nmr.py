"""Reader for the NMR ShapeNet rendering/voxel dataset used by the SoftRas recon benchmark.

File layout (as distributed with Neural 3D Mesh Renderer and used by ``examples/recon``), one
pair of files per ShapeNet class id and split (``train`` / ``val`` / ``test``)::

    {class_id}_{split}_images.npz   uint8 [N, 24, 4, 64, 64]   RGBA renders, 24 views per object
    {class_id}_{split}_voxels.npz   uint8/bool [N, 32, 32, 32]  occupancy (surface + interior)

View ``v`` is taken from elevation 30°, distance 2.732, azimuth ``-15° * v`` with a ``look_at``
camera (viewing angle 15°): see :func:`viewpoints`. A one-time conversion
(:func:`convert_to_npy`) writes ``.npy`` twins of the arrays that :class:`NMRDataset` then opens
memory-mapped (``np.load(mmap_mode='r')``) instead of decompressing them into RAM.

Images stay uint8 in memory; batches are converted to float32 in [0, 1] only when sampled.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from softras.functional.transform import get_points_from_angles

__all__ = [
    "CLASS_NAMES",
    "DISTANCE",
    "ELEVATION",
    "NUM_VIEWS",
    "SPLITS",
    "VIEWING_ANGLE",
    "Batch",
    "DatasetFormatError",
    "EvalBatch",
    "NMRDataset",
    "class_name",
    "convert_to_npy",
    "find_class_ids",
    "view_azimuths",
    "viewpoints",
]

#: The 13 ShapeNet classes of the paper's Table 1, in the paper's column order.
CLASS_NAMES: dict[str, str] = {
    "02691156": "airplane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "display",
    "03636649": "lamp",
    "03691459": "loudspeaker",
    "04090263": "rifle",
    "04256520": "sofa",
    "04379243": "table",
    "04401088": "telephone",
    "04530566": "watercraft",
}
SPLITS = ("train", "val", "test")
NUM_VIEWS = 24
ELEVATION = 30.0
DISTANCE = 2.732
#: Azimuth step between consecutive views (degrees); view ``v`` is at ``-AZIMUTH_STEP * v``.
AZIMUTH_STEP = 15.0
#: Perspective viewing angle of the recon renderer (the original passes ``viewing_angle=15``).
VIEWING_ANGLE = 15.0
IMAGE_SIZE = 64
VOXEL_SIZE = 32


class DatasetFormatError(ValueError):
    """A dataset file is missing a key, has the wrong shape/dtype, or disagrees with its twin."""


def class_name(class_id: str) -> str:
    """Human name of a ShapeNet class id (the id itself for unknown ids)."""
    return CLASS_NAMES.get(class_id, class_id)


def view_azimuths(view_ids: torch.Tensor | np.ndarray | Sequence[int]) -> torch.Tensor:
    """Azimuth in degrees of views ``view_ids`` [B] -> float32 [B] (``-15 * v``)."""
    v = torch.as_tensor(np.asarray(view_ids), dtype=torch.float32)
    return -AZIMUTH_STEP * v


def viewpoints(view_ids: torch.Tensor | np.ndarray | Sequence[int]) -> torch.Tensor:
    """Camera positions (``look_at`` eyes) of views ``view_ids`` [B] -> float32 [B, 3]."""
    az = view_azimuths(view_ids).reshape(-1)
    n = az.shape[0]
    eyes = get_points_from_angles(torch.full((n,), DISTANCE), torch.full((n,), ELEVATION), az)
    assert isinstance(eyes, torch.Tensor)
    return eyes


def _path(directory: Path, class_id: str, split: str, kind: str, ext: str) -> Path:
    return directory / f"{class_id}_{split}_{kind}.{ext}"


def find_class_ids(directory: str | os.PathLike, split: str) -> list[str]:
    """Class ids that have an images file (``.npz`` or ``.npy``) for ``split`` in ``directory``,
    sorted in the paper's column order (known ids first), then by id."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"dataset directory not found: {str(d)!r}")
    suffixes = (f"_{split}_images.npz", f"_{split}_images.npy")
    ids = {p.name[: -len(s)] for p in d.iterdir() for s in suffixes if p.name.endswith(s)}
    order = list(CLASS_NAMES)
    return sorted(ids, key=lambda c: (order.index(c) if c in order else len(order), c))


def _load_array(path_npz: Path, path_npy: Path, mmap: bool) -> np.ndarray:
    """The array of a dataset file: the ``.npy`` twin (memory-mapped) if present, else the first
    array of the ``.npz``."""
    if path_npy.is_file():
        try:
            return np.load(path_npy, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DatasetFormatError(f"{path_npy}: not a readable .npy file ({exc})") from exc
    if not path_npz.is_file():
        raise FileNotFoundError(f"dataset file not found: {str(path_npz)!r} (nor {path_npy.name})")
    try:
        with np.load(path_npz, allow_pickle=False) as data:
            keys = list(data.keys())
            if not keys:
                raise DatasetFormatError(f"{path_npz}: the archive holds no array")
            return data[keys[0]]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, DatasetFormatError):
            raise
        raise DatasetFormatError(f"{path_npz}: not a readable .npz archive ({exc})") from exc


def _check_images(path: Path, images: np.ndarray) -> np.ndarray:
    """[N, 24, 4, S, S] uint8 (or the flattened [N*24, 4, S, S] the original code reshaped to)."""
    if images.dtype != np.uint8:
        raise DatasetFormatError(f"{path}: expected uint8 images, got dtype {images.dtype}")
    if images.ndim == 4 and images.shape[0] % NUM_VIEWS == 0 and images.shape[1] == 4:
        images = images.reshape(-1, NUM_VIEWS, *images.shape[1:])
    if images.ndim != 5 or images.shape[1] != NUM_VIEWS or images.shape[2] != 4 or images.shape[3] != images.shape[4]:
        raise DatasetFormatError(
            f"{path}: expected images of shape [N, {NUM_VIEWS}, 4, S, S] (RGBA, square), got {images.shape}"
        )
    return images


def _check_voxels(path: Path, voxels: np.ndarray) -> np.ndarray:
    if voxels.ndim != 4 or not (voxels.shape[1] == voxels.shape[2] == voxels.shape[3]):
        raise DatasetFormatError(f"{path}: expected voxels of shape [N, R, R, R], got {voxels.shape}")
    if voxels.dtype not in (np.uint8, np.bool_, np.int8, np.int32, np.int64, np.float32, np.float64):
        raise DatasetFormatError(f"{path}: unsupported voxel dtype {voxels.dtype}")
    if voxels.size and voxels.dtype.kind == "f" and not np.isfinite(voxels).all():
        raise DatasetFormatError(f"{path}: voxels hold {int((~np.isfinite(voxels)).sum())} NaN/Inf values")
    if voxels.size and (voxels.min() < 0 or voxels.max() > 1):
        raise DatasetFormatError(
            f"{path}: expected occupancies in [0, 1], got values in [{voxels.min()}, {voxels.max()}]"
        )
    return voxels


@dataclass
class Batch:
    """A training batch: two random views of each of ``B`` objects.

    Attributes:
        images_a, images_b: float32 [B, 4, S, S] RGBA in [0, 1].
        viewpoints_a, viewpoints_b: float32 [B, 3] camera positions (``look_at`` eyes).
        view_a, view_b: int64 [B] view indices in [0, 24).
        object_ids: int64 [B] global object indices (into :attr:`NMRDataset.images`).
    """

    images_a: torch.Tensor
    images_b: torch.Tensor
    viewpoints_a: torch.Tensor
    viewpoints_b: torch.Tensor
    view_a: torch.Tensor
    view_b: torch.Tensor
    object_ids: torch.Tensor


@dataclass
class EvalBatch:
    """An evaluation batch: images [B, 4, S, S] float32, voxels [B, R, R, R] uint8, the views
    (int64 [B]) and object indices within the class (int64 [B])."""

    images: torch.Tensor
    voxels: torch.Tensor
    view_ids: torch.Tensor
    object_ids: torch.Tensor


def _to_float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / 255.0)


class NMRDataset:
    """One split of the NMR dataset for a set of classes.

    Args:
        directory: folder with the ``{class_id}_{split}_{images,voxels}.{npz,npy}`` files.
        split: ``'train'``, ``'val'`` or ``'test'``.
        class_ids: classes to load (default: every class that has files for ``split``).
        mmap: open ``.npy`` twins memory-mapped (``.npz`` archives are always read into RAM).

    Attributes:
        class_ids: the loaded classes, in order.
        images: per class uint8 [N_c, 24, 4, S, S] (memory-mapped or in RAM).
        voxels: per class [N_c, R, R, R] occupancy.
        num_objects: per class N_c; ``offsets`` the global index of each class's first object.

    Raises:
        FileNotFoundError: a file is missing.
        DatasetFormatError: wrong shapes or dtypes, or an images file and its voxel file
            disagree on N.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        split: str = "train",
        class_ids: Sequence[str] | None = None,
        mmap: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"dataset directory not found: {str(self.directory)!r}")
        self.split = split
        ids = list(class_ids) if class_ids is not None else find_class_ids(self.directory, split)
        if not ids:
            raise FileNotFoundError(
                f"no '*_{split}_images.npz' (or .npy) files in {str(self.directory)!r}; "
                "make one with 'softras recon make-dataset'"
            )
        self.class_ids: list[str] = ids
        self.images: dict[str, np.ndarray] = {}
        self.voxels: dict[str, np.ndarray] = {}
        for cid in ids:
            p_img = _path(self.directory, cid, split, "images", "npz")
            p_vox = _path(self.directory, cid, split, "voxels", "npz")
            img = _check_images(p_img, _load_array(p_img, p_img.with_suffix(".npy"), mmap))
            vox = _check_voxels(p_vox, _load_array(p_vox, p_vox.with_suffix(".npy"), mmap))
            if img.shape[0] != vox.shape[0]:
                raise DatasetFormatError(
                    f"class {cid} ({split}): {img.shape[0]} objects in the images file but "
                    f"{vox.shape[0]} in the voxels file"
                )
            self.images[cid] = img
            self.voxels[cid] = vox
        sizes = {self.images[c].shape[3] for c in ids}
        if len(sizes) != 1:
            raise DatasetFormatError(f"classes have different image sizes: {sorted(sizes)}")
        self.image_size = sizes.pop()
        self.num_objects: dict[str, int] = {c: int(self.images[c].shape[0]) for c in ids}
        self.offsets: dict[str, int] = {}
        count = 0
        for c in ids:
            self.offsets[c] = count
            count += self.num_objects[c]
        self.total_objects = count
        nonempty = [c for c in ids if self.num_objects[c] > 0]
        if not nonempty:
            raise DatasetFormatError(f"no objects in the {split} split of {str(self.directory)!r}")
        self._sampling_classes = nonempty

    def __len__(self) -> int:
        """Number of objects (each has 24 views)."""
        return self.total_objects

    def __repr__(self) -> str:
        parts = ", ".join(f"{class_name(c)}: {self.num_objects[c]}" for c in self.class_ids)
        return f"NMRDataset({str(self.directory)!r}, split={self.split!r}, {parts})"

    def locate(self, object_id: int) -> tuple[str, int]:
        """Global object index -> (class id, index within the class)."""
        for c in self.class_ids:
            if self.offsets[c] <= object_id < self.offsets[c] + self.num_objects[c]:
                return c, object_id - self.offsets[c]
        raise IndexError(f"object index {object_id} out of range [0, {self.total_objects})")

    def image(self, object_id: int, view: int) -> np.ndarray:
        """uint8 [4, S, S] view ``view`` of global object ``object_id``."""
        c, i = self.locate(object_id)
        return np.asarray(self.images[c][i, view])

    def voxel(self, object_id: int) -> np.ndarray:
        """[R, R, R] occupancy of global object ``object_id``."""
        c, i = self.locate(object_id)
        return np.asarray(self.voxels[c][i])

    def sample_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Two random views of each of ``batch_size`` random objects (the original's sampling:
        a class uniformly, then an object of that class uniformly, then two views uniformly and
        independently). All randomness comes from ``rng``, so a saved ``rng`` state resumes the
        exact sequence of batches."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        classes = rng.integers(0, len(self._sampling_classes), size=batch_size)
        obj = np.empty(batch_size, np.int64)
        local = np.empty(batch_size, np.int64)
        for k, ci in enumerate(classes):
            c = self._sampling_classes[int(ci)]
            local[k] = rng.integers(0, self.num_objects[c])
            obj[k] = self.offsets[c] + local[k]
        views = rng.integers(0, NUM_VIEWS, size=(2, batch_size))
        img_a = np.empty((batch_size, 4, self.image_size, self.image_size), np.uint8)
        img_b = np.empty_like(img_a)
        for k in range(batch_size):
            c = self._sampling_classes[int(classes[k])]
            img_a[k] = self.images[c][local[k], views[0, k]]
            img_b[k] = self.images[c][local[k], views[1, k]]
        va, vb = torch.from_numpy(views[0]), torch.from_numpy(views[1])
        return Batch(_to_float(img_a), _to_float(img_b), viewpoints(va), viewpoints(vb), va, vb, torch.from_numpy(obj))

    def evaluation_batches(
        self,
        class_id: str,
        batch_size: int = 96,
        views: Sequence[int] | None = None,
        max_objects: int | None = None,
    ) -> Iterator[EvalBatch]:
        """Every (object, view) pair of one class, object-major, in batches (as the original test).

        Args:
            class_id: the class.
            batch_size: pairs per batch.
            views: which views (default all 24).
            max_objects: only the first ``max_objects`` objects.
        """
        if class_id not in self.images:
            raise KeyError(f"class {class_id!r} not loaded (have {self.class_ids})")
        n = self.num_objects[class_id] if max_objects is None else min(max_objects, self.num_objects[class_id])
        vlist = np.arange(NUM_VIEWS) if views is None else np.asarray(list(views), np.int64)
        objs = np.repeat(np.arange(n), len(vlist))
        vids = np.tile(vlist, n)
        images, voxels = self.images[class_id], self.voxels[class_id]
        for s in range(0, len(objs), batch_size):
            o, v = objs[s : s + batch_size], vids[s : s + batch_size]
            img = np.stack([images[i, j] for i, j in zip(o, v, strict=True)])
            vox = np.stack([np.asarray(voxels[i]) for i in o]).astype(np.uint8, copy=False)
            yield EvalBatch(_to_float(img), torch.from_numpy(vox), torch.from_numpy(v), torch.from_numpy(o))


def convert_to_npy(
    directory: str | os.PathLike,
    splits: Sequence[str] = SPLITS,
    class_ids: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write a memory-mappable ``.npy`` twin next to every ``.npz`` dataset file (one-time).

    Images keep their uint8 dtype and are written as [N, 24, 4, S, S]; voxels as uint8. Each file
    is written to a temporary name and renamed, so an interrupted conversion never leaves a
    truncated ``.npy`` behind. Existing twins are kept unless ``overwrite``.

    Returns:
        The ``.npy`` files written.
    """
    d = Path(directory)
    written: list[Path] = []
    for split in splits:
        ids = list(class_ids) if class_ids is not None else find_class_ids(d, split)
        for cid in ids:
            for kind in ("images", "voxels"):
                src = _path(d, cid, split, kind, "npz")
                dst = src.with_suffix(".npy")
                if dst.is_file() and not overwrite:
                    continue
                if not src.is_file():
                    raise FileNotFoundError(f"dataset file not found: {str(src)!r}")
                arr = _load_array(src, Path(os.devnull + ".none"), mmap=False)
                if kind == "images":
                    arr = _check_images(src, arr)
                else:
                    arr = _check_voxels(src, arr).astype(np.uint8, copy=False)
                tmp = dst.with_name(dst.name + ".tmp")
                with open(tmp, "wb") as fh:
                    np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
                os.replace(tmp, dst)
                written.append(dst)
    return written
