"""Shared machinery of the bm G1 task envs: physics, PD control, action latency, observation, falls, rendering.

Timing: physics ``dt = 0.002 s``; one env step = ``DECIMATION = 10`` physics steps (50 Hz control). PD runs at
physics rate inside MuJoCo (see :mod:`bm_envs.scene.builder`).

Action (``Box(29,)``, Unitree joint order): normalized joint-position offsets,
``q_target = DEFAULT_JOINT_POS + 0.25·action`` (rad). Bounds are the joint limits expressed in action units;
out-of-range actions are clipped to the space, NaN/inf or mis-shaped ones raise ``ValueError``.

Observation (``Dict``; all float32; ``_w`` world frame, ``_b`` pelvis frame):

=================  ==========  ============================================================================
key                shape       content
=================  ==========  ============================================================================
``proprio``        (93,)       base angular velocity_b (rad/s, 3), projected gravity_b (3), joint positions
                               (rad, 29), joint velocities (rad/s, 29), last action (29): the schema of
                               :mod:`bm_envs.observation` (``PROPRIO_SLICES``, ``proprio_part``)
``root_pos_w``     (3,)        pelvis position (m)
``root_quat_w``    (4,)        pelvis orientation, quaternion wxyz
``root_lin_vel_w`` (3,)        pelvis linear velocity (m/s)
``root_ang_vel_w`` (3,)        pelvis angular velocity (rad/s)
``body_pos_w``     (32, 3)     positions of the bodies in ``g1_constants.BODY_NAMES`` (m)
``body_lin_vel_w`` (32, 3)     linear velocities of those bodies' origins (m/s)
task keys          see env     command / goals / obstacles (defined by each task env)
=================  ==========  ============================================================================

Episode end: ``terminated`` on a fall (head below 0.2 m or pelvis below 0.35 m) and, in task envs, on success
or collision where the task says so; ``truncated`` at the scenario's time limit.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from bm_envs import g1_constants as g1
from bm_envs.kinematics import point_lin_vel_w
from bm_envs.observation import PROPRIO_DIM, make_proprio
from bm_envs.rotations import quat_from_yaw, yaw_from_quat
from bm_envs.scene.builder import build_model
from bm_envs.scene.render import SceneRenderer
from bm_envs.scene.scenario import Scenario, ScenarioError, load_scenario

_F32_INF = np.float32(np.inf)


def _box(*shape: int) -> spaces.Box:
    return spaces.Box(-_F32_INF, _F32_INF, shape=shape, dtype=np.float32)


def _fast_index(ids: np.ndarray) -> slice | np.ndarray:
    """``ids`` as a slice when they are consecutive (a view instead of a fancy-indexed copy), else unchanged."""
    ids = np.asarray(ids)
    if len(ids) and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        return slice(int(ids[0]), int(ids[0]) + len(ids))
    return ids


def _yaw(w: float, x: float, y: float, z: float) -> float:
    """Scalar :func:`~bm_envs.rotations.yaw_from_quat` (same formula), for the per-step state."""
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def body_lin_vel_w(data: mujoco.MjData, body_sel, root_body: int) -> np.ndarray:
    """World linear velocity (K, 3) m/s of the origins of bodies ``body_sel`` (index or slice), from MuJoCo's
    com-based ``cvel`` of the kinematic tree rooted at ``root_body`` (call after ``mj_comVel``)."""
    return point_lin_vel_w(data.cvel[body_sel], data.xpos[body_sel], data.subtree_com[root_body])


def _projected_gravity(q: np.ndarray) -> np.ndarray:
    """:func:`~bm_envs.rotations.projected_gravity` of one wxyz quaternion (3,), without the generic 3×3
    matrix and einsum: minus the third row of its rotation matrix (same floating-point ops, per-step hot path)."""
    w, x, y, z = q
    return np.array([-(2 * (x * z - w * y)), -(2 * (y * z + w * x)), -(1 - 2 * (x * x + y * y))])


class G1BaseEnv(gym.Env):
    """Base class of the bm G1 envs. Subclasses define the task (see :meth:`_task_spaces` and friends)."""

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": int(round(1 / g1.CONTROL_DT))}
    default_scenario: dict[str, Any] = {}
    #: ids of the envs whose scenarios this env can run (a scenario for another task is rejected)
    scenario_envs: tuple[str, ...] = ()

    def __init__(
        self,
        scenario: str | dict | Scenario | None = None,
        time_limit_s: float | None = None,
        render_mode: str | None = None,
        width: int = 640,
        height: int = 480,
    ):
        sc = load_scenario(scenario if scenario is not None else dict(self.default_scenario))
        if self.scenario_envs and sc.env not in self.scenario_envs:
            raise ScenarioError(
                f"scenario {sc.name!r}: env {sc.env!r} does not match {type(self).__name__} {self.scenario_envs}"
            )
        if time_limit_s is not None:
            if not np.isfinite(time_limit_s) or time_limit_s <= 0:
                raise ValueError(f"time_limit_s must be a positive number, got {time_limit_s!r}")
            sc = Scenario(**{**sc.__dict__, "time_limit_s": float(time_limit_s)})
        self.scenario = sc
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self._width, self._height = width, height

        # rendering envs draw lower-poly visual meshes (same physics; bm_envs.scene.visual_meshes)
        self.model, self.idx = build_model(simplified_visuals=render_mode is not None, obstacles=sc.obstacles)
        self.data = mujoco.MjData(self.model)
        # per-step hot path: index with slices where the ids are consecutive; one root body for all tracked bodies
        self._qpos_sel, self._qvel_sel = _fast_index(self.idx.qpos_joint), _fast_index(self.idx.qvel_joint)
        self._body_sel = _fast_index(self.idx.body)
        roots = self.model.body_rootid[self.idx.body]
        self._body_root = int(roots[0]) if np.all(roots == roots[0]) else roots
        self._nominal = {
            "gainprm": self.model.actuator_gainprm.copy(),
            "biasprm": self.model.actuator_biasprm.copy(),
        }
        self.max_steps = int(round(sc.time_limit_s / g1.CONTROL_DT))
        self.default_joint_pos = g1.DEFAULT_JOINT_POS.copy()  # the DR wrapper may offset it per episode
        self.joint_offset = np.zeros(g1.NUM_JOINTS)
        jr = self.model.jnt_range[[self.model.joint(n).id for n in g1.JOINT_NAMES]]
        self._joint_range = jr.copy()  # (29, 2) rad, Unitree order
        low = (jr[:, 0] - g1.DEFAULT_JOINT_POS) / g1.ACTION_SCALE
        high = (jr[:, 1] - g1.DEFAULT_JOINT_POS) / g1.ACTION_SCALE
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {
                "proprio": _box(PROPRIO_DIM),
                "root_pos_w": _box(3),
                "root_quat_w": spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32),
                "root_lin_vel_w": _box(3),
                "root_ang_vel_w": _box(3),
                "body_pos_w": _box(g1.NUM_BODIES, 3),
                "body_lin_vel_w": _box(g1.NUM_BODIES, 3),
                **self._task_spaces(),
            }
        )
        # action latency in physics steps (set per episode by ActionLatency); pending (apply_at, target) pairs
        self.action_delay_steps = 0
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._last_action = np.zeros(g1.NUM_JOINTS)
        self._steps = 0
        self._physics_steps = 0
        self._scene_renderer = SceneRenderer(self.model, self.data, render_mode, self._width, self._height)
        self._next_push_t = np.inf

    # ------------------------------------------------------------------ task hooks
    def _task_spaces(self) -> dict[str, spaces.Space]:
        return {}

    def _task_reset(self, start_xy: np.ndarray, start_yaw: float) -> None:
        pass

    def _task_obs(self) -> dict[str, np.ndarray]:
        return {}

    def _task_step(self, state: dict[str, np.ndarray]) -> tuple[dict[str, float], bool, dict[str, Any]]:
        """Return (unweighted reward terms, terminate_for_task, info extras) after a physics step."""
        return {}, False, {}

    def _reward_weights(self) -> dict[str, float]:
        return {}

    # ------------------------------------------------------------------ gym API
    #: ``reset(options=...)`` keys: ``joint_offset`` (29,) rad added to the default start pose (clipped to the joint
    #: limits), ``root_lin_vel`` (3,) m/s world and ``root_ang_vel`` (3,) rad/s pelvis frame initial velocities
    #: (start perturbations, e.g. for recovery data). Unknown keys are an error.
    RESET_OPTIONS = ("joint_offset", "root_lin_vel", "root_ang_vel")

    def _check_options(self, options: dict[str, Any] | None) -> dict[str, np.ndarray]:
        if options is None:
            return {}
        if not isinstance(options, dict):
            raise ValueError(f"reset options must be a dict, got {type(options).__name__}")
        unknown = sorted(set(options) - set(self.RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: {list(self.RESET_OPTIONS)}")
        out = {}
        for k, v in options.items():
            n = g1.NUM_JOINTS if k == "joint_offset" else 3
            a = np.asarray(v, dtype=np.float64)
            if a.shape != (n,) or not np.isfinite(a).all():
                raise ValueError(f"reset option {k!r} must be a finite ({n},) array, got {v!r}")
            out[k] = a
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        opts = self._check_options(options)
        super().reset(seed=seed)
        sc = self.scenario
        rng = self.np_random
        mujoco.mj_resetData(self.model, self.data)
        start_xy = np.array(sc.start_xy) + rng.uniform(-1, 1, 2) * sc.start_xy_noise
        start_yaw = float(sc.start_yaw + rng.uniform(-1, 1) * sc.start_yaw_noise)
        self.data.qpos[:3] = [start_xy[0], start_xy[1], self.idx.init_pelvis_height]
        self.data.qpos[3:7] = quat_from_yaw(start_yaw)
        q0 = g1.DEFAULT_JOINT_POS + opts.get("joint_offset", 0.0)
        self.data.qpos[self.idx.qpos_joint] = np.clip(q0, self._joint_range[:, 0], self._joint_range[:, 1])
        if "root_lin_vel" in opts:
            self.data.qvel[:3] = opts["root_lin_vel"]
        if "root_ang_vel" in opts:
            self.data.qvel[3:6] = opts["root_ang_vel"]
        self._target = self.default_joint_pos + self.joint_offset
        self.data.ctrl[:] = self._target
        self._pending.clear()
        self._last_action[:] = 0.0
        self._steps = 0
        self._physics_steps = 0
        self._push_count = 0
        self.push_times: list[float] = []  # episode times (s) of the pushes so far (scenario and randomization)
        self._schedule_push(first=True)
        self._task_reset(start_xy, start_yaw)
        mujoco.mj_forward(self.model, self.data)
        obs = self._get_obs()
        return obs, self._base_info()

    def step(self, action):
        a = self._check_action(action)
        prev_action = self._last_action
        target = self.default_joint_pos + self.joint_offset + g1.ACTION_SCALE * a
        self._pending.append((self._physics_steps + self.action_delay_steps, target))
        self._simulate(g1.DECIMATION)
        self._last_action = a
        self._steps += 1
        self._maybe_push()

        state = self._state()
        state["prev_action"] = prev_action
        fell = bool(state["head_z"] < g1.FALL_HEAD_HEIGHT or state["pelvis_z"] < g1.FALL_PELVIS_HEIGHT)
        terms, task_done, extras = self._task_step(state)
        terms["alive"] = 0.0 if fell else 1.0
        terms["action_rate"] = -float(np.sum(np.square(a - state["prev_action"])))
        w = self._reward_weights()
        reward = float(sum(w.get(k, 0.0) * v for k, v in terms.items()))
        terminated = fell or task_done
        truncated = (not terminated) and self._steps >= self.max_steps
        info = self._base_info(state["yaw"])
        info.update(extras)
        info["fell"] = fell
        info["reward_terms"] = terms
        obs = self._get_obs()
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------ state copies (branching rollouts)
    def get_sim_state(self) -> dict[str, Any]:
        """Everything that determines how this env evolves from now, given the same model and actions: MuJoCo's
        integration state (``mj_getState``, ``mjSTATE_INTEGRATION``: time, qpos, qvel, act, warm start, ctrl, applied
        forces, ...), the PD target, the queue of delayed targets, the last action, the step counters and the
        scenario's push timer. Not included: the model (its randomized parameters: restore into an env whose model
        matches, e.g. one reset with the same seed and wrappers), the env's and wrappers' random generators (future
        random draws differ), and a task's running metrics (the velocity-error averages restart)."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        phys = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, phys, spec)
        return {"physics": phys, "target": self._target.copy(), "pending": [(t, a.copy()) for t, a in self._pending],
                "last_action": self._last_action.copy(), "steps": self._steps, "physics_steps": self._physics_steps,
                "push_count": self._push_count, "push_times": list(self.push_times),
                "next_push_t": self._next_push_t, "action_delay_steps": self.action_delay_steps}  # fmt: skip

    def set_sim_state(self, state: dict[str, Any]) -> dict[str, np.ndarray]:
        """Restore a :meth:`get_sim_state` copy; returns the observation of the restored state."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        phys = np.asarray(state["physics"], dtype=np.float64)
        if phys.shape != (mujoco.mj_stateSize(self.model, spec),):
            raise ValueError(f"sim state of size {phys.shape} does not fit this model")
        mujoco.mj_setState(self.model, self.data, phys, spec)
        self._target = np.array(state["target"], dtype=np.float64)
        self._pending = deque((int(t), np.array(a)) for t, a in state["pending"])
        self._last_action = np.array(state["last_action"], dtype=np.float64)
        self._steps, self._physics_steps = int(state["steps"]), int(state["physics_steps"])
        self._push_count, self.action_delay_steps = int(state["push_count"]), int(state["action_delay_steps"])
        self.push_times, self._next_push_t = list(state["push_times"]), float(state["next_push_t"])
        # derived quantities (body poses, velocities, contacts) of the restored state; mj_forward leaves the
        # integration state (incl. the solver's warm start) untouched
        mujoco.mj_forward(self.model, self.data)
        self._task_sync()
        return self._get_obs()

    def _task_sync(self) -> None:
        """Hook: bring the task's state in line with a restored time (e.g. the command schedule)."""

    # ------------------------------------------------------------------ physics
    def _check_action(self, action) -> np.ndarray:
        raw = np.asarray(action)
        if raw.dtype.kind not in "fiu":  # complex (the imaginary part would be dropped), strings, objects, bools
            raise ValueError(f"action must be a real numeric array, got dtype {raw.dtype}")
        a = np.asarray(raw, dtype=np.float64)  # no copy for a float64 action (per-step hot path)
        if a.shape != (g1.NUM_JOINTS,):
            raise ValueError(f"action must have shape ({g1.NUM_JOINTS},), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action contains NaN or inf at indices {np.flatnonzero(~np.isfinite(a)).tolist()}")
        return np.minimum(np.maximum(a, self.action_space.low), self.action_space.high)  # = np.clip, faster

    def _simulate(self, n: int) -> None:
        """Advance ``n`` physics steps, switching PD targets when delayed actions arrive."""
        end = self._physics_steps + n
        while self._physics_steps < end:
            while self._pending and self._pending[0][0] <= self._physics_steps:
                self._target = self._pending.popleft()[1]
            nxt = self._pending[0][0] if self._pending else end
            k = min(nxt, end) - self._physics_steps
            self.data.ctrl[:] = self._target
            mujoco.mj_step(self.model, self.data, nstep=k)
            self._physics_steps += k
        # refresh positions/velocities of bodies for the post-step state (mj_step leaves them one step behind)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_comVel(self.model, self.data)

    def apply_push(self, lin_vel_w: np.ndarray, ang_vel_b: np.ndarray | None = None) -> None:
        """Instantaneous push: add ``lin_vel_w`` (m/s, world) and ``ang_vel_b`` (rad/s, pelvis) to the root."""
        self.data.qvel[:3] += np.asarray(lin_vel_w, dtype=np.float64)
        if ang_vel_b is not None:
            self.data.qvel[3:6] += np.asarray(ang_vel_b, dtype=np.float64)
        self._push_count += 1
        self.push_times.append(self.time)

    def _schedule_push(self, first: bool = False) -> None:
        iv = self.scenario.push_interval_s
        t = 0.0 if first else self.time
        self._next_push_t = np.inf if iv is None else t + float(self.np_random.uniform(*iv))

    def _maybe_push(self) -> None:
        if self.time + 1e-9 >= self._next_push_t:
            mag = float(self.np_random.uniform(*self.scenario.push_lin_vel_mps))
            ang = float(self.np_random.uniform(-np.pi, np.pi))
            self.apply_push(np.array([mag * np.cos(ang), mag * np.sin(ang), 0.0]))
            self._schedule_push()

    @property
    def time(self) -> float:
        """Episode time (s)."""
        return self._steps * g1.CONTROL_DT

    # ------------------------------------------------------------------ observation
    def _body_lin_vel_w(self) -> np.ndarray:
        return body_lin_vel_w(self.data, self._body_sel, self._body_root)

    def _state(self) -> dict[str, Any]:
        d = self.data
        return {
            "pelvis_z": d.qpos[2],
            "head_z": d.site_xpos[self.idx.head_site][2],
            "root_xy": d.qpos[:2].copy(),
            "yaw": _yaw(d.qpos[3], d.qpos[4], d.qpos[5], d.qpos[6]),
            "lin_vel_w": d.qvel[:3].copy(),
            "yaw_rate": float(d.qvel[5]),  # body-frame z rate; ≈ world yaw rate when upright
        }

    def _get_obs(self) -> dict[str, np.ndarray]:
        d = self.data
        quat = d.qpos[3:7]
        ang_vel_b = d.qvel[3:6]
        proprio = make_proprio(ang_vel_b, _projected_gravity(quat), d.qpos[self._qpos_sel], d.qvel[self._qvel_sel],
                               self._last_action)  # fmt: skip
        rot = d.xmat[self.idx.pelvis].reshape(3, 3)
        obs = {
            "proprio": proprio,
            "root_pos_w": d.qpos[:3],
            "root_quat_w": quat,
            "root_lin_vel_w": d.qvel[:3],
            "root_ang_vel_w": rot @ ang_vel_b,
            "body_pos_w": d.xpos[self._body_sel],
            "body_lin_vel_w": self._body_lin_vel_w(),
            **self._task_obs(),
        }
        return {k: np.asarray(v, dtype=np.float32) for k, v in obs.items()}

    def _base_info(self, yaw: float | None = None) -> dict[str, Any]:
        """Info common to all tasks; ``yaw`` (rad) is the current heading when the caller already has it."""
        if yaw is None:
            yaw = float(yaw_from_quat(self.data.qpos[3:7]))
        c, s = np.cos(yaw), np.sin(yaw)
        vx, vy = self.data.qvel[0], self.data.qvel[1]
        return {
            "time_s": self.time,
            "root_xy": self.data.qpos[:2].copy(),
            "root_yaw": yaw,
            "root_vel_b": np.array([c * vx + s * vy, -s * vx + c * vy]),  # = world_to_yaw_frame(v_xy, yaw)
            "action_delay_ms": self.action_delay_steps * g1.PHYSICS_DT * 1000.0,
            "pushes": self._push_count,
        }

    # ------------------------------------------------------------------ rendering
    def render(self):
        return self._scene_renderer.render([self.data.qpos[0], self.data.qpos[1], 0.6])

    def close(self):
        self._scene_renderer.close()
