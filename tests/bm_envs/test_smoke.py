import gymnasium as gym
import numpy as np

import bm_envs  # noqa: F401


def test_joystick_env_steps():
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    obs, r, term, trunc, info = env.step(np.zeros(29, dtype=np.float32))
    assert obs["proprio"].shape == (93,)
    assert np.isfinite(r)
