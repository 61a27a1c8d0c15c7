"""``BM-G1-Tracking-v0``: checkers, reset onto the reference, rewards/terminations on known situations, motion end,
adaptive start-frame sampling, wrappers, determinism, config validation."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from bm_envs import g1_constants as g1
from bm_envs.rotations import quat_to_mat
from bm_envs.tracking.env import DEFAULT_WEIGHTS, AdaptiveStartSampler, G1TrackingEnv, TrackingConfig
from bm_envs.tracking.motion import MotionError, motion_from_qpos, quat_mul, resample

ZERO = np.zeros(29, dtype=np.float32)
ACCEPTED = [r"symmetric and normalized", r"Box observation space (minimum|maximum) value is -?infinity",
            r"unconventional shape", r"is different from the unwrapped version"]  # fmt: skip


@pytest.fixture(scope="module")
def standing():
    """A 2 s motion standing still in the default pose, feet on the floor."""
    h = G1TrackingEnv(motion="sub3_largebox_003_mj").idx.init_pelvis_height
    return motion_from_qpos(50.0, np.tile(np.r_[0.0, 0.0, h, 1, 0, 0, 0, g1.DEFAULT_JOINT_POS], (101, 1)))


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
def test_env_checkers(wrapped):
    kw = {"randomize": True, "latency_ms": (0.0, 100.0), "obs_noise": True} if wrapped else {}
    env = gym.make("BM-G1-Tracking-v0", motion="sub3_largebox_003_mj", **kw)
    assert env.unwrapped.scenario.env == "BM-G1-Tracking-v0"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.env.env if wrapped else env.unwrapped, skip_render_check=True)
        sb3_check_env(env, warn=True)
    assert [str(w.message) for w in caught if not any(re.search(p, str(w.message)) for p in ACCEPTED)] == []
    env.close()


def test_reset_puts_the_robot_on_the_reference():
    env = gym.make("BM-G1-Tracking-v0", motion="sub3_largebox_003_mj", start="zero")
    base = env.unwrapped
    m = base.motion
    obs, info = env.reset(seed=0, options={"start_frame": 100})
    d = base.data
    np.testing.assert_allclose(d.qpos[:7], m.joint_pos[100, :7])
    np.testing.assert_allclose(obs["proprio"][6:35], m.dof_pos[100], atol=1e-6)
    np.testing.assert_allclose(d.qvel[:3], m.joint_vel[100, :3])
    np.testing.assert_allclose(quat_to_mat(d.qpos[3:7]) @ d.qvel[3:6], m.joint_vel[100, 3:6], atol=1e-12)  # world ω
    np.testing.assert_allclose(obs["anchor_pos_b"], 0.0, atol=1e-6)
    np.testing.assert_allclose(obs["anchor_ori_b"], [1, 0, 0, 1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(obs["command"], np.r_[m.dof_pos[100], m.dof_vel[100]], rtol=1e-6)
    assert obs["motion_time_step"][0] == 100 and info["motion_frame"] == 100
    assert base._last_metrics["mpjpe_mm"] < 1e-6
    np.testing.assert_allclose(base._target, m.dof_pos[100])  # PD holds the reference until an action arrives
    with pytest.raises(ValueError, match="start_frame"):
        env.reset(options={"start_frame": m.num_frames - 1})


def test_standing_still_is_rewarded_and_reward_is_the_weighted_sum(standing):
    """The default pose is not statically stable under PD alone (it tips forward after ~0.5 s), so 0.2 s."""
    env = gym.make("BM-G1-Tracking-v0", motion=standing, start="zero", latency_ms=100.0)
    env.reset(seed=0)
    for _ in range(10):
        _, reward, terminated, truncated, info = env.step(ZERO)
        assert not terminated and not truncated
    terms = info["reward_terms"]
    for k in ("anchor_pos", "anchor_ori", "body_pos", "body_ori", "body_lin_vel", "body_ang_vel"):
        assert terms[k] > 0.9, (k, terms[k])
    assert terms["joint_limit"] == 0.0 and terms["undesired_contacts"] == 0.0 and terms["action_rate_tracking"] == 0.0
    assert reward == pytest.approx(sum(DEFAULT_WEIGHTS[k] * v for k, v in terms.items()))
    assert info["mpjpe_mm"] < 30.0 and info["joint_pos_error_rad"] < 0.05 and info["termination"] is None


def _perturbed_step(env, edit):
    env.reset(seed=0)
    edit(env.unwrapped.data)
    return env.step(ZERO)


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda d: d.qpos.__setitem__(2, d.qpos[2] + 0.6), "anchor_height"),
        (
            lambda d: d.qpos.__setitem__(slice(3, 7), quat_mul([np.cos(0.7), np.sin(0.7), 0, 0], d.qpos[3:7])),
            "anchor_orientation",
        ),
        (lambda d: d.qpos.__setitem__(7 + 16, 1.6), "end_effector_height"),  # left shoulder roll: arm up sideways
    ],
)
def test_terminations(standing, edit, reason):
    env = gym.make("BM-G1-Tracking-v0", motion=standing, start="zero")
    _, _, terminated, truncated, info = _perturbed_step(env, edit)
    assert terminated and not truncated and info["termination"] == reason


def test_penalties_on_known_situations(standing):
    env = gym.make("BM-G1-Tracking-v0", motion=standing, start="zero")
    env.reset(seed=0)
    a = ZERO.copy()
    a[18] = env.action_space.low[18]  # left elbow to its hard lower limit, below the soft one
    for _ in range(15):
        _, _, _, _, info = env.step(a)
    soft = env.unwrapped._soft_lo[18]
    assert info["reward_terms"]["joint_limit"] == pytest.approx(-(soft - env.unwrapped.data.qpos[7 + 18]))
    assert info["reward_terms"]["joint_limit"] < -0.05
    _, _, _, _, info = _perturbed_step(env, lambda d: d.qpos.__setitem__(2, 0.3))  # pelvis/thighs into the floor
    assert info["reward_terms"]["undesired_contacts"] <= -1.0
    env.reset(seed=0)
    env.step(ZERO)
    a = ZERO.copy()
    a[20] = 1.0  # left wrist pitch, env units
    _, _, _, _, info = env.step(a)
    expect = (g1.ACTION_SCALE[20] / g1.BEYONDMIMIC_ACTION_SCALE[20]) ** 2
    assert info["reward_terms"]["action_rate_tracking"] == pytest.approx(-expect)


def test_motion_end_truncates_and_time_limit(standing):
    short = standing.slice(0, 30)
    env = gym.make("BM-G1-Tracking-v0", motion=short, start="zero")
    env.reset(seed=0)
    for n in range(1, 30):
        _, _, terminated, truncated, info = env.step(ZERO)
        assert not terminated and truncated == (n == 29)
    assert info["motion_frame"] == 29 and info["motion_progress"] == 1.0
    env = gym.make("BM-G1-Tracking-v0", motion=standing, start="zero", time_limit_s=0.2)
    env.reset(seed=0)
    assert [env.step(ZERO)[3] for _ in range(10)] == [False] * 9 + [True]


def test_adaptive_sampler():
    s = AdaptiveStartSampler(num_frames=500, alpha=0.1, uniform_ratio=0.1, kernel_size=3, lam=0.8)
    assert s.num_bins == 11
    np.testing.assert_allclose(s.probabilities, 1 / 11)
    for _ in range(20):
        s.record_failure(260)  # bin 5
        s.step()
    p = s.probabilities
    assert p.argmax() == 5 and p[4] > p[6] and p[3] > p[7]  # the kernel looks ahead: earlier bins share the mass
    rng = np.random.default_rng(0)
    frames = np.array([s.sample(rng) for _ in range(2000)])
    assert frames.min() >= 0 and frames.max() <= 499
    assert np.mean((frames >= 5 * 500 / 11) & (frames < 6 * 500 / 11)) > 0.3  # uniform: 0.09
    before = s.failed[5]
    for _ in range(10):
        s.step()
    assert s.failed[5] == pytest.approx(before * 0.9**10)


def test_env_records_failures_and_samples_starts_from_them(standing):
    env = gym.make("BM-G1-Tracking-v0", motion=standing, adaptive_alpha=1.0, adaptive_uniform_ratio=1e-6)
    base = env.unwrapped
    env.reset(seed=0, options={"start_frame": 60})
    base.data.qpos[2] += 0.6
    assert env.step(ZERO)[2]
    assert base.sampler.failed[base.sampler.bin_of(60)] == 1.0
    starts = {env.reset(seed=s)[1]["motion_frame"] for s in range(10)}
    assert all(base.sampler.bin_of(f) == 1 for f in starts)  # frames 50..99 (bin 1)


def test_init_noise_and_determinism_with_all_wrappers():
    kw = {"motion": "sub3_largebox_003_mj", "init_noise": 1.0, "randomize": True, "latency_ms": (0.0, 100.0)}
    e1, e2 = gym.make("BM-G1-Tracking-v0", **kw), gym.make("BM-G1-Tracking-v0", **kw)
    o1, i1 = e1.reset(seed=3)
    o2, _ = e2.reset(seed=3)
    m = e1.unwrapped.motion
    dq = o1["proprio"][6:35] - m.dof_pos[i1["motion_frame"]]
    assert 0 < np.abs(dq).max() <= 0.1 + 1e-6
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = rng.uniform(-0.3, 0.3, 29).astype(np.float32)
        o1, r1, *_ = e1.step(a)
        o2, r2, *_ = e2.step(a)
    assert r1 == r2 and all(np.array_equal(o1[k], o2[k]) for k in o1)


def test_config_and_motion_validation(standing):
    with pytest.raises(ValueError, match="unknown term"):
        TrackingConfig(weights={"style": 1.0})
    with pytest.raises(ValueError, match="sigma_body_pos must be > 0, got -1"):
        TrackingConfig(sigma_body_pos=-1.0)
    with pytest.raises(ValueError, match="start must be"):
        gym.make("BM-G1-Tracking-v0", motion=standing, start="middle")
    with pytest.raises(ValueError, match="unknown TrackingConfig field"):
        gym.make("BM-G1-Tracking-v0", motion=standing, sigma_foo=1.0)
    with pytest.raises(MotionError, match="unknown motion"):
        gym.make("BM-G1-Tracking-v0", motion="moonwalk")
    env = gym.make("BM-G1-Tracking-v0", motion=resample(standing, 25.0))
    assert env.unwrapped.motion.fps == 50.0 and env.unwrapped.motion.num_frames == 101
