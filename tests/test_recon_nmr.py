"""The NMR dataset reader (softras.recon.nmr) on tiny synthetic files, including bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softras.recon.nmr import (
    CLASS_NAMES,
    NUM_VIEWS,
    DatasetFormatError,
    NMRDataset,
    convert_to_npy,
    find_class_ids,
    viewpoints,
)

S = 8  # image size of the synthetic files
R = 4  # voxel resolution


def write_nmr(directory: Path, counts: dict[str, int], split: str = "train", seed: int = 0) -> None:
    """Synthetic NMR files: object i of class k has every pixel of view v equal to a code of (k, i, v)."""
    rng = np.random.default_rng(seed)
    for k, (cid, n) in enumerate(counts.items()):
        images = np.zeros((n, NUM_VIEWS, 4, S, S), np.uint8)
        for i in range(n):
            for v in range(NUM_VIEWS):
                images[i, v] = (k * 64 + i * NUM_VIEWS + v) % 256
        voxels = (rng.random((n, R, R, R)) > 0.5).astype(np.uint8)
        np.savez_compressed(directory / f"{cid}_{split}_images.npz", images)
        np.savez_compressed(directory / f"{cid}_{split}_voxels.npz", voxels)


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    write_nmr(tmp_path, {"03001627": 3, "02691156": 2})
    return tmp_path


def test_class_table_is_the_papers() -> None:
    assert len(CLASS_NAMES) == 13
    assert CLASS_NAMES["02691156"] == "airplane" and CLASS_NAMES["04530566"] == "watercraft"
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES)


def test_reads_shapes_counts_and_order(data: Path) -> None:
    ds = NMRDataset(data, "train")
    assert ds.class_ids == ["02691156", "03001627"]  # paper column order, not file order
    assert ds.num_objects == {"02691156": 2, "03001627": 3} and len(ds) == 5
    assert ds.images["03001627"].shape == (3, NUM_VIEWS, 4, S, S) and ds.images["03001627"].dtype == np.uint8
    assert ds.offsets == {"02691156": 0, "03001627": 2}
    assert ds.locate(3) == ("03001627", 1)
    assert int(ds.image(3, 5)[0, 0, 0]) == 1 * NUM_VIEWS + 5  # class 0 in the dict order -> code k=0
    assert "airplane: 2" in repr(ds)
    assert find_class_ids(data, "train") == ds.class_ids


def test_sample_batch_pairs_views_of_one_object(data: Path) -> None:
    ds = NMRDataset(data, "train")
    b = ds.sample_batch(16, np.random.default_rng(1))
    assert b.images_a.shape == (16, 4, S, S) and b.images_a.dtype == torch.float32
    assert float(b.images_a.max()) <= 1.0
    for k in range(16):
        cid, i = ds.locate(int(b.object_ids[k]))
        assert np.array_equal(ds.images[cid][i, int(b.view_a[k])], np.round(b.images_a[k].numpy() * 255))
        assert np.array_equal(ds.images[cid][i, int(b.view_b[k])], np.round(b.images_b[k].numpy() * 255))
    assert torch.allclose(b.viewpoints_a, viewpoints(b.view_a))
    # the same generator state gives the same batch (resumable sampling)
    b2 = ds.sample_batch(16, np.random.default_rng(1))
    assert torch.equal(b.object_ids, b2.object_ids) and torch.equal(b.view_b, b2.view_b)


def test_viewpoints_follow_the_nmr_convention() -> None:
    eyes = viewpoints(torch.tensor([0, 6]))
    assert torch.allclose(eyes.norm(dim=1), torch.full((2,), 2.732))
    assert torch.allclose(eyes[:, 1], torch.full((2,), 2.732 * 0.5), atol=1e-5)  # elevation 30
    assert torch.allclose(eyes[0], torch.tensor([0.0, 1.366, -2.732 * 3**0.5 / 2]), atol=1e-4)  # azimuth 0
    assert float(eyes[1, 0]) < 0 and abs(float(eyes[1, 2])) < 1e-5  # azimuth -90


def test_evaluation_batches_cover_every_view(data: Path) -> None:
    ds = NMRDataset(data, "train")
    batches = list(ds.evaluation_batches("03001627", batch_size=10))
    assert sum(b.images.shape[0] for b in batches) == 3 * NUM_VIEWS
    views = torch.cat([b.view_ids for b in batches])
    objs = torch.cat([b.object_ids for b in batches])
    assert torch.equal(views, torch.arange(NUM_VIEWS).repeat(3))
    assert torch.equal(objs, torch.arange(3).repeat_interleave(NUM_VIEWS))
    assert batches[0].voxels.shape == (10, R, R, R)


def test_convert_to_npy_then_memory_map(data: Path) -> None:
    written = convert_to_npy(data, splits=("train",))
    assert len(written) == 4 and all(p.suffix == ".npy" for p in written)
    assert not list(data.glob("*.tmp"))
    ds = NMRDataset(data, "train")
    assert isinstance(ds.images["03001627"], np.memmap)
    ref = NMRDataset(data, "train", mmap=False)
    assert np.array_equal(ds.images["03001627"], ref.images["03001627"])
    assert convert_to_npy(data, splits=("train",)) == []  # already converted


def test_missing_directory_and_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset directory not found"):
        NMRDataset(tmp_path / "nope", "train")
    with pytest.raises(FileNotFoundError, match="make-dataset"):
        NMRDataset(tmp_path, "train")
    write_nmr(tmp_path, {"03001627": 2})
    (tmp_path / "03001627_train_voxels.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"03001627_train_voxels\.npz"):
        NMRDataset(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        NMRDataset(tmp_path, "training")


def test_wrong_shapes_dtypes_and_mismatched_n(tmp_path: Path) -> None:
    write_nmr(tmp_path, {"03001627": 2})
    img = tmp_path / "03001627_train_images.npz"
    vox = tmp_path / "03001627_train_voxels.npz"
    np.savez(img, np.zeros((2, 10, 4, S, S), np.uint8))
    with pytest.raises(DatasetFormatError, match=r"\[N, 24, 4, S, S\]"):
        NMRDataset(tmp_path, "train")
    np.savez(img, np.zeros((2, NUM_VIEWS, 4, S, S), np.float32))
    with pytest.raises(DatasetFormatError, match="uint8"):
        NMRDataset(tmp_path, "train")
    np.savez(img, np.zeros((3, NUM_VIEWS, 4, S, S), np.uint8))
    with pytest.raises(DatasetFormatError, match="3 objects in the images file but 2"):
        NMRDataset(tmp_path, "train")
    np.savez(img, np.zeros((2, NUM_VIEWS, 4, S, S), np.uint8))
    np.savez(vox, np.zeros((2, R, R), np.uint8))
    with pytest.raises(DatasetFormatError, match=r"\[N, R, R, R\]"):
        NMRDataset(tmp_path, "train")
    vox.write_bytes(b"not a zip file")
    with pytest.raises(DatasetFormatError, match="not a readable"):
        NMRDataset(tmp_path, "train")


def test_flattened_image_layout_is_accepted(tmp_path: Path) -> None:
    write_nmr(tmp_path, {"03001627": 2})
    np.savez(tmp_path / "03001627_train_images.npz", np.zeros((2 * NUM_VIEWS, 4, S, S), np.uint8))
    assert NMRDataset(tmp_path, "train").images["03001627"].shape == (2, NUM_VIEWS, 4, S, S)
