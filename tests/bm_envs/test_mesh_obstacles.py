"""Mesh obstacles (``bm_envs.scene.mesh_obstacles``): the grid SDF against trimesh's exact signed distance, its gradient
against finite differences, the file → scenario → MuJoCo scene → SDF round trip, and bad meshes refused."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import trimesh

from bm_envs.experts.command_laws import ray_free_distance
from bm_envs.scene.mesh_obstacles import (
    GridSDF,
    MeshError,
    MeshGeometry,
    PlacedMesh,
    load_mesh,
    make_boulder,
    make_l_wall,
)
from bm_envs.scene.scenario import ScenarioError, load_scenario, obstacle_from_dict, parse_scenario


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BM_CACHE_DIR", str(tmp_path / "cache"))


def _scenario(mesh_file, pos=(2.0, -0.5), yaw=0.0, **extra):
    return {
        "name": "mesh-unit",
        "env": "BM-G1-Obstacle-v0",
        "time_limit_s": 2.0,
        "waypoints": [[5.0, 0.0]],
        "obstacles": [{"type": "mesh", "file": str(mesh_file), "pos": list(pos), "yaw": yaw, **extra}],
    }


def test_grid_sdf_matches_trimesh_exact_signed_distance():
    mesh = make_l_wall()
    grid = GridSDF.build(mesh, resolution=0.04, padding=0.3)
    rng = np.random.default_rng(0)
    pts = rng.uniform(mesh.bounds[0] - 0.3, mesh.bounds[1] + 0.3, (3000, 3))
    exact = -trimesh.proximity.signed_distance(mesh, pts)  # trimesh: positive inside
    err = np.abs(grid(pts) - exact)
    assert err.max() < 0.04 and np.quantile(err, 0.99) < 0.02, (err.max(), np.quantile(err, 0.99))
    far = np.abs(exact) > 0.05  # the sign is right away from the surface
    assert np.all(np.sign(grid(pts[far])) == np.sign(exact[far]))
    # outside the grid the field still grows with the distance
    p = np.array([[5.0, 0.0, 0.5]])
    assert abs(grid(p)[0] + trimesh.proximity.signed_distance(mesh, p)[0]) < 0.1


def test_grid_sdf_gradient_matches_finite_differences():
    grid = GridSDF.build(make_boulder(0.4, subdivisions=2), resolution=0.05, padding=0.3)
    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.9, 0.9, (200, 3))  # includes points outside the grid
    _, g = grid.value_and_grad(pts)
    eps = 1e-6
    fd = np.stack([(grid(pts + eps * e) - grid(pts - eps * e)) / (2 * eps) for e in np.eye(3)], -1)
    assert np.allclose(g, fd, atol=1e-4)


def test_placed_mesh_world_frame_and_gradient(tmp_path):
    path = tmp_path / "wall.stl"
    make_l_wall().export(path)
    geom = MeshGeometry.from_file(path)
    pm = PlacedMesh.on_floor(geom, (1.0, 2.0), yaw=np.pi / 2)
    # the arm along the mesh's +x now runs along world +y from (1, 2): a point 0.5 m up that arm, 0.3 m beside it
    inside = np.array([0.9, 2.6, 0.5])
    beside = np.array([1.4, 2.6, 0.5])  # 0.3 m on the world +x side of the 0.2 m thick arm (x in [0.8, 1.0])
    assert pm.distance(inside) < 0
    assert pm.distance(beside) == pytest.approx(0.4, abs=0.03)
    _, g = pm.value_and_grad(beside)
    assert g @ np.array([1.0, 0.0, 0.0]) > 0.9  # points away from the wall
    centre, half = pm.box()
    assert np.allclose(half, [0.6, 0.6, 0.6], atol=1e-6)


def test_mesh_round_trip_file_scene_sdf(tmp_path):
    path = tmp_path / "wall.stl"
    make_l_wall().export(path)
    sc = parse_scenario(_scenario(path.name), base_dir=tmp_path)
    (o,) = sc.obstacles
    assert o.type == "mesh" and o.mesh is not None and o.row()[0] == 4
    env = gym.make("BM-G1-Obstacle-v0", scenario=sc)
    obs, info = env.reset(seed=0)
    u = env.unwrapped
    (geoms,) = u.idx.mesh_geoms
    assert len(geoms) >= 2  # a non-convex L is decomposed into convex pieces
    assert all(u.model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH for g in geoms)
    assert obs["obstacles"][0, 0] == 4 and np.allclose(obs["obstacles"][0, 1:4], o.pos)
    (d,) = info["obstacles"]
    assert d["sha256"] == o.mesh.geometry.sha256
    o2 = obstacle_from_dict(d)
    pts = np.random.default_rng(0).uniform([1.5, -1, 0], [3.5, 1, 1.4], (100, 3))
    assert np.allclose(o2.mesh.distance(pts), o.mesh.distance(pts))
    # the robot walked into the wall collides
    m, data = u.model, u.data
    data.qpos[0:2] = [2.05, 0.1]
    mujoco.mj_forward(m, data)
    for _ in range(3):
        obs, r, term, trunc, info = env.step(np.zeros(29, np.float32))
    assert info["collided"] and term
    # a start inside the mesh is refused, using the SDF (not the bounding box: the L's open corner is free)
    with pytest.raises(ScenarioError, match="start pose is in collision"):
        parse_scenario({**_scenario(path.name, pos=(-0.1, -0.1))}, base_dir=tmp_path)
    open_corner = parse_scenario(_scenario(path.name, pos=(-0.75, -0.75)), base_dir=tmp_path)
    assert open_corner.obstacles[0].footprint_distance(np.zeros(2)) < 0  # inside the bounding box ...
    assert open_corner.obstacles[0].column_distance(np.zeros(2)) > 0.25  # ... but clear of the mesh


def mujoco_mesh_distance(obstacle, points, probe_radius: float = 0.02) -> np.ndarray:
    """MuJoCo's distance (m) from each point to a compiled mesh obstacle's convex pieces (a small probe sphere's
    ``mj_geomDistance`` + its radius)."""
    from bm_envs.scene.builder import add_mesh_obstacles, mesh_obstacle_geoms

    spec = mujoco.MjSpec()
    add_mesh_obstacles(spec, [obstacle])
    body = spec.worldbody.add_body(name="probe", mocap=True)
    body.add_geom(name="probe", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[probe_radius, 0, 0], contype=1,
                  conaffinity=2)  # fmt: skip
    model = spec.compile()
    data = mujoco.MjData(model)
    (pieces,) = mesh_obstacle_geoms(model)
    probe = model.geom("probe").id
    out = []
    for p in points:
        data.mocap_pos[0] = p
        mujoco.mj_forward(model, data)
        d = min(mujoco.mj_geomDistance(model, data, probe, int(g), 2.0, None) for g in pieces)
        out.append(d + probe_radius)
    return np.array(out)


def test_mujoco_distance_to_convex_pieces_matches_sdf(tmp_path):
    path = tmp_path / "wall.stl"
    make_l_wall().export(path)
    (o,) = parse_scenario(_scenario(path.name, yaw=0.3), base_dir=tmp_path).obstacles
    rng = np.random.default_rng(2)
    pts = rng.uniform([1.0, -1.5, 0.05], [4.0, 1.5, 1.3], (400, 3))
    sdf = o.mesh.distance(pts)
    keep = (sdf > 0.05) & (sdf < 1.0)  # outside, where MuJoCo's distance is defined
    mj = mujoco_mesh_distance(o, pts[keep])
    err = np.abs(mj - sdf[keep])
    assert keep.sum() > 100 and err.max() < 0.06 and np.median(err) < 0.02, (err.max(), np.median(err))


def test_bad_meshes_refused(tmp_path):
    good = make_l_wall()
    open_mesh = good.copy()
    open_mesh.update_faces(np.arange(len(open_mesh.faces)) != 0)
    open_mesh.export(tmp_path / "open.stl")
    (tmp_path / "garbage.stl").write_bytes(b"\x00\x01solid nonsense" * 7)
    good.export(tmp_path / "wall.obj")
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2], [0, 2, 1], [1, 2, 3]])
    flat.export(tmp_path / "flat.stl")
    cases = {
        "open.stl": "not watertight",
        "garbage.stl": "cannot read|no triangles",
        "flat.stl": "degenerate",
        "missing.stl": "not found",
        "wall.txt": "unsupported mesh format",
    }
    (tmp_path / "wall.txt").write_text("x")
    for name, msg in cases.items():
        with pytest.raises(ScenarioError, match=msg):
            parse_scenario(_scenario(name), base_dir=tmp_path)
    with pytest.raises(ScenarioError, match="across after scaling"):
        parse_scenario(_scenario("wall.obj", scale=100.0), base_dir=tmp_path)
    with pytest.raises(ScenarioError, match="scale"):
        parse_scenario(_scenario("wall.obj", scale=-1.0), base_dir=tmp_path)
    with pytest.raises(ScenarioError, match="unknown key"):
        parse_scenario(_scenario("wall.obj", radius=1.0), base_dir=tmp_path)
    # the open mesh is accepted as its convex hull when asked
    sc = parse_scenario(_scenario("open.stl", hull=True), base_dir=tmp_path)
    assert sc.obstacles[0].mesh.geometry.hull
    with pytest.raises(MeshError, match="changed"):
        MeshGeometry.from_file(tmp_path / "wall.obj", sha256="0" * 64)
    assert load_mesh(tmp_path / "wall.obj").is_watertight


def test_shipped_mesh_scenario_and_pure_pursuit_sees_mesh_boxes():
    sc = load_scenario("mesh-obstacles")
    assert [o.type for o in sc.obstacles] == ["mesh", "mesh"]
    rows = np.stack([o.row() for o in sc.obstacles])
    # a ray from the start along +x meets the L-wall's bounding box (its first face at x = 2.2)
    free = ray_free_distance(np.zeros(2), np.array([[1.0, 0.0]]), rows, inflate=0.0)
    assert free[0] == pytest.approx(2.2, abs=1e-6)


def test_builtin_mesh_is_generated_once_into_the_cache_and_checked(tmp_path):
    def builtin(**o):
        d = _scenario("unused")
        d["obstacles"] = [{"type": "mesh", "pos": [2.0, -0.5], **o}]
        return d

    sc = parse_scenario(builtin(builtin="l-wall", params={"arm_m": 0.8, "height_m": 1.0}))
    geom = sc.obstacles[0].mesh.geometry
    assert geom.file.parent == (tmp_path / "cache" / "mesh-builtin").resolve()
    wanted = make_l_wall(arm_m=0.8, height_m=1.0)
    np.testing.assert_allclose(geom.vertices.min(0), wanted.bounds[0], atol=1e-6)
    np.testing.assert_allclose(geom.vertices.max(0), wanted.bounds[1], atol=1e-6)
    assert len(geom.faces) == len(wanted.faces)
    stamp = geom.file.stat().st_mtime_ns
    again = parse_scenario(builtin(builtin="l-wall", params={"height_m": 1.0, "arm_m": 0.8}))  # same key, any order
    assert again.obstacles[0].mesh.geometry.file == geom.file and geom.file.stat().st_mtime_ns == stamp
    other = parse_scenario(builtin(builtin="l-wall", params={"arm_m": 0.9}))
    assert other.obstacles[0].mesh.geometry.file != geom.file
    bad = {
        "not one of": {"builtin": "teapot"},
        "unknown parameter 'radius'": {"builtin": "boulder", "params": {"radius": 1.0}},
        "subdivisions must be an integer": {"builtin": "boulder", "params": {"subdivisions": 9}},
        "must be an integer in": {"builtin": "boulder", "params": {"seed": 1.5}},
        "arm_m must be a number": {"builtin": "l-wall", "params": {"arm_m": float("nan")}},
        "expected an object": {"builtin": "l-wall", "params": [1.2]},
        "expected a name": {"builtin": 3},
        "exactly one of": {"builtin": "l-wall", "file": "wall.stl"},
        "only a 'builtin' mesh": {"file": "wall.stl", "params": {}},
    }
    for msg, o in bad.items():
        with pytest.raises(ScenarioError, match=msg) as e:
            parse_scenario(builtin(**o))
        assert "\n" not in str(e.value)


def test_multi_robot_env_with_a_mesh_obstacle(tmp_path):
    from bm_envs.multi.env import MultiG1Env
    from bm_envs.multi.scenario import parse_multi_scenario, swap_scenario

    make_l_wall(arm_m=0.6).export(tmp_path / "wall.stl")
    d = swap_scenario(2, radius_m=2.0, time_limit_s=0.2,
                      obstacles=[{"type": "mesh", "file": "wall.stl", "pos": [0.3, 0.8]}])  # fmt: skip
    env = MultiG1Env(parse_multi_scenario(d, base_dir=tmp_path))
    obs, infos = env.reset(seed=0)
    assert len(env.idx.mesh_geoms) == 1 and len(env.idx.mesh_geoms[0]) >= 1
    for a in env.agents:
        assert obs[a]["obstacles"][0, 0] == 4
        assert infos[a]["obstacles"][0]["type"] == "mesh"
