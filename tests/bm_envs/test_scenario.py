"""Scenario files (``bm_envs.scene.scenario``): the shared examples load and run; malformed input raises a
:class:`ScenarioError` whose message names the offending key."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from bm_envs.scene.scenario import ScenarioError, load_scenario, parse_scenario

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_SCENARIOS = REPO_ROOT.parent / "shared" / "scenarios"
SCENARIO_FILES = sorted(SHARED_SCENARIOS.glob("*.json")) if SHARED_SCENARIOS.is_dir() else []

VALID = {
    "name": "unit",
    "env": "BM-G1-Obstacle-v0",
    "time_limit_s": 10.0,
    "start": {"xy": [0.0, 0.0], "yaw": 0.0, "xy_noise": 0.1, "yaw_noise": 0.2},
    "waypoints": [[4.0, 0.0]],
    "goal_radius_m": 0.3,
    "obstacles": [
        {"type": "cylinder", "pos": [2.0, 0.5], "radius": 0.25, "height": 1.5},
        {"type": "box", "pos": [3.0, -0.6], "half_size": [0.3, 0.2, 0.5], "yaw": 0.4},
        {"type": "sphere", "pos": [2.5, 1.0, 0.9], "radius": 0.3},
    ],
    "random_obstacles": {"count": 2, "region": [[1, -2], [3, 2]], "types": ["cylinder"], "radius": [0.15, 0.35]},
    "pushes": {"interval_s": [1.0, 2.0], "lin_vel_mps": [0.0, 0.5]},
}


@pytest.mark.skipif(not SCENARIO_FILES, reason=f"no shared scenario files at {SHARED_SCENARIOS}")
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_shared_scenario_loads_and_runs(path):
    sc = load_scenario(path)
    assert sc.name and sc.env in gym.registry
    env = gym.make(sc.env, scenario=str(path))
    obs, info = env.reset(seed=0)
    assert env.unwrapped.scenario == sc
    assert env.unwrapped.max_steps == round(sc.time_limit_s / 0.02)
    obs, reward, terminated, truncated, info = env.step(np.zeros(29, dtype=np.float32))
    assert np.isfinite(reward) and not terminated
    env.close()


def test_valid_scenario_parses():
    sc = parse_scenario(copy.deepcopy(VALID))
    assert [o.type for o in sc.obstacles] == ["cylinder", "box", "sphere"]
    assert sc.obstacles[0].pos == (2.0, 0.5, 0.75) and sc.obstacles[0].size == (0.25, 0.75)
    assert sc.obstacles[1].pos == (3.0, -0.6, 0.5)
    assert sc.push_interval_s == (1.0, 2.0)
    obstacles = sc.sample_obstacles(np.random.default_rng(0), np.zeros(2))
    assert len(obstacles) == 5  # 3 fixed + 2 random, the random ones kept clear of start and goal
    for o in obstacles[3:]:
        assert np.linalg.norm(np.array(o.pos[:2])) > o.radius_xy + 0.5
        assert np.linalg.norm(np.array(o.pos[:2]) - [4.0, 0.0]) > o.radius_xy + 0.5


def _with(path: str, value):
    """VALID with the key at dotted ``path`` (list indices as ints) set to ``value`` (``...`` deletes it)."""
    d = copy.deepcopy(VALID)
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    parent = d
    for k in keys[:-1]:
        parent = parent[k]
    if value is ...:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    return d


BAD = [
    # (id, scenario dict, substring the message must contain)
    ("unknown-top-key", {**VALID, "gravity": 9.81}, "'gravity'"),
    ("unknown-start-key", _with("start.z", 1.0), "start: unknown key(s) ['z']"),
    ("unknown-obstacle-key", _with("obstacles.0.color", "red"), "obstacles[0]: unknown key(s) ['color']"),
    ("unknown-random-key", _with("random_obstacles.seed", 3), "random_obstacles: unknown key(s) ['seed']"),
    ("missing-name", _with("name", ...), "missing required key 'name'"),
    ("missing-time-limit", _with("time_limit_s", ...), "missing required key 'time_limit_s'"),
    ("unknown-env", _with("env", "BM-G1-Parkour-v0"), "scenario.env"),
    ("name-type", _with("name", 5), "scenario.name"),
    ("time-limit-str", _with("time_limit_s", "30"), "scenario.time_limit_s"),
    ("time-limit-bool", _with("time_limit_s", True), "scenario.time_limit_s"),
    ("time-limit-negative", _with("time_limit_s", -1.0), "scenario.time_limit_s"),
    ("time-limit-nan", _with("time_limit_s", float("nan")), "scenario.time_limit_s"),
    ("start-list", _with("start", [0, 0]), "scenario.start: expected an object"),
    ("start-xy-len", _with("start.xy", [0.0]), "scenario.start.xy"),
    ("start-noise-negative", _with("start.xy_noise", -0.1), "scenario.start.xy_noise"),
    ("waypoints-str", _with("waypoints", "east"), "scenario.waypoints"),
    ("waypoint-len", _with("waypoints", [[1.0, 2.0, 3.0]]), "scenario.waypoints[0]"),
    ("waypoints-empty", _with("waypoints", []), "scenario.waypoints"),
    ("goal-radius-negative", _with("goal_radius_m", -0.3), "scenario.goal_radius_m"),
    ("obstacles-dict", _with("obstacles", {"type": "box"}), "scenario.obstacles"),
    ("obstacle-type", _with("obstacles.0.type", "cone"), "scenario.obstacles[0].type"),
    ("obstacle-pos-str", _with("obstacles.0.pos", "here"), "scenario.obstacles[0].pos"),
    ("sphere-pos-int", _with("obstacles.2.pos", 5), "scenario.obstacles[2].pos"),
    ("cylinder-radius-negative", _with("obstacles.0.radius", -0.25), "scenario.obstacles[0].radius"),
    ("sphere-radius-zero", _with("obstacles.2.radius", 0.0), "scenario.obstacles[2].radius"),
    ("box-half-size-negative", _with("obstacles.1.half_size", [0.3, -0.2, 0.5]), "obstacles[1].half_size[1]"),
    ("box-missing-size", _with("obstacles.1.half_size", ...), "obstacles[1]: missing required key 'half_size'"),
    ("random-count-float", _with("random_obstacles.count", 1.5), "random_obstacles.count"),
    ("random-region-order", _with("random_obstacles.region", [[3, 2], [1, -2]]), "random_obstacles.region"),
    ("random-types", _with("random_obstacles.types", ["cone"]), "random_obstacles.types"),
    ("random-radius-negative", _with("random_obstacles.radius", [-0.1, 0.2]), "random_obstacles.radius"),
    ("push-interval-order", _with("pushes.interval_s", [2.0, 1.0]), "pushes.interval_s"),
    ("joystick-str-speed", {**_with("env", "BM-G1-Joystick-v0"), "joystick": [{"t": 0, "vx": "fast"}]},
     "joystick[0].vx"),
    ("joystick-order", {**_with("env", "BM-G1-Joystick-v0"), "joystick": [{"t": 2.0}, {"t": 1.0}]},
     "joystick: segment times"),
    ("success-negative", {**VALID, "success": {"max_vel_error": -1}}, "success.max_vel_error"),
    ("goal-in-obstacle", _with("waypoints", [[2.0, 0.45]]), "waypoints[0]: goal lies inside obstacles[0]"),
    ("start-in-collision", _with("start.xy", [2.9, -0.5]), "obstacles[1]: the start pose is in collision"),
    ("top-level-list", [VALID], "expected an object"),
]  # fmt: skip


@pytest.mark.parametrize("bad, key", [(b, k) for _, b, k in BAD], ids=[i for i, _, _ in BAD])
def test_bad_scenario_names_the_key(bad, key):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(bad)
    assert key in str(e.value)


def test_bad_scenario_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "env": ')
    with pytest.raises(ScenarioError, match=r"broken\.json: malformed JSON"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "missing.json")
    nan_file = tmp_path / "nan.json"
    nan_file.write_text(json.dumps(VALID).replace('"time_limit_s": 10.0', '"time_limit_s": NaN'))
    with pytest.raises(ScenarioError, match=r"nan\.json\.time_limit_s"):
        load_scenario(nan_file)
    bad_key = tmp_path / "bad_key.json"
    bad_key.write_text(json.dumps({**VALID, "obstacle": []}))
    with pytest.raises(ScenarioError, match=r"bad_key\.json: unknown key\(s\) \['obstacle'\]"):
        gym.make("BM-G1-Obstacle-v0", scenario=str(bad_key))


@pytest.mark.parametrize(
    "env_id, scenario_env",
    [("BM-G1-Waypoint-v0", "BM-G1-Joystick-v0"), ("BM-G1-Waypoint-v0", "BM-G1-Obstacle-v0"),
     ("BM-G1-Joystick-v0", "BM-G1-Waypoint-v0"), ("BM-G1-Obstacle-v0", "BM-G1-Waypoint-v0")],
)  # fmt: skip
def test_scenario_for_another_env_is_rejected(env_id, scenario_env):
    """A scenario must match its env, every env alike (an Obstacle scenario may list no obstacles)."""
    sc = {"name": "x", "env": scenario_env, "time_limit_s": 5.0}
    if scenario_env != "BM-G1-Joystick-v0":
        sc["waypoints"] = [[2.0, 0.0]]
    with pytest.raises(ScenarioError, match="env"):
        gym.make(env_id, scenario=sc)
    empty = {"name": "x", "env": "BM-G1-Obstacle-v0", "time_limit_s": 5.0, "waypoints": [[2.0, 0.0]]}
    gym.make("BM-G1-Obstacle-v0", scenario=empty).reset(seed=0)


def test_misspelled_scenario_name_lists_the_built_in_ones():
    with pytest.raises(ScenarioError, match="built-in scenarios: .*'walk-perturb'"):
        gym.make("BM-G1-Joystick-v0", scenario="walk-perturbb")


def test_too_many_obstacles_is_rejected():
    sc = _with("random_obstacles.count", 14)  # 3 fixed + 14 random > 16 observation rows
    with pytest.raises(ValueError, match="obstacles"):
        gym.make("BM-G1-Obstacle-v0", scenario=sc)


def test_shipped_scenarios_load_by_name_and_back_the_eval_suites():
    import json

    from bm_apps.evaluate import SUITES, EvalConfig
    from bm_envs.scene.scenario import builtin_scenarios, load_scenario

    shipped = builtin_scenarios()
    assert {"walk-perturb", "joystick-4dir", "waypoint-square", "forest-small"} <= set(shipped)
    for name, path in shipped.items():
        sc = load_scenario(name)
        assert sc.name == json.loads(path.read_text())["name"]
    expect = {"walk-perturb": "BM-G1-Joystick-v0", "joystick-4dir": "BM-G1-Joystick-v0",
              "joystick-8dir": "BM-G1-Joystick-v0",
              "waypoint": "BM-G1-Waypoint-v0", "obstacle-forest": "BM-G1-Obstacle-v0",
              "joystick-random": "BM-G1-Joystick-v0"}  # fmt: skip
    assert set(SUITES) == set(expect)
    for suite, env_id in expect.items():
        assert EvalConfig(suite=suite, trials=1, workers=1).env_id == env_id
    assert load_scenario("walk-perturb").push_interval_s == (1.0, 1.0)
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario("no-such-scenario")


def _wall_scene(start_xy, yaw=0.0, waypoint=(4.0, 0.0)):
    """A 3 m long, 0.2 m thick wall along x at y = 0 (centre x = 1.5), a start and one goal."""
    return {"name": "corridor", "env": "BM-G1-Obstacle-v0", "time_limit_s": 10.0, "start": {"xy": list(start_xy)},
            "waypoints": [list(waypoint)],
            "obstacles": [{"type": "box", "pos": [1.5, 0.0], "half_size": [1.5, 0.1, 0.5], "yaw": yaw}]}  # fmt: skip


def test_start_beside_a_wall_is_accepted_by_exact_distance():
    # 0.65 m beside the wall's centre line (0.55 m from its face): inside the wall's bounding circle (r 1.5 m), clear
    sc = parse_scenario(_wall_scene((1.5, 0.65), waypoint=(4.0, 0.65)))
    assert sc.obstacles[0].radius_xy > 0.65
    assert float(sc.obstacles[0].column_distance(np.array([1.5, 0.65]))) == pytest.approx(0.55)
    env = gym.make("BM-G1-Obstacle-v0", scenario=sc)  # and the env runs it
    env.reset(seed=0)
    env.close()


@pytest.mark.parametrize("start, what", [((1.5, 0.0), "inside"), ((2.9, 0.2), "0.10 m from it"),
                                         ((0.0, 0.3), "0.20 m from it")])  # fmt: skip
def test_start_in_or_against_a_box_is_refused(start, what):
    with pytest.raises(ScenarioError, match="obstacles\\[0\\]: the start pose is in collision") as e:
        parse_scenario(_wall_scene(start))
    if what != "inside":
        assert what in str(e.value)


def test_goal_inside_a_rotated_box_is_refused_and_overhead_sphere_is_not_in_the_way():
    with pytest.raises(ScenarioError, match="waypoints\\[0\\]: goal lies inside obstacles\\[0\\]"):
        parse_scenario(_wall_scene((0.0, 1.0), yaw=np.pi / 2, waypoint=(1.5, 1.2)))  # wall now along y
    overhead = {**_wall_scene((0.0, 1.0)), "obstacles": [{"type": "sphere", "pos": [0.0, 1.0, 2.0], "radius": 0.3}]}
    parse_scenario(overhead)  # a sphere 0.35 m above the robot's 1.35 m column: not in collision
    low = {**_wall_scene((0.0, 1.0)), "obstacles": [{"type": "sphere", "pos": [0.0, 1.4, 0.9], "radius": 0.3}]}
    with pytest.raises(ScenarioError, match="start pose is in collision"):
        parse_scenario(low)


def test_exact_distance_matches_the_planner_sdf():
    """The scenario's numpy footprint distance agrees with the guidance's torch SDF at the obstacle's mid height."""
    import torch

    from bm_planner.guidance.sdf import SignedDistanceField

    sc = parse_scenario(copy.deepcopy(VALID))
    rng = np.random.default_rng(0)
    for o in sc.obstacles:
        if o.type == "sphere":
            continue
        xy = rng.uniform(-3, 5, (200, 2))
        field = SignedDistanceField.from_obstacles([o], dtype=torch.float64)
        pts = torch.as_tensor(np.c_[xy, np.full(200, o.pos[2])])
        np.testing.assert_allclose(o.footprint_distance(xy), field(pts).numpy(), atol=1e-9)
