"""Exponential moving average of model weights with warm-up decay (diffusion_policy / diffusers ``EMAModel``)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(
    step: int, power: float = 0.75, inv_gamma: float = 1.0, min_decay: float = 0.0, max_decay: float = 0.9999
) -> float:
    """Decay for the ``step``-th EMA update (1-based): ``1 - (1 + (step - 1) / inv_gamma) ** -power`` clipped to
    [min_decay, max_decay]; the first update copies the weights (decay 0). Decay reaches 0.999 after ≈ 1e4 updates
    and 0.9999 after ≈ 2e5 updates with power 0.75."""
    n = max(0, step - 1)
    if n == 0:
        return 0.0
    value = 1.0 - (1.0 + n / inv_gamma) ** -power
    return float(min(max(value, min_decay), max_decay))


class EMA:
    """Holds ``model_ema``, a frozen copy of a model whose float parameters track the live model's.

    Buffers are copied as they are. ``step`` (number of updates so far) is part of the state for exact resume.
    """

    def __init__(
        self,
        model: nn.Module,
        power: float = 0.75,
        inv_gamma: float = 1.0,
        min_decay: float = 0.0,
        max_decay: float = 0.9999,
    ) -> None:
        self.model_ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.power, self.inv_gamma, self.min_decay, self.max_decay = power, inv_gamma, min_decay, max_decay
        self.step = 0
        self.decay = 0.0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.step += 1
        self.decay = ema_decay(self.step, self.power, self.inv_gamma, self.min_decay, self.max_decay)
        ema_params = [p for p in self.model_ema.parameters()]
        live_params = [p.detach() for p in model.parameters()]
        if len(ema_params) != len(live_params):
            raise RuntimeError("EMA model and live model have different parameter lists")
        # ema = decay * ema + (1 - decay) * live  ==  lerp(ema, live, 1 - decay)
        torch._foreach_lerp_(ema_params, live_params, 1.0 - self.decay)
        for b_ema, b in zip(self.model_ema.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state(self) -> dict[str, float | int]:
        return {"step": self.step, "decay": self.decay}

    def load_state(self, state: dict[str, float | int]) -> None:
        self.step = int(state["step"])
        self.decay = float(state["decay"])
