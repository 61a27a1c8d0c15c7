"""Classifier-free guidance on the task command of a command-conditioned model (``ModelConfig.command_dim`` > 0).

``x̂0 = x̂0(∅) + w · (x̂0(c) − x̂0(∅))``: the denoiser's prediction with the command ``c`` pushed away from its
prediction with the learned "no command" embedding ``∅`` (trained through ``command_dropout``). ``w = 1`` is plain
conditioning, ``w > 1`` follows the command more strongly. Both predictions come from one batched call (2B rows),
so a step costs one larger forward pass. Classifier (cost) guidance composes with it: the sampler applies the cost
gradient to the combined prediction.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CommandGuidedDenoiser(nn.Module):
    """Wraps the denoiser of a command-conditioned model — torch
    :class:`~bm_planner.model.transformer.DifferentiatedTransformer` or its ONNX Runtime / TensorRT export (same call
    signature and shapes: states (B, T, D), actions (B, Ta, A), levels (B, T) / (B, Ta), command (B, C) or None).
    Without a command it is the wrapped denoiser. ``scale`` w ≥ 0."""

    def __init__(self, denoiser: nn.Module, scale: float):
        super().__init__()
        if not getattr(getattr(denoiser, "config", None), "command_dim", 0):
            raise ValueError("classifier-free command guidance needs the denoiser of a command-conditioned model")
        if not (math.isfinite(scale) and scale >= 0):
            raise ValueError(f"command guidance scale must be finite and >= 0, got {scale!r}")
        self.inner, self.scale, self.config = denoiser, float(scale), denoiser.config

    def forward(self, states, actions, k_states, k_actions, command=None, command_drop=None):
        if command is None or command_drop is not None or self.scale == 1.0:
            return self.inner(states, actions, k_states, k_actions, command, command_drop)
        b = states.shape[0]
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(states.device)
        two = (torch.cat([t, t]) for t in (states, actions, k_states, k_actions, command))
        p_s, p_a = self.inner(*two, drop)
        w = self.scale
        return p_s[b:] + w * (p_s[:b] - p_s[b:]), p_a[b:] + w * (p_a[:b] - p_a[b:])
