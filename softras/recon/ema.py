"""Exponential moving average of a network's weights (Polyak averaging).

Small-batch training (``cpu-small``: 8 objects per step) makes the weights jitter around the
optimum from step to step; evaluating an average of the recent weights removes most of that
noise at no training cost. :class:`WeightAverage` keeps a shadow copy of every parameter and
floating-point buffer (BatchNorm statistics included) and after each optimizer step moves it
towards the live values:

    shadow <- d * shadow + (1 - d) * live,      d = min(decay, (1 + n) / (10 + n))

where ``n`` counts the updates (the warm-up keeps the first averages from being dominated by
the random initialisation). Integer buffers (BatchNorm's ``num_batches_tracked``) are copied.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """Shadow weights of ``net``: an exponential moving average over the optimizer steps.

    Args:
        net: the network whose ``state_dict`` is averaged (not modified).
        decay: the averaging factor ``d`` in (0, 1); ``1 / (1 - decay)`` is the horizon in steps.
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay: expected a value in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """Move the shadow weights towards ``net``'s current ones (call after each optimizer step)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in net.state_dict().items():
            shadow = self.shadow[name]
            if shadow.is_floating_point():
                shadow.lerp_(value.detach(), 1.0 - d)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        """``{'decay', 'updates', 'weights'}`` (the weights as ``net.state_dict()`` keys)."""
        return {"decay": self.decay, "updates": self.updates, "weights": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        missing = set(self.shadow) ^ set(state["weights"])
        if missing:
            raise ValueError(f"weight average does not match the network: keys {sorted(missing)[:5]}")
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for name, value in state["weights"].items():
            self.shadow[name].copy_(value)
