"""Root-state sources for the hardware env: what the G1 does not measure itself.

The robot measures (``LowState_``) its joint positions/velocities and, with the pelvis IMU, its orientation
(roll/pitch reliable, yaw drifting from an arbitrary origin) and angular velocity. It does *not* measure the pelvis
position or linear velocity in the world. A :class:`StateSource` supplies those (plus the heading it reports them
in) as a :class:`RootState`; everything else in the observation is derived from it by forward kinematics.

* :class:`OdometryTopicSource` — an external pose/velocity source (motion capture, as the paper used for the
  waypoint/obstacle tasks, or the MuJoCo bridge's ground truth) publishing ``nav_msgs/Odometry_`` on a DDS topic:
  ``pose`` = pelvis position (m) and orientation in the world frame, ``twist`` = pelvis linear (m/s) and angular
  (rad/s) velocity in the pelvis (child) frame, as ROS defines it.
* :class:`KinematicOdometry` — a simple legged-odometry estimator needing nothing external: orientation from the
  IMU (yaw re-zeroed to the scenario's start heading at reset), linear velocity ``v = −ṗ_foot`` of the lower foot
  (assumed in stance, i.e. not slipping) from forward kinematics of ``q, q̇`` and the gyro, position integrated
  from ``v`` (xy) and the stance foot's depth below the pelvis (z). It drifts (no correction); use it for the
  joystick task or short runs, and an external source for goal-reaching tasks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import mujoco
import numpy as np

from bm_envs.hardware.messages import StateFrame
from bm_envs.hardware.sdk import close_endpoint
from bm_envs.rotations import quat_from_yaw, quat_to_mat, yaw_from_quat
from bm_envs.scene.builder import SceneIndex


class StateSourceError(RuntimeError):
    """The source cannot provide a current root state (no data, stale data)."""


@dataclass
class RootState:
    """Pelvis pose and linear velocity in the world frame: ``pos_w`` (3,) m, ``quat_w`` (4,) wxyz, ``lin_vel_w`` (3,) m/s."""

    pos_w: np.ndarray
    quat_w: np.ndarray
    lin_vel_w: np.ndarray


class StateSource(Protocol):
    """Plug-in interface. ``start`` is called once by the env (DDS is initialized by then)."""

    def start(self, sdk, model: mujoco.MjModel, idx: SceneIndex) -> None: ...

    def reset(self, frame: StateFrame, start_xy: np.ndarray, start_yaw: float) -> None: ...

    def update(self, frame: StateFrame) -> RootState: ...

    def close(self) -> None: ...


def _yaw_corrected(quat: np.ndarray, yaw_offset: float) -> np.ndarray:
    """Rotate wxyz ``quat`` by ``yaw_offset`` about world z."""
    r = quat_from_yaw(yaw_offset)
    out = np.empty(4)
    mujoco.mju_mulQuat(out, r, np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat))
    return out


class OdometryTopicSource:
    """Root state from ``nav_msgs/Odometry_`` samples on DDS ``topic``; stale after ``max_age_s`` without one."""

    def __init__(self, topic: str = "rt/bm/odom", max_age_s: float = 0.1):
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"topic must be a non-empty string, got {topic!r}")
        if not 0 < max_age_s <= 5:
            raise ValueError(f"max_age_s must be in (0, 5], got {max_age_s!r}")
        self.topic, self.max_age_s = topic, max_age_s
        self._lock = threading.Lock()
        self._latest: tuple[float, RootState] | None = None
        self._sub = None
        self.received = 0
        self.rejected = 0

    def start(self, sdk, model, idx) -> None:
        self._sub = sdk.ChannelSubscriber(self.topic, sdk.Odometry_)
        self._sub.Init(self._on_msg, 0)

    def _on_msg(self, msg) -> None:
        t = time.monotonic()
        try:
            p, o = msg.pose.pose.position, msg.pose.pose.orientation
            lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
            pos = np.array([p.x, p.y, p.z])
            quat = np.array([o.w, o.x, o.y, o.z])  # ROS xyzw -> wxyz
            v_b = np.array([lin.x, lin.y, lin.z])
            ok = np.all(np.isfinite(pos)) and np.all(np.isfinite(v_b)) and abs(np.linalg.norm(quat) - 1) < 0.05
            _ = (ang.x, ang.y, ang.z)
        except Exception:  # noqa: BLE001 - a malformed sample is rejected, whatever is wrong with it
            ok = False
        with self._lock:
            self.received += 1
            if not ok:
                self.rejected += 1
                return
            quat = quat / np.linalg.norm(quat)
            self._latest = (t, RootState(pos, quat, quat_to_mat(quat) @ v_b))

    def reset(self, frame, start_xy, start_yaw) -> None:
        pass

    def update(self, frame: StateFrame) -> RootState:
        with self._lock:
            latest = self._latest
        if latest is None:
            raise StateSourceError(f"no valid Odometry_ received on {self.topic!r}")
        age = time.monotonic() - latest[0]
        if age > self.max_age_s:
            raise StateSourceError(f"last Odometry_ on {self.topic!r} is {age * 1e3:.0f} ms old")
        return latest[1]

    def close(self) -> None:
        if self._sub is not None:
            close_endpoint(self._sub)
            self._sub = None


class KinematicOdometry:
    """Legged odometry from ``LowState_`` alone (see the module doc for the method and its limits)."""

    FEET = ("left_foot_contact_point", "right_foot_contact_point")

    def __init__(self):
        self.model = None

    def start(self, sdk, model: mujoco.MjModel, idx: SceneIndex) -> None:
        self.model, self.idx = model, idx
        self.data = mujoco.MjData(model)
        self.feet = [model.body(n).id for n in self.FEET]
        self._vel = np.zeros(6)

    def _feet(self, frame: StateFrame, quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Foot positions relative to the pelvis (world-aligned, (2, 3) m) and their velocities for a fixed pelvis."""
        m, d = self.model, self.data
        d.qpos[:3] = 0.0
        d.qpos[3:7] = quat
        d.qpos[self.idx.qpos_joint] = frame.q
        d.qvel[:] = 0.0
        d.qvel[3:6] = frame.gyro
        d.qvel[self.idx.qvel_joint] = frame.dq
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)
        vel = np.empty((2, 3))
        for i, b in enumerate(self.feet):
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, b, self._vel, 0)
            vel[i] = self._vel[3:]
        return d.xpos[self.feet].copy(), vel

    def reset(self, frame: StateFrame, start_xy: np.ndarray, start_yaw: float) -> None:
        if self.model is None:
            raise RuntimeError("KinematicOdometry.start() was not called")
        self.yaw_offset = float(start_yaw - yaw_from_quat(frame.quat / np.linalg.norm(frame.quat)))
        quat = _yaw_corrected(frame.quat, self.yaw_offset)
        feet, _ = self._feet(frame, quat)
        self.pos = np.array([start_xy[0], start_xy[1], -feet[:, 2].min()])
        self.tick = frame.tick

    def update(self, frame: StateFrame) -> RootState:
        quat = _yaw_corrected(frame.quat, self.yaw_offset)
        feet, vel = self._feet(frame, quat)
        stance = int(np.argmin(feet[:, 2]))
        v = -vel[stance]
        dt = ((frame.tick - self.tick) & 0xFFFFFFFF) * 1e-3
        self.tick = frame.tick
        if 0 < dt < 0.5:
            self.pos[:2] += v[:2] * dt
        self.pos[2] = -feet[stance, 2]
        return RootState(self.pos.copy(), quat, v)

    def close(self) -> None:
        pass


def odometry_msg(
    sdk, pos_w: np.ndarray, quat_w: np.ndarray, lin_vel_w: np.ndarray, ang_vel_b: np.ndarray, stamp: float
):
    """``nav_msgs/Odometry_`` for a pelvis state (the bridge's ground truth; a mocap driver would do the same)."""
    msg = sdk.default_odometry()
    msg.header.frame_id, msg.child_frame_id = "world", "pelvis"
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int((stamp % 1.0) * 1e9)
    p, o = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = (float(x) for x in pos_w)
    o.w, o.x, o.y, o.z = (float(x) for x in quat_w)
    v_b = quat_to_mat(np.asarray(quat_w, dtype=np.float64)).T @ np.asarray(lin_vel_w, dtype=np.float64)
    t = msg.twist.twist
    t.linear.x, t.linear.y, t.linear.z = (float(x) for x in v_b)
    t.angular.x, t.angular.y, t.angular.z = (float(x) for x in ang_vel_b)
    return msg
