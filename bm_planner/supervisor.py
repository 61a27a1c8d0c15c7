"""Safety supervisor: hands control to the Stage-1 expert when the planner's robot is about to fall, and back.

The planner's own out-of-distribution fallback holds the default pose, which on a walking robot is a fall. The
supervisor wraps a planner (a :class:`~bm_planner.agent.DiffusionAgent` or a runner of :mod:`bm_planner.runtime`)
behind the same ``predict(obs)`` and watches a **fall-risk signal** computed from the observation alone:

* torso tilt — the angle between the pelvis z axis and the world z axis, from ``root_quat_w`` — above
  ``max_tilt_rad``,
* roll/pitch rate — ``‖ω_xy‖`` of ``root_ang_vel_w`` (world frame) — above ``max_tilt_rate``,
* pelvis height below ``min_height_m``,
* the planner's own out-of-distribution flag (``info["ood"]`` after its last plan), when ``use_ood``.

When it fires, the expert (:class:`bm_envs.experts.locomotion.LocomotionExpert`) takes over with its gait phase matched to
the planner's last action (:meth:`LocomotionExpert.take_over`), following the command the planner was given
(``task_command``: the joystick command, or the pure-pursuit command toward the goal). It hands back after at
least ``min_expert_s`` once the robot has been stable (tilt below ``stable_tilt_rad`` and ‖ω_xy‖ below
``stable_tilt_rate``) for ``stable_s``. Throughout, the planner's history keeps receiving every observation and
every executed action (the expert's too), and its next plan starts cold.

``info`` (``supervisor.info``): the planner's info plus ``on_expert`` (now), ``handovers`` (this episode),
``expert_steps``, ``steps``, ``risk`` (which signal fired last: ``tilt``, ``tilt_rate``, ``height``, ``ood``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.config_dict import from_dict


@dataclass
class SupervisorConfig:
    """Thresholds of the fall-risk signal (rad, rad/s, m) and of the hand-back (s). The defaults fire in 0.04 % of
    the steps and in 12.7 % of the 20 s episodes of expert rollouts under the ``expert`` profile with OU σ 0.2 that
    did not fall, and 0.56 s (median) before each of those that did (``tools/supervisor_calibration.py``)."""

    max_tilt_rad: float = 0.3
    max_tilt_rate: float = 2.0
    min_height_m: float = 0.55
    use_ood: bool = True
    min_expert_s: float = 1.0
    stable_s: float = 0.5
    stable_tilt_rad: float = 0.12
    stable_tilt_rate: float = 0.8

    def __post_init__(self):
        for k, v in asdict(self).items():
            if k != "use_ood" and not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"SupervisorConfig.{k} must be a finite number >= 0, got {v!r}")

    @classmethod
    def from_dict(cls, d: dict) -> SupervisorConfig:
        return from_dict(cls, d)


def tilt_angle(root_quat_w) -> np.ndarray:
    """Angle (rad) between the body z axis and the world z axis for quaternions (..., 4) (w, x, y, z)."""
    q = np.asarray(root_quat_w, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    zz = 1.0 - 2.0 * (q[..., 1] ** 2 + q[..., 2] ** 2)  # world z component of the body z axis
    return np.arccos(np.clip(zz, -1.0, 1.0))


def fall_risk(obs: dict, config: SupervisorConfig) -> str | None:
    """Which fall-risk signal ``obs`` raises (``"tilt"``, ``"tilt_rate"``, ``"height"``), or ``None``."""
    if float(tilt_angle(obs["root_quat_w"])) > config.max_tilt_rad:
        return "tilt"
    if float(np.linalg.norm(np.asarray(obs["root_ang_vel_w"], dtype=np.float64)[:2])) > config.max_tilt_rate:
        return "tilt_rate"
    if float(obs["root_pos_w"][2]) < config.min_height_m:
        return "height"
    return None


def is_stable(obs: dict, config: SupervisorConfig) -> bool:
    return (float(tilt_angle(obs["root_quat_w"])) < config.stable_tilt_rad
            and float(np.linalg.norm(np.asarray(obs["root_ang_vel_w"], dtype=np.float64)[:2])) < config.stable_tilt_rate)  # fmt: skip


class SafetySupervisor:
    """``predict(obs)`` of ``planner`` while the fall-risk signal is quiet, of the Stage-1 ``expert`` from when it
    fires until the robot is stable again (module docstring). ``planner``: a DiffusionAgent or a runner wrapping
    one (``planner.agent``); ``expert``: a :class:`~bm_envs.experts.locomotion.LocomotionExpert` or its name."""

    def __init__(self, planner, expert="fastsac", config: SupervisorConfig | dict | None = None):
        from bm_envs.experts.locomotion import LocomotionExpert

        self.planner = planner
        self.agent = getattr(planner, "agent", planner)
        self.expert = LocomotionExpert(expert) if isinstance(expert, str) else expert
        self.config = config if isinstance(config, SupervisorConfig) else SupervisorConfig.from_dict(config or {})
        self.reset()

    def reset(self) -> None:
        self.planner.reset()
        if hasattr(self.planner, "fallback"):
            self.planner.fallback = None
        self.expert.reset()
        self._on_expert = False
        self._expert_steps_now = 0
        self._stable_steps = 0
        self._last_action = np.zeros(g1.NUM_JOINTS, dtype=np.float32)
        self._sinfo = {"on_expert": False, "handovers": 0, "handbacks": 0, "expert_steps": 0, "steps": 0,
                       "risk": None}  # fmt: skip

    @property
    def info(self) -> dict:
        return {**getattr(self.planner, "info", {}), **self._sinfo}

    def set_obstacles(self, obstacles) -> None:
        self.planner.set_obstacles(obstacles)

    def set_seed(self, seed: int) -> None:
        if hasattr(self.planner, "set_seed"):
            self.planner.set_seed(seed)

    def _command(self, obs: dict) -> np.ndarray:
        cmd = self.agent.task_command(obs) if hasattr(self.agent, "task_command") else None
        if cmd is None and "command" in obs:
            cmd = obs["command"]
        return np.zeros(3) if cmd is None else np.asarray(cmd, dtype=np.float64)

    def _hand_over(self, obs: dict, risk: str) -> None:
        self._on_expert = True
        self._expert_steps_now = 0
        self._stable_steps = 0
        self._sinfo["handovers"] += 1
        self._sinfo["risk"] = risk
        self.expert.take_over(obs, self._command(obs), reference_action=self._last_action)

    def _hand_back(self) -> None:
        self._on_expert = False
        self._sinfo["handbacks"] += 1
        ag = self.agent
        ag._queue.clear()
        ag.planner.reset()  # the next plan starts cold from the (expert-driven) history
        ag.last_plan = None
        if hasattr(self.planner, "_current"):  # a runner: drop its stale plans; the expert drives until a new one
            self.planner._current, self.planner._pending = None, []  # is ready (the runner's fallback)
            self.planner._last_request = None
            cmd_of, expert = self._command, self.expert
            self.planner.fallback = lambda o: expert.act(o, cmd_of(o))

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        from bm_planner.agent import _check_obs

        obs = _check_obs(obs)
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        c = self.config
        self._sinfo["steps"] += 1
        if not self._on_expert:
            risk = fall_risk(obs, c)
            if risk is None and c.use_ood and self.agent.info.get("ood"):
                risk = "ood"
            if risk is not None:
                self._hand_over(obs, risk)
        elif (
            self._expert_steps_now * g1.CONTROL_DT >= c.min_expert_s
            and self._stable_steps * g1.CONTROL_DT >= c.stable_s
        ):
            self._hand_back()
        if self._on_expert:
            action = self.expert.act(obs, self._command(obs))
            self._expert_steps_now += 1
            self._sinfo["expert_steps"] += 1
            self._stable_steps = self._stable_steps + 1 if is_stable(obs, c) else 0
            self._feed_planner(obs, action)
        else:
            self.agent.info["ood"] = False
            action, _ = self.planner.predict(obs)
            if getattr(self.planner, "_current", True) is not None and getattr(self.planner, "fallback", None):
                self.planner.fallback = None  # the runner's first plan after the hand-back is running
        self._sinfo["on_expert"] = self._on_expert
        self._last_action = np.asarray(action, dtype=np.float32)
        return self._last_action, state

    def _feed_planner(self, obs: dict, action: np.ndarray) -> None:
        """Keep the planner's history current while the expert drives (observations and executed actions)."""
        ag = self.agent
        ag._obs.append(obs)
        ag._acts.append(np.asarray(action, dtype=np.float64))
        if hasattr(self.planner, "_t"):  # a runner counts control steps
            self.planner._t += 1


__all__ = ["SafetySupervisor", "SupervisorConfig", "fall_risk", "tilt_angle", "is_stable"]
