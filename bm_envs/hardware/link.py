"""DDS link to the G1: ``rt/lowstate`` in, ``rt/lowcmd`` out, through the safety layer, with a watchdog thread.

Threads: the SDK's DDS listener calls :meth:`RobotLink._on_state` for every ``LowState_``; a watchdog thread
(``watchdog_hz``) trips :attr:`Fault.STALE_STATE` when no valid state arrived for ``stale_periods`` control
periods, :attr:`Fault.AGENT_TIMEOUT` when the agent stops sending commands, and re-publishes the held (or
damping) command when nothing was sent for 1.5 control periods. Any fault latches damping: from then on every
command published is the damping command, until :meth:`clear_fault`.

Every received ``LowState_`` is untrusted: malformed samples, bad CRCs and samples whose ``tick`` does not
increase (duplicates, reordering) are dropped and counted; valid ones go through
:meth:`SafetyLayer.check_state`. Lateness: the offset ``recv_time − tick`` is compared with its minimum over the
last ``LATE_WINDOW_S``; a jump above ``max_delay_periods`` control periods trips :attr:`Fault.LATE_STATE` (a delayed
stream). Faults are detected once :attr:`armed` (the env arms the link when its first start-up begins).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.hardware.messages import (
    CommandFrame,
    MalformedMessage,
    StateFrame,
    decode_lowstate,
    lowcmd_msg,
    pack_lowcmd,
)
from bm_envs.hardware.safety import Fault, SafetyLayer
from bm_envs.hardware.sdk import close_endpoint

log = logging.getLogger("bm_envs.hardware")
LATE_WINDOW_S = 10.0


@dataclass
class LinkConfig:
    """Topics and timing of the link. ``agent_timeout_s = None`` disables the agent watchdog."""

    lowcmd_topic: str = "rt/lowcmd"
    lowstate_topic: str = "rt/lowstate"
    control_dt: float = g1.CONTROL_DT
    watchdog_hz: float = 200.0
    agent_timeout_s: float | None = 0.5

    def __post_init__(self):
        for t in (self.lowcmd_topic, self.lowstate_topic):
            if not isinstance(t, str) or not t:
                raise ValueError(f"topic names must be non-empty strings, got {t!r}")
        if not (0.001 <= self.control_dt <= 1.0):
            raise ValueError(f"control_dt must be in [0.001, 1] s, got {self.control_dt!r}")
        if not (10 <= self.watchdog_hz <= 2000):
            raise ValueError(f"watchdog_hz must be in [10, 2000], got {self.watchdog_hz!r}")
        if self.agent_timeout_s is not None and not self.agent_timeout_s > 0:
            raise ValueError(f"agent_timeout_s must be > 0 or None, got {self.agent_timeout_s!r}")


class RobotLink:
    """Publisher, subscriber, watchdog and counters. Thread-safe; all times are ``time.monotonic()`` seconds."""

    def __init__(self, sdk, cfg: LinkConfig, safety: SafetyLayer):
        self.sdk, self.cfg, self.safety = sdk, cfg, safety
        self.stale_s = safety.cfg.stale_periods * cfg.control_dt
        self.late_s = safety.cfg.max_delay_periods * cfg.control_dt
        self._lock = threading.RLock()
        self._fault_event = threading.Event()
        self._stop = threading.Event()
        self._new_state = threading.Condition(self._lock)
        self.reset_counters()
        self.fault: Fault | None = None
        self.fault_detail, self.fault_time = "", None
        self.active = False  # True while an agent drives the robot (agent watchdog on)
        self.armed = False  # faults are detected from the first start-up on (before it, states are only counted)
        self._pub = sdk.ChannelPublisher(cfg.lowcmd_topic, sdk.LowCmd_)
        self._pub.Init()
        self._sub = sdk.ChannelSubscriber(cfg.lowstate_topic, sdk.LowState_)
        self._sub.Init(self._on_state, 0)
        self._thread = threading.Thread(target=self._watchdog, name="bm-hw-watchdog", daemon=True)
        self._thread.start()

    def reset_counters(self) -> None:
        with self._lock:
            self.counts = {k: 0 for k in ("received", "accepted", "malformed", "bad_crc", "out_of_order",
                                          "duplicate", "gaps", "rejected", "handler_errors", "sent", "keepalive")}  # fmt: skip
            self.latest: StateFrame | None = None
            self.last_state_time: float | None = None
            self._last_tick: int | None = None
            self._tick_step = 0.0
            self._offsets: deque[tuple[float, float]] = deque()
            self._last_target: np.ndarray | None = None
            self._held: CommandFrame | None = None
            self._last_pub_time = self._last_target_time = 0.0
            self._last_agent_time = 0.0
            self._seq = 0
            self._sent_at: dict[int, float] = {}
            self._echo = 0
            self.rtt_s: deque[float] = deque(maxlen=2000)
            self.pub_times: deque[float] = deque(maxlen=500)
            self.bad_crc_since_clear = 0

    # ------------------------------------------------------------------ receive
    def _on_state(self, msg) -> None:
        t = time.monotonic()
        try:
            self._handle_state(msg, t)
        except Exception:
            with self._lock:
                self.counts["handler_errors"] += 1
            log.exception("LowState handler error")

    def _handle_state(self, msg, t: float) -> None:
        with self._lock:
            counts = self.counts  # one episode's counters, even if reset_counters() runs meanwhile
            counts["received"] += 1
        try:
            frame, crc_ok = decode_lowstate(msg, t)
        except MalformedMessage as e:
            with self._lock:
                counts["malformed"] += 1
            log.warning("dropped malformed LowState: %s", e)
            return
        with self._lock:
            if counts is not self.counts:
                return  # counters were reset while decoding: a state from before the reset
            if not crc_ok:
                counts["bad_crc"] += 1
                self.bad_crc_since_clear += 1
                if self.armed and self.bad_crc_since_clear >= self.safety.cfg.bad_crc_limit:
                    self.trip(Fault.BAD_CRC, f"{self.bad_crc_since_clear} LowState(s) with a bad CRC")
                return
            if self._last_tick is not None:
                d = (frame.tick - self._last_tick) & 0xFFFFFFFF
                if d == 0 or d >= 1 << 31:
                    self.counts["duplicate" if d == 0 else "out_of_order"] += 1
                    return
                if self._tick_step and d > 1.75 * self._tick_step:  # at least one message missing
                    self.counts["gaps"] += 1
                self._tick_step = (
                    d if not self._tick_step else 0.95 * self._tick_step + 0.05 * min(d, 2 * self._tick_step)
                )
            self._last_tick = frame.tick
            fault, detail = self.safety.check_state(frame)
            if fault is not None:
                self.counts["rejected"] += 1
                if self.armed:
                    self.trip(fault, detail)
                return
            offset = t - frame.tick * 1e-3  # windowed minimum of (receive time - robot time), a monotonic deque
            while self._offsets and self._offsets[0][0] < t - LATE_WINDOW_S:
                self._offsets.popleft()
            while self._offsets and self._offsets[-1][1] >= offset:
                self._offsets.pop()
            self._offsets.append((t, offset))
            late = offset - self._offsets[0][1]
            if late > self.late_s and self.armed:
                self.trip(Fault.LATE_STATE, f"LowState {late * 1e3:.0f} ms later than its tick implies")
                return
            self.counts["accepted"] += 1
            self.latest, self.last_state_time = frame, t
            echo = int(frame.reserve[0])
            if echo != self._echo and echo in self._sent_at:
                self.rtt_s.append(t - self._sent_at[echo])
            self._echo = echo
            self._new_state.notify_all()

    def wait_for_state(self, timeout: float, newer_than: float = -np.inf) -> StateFrame | None:
        """Block until a valid state received after ``newer_than`` exists (or ``timeout`` s pass)."""
        deadline = time.monotonic() + timeout
        with self._new_state:
            while self.latest is None or self.last_state_time <= newer_than:
                left = deadline - time.monotonic()
                if left <= 0 or self.fault is not None:
                    return None
                self._new_state.wait(left)
            return self.latest

    # ------------------------------------------------------------------ send
    def send(self, cmd: CommandFrame, agent: bool = False) -> bool:
        """Filter ``cmd`` through the safety layer and publish it; publish damping instead under a fault.

        Returns False when the command was replaced by damping.
        """
        now = time.monotonic()
        with self._lock:
            if agent:
                self._last_agent_time = now
                cmd.agent = True
            if self.fault is not None:
                self._publish(self._damping_cmd())
                return False
            prev = self._last_target if self._last_target is not None else (self.latest.q if self.latest else None)
            dt = now - self._last_target_time
            out, fault = self.safety.filter_command(cmd, prev, dt, self.latest)
            if fault is not None:
                self.trip(fault, "command contains NaN/inf or has a wrong shape")
                return False
            out.mode_machine = self.latest.mode_machine if self.latest else 0
            self._publish(out)
            self._last_target, self._held, self._last_target_time = out.q.copy(), out, now
            return True

    def send_damping(self) -> None:
        """Publish the damping command and hold it (start-up phase; not a fault)."""
        with self._lock:
            cmd = self._damping_cmd()
            self._publish(cmd)
            self._held, self._last_target = cmd, None

    def arm_agent(self) -> None:
        """Hand over to the agent: from now on the agent watchdog expects a command every ``agent_timeout_s``."""
        with self._lock:
            self._last_agent_time = time.monotonic()
            self.active = True

    def _damping_cmd(self) -> CommandFrame:
        q = self.latest.q if self.latest is not None else None
        return self.safety.damping(q, self.latest.mode_machine if self.latest else 0)

    def _publish(self, cmd: CommandFrame) -> None:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        cmd.seq = self._seq
        msg = lowcmd_msg(pack_lowcmd(cmd), self.sdk)
        now = time.monotonic()
        self._pub.Write(msg)
        self._sent_at[self._seq] = now
        if len(self._sent_at) > 256:
            self._sent_at.pop(next(iter(self._sent_at)))
        self._last_pub_time = now
        self.pub_times.append(now)
        self.counts["sent"] += 1

    # ------------------------------------------------------------------ faults
    def trip(self, fault: Fault, detail: str = "") -> None:
        """Latch ``fault`` and switch to damping at once (idempotent: the first fault is kept)."""
        with self._lock:
            if self.fault is not None:
                return
            self.fault, self.fault_detail, self.fault_time = fault, detail, time.monotonic()
            self._fault_event.set()
            log.error("hardware fault %s: %s -> damping", fault.value, detail)
            self._publish(self._damping_cmd())
            self._new_state.notify_all()

    def clear_fault(self) -> None:
        with self._lock:
            self.fault, self.fault_detail, self.fault_time = None, "", None
            self._fault_event.clear()
            self.bad_crc_since_clear = 0
            self._last_target = self._held = None
            self._last_tick, self._tick_step = None, 0.0
            self._offsets.clear()
            self.latest, self.last_state_time = None, None  # the watchdog re-arms on the next valid state

    def wait(self, deadline: float) -> None:
        """Sleep until ``deadline`` (monotonic s); returns early when a fault trips."""
        left = deadline - time.monotonic()
        if left > 0:
            self._fault_event.wait(left)

    def _watchdog(self) -> None:
        period = 1.0 / self.cfg.watchdog_hz
        while not self._stop.wait(period):
            try:
                now = time.monotonic()
                with self._lock:
                    if not self.armed:
                        continue
                    if (
                        self.fault is None
                        and self.last_state_time is not None
                        and now - self.last_state_time > self.stale_s
                    ):
                        self.trip(
                            Fault.STALE_STATE, f"no valid LowState for {(now - self.last_state_time) * 1e3:.0f} ms"
                        )
                    to = self.cfg.agent_timeout_s
                    if self.fault is None and self.active and to is not None and now - self._last_agent_time > to:
                        self.trip(
                            Fault.AGENT_TIMEOUT, f"no command from the agent for {now - self._last_agent_time:.2f} s"
                        )
                    if now - self._last_pub_time >= 1.5 * self.cfg.control_dt and self.last_state_time is not None:
                        if self.fault is not None:
                            self._publish(self._damping_cmd())
                            self.counts["keepalive"] += 1
                        elif self._held is not None:
                            self._publish(self._held)
                            self.counts["keepalive"] += 1
            except Exception:
                log.exception("watchdog error")

    # ------------------------------------------------------------------ reporting
    def stats(self) -> dict:
        """Link report (``info["hardware"]``). ``counts``: LowStates ``received``, ``accepted``, dropped as
        ``malformed``/``bad_crc``/``duplicate``/``out_of_order``, ``rejected`` by the state checks, ``gaps`` (tick
        intervals above 1.75× the usual one: missed or late messages), ``handler_errors``; commands ``sent`` and the
        watchdog's ``keepalive`` re-sends. ``clamped``: joints changed by each safety rule. ``rtt_ms_*``: command
        to the first LowState echoing it (the bridge's ``reserve[0]``; None on a robot that does not echo)."""
        with self._lock:
            pt = list(self.pub_times)
            rtt = np.array(self.rtt_s) * 1e3
            now = time.monotonic()
            return {
                "fault": None if self.fault is None else self.fault.value,
                "fault_detail": self.fault_detail,
                "fault_time": self.fault_time,
                "damping": self.fault is not None,
                "counts": dict(self.counts),
                "clamped": dict(self.safety.clamp_counts),
                "state_age_ms": None if self.last_state_time is None else (now - self.last_state_time) * 1e3,
                "command_rate_hz": (len(pt) - 1) / (pt[-1] - pt[0]) if len(pt) > 2 and pt[-1] > pt[0] else 0.0,
                "rtt_ms_p50": float(np.percentile(rtt, 50)) if len(rtt) else None,
                "rtt_ms_p99": float(np.percentile(rtt, 99)) if len(rtt) else None,
            }

    def close(self) -> None:
        """Publish damping, stop the watchdog and close the DDS endpoints."""
        with self._lock:
            if self.last_state_time is not None:
                self._publish(self._damping_cmd())
        self._stop.set()
        self._thread.join(timeout=1.0)
        for ep in (self._sub, self._pub):
            try:
                close_endpoint(ep)
            except Exception as e:  # noqa: BLE001 - closing must go on with the other endpoints
                log.warning("closing DDS endpoint: %s", e)
