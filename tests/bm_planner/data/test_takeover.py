"""Expert take-overs from planner states (``bm_planner.data.takeover``, ``bm-collect --takeover``): an exact copy
of the simulation, the expert's labels, fallen branches kept out of the windows, resumable collection."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import bm_envs  # noqa: F401
from bm_envs.experts.locomotion import LocomotionExpert
from bm_planner import SHIPPED_PLANNER
from bm_planner.data import storage
from bm_planner.data.rollout import CollectConfig
from bm_planner.data.takeover import TakeoverConfig, TakeoverRunner
from bm_planner.data.trajectory import N_HISTORY
from bm_planner.data.windows import window_starts

#: a fast planner for tests: 2 denoising steps, a plan every 4 control steps, torch
TAKEOVER = {"policy": str(SHIPPED_PLANNER), "agent": {"num_steps": 2, "replan_every": 4, "threads": 1},
            "backend": "torch", "every_s": 0.4, "continue_s": 0.6}  # fmt: skip


def test_state_copy_restores_the_exact_physics():
    kw = {"randomize": "expert", "latency_ms": (34.0, 34.0)}  # more than a step, not a multiple of 20 ms: targets queue
    a_env, b_env = gym.make("BM-G1-Joystick-v0", **kw), gym.make("BM-G1-Joystick-v0", **kw)
    rng = np.random.default_rng(0)
    obs_a, _ = a_env.reset(seed=3)
    for _ in range(30):
        obs_a, *_ = a_env.step(rng.normal(0, 0.3, 29))
    b_env.reset(seed=3)  # same seed: same randomization draw and latency
    a, b = a_env.unwrapped, b_env.unwrapped
    for k in ("body_mass", "geom_friction", "actuator_gainprm", "body_ipos"):
        assert np.array_equal(getattr(a.model, k), getattr(b.model, k))
    obs_b = b.set_sim_state(a.get_sim_state())
    assert a._pending and b.time == a.time
    for k in obs_a:
        assert np.array_equal(obs_a[k], obs_b[k]), k
    for _ in range(20):
        act = rng.normal(0, 0.3, 29)
        obs_a, ra, *_ = a_env.step(act)
        obs_b, rb, *_ = b_env.step(act)
        for k in obs_a:
            assert np.array_equal(obs_a[k], obs_b[k]), k
    with pytest.raises(ValueError, match="does not fit"):
        b.set_sim_state({**a.get_sim_state(), "physics": np.zeros(3)})


@pytest.fixture(scope="module")
def runner():
    return TakeoverRunner(CollectConfig(seed=0, episode_s=1.6, episodes_per_shard=1, takeover=TAKEOVER))


def test_branches_have_planner_history_and_expert_labels(runner):
    eps = runner.run(0)
    assert len(eps) >= 3 and runner.last_stats["branches"] == len(eps)
    expert = LocomotionExpert("fastsac")
    for ep in eps:
        m = ep["meta"]
        assert m["length"] == len(ep["valid"]) and m["takeover_step"] >= N_HISTORY and np.isfinite(m["takeover_gap"])
        # history: the planner's executed actions, no noise; continuation: expert label + OU noise executed
        assert np.array_equal(ep["action"][:N_HISTORY], ep["action_exec"][:N_HISTORY])
        assert not np.allclose(ep["action"][N_HISTORY:], ep["action_exec"][N_HISTORY:])
        # the planner's last executed action is what the expert's observation sees as the previous action
        assert np.allclose(ep["proprio"][N_HISTORY][-29:], ep["action_exec"][N_HISTORY - 1], atol=1e-6)
        # labels: exactly the expert's actions on the recorded observations, from the phase chosen at take-over
        obs0 = {"proprio": ep["proprio"][N_HISTORY].astype(np.float64)}
        expert.reset()
        ref = None
        if runner.tk.phase == "match":  # the planner's next action is not stored; recover the phase by the label
            best = None
            for phi in np.linspace(-np.pi, np.pi, 24, endpoint=False):
                expert.take_over(obs0, ep["command"][N_HISTORY])
                expert.state.phase = np.array([phi, phi + np.pi]) - 2 * np.pi * 0.02
                a = expert.act(obs0, ep["command"][N_HISTORY])
                if best is None or np.abs(a - ep["action"][N_HISTORY]).max() < best[0]:
                    best = (np.abs(a - ep["action"][N_HISTORY]).max(), phi)
            ref = best
        assert ref[0] < 1e-5
        expert.take_over(obs0, ep["command"][N_HISTORY])
        expert.state.phase = np.array([ref[1], ref[1] + np.pi]) - 2 * np.pi * 0.02
        for i in range(N_HISTORY, len(ep["valid"])):
            a = expert.act({"proprio": ep["proprio"][i].astype(np.float64)}, ep["command"][i])
            assert np.allclose(a, ep["action"][i], atol=1e-5), i


def test_fallen_branches_are_kept_out_of_the_windows():
    # shoves of up to 3 m/s every 0.3 s: the expert cannot recover in the branches
    cfg = CollectConfig(seed=0, episode_s=1.6, episodes_per_shard=1, takeover=TAKEOVER,
                        randomization={"push_interval_s": [0.3, 0.3], "push_lin_vel_xy": [-3.0, 3.0]})  # fmt: skip
    eps = TakeoverRunner(cfg).run(0)
    fell = [ep for ep in eps if ep["meta"]["fell"]]
    assert fell, "expected some take-overs to fall"
    for ep in fell:
        assert not ep["valid"].any() and len(window_starts(ep["valid"])) == 0
    arrays = storage.pack_shard(0, eps, *[__import__("bm_planner.data.windows", fromlist=["x"]).RunningStats.empty(d)
                                          for d in (87, 29)], cfg.to_dict())  # fmt: skip
    assert arrays["fell"].sum() == len(fell) and "takeover_gap" in arrays


def test_takeover_config_is_checked():
    for bad, match in [({"policy": ""}, "checkpoint path"), ({**TAKEOVER, "phase": "moon"}, "phase"),
                       ({**TAKEOVER, "continue_s": 0.1}, "continue_s"), ({**TAKEOVER, "wat": 1}, "unknown")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            TakeoverConfig.from_dict(bad)
    with pytest.raises(ValueError, match="changed since"):
        TakeoverRunner(CollectConfig(episode_s=1.6, takeover={**TAKEOVER, "checkpoint_sha256": "0" * 64}))


def test_collector_cli_takeover_resumes(tmp_path):
    from bm_planner.data.collector import main

    argv = ["--out", str(tmp_path / "d"), "--episodes", "2", "--episodes-per-shard", "1", "--episode-s", "1.2",
            "--workers", "0", "--no-progress", "--policy", f"diffusion:{SHIPPED_PLANNER}", "--takeover", "expert",
            "--agent", '{"num_steps": 2, "replan_every": 4}', "--planner-backend", "torch", "--takeover-s", "0.6"]  # fmt: skip
    assert main(argv[:3] + ["1"] + argv[4:]) == 0
    m1 = storage.load_manifest(tmp_path / "d")
    assert m1["config"]["takeover"]["checkpoint_sha256"] and m1["config"]["profile"] == "expert"
    assert main(argv) == 0  # resumes: shard 0 is kept
    m2 = storage.load_manifest(tmp_path / "d")
    assert m2["shards"][0] == m1["shards"][0] and len(m2["shards"]) == 2
    assert main(argv[:-4]) == 2  # --takeover without its --policy settings changed: a different config
    assert main(["--out", str(tmp_path / "e"), "--episodes", "1", "--takeover", "expert"]) == 2
