"""MovingSpheres / MovingObstacleCost: values against a direct computation, time alignment, gradients, errors."""

import math

import numpy as np
import pytest
import torch

from bm_planner.guidance.costs import MovingObstacleCost, ObstacleAvoidanceCost, relaxed_log_barrier
from bm_planner.guidance.sdf import MovingSpheres, SignedDistanceField


def _direct(points: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """min over spheres at the same step of |p - c| - r, by loops (B, H, K)."""
    B, H, K, _ = points.shape
    out = np.empty((B, H, K))
    for b in range(B):
        for h in range(H):
            cb, ch = min(b, centers.shape[0] - 1), min(h, centers.shape[1] - 1)
            for k in range(K):
                out[b, h, k] = min(
                    np.linalg.norm(points[b, h, k] - centers[cb, ch, m]) - radii[m] for m in range(len(radii))
                )
    return out


@pytest.mark.parametrize("cshape", [(2, 5), (1, 5), (1, 1), (2, 1)])
def test_distance_matches_direct_computation(cshape):
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(2, 5, 3, 3, generator=g, dtype=torch.float64)
    centers = torch.randn(*cshape, 4, 3, generator=g, dtype=torch.float64)
    radii = torch.tensor([0.1, 0.2, 0.3, 0.05], dtype=torch.float64)
    d = MovingSpheres(centers, radii, dtype=torch.float64)(pts)
    assert d.shape == (2, 5, 3)
    np.testing.assert_allclose(d.numpy(), _direct(pts.numpy(), centers.numpy(), radii.numpy()), atol=1e-6)


def test_spheres_are_matched_step_by_step():
    """A sphere passing through a fixed point is close to it only at its own time step."""
    H = 4
    centers = torch.zeros(1, H, 1, 3)
    centers[0, :, 0, 0] = torch.arange(H, dtype=torch.float32)  # sphere at x = t
    pts = torch.zeros(1, H, 1, 3)
    pts[..., 0] = 2.0  # a point held at x = 2
    d = MovingSpheres(centers, [0.5])(pts)[0, :, 0]
    np.testing.assert_allclose(d.numpy(), [1.5, 0.5, -0.5, 0.5], atol=1e-5)


def test_static_moving_spheres_equal_the_static_sdf():
    rows = torch.tensor([[1, 1.0, 0.5, 0.8, 0.3, 0, 0, 0], [1, -1.0, 0.0, 0.4, 0.2, 0, 0, 0]])
    pts = torch.randn(3, 6, 5, 3, generator=torch.Generator().manual_seed(1))
    ms = MovingSpheres(rows[:, 1:4][None, None], rows[:, 4])
    assert torch.allclose(ms(pts), SignedDistanceField(rows)(pts), atol=1e-6)


def test_cost_value_and_finite_gradient():
    g = torch.Generator().manual_seed(2)
    B, H, K, M = 2, 6, 3, 5
    centers = torch.randn(B, H, M, 3, generator=g) * 0.5
    radii = torch.full((M,), 0.1)
    body_r = torch.tensor([0.2, 0.1, 0.08])
    pts = (torch.randn(B, H, K, 3, generator=g) * 0.5).requires_grad_(True)
    cost = MovingObstacleCost(MovingSpheres(centers, radii), body_r, delta=0.05, cutoff=1.0)
    c = cost({"body_pos_w": pts})
    x = _direct(pts.detach().numpy(), centers.numpy(), radii.numpy()) - body_r.numpy()
    b = relaxed_log_barrier(torch.as_tensor(x), 0.05).numpy() + math.log(1.0)
    expected = np.where(x < 1.0, b, 0.0).sum(axis=(1, 2))
    np.testing.assert_allclose(c.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(c.sum(), pts)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # penetrating points (x < 0) still get finite gradients pushing them out
    inside = centers[:, :, :K].clone().requires_grad_(True)
    (g_in,) = torch.autograd.grad(cost({"body_pos_w": inside}).sum(), inside)
    assert torch.isfinite(g_in).all()


def test_gradient_matches_finite_differences():
    centers = torch.tensor([[[[0.0, 0.0, 0.8]], [[0.1, 0.0, 0.8]]]], dtype=torch.float64)  # (1, 2, 1, 3)
    cost = MovingObstacleCost(MovingSpheres(centers, [0.2], dtype=torch.float64), [0.1], cutoff=1.0)
    p = torch.tensor([[[[0.5, 0.2, 0.8]], [[0.45, -0.1, 0.7]]]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q: cost({"body_pos_w": q}), (p,))


def test_far_spheres_cost_nothing_and_empty_set_is_far():
    far = MovingSpheres(torch.full((1, 1, 2, 3), 50.0), [0.2, 0.2])
    pts = torch.zeros(1, 3, 2, 3)
    assert torch.equal(MovingObstacleCost(far, [0.1, 0.1])({"body_pos_w": pts}), torch.zeros(1))
    empty = MovingSpheres(torch.zeros(1, 1, 0, 3), torch.zeros(0))
    assert torch.equal(empty(pts), torch.full((1, 3, 2), 10.0))


def test_composes_with_other_costs():
    ms = MovingSpheres(torch.zeros(1, 1, 1, 3), [0.2])
    c = 2.0 * MovingObstacleCost(ms, [0.1]) + ObstacleAvoidanceCost(SignedDistanceField(torch.zeros(0, 8)), [0.1])
    assert c({"body_pos_w": torch.full((1, 2, 1, 3), 0.3)}).shape == (1,)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="centers"):
        MovingSpheres(torch.zeros(4, 3), [0.1])
    with pytest.raises(ValueError, match="radii"):
        MovingSpheres(torch.zeros(1, 2, 3, 3), [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        MovingSpheres(torch.full((1, 1, 1, 3), float("nan")), [0.1])
    with pytest.raises(ValueError, match="do not match"):
        MovingSpheres(torch.zeros(1, 5, 1, 3), [0.1])(torch.zeros(1, 4, 2, 3))
    with pytest.raises(ValueError, match="do not match"):
        MovingSpheres(torch.zeros(3, 1, 1, 3), [0.1])(torch.zeros(2, 4, 2, 3))
    with pytest.raises(ValueError, match="MovingSpheres"):
        MovingObstacleCost(SignedDistanceField(torch.zeros(0, 8)), [0.1])
