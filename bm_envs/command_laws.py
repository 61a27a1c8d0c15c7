"""Command laws: turn a task observation into a velocity command (vx, vy, yaw_rate) for a locomotion expert.

:class:`PurePursuit` steers toward the current goal (``obs["goal_b"]``); with ``avoid_obstacles`` it adds a
repulsive term from the obstacle rows in ``obs["obstacles"]`` (a potential-field baseline, not a planner).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bm_envs.rotations import quat_to_mat, world_to_yaw_frame, yaw_from_quat


@dataclass
class PurePursuit:
    """Walk toward ``goal_b``: turn at ``yaw_gain``·heading error, slow down within ``slow_radius`` m.

    Units: speeds m/s, yaw rates rad/s, distances m.
    """

    max_speed: float = 0.8
    max_yaw_rate: float = 1.0
    yaw_gain: float = 2.0
    slow_radius: float = 0.6
    avoid_obstacles: bool = False
    influence_m: float = 1.0  # obstacles closer than this (surface distance) repel
    repulsion: float = 0.6

    def reset(self) -> None:
        pass

    def _repulsion_b(self, obs) -> np.ndarray:
        rows = np.asarray(obs["obstacles"], dtype=np.float64)
        rows = rows[rows[:, 0] > 0]
        if not len(rows):
            return np.zeros(2)
        root = np.asarray(obs["root_pos_w"], dtype=np.float64)
        yaw = float(yaw_from_quat(np.asarray(obs["root_quat_w"], dtype=np.float64)))
        rel = root[:2] - rows[:, 1:3]
        center_d = np.linalg.norm(rel, axis=1) + 1e-6
        radius = np.where(rows[:, 0] == 2, np.hypot(rows[:, 4], rows[:, 5]), rows[:, 4])
        surf = np.maximum(center_d - radius - 0.25, 0.05)  # 0.25 m ≈ robot half-width
        w = np.where(surf < self.influence_m, (1 / surf - 1 / self.influence_m), 0.0)
        push_w = np.sum((w / center_d)[:, None] * rel, axis=0) * self.repulsion
        return world_to_yaw_frame(push_w, yaw)

    def __call__(self, obs) -> np.ndarray:
        goal_b = np.asarray(obs["goal_b"], dtype=np.float64)
        dist = float(np.linalg.norm(goal_b))
        if dist < 1e-3:
            return np.zeros(3)
        direction = goal_b / dist
        if self.avoid_obstacles and "obstacles" in obs:
            direction = direction + self._repulsion_b(obs)
            direction /= max(np.linalg.norm(direction), 1e-6)
        heading_err = float(np.arctan2(direction[1], direction[0]))
        yaw_rate = float(np.clip(self.yaw_gain * heading_err, -self.max_yaw_rate, self.max_yaw_rate))
        speed = self.max_speed * min(1.0, dist / self.slow_radius)
        vx = speed * max(np.cos(heading_err), 0.0)
        vy = float(np.clip(0.5 * speed * np.sin(heading_err), -0.3, 0.3))
        return np.array([vx, vy, yaw_rate])


__all__ = ["PurePursuit", "quat_to_mat"]
