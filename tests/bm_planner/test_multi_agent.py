"""Multi-robot planning teams on the shipped checkpoint: parity with DiffusionAgent, batch independence, moving
spheres from the other robots."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("pettingzoo")

import bm_envs  # noqa: F401  (registers the single envs)
from bm_envs.multi import MultiG1Env
from bm_planner import SHIPPED_PLANNER
from bm_planner.agent import AgentConfig, DiffusionAgent
from bm_planner.guidance.classifier import ClassifierGuidance, GuidanceConfig
from bm_planner.guidance.costs import MovingObstacleCost, SumCost, WaypointCost
from bm_planner.multi_agent import BatchCost, BatchedTeam, SeparateTeam, load_team

SHIPPED = SHIPPED_PLANNER
CFG = AgentConfig(num_steps=3, guidance_scale=1.0, seed=4, threads=1)


@pytest.fixture(scope="module")
def env2():
    env = MultiG1Env(num_robots=2)
    yield env
    env.close()


@pytest.mark.parametrize("cfg", [CFG, dataclasses.replace(CFG, two_stage=True)], ids=["joint", "two-stage"])
@pytest.mark.parametrize("team_cls", [BatchedTeam, SeparateTeam])
def test_team_of_one_plans_exactly_like_diffusion_agent(team_cls, cfg):
    env = gym.make("BM-G1-Waypoint-v0")
    ref = DiffusionAgent.from_pretrained(SHIPPED, cfg)
    team = team_cls.from_pretrained(SHIPPED, ["robot_0"], config=cfg)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        a_ref, _ = ref.predict(obs)
        a_team = team.predict({"robot_0": obs})["robot_0"]
        np.testing.assert_array_equal(a_team, a_ref)
        obs, *_ = env.step(a_ref)
    assert team.info["plans"] == ref.info["plans"] == 3
    env.close()


def test_batch_samples_do_not_interact():
    """Changing robot 1's history and cost leaves robot 0's sample unchanged (same noise): per-sample guidance,
    per-sample clipping, no mixing across the batch in the model."""
    team = BatchedTeam.from_pretrained(SHIPPED, ["a", "b"], config=CFG)
    ag = team.agents["a"]
    c = ag.model.config
    g = torch.Generator().manual_seed(0)
    hs = 0.3 * torch.randn(2, c.n_known_states, c.state_dim, generator=g)
    ha = 0.3 * torch.randn(2, c.n_known_actions, c.action_dim, generator=g)
    hs2, ha2 = hs.clone(), ha.clone()
    hs2[1] += 0.5
    ha2[1] -= 0.5
    ref = (np.zeros((2, 3)), np.zeros(2))

    def plan(h_s, h_a, goal_b):
        cost = BatchCost([WaypointCost([[2.0, 0.0]]), WaypointCost([goal_b])])
        gd = ClassifierGuidance(cost, ag.rep, ag.normalizer, *ref, GuidanceConfig(scale=1.0))
        return ag.model.sample(h_s, h_a, num_steps=3, sampler="ddim", guidance=gd,
                               generator=torch.Generator().manual_seed(9))  # fmt: skip

    p1, p2 = plan(hs, ha, [0.0, 2.0]), plan(hs2, ha2, [-3.0, 1.0])
    torch.testing.assert_close(p1.states[0], p2.states[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p1.actions[0], p2.actions[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(p1.states[1], p2.states[1])


def test_batch_cost_is_per_sample():
    traj = {"root_pos_w": torch.zeros(3, 4, 3), "root_lin_vel_w": torch.zeros(3, 4, 3)}
    traj["root_pos_w"][1, :, 0] = 1.0
    costs = [WaypointCost([[1.0, 0.0]]), None, WaypointCost([[0.0, 2.0]])]
    got = BatchCost(costs)(traj)
    for b, c in enumerate(costs):
        want = 0.0 if c is None else float(c({k: v[b : b + 1] for k, v in traj.items()}))
        assert float(got[b]) == pytest.approx(want)
    with pytest.raises(ValueError, match="batch of 3"):
        BatchCost(costs[:2])(traj)


@pytest.mark.parametrize("others", ["current", "constant_velocity", "planned"])
def test_other_robots_enter_the_cost_as_moving_spheres(env2, others):
    team = load_team(SHIPPED, env2.possible_agents, batched=True, config=CFG, others=others)
    obs, _ = env2.reset(seed=0)
    for _ in range(3):
        actions = team.predict(obs, env2.agents)
        assert set(actions) == set(env2.agents) and all(np.isfinite(a).all() for a in actions.values())
        obs, *_ = env2.step(actions)
    team.predict(obs, env2.agents)  # sets the spheres from this step's snapshot
    ag0, ag1 = team.agents["robot_0"], team.agents["robot_1"]
    K = ag0.rep.K
    H = 1 if others == "current" else ag0.model.config.horizon
    assert ag0.others.centers.shape == (1, H, K, 3)
    # robot 0's spheres are robot 1's bodies (now, for "current")
    if others == "current":
        np.testing.assert_allclose(ag0.others.centers[0, 0].numpy(), obs["robot_1"]["body_pos_w"][ag1.rep.body_ids],
                                   atol=1e-6)  # fmt: skip
    cost = ag0.task_cost(obs["robot_0"])
    assert isinstance(cost, SumCost) and any(isinstance(getattr(t, "cost", t), MovingObstacleCost) for t in cost.terms)


def test_planned_bodies_start_near_the_robot(env2):
    team = load_team(SHIPPED, env2.possible_agents, batched=False, config=CFG, others="planned")
    obs, _ = env2.reset(seed=0)
    team.predict(obs, env2.agents)
    made, fut = team._plans["robot_1"]
    now = obs["robot_1"]["body_pos_w"][team.agents["robot_1"].rep.body_ids]
    assert made == 0 and fut.shape == (16, len(now), 3)
    assert np.linalg.norm(fut[0] - now, axis=-1).max() < 0.5  # the plan's first step is 20 ms ahead


def test_batched_team_makes_one_call_per_round(env2):
    teams = {b: load_team(SHIPPED, env2.possible_agents, batched=b, config=CFG) for b in (True, False)}
    for batched, team in teams.items():
        obs, _ = env2.reset(seed=1)
        for _ in range(4):  # replan_every = 2: two rounds
            obs, *_ = env2.step(team.predict(obs, env2.agents))
        assert team.info["plans"] == 4
        assert team.info["plan_calls"] == (2 if batched else 4)
        assert team.info["plan_time_total_s"] > 0


def test_team_errors(env2):
    team = load_team(SHIPPED, env2.possible_agents, config=CFG)
    obs, _ = env2.reset(seed=0)
    with pytest.raises(ValueError, match="robot_5"):
        team.predict({**obs, "robot_5": obs["robot_0"]})
    with pytest.raises(ValueError, match="others"):
        BatchedTeam(team.agents, others="psychic")
