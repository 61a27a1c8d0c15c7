"""The bm G1 task envs on the real robot (or the MuJoCo DDS bridge): same spaces, same info, same task logic.

:func:`make_hardware_env` builds ``G1Hardware<Task>Env(G1HardwareEnv, G1<Task>Env)``: the task env's code —
spaces, scenario, command schedule, goals, obstacles, rewards, ``info`` keys and the observation builder
(``G1BaseEnv._get_obs``) — runs unchanged on an ``MjData`` that mirrors the robot; only the backend differs:
``_simulate`` publishes a ``LowCmd_`` (through the safety layer) instead of stepping MuJoCo, waits for the next
control tick (50 Hz, wall clock) and copies the latest ``LowState_`` plus the :class:`StateSource`'s root state
into ``data`` followed by forward kinematics. ``info`` gains one key, ``"hardware"`` (link statistics, fault).

What is measured vs estimated (observation keys of :mod:`bm_envs.envs.base`):

========================================  =====================================================================
``proprio`` joints q, q̇                    measured (motor encoders, ``LowState_.motor_state``)
``proprio`` ang. velocity, gravity         measured (pelvis IMU gyro and orientation)
``proprio`` last action                    the env's own record
``root_pos_w``, ``root_lin_vel_w``         :class:`StateSource` (mocap / bridge odometry, or legged odometry)
``root_quat_w``                            StateSource (mocap) or IMU with its yaw re-zeroed (legged odometry)
``root_ang_vel_w``, ``body_*``, head z      forward kinematics of the above (MuJoCo, the same model as the sim)
task keys, collisions, clearance           the task env's code on the mirrored state
========================================  =====================================================================

Start-up (:meth:`reset`, as Unitree's examples): wait for ``LowState_`` (``state_timeout_s``), damping
(``damping_s``), ramp the PD targets from the measured pose to the default pose (``ramp_s``), hold it
(``hold_s``), then hand over to the agent. The scenario's start pose is where the robot is meant to stand; its
random start offsets are drawn (and passed to the state source) so that the task's random stream matches the sim.

E-stop: ``env.estop()`` from any thread, or the signal ``SIGUSR1`` to the process (``kill -USR1 <pid>``; installed
when the env is built in the main thread, ``HardwareConfig.estop_signal``). Either latches damping
(``kp = 0``, ``kd = 2·KD``, re-sent every control period) like any other fault. A fault makes the step that
observes it return ``terminated=True`` with ``info["hardware"]["fault"]`` set (or raise :class:`SafetyFault` with
``on_fault="raise"``); the next ``step`` raises :class:`SafetyFault`; ``reset(options={"clear_fault": True})``
re-arms after a person has checked the robot. NaN/inf or mis-shaped actions switch to damping, then raise
``ValueError`` as the sim env does. Scenario pushes and the sim-only wrappers do not apply on hardware.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.hardware.estimator import KinematicOdometry, StateSource, StateSourceError
from bm_envs.hardware.link import LinkConfig, RobotLink
from bm_envs.hardware.messages import CommandFrame, StateFrame
from bm_envs.hardware.safety import Fault, SafetyConfig, SafetyFault, SafetyLayer
from bm_envs.hardware.sdk import init_channels
from bm_envs.make import _env_class
from bm_envs.rotations import yaw_from_quat

log = logging.getLogger("bm_envs.hardware")


@dataclass
class HardwareConfig:
    """Connection and start-up settings. ``interface`` and ``domain_id`` have no defaults on purpose."""

    interface: str
    domain_id: int
    link: LinkConfig = field(default_factory=LinkConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    state_timeout_s: float = 5.0
    damping_s: float = 0.5
    ramp_s: float = 2.0
    hold_s: float = 0.5
    on_fault: str = "terminate"
    estop_signal: int | None = signal.SIGUSR1

    def __post_init__(self):
        for name in ("state_timeout_s", "damping_s", "ramp_s", "hold_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ValueError(f"HardwareConfig.{name} must be a finite number >= 0, got {v!r}")
        if self.state_timeout_s <= 0:
            raise ValueError(f"HardwareConfig.state_timeout_s must be > 0, got {self.state_timeout_s!r}")
        if self.on_fault not in ("terminate", "raise"):
            raise ValueError(f"HardwareConfig.on_fault must be 'terminate' or 'raise', got {self.on_fault!r}")


def _shutdown(link: RobotLink, source: StateSource) -> None:
    link.close()
    source.close()


class G1HardwareEnv:
    """Backend mixin over a bm task env (see the module doc). Build with :func:`make_hardware_env`."""

    def __init__(self, *, hardware: HardwareConfig, state_source: StateSource | None = None, **task_kwargs):
        if not isinstance(hardware, HardwareConfig):
            raise TypeError(f"hardware must be a HardwareConfig, got {type(hardware).__name__}")
        super().__init__(**task_kwargs)
        if self.scenario.push_interval_s is not None:
            log.warning("scenario %r has pushes; they are ignored on hardware", self.scenario.name)
        self.hw = hardware
        jr = self.model.jnt_range[[self.model.joint(n).id for n in g1.JOINT_NAMES]]
        self.safety = SafetyLayer(hardware.safety, jr[:, 0], jr[:, 1], hardware.link.control_dt)
        sdk = init_channels(hardware.domain_id, hardware.interface)
        self.link = RobotLink(sdk, hardware.link, self.safety)
        self.state_source = state_source if state_source is not None else KinematicOdometry()
        self.state_source.start(sdk, self.model, self.idx)
        self._finalizer = weakref.finalize(self, _shutdown, self.link, self.state_source)
        self._ready = False
        self._fault_reported = False
        self._overruns = 0
        self._prev_handler = None
        if hardware.estop_signal is not None and threading.current_thread() is threading.main_thread():
            link = self.link
            self._prev_handler = signal.signal(
                hardware.estop_signal, lambda *_: link.trip(Fault.ESTOP, "e-stop signal")
            )

    # ------------------------------------------------------------------ safety API
    def estop(self, reason: str = "estop() called") -> None:
        """Emergency stop: latch damping now (thread-safe)."""
        self.link.trip(Fault.ESTOP, reason)

    @property
    def fault(self) -> Fault | None:
        return self.link.fault

    def _raise_fault(self) -> None:
        raise SafetyFault(self.link.fault, self.link.fault_detail)

    # ------------------------------------------------------------------ start-up
    def _run_phase(self, duration: float, target=None) -> None:
        """Send damping (``target=None``) or PD targets ``target(alpha)`` at the control rate for ``duration`` s."""
        dt = self.hw.link.control_dt
        t0 = time.monotonic()
        k = 0
        while True:
            alpha = min(1.0, (time.monotonic() - t0) / duration) if duration > 0 else 1.0
            if target is None:
                self.link.send_damping()
            else:
                self.link.send(CommandFrame(q=target(alpha), kp=g1.KP.copy(), kd=g1.KD.copy()))
            if self.link.fault is not None:
                self._raise_fault()
            k += 1
            if time.monotonic() - t0 >= duration:
                return
            self.link.wait(t0 + k * dt)

    def _startup(self) -> StateFrame:
        cfg = self.hw
        self.link.reset_counters()
        self.link.armed = True
        frame = self.link.wait_for_state(cfg.state_timeout_s)
        if self.link.fault is not None:
            self._raise_fault()
        if frame is None:
            raise TimeoutError(
                f"no valid LowState on {cfg.link.lowstate_topic!r} within {cfg.state_timeout_s} s (domain "
                f"{cfg.domain_id}, interface {cfg.interface!r}): is the robot (or bridge) running and reachable?"
            )
        self._run_phase(cfg.damping_s)
        q0 = self.link.latest.q.copy()
        goal = self.default_joint_pos + self.joint_offset
        self._run_phase(cfg.ramp_s, lambda a: q0 + a * (goal - q0))
        self._run_phase(cfg.hold_s, lambda a: goal)
        return self.link.latest

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        if self.link.fault is not None:
            if not options.get("clear_fault"):
                raise SafetyFault(self.link.fault, "reset(options={'clear_fault': True}) re-arms after a check")
            self.link.clear_fault()
        self._fault_reported = False
        self._ready = False
        self.link.active = False
        gym.Env.reset(self, seed=seed)
        sc, rng = self.scenario, self.np_random
        start_xy = np.array(sc.start_xy) + rng.uniform(-1, 1, 2) * sc.start_xy_noise  # same draws as the sim env
        start_yaw = float(sc.start_yaw + rng.uniform(-1, 1) * sc.start_yaw_noise)
        frame = self._startup()
        self.state_source.reset(frame, start_xy, start_yaw)
        self._target = self.default_joint_pos + self.joint_offset
        self._pending.clear()
        self._last_action[:] = 0.0
        self._steps = self._physics_steps = self._push_count = 0
        self._next_push_t = np.inf
        self._mirror(frame)
        if self.link.fault is not None:
            self._raise_fault()
        self._task_reset(self.data.qpos[:2].copy(), float(yaw_from_quat(self.data.qpos[3:7])))
        self._deadline = time.monotonic()
        self.link.arm_agent()
        self._ready = True
        info = self._base_info()
        info["hardware"] = self._hw_info()
        return self._get_obs(), info

    def step(self, action):
        if self._fault_reported:
            self._raise_fault()
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        obs, reward, terminated, truncated, info = super().step(action)
        info["hardware"] = self._hw_info()
        if self.link.fault is not None:
            self._fault_reported = True
            if self.hw.on_fault == "raise":
                self._raise_fault()
            terminated = True
        if terminated or truncated:
            self.link.active = False  # the robot holds the last target; the agent watchdog is off until reset
        return obs, reward, terminated, truncated, info

    def _check_action(self, action) -> np.ndarray:
        try:
            return super()._check_action(action)
        except ValueError as e:
            self.link.trip(Fault.INVALID_COMMAND, str(e))
            self._fault_reported = True
            raise ValueError(f"{e} (robot switched to damping)") from None

    # ------------------------------------------------------------------ backend
    def _simulate(self, n: int) -> None:
        """Publish the current target, wait for the next control tick, mirror the latest robot state."""
        while self._pending:
            self._target = self._pending.popleft()[1]  # real latency replaces the sim's artificial one
        self.link.send(CommandFrame(q=self._target.copy(), kp=g1.KP.copy(), kd=g1.KD.copy()), agent=True)
        dt = n * g1.PHYSICS_DT
        self._deadline += dt
        now = time.monotonic()
        if now > self._deadline + dt:  # the agent took longer than a control period: resynchronize
            self._overruns += 1
            self._deadline = now
        self.link.wait(self._deadline)
        if self.link.fault is None:
            self._mirror(self.link.latest)
        self._physics_steps += n

    def _mirror(self, frame: StateFrame) -> None:
        """Copy ``frame`` and the state source's root state into ``self.data``; run forward kinematics."""
        try:
            root = self.state_source.update(frame)
        except StateSourceError as e:
            self.link.trip(Fault.STATE_SOURCE, str(e))
            return
        m, d = self.model, self.data
        d.qpos[:3], d.qpos[3:7] = root.pos_w, root.quat_w
        d.qpos[self.idx.qpos_joint] = frame.q
        d.qvel[:3], d.qvel[3:6] = root.lin_vel_w, frame.gyro
        d.qvel[self.idx.qvel_joint] = frame.dq
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)
        if len(getattr(self, "_obst_geoms", ())):
            mujoco.mj_collision(m, d)

    def apply_push(self, lin_vel_w, ang_vel_b=None) -> None:
        raise NotImplementedError("pushes are a simulation feature; the hardware env cannot push the robot")

    def _hw_info(self) -> dict[str, Any]:
        s = self.link.stats()
        s["overruns"] = self._overruns
        s["state_source"] = type(self.state_source).__name__
        return s

    def close(self):
        if self._prev_handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(self.hw.estop_signal, self._prev_handler)
            self._prev_handler = None
        self._finalizer()
        super().close()


_CLASSES: dict[str, type] = {}


def make_hardware_env(
    task: str,
    *,
    interface: str,
    domain_id: int,
    state_source: StateSource | None = None,
    hardware: dict | HardwareConfig | None = None,
    **task_kwargs,
) -> G1HardwareEnv:
    """The hardware twin of ``gym.make("BM-G1-<Task>-v0", **task_kwargs)`` for ``task`` in joystick/waypoint/obstacle.

    ``interface`` (e.g. ``"eth0"``, ``"lo"`` for the bridge) and ``domain_id`` are required; ``hardware`` holds the
    other :class:`HardwareConfig` fields (a dict or a config). Opens DDS endpoints on construction.
    """
    sim_only = sorted(set(task_kwargs) & {"randomize", "latency_ms", "obs_noise"})
    if sim_only:
        raise ValueError(f"{sim_only} are simulation wrappers; the hardware env has real latency and noise")
    base = _env_class(task)
    if task not in _CLASSES:
        _CLASSES[task] = type(f"G1Hardware{base.__name__[2:]}", (G1HardwareEnv, base), {"__module__": __name__})
    if isinstance(hardware, HardwareConfig):
        cfg = hardware
        if (cfg.interface, cfg.domain_id) != (interface, domain_id):
            raise ValueError(
                f"hardware config names {cfg.interface!r}/{cfg.domain_id}, arguments {interface!r}/{domain_id}"
            )
    else:
        cfg = HardwareConfig(interface=interface, domain_id=domain_id, **(hardware or {}))
    return _CLASSES[task](hardware=cfg, state_source=state_source, **task_kwargs)
