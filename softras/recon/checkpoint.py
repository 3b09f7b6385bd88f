"""Checkpoint files you can trust: atomic writes, a content hash, checked keys and weights.

A checkpoint is a ``torch.save``'d dict (loaded with ``weights_only=True``, so no pickled code
runs). :func:`save_checkpoint` adds ``"sha256"``: the SHA-256 of every tensor's bytes, dtype and
shape and of every other value, in a fixed order (:func:`payload_sha256`), and
:func:`load_checkpoint` recomputes it, so a flipped byte inside the weights is an error naming
the file instead of a silently different model. Checkpoints written before the hash existed
load with a :class:`UnverifiedCheckpointWarning` (they cannot be checked, but were written
atomically and are usually intact).

Writes go to a temporary file in the same folder (``.checkpoint.pt.<pid>.tmp``), are flushed and
fsync'ed, then ``os.replace``'d over the old file: a full disk or a folder that became read-only
raises one :class:`OSError` naming the path, and the previous checkpoint stays as it was.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "HASH_KEY",
    "UnverifiedCheckpointWarning",
    "load_checkpoint",
    "payload_sha256",
    "remove_stale_temporaries",
    "save_checkpoint",
    "truncate_log",
]

HASH_KEY = "sha256"


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint without a content hash (written by an older softras) was loaded unchecked."""


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(value, dict):
        h.update(f"D{len(value)};".encode())
        for key in sorted(value, key=repr):
            h.update(f"{key!r}:".encode())
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)};".encode())
        for item in value:
            _feed(h, item)
    else:
        h.update(f"V{value!r};".encode())


def payload_sha256(state: dict[str, Any]) -> str:
    """Hex SHA-256 of ``state`` without its ``"sha256"`` entry (tensors by dtype, shape and bytes)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != HASH_KEY})
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus its ``"sha256"``) atomically to ``path``.

    Raises:
        OSError: one line naming ``path`` (disk full, permission denied, ...); the file already
            at ``path`` is left unchanged and the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    state = {**state, HASH_KEY: payload_sha256(state)}
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise OSError(f"could not write checkpoint {path}: {reason} (the previous checkpoint is unchanged)") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def _missing(ckpt: dict[str, Any], required: Iterable[str]) -> list[str]:
    out = []
    for key in required:
        node: Any = ckpt
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                out.append(key)
                break
            node = node[part]
    return out


def _non_finite(name: str, weights: Any) -> str | None:
    if not isinstance(weights, dict):
        return None
    for key, t in weights.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return f"{int((~torch.isfinite(t)).sum())} NaN/Inf values in {name} weight {key!r}"
    return None


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    required: Iterable[str] = ("model", "config"),
) -> dict[str, Any]:
    """Load and verify a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the file.
        map_location: device for its tensors.
        required: keys it must have (dotted for nested ones, e.g. ``'rng.torch'``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, when it is unreadable, its hash does not match its content,
            a required key is missing, or its weights hold NaN/Inf.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(p)!r}")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{p}: not a readable checkpoint ({str(exc).splitlines()[0] if str(exc) else exc})") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{p}: not a softras recon checkpoint (a {type(ckpt).__name__}, not a dict)")
    stored = ckpt.pop(HASH_KEY, None)
    if stored is None:
        warnings.warn(f"{p}: checkpoint has no content hash (written by an older softras): loaded unverified",
                      UnverifiedCheckpointWarning, stacklevel=2)
    elif stored != payload_sha256(ckpt):
        raise ValueError(f"{p}: checkpoint is corrupted: its content does not match the sha256 stored in it")
    missing = _missing(ckpt, required)
    if missing:
        raise ValueError(f"{p}: not a complete softras recon checkpoint (missing {', '.join(map(repr, missing))})")
    for name, weights in (("model", ckpt.get("model")), ("ema", (ckpt.get("ema") or {}).get("weights"))):
        bad = _non_finite(name, weights)
        if bad is not None:
            raise ValueError(f"{p}: checkpoint has diverged weights ({bad})")
    return ckpt


def remove_stale_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Delete ``.<name>.<pid>.tmp`` files in ``folder`` left by processes that no longer run; those removed."""
    removed = []
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        pid = tmp.name[len(name) + 2 : -len(".tmp")]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def truncate_log(path: str | os.PathLike, iteration: int) -> int:
    """Drop the rows of the CSV log ``path`` past ``iteration`` (kept: header, rows <= iteration); rows dropped.

    A resumed run repeats the iterations after its checkpoint, so their old rows go.
    """
    p = Path(path)
    if not p.is_file():
        return 0
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return 0

    def keep(row: list[str]) -> bool:
        try:
            return float(row[0]) <= iteration
        except (ValueError, IndexError):
            return False

    kept = [rows[0]] + [r for r in rows[1:] if keep(r)]
    dropped = len(rows) - len(kept)
    if dropped:
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)
        os.replace(tmp, p)
    return dropped

