"""Where the JIT-compiled kernels (Numba for ``cpu``, Warp for ``warp``/``cuda``) are cached on disk.

Numba refuses to decorate a ``cache=True`` function when it finds no writable folder, and Warp
fails at ``wp.init()`` when its cache folder (``~/.cache/warp``) cannot be created. A read-only
installation with an unwritable HOME (a container or a service account) would then fail on
import. softras picks the folder itself, once per process, in this order:

1. an explicit choice: ``NUMBA_CACHE_DIR`` (Numba) or ``WARP_CACHE_PATH`` (Warp), when writable;
2. the package folder (``softras/raster/__pycache__``, Numba's own default; ``.../__pycache__/warp``);
3. the user cache: ``$XDG_CACHE_HOME/softras`` or ``~/.cache/softras``;
4. a per-user temp folder: ``<tempdir>/softras-<uid>``;
5. no cache at all (kernels compile in every process).

Choices 3 and 4 are seeded from any read-only warm cache (the package folder, or an unwritable
explicit folder): its files are copied over once, so a cache that ``softras warmup`` filled at
install time is reused by every user instead of being recompiled. Any choice after the first
candidate emits one :class:`JitCacheWarning` that names the folder used.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CacheChoice",
    "JitCacheWarning",
    "choose_cache_dir",
    "configure_numba_cache",
    "is_writable_dir",
    "warp_cache_dir",
]

_RASTER_DIR = Path(__file__).resolve().parent / "raster"
# every module of softras/raster whose kernels Numba caches (``cache=True``): all are seeded
_KERNEL_SOURCES = ("cpu_kernels.py", "cpu_binning.py", "cpu_lanes.py")


class JitCacheWarning(UserWarning):
    """The JIT cache is not in its first-choice folder (or is disabled)."""


@dataclass(frozen=True)
class CacheChoice:
    """The folder chosen for one JIT cache.

    Attributes:
        path: the folder, or ``None`` when no candidate is writable (caching disabled).
        label: which candidate it is (``'explicit'``, ``'package'``, ``'user'``, ``'temp'``, ``'none'``).
        tried: every candidate examined, in order, as ``(label, folder)``.
    """

    path: Path | None
    label: str
    tried: tuple[tuple[str, Path], ...]


def is_writable_dir(path: Path) -> bool:
    """Whether ``path`` exists or can be created, and a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _user_cache_root() -> Path | None:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "softras"
    home = os.path.expanduser("~")
    return None if home == "~" else Path(home) / ".cache" / "softras"


def _temp_root() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path(tempfile.gettempdir()) / f"softras-{uid}"


def _candidates(env_var: str, package_dir: Path, sub: str) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    if os.environ.get(env_var):
        out.append(("explicit", Path(os.environ[env_var])))
    out.append(("package", package_dir))
    user = _user_cache_root()
    if user is not None:
        out.append(("user", user / sub))
    out.append(("temp", _temp_root() / sub))
    return out


def choose_cache_dir(candidates: list[tuple[str, Path]]) -> CacheChoice:
    """The first writable folder of ``candidates`` (``(label, folder)`` pairs), else no cache."""
    for label, path in candidates:
        if is_writable_dir(path):
            return CacheChoice(path, label, tuple(candidates))
    return CacheChoice(None, "none", tuple(candidates))


def _seed(target: Path, sources: list[Path], pattern: str) -> int:
    """Copy entries matching ``pattern`` that ``target`` lacks from readable ``sources``; their count."""
    copied = 0
    for src in sources:
        if not src.is_dir() or src.resolve() == target.resolve():
            continue
        for entry in src.glob(pattern):
            dest = target / entry.name
            if dest.exists():
                continue
            try:
                if entry.is_dir():
                    shutil.copytree(entry, dest)
                else:
                    shutil.copy2(entry, dest)
            except OSError:
                continue
            copied += 1
    return copied


def _warn(kind: str, choice: CacheChoice, copied: int) -> None:
    first_label, first = choice.tried[0]
    if choice.path is None:
        tried = ", ".join(str(p) for _, p in choice.tried)
        msg = f"softras: no writable folder for the {kind} kernel cache (tried {tried}); every process compiles"
    else:
        seeded = f", {copied} warm entries copied from the read-only cache" if copied else ""
        msg = (
            f"softras: the {first_label} {kind} cache folder {first} is not writable; "
            f"using the {choice.label} folder {choice.path}{seeded}"
        )
    warnings.warn(msg + " (set " + ("NUMBA_CACHE_DIR" if kind == "Numba" else "WARP_CACHE_PATH") +
                  " to choose; see docs/robustness.md)", JitCacheWarning, stacklevel=3)


@functools.lru_cache(maxsize=1)
def configure_numba_cache() -> bool:
    """Point Numba's cache at the first usable folder (see the module docstring); whether caching is on.

    Call before the ``cache=True`` kernels are decorated. Sets ``numba.config.CACHE_DIR`` for the
    user or temp folder, clears it for the package folder (Numba's in-tree ``__pycache__``).
    """
    import numba
    from numba.core.caching import _CacheLocator

    package = _RASTER_DIR / "__pycache__"
    subpath = _CacheLocator.get_suitable_cache_subpath(str(_RASTER_DIR / _KERNEL_SOURCES[0]))
    cands = _candidates("NUMBA_CACHE_DIR", package, "numba")
    choice = choose_cache_dir(cands)
    if choice.label == "explicit":
        return True
    copied = 0
    if choice.label == "package":
        numba.config.CACHE_DIR = ""
    elif choice.path is not None:
        numba.config.CACHE_DIR = str(choice.path)
        target = choice.path / subpath
        target.mkdir(parents=True, exist_ok=True)
        sources = [package]
        if cands[0][0] == "explicit":
            sources.insert(0, cands[0][1] / subpath)
        copied = sum(_seed(target, sources, f"{Path(src).stem}.*.nb[ic]") for src in _KERNEL_SOURCES)
    if choice.label != cands[0][0]:
        _warn("Numba", choice, copied)
    return choice.path is not None


@functools.lru_cache(maxsize=1)
def warp_cache_dir() -> str | None:
    """The folder for Warp's kernel cache (same order as Numba's), or ``None`` (no usable folder).

    Set it as ``warp.config.kernel_cache_dir`` before ``wp.init()``.
    """
    package = _RASTER_DIR / "__pycache__" / "warp"
    cands = _candidates("WARP_CACHE_PATH", package, "warp")
    choice = choose_cache_dir(cands)
    copied = 0
    if choice.path is not None and choice.label not in ("explicit", "package"):
        sources = [package] + ([cands[0][1]] if cands[0][0] == "explicit" else [])
        copied = _seed(choice.path, sources, "*")
    if choice.label != cands[0][0]:
        _warn("Warp", choice, copied)
    return None if choice.path is None else str(choice.path)
