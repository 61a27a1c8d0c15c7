import math

import pytest
import torch

from bm_planner.guidance.costs import (
    JoystickCost,
    ObstacleAvoidanceCost,
    WaypointCost,
    heading_frame_velocity,
    relaxed_log_barrier,
)
from bm_planner.guidance.sdf import SignedDistanceField


def _traj(B=2, T=16, K=3, vel=(0.5, 0.0), yaw=0.0, start=(0.0, 0.0)):
    t = torch.arange(T, dtype=torch.float32) * 0.02
    v = torch.tensor([*vel, 0.0])
    pos = torch.tensor([*start, 0.75]) + t[:, None] * v
    return {
        "root_pos_w": pos.expand(B, T, 3).clone(),
        "root_lin_vel_w": v.expand(B, T, 3).clone(),
        "root_yaw": torch.full((B, T), yaw),
        "body_pos_w": pos[None, :, None, :].expand(B, T, K, 3).clone(),
    }


def test_joystick_cost_zero_at_target_and_positive_elsewhere():
    tr = _traj(vel=(0.5, 0.0))
    assert torch.allclose(JoystickCost([0.5, 0.0])(tr), torch.zeros(2))
    c = JoystickCost([0.0, 0.3])(tr)
    torch.testing.assert_close(c, torch.full((2,), 0.5 * 16 * (0.25 + 0.09)))


def test_joystick_cost_uses_heading_frame():
    # walking along world +y while facing +y is "forward" in the heading frame
    tr = _traj(vel=(0.0, 0.5), yaw=math.pi / 2)
    torch.testing.assert_close(heading_frame_velocity(tr)[0, 0], torch.tensor([0.5, 0.0]), atol=1e-6, rtol=0)
    assert JoystickCost([0.5, 0.0])(tr).abs().max() < 1e-8


def test_joystick_yaw_rate_term():
    tr = _traj()
    yaw = torch.arange(16) * 0.02 * 0.6
    tr["root_yaw"] = yaw.expand(2, 16).clone()
    tr["root_lin_vel_w"][..., 0] = 0.5 * torch.cos(yaw)  # turning while walking forward
    tr["root_lin_vel_w"][..., 1] = 0.5 * torch.sin(yaw)
    assert JoystickCost([0.5, 0.0], yaw_rate=0.6)(tr).abs().max() < 1e-6
    # heading error of not turning: 0.6 rad/s · t · 0.02 s after t steps
    expect = 0.5 * sum((0.6 * 0.02 * t) ** 2 for t in range(1, 16))
    torch.testing.assert_close(JoystickCost([0.5, 0.0], yaw_rate=0.0)(tr), torch.full((2,), expect), rtol=1e-4, atol=0)


def test_waypoint_cost_pulls_far_and_stops_near():
    far = _traj(start=(0.0, 0.0), vel=(0.0, 0.0))
    far["root_pos_w"].requires_grad_(True)
    cost = WaypointCost([[3.0, 0.0]])
    cost(far).sum().backward()
    g = far["root_pos_w"].grad[0, 0]
    assert g[0] < 0 and abs(g[1]) < 1e-6  # descending the cost moves toward +x
    near = _traj(start=(3.0, 0.0), vel=(0.5, 0.0))
    near["root_lin_vel_w"].requires_grad_(True)
    cost(near).sum().backward()
    assert near["root_lin_vel_w"].grad[0, 0, 0] > 0  # near the goal, the cost asks to slow down


def test_waypoint_goal_sequence_advances():
    cost = WaypointCost([[1.0, 0.0], [1.0, 1.0]], radius=0.3)
    assert not cost.advance([0.0, 0.0])
    assert cost.advance([0.9, 0.1]) and cost.index == 1
    torch.testing.assert_close(cost.goal, torch.tensor([1.0, 1.0]))
    cost.advance([1.0, 0.95])
    assert cost.done


def test_barrier_is_c1_at_delta_and_finite_inside():
    d = 0.05
    x = torch.tensor([d - 1e-4, d, d + 1e-4, -0.2], requires_grad=True)
    b = relaxed_log_barrier(x, d)
    assert torch.isfinite(b).all()
    b.sum().backward()
    assert abs(b[0].item() - b[2].item()) < 1e-2
    assert abs(x.grad[0].item() - x.grad[2].item()) < 0.1
    assert x.grad[3] < x.grad[0] < 0  # deeper inside → steeper push out


def test_obstacle_cost_decreases_away_from_obstacle_and_composes():
    sdf = SignedDistanceField([[3, 1.0, 0.0, 0.75, 0.25, 0.75, 0, 0]])
    cost = ObstacleAvoidanceCost(sdf, body_radii=[0.1, 0.1, 0.1])
    near = _traj(start=(0.55, 0.0), vel=(0.0, 0.0))
    far = _traj(start=(-0.5, 0.0), vel=(0.0, 0.0))
    assert (cost(near) > cost(far)).all()
    assert torch.allclose(cost(far), torch.zeros(2))
    total = WaypointCost([[3.0, 0.0]]) + 2.0 * cost
    torch.testing.assert_close(total(near), WaypointCost([[3.0, 0.0]])(near) + 2 * cost(near))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: JoystickCost([float("nan"), 0.0]), "NaN"),
        (lambda: JoystickCost([0.1, 0.2, 0.3]), "shape"),
        (lambda: WaypointCost([[0.0, 0.0]], radius=-1), "radius"),
        (lambda: ObstacleAvoidanceCost(SignedDistanceField(torch.zeros(0, 8)), [-0.1]), "radii"),
        (lambda: 2.0 * JoystickCost([0.0, 0.0]) * float("inf"), "weight"),
    ],
)
def test_costs_validate_inputs(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_cost_rejects_nan_and_bad_shapes():
    tr = _traj()
    tr["root_lin_vel_w"][0, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        JoystickCost([0.5, 0.0])(tr)
    tr = _traj()
    tr["root_yaw"] = tr["root_yaw"][:, :5]
    with pytest.raises(ValueError, match="shape"):
        JoystickCost([0.5, 0.0])(tr)
