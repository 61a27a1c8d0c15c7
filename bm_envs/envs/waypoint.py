"""``BM-G1-Waypoint-v0``: walk through a sequence of planar goals in order.

Task observation:

* ``goal_b`` (2,): current goal relative to the pelvis in the heading frame (m); zeros once all are reached.
* ``waypoints_w`` (8, 3): the scenario's goals (x, y in m, flag) with flag 1 for goals still to reach, 0 for
  reached ones or unused rows.
* ``goal_index`` (1,): index of the current goal (= number of goals reached).

A goal is reached when the pelvis xy is within ``scenario.goal_radius_m``; the episode terminates with
``info["success"] = True`` when the last one is reached before the time limit (and without a fall).
``info`` also has ``dist_to_goal`` (m), ``goals_reached`` and ``time_to_goal_s`` (time the last goal was reached).

Reward terms (unweighted): ``progress`` = reduction of the distance to the current goal this step (m),
``reached`` = 1 on the step a goal is reached, ``alive``, ``action_rate``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from bm_envs.envs.base import G1BaseEnv, _box
from bm_envs.rotations import world_to_yaw_frame
from bm_envs.scene.builder import MAX_GOALS, place_goals


class G1WaypointEnv(G1BaseEnv):
    default_scenario = {
        "name": "waypoint-square", "env": "BM-G1-Waypoint-v0", "time_limit_s": 40.0,
        "start": {"xy": [0.0, 0.0], "yaw": 0.0, "xy_noise": 0.1, "yaw_noise": 0.3},
        "waypoints": [[3.0, 0.0], [3.0, 3.0], [0.0, 3.0], [0.0, 0.0]], "goal_radius_m": 0.3,
    }  # fmt: skip
    scenario_envs = ("BM-G1-Waypoint-v0",)
    reward_weights = {"progress": 10.0, "reached": 5.0, "alive": 0.1, "action_rate": 0.005}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if len(self.scenario.waypoints) > MAX_GOALS:
            raise ValueError(f"at most {MAX_GOALS} waypoints are supported, got {len(self.scenario.waypoints)}")
        self.goals = np.array(self.scenario.waypoints, dtype=np.float64).reshape(-1, 2)

    def _task_spaces(self):
        return {
            "goal_b": _box(2),
            "waypoints_w": _box(MAX_GOALS, 3),
            "goal_index": spaces.Box(0, MAX_GOALS, shape=(1,), dtype=np.float32),
        }

    def _task_reset(self, start_xy, start_yaw):
        self.goal_index = 0
        self.time_to_goal = None
        self._dist = float(np.linalg.norm(self.goals[0] - start_xy))
        place_goals(self.model, self.idx, self.goals, self.scenario.goal_radius_m)

    def _task_obs(self):
        wp = np.zeros((MAX_GOALS, 3))
        n = len(self.goals)
        wp[:n, :2] = self.goals
        wp[self.goal_index : n, 2] = 1.0
        if self.goal_index < n:
            rel = self.goals[self.goal_index] - self.data.qpos[:2]
            yaw = self._state()["yaw"]
            goal_b = world_to_yaw_frame(rel, yaw)
        else:
            goal_b = np.zeros(2)
        return {"goal_b": goal_b, "waypoints_w": wp, "goal_index": np.array([self.goal_index], dtype=np.float64)}

    def _reward_weights(self):
        return self.reward_weights

    def _task_step(self, state):
        terms = {"progress": 0.0, "reached": 0.0}
        n = len(self.goals)
        if self.goal_index < n:
            dist = float(np.linalg.norm(self.goals[self.goal_index] - state["root_xy"]))
            terms["progress"] = self._dist - dist
            self._dist = dist
            if dist < self.scenario.goal_radius_m:
                terms["reached"] = 1.0
                self.goal_index += 1
                if self.goal_index < n:
                    self._dist = float(np.linalg.norm(self.goals[self.goal_index] - state["root_xy"]))
                else:
                    self.time_to_goal = self.time
        done = self.goal_index >= n
        info = {
            "success": bool(done),
            "goals_reached": self.goal_index,
            "dist_to_goal": 0.0 if done else self._dist,
            "time_to_goal_s": self.time_to_goal,
        }
        return terms, done, info
