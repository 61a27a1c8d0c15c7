"""``BM-G1-Obstacle-v0``: reach the goal(s) of :mod:`bm_envs.envs.waypoint` while avoiding static obstacles.

Obstacles (spheres, oriented boxes, vertical cylinders standing on the floor, triangle meshes) are real MuJoCo
collision geoms, fixed by the scenario and/or drawn at reset from ``random_obstacles`` (primitives only); a mesh
collides as its convex pieces (:mod:`bm_envs.scene.mesh_obstacles`). Any contact between a robot geom and an
obstacle is a collision: ``info["collided"] = True`` and, with ``terminate_on_collision`` (default), the episode
ends as a failure.

Task observation adds ``obstacles`` (16, 8): one row per obstacle, zero rows unused:
``[type (1 sphere, 2 box, 3 cylinder, 4 mesh), x, y, z (centre, m), s0, s1, s2, yaw (rad)]`` with sizes
sphere (r, 0, 0), box (hx, hy, hz), cylinder (r, half_height, 0), mesh: its yaw-aligned bounding box (hx, hy, hz)
(a fixed-size row cannot hold a mesh). ``info["obstacles"]`` (at reset and at every step) lists the same as dicts
(:meth:`bm_envs.scene.scenario.Obstacle.to_dict`; a mesh with its file, sha256, scale and pose), so a planner can build
a signed distance field, exact for meshes too.

``info["clearance_m"]``: distance between the robot's collision geoms and the nearest obstacle (MuJoCo's
``mj_geomDistance``, evaluated for obstacles whose footprint is within 1.5 m of the pelvis, else capped at
1.5 m); ``info["min_clearance_m"]`` is its running minimum.
"""

from __future__ import annotations

import mujoco
import numpy as np

from bm_envs.envs.base import _box
from bm_envs.envs.waypoint import G1WaypointEnv
from bm_envs.scene.builder import place_obstacles

MAX_OBS_ROWS = 16
CLEARANCE_CAP_M = 1.5


def obstacle_rows(obstacles) -> np.ndarray:
    """The (:data:`MAX_OBS_ROWS`, 8) observation rows of ``obstacles`` (:meth:`Obstacle.row`), zero rows unused."""
    rows = np.zeros((MAX_OBS_ROWS, 8))
    for i, o in enumerate(obstacles[:MAX_OBS_ROWS]):
        rows[i] = o.row()
    return rows


class G1ObstacleEnv(G1WaypointEnv):
    default_scenario = {
        "name": "forest-small", "env": "BM-G1-Obstacle-v0", "time_limit_s": 30.0,
        "start": {"xy": [0.0, 0.0], "yaw": 0.0, "xy_noise": 0.1, "yaw_noise": 0.2},
        "waypoints": [[7.0, 0.0]], "goal_radius_m": 0.3,
        "obstacles": [{"type": "cylinder", "pos": [2.0, 0.2], "radius": 0.25, "height": 1.5},
                      {"type": "box", "pos": [3.5, -0.6], "half_size": [0.3, 0.3, 0.6], "yaw": 0.5},
                      {"type": "cylinder", "pos": [5.0, 0.5], "radius": 0.3, "height": 1.5}],
        "random_obstacles": {"count": 4, "region": [[1.5, -2.5], [5.5, 2.5]], "types": ["cylinder", "box"],
                             "radius": [0.15, 0.3]},
    }  # fmt: skip
    scenario_envs = ("BM-G1-Obstacle-v0",)
    reward_weights = {**G1WaypointEnv.reward_weights, "collision": 5.0}

    def __init__(self, *args, terminate_on_collision: bool = True, **kwargs):
        self.terminate_on_collision = terminate_on_collision
        super().__init__(*args, **kwargs)
        n_max = len(self.scenario.obstacles) + (self.scenario.random_obstacles or {}).get("count", 0)
        if n_max > MAX_OBS_ROWS:
            raise ValueError(f"scenario {self.scenario.name!r} has up to {n_max} obstacles; at most {MAX_OBS_ROWS}")
        self.obstacles = []

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        info["obstacles"] = self._obst_dicts
        return obs, info

    def _task_spaces(self):
        return {**super()._task_spaces(), "obstacles": _box(MAX_OBS_ROWS, 8)}

    def _task_reset(self, start_xy, start_yaw):
        super()._task_reset(start_xy, start_yaw)
        self.obstacles = self.scenario.sample_obstacles(self.np_random, start_xy)[:MAX_OBS_ROWS]
        self._obst_geom_sets = place_obstacles(self.model, self.idx, self.obstacles)
        self._obst_geoms = np.concatenate(self._obst_geom_sets) if self.obstacles else np.zeros(0, dtype=int)
        self._obst_rows = obstacle_rows(self.obstacles)
        self._obst_dicts = [o.to_dict() for o in self.obstacles]
        self._fromto = np.zeros(6)
        self.min_clearance = CLEARANCE_CAP_M
        self.collided = False

    def _task_obs(self):
        return {**super()._task_obs(), "obstacles": self._obst_rows}

    def _clearance(self, root_xy: np.ndarray) -> float:
        best = CLEARANCE_CAP_M
        for o, gs in zip(self.obstacles, self._obst_geom_sets):
            if np.linalg.norm(np.asarray(o.pos[:2]) - root_xy) - o.radius_xy > CLEARANCE_CAP_M:
                continue
            for g in gs:
                for rg in self.idx.robot_geoms:
                    d = mujoco.mj_geomDistance(self.model, self.data, int(rg), int(g), CLEARANCE_CAP_M, self._fromto)
                    best = min(best, d)
        return float(max(best, 0.0))

    def _task_step(self, state):
        terms, done, info = super()._task_step(state)
        ncon = self.data.ncon
        hit = False
        if ncon and len(self._obst_geoms):
            geoms = self.data.contact.geom[:ncon]
            hit = bool(np.isin(geoms, self._obst_geoms).any())
        clearance = self._clearance(state["root_xy"]) if len(self._obst_geoms) else CLEARANCE_CAP_M
        self.min_clearance = min(self.min_clearance, clearance)
        self.collided = self.collided or hit
        terms["collision"] = -1.0 if hit else 0.0
        info.update(
            collided=self.collided,
            clearance_m=clearance,
            min_clearance_m=self.min_clearance,
            obstacles=self._obst_dicts,
            success=bool(info["success"] and not self.collided),
        )
        return terms, done or (hit and self.terminate_on_collision), info
