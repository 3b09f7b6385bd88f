"""Backend descriptors: what each backend is, where it runs and how to load it.

Everything that lists backends — :func:`default_backend`, :func:`available_backends`,
``softras bench`` and the docs' backend table — is derived from :data:`BACKENDS`. A new backend
is one module implementing ``rasterize(inputs: RasterInputs, settings: RasterSettings) ->
RasterResult`` (see :mod:`softras.raster.contract`) plus one :class:`Backend` entry here; the
conformance suite (``tests/test_backends.py``) then tests it with no test written by hand.
A backend may also give an RGBA entry (``rgba_entry``) for the original's call, channels and
alpha in one [B, C + 1, H, W] tensor written in place; without one, the dispatch concatenates.

Implementations are imported on first use, so that importing softras never compiles a kernel
and never needs an optional dependency.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .contract import KernelParams, RasterInputs, RasterResult
from .settings import RasterSettings

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendFn",
    "RgbaFn",
    "available_backends",
    "backend_table",
    "default_backend",
    "get_backend",
    "register_backend",
]

BackendFn = Callable[[RasterInputs, RasterSettings], RasterResult]
RgbaFn = Callable[[RasterInputs, RasterSettings], torch.Tensor]


@dataclass(frozen=True)
class Backend:
    """One rasterization backend.

    Attributes:
        name: the value of ``backend=``.
        summary: one line for tables and ``--help``.
        devices: torch device types it accepts (``'cpu'``, ``'cuda'``, ...; ``'*'``: any).
        priority: the default for a device is the available backend with the highest priority.
        entry: ``'module:function'`` of the implementation (imported on first use).
        requires: importable modules it needs, with the pip extra that installs them.
        dtypes: the dtypes its kernels compute in. The dispatch computes float16 / bfloat16
            inputs in float32 for every backend (``softras._precision.compute_dtype``).
        aliases: other names accepted for it.
        benchmark_on: device types where ``softras bench`` measures it by default.
        rgba_entry: ``'module:function'`` returning ``cat([channels, alpha], 1)`` of the same
            call ([B, C + 1, H, W]) without the concatenation, or None.
        flops_entry: ``'module:function'`` of its flop model, ``flops_per_pair(params:
            KernelParams) -> float``: floating-point operations of its forward kernel per kept
            (pixel, face) pair, for the roofline line of ``softras bench``; None: no model.
        uv_textures: whether it samples UV textures (``RasterInputs.uv``).
        perspective_correct: whether it interpolates vertex attributes perspective-correct
            (``RasterSettings.perspective_correct``).
    """

    name: str
    summary: str
    devices: tuple[str, ...]
    priority: int
    entry: str
    requires: dict[str, str] = field(default_factory=dict)
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
    aliases: tuple[str, ...] = ()
    benchmark_on: tuple[str, ...] = ()
    rgba_entry: str | None = None
    flops_entry: str | None = None
    uv_textures: bool = False
    perspective_correct: bool = False
    _fn: list[BackendFn] = field(default_factory=list, repr=False, compare=False)
    _rgba_fn: list[RgbaFn] = field(default_factory=list, repr=False, compare=False)

    def available(self) -> bool:
        """Whether its required modules are installed (nothing is imported)."""
        return all(_installed(m) for m in self.requires)

    def missing(self) -> str | None:
        """A sentence naming what to install, or None when available."""
        for module, extra in self.requires.items():
            if not _installed(module):
                return f"backend {self.name!r} needs {module} ({extra}), which is not installed"
        return None

    def runs_on(self, device: torch.device) -> bool:
        return "*" in self.devices or device.type in self.devices

    def load(self) -> BackendFn:
        """The implementation (imported once)."""
        if not self._fn:
            self._fn.append(self._import(self.entry))
        return self._fn[0]

    def load_rgba(self) -> RgbaFn:
        """The RGBA implementation: ``rgba_entry``, or :meth:`load`'s result concatenated."""
        if not self._rgba_fn:
            if self.rgba_entry is not None:
                self._rgba_fn.append(self._import(self.rgba_entry))
            else:
                full = self.load()

                def concatenated(inputs: RasterInputs, settings: RasterSettings) -> torch.Tensor:
                    result = full(inputs, settings)
                    return torch.cat([result.channels, result.alpha], dim=1)

                self._rgba_fn.append(concatenated)
        return self._rgba_fn[0]

    def load_flops(self) -> Callable[[KernelParams], float] | None:
        """Its flop model (``flops_entry``, imported on first use), or None without one."""
        return None if self.flops_entry is None else self._import(self.flops_entry)

    def _import(self, entry: str) -> Callable:
        why = self.missing()
        if why is not None:
            raise ImportError(why)
        module, _, function = entry.partition(":")
        return getattr(importlib.import_module(module), function)


BACKENDS: dict[str, Backend] = {}


@functools.cache
def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (looked up once per process: dispatch runs every call)."""
    return importlib.util.find_spec(module) is not None


def register_backend(backend: Backend) -> None:
    """Make ``backend`` selectable by its name and aliases."""
    if not isinstance(backend, Backend):
        raise TypeError(f"backend: expected a softras.raster.Backend, got {type(backend).__name__}")
    BACKENDS[backend.name] = backend


register_backend(
    Backend(
        name="reference",
        summary="pure PyTorch, the oracle; any device, autograd gradients",
        devices=("*",),
        priority=0,
        entry="softras.raster.reference:rasterize",
        benchmark_on=("cpu", "cuda"),
        uv_textures=True,
        perspective_correct=True,
    )
)
register_backend(
    Backend(
        name="cpu",
        summary="fused tile-binned Numba kernels (float64 arithmetic inside)",
        devices=("cpu",),
        priority=20,
        entry="softras.raster.cpu:rasterize",
        rgba_entry="softras.raster.cpu:rasterize_rgba",
        flops_entry="softras.raster.cpu_kernels:flops_per_pair",
        requires={"numba": "a dependency of softras"},
        benchmark_on=("cpu",),
        uv_textures=True,
        perspective_correct=True,
    )
)
register_backend(
    Backend(
        name="warp",
        summary="tile-binned NVIDIA Warp kernels on CUDA or CPU tensors",
        devices=("cpu", "cuda"),
        priority=10,
        entry="softras.raster.warp_backend:rasterize",
        requires={"warp": "pip install 'softras[gpu]'"},
        aliases=("cuda",),
        benchmark_on=("cuda",),
        uv_textures=True,
        perspective_correct=True,
    )
)


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (or one of its aliases); a clear error if unknown or missing."""
    for backend in BACKENDS.values():
        if name == backend.name or name in backend.aliases:
            why = backend.missing()
            if why is not None:
                raise ImportError(why)
            return backend
    raise ValueError(f"backend: expected one of {available_backends()}, got {name!r}")


def available_backends() -> list[str]:
    """Names accepted by ``backend=`` (aliases included), sorted."""
    names = [n for b in BACKENDS.values() if b.available() for n in (b.name, *b.aliases)]
    return sorted(names)


def default_backend(device: torch.device | str) -> str:
    """The backend used when ``backend=None`` for tensors on ``device``: the available one with
    the highest priority that runs there (named by its alias when one is the device type)."""
    device = torch.device(device)
    runs = [b for b in BACKENDS.values() if b.available() and b.runs_on(device)]
    best = max(runs, key=lambda b: b.priority)
    return device.type if device.type in best.aliases else best.name  # e.g. 'cuda' for warp on CUDA


def backend_table() -> str:
    """The Markdown table of every registered backend (README's table is this text; a test checks)."""
    rows = [
        "| backend | aliases | devices | default on | dtypes | needs | what it is |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in sorted(BACKENDS.values(), key=lambda b: -b.priority):
        devices = "any" if "*" in b.devices else ", ".join(b.devices)
        default_on = [d for d in ("cpu", "cuda") if b.runs_on(torch.device(d)) and _best_for(d) is b]
        dtypes = ", ".join(str(d).removeprefix("torch.") for d in b.dtypes)
        needs = ", ".join(f"{m} ({extra})" for m, extra in b.requires.items()) or "–"
        rows.append(
            f"| `{b.name}` | {', '.join(f'`{a}`' for a in b.aliases) or '–'} | {devices} | "
            f"{', '.join(default_on) or '–'} | {dtypes} | {needs} | {b.summary} |"
        )
    return "\n".join(rows)


def _best_for(device_type: str) -> Backend:
    """The backend with the highest priority that runs on ``device_type``, installed or not."""
    return max((b for b in BACKENDS.values() if b.runs_on(torch.device(device_type))), key=lambda b: b.priority)
