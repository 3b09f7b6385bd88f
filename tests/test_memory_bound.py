"""The up-front memory bound of a rasterization counts every channel, and bad settings fail clearly."""

from __future__ import annotations

import pytest
import torch

import softras
from softras import _memory
from softras.cameras import LookAtCamera
from softras.raster import RasterSettings, available_backends, rasterize, rasterize_channels, soft_rasterize
from softras.raster.backends import Backend

GIB = 2**30


@pytest.fixture
def eight_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 GiB available whatever this machine has, and no backend may run: a request that the
    bound lets through fails here instead of asking the allocator for tens of GiB."""
    monkeypatch.delenv(_memory.ALLOW_LARGE_ENV, raising=False)
    monkeypatch.setattr(_memory, "available_memory", lambda device=None: 8 * GIB)

    def refuse(self: Backend) -> None:
        raise AssertionError(f"backend {self.name!r} ran: the memory bound let the request through")

    monkeypatch.setattr(Backend, "load", refuse)
    monkeypatch.setattr(Backend, "load_rgba", refuse)


def _mesh() -> tuple[softras.Mesh, LookAtCamera]:
    v, f = softras.shapes.icosphere(1)
    return softras.Mesh(v, f, texture_type="vertex"), LookAtCamera(eye=[0.0, 0.0, -2.5])


def _faces(size: float = 0.8, level: int = 2) -> torch.Tensor:
    """[1, 20·4^level, 3, 3] faces of an icosphere of radius ``size`` (NDC) at depth 3."""
    v, f = softras.shapes.icosphere(level)
    fv = (v * size)[f][None].clone()
    fv[..., 2] += 3.0
    return fv


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_many_feature_channels_are_refused_before_allocating(eight_gib: None, backend: str) -> None:
    mesh, camera = _mesh()
    features = torch.zeros(mesh.num_vertices, 100_000)
    with pytest.raises(
        _memory.RequestTooLargeError,
        match=r"^features: rendering 1×256×256 pixels of 100000 channels, 80 faces needs about [0-9.]+ GiB, "
        r"but only 8\.0 GiB is available \(set SOFTRAS_ALLOW_LARGE=1",
    ):
        softras.render(mesh, camera, outputs=("features",), features=features, image_size=256, backend=backend)


def test_a_normal_request_passes_the_bound(eight_gib: None) -> None:
    fv = _faces().requires_grad_()
    for backend in ("cpu", "reference"):
        with pytest.raises(AssertionError, match="ran: the memory bound let the request through"):
            rasterize_channels(fv, RasterSettings.create(64), vertex=torch.rand(1, fv.shape[1], 3, 3), backend=backend)


@pytest.mark.parametrize("backend", ["cpu", "reference", "warp"])
@pytest.mark.parametrize("grad", [False, True])
def test_the_estimate_grows_linearly_with_the_channels(backend: str, grad: bool) -> None:
    fv = _faces()
    f = fv.shape[1]

    def total(surface: int, vertex: int) -> float:
        need = _memory.estimate_raster_bytes(
            fv, torch.zeros(1, f, 4, surface), 128, 128, 0.01, backend, grad, vertex=torch.zeros(1, f, 3, vertex)
        )
        return sum(need.values())

    for kind in ((1, 0), (0, 1)):
        sizes = [total(kind[0] * c, kind[1] * c) for c in (3, 64, 1000)]
        slope = (sizes[2] - sizes[1]) / (1000 - 64)
        assert slope >= 128 * 128 * 4  # at least the float32 output channel
        assert sizes[1] - sizes[0] == pytest.approx(slope * (64 - 3), rel=1e-9)


def test_the_cpu_estimate_counts_the_outputs_and_state_of_every_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    # cpu softmax, float32: each channel is one float32 output and one float64 sum per pixel (and
    # [C, 32, 32] float64 of tile state per thread; measured with 2 threads)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    fv = _faces(level=3)
    f = fv.shape[1]
    need = _memory.estimate_raster_bytes(fv, torch.zeros(1, f, 1, 0), 256, 256, 0.01, "cpu", False,
                                         vertex=torch.zeros(1, f, 3, 1000))  # fmt: skip
    measured = 767 * 2**20  # peak RSS of this call (docs/robustness.md)
    assert 0.9 * measured < sum(need.values()) < 1.5 * measured
    assert max(need, key=need.__getitem__) == "vertex"


def test_the_exact_counts_follow_the_contract_rules() -> None:
    from softras.raster import cpu
    from softras.raster.contract import bin_faces, pixel_ranges
    from softras.raster.reference import count_box_pairs

    assert _memory._TILES["cpu"] == cpu.DEFAULT_TILE
    if "warp" in available_backends():
        from softras.raster import warp_backend

        assert _memory._TILES["warp"] == warp_backend.DEFAULT_TILE
    fv = _faces(1.2)
    settings = RasterSettings.create((96, 80))
    h, w = settings.image_height, settings.image_width
    ranges = pixel_ranges(fv, settings.cull_radius, (h, w))
    vertex = torch.zeros(1, fv.shape[1], 3, 3)
    for backend in ("cpu", "warp"):
        req = _memory._request(fv, vertex[..., :0], vertex, h, w, backend, False, False, False, True, False, None)
        counts = _memory._exact_counts(req, fv, settings.cull_radius)
        assert counts.entries == bin_faces(ranges, _memory._TILES[backend], (h, w)).num_entries
    req = _memory._request(fv, vertex[..., :0], vertex, h, w, "reference", False, False, False, True, False, None)
    counts = _memory._exact_counts(req, fv, settings.cull_radius)
    assert counts.chunk_pairs == count_box_pairs(fv, settings)  # one chunk: every pair
    assert counts.chunk_pixels == h * w


def test_the_rough_bound_is_above_the_estimate() -> None:
    fv = _faces(1.5)
    f = fv.shape[1]
    for backend in ("cpu", "reference", "warp"):
        for grad in (False, True):
            args = (fv, torch.zeros(1, f, 4, 8), torch.zeros(1, f, 3, 100), 200, 300, backend, grad)
            req = _memory._request(*args, True, True, True, False, None)
            exact = _memory._tally(req, _memory._exact_counts(req, fv, 0.01), ("surface", "vertex")).total()
            rough = _memory._tally(req, _memory._rough_counts(req), ("surface", "vertex")).total()
            assert exact <= rough


# ---- settings and background of the raster entry points ---------------------------------------
@pytest.mark.parametrize("settings", [None, 64, (64, 64), {"image_size": 64}])
def test_settings_of_the_wrong_type_name_the_argument(settings: object) -> None:
    fv = _faces()
    tex = torch.rand(1, fv.shape[1], 1, 3)
    hint = r"settings: expected a softras\.raster\.RasterSettings \(e\.g\. RasterSettings\.create\(image_size\)\), got "
    with pytest.raises(TypeError, match=hint + type(settings).__name__):
        rasterize(fv, tex, settings)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=hint + type(settings).__name__):
        rasterize_channels(fv, settings, surface=tex)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("background", "error", "match"),
    [
        ("white", TypeError, r"background: expected 3 numbers \(one per channel\), got 'white'"),
        (0.5, TypeError, r"background: expected 3 numbers \(one per channel\), got 0\.5"),
        ([0, "a", 1], TypeError, r"background: expected 3 numbers \(one per channel\), got \[0, 'a', 1\]"),
        ([0, 1], ValueError, r"background: expected 3 finite numbers \(one per channel\), got \[0, 1\]"),
    ],
)
def test_a_background_that_is_not_numbers_names_the_argument(background: object, error: type, match: str) -> None:
    fv = _faces()
    with pytest.raises(error, match=match):
        rasterize_channels(
            fv, RasterSettings.create(8), surface=torch.rand(1, fv.shape[1], 1, 3), background=background
        )


def test_the_original_entry_point_names_its_arguments() -> None:
    fv = _faces()
    tex = torch.rand(1, fv.shape[1], 1, 3)
    with pytest.raises(TypeError, match=r"background_color: expected 3 numbers \(r, g, b\), got 'white'"):
        soft_rasterize(fv, tex, 8, background_color="white")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="image_size: expected integers, got '8'"):
        soft_rasterize(fv, tex, "8")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"backend: expected a backend name \(str\) or None, got int"):
        soft_rasterize(fv, tex, 8, backend=1)  # type: ignore[arg-type]
