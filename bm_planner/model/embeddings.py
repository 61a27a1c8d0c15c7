"""Token embeddings: noise level (sinusoidal + MLP), state (2-layer MLP), action (linear), positions, command."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer/DDPM sinusoidal embedding of real-valued ``x`` (any shape) -> (*x.shape, dim), [cos | sin]."""
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even number >= 2; got {dim=}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class NoiseLevelEmbedding(nn.Module):
    """Integer noise level k in [0, K] (any shape) -> (*k.shape, width).

    k is scaled by 1000 / K before the sinusoid so the embedding spans the range DDPM's 1000-step timestep embeddings
    were designed for, then passed through Linear -> SiLU -> Linear.
    """

    def __init__(self, width: int, num_levels: int) -> None:
        super().__init__()
        self.width = width
        self.scale = 1000.0 / num_levels
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, levels: torch.Tensor) -> torch.Tensor:
        emb = sinusoidal_embedding(levels.float() * self.scale, self.width)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class StateEncoder(nn.Module):
    """States (B, T, D) -> tokens (B, T, width) with a 2-layer MLP (Linear -> SiLU -> Linear)."""

    def __init__(self, state_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(states)


class ActionEncoder(nn.Module):
    """Actions (B, Ta, A) -> tokens (B, Ta, width) with one linear layer."""

    def __init__(self, action_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Linear(action_dim, width)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        return self.net(actions)


class TokenPositionEmbedding(nn.Module):
    """Learned per-token embeddings: one row per state window index (T) and per action window index (Ta).

    The rows also encode the token type (state vs action) and whether a token is history (state i <= N, action
    i < N: always given clean) or future (planned), since those roles are fixed per window index.
    """

    def __init__(self, n_states: int, n_actions: int, width: int) -> None:
        super().__init__()
        self.state = nn.Parameter(torch.zeros(n_states, width))
        self.action = nn.Parameter(torch.zeros(n_actions, width))
        nn.init.normal_(self.state, std=0.02)
        nn.init.normal_(self.action, std=0.02)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (state rows (T, width), action rows (Ta, width))."""
        return self.state, self.action


class CommandEmbedding(nn.Module):
    """Task command (B, C) -> (B, width) with Linear -> SiLU -> Linear; ``None`` rows (or rows where ``drop`` is
    True) get a learned "no command" vector instead. The output layer and the null vector start at zero, so adding
    this module to a trained unconditional model leaves its function unchanged (fine-tuning starts from it)."""

    def __init__(self, command_dim: int, width: int) -> None:
        super().__init__()
        self.command_dim = command_dim
        self.mlp = nn.Sequential(nn.Linear(command_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.null = nn.Parameter(torch.zeros(width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.mlp[0].weight, std=0.5)
        nn.init.zeros_(self.mlp[0].bias)
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        nn.init.zeros_(self.null)

    def forward(self, command: torch.Tensor | None, batch: int, drop: torch.Tensor | None = None) -> torch.Tensor:
        if command is None:
            return self.null.expand(batch, -1)
        if tuple(command.shape) != (batch, self.command_dim):
            raise ValueError(f"command must have shape ({batch}, {self.command_dim}); got {tuple(command.shape)}")
        emb = self.mlp(command.to(self.mlp[0].weight.dtype))
        if drop is not None:
            emb = torch.where(drop[:, None], self.null.to(emb.dtype).expand_as(emb), emb)
        return emb
