"""Task logic of the envs, driven by placing the robot (``data.qpos``) where the outcome is known:
goals reached, success, collisions, clearance, falls."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from bm_envs.envs.obstacle import MAX_OBS_ROWS

ZERO = np.zeros(29, dtype=np.float32)
OBSTACLE_SC = {
    "name": "unit-obstacle", "env": "BM-G1-Obstacle-v0", "time_limit_s": 10.0,
    "start": {"xy": [0.0, 0.0]}, "waypoints": [[2.0, 0.0], [2.0, 2.0]], "goal_radius_m": 0.3,
    "obstacles": [{"type": "cylinder", "pos": [4.0, -1.0], "radius": 0.3, "height": 1.5},
                  {"type": "box", "pos": [-2.0, 2.0], "half_size": [0.3, 0.2, 0.5], "yaw": 0.4},
                  {"type": "sphere", "pos": [0.0, -3.0, 0.9], "radius": 0.3}],
}  # fmt: skip


@pytest.fixture(scope="module")
def obstacle_env():
    env = gym.make("BM-G1-Obstacle-v0", scenario=OBSTACLE_SC)
    yield env
    env.close()


def _place(env, x: float, y: float, seed: int = 0):
    """Reset, then move the standing robot's root to (x, y) and take one zero-action step."""
    env.reset(seed=seed)
    env.unwrapped.data.qpos[:2] = [x, y]
    return env.step(ZERO)


def test_waypoints_reached_in_order_then_success():
    sc = {**OBSTACLE_SC, "env": "BM-G1-Waypoint-v0"}
    del sc["obstacles"]
    env = gym.make("BM-G1-Waypoint-v0", scenario=sc)
    obs, info = env.reset(seed=0)
    np.testing.assert_allclose(obs["goal_b"], [2.0, 0.0], atol=1e-6)
    np.testing.assert_array_equal(obs["waypoints_w"][:3], [[2, 0, 1], [2, 2, 1], [0, 0, 0]])
    data = env.unwrapped.data

    data.qpos[:2] = [2.0, 2.0]  # the second goal does not count before the first
    obs, _, terminated, _, info = env.step(ZERO)
    assert info["goals_reached"] == 0 and not terminated

    data.qpos[:2] = [2.1, 0.1]  # within 0.3 m of goal 0
    obs, reward, terminated, _, info = env.step(ZERO)
    assert info["goals_reached"] == 1 and obs["goal_index"][0] == 1 and not terminated and not info["success"]
    assert info["reward_terms"]["reached"] == 1.0
    np.testing.assert_array_equal(obs["waypoints_w"][:2, 2], [0, 1])
    assert info["dist_to_goal"] == pytest.approx(np.linalg.norm(data.qpos[:2] - [2.0, 2.0]))

    data.qpos[:2] = [1.9, 1.85]
    obs, _, terminated, truncated, info = env.step(ZERO)
    assert terminated and not truncated and info["success"] and info["goals_reached"] == 2
    assert info["time_to_goal_s"] == pytest.approx(0.06)
    np.testing.assert_array_equal(obs["goal_b"], [0.0, 0.0])
    env.close()


def test_goal_not_reached_outside_radius():
    sc = {**OBSTACLE_SC, "env": "BM-G1-Waypoint-v0"}
    del sc["obstacles"]
    env = gym.make("BM-G1-Waypoint-v0", scenario=sc)
    _, _, terminated, _, info = _place(env, 2.35, 0.0)
    assert info["goals_reached"] == 0 and not terminated
    env.close()


def test_obstacle_rows_match_info(obstacle_env):
    obs, _ = obstacle_env.reset(seed=0)
    obs, _, _, _, info = obstacle_env.step(ZERO)
    rows = obs["obstacles"]
    assert rows.shape == (MAX_OBS_ROWS, 8) and len(info["obstacles"]) == 3
    types = {"sphere": 1, "box": 2, "cylinder": 3}
    for row, o in zip(rows, info["obstacles"]):
        size = np.zeros(3)
        size[: len(o["size"])] = o["size"]
        np.testing.assert_allclose(row, [types[o["type"]], *o["pos"], *size, o["yaw"]], rtol=1e-6)
    np.testing.assert_array_equal(rows[3:], 0.0)
    assert info["obstacles"][0] == {"type": "cylinder", "pos": [4.0, -1.0, 0.75], "size": [0.3, 0.75], "yaw": 0.0}
    # the geoms in the physics are where the rows say
    env = obstacle_env.unwrapped
    for row, g in zip(rows[:3], env._obst_geoms):
        np.testing.assert_allclose(env.model.geom_pos[g], row[1:4], rtol=1e-6)


def test_clearance_decreases_when_approaching(obstacle_env):
    clearances = []
    for x in (1.5, 2.5, 3.0, 3.3):
        _, _, terminated, _, info = _place(obstacle_env, x, -1.0)
        assert not info["collided"] and not terminated
        clearances.append(info["clearance_m"])
    assert clearances[0] == 1.5  # capped far away
    assert all(a > b for a, b in zip(clearances, clearances[1:])), clearances
    assert 0.0 < clearances[-1] < 0.4
    assert info["min_clearance_m"] == min(clearances[-1], 1.5)


def test_collision_terminates(obstacle_env):
    _, reward, terminated, _, info = _place(obstacle_env, 3.75, -1.0)  # torso inside the cylinder
    assert info["collided"] and terminated and not info["success"]
    assert info["clearance_m"] == 0.0 and info["reward_terms"]["collision"] == -1.0


def test_collision_without_termination():
    env = gym.make("BM-G1-Obstacle-v0", scenario=OBSTACLE_SC, terminate_on_collision=False)
    _, _, terminated, _, info = _place(env, 3.75, -1.0)
    assert info["collided"] and not terminated
    env.unwrapped.data.qpos[:2] = [0.0, 0.0]  # walked away: the episode still counts the collision
    _, _, terminated, _, info = env.step(ZERO)
    assert info["collided"] and not terminated
    env.close()


@pytest.mark.parametrize("pose", ["lying", "sitting"])
def test_fall_terminates(env_id, pose):
    env = gym.make(env_id)
    env.reset(seed=0)
    data = env.unwrapped.data
    if pose == "lying":  # pelvis 0.2 m above the floor, body horizontal (pitched 90°)
        data.qpos[2] = 0.2
        data.qpos[3:7] = [np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0]
    else:  # upright but low: only the pelvis criterion can fire
        data.qpos[2] = 0.1
    _, _, terminated, truncated, info = env.step(ZERO)
    assert info["fell"] and terminated and not truncated
    assert info["reward_terms"]["alive"] == 0.0 and not info.get("success", False)
    env.close()


def test_standing_does_not_fall_or_truncate_early():
    env = gym.make("BM-G1-Joystick-v0", scenario={"name": "s", "env": "BM-G1-Joystick-v0", "time_limit_s": 0.5})
    env.reset(seed=0)
    for i in range(25):
        _, _, terminated, truncated, info = env.step(ZERO)
        assert not info["fell"] and not terminated
        assert truncated == (i == 24)
    env.close()


@pytest.mark.parametrize("cmd", [(0.5, 0.0, 0.0), (0.0, 0.0, 0.0), (-0.3, 0.2, 0.5)])
def test_joystick_velocity_error(cmd):
    """vel_error = |v̄ − c| / max(|c|, 0.1) with v̄ the heading-frame (vx, vy, yaw rate) averaged over 0.5 s;
    success at the time limit iff its episode mean is within ``success.max_vel_error``."""
    results = {}
    for threshold in (0.25, 100.0):
        sc = {"name": "j", "env": "BM-G1-Joystick-v0", "time_limit_s": 0.8,
              "joystick": [{"t": 0.0, "vx": cmd[0], "vy": cmd[1], "yaw_rate": cmd[2]}],
              "success": {"max_vel_error": threshold}}  # fmt: skip
        env = gym.make("BM-G1-Joystick-v0", scenario=sc)
        obs, _ = env.reset(seed=0)
        np.testing.assert_allclose(obs["command"], cmd, rtol=1e-7)
        vel, errs = [], []
        while True:
            _, _, terminated, truncated, info = env.step(ZERO)
            vel.append([*info["root_vel_b"], env.unwrapped.data.qvel[5]])
            v_avg = np.mean(vel[-25:], axis=0)
            errs.append(np.linalg.norm(v_avg - cmd) / max(np.linalg.norm(cmd), 0.1))
            assert info["vel_error"] == pytest.approx(errs[-1], rel=1e-9, abs=1e-12)
            assert info["success"] is False or truncated
            if terminated or truncated:
                break
        assert truncated and len(errs) == 40
        assert info["vel_error_mean"] == pytest.approx(np.mean(errs), rel=1e-9)
        results[threshold] = (info["success"], info["vel_error_mean"])
        env.close()
    assert results[100.0][0] is True
    assert results[0.25][0] == (results[0.25][1] <= 0.25)
