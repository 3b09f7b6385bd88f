"""The backend descriptors are the one list of backends: selection, listing, docs derive from them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import softras.raster as raster
from softras.raster import RasterResult, RasterSettings, rasterize_channels
from softras.raster.backends import Backend, available_backends, backend_table, default_backend, get_backend

README = Path(__file__).resolve().parents[1] / "README.md"


def _calls_reference(inputs, settings):  # a "new backend": the reference under another name
    from softras.raster.reference import rasterize

    return rasterize(inputs, settings)


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Backend:
    fake = Backend(
        name="fake", summary="test double", devices=("cpu",), priority=99, entry=f"{__name__}:_calls_reference"
    )
    monkeypatch.setitem(raster.BACKENDS, "fake", fake)
    return fake


def test_readme_table_is_generated_from_the_descriptors() -> None:
    text = README.read_text()
    begin = text.index("<!-- backend-table:begin")
    body = text[text.index("\n", begin) + 1 : text.index("<!-- backend-table:end -->")].strip()
    assert body == backend_table(), "README's backend table is stale: paste softras.raster.backends.backend_table()"


def test_a_registered_backend_is_listed_selected_and_run(fake_backend: Backend) -> None:
    assert "fake" in available_backends()
    assert default_backend("cpu") == "fake"  # highest priority wins
    assert default_backend("meta") == "reference"  # runs anywhere
    fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], dtype=torch.float64)
    s = RasterSettings.create(8, sigma_val=1e-3)
    out = rasterize_channels(fv, s, vertex=torch.ones(1, 1, 3, 2, dtype=torch.float64))
    assert isinstance(out, RasterResult) and out.channels.shape == (1, 2, 8, 8)
    assert "`fake`" in backend_table()


def test_unknown_and_missing_backends_get_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"backend: expected one of \[.*'reference'.*\], got 'nope'"):
        get_backend("nope")
    missing = dataclasses.replace(raster.BACKENDS["cpu"], requires={"softras_no_such_module": "pip install it"})
    monkeypatch.setitem(raster.BACKENDS, "cpu", missing)
    assert "cpu" not in available_backends()
    assert default_backend("cpu") != "cpu"
    with pytest.raises(ImportError, match="softras_no_such_module"):
        get_backend("cpu")


def test_a_dtype_the_backend_cannot_compute_in_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    f64_only = Backend(
        name="f64", summary="test double", devices=("cpu",), priority=0, entry=f"{__name__}:_calls_reference",
        dtypes=(torch.float64,),
    )  # fmt: skip
    monkeypatch.setitem(raster.BACKENDS, "f64", f64_only)
    s = RasterSettings.create(4)
    for dtype in (torch.float32, torch.float16):  # half inputs would be computed in float32
        fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], dtype=dtype)
        with pytest.raises(TypeError, match=rf"backend 'f64' computes in torch\.float64, got {dtype}"):
            rasterize_channels(fv, s, backend="f64")
    fv64 = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], dtype=torch.float64)
    assert rasterize_channels(fv64, s, backend="f64").alpha.dtype == torch.float64


def test_register_backend_rejects_non_descriptors() -> None:
    with pytest.raises(TypeError, match=r"expected a softras\.raster\.Backend"):
        raster.register_backend(lambda *a: None)  # type: ignore[arg-type]
