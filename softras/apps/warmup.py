"""Compile the JIT kernels into the on-disk cache ahead of time: ``softras warmup``.

Run it once after installing (as the user who owns the install, or with ``NUMBA_CACHE_DIR`` /
``WARP_CACHE_PATH`` pointing at a shared folder) so that later processes, including other users'
with a read-only install, load the kernels in about a second instead of compiling them
(see docs/robustness.md). Python API::

    from softras.apps.warmup import warmup
    timings = warmup(("cpu",))   # {('cpu', 'float32'): seconds, ('cpu', 'float64'): seconds}
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from softras.apps import Command, UsageError

__all__ = ["warmup"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# A batch of two with this many faces each: enough for the parallel forms of the ``cpu``
# backend's per-face passes (small calls run them serially; both are compiled here).
_MANY_FACES = 8192


def _render_once(backend: str, dtype: torch.dtype, device: torch.device) -> None:
    from softras.raster import RasterSettings, rasterize

    one = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.5]]]], dtype=dtype, device=device)
    for fv in (one, one.expand(2, _MANY_FACES, 3, 3)):
        b, f = fv.shape[:2]
        for texture_type, corners in (("surface", 4), ("vertex", 3)):
            verts = fv.clone().requires_grad_(True)
            textures = torch.rand(b, f, corners, 3).to(dtype=dtype, device=device).requires_grad_(True)
            settings = RasterSettings.create(8, texture_type=texture_type)
            rasterize(verts, textures, settings, backend=backend).sum().backward()


def _run_apps(backend: str) -> None:
    """One tiny run of each app (16 px, one iteration, into a temporary folder): the ``cpu`` backend
    compiles a kernel per combination of options (``cpu_kernels.Variant``), and this compiles the
    ones the apps use, in the dtype they use (float32)."""
    from softras.apps.deform import run_deform
    from softras.apps.fit_articulated import run_fit_articulated
    from softras.apps.fit_pose import run_fit_pose
    from softras.apps.render import run_render
    from softras.recon.model import ModelConfig, ReconModel

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        out = Path(tmp)
        run_render(None, out / "render", image_size=16, texture_res=2, step_deg=180, sweep_frames=2,
                   backend=backend, quiet=True)  # fmt: skip
        run_deform(out_dir=out / "deform", iters=1, image_size=16, views=2, backend=backend, progress=False)
        run_fit_pose(out / "pose", starts=1, iters=1, image_size=16, backend=backend, quiet=True)
        run_fit_articulated(out / "articulated", iters=1, image_size=16, backend=backend, quiet=True)
        for variant in ("full", "silhouette"):
            model = ReconModel(ModelConfig(variant=variant), backend=backend)
            vertices = model.decoder.vertices_base[None].detach().clone().requires_grad_(True)
            colors = torch.rand(1, model.faces.shape[0], 3) if variant == "full" else None
            model.render(vertices, torch.tensor([[0.0, 0.0, -2.732]]), colors).sum().backward()


def warmup(
    backends: Sequence[str] = ("cpu",), dtypes: Sequence[str] = ("float32", "float64"), apps: bool = True
) -> dict[tuple[str, str], float]:
    """Compile forward and backward kernels of ``backends`` for ``dtypes``, filling the kernel cache.

    Args:
        backends: backend names (``'cpu'``, ``'warp'``, ``'cuda'``); ``'cuda'`` renders on the GPU.
        dtypes: ``'float32'`` and/or ``'float64'``.
        apps: also compile the ``cpu`` kernels the apps use (one tiny run of each, in float32).

    Returns:
        Seconds taken per ``(backend, dtype)`` (compile time when the cache was cold).

    Raises:
        ValueError: naming ``backends`` or ``dtypes`` for an unknown entry.
    """
    from softras.raster import available_backends

    for name in backends:
        if name not in available_backends() or name == "reference":
            raise ValueError(f"backends: expected JIT backends among {available_backends()}, got {name!r}")
    for name in dtypes:
        if name not in _DTYPES:
            raise ValueError(f"dtypes: expected 'float32' or 'float64', got {name!r}")
    timings: dict[tuple[str, str], float] = {}
    for backend in backends:
        device = torch.device("cuda" if backend == "cuda" else "cpu")
        for name in dtypes:
            start = time.perf_counter()
            _render_once(backend, _DTYPES[name], device)
            if apps and name == "float32" and backend == "cpu":  # Warp reads the options at run time
                _run_apps(backend)
            timings[(backend, name)] = time.perf_counter() - start
    return timings


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", action="append", dest="backends", metavar="NAME",
        help="backend to compile (repeatable; default: cpu, plus warp when installed)",
    )
    parser.add_argument(
        "--dtype", action="append", dest="dtypes", choices=sorted(_DTYPES), help="dtype (repeatable; default: both)"
    )


def _run(args: argparse.Namespace) -> int:
    from softras import _jit_cache
    from softras.raster import available_backends

    backends = args.backends or ["cpu"] + (["warp"] if "warp" in available_backends() else [])
    try:
        timings = warmup(backends, args.dtypes or list(_DTYPES))
    except ValueError as err:
        raise UsageError(str(err)) from err
    for (backend, dtype), seconds in timings.items():
        print(f"{backend:>6} {dtype}: {seconds:6.1f} s")
    if "cpu" in backends:
        import numba

        where = numba.config.CACHE_DIR or str(_jit_cache._RASTER_DIR / "__pycache__")
        print(f"Numba cache: {where if _jit_cache.configure_numba_cache() else 'disabled'}")
    if any(b in ("warp", "cuda") for b in backends):
        print(f"Warp cache: {_jit_cache.warp_cache_dir() or 'Warp default'}")
    return 0


COMMAND = Command("warmup", "compile the JIT kernels into the on-disk cache (for shared installs)",
                  _add_arguments, _run, order=190)
