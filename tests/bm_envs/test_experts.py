"""Stage-1 locomotion experts (real holosoma ONNX) in the bm envs, and the SB3-style ``predict`` contract."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from bm_envs.experts.command_laws import PurePursuit
from bm_envs.experts.locomotion import ExpertPolicy, LocomotionExpert

FORWARD = {"name": "fwd-0.5", "env": "BM-G1-Joystick-v0", "time_limit_s": 4.0,
           "joystick": [{"t": 0.0, "vx": 0.5, "vy": 0.0, "yaw_rate": 0.0}]}  # fmt: skip


@pytest.mark.parametrize("name", ["fastsac", "ppo"])
def test_expert_walks_forward(name, fastsac):
    env = gym.make("BM-G1-Joystick-v0", scenario=FORWARD)
    policy = ExpertPolicy(fastsac if name == "fastsac" else LocomotionExpert(name))
    obs, info = env.reset(seed=0)
    policy.reset()
    vx, steps = [], 0
    while True:
        action, _ = policy.predict(obs)
        assert action.shape == (29,) and action.dtype == np.float32
        obs, _, terminated, truncated, info = env.step(action)
        vx.append(info["root_vel_b"][0])
        steps += 1
        assert not info["fell"], f"fell at t = {info['time_s']:.2f} s"
        if terminated or truncated:
            break
    assert truncated and steps == 200  # the full 4 s
    mean_vx = float(np.mean(vx[100:]))  # last 2 s
    assert 0.25 <= mean_vx <= 0.7, f"mean forward velocity {mean_vx:.3f} m/s for a 0.5 m/s command"
    assert info["root_xy"][0] > 0.8
    env.close()


def test_predict_rejects_bad_obs(fastsac, joystick_env):
    policy = ExpertPolicy(fastsac)
    obs, info = joystick_env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(obs, info\) tuple"):
        policy.predict((obs, info))
    bad = {**obs, "proprio": obs["proprio"].copy()}
    bad["proprio"][10] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        policy.predict(bad)
    with pytest.raises(ValueError, match=r"shape \(93,\)"):
        policy.predict({**obs, "proprio": obs["proprio"][None]})
    with pytest.raises(ValueError, match="'proprio'"):
        policy.predict(obs["proprio"])
    no_cmd = {k: v for k, v in obs.items() if k != "command"}
    with pytest.raises(ValueError, match="command law"):
        policy.predict(no_cmd)
    with pytest.raises(ValueError, match="command must be finite"):
        fastsac.act(obs, np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="unknown expert"):
        LocomotionExpert("dreamer")


def test_predict_state_and_episode_start(fastsac, joystick_env):
    """``episode_start`` resets the expert's gait phase and action memory: same obs → same action."""
    policy = ExpertPolicy(fastsac)
    obs, _ = joystick_env.reset(seed=0)
    obs = {**obs, "command": np.array([0.5, 0.0, 0.0], dtype=np.float32)}
    a0, state = policy.predict(obs, state=None, episode_start=np.array([True]))
    assert state is None
    a1, _ = policy.predict(obs)
    assert not np.array_equal(a0, a1)  # phase and last action advanced
    a2, _ = policy.predict(obs, episode_start=np.array([True]))
    np.testing.assert_array_equal(a0, a2)


def test_pure_pursuit_reaches_a_close_goal(fastsac):
    sc = {"name": "near", "env": "BM-G1-Waypoint-v0", "time_limit_s": 6.0, "waypoints": [[1.0, 0.5]],
          "goal_radius_m": 0.3}  # fmt: skip
    env = gym.make("BM-G1-Waypoint-v0", scenario=sc)
    policy = ExpertPolicy(fastsac, law=PurePursuit())
    obs, _ = env.reset(seed=0)
    policy.reset()
    terminated = truncated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(policy.predict(obs)[0])
    assert info["success"] and not info["fell"] and info["time_to_goal_s"] < 6.0
    env.close()
