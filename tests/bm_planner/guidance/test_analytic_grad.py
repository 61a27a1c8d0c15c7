"""The closed-form guidance gradient (Cost.value_and_grad + StateRepresentation.decode_vjp) equals autograd."""

import numpy as np
import pytest
import torch

from bm_planner.data._torch_rot import rotvec_to_matrix, yaw_of_rotvec_grad
from bm_planner.data.normalizer import Normalizer
from bm_planner.data.state import StateRepresentation
from bm_planner.guidance.classifier import ClassifierGuidance, GuidanceConfig
from bm_planner.guidance.costs import JoystickCost, MovingObstacleCost, ObstacleAvoidanceCost, WaypointCost
from bm_planner.guidance.sdf import MovingSpheres, SignedDistanceField
from bm_planner.multi_agent import BatchCost

REP = StateRepresentation()
ROWS = [[1, 0.5, 0.2, 0.5, 0.3, 0, 0, 0], [2, 1.0, -0.5, 0.5, 0.2, 0.3, 0.5, 0.4], [3, -0.5, 0.5, 0.5, 0.2, 0.6, 0, 0]]


def _states(B=3, T=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, REP.dim, generator=g, dtype=torch.float64) * 0.3
    x[..., 6:9] *= 2.0  # root rotation vectors up to ~1.5 rad
    x[0, :4, 6:9] *= 1e-3  # and some near zero (series branch)
    return x, torch.randn(B, 3, generator=g, dtype=torch.float64), torch.randn(B, generator=g, dtype=torch.float64)


def _costs():
    sdf = SignedDistanceField(ROWS, dtype=torch.float64)
    spheres = MovingSpheres(torch.randn(1, 16, 2, 3, generator=torch.Generator().manual_seed(3)), [0.3, 0.2])
    return {
        "joystick_yaw": JoystickCost([0.5, 0.1], yaw_rate=0.3, yaw_weight=2.0),
        "joystick": JoystickCost([[0.3, 0.0], [0.0, 0.4], [-0.2, 0.1]]),
        "waypoint": WaypointCost([[1.0, 0.5]]),
        "obstacle": ObstacleAvoidanceCost(sdf, [0.1] * REP.K, cutoff=2.0),
        "moving": MovingObstacleCost(spheres, [0.1] * REP.K, cutoff=3.0),
        "sum": JoystickCost([0.5, 0.0], 0.2) + 2.0 * WaypointCost([[0.3, 0.2]]) + ObstacleAvoidanceCost(
            sdf, [0.1] * REP.K, cutoff=2.0),
        "batch": BatchCost([JoystickCost([0.5, 0.0]), None, WaypointCost([[0.3, 0.2]])]),
    }  # fmt: skip


def _autograd(cost, x, rp, ry):
    xs = x.clone().requires_grad_(True)
    value = cost(REP.decode(xs, rp, ry, keys=cost.keys))
    (g,) = torch.autograd.grad(value.sum(), xs)
    return value.detach(), g


@pytest.mark.parametrize("name", list(_costs()))
def test_value_and_grad_matches_autograd(name):
    cost = _costs()[name]
    x, rp, ry = _states()
    if name == "moving":
        x = x.float()
        rp, ry = rp.float(), ry.float()
    value, g_ref = _autograd(cost, x, rp, ry)
    v, grads = cost.value_and_grad(REP.decode(x, rp, ry, keys=cost.keys))
    g = REP.decode_vjp(x, rp, ry, grads)
    tol = 1e-4 if x.dtype == torch.float32 else 1e-9
    torch.testing.assert_close(v, value, atol=tol, rtol=tol)
    torch.testing.assert_close(g, g_ref, atol=tol * max(1.0, float(g_ref.abs().max())), rtol=0)
    assert float(g_ref.abs().max()) > 0  # the check is not vacuous
    # the same in float64 numpy (what ClassifierGuidance runs on the CPU)
    xn, rpn, ryn = (t.double().numpy() for t in (x, rp, ry))
    vn, gn = cost.value_and_grad(REP.decode(xn, rpn, ryn, keys=cost.keys))
    gn = REP.decode_vjp(xn, rpn, ryn, gn)
    assert isinstance(gn, np.ndarray) and gn.dtype == np.float64
    torch.testing.assert_close(torch.from_numpy(np.asarray(vn)).to(value), value, atol=tol, rtol=tol)
    torch.testing.assert_close(torch.from_numpy(gn).to(g_ref), g_ref, atol=tol * max(1.0, float(g_ref.abs().max())),
                               rtol=0)  # fmt: skip


def test_yaw_of_rotvec_grad_matches_autograd_across_the_series_switch():
    for scale in (1e-7, 1e-3, 0.049, 0.051, 0.5, 3.0):
        rv = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        rv = rv / rv.norm(dim=-1, keepdim=True) * scale
        r = rv.clone().requires_grad_(True)
        m = rotvec_to_matrix(r)
        yaw = torch.atan2(m[..., 1, 0], m[..., 0, 0])
        (g,) = torch.autograd.grad(yaw.sum(), r)
        y2, g2 = yaw_of_rotvec_grad(rv)
        torch.testing.assert_close(y2, yaw.detach(), atol=1e-12, rtol=0)
        torch.testing.assert_close(g2, g, atol=1e-10, rtol=0)


def test_decode_vjp_rejects_bad_input():
    x, rp, ry = _states()
    with pytest.raises(ValueError, match="root_rotmat_w"):
        REP.decode_vjp(x, rp, ry, {"root_rotmat_w": torch.zeros(3, 16, 3, 3)})
    with pytest.raises(ValueError, match="shape"):
        REP.decode_vjp(x, rp, ry, {"root_yaw": torch.zeros(3, 15)})
    with pytest.raises(ValueError, match="trajectory"):
        JoystickCost([0.5, 0.0]).value_and_grad({"root_lin_vel_w": torch.full((1, 4, 3), float("nan")),
                                                 "root_yaw": torch.zeros(1, 4)})  # fmt: skip


@pytest.mark.parametrize("name", ["joystick_yaw", "sum"])
def test_classifier_guidance_analytic_equals_autograd(name):
    cost = _costs()[name]
    g = torch.Generator().manual_seed(5)
    norm = Normalizer(torch.randn(REP.dim, generator=g) * 0.1, torch.rand(REP.dim, generator=g) + 0.5,
                      torch.zeros(29), torch.ones(29))  # fmt: skip
    x0 = torch.randn(3, 21, REP.dim, generator=g, dtype=torch.float64) * 0.5
    ref = (torch.randn(3, 3, generator=g), torch.randn(3, generator=g))
    out = {}
    for analytic in (True, False):
        guide = ClassifierGuidance(
            cost, REP, norm, *ref, GuidanceConfig(scale=2.0, max_grad_norm=1e6, analytic=analytic)
        )
        out[analytic] = guide(x0, torch.zeros(3, 12, 29, dtype=torch.float64), 10)[0]
    assert float(out[False].abs().max()) > 0 and float(out[False][:, :5].abs().max()) == 0  # history untouched
    torch.testing.assert_close(out[True], out[False], atol=1e-7 * float(out[False].abs().max()), rtol=0)
