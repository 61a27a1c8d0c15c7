"""SB3 baselines: config validation, the wrapper's spaces and reward, resume, and the bm-eval adapter's parity."""

import json

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import bm_envs  # noqa: F401
from bm_planner.baselines.sb3 import (
    CONFIG_DIR,
    ObservationFeatures,
    SB3Config,
    SB3TaskEnv,
    command_from_action,
    load_sb3_policy,
    main,
    make_env,
    normalize_command,
    train,
)

TINY_PPO = {"n_steps": 32, "batch_size": 32, "n_epochs": 1}
TINY_SAC = {"learning_starts": 16, "batch_size": 16, "buffer_size": 1000}


# ---------------------------------------------------------------------- config
def test_presets_load_and_validate():
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert names == ["hierarchical_ppo", "hierarchical_sac", "joints_ppo", "joints_sac"]
    for n in names:
        cfg = SB3Config.from_yaml(n, task="joystick")
        assert f"{cfg.variant}_{cfg.algo}" == n


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "dance"}, "task must be one of"),
        ({"variant": "residual"}, "variant"),
        ({"algo": "td3"}, "algo"),
        ({"n_envs": 0}, "n_envs"),
        ({"timesteps": 1.5}, "timesteps"),
        ({"command_low": [1.0, 0.0, 0.0]}, "command_low/high"),
        ({"algo_kwargs": {"n_stepz": 8}}, r"unknown PPO algo_kwargs \['n_stepz'\]"),
        ({"algo": "sac", "algo_kwargs": {"n_epochs": 8}}, "unknown SAC algo_kwargs"),
        ({"joint_action_scale": 0.0}, "joint_action_scale"),
    ],
)
def test_bad_config_values_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SB3Config(**kwargs)


def test_unknown_yaml_key_names_the_key(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("task: waypoint\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown SB3Config field\(s\) \['learning_rate'\]"):
        SB3Config.from_yaml(f)
    with pytest.raises(SystemExit):
        main(["--config", str(f), "--out", str(tmp_path / "run")])
    with pytest.raises(ValueError, match="neither a file nor a preset"):
        SB3Config.from_yaml("no_such_preset")


def test_nearest_obstacles_count_a_mesh_by_its_bounding_box():
    """A mesh row is its yaw-aligned bounding box: the same footprint radius as a box row of the same half-sizes."""
    rows = np.zeros((3, 8))
    rows[0] = [4, 2.0, 0.0, 0.5, 0.3, 0.4, 0.5, 0.0]  # mesh, 2 m ahead, half-sizes 0.3 x 0.4
    rows[1] = [2, 0.0, 3.0, 0.5, 0.3, 0.4, 0.5, 0.0]  # box with the same half-sizes, 3 m to the left
    rows[2] = [1, -4.0, 0.0, 0.5, 0.2, 0.0, 0.0, 0.0]  # sphere r 0.2 behind
    out = ObservationFeatures._nearest_obstacles(rows, np.zeros(2), 0.0).reshape(-1, 3)
    np.testing.assert_allclose(out[0], [2.0, 0.0, 0.5])  # nearest first; radius hypot(0.3, 0.4)
    np.testing.assert_allclose(out[1], [0.0, 3.0, 0.5])
    np.testing.assert_allclose(out[2], [-4.0, 0.0, 0.2])
    np.testing.assert_allclose(out[3], [5.0, 0.0, 0.0])  # a missing one


def test_command_mapping_round_trip():
    lo, hi = [-0.5, -0.4, -1.0], [1.0, 0.4, 1.0]
    np.testing.assert_allclose(command_from_action([-1, -1, -1], lo, hi), lo)
    np.testing.assert_allclose(command_from_action([1, 1, 1], lo, hi), hi)
    np.testing.assert_allclose(command_from_action([5, -5, 0], lo, hi), [1.0, -0.4, 0.0])  # clipped
    c = np.array([0.3, -0.1, 0.5])
    np.testing.assert_allclose(command_from_action(normalize_command(c, lo, hi), lo, hi), c)


# ---------------------------------------------------------------------- wrapper
@pytest.mark.parametrize(
    "task, variant, obs_dim, act_dim",
    [("joystick", "joints", 99, 29), ("waypoint", "hierarchical", 17, 3), ("obstacle", "hierarchical", 29, 3),
     ("obstacle", "joints", 113, 29)],
)  # fmt: skip
def test_wrapper_spaces(task, variant, obs_dim, act_dim):
    env = make_env(SB3Config(task=task, variant=variant))
    assert env.observation_space.shape == (obs_dim,) and env.action_space.shape == (act_dim,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (obs_dim,) and obs.dtype == np.float32 and np.all(np.isfinite(obs))
    obs, r, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and np.isfinite(r)
    env.close()


def test_sb3_env_checker_passes():
    from stable_baselines3.common.env_checker import check_env

    check_env(make_env(SB3Config(task="waypoint", variant="hierarchical")), warn=True)


def _rollout_reward(action, steps=30):
    env = make_env(SB3Config(task="waypoint", variant="hierarchical", fall_penalty=10.0))
    env.reset(seed=0)  # first goal (3, 0) ahead of the robot
    total, progress = 0.0, 0.0
    for _ in range(steps):
        _, r, term, trunc, info = env.step(np.asarray(action, dtype=np.float32))
        total += r
        progress += info["reward_terms"]["progress"]  # last env step of each held command
        assert not info["fell"]
        if term or trunc:
            break
    env.close()
    return total, progress


def test_reward_rewards_progress_toward_the_goal():
    cfg = SB3Config()
    forward = normalize_command([0.6, 0.0, 0.0], cfg.command_low, cfg.command_high)
    backward = normalize_command([-0.4, 0.0, 0.0], cfg.command_low, cfg.command_high)
    r_fwd, p_fwd = _rollout_reward(forward)
    r_bwd, p_bwd = _rollout_reward(backward)
    assert p_fwd > 0 > p_bwd
    assert r_fwd > 0 and r_fwd > r_bwd + 5.0  # 10 × progress: 3 s at ~0.4 m/s vs backwards


def test_fall_penalty_is_applied():
    env = make_env(SB3Config(task="joystick", variant="joints", fall_penalty=7.0))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(500):
        _, r, term, _trunc, info = env.step(rng.uniform(-1, 1, 29).astype(np.float32))
        if term:
            break
    assert info["fell"], "random joint actions should topple the robot within 10 s"
    assert r < -6.0 and info["is_success"] is False
    env.close()


def test_joints_variant_scales_actions():
    env = make_env(SB3Config(task="joystick", variant="joints", joint_action_scale=0.5))
    env.reset(seed=0)
    _, _, _, _, _ = env.step(np.ones(29, dtype=np.float32))
    base = env.unwrapped
    np.testing.assert_allclose(base._last_action, np.clip(0.5, base.action_space.low, base.action_space.high))
    env.close()


# ---------------------------------------------------------------------- training, resume, evaluation adapter
@pytest.mark.parametrize("algo, kw", [("ppo", TINY_PPO), ("sac", TINY_SAC)])
def test_resume_continues_the_timestep_count(tmp_path, algo, kw):
    out = tmp_path / "run"
    cfg = SB3Config(task="waypoint", variant="hierarchical", algo=algo, timesteps=64, n_envs=2, checkpoint_every=32,
                    time_limit_s=2.0, algo_kwargs=kw)  # fmt: skip
    m1 = train(cfg, out)
    n1 = m1.num_timesteps
    assert n1 >= 64 and (out / "model.zip").is_file() and (out / "tb").is_dir()
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("ckpt_*.zip"))
    assert ckpts[-1] == f"ckpt_{n1:010d}.zip" and not list((out / "checkpoints").glob(".*tmp*"))
    assert main(["--out", str(out), "--resume", "--timesteps", str(n1 + 64)]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from"] == n1 and summary["timesteps"] >= n1 + 64 and summary["segments"] == 2
    assert summary["env_steps"] == 5 * summary["timesteps"]
    with pytest.raises(SystemExit):  # the task of a run cannot change on resume
        main(["--out", str(out), "--resume", "--task", "joystick"])


def test_resume_without_checkpoint_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(SB3Config(timesteps=32, algo_kwargs=TINY_PPO), tmp_path / "empty", resume=True)


@pytest.mark.parametrize("variant", ["hierarchical", "joints"])
def test_eval_adapter_reproduces_the_training_wrapper(tmp_path, variant):
    """``load_sb3_policy`` on raw observations walks the same trajectory as the model inside ``SB3TaskEnv``."""
    out = tmp_path / "run"
    cfg = SB3Config(task="waypoint", variant=variant, timesteps=32, n_envs=1, algo_kwargs=TINY_PPO)
    model = train(cfg, out)
    policy = load_sb3_policy(out)
    with pytest.raises(ValueError, match=r"\(obs, info\) tuple"):
        policy.predict(({}, {}))

    wrapped = make_env(cfg)
    obs, _ = wrapped.reset(seed=3)
    for _ in range(8):
        obs, *_ = wrapped.step(model.predict(obs, deterministic=True)[0])
    raw = gym.make("BM-G1-Waypoint-v0")
    robs, _ = raw.reset(seed=3)
    policy.reset()
    for _ in range(8 * cfg.env_steps_per_step):
        robs, *_ = raw.step(policy.predict(robs)[0])
    np.testing.assert_allclose(robs["root_pos_w"], wrapped.unwrapped.data.qpos[:3], atol=1e-6)
    assert isinstance(wrapped.env, SB3TaskEnv)


def test_sigterm_saves_a_checkpoint_and_the_summary(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "variant: hierarchical\nalgo: ppo\nn_envs: 1\nalgo_kwargs: {n_steps: 32, batch_size: 32, n_epochs: 1}\n"
    )
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "bm_planner.baselines.sb3", "--config", str(cfg), "--task", "waypoint",
                             "--timesteps", "1000000", "--out", str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list((out / "tb").glob("run_*/events.*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)  # a few PPO iterations
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["timesteps"] < 1_000_000
    assert (out / "checkpoints" / f"ckpt_{summary['timesteps']:010d}.zip").is_file() and (out / "model.zip").is_file()


def test_bm_eval_runs_an_sb3_checkpoint(tmp_path):
    """``bm-eval --policy sb3:RUN`` evaluates an SB3 run like any other policy."""
    import json

    from bm_apps.evaluate import main as bm_eval

    out = tmp_path / "run"
    train(SB3Config(task="waypoint", variant="hierarchical", timesteps=32, n_envs=1, algo_kwargs=TINY_PPO), out)
    argv = ["--suite", "waypoint", "--policy", f"sb3:{out}", "--trials", "1", "--workers", "1", "--time-limit-s", "1",
            "--no-randomize", "--latency-ms", "0", "0", "--out", str(tmp_path / "eval"), "--no-progress"]  # fmt: skip
    assert bm_eval(argv) == 0
    result = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert result["config"]["policy"] == f"sb3:{out}" and result["trials"][0]["steps"] == 50
