"""Multi-robot scenarios: N G1s sharing one scene, each with its own start and goals, plus shared obstacles.

JSON format (distances m, angles rad, times s; ``examples/scenarios/swap-2.json``)::

    {"name": "swap-2", "env": "BM-G1-Multi-v0", "time_limit_s": 20.0, "goal_radius_m": 0.3,
     "start_noise": {"xy": 0.05, "yaw": 0.1}, "min_separation_m": 0.8,
     "agents": [{"start": {"xy": [-2.5, 0.0], "yaw": 0.0}, "waypoints": [[2.5, 0.0]]},
                {"start": {"xy": [2.5, 0.0], "yaw": 3.14159}, "waypoints": [[-2.5, 0.0]]}],
     "obstacles": [], "random_obstacles": null}

``obstacles`` / ``random_obstacles`` have the single-robot format (:mod:`bm_envs.scene.scenario`); random ones
are drawn once per episode for the whole scene and kept clear of every start and goal. Each agent's part is
validated as a single-robot scenario by :func:`bm_envs.scene.scenario.parse_scenario` (start in collision, goal inside
an obstacle, ... are rejected with the agent named): ``BM-G1-Obstacle-v0`` when the scene has obstacles, else
``BM-G1-Waypoint-v0`` — the single env whose observation and action spaces every agent gets
(:attr:`MultiScenario.agent_env`). Starts closer than ``min_separation_m`` (pelvis to pelvis) are rejected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bm_envs.scene.scenario import Obstacle, Scenario, ScenarioError, _check_keys, _num, _require, parse_scenario

ENV_ID = "BM-G1-Multi-v0"
MIN_AGENTS, MAX_AGENTS = 2, 8


@dataclass(frozen=True)
class MultiScenario:
    """A validated multi-robot scenario. ``agents[i]`` is agent i's single-robot :class:`Scenario` (its start,
    start noise, waypoints, goal radius, the shared fixed obstacles); ``random_obstacles`` is the shared spec."""

    name: str
    time_limit_s: float
    agents: tuple[Scenario, ...]
    agent_env: str  # "BM-G1-Waypoint-v0" | "BM-G1-Obstacle-v0"
    min_separation_m: float = 0.8
    source: dict | None = None

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def obstacles(self) -> tuple[Obstacle, ...]:
        return self.agents[0].obstacles

    @property
    def random_obstacles(self) -> dict | None:
        return self.agents[0].random_obstacles

    def sample_starts(self, rng: np.random.Generator) -> np.ndarray:
        """Start poses (N, 3) = (x, y, yaw) with each agent's start noise, drawn with ``rng`` in agent order."""
        out = np.empty((self.num_agents, 3))
        for i, sc in enumerate(self.agents):
            xy = np.array(sc.start_xy) + rng.uniform(-1, 1, 2) * sc.start_xy_noise
            out[i] = [xy[0], xy[1], sc.start_yaw + rng.uniform(-1, 1) * sc.start_yaw_noise]
        return out

    def sample_obstacles(self, rng: np.random.Generator) -> list[Obstacle]:
        """Fixed obstacles plus the random ones, kept clear of all starts and goals (one draw for the scene)."""
        if not self.random_obstacles or self.random_obstacles.get("count", 0) == 0:
            return list(self.obstacles)
        keep = [sc.start_xy for sc in self.agents] + [w for sc in self.agents for w in sc.waypoints]
        helper = Scenario(name=self.name, env=self.agent_env, time_limit_s=self.time_limit_s, start_xy=keep[0],
                          waypoints=tuple(keep[1:]), obstacles=self.obstacles,
                          random_obstacles=self.random_obstacles)  # fmt: skip
        return helper.sample_obstacles(rng, np.array(keep[0]))

    def to_dict(self) -> dict:
        return dict(self.source) if self.source is not None else {}


def parse_multi_scenario(d: Any, source: str = "scenario", base_dir: str | Path | None = None) -> MultiScenario:
    """Validate a multi-robot scenario dict (as loaded from JSON)."""
    allowed = {"name", "env", "time_limit_s", "goal_radius_m", "start_noise", "min_separation_m", "agents",
               "obstacles", "random_obstacles"}  # fmt: skip
    _check_keys(d, allowed, source)
    name = _require(d, "name", source)
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{source}.name: expected a non-empty string, got {name!r}")
    if d.get("env", ENV_ID) != ENV_ID:
        raise ScenarioError(f"{source}.env: expected {ENV_ID!r}, got {d.get('env')!r}")
    agents = _require(d, "agents", source)
    if not isinstance(agents, list) or not MIN_AGENTS <= len(agents) <= MAX_AGENTS:
        n = len(agents) if isinstance(agents, list) else agents
        raise ScenarioError(f"{source}.agents: expected a list of {MIN_AGENTS} to {MAX_AGENTS} agents, got {n!r}")
    noise = d.get("start_noise", {})
    _check_keys(noise, {"xy", "yaw"}, f"{source}.start_noise")
    sep = _num(d.get("min_separation_m", 0.8), f"{source}.min_separation_m", 0.0, 10.0)
    obstacles = d.get("obstacles", [])
    random_obstacles = d.get("random_obstacles")
    has_obstacles = bool(obstacles) or bool(random_obstacles and random_obstacles.get("count", 0))
    agent_env = "BM-G1-Obstacle-v0" if has_obstacles else "BM-G1-Waypoint-v0"
    parsed = []
    for i, a in enumerate(agents):
        where = f"{source}.agents[{i}]"
        _check_keys(a, {"start", "waypoints"}, where)
        start = dict(_require(a, "start", where))
        start.setdefault("xy_noise", noise.get("xy", 0.0))
        start.setdefault("yaw_noise", noise.get("yaw", 0.0))
        single = {"name": f"{name}/agent_{i}", "env": agent_env, "time_limit_s": _require(d, "time_limit_s", source),
                  "start": start, "waypoints": _require(a, "waypoints", where),
                  "goal_radius_m": d.get("goal_radius_m", 0.3), "obstacles": obstacles}  # fmt: skip
        if random_obstacles is not None:
            single["random_obstacles"] = random_obstacles
        parsed.append(parse_scenario(single, source=where, base_dir=base_dir))
    starts = np.array([sc.start_xy for sc in parsed])
    for i in range(len(parsed)):
        for j in range(i + 1, len(parsed)):
            dist = float(np.linalg.norm(starts[i] - starts[j]))
            if dist < sep:
                raise ScenarioError(f"{source}.agents[{i}] and [{j}]: starts {dist:.2f} m apart, "
                                    f"closer than min_separation_m = {sep}")  # fmt: skip
    return MultiScenario(name, parsed[0].time_limit_s, tuple(parsed), agent_env, sep, source=dict(d))


def load_multi_scenario(path: str | Path | dict | MultiScenario) -> MultiScenario:
    """From a JSON file path, a preset name (``"swap-2"`` … ``"swap-8"``), a dict or a :class:`MultiScenario`."""
    if isinstance(path, MultiScenario):
        return path
    if isinstance(path, dict):
        return parse_multi_scenario(path)
    if isinstance(path, str) and path.startswith("swap-") and path[5:].isdigit():
        return parse_multi_scenario(swap_scenario(int(path[5:])), source=path)
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {p} (presets: 'swap-2' … 'swap-8')") from None
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{p}: malformed JSON: {e}") from None
    return parse_multi_scenario(data, source=p.name, base_dir=p.resolve().parent)


def swap_scenario(
    n: int,
    radius_m: float = 2.5,
    time_limit_s: float = 20.0,
    xy_noise: float = 0.05,
    yaw_noise: float = 0.1,
    obstacles: list[dict] | None = None,
) -> dict:
    """The swap scenario as a dict: ``n`` robots on a circle of ``radius_m`` (a line for n = 2) facing its centre,
    each to reach the diametrically opposite point — for even ``n`` the start of the robot across, so all paths
    cross at the centre."""
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_AGENTS <= n <= MAX_AGENTS:
        raise ValueError(f"n must be an integer in [{MIN_AGENTS}, {MAX_AGENTS}], got {n!r}")
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise ValueError(f"radius_m must be positive, got {radius_m!r}")
    agents = []
    for i in range(n):
        a = 2 * math.pi * i / n + math.pi  # agent 0 starts at (-r, 0)
        x, y = radius_m * math.cos(a), radius_m * math.sin(a)
        r6 = lambda v: round(v, 6) + 0.0
        agents.append({"start": {"xy": [r6(x), r6(y)], "yaw": r6(math.atan2(-y, -x))},
                       "waypoints": [[r6(-x), r6(-y)]]})  # fmt: skip
    return {"name": f"swap-{n}", "env": ENV_ID, "time_limit_s": time_limit_s, "goal_radius_m": 0.3,
            "start_noise": {"xy": xy_noise, "yaw": yaw_noise}, "min_separation_m": 0.8, "agents": agents,
            "obstacles": list(obstacles or [])}  # fmt: skip
