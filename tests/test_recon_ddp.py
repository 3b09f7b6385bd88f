"""Data-parallel training: 2 CPU processes (gloo), as ``torchrun --nproc_per_node 2`` starts them."""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from softras.recon.nmr import NUM_VIEWS
from softras.recon.train import PRESETS, Trainer, load_checkpoint, train

CFG = replace(
    PRESETS["tiny"], iters=3, batch_size=4, save_every=2, log_every=1, demo_every=2, template_level=1, image_size=32
)


TIMEOUT_S = 300  # a hang guard: a run takes 8-30 s on 2 cores (17 s with both cores busy)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, data: str, root: str) -> None:
    """One rank: the environment torchrun would set, then the normal training entry point. Each
    rank gets its own output folder so that the test can see which ranks wrote files."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    # a rank still running near the test's deadline writes where its Python threads are
    stack_file = open(Path(root) / f"stack_rank{rank}.txt", "w")  # open until the process exits
    faulthandler.dump_traceback_later(TIMEOUT_S - 30, file=stack_file)

    def dump(trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.iteration == CFG.iters:
            state = trainer.model.net.module.state_dict()  # DDP-wrapped
            torch.save({k: v.detach().clone() for k, v in state.items()}, Path(root) / f"params_rank{rank}.pt")

    # the reference backend: nothing to compile in the fresh processes, and tiny meshes are cheap
    train(data, Path(root) / f"out_rank{rank}", CFG, device="cpu", backend="reference", quiet=True, on_step=dump)
    # The process group must be gone, threads included, before the interpreter shuts down: gloo
    # threads alive at exit aborted a rank now and then (SIGABRT) after a run that had finished.
    (Path(root) / f"threads_rank{rank}.json").write_text(json.dumps(_thread_names()))
    faulthandler.cancel_dump_traceback_later()


def _stacks(root: Path, rank: int, pid: int | None) -> str:
    """What a stuck rank was doing: its Python stacks and, where gdb is installed, its native ones."""
    text = (root / f"stack_rank{rank}.txt").read_text() if (root / f"stack_rank{rank}.txt").exists() else ""
    if pid is not None and shutil.which("gdb"):
        try:  # a loaded machine may keep gdb from answering in time: the failure message still comes
            native = subprocess.run(
                ["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 30"],
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout
        except subprocess.TimeoutExpired:
            native = "(gdb gave no native stacks within 120 s)"
        text += "\n".join(line for line in native.splitlines() if line.startswith(("#", "Thread", "(gdb")))
    return f"--- rank {rank} ---\n{text}"


def _thread_names() -> list[str] | None:
    """Names of this process's threads (Linux), or None where /proc is not there."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    names = []
    for task in tasks:
        try:
            names.append(Path(f"/proc/self/task/{task}/comm").read_text().strip())
        except OSError:  # the thread ended in between
            pass
    return sorted(names)


def test_two_process_training_stays_in_sync_and_only_rank0_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for cid in ("03001627", "04379243"):
        images = np.zeros((3, NUM_VIEWS, 4, 32, 32), np.uint8)
        images[:, :, :, 8:24, 6:26] = rng.integers(60, 255, (3, 1, 4, 1, 1))
        images[..., 3, 8:24, 6:26] = 255
        np.savez(data / f"{cid}_train_images.npz", images)
        np.savez(data / f"{cid}_train_voxels.npz", np.zeros((3, 32, 32, 32), np.uint8))

    ranks = mp.start_processes(_worker, args=(2, _free_port(), str(data), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + TIMEOUT_S
    while not ranks.join(timeout=5):
        if time.monotonic() > deadline:  # fail, not hang CI: say which rank is stuck
            alive = [i for i, p in enumerate(ranks.processes) if p.is_alive()]
            try:
                stacks = "\n".join(_stacks(tmp_path, i, ranks.processes[i].pid) for i in alive)
            finally:  # no rank outlives the test, whatever collecting the stacks did
                for p in ranks.processes:
                    p.kill()
            pytest.fail(
                f"rank(s) {alive} still running after {TIMEOUT_S} s (files: {sorted(os.listdir(tmp_path))})\n{stacks}"
            )

    p0 = torch.load(tmp_path / "params_rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "params_rank1.pt", weights_only=True)
    assert p0.keys() == p1.keys()
    assert all(torch.equal(p0[k], p1[k]) for k in p0)  # parameters and BatchNorm buffers identical

    out0, out1 = tmp_path / "out_rank0", tmp_path / "out_rank1"
    assert not out1.exists()  # rank 1 wrote nothing
    assert {"checkpoint.pt", "log.csv", "config.json", "demo"} <= {p.name for p in out0.iterdir()}
    ckpt = load_checkpoint(out0 / "checkpoint.pt")
    assert ckpt["iteration"] == CFG.iters and ckpt["world_size"] == 2
    assert len(ckpt["rng"]["sampler"]) == 2 and ckpt["rng"]["sampler"][0] != ckpt["rng"]["sampler"][1]
    assert all(torch.equal(ckpt["model"][k], p0[k]) for k in p0)
    log_rows = (out0 / "log.csv").read_text().strip().splitlines()
    assert len(log_rows) == 1 + CFG.iters

    for rank in (0, 1):
        names = json.loads((tmp_path / f"threads_rank{rank}.json").read_text())
        if names is not None:
            assert not [n for n in names if "gloo" in n or "tcpstore" in n], (rank, names)
