"""Team policies for :class:`~bm_envs.multi.env.MultiG1Env`: one single-robot policy per robot.

Interface (shared with :mod:`bm_planner.multi_agent`): ``team.reset()`` at episode start and
``team.predict(observations, agents=None) -> actions`` with dicts keyed by agent: ``observations`` as the env
returned them (agents that just ended included: their last positions still matter to the others), one action out
for each of ``agents`` (default: every observation's agent; pass the env's live ``agents``).

:class:`ExpertTeam` is the baseline: each robot runs the Stage-1 locomotion expert steered by
:class:`~bm_envs.experts.command_laws.PurePursuit`. With ``avoid_robots`` the other robots enter each robot's obstacle rows
as vertical cylinders of ``robot_radius_m`` at their last seen pelvis positions (the law's "follow the gap"
avoidance then steers around them); without it, robots only avoid the static obstacles.
"""

from __future__ import annotations

import copy
from dataclasses import asdict

import numpy as np

from bm_envs.experts.command_laws import PurePursuit
from bm_envs.experts.locomotion import ExpertPolicy, LocomotionExpert

_CYLINDER = 3
ROBOT_HALF_HEIGHT_M = 0.65


def robot_rows(others_xy: np.ndarray, radius_m: float) -> np.ndarray:
    """Obstacle rows (M, 8) (format of :mod:`bm_envs.envs.obstacle`) for robots at planar positions (M, 2)."""
    xy = np.asarray(others_xy, dtype=np.float64).reshape(-1, 2)
    rows = np.zeros((len(xy), 8))
    rows[:, 0] = _CYLINDER
    rows[:, 1:3] = xy
    rows[:, 3] = ROBOT_HALF_HEIGHT_M
    rows[:, 4] = radius_m
    rows[:, 5] = ROBOT_HALF_HEIGHT_M
    return rows


class ExpertTeam:
    """One :class:`~bm_envs.experts.locomotion.ExpertPolicy` + :class:`PurePursuit` per robot (see the module docstring).

    Args: ``agents`` (the env's ``possible_agents``), ``expert`` (ONNX expert name), ``avoid_robots``,
    ``robot_radius_m`` (radius of the cylinder standing in for another robot, m), ``pursuit`` (PurePursuit fields;
    ``avoid_obstacles`` defaults to True).
    """

    def __init__(self, agents, expert: str = "fastsac", avoid_robots: bool = True, robot_radius_m: float = 0.3,
                 pursuit: dict | None = None):  # fmt: skip
        if not (np.isfinite(robot_radius_m) and robot_radius_m > 0):
            raise ValueError(f"robot_radius_m must be positive, got {robot_radius_m!r}")
        self.agents = list(agents)
        self.avoid_robots, self.robot_radius_m = bool(avoid_robots), float(robot_radius_m)
        kw = {"avoid_obstacles": True, **(pursuit or {})}
        shared = LocomotionExpert(expert)
        self.policies = {}
        for a in self.agents:
            ex = copy.copy(shared)  # shares the ONNX session; reset() gives it its own recurrent state
            ex.reset()
            self.policies[a] = ExpertPolicy(ex, PurePursuit(**kw))
        self.config = {"policy": "expert", "expert": expert, "avoid_robots": self.avoid_robots,
                       "robot_radius_m": self.robot_radius_m, "pursuit": asdict(PurePursuit(**kw))}  # fmt: skip
        self.reset()

    def reset(self) -> None:
        for p in self.policies.values():
            p.reset()
        self._last_xy: dict[str, np.ndarray] = {}

    def predict(self, observations: dict, agents=None) -> dict:
        for a, o in observations.items():
            self._last_xy[a] = np.asarray(o["root_pos_w"], dtype=np.float64)[:2]
        actions = {}
        for a in observations if agents is None else agents:
            o = observations[a]
            if a not in self.policies:
                raise ValueError(f"unknown agent {a!r}; this team drives {self.agents}")
            if self.avoid_robots:
                others = [xy for b, xy in self._last_xy.items() if b != a]
                rows = robot_rows(np.array(others), self.robot_radius_m)
                if "obstacles" in o:
                    rows = np.concatenate([np.asarray(o["obstacles"], dtype=np.float64), rows])
                o = {**o, "obstacles": rows}
            actions[a], _ = self.policies[a].predict(o)
        return actions
