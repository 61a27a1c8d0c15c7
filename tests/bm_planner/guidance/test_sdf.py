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
    torch.testing.assert_close(
        g[d.detach().reshape(-1) > 0.05], torch.ones_like(g[d.detach().reshape(-1) > 0.05]), atol=1e-3, rtol=0
    )


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
    from bm_envs.scene.scenario import Obstacle

    obs = [
        Obstacle("cylinder", (2.0, 0.2, 0.75), (0.25, 0.75)),
        Obstacle("box", (3.5, -0.6, 0.6), (0.3, 0.3, 0.6), 0.5),
    ]
    a = SignedDistanceField.from_obstacles(obs)
    b = SignedDistanceField([[3, 2.0, 0.2, 0.75, 0.25, 0.75, 0, 0], [2, 3.5, -0.6, 0.6, 0.3, 0.3, 0.6, 0.5]])
    p = torch.rand(20, 3) * 4
    torch.testing.assert_close(a(p), b(p))


# ---------------------------------------------------------------------- mesh obstacles
@pytest.fixture
def l_wall(tmp_path, monkeypatch):
    """An L-shaped wall mesh obstacle (file in tmp_path, caches in tmp_path)."""
    from bm_envs.scene.mesh_obstacles import make_l_wall
    from bm_envs.scene.scenario import parse_scenario

    monkeypatch.setenv("BM_CACHE_DIR", str(tmp_path / "cache"))
    make_l_wall().export(tmp_path / "wall.stl")
    sc = parse_scenario({"name": "m", "env": "BM-G1-Obstacle-v0", "time_limit_s": 1.0, "waypoints": [[5.0, 0.0]],
                         "obstacles": [{"type": "mesh", "file": "wall.stl", "pos": [2.0, -0.5], "yaw": 0.4},
                                       {"type": "sphere", "pos": [4.0, 1.0, 0.5], "radius": 0.3}]},
                        base_dir=tmp_path)  # fmt: skip
    return sc.obstacles


def test_sdf_mesh_from_info_dicts_is_the_mesh_field_and_its_gradient(l_wall):
    mesh, sphere = l_wall
    sdf = SignedDistanceField.from_obstacles([o.to_dict() for o in l_wall])  # what the env's info carries
    pts = torch.tensor(np.random.default_rng(0).uniform([1, -1.5, 0], [5, 1.5, 1.3], (300, 3)), requires_grad=True)
    d = sdf(pts)
    expect = np.minimum(mesh.mesh.distance(pts.detach().numpy()),
                        np.linalg.norm(pts.detach().numpy() - [4.0, 1.0, 0.5], axis=1) - 0.3)  # fmt: skip
    assert np.allclose(d.detach().numpy(), expect, atol=1e-5)
    (g,) = torch.autograd.grad(d.sum(), pts)
    on_mesh = mesh.mesh.distance(pts.detach().numpy()) <= expect + 1e-9
    _, g_mesh = mesh.mesh.value_and_grad(pts.detach().numpy())
    assert np.allclose(g.numpy()[on_mesh], g_mesh[on_mesh], atol=1e-5)


def test_sdf_mesh_rows_without_meshes_fall_back_to_bounding_boxes(l_wall):
    mesh, _ = l_wall
    rows = np.stack([o.row() for o in l_wall])
    with pytest.warns(UserWarning, match="bounding boxes"):
        sdf = SignedDistanceField(rows)
    box = SignedDistanceField(np.r_[[[BOX, *mesh.pos, *mesh.size, mesh.yaw]], rows[1:]])
    pts = torch.tensor(np.random.default_rng(1).uniform([1, -1.5, 0], [5, 1.5, 1.3], (100, 3)), dtype=torch.float32)
    assert torch.allclose(sdf(pts), box(pts))
    with pytest.raises(ValueError, match="mesh rows"):
        SignedDistanceField(rows, meshes=[])
