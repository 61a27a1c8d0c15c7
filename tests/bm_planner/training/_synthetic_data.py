"""Small, structured stand-in for ``bm_planner.data.dataset.TrajectoryDataset`` used by the training tests.

Windows are smooth: each state dimension is a sinusoid with a per-window phase and a per-dimension frequency, and
each action is a fixed linear map of the next state (so actions are predictable from planned states). Items are
``{"states": (T, D), "actions": (T, A)}`` float32, like the real dataset; the normalizer is a real nn.Module with
buffers (mean/std) as the checkpoint format expects.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


class SyntheticNormalizer(nn.Module):
    def __init__(self, state_dim: int, action_dim: int) -> None:
        super().__init__()
        self.register_buffer("state_mean", torch.linspace(-0.1, 0.1, state_dim))
        self.register_buffer("state_std", torch.linspace(0.5, 1.5, state_dim))
        self.register_buffer("action_mean", torch.zeros(action_dim))
        self.register_buffer("action_std", torch.ones(action_dim))


class SyntheticWindows(Dataset):
    def __init__(self, n: int = 64, window: int = 21, state_dim: int = 12, action_dim: int = 29, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(window, dtype=torch.float32)[None, :, None] * 0.2
        freq = torch.linspace(0.5, 2.0, state_dim)[None, None, :]
        phase = torch.rand(n, 1, state_dim, generator=g) * 6.283
        self.states = torch.sin(freq * t + phase)
        mix = torch.randn(state_dim, action_dim, generator=g) / state_dim**0.5
        nxt = torch.cat([self.states[:, 1:], self.states[:, -1:]], dim=1)
        self.actions = nxt @ mix
        self.normalizer = SyntheticNormalizer(state_dim, action_dim)

    def __len__(self) -> int:
        return self.states.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"states": self.states[i], "actions": self.actions[i]}
