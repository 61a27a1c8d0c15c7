"""Command laws: turn a task observation into a velocity command (vx, vy, yaw_rate) for a locomotion expert.

:class:`PurePursuit` steers toward the current goal (``obs["goal_b"]``). With ``avoid_obstacles`` it picks, every
step, the walking direction closest to the goal among ``num_headings`` candidates whose ray stays clear of the
obstacles (rows of ``obs["obstacles"]``, each grown by ``robot_radius_m + margin_m``) for ``lookahead_m`` (shorter
free rays cost ``block_weight`` × the shortfall) — a reactive "follow the gap" baseline with hysteresis, not a
planner: concave traps can still catch it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from bm_envs.rotations import wrap_angle, yaw_from_quat
from bm_envs.scene.scenario import OBSTACLE_TYPE_IDS

#: obstacle row types (see :mod:`bm_envs.envs.obstacle`); a mesh row (4) is its yaw-aligned bounding box, so it is
#: treated as a box here (conservative: the box contains the mesh)
_BOX, _MESH = OBSTACLE_TYPE_IDS["box"], OBSTACLE_TYPE_IDS["mesh"]
_BOXLIKE = (_BOX, _MESH)
_BLOCKED_COST = 10.0


def ray_free_distance(origin_w: np.ndarray, dirs_w: np.ndarray, rows: np.ndarray, inflate: float) -> np.ndarray:
    """Distance (m) each ray ``origin + t·dir`` travels before entering an obstacle grown by ``inflate`` m.

    ``origin_w`` (2,), ``dirs_w`` (N, 2) unit vectors, ``rows`` (M, 8) obstacle rows (zero rows ignored). Spheres
    and cylinders are discs of their radius, boxes and meshes (their bounding box) oriented rectangles (grown
    sides, square corners). A ray that
    starts inside a grown obstacle is blocked at 0 when it points inward, free otherwise. Returns (N,), inf = free.
    """
    rows = rows[rows[:, 0] > 0]
    free = np.full(len(dirs_w), np.inf)
    if not len(rows):
        return free
    with np.errstate(divide="ignore", invalid="ignore"):
        disc_rows = rows[~np.isin(rows[:, 0], _BOXLIKE)]
        if len(disc_rows):
            m = origin_w - disc_rows[:, 1:3]  # (K, 2) from centre to origin
            r = disc_rows[:, 4] + inflate
            b = dirs_w @ m.T  # (N, K)
            c = np.sum(m * m, axis=1) - r * r  # (K,)
            disc = b * b - c
            t = -b - np.sqrt(np.maximum(disc, 0.0))
            hit = np.where((disc >= 0) & (t >= 0), t, np.inf)
            inside = c <= 0
            hit = np.where(inside, np.where(b < 0, 0.0, np.inf), hit)
            free = np.minimum(free, hit.min(axis=1))
        box_rows = rows[np.isin(rows[:, 0], _BOXLIKE)]
        for row in box_rows:
            cy, sy = math.cos(row[7]), math.sin(row[7])
            rot_t = np.array([[cy, sy], [-sy, cy]])  # world -> box frame
            p = rot_t @ (origin_w - row[1:3])
            d = dirs_w @ rot_t.T  # (N, 2)
            h = row[4:6] + inflate
            t1, t2 = (-h - p) / d, (h - p) / d
            t1 = np.where(d == 0, np.where(np.abs(p) <= h, -np.inf, np.inf), t1)
            t2 = np.where(d == 0, np.inf, t2)  # parallel to a slab: inside it always, else never
            tmin = np.minimum(t1, t2).max(axis=1)
            tmax = np.maximum(t1, t2).min(axis=1)
            if np.all(np.abs(p) <= h):  # inside: blocked when heading toward the centre
                hit = np.where(d @ -p > 0, 0.0, np.inf)
            else:
                hit = np.where((tmax >= tmin) & (tmax >= 0), np.maximum(tmin, 0.0), np.inf)
            free = np.minimum(free, hit)
    return free


def surface_distance(origin_w: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planar distance (m) from ``origin_w`` (2,) to each obstacle's footprint and the unit direction (2,) pointing
    from the footprint toward the origin. ``rows`` (M, 8) obstacle rows, zero rows dropped. Returns (K,), (K, 2);
    0 distance inside a footprint."""
    rows = rows[rows[:, 0] > 0]
    dist, away = np.empty(len(rows)), np.zeros((len(rows), 2))
    for i, row in enumerate(rows):
        rel = origin_w - row[1:3]
        if row[0] in _BOXLIKE:
            cy, sy = math.cos(row[7]), math.sin(row[7])
            p = np.array([cy * rel[0] + sy * rel[1], -sy * rel[0] + cy * rel[1]])  # box frame
            q = p - np.clip(p, -row[4:6], row[4:6])
            n = float(np.hypot(*q))
            dist[i] = n
            if n > 1e-9:
                away[i] = [cy * q[0] - sy * q[1], sy * q[0] + cy * q[1]] / np.float64(n)
        else:
            n = float(np.hypot(*rel))
            dist[i] = max(n - row[4], 0.0)
            if n > 1e-9:
                away[i] = rel / n
    return dist, away


@dataclass
class PurePursuit:
    """Walk toward ``goal_b``: turn at ``yaw_gain``·heading error, slow down within ``slow_radius`` m.

    With ``avoid_obstacles`` the heading is the best free direction (see module docstring); moving the chosen
    direction by Δ costs ``hysteresis``·Δ extra, so the law does not flip between passing left and right. Closer
    than ``robot_radius_m + margin_m`` to an obstacle it also backs away from it at up to ``backoff_mps`` (turning
    on the spot next to a post sweeps an arm into it).
    Units: speeds m/s, yaw rates rad/s, distances m, angles rad.
    """

    max_speed: float = 0.8
    max_yaw_rate: float = 1.0
    yaw_gain: float = 2.0
    slow_radius: float = 0.6
    avoid_obstacles: bool = False
    robot_radius_m: float = 0.35  # the walking G1's footprint, arm swing included (hands reach ~0.35 m)
    margin_m: float = 0.15  # extra clearance kept from obstacle surfaces
    lookahead_m: float = 1.5
    num_headings: int = 72
    hysteresis: float = 0.5
    block_weight: float = 3.0  # cost (rad-equivalent) of a heading free for none of the needed distance
    min_free_m: float = 0.5  # headings free for less than this are not taken while any other is
    backoff_mps: float = 0.4
    _prev_heading_w: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("_") or isinstance(v, bool):
                continue
            if not math.isfinite(v) or v < 0 or (v == 0 and f.name not in ("margin_m", "hysteresis", "backoff_mps")):
                raise ValueError(f"PurePursuit.{f.name} must be finite and > 0, got {v!r}")
        if self.num_headings < 8:
            raise ValueError(f"PurePursuit.num_headings must be >= 8, got {self.num_headings!r}")

    def reset(self) -> None:
        self._prev_heading_w = None

    def _avoid_heading(self, obs, goal_b: np.ndarray, dist: float) -> tuple[float, float]:
        """Avoidance mode: (heading error in the yaw frame, speed factor in [0, 1]). The speed factor is the free
        fraction of the needed distance along the chosen heading and along the robot's current heading (it walks
        forward while it turns, so it slows down and turns on the spot when what is in front of it is close)."""
        root = np.asarray(obs["root_pos_w"], dtype=np.float64)[:2]
        yaw = float(yaw_from_quat(np.asarray(obs["root_quat_w"], dtype=np.float64)))
        goal_w = yaw + math.atan2(goal_b[1], goal_b[0])
        cand = goal_w + np.linspace(-np.pi, np.pi, self.num_headings, endpoint=False)
        dirs = np.stack([np.cos(cand), np.sin(cand)], axis=1)
        rows = np.asarray(obs["obstacles"], dtype=np.float64)
        free = ray_free_distance(root, dirs, rows, self.robot_radius_m + self.margin_m)
        # straight ahead only the robot's own footprint counts: the margin is for choosing headings, and a robot
        # already inside it must still be able to walk out along a tangent
        ahead = np.array([[math.cos(yaw), math.sin(yaw)]])
        free_ahead = float(ray_free_distance(root, ahead, rows, self.robot_radius_m)[0])
        need = min(self.lookahead_m, dist)
        cost = np.abs(wrap_angle(cand - goal_w))
        if self._prev_heading_w is not None:
            cost = cost + self.hysteresis * np.abs(wrap_angle(cand - self._prev_heading_w))
        # a heading free for less than the needed distance costs in proportion to the shortfall (a hard cut at
        # `need` makes the choice flip between sides as the robot moves); one free for < min_free_m is out
        short = np.clip((need - free) / need, 0.0, 1.0)
        cost = cost + self.block_weight * short + np.where(free < min(self.min_free_m, need), _BLOCKED_COST, 0.0)
        k = int(np.argmin(cost))
        self._prev_heading_w = float(cand[k])
        factor = min(max(min(free[k], need) / need, 0.25), min(free_ahead, need) / need)
        return float(wrap_angle(cand[k] - yaw)), float(factor)

    def __call__(self, obs) -> np.ndarray:
        goal_b = np.asarray(obs["goal_b"], dtype=np.float64)
        dist = float(np.linalg.norm(goal_b))
        if dist < 1e-3:
            return np.zeros(3)
        speed = self.max_speed * min(1.0, dist / self.slow_radius)
        backoff_b = np.zeros(2)
        if self.avoid_obstacles and "obstacles" in obs:
            heading_err, factor = self._avoid_heading(obs, goal_b, dist)
            speed *= factor
            backoff_b = self._backoff_b(obs)
        else:
            heading_err = float(np.arctan2(goal_b[1], goal_b[0]))
        yaw_rate = float(np.clip(self.yaw_gain * heading_err, -self.max_yaw_rate, self.max_yaw_rate))
        vx = speed * max(np.cos(heading_err), 0.0) + backoff_b[0]
        vy = float(np.clip(0.5 * speed * np.sin(heading_err) + backoff_b[1], -0.3, 0.3))
        return np.array([max(vx, -self.backoff_mps), vy, yaw_rate])

    def _backoff_b(self, obs) -> np.ndarray:
        """Velocity (m/s, yaw frame) away from obstacles inside the margin band, from 0 at its outer edge to
        ``backoff_mps`` at the robot's own radius (summed over obstacles)."""
        root = np.asarray(obs["root_pos_w"], dtype=np.float64)[:2]
        dist, away = surface_distance(root, np.asarray(obs["obstacles"], dtype=np.float64))
        grown = self.robot_radius_m + self.margin_m
        w = np.clip((grown - dist) / max(self.margin_m, 0.05), 0.0, 1.0)
        if not np.any(w > 0):
            return np.zeros(2)
        v_w = self.backoff_mps * np.sum(w[:, None] * away, axis=0)
        yaw = float(yaw_from_quat(np.asarray(obs["root_quat_w"], dtype=np.float64)))
        c, s = math.cos(yaw), math.sin(yaw)
        return np.array([c * v_w[0] + s * v_w[1], -s * v_w[0] + c * v_w[1]])


__all__ = ["PurePursuit", "ray_free_distance", "surface_distance"]
