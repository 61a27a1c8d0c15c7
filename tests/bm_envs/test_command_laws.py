"""PurePursuit: ray casting against obstacle rows (fixed numbers), heading choice, validation, and one closed-loop
run of the expert steering around an obstacle on the straight line to the goal."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from bm_envs.experts.command_laws import PurePursuit, ray_free_distance, surface_distance
from bm_envs.experts.locomotion import ExpertPolicy

ANGLES = np.array([0.0, np.pi / 2, np.pi, -np.pi / 2])
DIRS = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)


def _rows(*rows) -> np.ndarray:
    out = np.zeros((16, 8))
    out[: len(rows)] = rows
    return out


def test_ray_distances_disc_and_box():
    rows = _rows([3, 2.0, 0.0, 0.75, 0.5, 0.75, 0, 0], [2, 0.0, 3.0, 0.5, 0.5, 0.25, 0.5, 0.0])
    free = ray_free_distance(np.zeros(2), DIRS, rows, inflate=0.1)
    np.testing.assert_allclose(free, [2.0 - 0.6, 3.0 - 0.35, np.inf, np.inf])
    rows[1, 7] = np.pi / 2  # the box turned by 90°: its long side now faces the ray
    np.testing.assert_allclose(ray_free_distance(np.zeros(2), DIRS, rows, 0.1)[1], 3.0 - 0.6)
    assert np.all(np.isinf(ray_free_distance(np.zeros(2), DIRS, np.zeros((16, 8)), 0.1)))


def test_ray_from_inside_is_blocked_only_inward():
    sphere = _rows([1, 0.3, 0.0, 0.3, 0.3, 0, 0, 0])
    free = ray_free_distance(np.zeros(2), DIRS[[0, 2]], sphere, inflate=0.2)
    assert free[0] == 0.0 and np.isinf(free[1])  # toward the sphere's centre vs away from it
    box = _rows([2, 0.0, -5.0, 0.5, 1.0, 1.0, 0.5, 0.0])
    inside_box = ray_free_distance(np.array([0.0, -4.5]), DIRS[[1, 3]], box, inflate=0.0)
    assert np.isinf(inside_box[0]) and inside_box[1] == 0.0


def _obs(goal_b, rows, yaw=0.0):
    return {"goal_b": np.asarray(goal_b, dtype=np.float32), "root_pos_w": np.array([0.0, 0.0, 0.75]),
            "root_quat_w": np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]), "obstacles": rows}  # fmt: skip


def test_avoidance_matches_plain_pursuit_when_free_and_turns_when_blocked():
    plain, avoid = PurePursuit(), PurePursuit(avoid_obstacles=True)
    free_obs = _obs([3.0, 1.0], np.zeros((16, 8)), yaw=0.3)
    np.testing.assert_allclose(avoid(free_obs), plain(free_obs), atol=1e-9)
    avoid.reset()
    blocked = _obs([3.0, 0.0], _rows([3, 1.0, 0.0, 0.75, 0.3, 0.75, 0, 0]))
    cmd = avoid(blocked)
    assert abs(cmd[2]) > 0.3 and cmd[0] < plain(blocked)[0]  # turns away and slows down
    # hysteresis: a symmetric obstacle does not make it switch sides on the next step
    assert np.sign(avoid(blocked)[2]) == np.sign(cmd[2])


def test_surface_distance_and_backing_off():
    rows = _rows([3, 1.0, 0.0, 0.75, 0.5, 0.75, 0, 0], [2, 0.0, 3.0, 0.5, 0.5, 0.25, 0.5, np.pi / 2])
    dist, away = surface_distance(np.zeros(2), rows)
    np.testing.assert_allclose(dist, [0.5, 3.0 - 0.5])  # the turned box shows its 0.5 m half-side
    np.testing.assert_allclose(away, [[-1.0, 0.0], [0.0, -1.0]], atol=1e-12)
    # 0.35 m from a post's surface (inside the 0.45 m band), goal straight ahead: side-step away from it
    law = PurePursuit(avoid_obstacles=True)
    cmd = law(_obs([3.0, 0.0], _rows([3, 0.0, 0.55, 0.75, 0.2, 0.75, 0, 0])))
    assert cmd[1] < -0.1 and cmd[0] > 0.0
    far = law(_obs([3.0, 0.0], _rows([3, 0.0, 1.55, 0.75, 0.2, 0.75, 0, 0])))
    assert abs(far[1]) < 1e-9


@pytest.mark.parametrize("kwargs", [{"lookahead_m": -1.0}, {"max_speed": float("nan")}, {"num_headings": 4}])
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PurePursuit(**kwargs)


def test_expert_walks_around_an_obstacle(fastsac):
    sc = {"name": "one-post", "env": "BM-G1-Obstacle-v0", "time_limit_s": 12.0, "waypoints": [[2.6, 0.0]],
          "obstacles": [{"type": "cylinder", "pos": [1.3, 0.0], "radius": 0.2, "height": 1.5}]}  # fmt: skip
    env = gym.make("BM-G1-Obstacle-v0", scenario=sc)
    policy = ExpertPolicy(fastsac, law=PurePursuit(avoid_obstacles=True))
    obs, _ = env.reset(seed=0)
    policy.reset()
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.predict(obs)[0])
        done = terminated or truncated
    assert info["success"] and not info["collided"] and not info["fell"]
    assert info["min_clearance_m"] > 0.05
    env.close()
