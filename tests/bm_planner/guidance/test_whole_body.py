"""Whole-body joystick targets (``whole_body_targets``) and their cost (``WholeBodyJoystickCost``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bm_planner.guidance.costs import CONTROL_DT, JoystickCost, SumCost, WholeBodyJoystickCost, whole_body_targets

RNG = np.random.default_rng(0)
ROOT = np.array([1.0, -2.0, 0.78])
BODIES = ROOT + np.c_[RNG.uniform(-0.3, 0.3, (13, 2)), RNG.uniform(-0.7, 0.5, 13)]


def test_pure_turn_puts_bodies_on_circles_about_the_root():
    w, yaw0, T = 0.8, 0.4, 16
    pos, vel = whole_body_targets(ROOT, yaw0, BODIES, [0.0, 0.0], w, T)
    assert pos.shape == vel.shape == (T, 13, 3)
    r0 = BODIES[:, :2] - ROOT[:2]
    r = pos[..., :2] - ROOT[:2]  # the root stays put when only turning
    np.testing.assert_allclose(np.linalg.norm(r, axis=-1), np.broadcast_to(np.linalg.norm(r0, axis=-1), (T, 13)))
    ang = np.unwrap(np.arctan2(r[..., 1], r[..., 0]) - np.arctan2(r0[:, 1], r0[:, 0]), axis=0)
    np.testing.assert_allclose(ang, np.broadcast_to(w * CONTROL_DT * np.arange(1, T + 1)[:, None], (T, 13)), atol=1e-12)
    np.testing.assert_allclose(pos[..., 2], np.broadcast_to(BODIES[:, 2], (T, 13)))  # heights unchanged
    # v = ω ẑ × r: tangent to the circle, |v| = ω |r|
    np.testing.assert_allclose((vel[..., :2] * r).sum(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(vel[..., :2], axis=-1), w * np.linalg.norm(r, axis=-1))
    assert np.all(vel[..., 2] == 0)


def test_straight_walk_translates_rigidly_in_the_heading_frame():
    yaw0 = np.pi / 2  # facing +y: a forward command moves along +y, a left command along -x
    pos, vel = whole_body_targets(ROOT, yaw0, BODIES, [0.5, 0.2], 0.0, 10)
    step = np.array([-0.2, 0.5]) * CONTROL_DT
    want = np.broadcast_to(np.arange(1, 11)[:, None, None] * step, (10, 13, 2))
    np.testing.assert_allclose(pos[..., :2] - BODIES[:, :2], want, atol=1e-12)
    np.testing.assert_allclose(vel[..., :2], np.broadcast_to([-0.2, 0.5], (10, 13, 2)), atol=1e-12)


def test_cost_gradient_matches_autograd_and_inputs_are_checked():
    pos, vel = whole_body_targets(ROOT, 0.0, BODIES, [0.3, 0.0], 0.5, 16)
    cost = WholeBodyJoystickCost(pos, vel, pos_weight=2.0, vel_weight=0.5)
    traj = {"body_pos_w": torch.tensor(pos[None] + RNG.normal(0, 0.05, (3, 16, 13, 3))),
            "body_lin_vel_w": torch.tensor(vel[None] + RNG.normal(0, 0.1, (3, 16, 13, 3)))}  # fmt: skip
    c, g = cost.value_and_grad({k: v.numpy() for k, v in traj.items()})
    leaves = {k: v.clone().requires_grad_(True) for k, v in traj.items()}
    ref = cost(leaves)
    ref.sum().backward()
    np.testing.assert_allclose(c, ref.detach().numpy(), rtol=1e-10)
    for k in leaves:
        np.testing.assert_allclose(g[k], leaves[k].grad.numpy(), rtol=1e-9, atol=1e-12)
    assert (
        float(
            WholeBodyJoystickCost(pos, vel)(
                {"body_pos_w": torch.tensor(pos[None]), "body_lin_vel_w": torch.tensor(vel[None])}
            )[0]
        )
        == 0.0
    )
    with pytest.raises(ValueError, match="body_pos_w must be"):
        cost({"body_pos_w": torch.zeros(1, 8, 13, 3), "body_lin_vel_w": torch.zeros(1, 8, 13, 3)})
    with pytest.raises(ValueError, match="bad command"):
        whole_body_targets(ROOT, 0.0, BODIES, [np.nan, 0.0], 0.0, 4)


def test_agent_adds_whole_body_guidance_for_joystick_tasks():
    import gymnasium as gym

    import bm_envs  # noqa: F401
    from bm_planner import SHIPPED_PLANNER
    from bm_planner.agent import DiffusionAgent

    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    agent = DiffusionAgent.from_pretrained(SHIPPED_PLANNER, {"whole_body_weight": 2.0, "threads": 1})
    cost = agent.task_cost(obs)
    assert isinstance(cost, SumCost) and isinstance(cost.terms[0], JoystickCost)
    wb = cost.terms[1].cost
    assert isinstance(wb, WholeBodyJoystickCost) and wb.target_pos.shape == (16, agent.rep.K, 3)
    assert cost.terms[1].weight == 2.0
    action, _ = agent.predict(obs)  # and it plans with it
    assert np.isfinite(action).all()
    env.close()
