"""``BM-G1-Joystick-v0``: follow a planar velocity command (vx, vy, yaw rate).

Task observation: ``command`` (3,) = (vx m/s, vy m/s in the robot's heading frame, yaw rate rad/s).
By default the command is a random piecewise-constant schedule: a new command every U(1.5, 4) s; with
probability ``stop_prob`` it is zero, otherwise vx ~ U(-max_speed, max_speed), vy ~ U(-0.5, 0.5)·max_speed,
yaw rate ~ U(-max_yaw_rate, max_yaw_rate), then (vx, vy) is scaled down to ``|v| ≤ max_speed``. A scenario's
``joystick`` list replaces it.

Velocity error (``info["vel_error"]``): ``|v̄ − c| / max(|c|, 0.1)`` on the 3-vector (vx, vy, yaw rate), where
v̄ is the robot's heading-frame velocity averaged over the last 0.5 s (one gait half-period, so the error is not
dominated by the gait's sway). ``info["vel_error_mean"]`` is its running mean over the episode.

Success (``info["success"]``, decided at the time limit): no fall and ``vel_error_mean`` ≤
``scenario.success["max_vel_error"]`` (default 0.25).

Reward terms (unweighted; weights in ``reward_weights``): ``lin_vel`` = exp(−|v_xy − c_xy|²/0.25),
``yaw_rate`` = exp(−(ω_z − c_ω)²/0.25), ``alive`` (1 unless fallen), ``action_rate`` = −|a_t − a_{t−1}|².
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.g1_base import G1BaseEnv, _box

VEL_AVG_WINDOW_S = 0.5


class G1JoystickEnv(G1BaseEnv):
    default_scenario = {"name": "joystick-random", "env": "BM-G1-Joystick-v0", "time_limit_s": 20.0}
    scenario_envs = ("BM-G1-Joystick-v0",)
    reward_weights = {"lin_vel": 1.0, "yaw_rate": 0.5, "alive": 0.5, "action_rate": 0.005}

    def __init__(self, *args, max_speed: float = 0.8, max_yaw_rate: float = 0.8, stop_prob: float = 0.15,
                 resample_s: tuple[float, float] = (1.5, 4.0), **kwargs):  # fmt: skip
        if not (0 <= max_speed <= 2.0 and 0 <= max_yaw_rate <= 2.0 and 0 <= stop_prob <= 1):
            raise ValueError(f"bad command ranges: {max_speed=}, {max_yaw_rate=}, {stop_prob=}")
        if not (0 < resample_s[0] <= resample_s[1]):
            raise ValueError(f"resample_s must be (lo, hi) with 0 < lo <= hi, got {resample_s!r}")
        self.max_speed, self.max_yaw_rate, self.stop_prob, self.resample_s = (
            max_speed,
            max_yaw_rate,
            stop_prob,
            resample_s,
        )
        super().__init__(*args, **kwargs)
        self.command = np.zeros(3)

    def _task_spaces(self):
        return {"command": _box(3)}

    def _sample_command(self) -> np.ndarray:
        rng = self.np_random
        if rng.uniform() < self.stop_prob:
            return np.zeros(3)
        v = np.array([rng.uniform(-1, 1), 0.5 * rng.uniform(-1, 1)]) * self.max_speed
        n = np.linalg.norm(v)
        if n > self.max_speed:
            v *= self.max_speed / n
        return np.array([v[0], v[1], rng.uniform(-1, 1) * self.max_yaw_rate])

    def _task_reset(self, start_xy, start_yaw):
        # ring buffer of the last 0.5 s of heading-frame velocities (vx, vy, yaw rate) for the averaged error
        self._vel_buf: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * max(
            1, int(round(VEL_AVG_WINDOW_S / g1.CONTROL_DT))
        )
        self._vel_i = self._vel_n = 0
        self._vel_sum = [0.0, 0.0, 0.0]
        self._err_sum, self._err_n = 0.0, 0
        self._next_cmd_t = 0.0
        self._update_command()

    def _update_command(self):
        if self.scenario.joystick:
            self.command = self.scenario.command_at(self.time)
        elif self.time + 1e-9 >= self._next_cmd_t:
            self.command = self._sample_command()
            self._next_cmd_t = self.time + self.np_random.uniform(*self.resample_s)

    def _task_obs(self):
        return {"command": self.command}

    def _reward_weights(self):
        return self.reward_weights

    def _task_step(self, state) -> tuple[dict[str, float], bool, dict[str, Any]]:
        cmd = self.command  # the command the robot was asked to follow during this step
        # scalar math: this runs every control step and numpy's per-call overhead dominates 3-vectors
        c, s = math.cos(state["yaw"]), math.sin(state["yaw"])
        wx, wy = float(state["lin_vel_w"][0]), float(state["lin_vel_w"][1])
        vx, vy, wz = c * wx + s * wy, -s * wx + c * wy, state["yaw_rate"]
        buf, i, acc = self._vel_buf, self._vel_i, self._vel_sum
        old = buf[i]  # running sum over the window: add the new velocity, drop the one it replaces
        buf[i] = (vx, vy, wz)
        acc[0] += vx - old[0]
        acc[1] += vy - old[1]
        acc[2] += wz - old[2]
        self._vel_i = (i + 1) % len(buf)
        self._vel_n = min(self._vel_n + 1, len(buf))
        if self._vel_i == 0:  # once per window, re-sum exactly (no drift of the running sum)
            acc[:] = [sum(v[k] for v in buf) for k in range(3)]
        n = self._vel_n
        ax, ay, aw = acc[0] / n, acc[1] / n, acc[2] / n
        c0, c1, c2 = float(cmd[0]), float(cmd[1]), float(cmd[2])
        err = math.sqrt((ax - c0) ** 2 + (ay - c1) ** 2 + (aw - c2) ** 2) / max(
            math.sqrt(c0 * c0 + c1 * c1 + c2 * c2), 0.1
        )
        self._err_sum += err
        self._err_n += 1
        terms = {
            "lin_vel": math.exp(-((vx - c0) ** 2 + (vy - c1) ** 2) / 0.25),
            "yaw_rate": math.exp(-((wz - c2) ** 2) / 0.25),
        }
        mean_err = self._err_sum / self._err_n
        thr = self.scenario.success.get("max_vel_error", 0.25)
        at_limit = self._steps >= self.max_steps
        info = {
            "command": cmd.copy(),
            "vel_error": err,
            "vel_error_mean": mean_err,
            "success": bool(at_limit and mean_err <= thr and state["pelvis_z"] >= g1.FALL_PELVIS_HEIGHT
                            and state["head_z"] >= g1.FALL_HEAD_HEIGHT),
        }  # fmt: skip
        self._update_command()
        return terms, False, info
