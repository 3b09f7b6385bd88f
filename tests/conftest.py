"""Test-session setup.

The ``cpu`` backend compiles one kernel per combination of options by default
(``cpu_kernels.Variant``); the suite sweeps far more combinations than a user does, so it runs
the generic kernels, which read every option at run time and compile once.
``tests/test_specialised_kernels.py`` checks the specialised kernels against them.

Two things keep a run with pytest-xdist workers (``make test``) short on a cold kernel cache:

* The generic kernels are compiled once for the whole run, not once per worker: before its
  first test each worker compiles them for one dtype (float64 or float32, a different one per
  worker) under a file lock, then takes the other dtype under its lock, by which time another
  worker has usually put it in the shared on-disk cache. Without the lock every worker would
  compile both dtypes at the same moment, ~1.5 min each.
* Tests marked ``heavy(seconds)`` (a minute or more on a cold cache, about ``seconds`` on two
  busy cores) are collected first, longest first, and the workers take the tests one at a time
  in that order (xdist's ``loadgroup`` scheduler where no ``--dist`` is given; its default hands
  each worker a quarter of its share up front, so the first worker would get every heavy test):
  the workers start the long tests at once and finish together.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("SOFTRAS_CPU_KERNELS", "generic")

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-worker lock, each worker compiles on demand
    fcntl = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "heavy(seconds): a long test on a cold kernel cache; collected first, longest first"
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``-n`` without ``--dist`` (xdist's ``load``): schedule test by test (``loadgroup``, whose work
    units are single tests unless marked ``xdist_group``), not in chunks."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadGroupScheduling

    return LoadGroupScheduling(config, log)


def _heavy_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("heavy")
    return 0.0 if marker is None else float(marker.args[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``heavy`` tests first, longest first (a stable sort: the same order in every xdist worker)."""
    items.sort(key=lambda item: -_heavy_seconds(item))


@pytest.fixture(scope="session", autouse=True)
def _generic_kernels_compiled_once(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """In an xdist worker, compile the ``cpu`` backend's kernels of both dtypes into the on-disk
    cache, each dtype by one worker only (see the module doc)."""
    worker = getattr(request.config, "workerinput", {}).get("workerid")  # set in xdist workers only
    if worker is None or fcntl is None:
        yield
        return
    import torch

    # pytest's base folder is per worker (.../popen-gw0); its parent is shared by the run's workers
    shared = tmp_path_factory.getbasetemp().parent
    dtypes = ["float64", "float32"]
    first = int(worker.removeprefix("gw") or 0) % len(dtypes)
    for name in dtypes[first:] + dtypes[:first]:
        with open(shared / f"softras-cpu-kernels-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _render_forward_and_backward(getattr(torch, name))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    yield


def _render_forward_and_backward(dtype: object) -> None:
    """One face with surface, then vertex colours, forward and backward on the ``cpu`` backend."""
    import torch

    from softras.raster import RasterSettings, rasterize

    fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.5]]]], dtype=dtype)
    for texture_type, corners in (("surface", 4), ("vertex", 3)):
        leaves = [fv.clone().requires_grad_(True), torch.ones(1, 1, corners, 3, dtype=dtype).requires_grad_(True)]
        settings = RasterSettings.create(8, texture_type=texture_type)
        rasterize(*leaves, settings, backend="cpu").sum().backward()
