"""Safety supervisor (``bm_planner.supervisor``): hand-over to the expert on a forced fall-risk / OOD state, the
planner's history kept current meanwhile, hand-back once stable."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import bm_envs  # noqa: F401
from bm_planner import SHIPPED_PLANNER
from bm_planner.agent import AgentConfig, DiffusionAgent
from bm_planner.runtime import DelayedPlanRunner
from bm_planner.supervisor import SafetySupervisor, SupervisorConfig, fall_risk, tilt_angle


@pytest.fixture(scope="module")
def agent():
    return DiffusionAgent.from_pretrained(SHIPPED_PLANNER, AgentConfig(threads=1))


def _tilted(obs, angle):
    o = dict(obs)
    o["root_quat_w"] = np.array([np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0])  # roll by `angle`
    return o


def test_tilt_angle_and_signals():
    assert tilt_angle([1, 0, 0, 0]) == pytest.approx(0.0)
    assert tilt_angle([np.cos(0.2), np.sin(0.2), 0, 0]) == pytest.approx(0.4)
    cfg = SupervisorConfig()
    obs = {"root_quat_w": np.array([1.0, 0, 0, 0]), "root_ang_vel_w": np.zeros(3), "root_pos_w": np.array([0, 0, 0.75])}
    assert fall_risk(obs, cfg) is None
    assert fall_risk({**obs, "root_ang_vel_w": np.array([3.0, 0, 0])}, cfg) == "tilt_rate"
    assert fall_risk({**obs, "root_pos_w": np.array([0, 0, 0.4])}, cfg) == "height"
    with pytest.raises(ValueError, match="max_tilt_rad"):
        SupervisorConfig(max_tilt_rad=float("nan"))
    with pytest.raises(ValueError, match="unknown"):
        SupervisorConfig.from_dict({"max_tilt": 1})


@pytest.mark.parametrize("wrap", ["agent", "runner"])
def test_hand_over_on_forced_risk_and_back_when_stable(agent, wrap):
    planner = agent if wrap == "agent" else DelayedPlanRunner(agent, (40, 40), mode="async")
    sup = SafetySupervisor(planner, "fastsac", {"min_expert_s": 0.2, "stable_s": 0.1})
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    sup.reset()
    for _ in range(5):
        action, _ = sup.predict(obs)
        obs, *_ = env.step(action)
    assert sup.info["handovers"] == 0 and not sup.info["on_expert"]
    action, _ = sup.predict(_tilted(obs, 0.5))  # a forced fall-risk state
    assert sup.info["on_expert"] and sup.info["handovers"] == 1 and sup.info["risk"] == "tilt"
    assert np.array_equal(agent._acts[-1], action.astype(np.float64))  # the planner's history has the expert's action
    obs, *_ = env.step(action)
    steps_on_expert = 1
    while True:
        action, _ = sup.predict(obs)
        obs, *_ = env.step(action)
        if not sup.info["on_expert"]:
            break
        steps_on_expert += 1
        assert steps_on_expert < 100
    assert sup.info["handbacks"] == 1 and steps_on_expert >= 10  # at least min_expert_s = 0.2 s
    for _ in range(6):  # the planner drives again (after its plan is ready)
        action, _ = sup.predict(obs)
        obs, *_ = env.step(action)
    assert not sup.info["on_expert"] and sup.info["expert_steps"] == steps_on_expert
    env.close()


def test_ood_flag_hands_over(agent):
    sup = SafetySupervisor(agent, "fastsac")
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=1)
    sup.reset()
    action, _ = sup.predict(obs)
    obs, *_ = env.step(action)
    agent.info["ood"] = True  # as after a plan from an out-of-distribution history
    sup.predict(obs)
    assert sup.info["on_expert"] and sup.info["risk"] == "ood"
    env.close()
