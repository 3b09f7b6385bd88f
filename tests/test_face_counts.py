"""Batches of meshes with different face counts: ``rasterize_channels(..., face_counts=)``.

Each item of a padded batch equals rendering its own faces alone (float64: 1e-12), outputs and
gradients, in every alpha aggregation (``sum`` divides by the item's own count), on every backend.
"""

from __future__ import annotations

import pytest
import torch

from softras.raster import RasterSettings, rasterize_channels

from .helpers import CPU_BACKENDS


def _mesh(faces: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    fv = torch.rand(1, faces, 3, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    fv[..., 2] = 2 + torch.rand(1, faces, 3, generator=g, dtype=torch.float64)
    return fv, torch.rand(1, faces, 3, 3, generator=g, dtype=torch.float64)


def _padded(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    counts = [fv.shape[1] for fv, _ in items]
    f = max(counts)
    fv = torch.cat([torch.nn.functional.pad(a, (0, 0, 0, 0, 0, f - a.shape[1]), value=0.3) for a, _ in items])
    colours = torch.cat([torch.nn.functional.pad(c, (0, 0, 0, 0, 0, f - c.shape[1]), value=0.7) for _, c in items])
    return fv, colours, counts


@pytest.mark.parametrize("alpha", ["sum", "prod", "max", "hard", "einstein"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_each_item_equals_its_mesh_alone(backend: str, alpha: str) -> None:
    items = [_mesh(5, 0), _mesh(2, 1), _mesh(4, 2)]
    fv, colours, counts = _padded(items)
    fv.requires_grad_()
    colours.requires_grad_()
    s = RasterSettings.create(12, sigma_val=1e-2, gamma_val=1e-1, aggr_func_alpha=alpha, with_depth=True)
    batch = rasterize_channels(fv, s, vertex=colours, face_counts=counts, backend=backend)
    upstream = [torch.rand_like(batch.channels), torch.rand_like(batch.alpha), torch.rand_like(batch.depth)]
    torch.autograd.backward([batch.channels, batch.alpha, batch.depth], upstream)
    for b, (item_fv, item_colours) in enumerate(items):
        item_fv = item_fv.clone().requires_grad_()
        item_colours = item_colours.clone().requires_grad_()
        alone = rasterize_channels(item_fv, s, vertex=item_colours, backend=backend)
        for name in ("channels", "alpha", "depth"):
            torch.testing.assert_close(getattr(batch, name)[b], getattr(alone, name)[0], atol=1e-12, rtol=0)
        torch.autograd.backward([alone.channels, alone.alpha, alone.depth], [u[b : b + 1] for u in upstream])
        n = counts[b]
        torch.testing.assert_close(fv.grad[b, :n], item_fv.grad[0], atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(colours.grad[b, :n], item_colours.grad[0], atol=1e-12, rtol=1e-10)
        assert (fv.grad[b, n:] == 0).all() and (colours.grad[b, n:] == 0).all()


def test_empty_item_and_bad_counts() -> None:
    fv, colours = _mesh(3, 4)
    fv = fv.expand(2, -1, -1, -1)
    s = RasterSettings.create(8, aggr_func_alpha="sum")
    out = rasterize_channels(fv, s, vertex=colours.expand(2, -1, -1, -1), face_counts=[3, 0], backend="reference")
    assert out.alpha[1].abs().max() == 0 and out.alpha[0].max() > 0
    with pytest.raises(ValueError, match=r"face_counts: expected shape \[2\]"):
        rasterize_channels(fv, s, face_counts=[3])
    with pytest.raises(ValueError, match=r"face_counts: expected counts in \[0, 3\]"):
        rasterize_channels(fv, s, face_counts=[4, 1])
    with pytest.raises(TypeError, match="face_counts: expected integers"):
        rasterize_channels(fv, s, face_counts=[1.0, 2.0])


@pytest.mark.parametrize("rgb", ["softmax", "hard"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_per_item_background_equals_each_alone(backend: str, rgb: str) -> None:
    items = [_mesh(4, 5), _mesh(3, 6)]
    fv, colours, counts = _padded(items)
    background = torch.tensor([[1.0, 0.2, 0.0], [0.0, 0.3, 0.9]], dtype=torch.float64, requires_grad=True)
    s = RasterSettings.create(10, sigma_val=1e-2, gamma_val=1e-1, aggr_func_rgb=rgb)
    batch = rasterize_channels(fv, s, vertex=colours, face_counts=counts, background=background, backend=backend)
    assert batch.channels.shape == (2, 3, 10, 10)
    for b, (item_fv, item_colours) in enumerate(items):
        alone = rasterize_channels(item_fv, s, vertex=item_colours, background=background[b].tolist(), backend=backend)
        torch.testing.assert_close(batch.channels[b], alone.channels[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(batch.alpha[b], alone.alpha[0], atol=1e-12, rtol=0)
    batch.channels.sum().backward()
    assert background.grad.shape == (2, 3) and (background.grad > 0).all()  # the uncovered pixels' share
