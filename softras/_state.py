"""Module settings in ``state_dict``: plain attributes saved as a module's extra state.

The renderer's modules keep their settings (σ, γ, the background, light colours, the camera, ...)
as plain attributes. :class:`SettingsState` puts the attributes a module lists in
``_state_attributes`` into its ``state_dict`` (as ``<prefix>._extra_state``, a dict) and restores
them in ``load_state_dict``. Values are stored as ``torch.load(weights_only=True)`` accepts them:
numbers, strings, tuples, lists, dicts, ``None`` and detached tensors (NumPy values become tensors
or numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["SettingsState", "plain"]


def plain(value: object) -> object:
    """``value`` in a form ``torch.load(weights_only=True)`` reads back (see the module docstring)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def check_state(
    owner: str, state: object, keys: tuple[str, ...], defaults: Mapping[str, Any] | None = None
) -> Mapping[str, Any]:
    """``state`` checked to be a mapping with exactly ``keys`` (an error names ``owner``); keys of
    ``defaults`` may be missing (settings added since the state was saved) and take those values."""
    optional = set(defaults or {})
    if not isinstance(state, Mapping) or not set(keys) - optional <= set(state) <= set(keys):
        got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"state_dict: {owner} expected settings {sorted(keys)}, got {got}")
    return {**(defaults or {}), **state}


class SettingsState:
    """Mixin for ``nn.Module`` s (listed before ``nn.Module``) whose ``_state_attributes`` are
    saved in and loaded from ``state_dict``."""

    _state_attributes: tuple[str, ...] = ()
    _state_defaults: Mapping[str, Any] = {}  # settings that a state saved before they existed lacks

    def get_extra_state(self) -> dict[str, object]:
        return {name: plain(getattr(self, name)) for name in self._state_attributes}

    def set_extra_state(self, state: object) -> None:
        state = check_state(type(self).__name__, state, self._state_attributes, self._state_defaults)
        for name in self._state_attributes:
            setattr(self, name, state[name])
