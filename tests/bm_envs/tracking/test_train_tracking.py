"""The SB3 training path: the policy wrapper, export to the experts' ONNX format (loaded back by TrackingExpert and
acting exactly like the SB3 policy), the evaluation and playback commands."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from bm_envs import g1_constants as g1
from bm_envs.tracking.expert import TrackingExpert
from bm_envs.tracking.train import TrackingPolicyEnv, export_onnx, main, make_env

MOTION = "sub3_largebox_003_mj"


def test_policy_env_observation_is_the_expert_layout():
    env = TrackingPolicyEnv(gym.make("BM-G1-Tracking-v0", motion="ppo", start="zero"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "We recommend you to use a symmetric and normalized Box action space")
        sb3_check_env(env)
    expert = TrackingExpert("ppo")
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped._get_obs()
    np.testing.assert_array_equal(obs, expert.build_obs(raw)[0])  # zero last action on both sides
    a_env = expert.act(raw)
    a_bm = expert.last_action
    np.testing.assert_allclose(g1.tracking_to_env_action(a_bm), a_env, rtol=1e-5, atol=1e-5)
    obs, *_ = env.step(a_bm)
    np.testing.assert_allclose(
        obs[:29], np.clip(a_bm, env.action_space.low, env.action_space.high), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("residual", [False, True], ids=["direct", "residual"])
def test_export_round_trip(tmp_path, residual):
    """A (briefly trained) SB3 PPO policy exported to ONNX acts like SB3 when run by TrackingExpert in the env,
    and the exported file carries the env's motion."""
    torch.manual_seed(0)
    venv = VecNormalize(DummyVecEnv([make_env(MOTION, 2.0, False, None, residual=residual, init_noise=1.0)]))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [32, 32], "activation_fn": torch.nn.ELU})  # fmt: skip
    model.learn(64)
    venv.training = False
    path = export_onnx(model, venv, MOTION, tmp_path / "policy.onnx", residual=residual)
    expert = TrackingExpert(path)
    assert expert.format == "holosoma" and expert.name == "policy"
    env = gym.make("BM-G1-Tracking-v0", motion=MOTION, start="zero")
    np.testing.assert_allclose(expert.motion.joint_pos, env.unwrapped.motion.joint_pos, atol=1e-5)
    np.testing.assert_allclose(expert.action_scale, g1.BEYONDMIMIC_ACTION_SCALE)
    wrapped = TrackingPolicyEnv(env, residual=residual)
    obs, _ = wrapped.reset(seed=0)
    for _ in range(10):
        raw = env.unwrapped._get_obs()
        a_onnx = expert.act(raw)
        a_sb3, _ = model.predict(venv.normalize_obs(obs[None]), deterministic=True)
        a_total = a_sb3[0] + wrapped._ff
        np.testing.assert_allclose(a_onnx, g1.tracking_to_env_action(a_total), rtol=1e-4, atol=1e-4)
        obs, _, term, trunc, _ = wrapped.step(a_sb3[0])
        if term or trunc:
            break
    assert expert.reference_error < 1e-5


def test_eval_command_reports_tracking_metrics(tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--policy", "ppo", "--trials", "2", "--max-seconds", "1.0", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["trials"] == 2 and res["frames"] == 51 and res["full_motion_rate"] == 1.0
    assert res["completed_fraction_mean"] == 1.0 and 0 < res["mpjpe_mm_mean"] < 40
    assert [t["steps"] for t in res["trials_detail"]] == [50, 50]
    assert json.loads(capsys.readouterr().out)["policy"] == "ppo"


def test_play_renders_the_motion_kinematically(tmp_path):
    import imageio.v2 as imageio

    out = tmp_path / "clip.gif"
    assert (
        main(
            ["play", "--motion", MOTION, "--out", str(out), "--seconds", "0.4", "--every", "20", "--size", "160", "120"]
        )
        == 0
    )
    frames = imageio.mimread(out)
    assert len(frames) == 2 and frames[0].shape[:2] == (120, 160)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5  # the robot moved


def test_train_command_rejects_unknown_motion(tmp_path):
    with pytest.raises(Exception, match="unknown motion"):
        main(["train", "--motion", "moonwalk", "--steps", "64", "--out", str(tmp_path)])


def test_extract_command_writes_the_baked_motion(tmp_path, capsys):
    from bm_envs.tracking.motion import load_motion

    assert main(["extract", "--policy", "ppo", "--out", str(tmp_path / "dance.npz")]) == 0
    m = load_motion(tmp_path / "dance.npz")
    assert m.num_frames == 6574 and m.fps == 50.0 and "6574 frames" in capsys.readouterr().out
    np.testing.assert_array_equal(m.joint_pos, TrackingExpert("ppo").motion.joint_pos)
