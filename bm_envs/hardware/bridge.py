"""MuJoCo DDS bridge: our simulated G1 speaking the robot's side of ``unitree_hg`` (a test double of the robot).

Run ``python -m bm_envs.hardware.bridge --domain-id 7 --interface lo`` (loopback only in tests and examples). It
builds the same physics as the sim task env (:func:`bm_envs.make.make_g1_env`, reset with the same scenario and
seed), then, paced to the wall clock:

* every physics step (2 ms) applies the newest valid ``LowCmd_`` as the motor drivers do — per joint
  ``τ = tau + kp(q* − q) + kd(q̇* − q̇)``, clamped to the torque limit, evaluated by MuJoCo at physics rate
  (the actuators' gain/bias parameters are set from the command); ``mode = 0`` motors produce no torque;
  commands with a bad CRC or non-finite values are dropped and counted, like the robot does;
* publishes ``LowState_`` at ``state_rate_hz`` (default 250 Hz; the robot runs 500 Hz, which saturates Python on
  two cores) with ``tick`` = wall-clock ms since start, the pelvis IMU (quaternion
  wxyz, gyro, accelerometer) and joint q, q̇, τ;
* publishes the ground-truth pelvis pose/velocity as ``nav_msgs/Odometry_`` (``--odom-topic``) at
  ``odom_rate_hz``, standing in for motion capture (:class:`bm_envs.hardware.estimator.OdometryTopicSource`).

Gantry: like a robot hanging from its gantry during start-up, the pelvis is held at the scenario's start pose
(feet just above the floor) until the first agent command (``LowCmd_.reserve[1] = 1``, see
:mod:`~bm_envs.hardware.messages`) that follows start-up commands arrives with full stiffness (``kp ≥ 0.9·KP``);
then it is released onto its feet, as an operator lowers the robot when the policy takes over. After the hardware
env's ramp and hold the joints are at the default pose, so this is the sim env's first state (a G1 holding the
default pose with PD alone falls within ~1.5 s, so it cannot stand unattended through the start-up).

Control topic (``std_msgs/String_`` JSON, bridge only): ``{"cmd": "fault", "kind": K, "param": p, "duration_s": d}``
injects a fault into the ``LowState_`` stream — ``drop`` (probability p), ``delay`` (p ms), ``duplicate``,
``reorder`` (swap pairs), ``corrupt`` (p messages with a wrong CRC), ``stale`` (stop publishing), ``nan`` (NaN
joint position, valid CRC), ``imu`` (gyro 50 rad/s, valid CRC); ``{"cmd": "clear"}``, ``{"cmd": "reset"}`` (start
pose, gantry on), ``{"cmd": "quit"}``. A status JSON (fault onset time, counters, whether the last command was
damping, pelvis position) is published at 10 Hz on the status topic. All times are ``time.monotonic()``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.atomic import write_text
from bm_envs.hardware.estimator import odometry_msg
from bm_envs.hardware.messages import MalformedMessage, StateFrame, decode_lowcmd, lowstate_msg, pack_lowstate
from bm_envs.hardware.sdk import init_channels
from bm_envs.make import make_g1_env
from bm_envs.rotations import quat_to_mat

log = logging.getLogger("bm_envs.hardware.bridge")
FAULT_KINDS = ("drop", "delay", "duplicate", "reorder", "corrupt", "stale", "nan", "imu")
_PHYSICS_HZ = round(1 / g1.PHYSICS_DT)
_GRAVITY = np.array([0.0, 0.0, 9.81])


@dataclass
class BridgeConfig:
    """Bridge settings; topics get ``topic_suffix`` appended (isolates parallel test runs on one host)."""

    domain_id: int
    interface: str = "lo"
    task: str = "joystick"
    scenario: str | None = None  # JSON file; None = the task env's default scenario
    seed: int = 0
    state_rate_hz: int = 250
    odom_rate_hz: int = 125
    topic_suffix: str = ""
    gantry: bool = True
    max_lifetime_s: float = 900.0
    parent_pid: int | None = None
    ready_file: str | None = None

    def __post_init__(self):
        for name in ("state_rate_hz", "odom_rate_hz"):
            r = getattr(self, name)
            if not isinstance(r, int) or r <= 0 or _PHYSICS_HZ % r:
                raise ValueError(f"{name} must divide the physics rate {_PHYSICS_HZ} Hz, got {r!r}")
        if not self.max_lifetime_s > 0:
            raise ValueError(f"max_lifetime_s must be > 0, got {self.max_lifetime_s!r}")

    def topic(self, base: str) -> str:
        return base + self.topic_suffix


class Bridge:
    """The simulated robot. :meth:`run` blocks until ``quit``, SIGTERM/SIGINT, parent exit or the lifetime ends."""

    def __init__(self, cfg: BridgeConfig):
        self.cfg = cfg
        env = make_g1_env(cfg.task, **({"scenario": cfg.scenario} if cfg.scenario else {})).unwrapped
        env.reset(seed=cfg.seed)
        self.env, self.model, self.data = env, env.model, env.data
        self.root0 = self.data.qpos[:7].copy()
        self.qpos0, self.qvel0 = self.data.qpos.copy(), self.data.qvel.copy()
        self.jq, self.jv = env.idx.qpos_joint, env.idx.qvel_joint
        self._zero_torque()
        self.sdk = sdk = init_channels(cfg.domain_id, cfg.interface)
        self._lock = threading.Lock()
        self._cmd = None
        self._controls: deque[dict] = deque()
        self.counts = {"cmd_rx": 0, "cmd_bad_crc": 0, "cmd_malformed": 0, "cmd_nonfinite": 0, "cmd_applied": 0,
                       "state_tx": 0, "state_dropped": 0, "resyncs": 0, "controls": 0}  # fmt: skip
        self.pub_state = sdk.ChannelPublisher(cfg.topic("rt/lowstate"), sdk.LowState_)
        self.pub_odom = sdk.ChannelPublisher(cfg.topic("rt/bm/odom"), sdk.Odometry_)
        self.pub_status = sdk.ChannelPublisher(cfg.topic("rt/bm/bridge_status"), sdk.String_)
        for p in (self.pub_state, self.pub_odom, self.pub_status):
            p.Init()
        self.sub_cmd = sdk.ChannelSubscriber(cfg.topic("rt/lowcmd"), sdk.LowCmd_)
        self.sub_cmd.Init(self._on_cmd, 0)
        self.sub_ctl = sdk.ChannelSubscriber(cfg.topic("rt/bm/bridge_ctl"), sdk.String_)
        self.sub_ctl.Init(self._on_control, 0)
        self.rng = np.random.default_rng(cfg.seed)
        self.fault: dict | None = None
        self._delayed: deque[tuple[float, object]] = deque()
        self._held_msg = None
        self.applied_seq, self.applied_damping = 0, False
        self.gantry, self._stiff, self._agent, self._startup_seen = cfg.gantry, False, False, False
        self.sim_time = 0.0
        self.running = True

    # ------------------------------------------------------------------ DDS callbacks (listener threads)
    def _on_cmd(self, msg) -> None:
        try:
            frame, ok = decode_lowcmd(msg)
        except MalformedMessage:
            with self._lock:
                self.counts["cmd_malformed"] += 1
            return
        except Exception:
            log.exception("LowCmd handler")
            return
        with self._lock:
            self.counts["cmd_rx"] += 1
            if not ok:
                self.counts["cmd_bad_crc"] += 1
            elif not all(np.all(np.isfinite(getattr(frame, f))) for f in ("q", "dq", "tau", "kp", "kd")):
                self.counts["cmd_nonfinite"] += 1
            else:
                self._cmd = frame

    def _on_control(self, msg) -> None:
        try:
            c = json.loads(msg.data)
            if not isinstance(c, dict) or c.get("cmd") not in ("fault", "clear", "reset", "quit"):
                raise ValueError(f"unknown control {c!r}")
            if c["cmd"] == "fault" and c.get("kind") not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {c.get('kind')!r}; known: {FAULT_KINDS}")
        except Exception as e:  # noqa: BLE001 - anything on the wire may be malformed
            log.warning("ignored control message: %s", e)
            return
        with self._lock:
            self._controls.append(c)

    # ------------------------------------------------------------------ motors
    def _zero_torque(self) -> None:
        m = self.model
        m.actuator_gainprm[:, 0] = 0.0
        m.actuator_biasprm[:, :3] = 0.0

    def _apply(self, c) -> None:
        m, on = self.model, c.mode.astype(bool)
        kp, kd = np.where(on, c.kp, 0.0), np.where(on, c.kd, 0.0)
        m.actuator_gainprm[:, 0] = kp
        m.actuator_biasprm[:, 0] = np.where(on, c.tau, 0.0) + kd * c.dq
        m.actuator_biasprm[:, 1] = -kp
        m.actuator_biasprm[:, 2] = -kd
        self.data.ctrl[:] = c.q
        self.applied_seq, self.applied_damping = c.seq, bool(np.all(kp == 0.0))
        self.counts["cmd_applied"] += 1
        self._stiff = bool(np.all(kp >= 0.9 * g1.KP))
        self._agent = c.agent and self._startup_seen  # an agent command that follows a start-up
        self._startup_seen = self._startup_seen or not c.agent

    # ------------------------------------------------------------------ state out
    def _tick(self) -> int:
        """Robot clock in ms: wall time since start (strictly increasing), like the G1's own tick."""
        self._last_tick = max(self._last_tick + 1, int((time.monotonic() - self._t_start) * 1000))
        return self._last_tick

    def _state_msg(self):
        d = self.data
        quat = d.qpos[3:7].copy()
        rot = quat_to_mat(quat)
        acc = rot.T @ (_GRAVITY if self.gantry else d.qacc[:3] + _GRAVITY)
        st = StateFrame(
            tick=self._tick(), quat=quat, gyro=d.qvel[3:6].copy(), acc=acc,
            q=d.qpos[self.jq].copy(), dq=d.qvel[self.jv].copy(), tau_est=d.actuator_force.copy(),
            reserve=np.array([self.applied_seq, int(self.applied_damping), 0, 0], dtype=np.uint32),
        )  # fmt: skip
        kind = self.fault["kind"] if self.fault else None
        if kind == "nan":
            st.q[0] = np.nan
        elif kind == "imu":
            st.gyro[:] = [50.0, 0.0, 0.0]
        rec = pack_lowstate(st)
        if kind == "corrupt" and self.fault["left"] > 0:
            rec["crc"] ^= 0xDEADBEEF
            self.fault["left"] -= 1
        return lowstate_msg(rec, self.sdk)

    def _publish_state(self, now: float) -> None:
        kind = self.fault["kind"] if self.fault else None
        if kind == "stale" or (kind == "drop" and self.rng.uniform() < self.fault["param"]):
            self.counts["state_dropped"] += 1
            return
        msg = self._state_msg()
        if kind == "delay":
            self._delayed.append((now + self.fault["param"] * 1e-3, msg))
            return
        if kind == "reorder":
            if self._held_msg is None:
                self._held_msg = msg
                return
            self._write(msg)
            msg, self._held_msg = self._held_msg, None
        self._write(msg)
        if kind == "duplicate":
            self._write(msg)

    def _write(self, msg) -> None:
        self.pub_state.Write(msg)
        self.counts["state_tx"] += 1

    def _flush_delayed(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            self._write(self._delayed.popleft()[1])

    def _publish_odom(self) -> None:
        d = self.data
        self.pub_odom.Write(odometry_msg(self.sdk, d.qpos[:3], d.qpos[3:7], d.qvel[:3], d.qvel[3:6], time.monotonic()))

    def _publish_status(self) -> None:
        f = self.fault or {}
        s = {"t": time.monotonic(), "sim_time": self.sim_time, "fault": f.get("kind"), "fault_onset": f.get("onset"),
             "damping": self.applied_damping, "applied_seq": self.applied_seq, "gantry": self.gantry,
             "root": self.data.qpos[:3].tolist(), **self.counts}  # fmt: skip
        self.pub_status.Write(self.sdk.String_(json.dumps(s)))

    # ------------------------------------------------------------------ control
    def _handle_controls(self, now: float) -> int:
        with self._lock:
            controls, self._controls = list(self._controls), deque()
        for c in controls:
            self.counts["controls"] += 1
            if c["cmd"] == "quit":
                self.running = False
            elif c["cmd"] == "clear":
                self.fault, self._held_msg = None, None
                self._flush_delayed(np.inf)
            elif c["cmd"] == "reset":
                self.data.qpos[:], self.data.qvel[:] = self.qpos0, self.qvel0
                self.gantry, self._agent, self._startup_seen = self.cfg.gantry, False, False
                mujoco.mj_forward(self.model, self.data)
            else:
                dur = c.get("duration_s")
                self.fault = {"kind": c["kind"], "param": float(c.get("param", 1.0)), "onset": now,
                              "until": np.inf if dur is None else now + float(dur), "left": int(c.get("param", 1))}  # fmt: skip
                log.info("fault injected: %s", self.fault)
        return len(controls)

    def _gantry_step(self) -> None:
        d = self.data
        if self._stiff and self._agent:
            self.gantry = False
            err = np.max(np.abs(d.qpos[self.jq] - g1.DEFAULT_JOINT_POS))
            log.info("gantry released at sim time %.3f s (max joint error %.3f rad, max joint speed %.2f rad/s)",
                     self.sim_time, err, np.max(np.abs(d.qvel[self.jv])))  # fmt: skip
            return
        d.qpos[:7] = self.root0
        d.qvel[:6] = 0.0

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        cfg, dt = self.cfg, g1.PHYSICS_DT
        every_state, every_odom = _PHYSICS_HZ // cfg.state_rate_hz, _PHYSICS_HZ // cfg.odom_rate_hz
        t_start = self._t_start = time.monotonic()
        self._last_tick = -1
        t_next, k = t_start, 0
        if cfg.ready_file:
            write_text(cfg.ready_file, str(os.getpid()))
        while self.running:
            now = time.monotonic()
            if t_next > now:
                time.sleep(t_next - now)
            elif now - t_next > 0.1:  # starved of CPU for > 100 ms: do not replay the backlog
                self.counts["resyncs"] += 1
                t_next = now
            with self._lock:
                cmd, self._cmd = self._cmd, None
            if cmd is not None:
                self._apply(cmd)
            mujoco.mj_step(self.model, self.data)
            if self.gantry:
                self._gantry_step()
            k += 1
            self.sim_time = k * dt
            now = time.monotonic()
            if self.fault is not None and now >= self.fault["until"]:
                self.fault = None
            if k % every_state == 0:
                self._publish_state(now)
            self._flush_delayed(now)
            if k % every_odom == 0:
                self._publish_odom()
            handled = self._handle_controls(now) if k % 10 == 0 else 0
            if handled or k % (_PHYSICS_HZ // 10) == 0:
                self._publish_status()
                if now - t_start > cfg.max_lifetime_s or (cfg.parent_pid and os.getppid() != cfg.parent_pid):
                    log.warning("bridge exiting: lifetime over or parent gone")
                    self.running = False
            t_next += dt


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--domain-id", type=int, required=True)
    p.add_argument("--interface", default="lo")
    p.add_argument("--task", default="joystick", choices=("joystick", "waypoint", "obstacle"))
    p.add_argument("--scenario", default=None, help="scenario JSON file (default: the task env's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--state-rate-hz", type=int, default=250)
    p.add_argument("--odom-rate-hz", type=int, default=125)
    p.add_argument("--topic-suffix", default="")
    p.add_argument("--no-gantry", action="store_true")
    p.add_argument("--max-lifetime-s", type=float, default=900.0)
    p.add_argument("--parent-pid", type=int, default=None)
    p.add_argument("--ready-file", default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bridge %(levelname)s %(message)s", stream=sys.stderr)
    cfg = BridgeConfig(
        domain_id=a.domain_id, interface=a.interface, task=a.task, scenario=a.scenario, seed=a.seed,
        state_rate_hz=a.state_rate_hz, odom_rate_hz=a.odom_rate_hz, topic_suffix=a.topic_suffix,
        gantry=not a.no_gantry, max_lifetime_s=a.max_lifetime_s, parent_pid=a.parent_pid, ready_file=a.ready_file,
    )  # fmt: skip
    bridge = Bridge(cfg)

    def stop(*_):
        bridge.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("bridge up: domain %d on %r, LowState at %d Hz, topics *%s", cfg.domain_id, cfg.interface,
             cfg.state_rate_hz, cfg.topic_suffix)  # fmt: skip
    bridge.run()
    log.info("bridge stopped: %s", bridge.counts)


if __name__ == "__main__":
    main()
