"""Seeding shared by the bm wrappers: each wrapper owns a generator re-seeded by ``reset(seed=...)``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class SeededWrapper(gym.Wrapper):
    """A wrapper with its own ``rng``. ``reset(seed=s)`` seeds it from ``s`` (offset by a per-class salt, so
    wrappers draw independent streams); an unseeded first reset derives it from the env's generator."""

    salt = 0

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.rng: np.random.Generator | None = None

    def _seed_rng(self, seed: int | None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng([int(seed), self.salt])
        elif self.rng is None:
            self.rng = np.random.default_rng(int(self.env.unwrapped.np_random.integers(2**63)))
