"""Reliability (issue 14): read-only installs, trusted checkpoints, bounded requests, clear errors."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from softras import _jit_cache

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- item 1: JIT cache


def test_choose_cache_dir_skips_unwritable_folders(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(locked, os.W_OK):  # root ignores permission bits: use a path under a file instead
        locked = tmp_path / "a_file" / "sub"
        (tmp_path / "a_file").write_text("x")
    choice = _jit_cache.choose_cache_dir([("package", locked), ("user", tmp_path / "user")])
    assert (choice.label, choice.path) == ("user", tmp_path / "user")
    none = _jit_cache.choose_cache_dir([("package", locked)])
    assert none.path is None and none.label == "none"


def test_seed_copies_only_missing_entries(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "cpu_kernels.f-1.py311.nbi").write_bytes(b"index")
    (src / "cpu_kernels.f-1.py311.1.nbc").write_bytes(b"data")
    (src / "other.txt").write_bytes(b"no")
    (dst / "cpu_kernels.f-1.py311.nbi").write_bytes(b"newer")
    assert _jit_cache._seed(dst, [src], "cpu_kernels.*.nb[ic]") == 1
    assert (dst / "cpu_kernels.f-1.py311.nbi").read_bytes() == b"newer"
    assert (dst / "cpu_kernels.f-1.py311.1.nbc").read_bytes() == b"data"
    assert not (dst / "other.txt").exists()


def test_import_does_not_load_numba_kernels() -> None:
    code = "import sys, softras, softras.cli; print('softras.raster.cpu_kernels' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_warp_cache_falls_back_in_order(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    env = {**os.environ, "WARP_CACHE_PATH": str(tmp_path / "a_file" / "warp"), "XDG_CACHE_HOME": str(tmp_path)}
    code = "from softras import _jit_cache as j; print(j.warp_cache_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    chosen = Path(out.stdout.strip())
    assert _jit_cache.is_writable_dir(chosen) and chosen != tmp_path / "a_file" / "warp"
    assert out.stderr.count("JitCacheWarning") == 1 and "explicit Warp cache folder" in out.stderr


def test_warmup_fills_the_cache_and_checks_its_arguments() -> None:
    from softras.apps.warmup import warmup

    with pytest.raises(ValueError, match="backends: expected JIT backends"):
        warmup(("reference",))
    with pytest.raises(ValueError, match="dtypes: expected 'float32' or 'float64'"):
        warmup(("cpu",), ("float16",))
    timings = warmup(("cpu",), ("float32",))  # float32 also runs each app once (what they compile)
    assert list(timings) == [("cpu", "float32")] and timings["cpu", "float32"] >= 0


def _unprivileged_python() -> list[str] | None:
    """A Python of this version that uid 65534 can run, with this environment's packages on its path."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    for exe in (sys.executable, f"/usr/bin/python{ver}", f"/usr/local/bin/python{ver}"):
        probe = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "-c", "import sys"]
        if Path(exe).exists() and subprocess.run(probe, capture_output=True).returncode == 0:
            return [exe]
    return None


RENDER = """
import softras, torch
from softras.raster import RasterSettings, rasterize
fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.5]]]], dtype=torch.float64)
img = rasterize(fv, torch.ones(1, 1, 4, 3, dtype=torch.float64), RasterSettings.create(8), backend="cpu")
assert softras.__file__.startswith({site!r}), softras.__file__
print("alpha", float(img[0, 3].sum()))
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh folder that uid 65534 can reach, removed afterwards.

    Not under ``tmp_path``: pytest's base folder (``<tmp>/pytest-of-<user>``) is private to its user,
    and every pytest session of that user that starts makes it private again (mode 0700), so a mode
    loosened there is revoked whenever another session starts meanwhile (another job on the machine).
    """
    root = Path(tempfile.mkdtemp(prefix="softras-readonly-"))
    if not all(p.stat().st_mode & stat.S_IXOTH for p in root.parents):
        shutil.rmtree(root)
        pytest.skip(f"{root.parent} is not reachable by other users")
    root.chmod(0o755)
    try:
        yield root
    finally:
        for p in [root, *root.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.heavy(100)
def test_read_only_install_as_unprivileged_user(shared_dir: Path) -> None:
    python = _unprivileged_python()
    if python is None:
        pytest.skip("needs root, setpriv and a Python that uid 65534 can run")
    site = shared_dir / "site"
    shutil.copytree(ROOT / "softras", site / "softras")
    paths = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
    # The timeouts only guard against a hang. On a 2-core machine each step takes ~3 s idle and
    # ~10 s with both cores busy; filling a cold cache (a fresh clone) 24 s idle, 72 s busy.
    hang = 600
    # fill the installed copy's own cache, as the installing user would with `softras warmup`
    # (in a fresh process: this one's Numba cache folder was chosen by whatever ran first)
    fill = subprocess.run(
        [sys.executable, "-S", "-c", RENDER.format(site=str(site))], capture_output=True, text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": paths}, cwd="/", timeout=hang,
    )
    assert fill.returncode == 0, fill.stderr
    warm = sorted(p.name for p in (site / "softras" / "raster" / "__pycache__").glob("cpu_*.nb[ic]"))
    assert any(n.startswith("cpu_kernels.") for n in warm) and any(n.startswith("cpu_binning.") for n in warm)
    for p in [site, *site.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222 | 0o555 if p.is_dir() else 0o444)
    user_tmp = shared_dir / "tmp"
    user_tmp.mkdir()
    user_tmp.chmod(0o777)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "TMPDIR": str(user_tmp), "PYTHONPATH": paths}
    # -S: no site hooks, so the editable install's import hook cannot shadow the read-only copy
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *python, "-S"]
    run = {"capture_output": True, "text": True, "env": env, "cwd": "/", "timeout": hang}
    imported = subprocess.run([*user, "-c", "import softras"], **run)
    assert imported.returncode == 0, imported.stderr
    helped = subprocess.run([*user, "-m", "softras.cli", "--help"], **run)
    assert helped.returncode == 0 and "warmup" in helped.stdout, helped.stderr
    rendered = subprocess.run([*user, "-c", RENDER.format(site=str(site))], **run)
    assert rendered.returncode == 0, rendered.stderr
    assert float(rendered.stdout.split()[-1]) > 1.0
    assert rendered.stderr.count("JitCacheWarning") == 1
    assert f"temp folder {user_tmp}" in rendered.stderr, rendered.stderr
    assert f"{len(warm)} warm entries copied" in rendered.stderr, (warm, rendered.stderr)
    # every kernel came from the warm cache: nothing was compiled, so nothing was added to the copy
    assert sorted(p.name for p in (user_tmp / "softras-65534").rglob("*.nb[ic]")) == warm


def test_every_cached_kernel_module_is_seeded() -> None:
    cached = sorted(p.name for p in _jit_cache._RASTER_DIR.glob("*.py") if "configure_numba_cache()" in p.read_text())
    assert cached == sorted(_jit_cache._KERNEL_SOURCES)


# --------------------------------------------------------------------------- item 5: clear errors

import numpy as np  # noqa: E402
import torch  # noqa: E402

import softras as sr  # noqa: E402
from softras.raster import RasterSettings, soft_rasterize  # noqa: E402


def _tri(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    fv = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.5]]]], dtype=dtype)
    return fv, torch.ones(1, 1, 1, 3, dtype=dtype)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fill_back": "no"}, TypeError, "fill_back: expected True or False, got 'no'"),
        ({"fill_back": 2}, TypeError, "fill_back"),
        ({"background_color": "red"}, TypeError, "background_color: expected 3 numbers"),
        ({"eps": "1e-3"}, TypeError, "eps: expected a number"),
        ({"near": "1"}, TypeError, "near: expected a number"),
        ({"sigma_val": 1e40}, ValueError, r"sigma_val: expected a number in \[1e-20, 10000\]"),
        ({"sigma_val": 1e-30}, ValueError, "sigma_val"),
        ({"gamma_val": 1e-300}, ValueError, r"gamma_val: expected a number in \[1e-20, 1e\+20\]"),
        ({"gamma_val": True}, TypeError, "gamma_val"),
        ({"dist_eps": 1e-300}, ValueError, r"dist_eps: expected a number in \[1e-20, 0.5\)"),
        ({"dist_eps": 0.5}, ValueError, "dist_eps"),
    ],
)
def test_settings_refuse_out_of_range_and_non_numbers(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RasterSettings.create(8, **kwargs)


def test_settings_accept_numpy_scalars() -> None:
    s = RasterSettings.create(
        np.int64(8), eps=np.float32(1e-3), sigma_val=np.float32(1e-4), gamma_val=np.float64(1e-4),
        near=np.int32(1), far=np.float32(50), fill_back=np.bool_(False), dist_eps=np.float32(1e-4),
        background_color=np.array([1.0, 0.0, 0.0], dtype=np.float32),
    )  # fmt: skip
    assert (s.image_height, s.image_width, s.fill_back) == (8, 8, False)
    assert isinstance(s.eps, float) and s.eps == pytest.approx(1e-3)
    assert RasterSettings.create((np.int64(4), 6)).image_width == 6
    mesh = sr.Mesh(torch.rand(3, 3), torch.tensor([[0, 1, 2]]), texture_res=np.int64(2))
    assert mesh.textures.shape[-2] == 4


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kwargs",
    [{"sigma_val": 1e-20}, {"sigma_val": 1e4}, {"gamma_val": 1e-20}, {"gamma_val": 1e20}, {"dist_eps": 1e-20}],
)
def test_range_ends_give_finite_images_and_gradients(backend: str, dtype: torch.dtype, kwargs: dict) -> None:
    fv, tex = _tri(dtype)
    fv.requires_grad_(True)
    img = soft_rasterize(fv, tex, 8, backend=backend, **kwargs)
    (grad,) = torch.autograd.grad((img * torch.linspace(-1, 1, img.numel(), dtype=dtype).view(img.shape)).sum(), fv)
    assert torch.isfinite(img).all() and torch.isfinite(grad).all()
    assert img[0, 3].sum() > 1.0


def test_meta_tensors_get_a_clear_error() -> None:
    fv, tex = _tri()
    with pytest.raises(ValueError, match="face_vertices: meta tensors"):
        soft_rasterize(fv.to("meta"), tex.to("meta"), 8)


# --------------------------------------------------------------------------- item 2: checkpoints

import csv  # noqa: E402
import errno  # noqa: E402
import struct  # noqa: E402
import zipfile  # noqa: E402
from dataclasses import replace  # noqa: E402

from softras.cli import main  # noqa: E402
from softras.recon import checkpoint as ckpt_io  # noqa: E402
from softras.recon.nmr import DatasetFormatError, NMRDataset  # noqa: E402
from softras.recon.train import load_checkpoint, load_model, save_checkpoint, train  # noqa: E402

from .test_recon_train import CFG, write_blobs  # noqa: E402


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("blobs")
    write_blobs(d, {"03001627": 2})
    return d


@pytest.fixture(scope="module")
def trained(blobs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-iteration run's checkpoint (tests copy it before changing it)."""
    out = tmp_path_factory.mktemp("run")
    return train(blobs, out, replace(CFG, iters=2, log_every=1), quiet=True, backend="reference").checkpoint


def _flip_bytes_in_largest_tensor(path: Path, count: int = 16) -> None:
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    for k in range(count):
        raw[start + k] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_flipped_bytes_in_the_weights_are_detected(trained: Path, blobs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "checkpoint.pt"
    shutil.copy(trained, bad)
    _flip_bytes_in_largest_tensor(bad)
    for load in (lambda: load_checkpoint(bad), lambda: load_model(bad)):
        with pytest.raises(ValueError, match=f"{bad}: checkpoint is corrupted"):
            load()
    with pytest.raises(ValueError, match="corrupted"):
        train(blobs, tmp_path / "out", replace(CFG, iters=4), quiet=True, resume=bad, backend="reference")


def test_missing_keys_and_nan_weights_name_the_checkpoint(trained: Path, blobs: Path, tmp_path: Path) -> None:
    state = load_checkpoint(trained)
    partial = tmp_path / "no_rng.pt"
    save_checkpoint(partial, {k: v for k, v in state.items() if k not in ("rng", "optimizer")})
    load_model(partial)  # evaluation needs only the model and its config
    with pytest.raises(ValueError, match=rf"{partial}: not a complete .* \(missing 'optimizer', 'rng.torch'"):
        train(blobs, tmp_path / "out", replace(CFG, iters=4), quiet=True, resume=partial, backend="reference")
    first = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][first].view(-1)[0] = float("nan")
    nan = tmp_path / "nan.pt"
    save_checkpoint(nan, state)
    with pytest.raises(ValueError, match=rf"{nan}: checkpoint has diverged weights \(1 NaN/Inf values in model"):
        load_model(nan)


def test_old_checkpoint_without_hash_loads_with_a_warning(trained: Path, tmp_path: Path) -> None:
    state = load_checkpoint(trained)
    old = tmp_path / "old.pt"
    torch.save(state, old)  # no "sha256": as written before the hash existed
    with pytest.warns(ckpt_io.UnverifiedCheckpointWarning, match="no content hash"):
        assert load_checkpoint(old)["iteration"] == 2


def test_resume_past_the_end_fails(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = load_checkpoint(trained)
    state["iteration"] = 10**9
    far = tmp_path / "far.pt"
    save_checkpoint(far, state)
    data64 = tmp_path / "data64"
    data64.mkdir()
    write_blobs(data64, {"03001627": 1}, size=64)
    args = ["recon", "train", "--data", str(data64), "--out", str(tmp_path / "o"), "--preset", "tiny", "--iters", "3"]
    assert main([*args, "--quiet", "--resume", str(far)]) == 2
    err = capsys.readouterr().err
    assert "iteration 1000000000, past the end of training (iters=3)" in err and len(err.strip().splitlines()) == 1


def test_resume_removes_stale_temporaries_and_truncates_the_log(trained: Path, blobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained.parent, out)
    stale = out / ".checkpoint.pt.999999999.tmp"  # no such process
    stale.write_bytes(b"half a checkpoint")
    log = out / "log.csv"
    with open(log, "a", newline="") as f:  # rows a killed run logged after its last checkpoint
        csv.writer(f).writerows([[3, *["0"] * 9], [4, *["0"] * 9]])
    result = train(blobs, out, replace(CFG, iters=4, log_every=1), quiet=True, resume=out / "checkpoint.pt",
                   backend="reference")  # fmt: skip
    assert result.iteration == 4 and not stale.exists()
    rows = list(csv.DictReader(open(log)))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    assert rows[2]["loss"] != "0"
    assert ckpt_io.truncate_log(log, 2) == 2  # rows 3 and 4
    assert [int(r["iteration"]) for r in csv.DictReader(open(log))] == [1, 2]


def test_disk_full_keeps_the_previous_checkpoint(
    trained: Path, blobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained.parent, out)
    before = (out / "checkpoint.pt").read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt_io.os, "fsync", full)
    with pytest.raises(OSError, match=rf"could not write checkpoint {out / 'checkpoint.pt'}: No space left on device"):
        train(blobs, out, replace(CFG, iters=3), quiet=True, resume=out / "checkpoint.pt", backend="reference")
    assert (out / "checkpoint.pt").read_bytes() == before
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 2
    assert not list(out.glob("*.tmp"))
    data64 = tmp_path / "data64"
    data64.mkdir()
    write_blobs(data64, {"03001627": 1}, size=64)
    args = ["recon", "train", "--data", str(data64), "--out", str(tmp_path / "cli"), "--preset", "tiny"]
    assert main([*args, "--iters", "1", "--quiet", "--backend", "reference"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softras: error: could not write checkpoint") and "No space left" in err
    assert len(err.splitlines()) == 1


def test_read_only_output_folder_is_one_error(trained: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anyway: point at a path under a file instead
        target = tmp_path / "a_file" / "checkpoint.pt"
        (tmp_path / "a_file").write_text("x")
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        target = tmp_path / "ro" / "checkpoint.pt"
    with pytest.raises(OSError, match=f"could not write checkpoint {target}"):
        save_checkpoint(target, load_checkpoint(trained))


def test_dataset_files_are_checked(tmp_path: Path) -> None:
    write_blobs(tmp_path, {"03001627": 1})
    images = tmp_path / "03001627_train_images.npz"
    raw = images.read_bytes()
    images.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetFormatError, match=f"{images}: not a readable .npz archive"):
        NMRDataset(tmp_path, "train")
    images.write_bytes(raw)
    vox = np.zeros((1, 32, 32, 32), np.float32)
    vox[0, 1, 2, 3] = np.nan
    np.savez(tmp_path / "03001627_train_voxels.npz", vox)
    with pytest.raises(DatasetFormatError, match=r"voxels\.npz: voxels hold 1 NaN/Inf values"):
        NMRDataset(tmp_path, "train")
    np.savez(tmp_path / "03001627_train_voxels.npz", np.full_like(vox, 3.0))
    with pytest.raises(DatasetFormatError, match=r"expected occupancies in \[0, 1\]"):
        NMRDataset(tmp_path, "train")


# --------------------------------------------------------------------------- item 3: memory bounds

from softras import _memory  # noqa: E402
from softras.io import load_mesh, load_obj  # noqa: E402


def test_large_render_is_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_memory.ALLOW_LARGE_ENV, raising=False)
    monkeypatch.setattr(_memory, "available_memory", lambda device=None: 64 * 2**20)
    fv, tex = _tri(torch.float32)
    with pytest.raises(_memory.RequestTooLargeError, match=r"image_size: rendering 1×4096×4096 pixels.* needs about "
                       r"[0-9.]+ GiB, but only 64 MiB is available \(set SOFTRAS_ALLOW_LARGE=1"):
        soft_rasterize(fv, tex, 4096, backend="reference")
    soft_rasterize(fv, tex, 256, backend="reference")  # small requests pass
    many = fv.expand(1, 200_000, 3, 3) * torch.tensor([4.0, 4.0, 1.0])  # big faces: many bins per face
    with pytest.raises(_memory.RequestTooLargeError, match="face_vertices: "):
        soft_rasterize(many.requires_grad_(), tex.expand(1, 200_000, 1, 3), 256, backend="cpu")
    monkeypatch.setenv(_memory.ALLOW_LARGE_ENV, "1")
    _memory.check_raster_request(fv, tex, 4096, 4096, 0.01, "reference")  # the override


def test_estimate_tracks_the_measured_cpu_cost() -> None:
    fv, tex = _tri(torch.float32)
    need = _memory.estimate_raster_bytes(fv, tex, 2048, 2048, 0.01, "cpu", requires_grad=True)
    # measured peak RSS of forward + backward at 2048² float32: ~61 bytes per pixel
    assert 45 * 2048**2 < sum(need.values()) < 90 * 2048**2
    assert _memory.available_memory() is None or _memory.available_memory() > 0


def test_texture_res_is_refused_before_allocating(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(_memory.ALLOW_LARGE_ENV, raising=False)
    monkeypatch.setattr(_memory, "available_memory", lambda device=None: 2**30)
    with pytest.raises(_memory.RequestTooLargeError, match=r"texture_res: 2 faces × 10000² texels needs about"):
        sr.Mesh(torch.rand(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]]), texture_res=10**4)
    obj = tmp_path / "m.obj"
    obj.write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl a\nf 1 2 3\n")
    (tmp_path / "m.mtl").write_text("newmtl a\nKd 1 0 0\n")
    with pytest.raises(_memory.RequestTooLargeError, match="texture_res"):
        load_mesh(obj, texture_res=10**5)


def test_cli_reports_a_too_large_image_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--out", str(tmp_path), "--image-size", "100000", "--backend", "reference"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softras: error: image_size: rendering") and "available" in err
    assert len(err.splitlines()) == 1


def test_obj_loader_keeps_compact_arrays(tmp_path: Path) -> None:
    # 10⁵ vertices: the parser's buffers are flat typed arrays, so peak memory stays near the tensors
    import tracemalloc

    n = 100_000
    rng = np.random.default_rng(0)
    lines = [f"v {a:.5f} {b:.5f} {c:.5f}" for a, b, c in rng.random((n, 3))]
    lines += [f"f {a} {b} {c}" for a, b, c in rng.integers(1, n + 1, (2 * n, 3))]
    obj = tmp_path / "big.obj"
    obj.write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    v, f = load_obj(obj)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    final = v.numel() * 4 + f.numel() * 8
    assert v.shape == (n, 3) and f.shape == (2 * n, 3)
    assert peak < 2 * final, (peak, final)


# --------------------------------------------------------------------------- item 5: mesh files


@pytest.mark.parametrize(
    ("ext", "payload", "reason"),
    [
        (".stl", b"solid x\nfacet garbage\x00\xff", "no triangles found"),
        (".ply", b"\x00\x01garbage" * 10, "ValueError: Not a ply file"),
        (".glb", b"\x00\x01garbage" * 10, "incorrect header on GLB file"),
    ],
)
def test_corrupt_mesh_files_give_a_real_reason(tmp_path: Path, ext: str, payload: bytes, reason: str) -> None:
    path = tmp_path / f"m{ext}"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=f"could not read mesh file .*m\\{ext}'?: .*{reason}"):
        load_mesh(path)


def test_garbage_mtl_and_undefined_materials_warn(tmp_path: Path) -> None:
    obj = tmp_path / "m.obj"
    obj.write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl red\nf 1 2 3\n")
    (tmp_path / "m.mtl").write_bytes(b"\x89PNG\x00\xffgarbage\nmore junk here\n")
    with pytest.warns(UserWarning) as caught:
        _, _, tex = load_obj(obj, load_texture=True, texture_res=1)
    messages = [str(w.message) for w in caught]
    assert any("m.mtl: material library has no materials (and 2 unrecognised lines)" in m for m in messages)
    assert any("m.obj: material(s) 'red' used but not defined" in m for m in messages)
    assert torch.equal(tex, torch.ones(1, 1, 3))


def test_gltf_image_outside_the_folder_warns(tmp_path: Path) -> None:
    import json

    import trimesh

    mesh_dir = tmp_path / "mesh"
    mesh_dir.mkdir()
    (tmp_path / "outside.png").write_bytes(b"")
    tri = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])
    path = mesh_dir / "m.gltf"
    tri.export(path)
    doc = json.loads(path.read_text())
    doc["images"] = [{"uri": "../outside.png"}]
    path.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=r"m\.gltf: texture image '\.\./outside\.png' lies outside the mesh folder"):
        load_mesh(path)
