"""Typed configuration of the state–action diffusion model, with named presets.

Window layout (defaults match ``bm_planner.data.trajectory``: N_HISTORY = 4, HORIZON = 16, ACTION_LOSS_STEPS = 8)::

    window index i:   0    1    2    3  | 4    5    6   ...  20
    step:           t0-4 t0-3 t0-2 t0-1 | t0  t0+1 t0+2 ... t0+16
    states s_i:      known (level 0) ......  s_4 known | s_5 .. s_20 planned  (T = n_history + 1 + horizon = 21)
    actions a_i:     known (level 0)        | a_4 .. a_11 planned + trained     (Ta = n_history + action_horizon = 12)

The action tokens stop at ``action_horizon`` future steps (default 8 = the action-loss mask): action tokens past the
mask receive no loss, so they would be untrained outputs that cost ~20 % more tokens. Set ``action_horizon = 17`` for
the paper's full layout [a_t, ..., a_{t+H}].
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from bm_envs.config_dict import ConfigError, replace_checked

SCHEDULES = ("cosine", "linear")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, noise schedule and loss weights of :class:`StateActionDiffusionModel`.

    Attributes:
        state_dim: D, features per state (taken from the data; 87 for the default state layout).
        action_dim: A, joint-position action dims (29 for the G1).
        n_history: N past steps known at level 0 (states s_0..s_N and actions a_0..a_{N-1} of the window).
        horizon: H planned future states.
        action_horizon: planned future action tokens (>= action_loss_steps, <= horizon + 1).
        action_loss_steps: future actions that receive loss (paper: 8).
        num_levels: K, diffusion noise levels; level 0 = clean, level K = (almost) pure noise (paper: 20).
        schedule: "cosine" (diffusers' squaredcos_cap_v2) or "linear".
        linear_beta_start / linear_beta_end: betas of the linear schedule (defaults 0.1/K and min(20/K, 0.999)).
        width, depth, heads, mlp_ratio: transformer size (paper: 512, 6, 4, 4).
        dropout: residual dropout; attn_dropout: attention-probability dropout (paper: 0.3).
        action_state_lookahead: action token i attends to state tokens j <= i + lookahead (0 = the paper's scheme).
        history_actions: whether planned actions may read the executed history actions (the paper: True; ``False``
            hides them, see ``transformer.py`` for why).
        history_action_noise: std (normalized units) of i.i.d. Gaussian noise added to the history actions in training
            only, so the planner cannot simply extrapolate its own past actions (0 = off).
        history_state_noise: std (normalized units) of i.i.d. Gaussian noise added to the known history states
            s_0..s_N in training only (the loss still targets the clean future), so plans do not depend on the exact
            history and tolerate states off the data's manifold, e.g. after a push (0 = off).
        uniform_level_prob: probability, per training window, that all future state tokens share one level and all
            future action tokens another (each U{0..K}) instead of one level per token. The sampler moves every
            future token through the same levels (all at K at a cold start), a corner that independent per-token
            levels almost never draw (all 16 states at level >= 16: (5/21)^16); 0 = the paper's independent levels.
        state_loss_weight / action_loss_weight: weights of the two MSE terms (each a per-element mean).
        warm_start_state_level / warm_start_action_level: levels a previous plan is re-noised to (paper: 14 / 4).
        command_dim: size of an optional task command every token is conditioned on (0 = unconditional, the paper;
            3 = the data's velocity command (vx, vy, yaw_rate) in m/s, rad/s, see ``transformer.py``).
        command_dropout: probability, per training window, of replacing the command with the learned "no command"
            embedding, so one model plans with and without a command (and classifier-free guidance can mix both).
    """

    state_dim: int = 87
    action_dim: int = 29
    n_history: int = 4
    horizon: int = 16
    action_horizon: int = 8
    action_loss_steps: int = 8
    num_levels: int = 20
    schedule: str = "cosine"
    linear_beta_start: float | None = None
    linear_beta_end: float | None = None
    width: int = 512
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    attn_dropout: float = 0.3
    action_state_lookahead: int = 0
    history_actions: bool = True
    history_action_noise: float = 0.0
    history_state_noise: float = 0.0
    uniform_level_prob: float = 0.0
    state_loss_weight: float = 1.0
    action_loss_weight: float = 1.0
    warm_start_state_level: int = 14
    warm_start_action_level: int = 4
    command_dim: int = 0
    command_dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("state_dim", "action_dim", "horizon", "num_levels", "width", "depth", "heads", "action_horizon"):
            _check_int(self, name, lo=1)
        for name in ("n_history", "action_state_lookahead", "action_loss_steps", "command_dim"):
            _check_int(self, name, lo=0)
        if self.action_loss_steps < 1 or self.action_loss_steps > self.action_horizon:
            raise ConfigError(
                f"action_loss_steps must be in [1, action_horizon]; got {self.action_loss_steps=}, "
                f"{self.action_horizon=}"
            )
        if self.action_horizon > self.horizon + 1:
            raise ConfigError(f"action_horizon must be <= horizon + 1; got {self.action_horizon=}, {self.horizon=}")
        if not isinstance(self.history_actions, bool):
            raise ConfigError(f"history_actions must be a bool; got {self.history_actions=!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}; got {self.schedule=!r}")
        if self.width % self.heads != 0:
            raise ConfigError(f"width must be divisible by heads; got {self.width=}, {self.heads=}")
        for name in ("mlp_ratio", "state_loss_weight", "action_loss_weight"):
            _check_float(self, name, lo=0.0, lo_open=name == "mlp_ratio")
        _check_float(self, "history_action_noise", lo=0.0, hi=10.0)
        _check_float(self, "history_state_noise", lo=0.0, hi=10.0)
        _check_float(self, "command_dropout", lo=0.0, hi=1.0)
        _check_float(self, "uniform_level_prob", lo=0.0, hi=1.0)
        for name in ("dropout", "attn_dropout"):
            _check_float(self, name, lo=0.0, hi=1.0, hi_open=True)
        if self.state_loss_weight == 0.0 and self.action_loss_weight == 0.0:
            raise ConfigError("state_loss_weight and action_loss_weight are both 0: nothing would be trained")
        for name in ("linear_beta_start", "linear_beta_end"):
            if getattr(self, name) is not None:
                _check_float(self, name, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        for name in ("warm_start_state_level", "warm_start_action_level"):
            _check_int(self, name, lo=0, hi=self.num_levels)

    # ------------------------------------------------------------------ derived sizes
    @property
    def window(self) -> int:
        """T = n_history + 1 + horizon state tokens (21 by default)."""
        return self.n_history + 1 + self.horizon

    @property
    def action_window(self) -> int:
        """Ta = n_history + action_horizon action tokens (12 by default)."""
        return self.n_history + self.action_horizon

    @property
    def n_known_states(self) -> int:
        return self.n_history + 1

    @property
    def n_known_actions(self) -> int:
        return self.n_history

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: ModelConfig | None = None) -> ModelConfig:
        """Build from a plain dict (e.g. YAML/JSON), starting from ``base``; unknown keys are rejected."""
        return replace_checked(base if base is not None else cls(), data, "model")

    @classmethod
    def preset(cls, name: str) -> ModelConfig:
        if name not in MODEL_PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(MODEL_PRESETS)}")
        return MODEL_PRESETS[name]


# ---------------------------------------------------------------------------------------------- validation helpers
def _check_int(cfg: Any, name: str, lo: int | None = None, hi: int | None = None) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{type(cfg).__name__}.{name} must be an int; got {name}={value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{type(cfg).__name__}.{name} must be in [{lo}, {hi}]; got {name}={value!r}")


def _check_float(
    cfg: Any, name: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{type(cfg).__name__}.{name} must be a finite number; got {name}={value!r}")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise ConfigError(f"{type(cfg).__name__}.{name} must be in {lb}{lo}, {hi}{rb}; got {name}={value!r}")


#: ``base`` is the paper's size (≈ 20 M parameters); ``small`` trains on a 2-core CPU; ``large`` for a GPU.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "small": ModelConfig(width=128, depth=4, heads=4, attn_dropout=0.0, action_loss_weight=3.0),
    "base": ModelConfig(width=512, depth=6, heads=4, attn_dropout=0.3),
    "large": ModelConfig(width=768, depth=8, heads=8, attn_dropout=0.3),
}
