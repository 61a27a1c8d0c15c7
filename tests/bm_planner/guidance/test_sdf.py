"""SignedDistanceField against an independent computation: MuJoCo's mj_geomDistance on the same primitives."""

import mujoco
import numpy as np
import pytest
import torch

from bm_planner.guidance.sdf import BOX, CYLINDER, SPHERE, SignedDistanceField

PROBE_R = 1e-3


def _mujoco_distance(row, points):
    """Distance from points to the primitive by MuJoCo (probe sphere of radius PROBE_R on a mocap body)."""
    kind, x, y, z, s0, s1, s2, yaw = row
    spec = mujoco.MjSpec()
    gtype = {SPHERE: mujoco.mjtGeom.mjGEOM_SPHERE, BOX: mujoco.mjtGeom.mjGEOM_BOX,
             CYLINDER: mujoco.mjtGeom.mjGEOM_CYLINDER}[int(kind)]  # fmt: skip
    spec.worldbody.add_geom(type=gtype, size=[s0, s1 or s0, s2 or s0], pos=[x, y, z],
                            quat=[np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])  # fmt: skip
    probe = spec.worldbody.add_body(mocap=True)
    probe.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[PROBE_R, 0, 0])
    m = spec.compile()
    d = mujoco.MjData(m)
    out = []
    for p in points:
        d.mocap_pos[0] = p
        mujoco.mj_kinematics(m, d)
        out.append(mujoco.mj_geomDistance(m, d, 0, 1, 10.0, None) + PROBE_R)
    return np.array(out)


ROWS = {
    "sphere": [SPHERE, 0.3, -0.2, 0.9, 0.35, 0, 0, 0],
    "box": [BOX, -0.4, 0.5, 0.5, 0.3, 0.2, 0.5, 0.7],
    "cylinder": [CYLINDER, 0.2, 0.1, 0.75, 0.25, 0.75, 0, 0],
}


@pytest.mark.parametrize("name", list(ROWS))
def test_sdf_matches_mujoco_outside(name):
    row = ROWS[name]
    rng = np.random.default_rng(0)
    pts = rng.uniform([-2, -2, -0.5], [2, 2, 2.5], size=(300, 3))
    sdf = SignedDistanceField([row])
    ours = sdf(torch.tensor(pts, dtype=torch.float32)).double().numpy()
    ref = _mujoco_distance(row, pts)
    outside = ref > 0.01
    assert outside.sum() > 200
    np.testing.assert_allclose(ours[outside], ref[outside], atol=2e-3)


@pytest.mark.parametrize("name", list(ROWS))
def test_sdf_inside_is_negative_and_matches_depth(name):
    row = ROWS[name]
    rng = np.random.default_rng(1)
    center = np.array(row[1:4])
    pts = center + rng.uniform(-0.12, 0.12, size=(50, 3))
    ours = SignedDistanceField([row])(torch.tensor(pts, dtype=torch.float32)).double().numpy()
    assert (ours < 0).all()
    ref = _mujoco_distance(row, pts)
    np.testing.assert_allclose(ours, ref, atol=1e-2)


def test_union_is_min_and_gradient_finite():
    rows = [ROWS["sphere"], ROWS["box"], ROWS["cylinder"], [0] * 8]
    sdf = SignedDistanceField(rows)
    assert len(sdf) == 3
    p = torch.randn(4, 7, 3, requires_grad=True)
    d = sdf(p)
    assert d.shape == (4, 7)
    each = torch.stack([SignedDistanceField([r])(p) for r in rows[:3]], -1).min(-1).values
    torch.testing.assert_close(d, each)
    d.sum().backward()
    assert torch.isfinite(p.grad).all()
    # gradient of an exact SDF has unit norm outside the obstacles
    g = p.grad.reshape(-1, 3).norm(dim=-1)
    torch.testing.assert_close(g[d.detach().reshape(-1) > 0.05], torch.ones_like(g[d.detach().reshape(-1) > 0.05]), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    "rows, match",
    [
        ([[1, 0, 0, 0, -0.1, 0, 0, 0]], "positive"),
        ([[2, 0, 0, 0, 0.1, 0.0, 0.1, 0]], "positive"),
        ([[7, 0, 0, 0, 0.1, 0, 0, 0]], "type"),
        ([[1, 0, float("nan"), 0, 0.1, 0, 0, 0]], "NaN"),
        ([[1, 0, 0, 0.1]], "shape"),
    ],
)
def test_sdf_rejects_bad_rows(rows, match):
    with pytest.raises(ValueError, match=match):
        SignedDistanceField(rows)


def test_sdf_from_env_obstacles_matches_rows():
    from bm_envs.scenario import Obstacle

    obs = [Obstacle("cylinder", (2.0, 0.2, 0.75), (0.25, 0.75)), Obstacle("box", (3.5, -0.6, 0.6), (0.3, 0.3, 0.6), 0.5)]
    a = SignedDistanceField.from_obstacles(obs)
    b = SignedDistanceField([[3, 2.0, 0.2, 0.75, 0.25, 0.75, 0, 0], [2, 3.5, -0.6, 0.6, 0.3, 0.3, 0.6, 0.5]])
    p = torch.rand(20, 3) * 4
    torch.testing.assert_close(a(p), b(p))
