"""Small real data sets shared by the data tests (real MuJoCo rollouts of the real ONNX expert)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import bm_envs  # noqa: F401
from bm_envs.experts.locomotion import ExpertPolicy
from bm_planner.data.collector import MotionDataCollector, main
from bm_planner.data.rollout import CollectConfig

#: 1 episode per shard, 2 s episodes: the "tiny run" of the collector.
TINY = CollectConfig(seed=0, episode_s=2.0, episodes_per_shard=1)
#: 100 ms latency makes the expert fall within ~3-5 s: 2 episodes in one shard, both ending in a fall.
FALLS = CollectConfig(seed=1, episode_s=5.0, episodes_per_shard=2, latency_ms=(100.0, 100.0), fall_margin_s=1.0)


@pytest.fixture(scope="session")
def tiny_config() -> CollectConfig:
    return TINY


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """``bm-collect`` (CLI) with 1 worker: 2 episodes × 2 s."""
    root = tmp_path_factory.mktemp("tiny")
    rc = main(["--out", str(root), "--episodes", "2", "--episode-s", "2", "--episodes-per-shard", "1",
               "--workers", "1", "--seed", "0", "--no-progress"])  # fmt: skip
    assert rc == 0
    return root


@pytest.fixture(scope="session")
def falls_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("falls")
    MotionDataCollector(root, FALLS, workers=0, progress=False).run(episodes=2)  # in-process
    return root


@pytest.fixture(scope="session")
def rollout_obs():
    """60 steps of the expert walking and turning in a randomized env, started at a random world pose."""
    sc = {"name": "t", "env": "BM-G1-Joystick-v0", "time_limit_s": 5.0, "start": {"xy": [3.0, -2.0], "yaw": 2.5},
          "joystick": [{"t": 0.0, "vx": 0.5, "vy": 0.1, "yaw_rate": 0.8}]}  # fmt: skip
    env = gym.make("BM-G1-Joystick-v0", randomize=True, scenario=sc)
    pol = ExpertPolicy("fastsac")
    obs, _ = env.reset(seed=1)
    pol.reset()
    out = []
    for _ in range(60):
        out.append(obs)
        obs = env.step(pol.predict(obs)[0])[0]
    env.close()
    return {k: np.stack([o[k] for o in out]) for k in out[0]}
