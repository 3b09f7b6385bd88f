"""Multi-process training helpers (``torchrun`` / DistributedDataParallel).

``softras recon train`` runs data-parallel when started by ``torchrun`` (or any launcher that
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``)::

    torchrun --nproc_per_node 2 -m softras.cli recon train --data DATA --out OUT
    # multi-node: on each of N nodes
    torchrun --nnodes N --node_rank K --nproc_per_node P --rdzv_backend c10d \\
        --rdzv_endpoint HOST:29400 -m softras.cli recon train --data DATA --out OUT

The process group uses ``gloo`` on CPU and ``nccl`` on CUDA (one GPU per process, chosen by
``LOCAL_RANK``). Every rank draws its own batches (its sampler is seeded by ``(seed, rank)``),
gradients are averaged by DDP, and the BatchNorm running statistics are averaged over the
ranks after every step, so parameters and buffers are identical on all ranks at every iteration
boundary (the effective batch is the global ``--batch-size``, split evenly among the ranks).
Only rank 0 writes
checkpoints, logs and images; the checkpoint holds every rank's sampler state so that a resumed
run with the same world size continues exactly.
"""

from __future__ import annotations

import importlib
import itertools
import os
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_gather_objects", "any_rank", "cleanup", "setup"]


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size, local rank and the device this process trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False
    store: dist.Store | None = field(default=None, repr=False, compare=False)
    """The rendezvous store the process group was built on (when :func:`setup` built it); it
    outlives the group, so that :func:`cleanup` can synchronise the ranks' teardown."""
    group_index: int = 0
    """How many process groups :func:`setup` made in this process before this one (the same on
    every rank): it keeps each group's teardown keys apart in a store that serves several."""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str | None = None) -> DistInfo:
    """Join the process group if launched by ``torchrun`` (``WORLD_SIZE > 1``); else single process.

    Args:
        device: ``'cpu'``, ``'cuda'`` or None (CUDA if available).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if world <= 1:
        dev = torch.device(device if device else ("cuda" if want_cuda else "cpu"))
        return DistInfo(device=dev)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        # Imported after the process group exists, torch._dynamo (which the optimizers and DDP
        # import lazily) keeps that group alive past destroy_process_group: gloo's worker threads
        # then lived on into interpreter shutdown, where a rank aborted now and then (SIGABRT,
        # "terminate called without an active exception") after a run that had finished.
        importlib.import_module("torch._dynamo")

        # The store is made here, not inside init_process_group, so that this module keeps a
        # handle on it after the group is destroyed (see cleanup). The "default_pg" prefix is
        # the one init_process_group gives the store it makes itself.
        store, rank, world = next(dist.rendezvous("env://", timeout=_TIMEOUT))
        store.set_timeout(_TIMEOUT)
        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo",
            store=dist.PrefixStore("default_pg", store),
            rank=rank,
            world_size=world,
            timeout=_TIMEOUT,
        )
        return DistInfo(rank, world, local, dev, True, store, next(_GROUPS_MADE))
    return DistInfo(rank, world, local, dev, False)


def cleanup(info: DistInfo, barrier: bool = False) -> None:
    """Leave the process group if :func:`setup` created it; its threads are gone on return.

    Args:
        info: from :func:`setup`.
        barrier: first wait until every rank gets here. Use it after a run that ended normally,
            so that no rank tears its connections down while another is still finishing (rank 0
            writes the last checkpoint). Not after an error, where the other ranks may never
            arrive and the barrier would hang instead of failing.

    After a normal run the teardown is ordered through the rendezvous store, because gloo's own
    barrier does not make it safe (pytorch/gloo#155: a rank that leaves the barrier and closes
    its connections at once can leave a peer waiting forever inside the same barrier):

    1. every rank passes ``dist.barrier()``;
    2. no rank destroys the group before every rank has left the barrier;
    3. the rank that hosts the store (rank 0, unless torchrun's agent hosts it) keeps it alive
       until every rank has destroyed its group.

    A rank that does not report within :data:`TEARDOWN_TIMEOUT` only costs a warning: the
    run's results are written by then.
    """
    if not (info.initialized_here and dist.is_initialized()):
        return
    try:
        if barrier:
            dist.barrier()
            _arrive(info, "left-barrier", wait=True)
    finally:
        dist.destroy_process_group()
    if barrier:
        _arrive(info, "destroyed", wait=info.is_main)


TEARDOWN_TIMEOUT = timedelta(seconds=120)
"""How long a rank waits for the others at each step of the teardown in :func:`cleanup`."""

_TIMEOUT = timedelta(minutes=30)  # init_process_group's own default, for the store and the group
_GROUPS_MADE = itertools.count()


def _arrive(info: DistInfo, step: str, wait: bool) -> None:
    """Count this rank in at ``step`` of the teardown; with ``wait``, return once every rank has.
    Gives a warning instead of an error when a rank does not arrive in time."""
    if info.store is None:
        return
    # one key space per (torchrun restart, group, step): an agent store outlives the workers it served
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    key = f"softras/teardown/{restart}/{info.group_index}/{step}"
    try:
        if info.store.add(key, 1) == info.world_size:
            info.store.set(key + "/all", "1")
        if wait:
            info.store.wait([key + "/all"], TEARDOWN_TIMEOUT)
    except (RuntimeError, dist.DistError) as exc:  # a timeout, or a store that went away
        warnings.warn(
            f"rank {info.rank}: not every rank reached '{step}' of the process-group teardown "
            f"within {TEARDOWN_TIMEOUT.total_seconds():.0f} s ({exc}); continuing",
            RuntimeWarning,
            stacklevel=3,
        )


def all_gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order (``[obj]`` without a process group)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def any_rank(info: DistInfo, flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (used to stop all ranks together)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
