"""Per-dimension mean/std normalizer of states and actions, an ``nn.Module`` so its statistics live in checkpoints.

``normalize(x) = (x − mean) / std`` over the last axis (``(..., D)`` states, ``(..., 29)`` actions). Standard
deviations are floored at ``min_std`` so (near-)constant dimensions do not blow up.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MIN_STD = 1e-3


class Normalizer(nn.Module):
    """Buffers ``state_mean``/``state_std`` (D,) and ``action_mean``/``action_std`` (A,), float32."""

    def __init__(self, state_mean, state_std, action_mean, action_std, min_std: float = MIN_STD):
        super().__init__()
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std=}")
        for name, mean, std in (("state", state_mean, state_std), ("action", action_mean, action_std)):
            m = torch.as_tensor(np.asarray(mean, dtype=np.float64), dtype=torch.float32)
            s = torch.as_tensor(np.asarray(std, dtype=np.float64), dtype=torch.float32)
            if m.ndim != 1 or m.shape != s.shape:
                raise ValueError(f"{name} mean/std must be 1-D of equal length, got {tuple(m.shape)}, {tuple(s.shape)}")
            if not (torch.isfinite(m).all() and torch.isfinite(s).all()) or (s < 0).any():
                raise ValueError(f"{name} mean/std must be finite with std >= 0")
            self.register_buffer(f"{name}_mean", m)
            self.register_buffer(f"{name}_std", s.clamp(min=min_std))

    @classmethod
    def from_stats(cls, stats: dict, **kw) -> Normalizer:
        """From a manifest's ``stats`` dict ``{"states": {"mean", "std"}, "actions": {...}}``."""
        s, a = stats["states"], stats["actions"]
        return cls(s["mean"], s["std"], a["mean"], a["std"], **kw)

    @classmethod
    def identity(cls, state_dim: int, action_dim: int = 29) -> Normalizer:
        return cls(np.zeros(state_dim), np.ones(state_dim), np.zeros(action_dim), np.ones(action_dim))

    @property
    def state_dim(self) -> int:
        return int(self.state_mean.shape[0])

    @property
    def action_dim(self) -> int:
        return int(self.action_mean.shape[0])

    def _check(self, x: torch.Tensor, dim: int, what: str) -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.shape[-1] != dim:
            raise ValueError(f"{what} must have last dimension {dim}, got shape {tuple(x.shape)}")
        return x

    def normalize_states(self, x):
        x = self._check(x, self.state_dim, "states")
        return (x - self.state_mean.to(x)) / self.state_std.to(x)

    def unnormalize_states(self, x):
        x = self._check(x, self.state_dim, "states")
        return x * self.state_std.to(x) + self.state_mean.to(x)

    def normalize_actions(self, x):
        x = self._check(x, self.action_dim, "actions")
        return (x - self.action_mean.to(x)) / self.action_std.to(x)

    def unnormalize_actions(self, x):
        x = self._check(x, self.action_dim, "actions")
        return x * self.action_std.to(x) + self.action_mean.to(x)


def symmetrize(mean: np.ndarray, std: np.ndarray, perm: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean/std of the 50/50 mixture of a distribution and its mirror image ``x' = sign · x[perm]``."""
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    m_mir, v_mir = sign * mean[perm], std[perm] ** 2
    mix_mean = 0.5 * (mean + m_mir)
    mix_var = 0.5 * (std**2 + v_mir) + 0.25 * (mean - m_mir) ** 2
    return mix_mean, np.sqrt(mix_var)
