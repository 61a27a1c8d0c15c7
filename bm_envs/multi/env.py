"""``MultiG1Env``: a PettingZoo ``ParallelEnv`` with N G1s (2–8) sharing one MuJoCo scene, each with its own goals.

Agents ``robot_0`` … ``robot_{N-1}``. Each agent's observation and action spaces are those of the single-robot env
of the scenario (:attr:`~bm_envs.multi.scenario.MultiScenario.agent_env`: ``BM-G1-Waypoint-v0``, or
``BM-G1-Obstacle-v0`` when the scene has obstacles), with the same keys, shapes, dtypes and meaning, so a
single-robot policy (:class:`~bm_envs.experts.locomotion.ExpertPolicy`, :class:`~bm_planner.agent.DiffusionAgent`) drives one
robot unchanged. Timing, PD control and fall detection are the single env's (:mod:`bm_envs.envs.base`: 50 Hz control,
10 physics steps of 2 ms, ``q* = default + 0.25·a``; out-of-range actions are clipped, mis-shaped or non-finite ones
raise ``ValueError``). Action latency, pushes and domain randomization (gym wrappers) are not applied here.

Episode end, per agent:

* **fall** (head < 0.2 m or pelvis < 0.35 m): the agent terminates; PettingZoo drops it from ``agents``.
* **team done**: once every agent still running has reached all its goals, they all terminate.
* **contact** with another robot or an obstacle is counted and fails success; it also terminates the agents
  involved only with ``terminate_on_collision=True`` (default ``False``: terminating does not remove the body).
* **time limit**: the remaining agents are truncated.

A robot whose agent has ended stays in the scene holding the default pose (PD target = ``DEFAULT_JOINT_POS``), so
it is still an obstacle for the others.

``infos[agent]`` (every step): the single env's ``time_s``, ``root_xy``, ``root_yaw``, ``root_vel_b``, ``fell``,
``goals_reached``, ``dist_to_goal``, ``time_to_goal_s``, ``reward_terms``, plus

=============================  ==========================================================================
key                            meaning
=============================  ==========================================================================
``reached``                    the agent has reached all its goals (latched)
``robot_contact``              touching another robot now (this step)
``robot_collisions``           contact onsets with other robots so far (a pair counts again after it parts)
``obstacle_collisions``        contact onsets with obstacles so far
``collided``                   any robot or obstacle contact so far
``success``                    reached, no contact, no fall
``team_success``               every agent's ``success`` (final once the episode has ended)
``team_robot_collisions``      robot–robot contact onsets in the scene so far (each pair once per onset)
``team_obstacle_collisions``   robot–obstacle contact onsets so far
``team_falls``                 robots that fell so far
=============================  ==========================================================================

Rewards (per agent, unweighted terms in ``reward_terms``): the waypoint env's ``progress``, ``reached``,
``alive``, ``action_rate`` and ``collision`` (obstacle contact, −1), plus ``robot_collision`` (−1 while touching
another robot); weights :attr:`MultiG1Env.reward_weights`.

Seeding: ``reset(seed=s)`` draws start noise and random obstacles from a generator seeded with ``s``; the same
seed and actions give the same rollout. ``reset(options={"starts": [[x, y, yaw], ...]})`` places the robots
explicitly (one row per robot; m, rad).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

try:
    from pettingzoo import ParallelEnv
except ImportError as e:  # pragma: no cover
    raise ImportError("bm_envs.multi needs PettingZoo: pip install -e '.[multi]'") from e

from bm_envs import g1_constants as g1
from bm_envs.envs.base import _fast_index, _projected_gravity, body_lin_vel_w
from bm_envs.envs.obstacle import MAX_OBS_ROWS, G1ObstacleEnv, obstacle_rows
from bm_envs.multi.scenario import MAX_AGENTS, MIN_AGENTS, MultiScenario, load_multi_scenario, swap_scenario
from bm_envs.multi.scene import build_multi_model
from bm_envs.observation import make_proprio
from bm_envs.rotations import quat_from_yaw, world_to_yaw_frame, yaw_from_quat
from bm_envs.scene.builder import MAX_GOALS, place_goals, place_obstacles
from bm_envs.scene.render import SceneRenderer


@functools.cache
def single_env_spaces(env_id: str) -> tuple[spaces.Dict, spaces.Box]:
    """(observation_space, action_space) of one robot in single env ``env_id`` (built once per process)."""
    from bm_envs.make import _env_class

    task = {"BM-G1-Waypoint-v0": "waypoint", "BM-G1-Obstacle-v0": "obstacle"}[env_id]
    env = _env_class(task)()
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


class MultiG1Env(ParallelEnv):
    """N G1 robots in one scene (see the module docstring). Args: ``scenario`` (path, preset name ``"swap-N"``,
    dict or :class:`MultiScenario`; default: the swap scenario for ``num_robots``), ``num_robots`` (2–8, must
    match the scenario when both are given), ``time_limit_s``, ``terminate_on_collision``, ``render_mode``
    (``"rgb_array"`` | ``"human"``), ``width``/``height`` (rgb_array pixels)."""

    metadata = {
        "name": "bm_g1_multi_v0",
        "render_modes": ["rgb_array", "human"],
        "render_fps": int(round(1 / g1.CONTROL_DT)),
        "is_parallelizable": True,
    }
    reward_weights = {**G1ObstacleEnv.reward_weights, "robot_collision": 5.0}

    def __init__(
        self,
        scenario: str | dict | MultiScenario | None = None,
        num_robots: int | None = None,
        time_limit_s: float | None = None,
        terminate_on_collision: bool = False,
        render_mode: str | None = None,
        width: int = 640,
        height: int = 480,
    ):
        if num_robots is not None and (
            isinstance(num_robots, bool) or not isinstance(num_robots, (int, np.integer))
            or not MIN_AGENTS <= num_robots <= MAX_AGENTS
        ):  # fmt: skip
            raise ValueError(f"num_robots must be an integer in [{MIN_AGENTS}, {MAX_AGENTS}], got {num_robots!r}")
        sc = load_multi_scenario(scenario if scenario is not None else swap_scenario(int(num_robots or 2)))
        if num_robots is not None and sc.num_agents != num_robots:
            raise ValueError(f"scenario {sc.name!r} has {sc.num_agents} robots, but num_robots={num_robots}")
        if time_limit_s is not None:
            if not np.isfinite(time_limit_s) or time_limit_s <= 0:
                raise ValueError(f"time_limit_s must be a positive number, got {time_limit_s!r}")
            sc = MultiScenario(**{**sc.__dict__, "time_limit_s": float(time_limit_s)})
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.scenario = sc
        self.terminate_on_collision = bool(terminate_on_collision)
        self.render_mode = render_mode
        self._width, self._height = width, height
        self.max_steps = int(round(sc.time_limit_s / g1.CONTROL_DT))

        self.model, self.idx = build_multi_model(sc.num_agents, sc.obstacles)
        self.data = mujoco.MjData(self.model)
        self.possible_agents = [f"robot_{i}" for i in range(sc.num_agents)]
        self.agents: list[str] = []
        self._aid = {a: i for i, a in enumerate(self.possible_agents)}
        obs_space, act_space = single_env_spaces(sc.agent_env)
        self.observation_spaces = {a: copy.deepcopy(obs_space) for a in self.possible_agents}
        self.action_spaces = {a: copy.deepcopy(act_space) for a in self.possible_agents}
        self._low, self._high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
        self.state_space = spaces.Box(-np.inf, np.inf, shape=(self.model.nq + self.model.nv,), dtype=np.float32)
        self._with_obstacles = sc.agent_env == "BM-G1-Obstacle-v0"
        self._goals = [np.array(s.waypoints, dtype=np.float64).reshape(-1, 2) for s in sc.agents]
        for i, gl in enumerate(self._goals):
            if len(gl) > MAX_GOALS:
                raise ValueError(f"agent {i}: at most {MAX_GOALS} waypoints are supported, got {len(gl)}")
        self._sel = [
            (_fast_index(a.qpos_joint), _fast_index(a.qvel_joint), _fast_index(a.body)) for a in self.idx.agents
        ]
        self._np_random: np.random.Generator | None = None
        self._scene_renderer = SceneRenderer(self.model, self.data, render_mode, self._width, self._height,
                                             elevation=-35.0)  # fmt: skip
        self._steps = 0

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Dict:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[agent]

    def state(self) -> np.ndarray:
        """Global state: ``qpos`` and ``qvel`` of the whole scene (float32)."""
        return np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float32)

    @property
    def num_robots(self) -> int:
        return self.scenario.num_agents

    @property
    def time(self) -> float:
        """Episode time (s)."""
        return self._steps * g1.CONTROL_DT

    # ------------------------------------------------------------------ reset
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None or self._np_random is None:
            self._np_random, _ = seeding.np_random(seed)
        rng, sc, m, d = self._np_random, self.scenario, self.model, self.data
        starts = sc.sample_starts(rng)
        obstacles = sc.sample_obstacles(rng)[:MAX_OBS_ROWS]
        if options and options.get("starts") is not None:
            starts = np.asarray(options["starts"], dtype=np.float64)
            if starts.shape != (self.num_robots, 3) or not np.isfinite(starts).all():
                raise ValueError(f"options['starts'] must be finite with shape ({self.num_robots}, 3) = (x, y, yaw) "
                                 f"per robot, got {np.asarray(options['starts']).shape}")  # fmt: skip
        mujoco.mj_resetData(m, d)
        sets = place_obstacles(m, self.idx, obstacles)
        self._obst_geoms = np.concatenate(sets) if sets else np.zeros(0, dtype=int)
        self.obstacles = obstacles
        self._obst_rows = obstacle_rows(obstacles)
        for i, a in enumerate(self.idx.agents):
            x, y, yaw = starts[i]
            d.qpos[a.root_qpos : a.root_qpos + 3] = [x, y, self.idx.init_pelvis_height]
            d.qpos[a.root_qpos + 3 : a.root_qpos + 7] = quat_from_yaw(yaw)
            d.qpos[a.qpos_joint] = g1.DEFAULT_JOINT_POS
            d.ctrl[a.actuators] = g1.DEFAULT_JOINT_POS
            place_goals(m, self.idx.goal_index(i), self._goals[i], sc.agents[i].goal_radius_m)
        mujoco.mj_forward(m, d)
        n = self.num_robots
        self.agents = self.possible_agents[:]
        self._steps = 0
        self._last_action = np.zeros((n, g1.NUM_JOINTS))
        self._goal_index = np.zeros(n, dtype=int)
        self._dist = np.array([np.linalg.norm(self._goals[i][0] - starts[i, :2]) for i in range(n)])
        self._time_to_goal: list[float | None] = [None] * n
        self._fell = np.zeros(n, dtype=bool)
        self._robot_collisions = np.zeros(n, dtype=int)
        self._obstacle_collisions = np.zeros(n, dtype=int)
        self._team_robot_collisions = 0
        self._team_obstacle_collisions = 0
        self._pairs_prev: set[tuple[int, int]] = set()
        self._obst_prev: set[int] = set()
        self._robot_contact = np.zeros(n, dtype=bool)
        obs = {a: self._agent_obs(i) for i, a in enumerate(self.possible_agents)}
        infos = {a: self._agent_info(i) for i, a in enumerate(self.possible_agents)}
        if self._with_obstacles:
            for a in infos:
                infos[a]["obstacles"] = [o.to_dict() for o in obstacles]
        return obs, infos

    # ------------------------------------------------------------------ step
    def _check_actions(self, actions) -> dict[int, np.ndarray]:
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict agent -> action (29,), got {type(actions).__name__}")
        unknown = [a for a in actions if a not in self._aid]
        if unknown:
            raise ValueError(f"unknown agent(s) {unknown}; agents are {self.possible_agents}")
        done = [a for a in actions if a not in self.agents]
        if done:
            raise ValueError(f"agent(s) {done} are done (terminated or truncated); pass actions only for {self.agents}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"missing action(s) for live agent(s) {missing}")
        out = {}
        for agent, action in actions.items():
            a = np.asarray(action, dtype=np.float64)
            if a.shape != (g1.NUM_JOINTS,):
                raise ValueError(f"action of {agent} must have shape ({g1.NUM_JOINTS},), got {a.shape}")
            if not np.isfinite(a).all():
                bad = np.flatnonzero(~np.isfinite(a)).tolist()
                raise ValueError(f"action of {agent} contains NaN or inf at indices {bad}")
            out[self._aid[agent]] = np.minimum(np.maximum(a, self._low), self._high)
        return out

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("step() called with no live agents: call reset() first")
        acts = self._check_actions(actions)
        d = self.data
        prev_action = self._last_action.copy()
        for i, a in enumerate(self.idx.agents):
            target = g1.DEFAULT_JOINT_POS + g1.ACTION_SCALE * acts[i] if i in acts else g1.DEFAULT_JOINT_POS
            d.ctrl[a.actuators] = target
        for i, act in acts.items():
            self._last_action[i] = act
        pairs, obst_hits = self._simulate(g1.DECIMATION)
        self._steps += 1

        # contacts: count onsets (a pair / robot-obstacle contact absent in the previous step)
        new_pairs = pairs - self._pairs_prev
        self._team_robot_collisions += len(new_pairs)
        for i, j in new_pairs:
            self._robot_collisions[i] += 1
            self._robot_collisions[j] += 1
        new_obst = obst_hits - self._obst_prev
        self._team_obstacle_collisions += len(new_obst)
        for i in new_obst:
            self._obstacle_collisions[i] += 1
        self._pairs_prev, self._obst_prev = pairs, obst_hits
        self._robot_contact[:] = False
        for i, j in pairs:
            self._robot_contact[[i, j]] = True

        rewards, terms, terminations = {}, {}, {}
        for agent in self.agents:
            i = self._aid[agent]
            a = self.idx.agents[i]
            pelvis_z = d.qpos[a.root_qpos + 2]
            head_z = d.site_xpos[a.head_site][2]
            fell = bool(head_z < g1.FALL_HEAD_HEIGHT or pelvis_z < g1.FALL_PELVIS_HEIGHT)
            self._fell[i] |= fell
            t = self._goal_progress(i, d.qpos[a.root_qpos : a.root_qpos + 2])
            t["collision"] = -1.0 if i in obst_hits else 0.0
            t["robot_collision"] = -1.0 if self._robot_contact[i] else 0.0
            t["alive"] = 0.0 if fell else 1.0
            t["action_rate"] = -float(np.sum(np.square(self._last_action[i] - prev_action[i])))
            terms[agent] = t
            rewards[agent] = float(sum(self.reward_weights.get(k, 0.0) * v for k, v in t.items()))
            touched = bool(self._robot_contact[i] or i in obst_hits)
            terminations[agent] = fell or (self.terminate_on_collision and touched)
        running = [a for a in self.agents if not terminations[a]]
        if running and all(self._reached(self._aid[a]) for a in running):
            terminations.update(dict.fromkeys(running, True))
        truncations = {a: (not terminations[a]) and self._steps >= self.max_steps for a in self.agents}
        obs, infos = {}, {}
        for agent in self.agents:
            i = self._aid[agent]
            obs[agent] = self._agent_obs(i)
            infos[agent] = self._agent_info(i)
            infos[agent]["reward_terms"] = terms[agent]
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def _simulate(self, n: int) -> tuple[set[tuple[int, int]], set[int]]:
        """``n`` physics steps; returns the robot pairs in contact and the robots touching an obstacle (any step)."""
        m, d, owner = self.model, self.data, self.idx.geom_agent
        pairs: set[tuple[int, int]] = set()
        obst: set[int] = set()
        active_obst = self._obst_geoms
        for _ in range(n):
            mujoco.mj_step(m, d)
            if d.ncon:
                g = d.contact.geom[: d.ncon]
                own = owner[g]
                rr = (own[:, 0] >= 0) & (own[:, 1] >= 0) & (own[:, 0] != own[:, 1])
                if rr.any():
                    pairs.update((int(min(p)), int(max(p))) for p in own[rr])
                if len(active_obst):
                    hit = np.isin(g, active_obst)
                    ro = (hit[:, 0] & (own[:, 1] >= 0)) | (hit[:, 1] & (own[:, 0] >= 0))
                    if ro.any():
                        obst.update(int(max(p)) for p in own[ro])
        # refresh body positions/velocities for the post-step state (as G1BaseEnv._simulate)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)
        return pairs, obst

    def _reached(self, i: int) -> bool:
        return bool(self._goal_index[i] >= len(self._goals[i]))

    def _goal_progress(self, i: int, root_xy: np.ndarray) -> dict[str, float]:
        """The waypoint env's goal logic for agent ``i`` (see :mod:`bm_envs.envs.waypoint`)."""
        terms = {"progress": 0.0, "reached": 0.0}
        goals, radius = self._goals[i], self.scenario.agents[i].goal_radius_m
        if self._goal_index[i] < len(goals):
            dist = float(np.linalg.norm(goals[self._goal_index[i]] - root_xy))
            terms["progress"] = float(self._dist[i] - dist)
            self._dist[i] = dist
            if dist < radius:
                terms["reached"] = 1.0
                self._goal_index[i] += 1
                if self._goal_index[i] < len(goals):
                    self._dist[i] = float(np.linalg.norm(goals[self._goal_index[i]] - root_xy))
                else:
                    self._time_to_goal[i] = self.time
        return terms

    # ------------------------------------------------------------------ observation / info
    def _agent_obs(self, i: int) -> dict[str, np.ndarray]:
        """Robot ``i``'s observation, built exactly as ``G1BaseEnv._get_obs`` + the waypoint/obstacle task keys."""
        d, a = self.data, self.idx.agents[i]
        qsel, vsel, bsel = self._sel[i]
        quat = d.qpos[a.root_qpos + 3 : a.root_qpos + 7]
        ang_vel_b = d.qvel[a.root_qvel + 3 : a.root_qvel + 6]
        proprio = make_proprio(ang_vel_b, _projected_gravity(quat), d.qpos[qsel], d.qvel[vsel], self._last_action[i])
        rot = d.xmat[a.pelvis].reshape(3, 3)
        v = body_lin_vel_w(d, bsel, a.pelvis)
        goals, gi = self._goals[i], int(self._goal_index[i])
        wp = np.zeros((MAX_GOALS, 3))
        wp[: len(goals), :2] = goals
        wp[gi : len(goals), 2] = 1.0
        root = d.qpos[a.root_qpos : a.root_qpos + 3]
        if gi < len(goals):
            goal_b = world_to_yaw_frame(goals[gi] - root[:2], float(yaw_from_quat(quat)))
        else:
            goal_b = np.zeros(2)
        obs = {
            "proprio": proprio,
            "root_pos_w": root,
            "root_quat_w": quat,
            "root_lin_vel_w": d.qvel[a.root_qvel : a.root_qvel + 3],
            "root_ang_vel_w": rot @ ang_vel_b,
            "body_pos_w": d.xpos[bsel],
            "body_lin_vel_w": v,
            "goal_b": goal_b,
            "waypoints_w": wp,
            "goal_index": np.array([gi], dtype=np.float64),
        }
        if self._with_obstacles:
            obs["obstacles"] = self._obst_rows
        return {k: np.asarray(x, dtype=np.float32) for k, x in obs.items()}

    def _agent_info(self, i: int) -> dict[str, Any]:
        d, a = self.data, self.idx.agents[i]
        yaw = float(yaw_from_quat(d.qpos[a.root_qpos + 3 : a.root_qpos + 7]))
        c, s = np.cos(yaw), np.sin(yaw)
        vx, vy = d.qvel[a.root_qvel], d.qvel[a.root_qvel + 1]
        reached = self._reached(i)
        collided = bool(self._robot_collisions[i] or self._obstacle_collisions[i])
        succ = [
            self._reached(k) and not self._fell[k] and not (self._robot_collisions[k] or self._obstacle_collisions[k])
            for k in range(self.num_robots)
        ]
        return {
            "time_s": self.time,
            "root_xy": d.qpos[a.root_qpos : a.root_qpos + 2].copy(),
            "root_yaw": yaw,
            "root_vel_b": np.array([c * vx + s * vy, -s * vx + c * vy]),
            "fell": bool(self._fell[i]),
            "goals_reached": int(self._goal_index[i]),
            "dist_to_goal": 0.0 if reached else float(self._dist[i]),
            "time_to_goal_s": self._time_to_goal[i],
            "reached": reached,
            "robot_contact": bool(self._robot_contact[i]),
            "robot_collisions": int(self._robot_collisions[i]),
            "obstacle_collisions": int(self._obstacle_collisions[i]),
            "collided": collided,
            "success": bool(succ[i]),
            "team_success": bool(all(succ)),
            "team_robot_collisions": int(self._team_robot_collisions),
            "team_obstacle_collisions": int(self._team_obstacle_collisions),
            "team_falls": int(self._fell.sum()),
        }

    # ------------------------------------------------------------------ rendering
    def render(self):
        xy = np.array([self.data.qpos[a.root_qpos : a.root_qpos + 2] for a in self.idx.agents])
        spread = float(np.max(np.linalg.norm(xy - xy.mean(0), axis=1)))
        return self._scene_renderer.render([*xy.mean(0), 0.6], distance=max(4.0, 3.0 + 2.0 * spread))

    def close(self):
        self._scene_renderer.close()
