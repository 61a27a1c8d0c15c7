"""Configuration of expert take-overs from a planner's states (DAgger), :class:`TakeoverConfig`: validated by
:class:`~bm_planner.data.rollout.CollectConfig` and run by :class:`~bm_planner.data.takeover.TakeoverRunner`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.config_dict import from_dict
from bm_planner.data.trajectory import N_HISTORY, WINDOW

#: how the expert's gait phase is set at a take-over (see :mod:`bm_planner.data.takeover`)
PHASES = ("match", "clock")


@dataclass(frozen=True)
class TakeoverConfig:
    """``policy``: the planner's checkpoint (a ``bm-train`` run or checkpoint folder); ``agent``: its
    :class:`~bm_planner.agent.AgentConfig` overrides (on top of the checkpoint's shipped settings); ``backend``:
    its denoiser runtime; ``every_s``: seconds between take-overs along a planner episode (the first one at a random
    offset in ``[first_s, first_s + every_s)``); ``continue_s``: how long the expert continues from each; ``phase``:
    how the expert's gait phase is set (module docstring). ``checkpoint_sha256`` is filled in from the weights."""

    policy: str
    agent: dict = field(default_factory=dict)
    backend: str = "onnx"
    every_s: float = 0.5
    first_s: float = 0.1
    continue_s: float = 2.0
    phase: str = "match"
    checkpoint_sha256: str | None = None

    def __post_init__(self):
        if not isinstance(self.policy, str) or not self.policy:
            raise ValueError(f"TakeoverConfig.policy must be a checkpoint path, got {self.policy!r}")
        if self.backend not in ("torch", "onnx"):
            raise ValueError(f"TakeoverConfig.backend must be 'torch' or 'onnx', got {self.backend!r}")
        if self.phase not in PHASES:
            raise ValueError(f"TakeoverConfig.phase must be one of {PHASES}, got {self.phase!r}")
        if not isinstance(self.agent, dict):
            raise ValueError(f"TakeoverConfig.agent must be a dict of AgentConfig overrides, got {self.agent!r}")
        min_continue = (WINDOW - N_HISTORY) * g1.CONTROL_DT
        for name, lo in (("every_s", g1.CONTROL_DT), ("first_s", 0.0), ("continue_s", min_continue)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and lo - 1e-9 <= v <= 600):
                raise ValueError(f"TakeoverConfig.{name} must be in [{lo:g}, 600] s, got {v!r}")

    @classmethod
    def from_dict(cls, d: dict) -> TakeoverConfig:
        return from_dict(cls, d, "takeover")

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["PHASES", "TakeoverConfig"]
