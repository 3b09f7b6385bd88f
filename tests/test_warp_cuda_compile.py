"""Every Warp kernel module of softras compiles to CUDA binaries (sm_80 and sm_90), without a GPU.

Warp compiles CUDA code through NVRTC, which ships inside warp-lang: no GPU, driver or CUDA
toolkit is needed, so CI catches code that Warp's CPU path (Clang) accepts but NVRTC rejects.
The modules are found from the code that builds them: :func:`softras.raster.warp_kernels.kernels`
for each compute dtype the ``warp`` backend maps to (``warp_backend._WP_DTYPE``). Each kernel is
declared with ``module="unique"`` (one Warp module per kernel) and reads every rendering option
at run time, so one compile per (kernel, dtype) covers every option combination, the defaults
included. The binaries go to a temporary folder, never to the repository or Warp's cache.

Skipped, with the reason, only where Warp is not installed or its NVRTC cannot target the
architectures (a Warp build without CUDA).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

wp = pytest.importorskip("warp", reason="NVIDIA Warp (warp-lang) is not installed")

ARCHS = (80, 90)


def _nvrtc_archs() -> list[int]:
    """The architectures Warp's bundled NVRTC can generate code for ([] without CUDA support)."""
    wp.init()
    get_archs = getattr(wp, "get_cuda_supported_archs", None)
    return list(get_archs()) if get_archs is not None else []


def _require_nvrtc() -> None:
    if not hasattr(wp, "compile_aot_module"):
        pytest.skip(f"warp {wp.__version__} has no wp.compile_aot_module (needs warp-lang >= 1.10)")
    missing = [a for a in ARCHS if a not in _nvrtc_archs()]
    if missing:
        pytest.skip(f"Warp's NVRTC is not available for sm_{missing} (Warp built without CUDA?)")


def softras_warp_modules() -> dict[str, object]:
    """``{label: wp Module}`` of every kernel the ``warp`` backend launches, per compute dtype."""
    from softras.raster import warp_backend, warp_kernels

    warp_backend._init()  # softras's Warp configuration (quiet logs), as the backend runs it
    modules: dict[str, object] = {}
    for dtype in dict.fromkeys(warp_backend._WP_DTYPE.values()):
        for name, kernel in vars(warp_kernels.kernels(dtype)).items():
            if isinstance(kernel, wp.Kernel):
                modules.setdefault(f"{name}[{dtype.__name__}]", kernel.module)
    return modules


def _compile(module: object, arch: int, out: Path) -> list[Path]:
    """Compile ``module`` for ``sm_<arch>`` as a CUBIN into ``out``; the artifacts written."""
    paths = [Path(p) for p in wp.compile_aot_module(module, arch=arch, module_dir=out, use_ptx=False)]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0, path
        assert path.is_relative_to(out), path
    return paths


def test_modules_are_found() -> None:
    """The discovery sees the backend's five kernels for both dtypes (ten distinct modules)."""
    modules = softras_warp_modules()
    names = {label.split("[")[0] for label in modules}
    assert {"prepare", "forward", "backward", "reduce", "chain"} <= names
    assert len({id(m) for m in modules.values()}) == len(modules) == 2 * len(names)


@pytest.mark.parametrize("arch", ARCHS, ids=[f"sm_{a}" for a in ARCHS])
def test_every_module_compiles_to_cuda(arch: int, tmp_path: Path) -> None:
    _require_nvrtc()
    t0 = time.perf_counter()
    for label, module in softras_warp_modules().items():
        (cubin,) = _compile(module, arch, tmp_path / label)
        assert cubin.name.endswith(f".sm{arch}.cubin"), cubin
    print(f"sm_{arch}: compiled in {time.perf_counter() - t0:.1f} s")


def test_nvrtc_errors_fail_the_compile(tmp_path: Path) -> None:
    """The check has teeth: code that only NVRTC sees (``__CUDA_ARCH__`` is defined only there)
    and does not compile makes ``compile_aot_module`` raise."""
    _require_nvrtc()

    @wp.func_native("#if defined(__CUDA_ARCH__)\nreturn not_declared_anywhere(x);\n#else\nreturn x;\n#endif\n")
    def cuda_only_broken(x: float) -> float: ...

    @wp.kernel(enable_backward=False, module="unique")
    def uses_it(a: wp.array(dtype=float)):
        i = wp.tid()
        a[i] = cuda_only_broken(a[i])

    # Warp's CPU compiler (Clang) accepts it: the CPU-only tests would not see the error.
    uses_it.module.options["cpu_compiler_flags"] = ""  # portable object, no -march=native warning
    (cpu_object,) = wp.compile_aot_module(uses_it.module, device="cpu", module_dir=tmp_path / "cpu")
    assert Path(cpu_object).is_file()
    with pytest.raises(Exception, match="CUDA kernel build failed"):
        _compile(uses_it.module, ARCHS[0], tmp_path / "cuda")
