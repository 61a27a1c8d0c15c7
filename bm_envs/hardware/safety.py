"""Safety layer between any agent and the G1's motors: command filtering, state checks, damping, faults.

Pure numpy, no I/O: :class:`bm_envs.hardware.link.RobotLink` calls it for every command it publishes and every
state it receives. Units: rad, rad/s, N·m, N·m/rad, N·m·s/rad, s.

Command filter (:meth:`SafetyLayer.filter_command`), applied in this order to joint targets ``q*`` (29,):

1. non-finite or mis-shaped ``q*``/``kp``/``kd``/``tau``/``dq`` → :attr:`Fault.INVALID_COMMAND` (the caller damps);
2. ``kp ∈ [0, kp_max_scale·KP]``, ``kd ∈ [0, kd_max_scale·KD]``, ``|tau| ≤ torque limit``;
3. rate limit: ``|q*_t − q*_{t−1}| ≤ max_target_rate·dt`` (``dt`` = time since the previous target, at least
   one control period, so timing jitter does not clamp);
4. torque limit: with the latest measured ``q, q̇``, ``q*`` is clamped so that the PD torque
   ``tau + kp(q* − q) + kd(q̇* − q̇)`` stays within ``torque_limit_scale·TORQUE_LIMIT``;
5. joint limits, last so they always hold: ``q* ∈ [q_min + margin, q_max − margin]`` (limits from the MJCF).

Measured by walking the Stage-1 expert at 0.4 and 0.8 m/s in the sim (6 s): target changes ≤ 0.16 rad per 20 ms
step (8 rad/s), PD torque ≤ 41 % of the limit, |q̇| ≤ 8.9 rad/s, |ω| ≤ 1.2 rad/s. The defaults below do not
bind during such walking, so the filter changes nothing in nominal operation.

State checks (:meth:`SafetyLayer.check_state`): non-finite values, IMU out of range (quaternion norm outside
``1 ± quat_norm_tol``, ``|ω| > max_gyro``, ``|a| > max_acc``), tilt above ``max_tilt`` (a fall) and joint speed
above ``max_joint_velocity``. Damping command: ``kp = 0``, ``kd = damping_kd_scale·KD``, ``tau = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.hardware.messages import CommandFrame, StateFrame
from bm_envs.rotations import projected_gravity

N = g1.NUM_JOINTS


class Fault(str, Enum):  # noqa: UP042  (str() of a member stays "Fault.NAME")
    """Why the robot went to damping. Reported as ``info["hardware"]["fault"]`` (the value string)."""

    STALE_STATE = "stale_state"  # no new LowState for more than stale_periods control periods (robot/bridge gone)
    LATE_STATE = "late_state"  # LowState arriving, but later than stale_periods control periods (delayed)
    BAD_CRC = "bad_crc"
    NONFINITE_STATE = "nonfinite_state"
    INVALID_COMMAND = "invalid_command"  # NaN/inf or a wrong shape in a command
    IMU_OUT_OF_RANGE = "imu_out_of_range"
    TILT = "tilt"
    JOINT_VELOCITY = "joint_velocity"
    STATE_SOURCE = "state_source"  # the root-state source (mocap, estimator) failed or went stale
    AGENT_TIMEOUT = "agent_timeout"
    ESTOP = "estop"


class SafetyFault(RuntimeError):
    """The robot is in damping mode because of ``fault``; reset with ``options={"clear_fault": True}``."""

    def __init__(self, fault: Fault, detail: str = ""):
        self.fault, self.detail = fault, detail
        super().__init__(f"hardware fault {fault.value}: {detail} (robot in damping mode)")


@dataclass
class SafetyConfig:
    """Limits of the safety layer (defaults chosen not to bind during nominal walking; see the module doc)."""

    position_margin: float = 0.02  # rad kept inside each joint limit
    max_target_rate: float = 15.0  # rad/s, on the change of q* between commands
    torque_limit_scale: float = 1.0  # × g1.TORQUE_LIMIT
    kp_max_scale: float = 1.5  # × g1.KP
    kd_max_scale: float = 3.0  # × g1.KD
    max_joint_velocity: float = 20.0  # rad/s (fault above)
    max_gyro: float = 30.0  # rad/s (fault above)
    max_acc: float = 150.0  # m/s² (fault above, ~15 g)
    quat_norm_tol: float = 0.1
    max_tilt: float = 1.0  # rad between pelvis z and world z (fault above: the robot is falling)
    damping_kd_scale: float = 2.0  # × g1.KD in damping mode
    stale_periods: float = 3.0  # control periods without a new LowState before STALE_STATE
    max_delay_periods: float = 5.0  # control periods a LowState may arrive later than its tick implies (LATE_STATE)
    bad_crc_limit: int = 1  # bad-CRC LowStates that trip BAD_CRC (each one is also dropped and counted)

    def __post_init__(self):
        for name in ("position_margin", "max_target_rate", "torque_limit_scale", "kp_max_scale", "kd_max_scale",
                     "max_joint_velocity", "max_gyro", "max_acc", "quat_norm_tol", "max_tilt", "damping_kd_scale",
                     "stale_periods", "max_delay_periods"):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ValueError(f"SafetyConfig.{name} must be a finite number >= 0, got {v!r}")
        if not 0 < self.quat_norm_tol < 1:
            raise ValueError(f"SafetyConfig.quat_norm_tol must be in (0, 1), got {self.quat_norm_tol!r}")
        if self.stale_periods < 1:
            raise ValueError(f"SafetyConfig.stale_periods must be >= 1, got {self.stale_periods!r}")
        if not isinstance(self.bad_crc_limit, int) or self.bad_crc_limit < 1:
            raise ValueError(f"SafetyConfig.bad_crc_limit must be an integer >= 1, got {self.bad_crc_limit!r}")


class SafetyLayer:
    """Filters commands and checks states. ``q_min``/``q_max`` (29,) are the joint limits (rad); ``control_dt`` (s)
    is the shortest interval the rate limit assumes between two targets."""

    def __init__(self, config: SafetyConfig, q_min: np.ndarray, q_max: np.ndarray, control_dt: float = g1.CONTROL_DT):
        q_min, q_max = np.asarray(q_min, dtype=np.float64), np.asarray(q_max, dtype=np.float64)
        if q_min.shape != (N,) or q_max.shape != (N,) or np.any(q_max - q_min <= 2 * config.position_margin):
            raise ValueError(f"joint limits must be (29,) arrays with q_max - q_min > 2·margin, got {q_min}, {q_max}")
        self.cfg, self.control_dt = config, float(control_dt)
        self.lo, self.hi = q_min + config.position_margin, q_max - config.position_margin
        self.kp_max, self.kd_max = config.kp_max_scale * g1.KP, config.kd_max_scale * g1.KD
        self.tau_max = config.torque_limit_scale * g1.TORQUE_LIMIT
        self.clamp_counts = {"rate": 0, "position": 0, "torque": 0, "gains": 0}

    # ------------------------------------------------------------------ commands
    def filter_command(
        self, cmd: CommandFrame, prev_q: np.ndarray | None, dt: float, state: StateFrame | None
    ) -> tuple[CommandFrame, Fault | None]:
        """Return the command to publish and a fault (then the command must not be sent: use :meth:`damping`)."""
        for name in ("q", "kp", "kd", "tau", "dq"):
            a = np.asarray(getattr(cmd, name), dtype=np.float64)
            if a.shape != (N,) or not np.all(np.isfinite(a)):
                return cmd, Fault.INVALID_COMMAND
        kp, kd = np.clip(cmd.kp, 0.0, self.kp_max), np.clip(cmd.kd, 0.0, self.kd_max)
        tau = np.clip(cmd.tau, -self.tau_max, self.tau_max)
        self.clamp_counts["gains"] += int(np.sum(kp != cmd.kp) + np.sum(kd != cmd.kd) + np.sum(tau != cmd.tau))
        q = np.asarray(cmd.q, dtype=np.float64)
        if prev_q is not None:
            step = self.cfg.max_target_rate * max(float(dt), self.control_dt)
            q_r = np.clip(q, prev_q - step, prev_q + step)
            self.clamp_counts["rate"] += int(np.sum(q_r != q))
            q = q_r
        if state is not None:
            # |tau + kp(q* - q) + kd(dq* - dq)| <= tau_max, solved for q* where kp > 0
            rest = tau + kd * (cmd.dq - state.dq)
            safe_kp = np.where(kp > 1e-9, kp, 1.0)
            lo = np.where(kp > 1e-9, state.q + (-self.tau_max - rest) / safe_kp, -np.inf)
            hi = np.where(kp > 1e-9, state.q + (self.tau_max - rest) / safe_kp, np.inf)
            q_t = np.clip(q, lo, np.maximum(lo, hi))
            self.clamp_counts["torque"] += int(np.sum(q_t != q))
            q = q_t
        q_p = np.clip(q, self.lo, self.hi)
        self.clamp_counts["position"] += int(np.sum(q_p != q))
        q = q_p
        out = CommandFrame(q=q, kp=kp, kd=kd, dq=np.asarray(cmd.dq, float), tau=tau, mode=cmd.mode,
                           mode_machine=cmd.mode_machine, seq=cmd.seq, agent=cmd.agent)  # fmt: skip
        return out, None

    def damping(self, q: np.ndarray | None = None, mode_machine: int = 0, seq: int = 0) -> CommandFrame:
        """Damping command: zero stiffness, ``kd = damping_kd_scale·KD``, no feed-forward torque."""
        q = np.zeros(N) if q is None or not np.all(np.isfinite(q)) else np.asarray(q, dtype=np.float64)
        return CommandFrame(q=q.copy(), kp=np.zeros(N), kd=self.cfg.damping_kd_scale * g1.KD, mode_machine=mode_machine,
                            seq=seq, damping=True)  # fmt: skip

    # ------------------------------------------------------------------ states
    def check_state(self, st: StateFrame) -> tuple[Fault | None, str]:
        """Check one received LowState. Returns (fault or None, detail)."""
        for name in ("quat", "gyro", "acc", "q", "dq", "tau_est"):
            a = getattr(st, name)
            if not np.all(np.isfinite(a)):
                return Fault.NONFINITE_STATE, f"{name} has NaN/inf at {np.flatnonzero(~np.isfinite(a)).tolist()}"
        c = self.cfg
        qn = float(np.linalg.norm(st.quat))
        if abs(qn - 1.0) > c.quat_norm_tol:
            return Fault.IMU_OUT_OF_RANGE, f"|quaternion| = {qn:.3f}"
        if float(np.linalg.norm(st.gyro)) > c.max_gyro:
            return Fault.IMU_OUT_OF_RANGE, f"|gyro| = {np.linalg.norm(st.gyro):.1f} rad/s > {c.max_gyro}"
        if float(np.linalg.norm(st.acc)) > c.max_acc:
            return Fault.IMU_OUT_OF_RANGE, f"|acc| = {np.linalg.norm(st.acc):.1f} m/s² > {c.max_acc}"
        tilt = float(np.arccos(np.clip(-projected_gravity(st.quat / qn)[2], -1.0, 1.0)))
        if tilt > c.max_tilt:
            return Fault.TILT, f"tilt {tilt:.2f} rad > {c.max_tilt}"
        vmax = float(np.max(np.abs(st.dq)))
        if vmax > c.max_joint_velocity:
            j = int(np.argmax(np.abs(st.dq)))
            return Fault.JOINT_VELOCITY, f"{g1.JOINT_NAMES[j]} at {vmax:.1f} rad/s > {c.max_joint_velocity}"
        return None, ""
