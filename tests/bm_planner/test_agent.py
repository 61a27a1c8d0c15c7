"""DiffusionAgent, ClassifierGuidance and RollingGuidanceInference on the real env and the shipped checkpoint."""

import itertools
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

import bm_envs  # noqa: F401  (registers the envs)
from bm_planner import SHIPPED_PLANNER
from bm_planner.agent import AgentConfig, DiffusionAgent
from bm_planner.guidance.classifier import ClassifierGuidance, GuidanceConfig
from bm_planner.guidance.costs import JoystickCost

SHIPPED = SHIPPED_PLANNER


@pytest.fixture(scope="module")
def shipped_agent():
    return DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1))


@pytest.fixture(scope="module")
def history(shipped_agent):
    """(history states, history actions, reference frame, first obs) after 6 steps standing in the joystick env."""
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=3)
    agent = shipped_agent
    agent.reset()
    for _ in range(6):
        agent._obs.append(obs)
        agent._acts.append(np.zeros(29))
        obs, *_ = env.step(np.zeros(29, dtype=np.float32))
    agent._obs.append(obs)
    hs, ha = agent._history()
    env.close()
    return hs, ha, agent.rep.reference_frame(obs), obs


def _plan(agent, hs, ha, guidance, seed=0, num_steps=10):
    gen = torch.Generator().manual_seed(seed)
    return agent.model.sample(hs, ha, num_steps=num_steps, sampler="ddim", guidance=guidance, generator=gen)


def test_predict_on_raw_waypoint_env_three_lines():
    env = gym.make("BM-G1-Waypoint-v0")
    agent = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(guidance_scale=1.0, threads=1))
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        action, state = agent.predict(obs, deterministic=True)
        assert action.shape == (29,) and action.dtype == np.float32 and np.all(np.isfinite(action))
        assert state is None
        obs, *_ = env.step(action)
    assert agent.info["plans"] == 2 and agent.info["plan_time_s"] > 0
    env.close()


def test_same_seed_same_actions():
    env = gym.make("BM-G1-Joystick-v0")
    runs = []
    for _ in range(2):
        agent = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(guidance_scale=2.0, seed=7, threads=1))
        obs, _ = env.reset(seed=1)
        acts = []
        for _ in range(6):
            a, _ = agent.predict(obs)
            acts.append(a)
            obs, *_ = env.step(a)
        runs.append(np.stack(acts))
    assert np.array_equal(runs[0], runs[1])
    env.close()


def test_guidance_scale_zero_equals_unguided(shipped_agent, history):
    hs, ha, (ref_pos, ref_yaw), _ = history
    a = shipped_agent
    g0 = ClassifierGuidance(JoystickCost([0.5, 0.0]), a.rep, a.normalizer, ref_pos, ref_yaw, GuidanceConfig(scale=0.0))
    p_none, p_zero = _plan(a, hs, ha, None), _plan(a, hs, ha, g0)
    assert torch.equal(p_none.states, p_zero.states) and torch.equal(p_none.actions, p_zero.actions)
    g1 = ClassifierGuidance(JoystickCost([0.5, 0.0]), a.rep, a.normalizer, ref_pos, ref_yaw, GuidanceConfig(scale=1.0))
    assert not torch.equal(_plan(a, hs, ha, g1).states, p_none.states)


def test_cost_falls_as_guidance_scale_grows(shipped_agent, history):
    """The final plan's joystick cost (forward 0.6 m/s from standing) decreases monotonically with the scale."""
    hs, ha, (ref_pos, ref_yaw), _ = history
    a = shipped_agent
    cost = JoystickCost([0.6, 0.0])
    costs = []
    for scale in (0.0, 0.5, 2.0, 8.0):
        g = ClassifierGuidance(cost, a.rep, a.normalizer, ref_pos, ref_yaw, GuidanceConfig(scale=scale))
        plan = _plan(a, hs, ha, g)
        costs.append(float(cost(g.decode(plan.states)).mean()))
    assert all(c1 < c0 for c0, c1 in itertools.pairwise(costs)), costs
    assert costs[-1] < 0.5 * costs[0], costs


def test_warm_start_plans_fewer_steps_and_carries_the_plan_over():
    env = gym.make("BM-G1-Joystick-v0")
    agent = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(warm_start=True, replan_every=2, threads=1))
    assert agent.planner.warm_steps == 7  # 10 cold steps scaled by 14 / 20
    obs, _ = env.reset(seed=0)
    calls = []
    real_sample = agent.model.sample

    def spy(*args, **kw):
        calls.append((kw.get("num_steps"), kw.get("init") is not None))
        return real_sample(*args, **kw)

    agent.model.sample = spy
    for _ in range(6):
        a, _ = agent.predict(obs)
        obs, *_ = env.step(a)
    assert calls == [(10, False), (7, True), (7, True)]
    assert agent.info["warm_plans"] == 2
    # the carried-over plan: shifted by the executed steps, its actions unchanged
    prev = agent.planner.prev
    ref_pos, ref_yaw = agent.rep.reference_frame(obs)
    carried = agent.planner.carry_over(2, torch.as_tensor(ref_pos)[None], torch.tensor([ref_yaw]))
    assert torch.equal(carried.actions[:, :-2], prev.actions[:, 2:])
    agent.reset()
    assert agent.planner.prev is None
    env.close()


def test_out_of_distribution_history_falls_back_to_the_default_pose(shipped_agent, history):
    *_, obs = history
    agent = shipped_agent
    agent.reset()
    fallen = dict(obs, root_pos_w=np.array([*obs["root_pos_w"][:2], 0.15]))
    action, _ = agent.predict(fallen)
    assert agent.info["ood"] and np.array_equal(action, np.zeros(29, dtype=np.float32))
    assert agent.info["ood_reason"] == "height" and agent.info["ood_plans"] == 1
    agent.reset()
    action, _ = agent.predict(obs)
    assert not agent.info["ood"] and np.abs(action).max() > 0
    assert agent.info["ood_plans"] == 0 and "ood_reason" not in agent.info


def test_history_out_of_range_names_the_feature_that_left_it(shipped_agent, history, monkeypatch):
    hs, ha, _, obs = history  # the standing history: in range
    agent = shipped_agent
    agent.reset()
    assert not agent.out_of_distribution(hs, ha, obs) and "ood_reason" not in agent.info
    z0 = agent.info["history_max_z_episode"]
    hs2 = hs.clone()
    hs2[0, 1, 7] = agent.config.ood_threshold + 1.0  # one state feature of one history step
    assert agent.out_of_distribution(hs2, ha, obs)
    assert agent.info["ood_reason"] == "history" and agent.info["ood_dim"] == "s7"
    assert agent.info["history_max_z_episode"] == pytest.approx(agent.config.ood_threshold + 1.0)
    assert agent.config.ood_threshold + 1.0 > z0
    assert agent.info["history_max_z_dim"] == "s7"
    agent.reset()
    ha2 = ha.clone()
    ha2[0, 0, 21] = -(agent.config.ood_threshold + 1.0)  # one history action (joint 21)
    # the shipped model hides the history actions from its plans: an unusual executed action is not a reason
    assert agent.model.config.history_actions is False and not agent.out_of_distribution(hs, ha2, obs)
    monkeypatch.setattr(agent.model, "config", replace(agent.model.config, history_actions=True))
    assert agent.out_of_distribution(hs, ha2, obs) and agent.info["ood_dim"] == "a21"  # a model that reads them
    assert agent.info["history_max_z"] == pytest.approx(agent.config.ood_threshold + 1.0)
    monkeypatch.undo()
    agent.reset()


def test_bad_observations_raise_clear_errors(shipped_agent, history):
    *_, obs = history
    with pytest.raises(ValueError, match="obs, info"):
        shipped_agent.predict((obs, {}))
    with pytest.raises(ValueError, match="NaN"):
        shipped_agent.predict(dict(obs, root_pos_w=np.array([np.nan, 0, 0.8])))
    with pytest.raises(ValueError, match="lacks"):
        shipped_agent.predict({k: v for k, v in obs.items() if k != "body_pos_w"})


def test_two_stage_keeps_the_planned_states_and_resamples_the_actions(shipped_agent, history):
    from bm_planner.guidance.rolling import RollingGuidanceInference

    hs, ha, (ref_pos, ref_yaw), _ = history
    a = shipped_agent
    plans = []
    for two in (False, True):
        r = RollingGuidanceInference(a.model, a.normalizer, a.rep, num_steps=6, warm_start=False, two_stage=two)
        plans.append(r.plan(hs, ha, ref_pos[None], [ref_yaw], generator=torch.Generator().manual_seed(0)))
    one, two = plans
    assert torch.equal(one.states, two.states)
    n = a.model.config.n_known_actions
    assert torch.equal(one.actions[:, :n], two.actions[:, :n])  # history kept
    assert (one.actions[:, n:] - two.actions[:, n:]).abs().max() > 1e-3  # future actions re-sampled


def test_shipped_agent_config_is_loaded_and_overridable(tmp_path):
    import json
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(SHIPPED, ckpt, ignore=shutil.ignore_patterns("*.png"))
    (ckpt / "agent_config.json").write_text(json.dumps({"guidance_scale": 3.0, "two_stage": True, "num_steps": 5}))
    agent = DiffusionAgent.from_pretrained(ckpt)
    assert (agent.config.guidance_scale, agent.config.two_stage, agent.config.num_steps) == (3.0, True, 5)
    agent = DiffusionAgent.from_pretrained(ckpt, {"guidance_scale": 0.0})
    assert (agent.config.guidance_scale, agent.config.two_stage) == (0.0, True)
    agent = DiffusionAgent.from_pretrained(ckpt, AgentConfig())  # an explicit config wins entirely
    assert agent.config == AgentConfig()
    with pytest.raises(ValueError, match="unknown AgentConfig field"):
        DiffusionAgent.from_pretrained(ckpt, {"guidance": 1.0})
    (ckpt / "agent_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="malformed JSON"):
        DiffusionAgent.from_pretrained(ckpt)


def test_shipped_checkpoint_holds_weights_only():
    """The repository ships our trained weights (safetensors) and their JSON/markdown, no pickled training state."""
    files = [p for p in SHIPPED.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert {p.suffix for p in files} <= {".safetensors", ".json", ".jsonl", ".md", ".png", ".yaml", ""}


def test_task_command_for_a_command_conditioned_model():
    """A command-conditioned model plans with the joystick's command, the pure-pursuit law toward a waypoint, or an
    explicit one; an unconditional model gets none; the command reaches the model (plans differ by command)."""
    from bm_planner.model import StateActionDiffusionModel

    base = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1))
    cfg = base.model.config.__class__(**{**base.model.config.to_dict(), "command_dim": 3})
    model = StateActionDiffusionModel(cfg)
    model.load_state_dict(base.model.state_dict(), strict=False)
    with torch.no_grad():
        torch.nn.init.normal_(model.denoiser.command_embedding.mlp[2].weight, std=0.2)
    joy = gym.make("BM-G1-Joystick-v0")
    obs, _ = joy.reset(seed=0)
    agent = DiffusionAgent(model, base.normalizer, base.rep, AgentConfig(threads=1))
    assert np.allclose(agent.task_command(obs), obs["command"])
    ucfg = base.model.config.__class__(**{**base.model.config.to_dict(), "command_dim": 0})
    assert DiffusionAgent(StateActionDiffusionModel(ucfg), base.normalizer, base.rep).task_command(obs) is None
    assert DiffusionAgent(model, base.normalizer, base.rep, AgentConfig(use_command=False)).task_command(obs) is None
    wp = gym.make("BM-G1-Waypoint-v0")
    wobs, _ = wp.reset(seed=0)
    c = agent.task_command(wobs)
    assert c.shape == (3,) and np.all(np.isfinite(c)) and np.abs(c).max() > 0.05
    actions = []
    for cmd in ([0.6, 0.0, 0.0], [-0.4, 0.0, 0.0]):
        a = DiffusionAgent(model, base.normalizer, base.rep, AgentConfig(threads=1), command=cmd)
        actions.append(a.predict(obs)[0])
        assert a.info["command"] == pytest.approx(cmd)
    assert np.abs(actions[0] - actions[1]).max() > 1e-3
    with pytest.raises(ValueError, match="command"):
        DiffusionAgent(model, base.normalizer, base.rep, command=[0.1, float("nan"), 0.0])
    joy.close()
    wp.close()


def test_settle_steps_hold_the_default_pose_before_the_first_plan():
    env = gym.make("BM-G1-Joystick-v0")
    agent = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1, settle_steps=3, num_steps=2))
    obs, _ = env.reset(seed=0)
    for i in range(4):
        action, _ = agent.predict(obs)
        assert (agent.info["plans"] == 0) == (i < 3)
        assert np.all(action == 0) == (i < 3)
        obs, *_ = env.step(action)
    agent.reset()
    assert len(agent._queue) == 3  # again after a reset
    with pytest.raises(ValueError, match="settle_steps"):
        AgentConfig(settle_steps=-1)
    env.close()


def test_classifier_free_command_guidance():
    """w = 1 is plain conditioning, w = 0 the "no command" prediction, w > 1 extrapolates; ONNX is refused."""
    from bm_planner.guidance.classifier_free import CommandGuidedDenoiser

    base = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1))
    den = base.model.denoiser
    c = base.model.config
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, c.window, c.state_dim, generator=g), torch.randn(2, c.action_window, c.action_dim, generator=g),
         torch.randint(0, 21, (2, c.window), generator=g), torch.randint(0, 21, (2, c.action_window), generator=g))  # fmt: skip
    cmd = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.3, 0.0]])
    with torch.no_grad():
        cond, null = den(*x, cmd), den(*x)
        for w, expect in ((1.0, cond), (0.0, null)):
            out = CommandGuidedDenoiser(den, w)(*x, cmd)
            for o, e in zip(out, expect):
                torch.testing.assert_close(o, e, atol=1e-5, rtol=0)
        two = CommandGuidedDenoiser(den, 2.0)(*x, cmd)
        torch.testing.assert_close(two[1], 2 * cond[1] - null[1], atol=1e-4, rtol=0)
    agent = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1, command_guidance=2.0))
    assert isinstance(agent.model.denoiser, CommandGuidedDenoiser) and base.model.denoiser is den
    # the ONNX export takes the "no command" rows too: the same guided actions on both backends
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=1)
    acts = [DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1, command_guidance=2.0, num_steps=3),
                                           backend=b).predict(obs)[0] for b in ("torch", "onnx")]  # fmt: skip
    np.testing.assert_allclose(acts[0], acts[1], atol=1e-3)
    env.close()


def test_task_observations_must_be_whole_and_well_shaped():
    env = gym.make("BM-G1-Waypoint-v0")
    obs, _ = env.reset(seed=0)
    agent = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1, num_steps=2))
    for drop in ("waypoints_w", "goal_b"):
        with pytest.raises(ValueError, match=f"a waypoint observation needs '{drop}'"):
            agent.predict({k: v for k, v in obs.items() if k != drop})
    with pytest.raises(ValueError, match="obs\\['goal_b'\\] must have shape \\(2,\\), got \\(5,\\)"):
        agent.predict({**obs, "goal_b": np.zeros(5)})
    with pytest.raises(ValueError, match="obs\\['waypoints_w'\\] must have shape \\('M', 3\\)"):
        agent.predict({**obs, "waypoints_w": np.zeros((8, 2))})
    with pytest.raises(ValueError, match="obs\\['command'\\] must have shape \\(3,\\)"):
        agent.predict({**obs, "command": np.zeros(2)})
    # no task key at all: plans unguided on purpose (an explicit cost=None, command=None agent)
    bare = {k: v for k, v in obs.items() if k not in ("goal_b", "waypoints_w", "goal_index")}
    action, _ = agent.predict(bare)
    assert np.isfinite(action).all()
    env.close()


def test_a_zero_quaternion_is_out_of_distribution():
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    agent = DiffusionAgent.from_pretrained(SHIPPED, AgentConfig(threads=1, num_steps=2))
    action, _ = agent.predict({**obs, "root_quat_w": np.zeros(4, np.float32)})
    assert agent.info["ood"] and agent.info["bad_quaternion"] and np.all(action == 0)
    env.close()


def test_mesh_obstacles_reach_the_obstacle_cost_through_set_obstacles(shipped_agent, tmp_path, monkeypatch):
    """The rows hold a mesh's bounding box; ``set_obstacles(info["obstacles"])`` gives the cost the mesh itself, and
    a guided plan runs with it (the shipped mesh scenario)."""
    from bm_envs.rollout import run_episode

    env = gym.make("BM-G1-Obstacle-v0", scenario="mesh-obstacles", time_limit_s=0.1)
    obs, info = env.reset(seed=0)
    agent = shipped_agent
    agent.reset()
    with pytest.warns(UserWarning, match="bounding boxes"):
        cost = agent.task_cost(obs)
    assert cost is not None
    agent.set_obstacles(info["obstacles"])
    sdf = agent.task_cost(obs).terms[1].cost.sdf
    assert len(sdf.meshes) == 2
    p = torch.tensor([[2.9, 0.2, 0.5]])  # inside the L-wall's bounding box, outside the wall itself
    assert sdf(p).item() == pytest.approx(0.5, abs=0.03)
    outcome, _ = run_episode(env, agent, seed=0)  # run_episode calls set_obstacles after reset
    assert agent._meshes is not None and len(agent._meshes) == 2 and outcome["steps"] == 5
    env.close()


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf")])
def test_agent_config_rejects_a_noise_scale_outside_zero_one(bad):
    with pytest.raises(ValueError, match="noise_scale must be in \\[0, 1\\]"):
        AgentConfig(noise_scale=bad)
    assert AgentConfig(noise_scale=0.0).noise_scale == 0.0
