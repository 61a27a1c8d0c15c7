"""Invalid actions and constructor kwargs fail loudly with ValueError; out-of-range actions are clipped."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from bm_envs import g1_constants as g1


@pytest.mark.parametrize(
    "action, match",
    [
        (np.full(29, np.nan), "NaN or inf"),
        (np.r_[np.zeros(28), np.inf], r"NaN or inf at indices \[28\]"),
        (np.r_[-np.inf, np.zeros(28)], r"NaN or inf at indices \[0\]"),
        (np.zeros(28), r"shape \(29,\)"),
        (np.zeros((1, 29)), r"shape \(29,\)"),
        (0.0, r"shape \(29,\)"),
        (np.zeros(29) + 1j, "real numeric array, got dtype complex128"),
        (["0.1"] * 29, "real numeric array, got dtype <U3"),
        (np.zeros(29, dtype=object), "real numeric array, got dtype object"),
    ],
    ids=["nan", "inf", "-inf", "short", "batched", "scalar", "complex", "strings", "objects"],
)
def test_bad_action_raises(joystick_env, action, match):
    joystick_env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        joystick_env.unwrapped.step(action)


def test_out_of_range_action_is_clipped(joystick_env):
    """The PD target (``data.ctrl``) is the target of the clipped action, i.e. the joint limit."""
    env = joystick_env.unwrapped
    env.reset(seed=0)
    jr = env.model.jnt_range[[env.model.joint(n).id for n in g1.JOINT_NAMES]]
    action = np.where(np.arange(29) % 2 == 0, 100.0, -100.0)
    obs, *_ = env.step(action)
    clipped = np.clip(action, env.action_space.low, env.action_space.high)
    np.testing.assert_array_equal(env.data.ctrl, g1.DEFAULT_JOINT_POS + g1.ACTION_SCALE * clipped)
    expected_limit = np.where(np.arange(29) % 2 == 0, jr[:, 1], jr[:, 0])
    np.testing.assert_allclose(env.data.ctrl, expected_limit, atol=1e-6)  # float32 action bounds
    last_action = obs["proprio"][6 + 2 * g1.NUM_JOINTS :]
    np.testing.assert_allclose(last_action, clipped, rtol=1e-6)  # the observation reports the clipped action

    in_range = 0.5 * (env.action_space.low + env.action_space.high)
    env.step(in_range)
    np.testing.assert_allclose(env.data.ctrl, g1.DEFAULT_JOINT_POS + g1.ACTION_SCALE * in_range, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"time_limit_s": -1.0}, "time_limit_s"),
        ({"time_limit_s": 0.0}, "time_limit_s"),
        ({"time_limit_s": float("nan")}, "time_limit_s"),
        ({"render_mode": "rgb"}, "render_mode"),
        ({"latency_ms": (50.0, 10.0)}, "latency_ms"),
        ({"latency_ms": (-5.0, 10.0)}, "latency_ms"),
        ({"latency_ms": (0.0, 5000.0)}, "latency_ms"),
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"latency_ms": (0.0, 10.0, 20.0)}, "latency_ms"),
        ({"latency_ms": "fast"}, "latency_ms"),
        ({"randomize": {"friction": (1.2, 0.3)}}, "friction"),
        ({"randomize": {"mass_scale": (-1.0, 1.0)}}, "mass_scale"),
        ({"randomize": {"kp_scale": (0.9, float("inf"))}}, "kp_scale"),
        ({"randomize": {"joint_damping": (-0.1, 0.0)}}, "joint_damping"),
        ({"randomize": {"friction": 0.5}}, "friction"),
        ({"randomize": {"gravity": (0.9, 1.1)}}, "gravity"),
        ({"randomize": "yes"}, "unknown randomization profile .yes.; known: \\[.expert., .off., .paper.\\]"),
        ({"randomize": 3}, "randomize"),
        ({"obs_noise": {"imu_bias": 0.1}}, "imu_bias"),
        ({"obs_noise": {"joint_vel": -1.0}}, "joint_vel"),
        ({"obs_noise": {"joint_vel": float("nan")}}, "joint_vel"),
        ({"obs_noise": "loud"}, "obs_noise"),
        ({"max_speed": -0.5}, "max_speed"),
        ({"resample_s": (2.0, 1.0)}, "resample_s"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_bad_kwargs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("BM-G1-Joystick-v0", **kwargs)


def test_unknown_task_raises():
    from bm_envs.make import make_g1_env

    with pytest.raises(ValueError, match="unknown task 'parkour'"):
        make_g1_env("parkour")


def test_unknown_or_bad_reset_options_raise(joystick_env):
    with pytest.raises(ValueError, match="unknown reset option\\(s\\) \\['start_fram'\\]; known"):
        joystick_env.reset(seed=0, options={"start_fram": 3})
    with pytest.raises(ValueError, match="'joint_offset' must be a finite \\(29,\\) array"):
        joystick_env.reset(seed=0, options={"joint_offset": np.zeros(3)})
    obs, _ = joystick_env.reset(seed=0, options={"joint_offset": np.full(29, 0.05), "root_lin_vel": [0.3, 0, 0]})
    assert obs["root_lin_vel_w"][0] == pytest.approx(0.3)
