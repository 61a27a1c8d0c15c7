"""Seeded determinism with every wrapper on: same seed → identical observations over an expert rollout
(also after other episodes ran in the same env, and in a fresh env); different seeds → different rollouts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from bm_envs.experts.command_laws import PurePursuit
from bm_envs.experts.locomotion import ExpertPolicy

STEPS = 50


def _rollout(env, policy: ExpertPolicy, seed: int) -> list[dict[str, np.ndarray]]:
    obs, info = env.reset(seed=seed)
    policy.reset()
    out = [obs]
    for _ in range(STEPS):
        action, _ = policy.predict(obs)
        obs, _, terminated, truncated, info = env.step(action)
        out.append(obs)
        if terminated or truncated:
            break
    out.append({"action_delay_ms": np.array(info["action_delay_ms"]), "pushes": np.array(info["pushes"])})
    return out


def _equal(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b)
    )


def test_same_seed_same_rollout(env_id, all_wrappers, fastsac):
    law = None if env_id == "BM-G1-Joystick-v0" else PurePursuit(avoid_obstacles=env_id == "BM-G1-Obstacle-v0")
    policy = ExpertPolicy(fastsac, law=law)
    env = gym.make(env_id, **all_wrappers)
    first = _rollout(env, policy, seed=7)
    other = _rollout(env, policy, seed=8)
    again = _rollout(env, policy, seed=7)  # after another episode changed the model (DR, obstacles)
    fresh_env = gym.make(env_id, **all_wrappers)
    fresh = _rollout(fresh_env, policy, seed=7)

    assert len(first) == STEPS + 2, "the expert should not fall within 1 s"
    assert _equal(first, again)
    assert _equal(first, fresh)
    assert not _equal(first, other)
    assert not np.array_equal(first[-2]["proprio"], other[-2]["proprio"])
    env.close()
    fresh_env.close()
