"""Training windows of the Stage-2 planner: history N = 4, horizon H = 16, action loss on the first 8 actions.

A window spans ``T = N + 1 + H = 21`` control steps (50 Hz, 0.42 s) around the current step ``t0``::

    step        t0-4  t0-3  t0-2  t0-1 | t0  | t0+1 ... t0+7 | t0+8 ... t0+16
    states      known known known known| known| planned ...   | planned ...
    actions     known known known known| loss | loss ... loss  | planned (no loss)
    index         0     1     2     3  |  4  |  5  ...  11    |  12  ...  20

``states[i] = s_{t0-N+i}`` and ``actions[i] = a_{t0-N+i}``, where ``a_t`` is the expert's action *taken in*
state ``s_t``. The history (inpainted at inference) is ``states[:N+1]`` and ``actions[:N]``; the action loss
covers ``actions[N : N+ACTION_LOSS_STEPS]`` = ``a_{t0} .. a_{t0+7}``. All states of a window are expressed
relative to the character (yaw) frame of ``t0`` (see :mod:`bm_planner.data.state`).

The masks are ``torch.bool`` tensors of shape ``(T,)``; index the time axis of ``(B, T, D)`` tensors with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

N_HISTORY = 4
HORIZON = 16
ACTION_LOSS_STEPS = 8
WINDOW = N_HISTORY + 1 + HORIZON  # 21
ACTION_DIM = 29


def _mask(T: int, lo: int, hi: int) -> torch.Tensor:
    import torch  # imported lazily: rollout workers use this module without torch

    m = torch.zeros(_check_T(T), dtype=torch.bool)
    m[lo:hi] = True
    return m


def _check_T(T: int) -> int:
    if not isinstance(T, (int, np.integer)) or T < N_HISTORY + ACTION_LOSS_STEPS:
        raise ValueError(f"window length T must be an int >= N_HISTORY + ACTION_LOSS_STEPS = "
                         f"{N_HISTORY + ACTION_LOSS_STEPS}, got {T!r}")  # fmt: skip
    return int(T)


def history_mask_states(T: int = WINDOW) -> torch.Tensor:
    """``(T,)`` bool: True for the known (history) states ``s_{t0-N} .. s_{t0}`` = indices ``0 .. N``."""
    return _mask(T, 0, N_HISTORY + 1)


def history_mask_actions(T: int = WINDOW) -> torch.Tensor:
    """``(T,)`` bool: True for the known (history) actions ``a_{t0-N} .. a_{t0-1}`` = indices ``0 .. N-1``."""
    return _mask(T, 0, N_HISTORY)


def action_loss_mask(T: int = WINDOW) -> torch.Tensor:
    """``(T,)`` bool: True for the actions the loss covers, ``a_{t0} .. a_{t0+7}`` = indices ``N .. N+7``."""
    return _mask(T, N_HISTORY, N_HISTORY + ACTION_LOSS_STEPS)


@dataclass
class Trajectory:
    """One window (or a batch of windows) of states and actions.

    ``states``: ``(T, D)`` or ``(B, T, D)``; ``actions``: ``(T, 29)`` or ``(B, T, 29)`` — numpy arrays or torch
    tensors, with ``T = WINDOW`` = 21 unless stated otherwise. Units follow the state layout of
    :class:`~bm_planner.data.state.StateRepresentation` (m, m/s, rad) and the env action convention.
    """

    states: Any
    actions: Any

    def __post_init__(self):
        s, a = self.states, self.actions
        if s.ndim not in (2, 3) or a.ndim != s.ndim:
            raise ValueError(f"states/actions must both be (T, D) or (B, T, D), got {tuple(s.shape)=}, "
                             f"{tuple(a.shape)=}")  # fmt: skip
        if s.shape[:-1] != a.shape[:-1]:
            raise ValueError(f"states and actions disagree on (B, T): {tuple(s.shape)} vs {tuple(a.shape)}")
        if a.shape[-1] != ACTION_DIM:
            raise ValueError(f"actions must have {ACTION_DIM} columns, got {tuple(a.shape)}")
        _check_T(s.shape[-2])
        finite = np.isfinite if isinstance(s, np.ndarray) else type(s).isfinite
        if not (bool(finite(s).all()) and bool(finite(a).all())):
            raise ValueError("Trajectory contains NaN or inf")

    @property
    def T(self) -> int:
        return int(self.states.shape[-2])

    @property
    def history_states(self):
        """``(…, N+1, D)``: ``s_{t0-N} .. s_{t0}``."""
        return self.states[..., : N_HISTORY + 1, :]

    @property
    def future_states(self):
        """``(…, T-N-1, D)``: ``s_{t0+1} .. s_{t0+H}``."""
        return self.states[..., N_HISTORY + 1 :, :]

    @property
    def history_actions(self):
        """``(…, N, 29)``: ``a_{t0-N} .. a_{t0-1}``."""
        return self.actions[..., :N_HISTORY, :]

    @property
    def future_actions(self):
        """``(…, T-N, 29)``: ``a_{t0} .. a_{t0+H}``."""
        return self.actions[..., N_HISTORY:, :]

    @classmethod
    def from_item(cls, item: dict) -> Trajectory:
        """From a :class:`~bm_planner.data.dataset.TrajectoryDataset` item ``{"states", "actions"}``."""
        return cls(item["states"], item["actions"])

    def to_item(self) -> dict:
        return {"states": self.states, "actions": self.actions}
