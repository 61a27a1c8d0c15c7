"""Action latency: the policy's action reaches the motors late (``ActionDelayBuffer`` semantics).

Per episode a delay is drawn uniformly from ``latency_ms = (lo, hi)`` (0–100 ms by default) and rounded to whole
physics steps (2 ms resolution). The env keeps delayed targets in a queue and switches the PD target in the middle
of a control period when one arrives, so delays that are not multiples of 20 ms are simulated exactly. Until the
first action arrives the robot holds its default pose. ``info["action_delay_ms"]`` reports the delay in force.
"""

from __future__ import annotations

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.wrappers._seeding import SeededWrapper

MAX_LATENCY_MS = 1000.0


class ActionLatency(SeededWrapper):
    salt = 1

    def __init__(self, env, latency_ms: tuple[float, float] | float = (0.0, 100.0)):
        super().__init__(env)
        try:
            lo, hi = (float(latency_ms),) * 2 if np.ndim(latency_ms) == 0 else map(float, latency_ms)
        except (TypeError, ValueError):
            raise ValueError(f"latency_ms must be a number or a (lo, hi) pair in ms, got {latency_ms!r}") from None
        if not (0.0 <= lo <= hi <= MAX_LATENCY_MS):
            raise ValueError(f"latency_ms must satisfy 0 <= lo <= hi <= {MAX_LATENCY_MS}, got {latency_ms!r}")
        self.latency_ms = (float(lo), float(hi))

    def reset(self, *, seed=None, options=None):
        self._seed_rng(seed)
        ms = self.rng.uniform(*self.latency_ms)
        self.env.unwrapped.action_delay_steps = int(round(ms / 1000.0 / g1.PHYSICS_DT))
        return self.env.reset(seed=seed, options=options)
