"""Observation noise on proprioception: additive uniform noise U(−s, s) per term, seeded.

Default scales (``proprio`` layout of :mod:`bm_envs.envs.base`): angular velocity 0.2 rad/s, projected gravity 0.05,
joint positions 0.01 rad, joint velocities 1.5 rad/s, last action 0. Other keys (root pose, bodies, task) are left
untouched: they stand for what a planner gets from state estimation / motion capture.
"""

from __future__ import annotations

import numpy as np

from bm_envs.observation import PROPRIO_DIM, PROPRIO_SLICES
from bm_envs.wrappers._seeding import SeededWrapper

DEFAULT_SCALES = {"ang_vel": 0.2, "gravity": 0.05, "joint_pos": 0.01, "joint_vel": 1.5, "last_action": 0.0}


class ObservationNoise(SeededWrapper):
    salt = 3

    def __init__(self, env, scales: dict[str, float] | None = None):
        super().__init__(env)
        if scales is not None and not isinstance(scales, dict):
            raise ValueError(f"obs_noise scales must be a dict of per-term scales, got {scales!r}")
        s = dict(DEFAULT_SCALES)
        for k, v in (scales or {}).items():
            if k not in s:
                raise ValueError(f"unknown noise term {k!r}; known: {sorted(s)}")
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"noise scale for {k!r} must be finite and >= 0, got {v!r}")
            s[k] = float(v)
        self.scale_vec = np.zeros(PROPRIO_DIM, dtype=np.float32)
        for term, part in (("ang_vel", "ang_vel_b"), ("gravity", "gravity_b"), ("joint_pos", "joint_pos"),
                           ("joint_vel", "joint_vel"), ("last_action", "last_action")):  # fmt: skip
            self.scale_vec[PROPRIO_SLICES[part]] = s[term]

    def _noisy(self, obs):
        obs = dict(obs)
        obs["proprio"] = obs["proprio"] + (self.rng.uniform(-1, 1, self.scale_vec.shape) * self.scale_vec).astype(
            np.float32
        )
        return obs

    def reset(self, *, seed=None, options=None):
        self._seed_rng(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return self._noisy(obs), info

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        return self._noisy(obs), r, term, trunc, info
