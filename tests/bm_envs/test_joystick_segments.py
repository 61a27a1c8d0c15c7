"""The joystick success test per command segment (``bm_envs.envs.joystick.segment_results``) on synthetic velocity
traces, and the env's per-episode segment report."""

from __future__ import annotations

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.envs.joystick import G1JoystickEnv, segment_results, tracking_errors
from bm_envs.scene.scenario import load_scenario

DT = g1.CONTROL_DT


def _trace(name: str, lag_s: float = 0.0, gain=1.0, tau_s: float = 0.0):
    """(t, command, velocity) of a scenario's schedule, the velocity following the command ``lag_s`` late, scaled by
    ``gain`` (per axis) and smoothed by a first-order response of time constant ``tau_s``."""
    sc = load_scenario(name)
    t = np.arange(1, int(round(sc.time_limit_s / DT)) + 1) * DT
    cmd = np.array([sc.command_at(x - DT) for x in t])
    target = np.array([sc.command_at(x - DT - lag_s) if x - DT - lag_s >= 0 else np.zeros(3) for x in t])
    vel = np.zeros_like(target)
    v = np.zeros(3)
    a = 1.0 if tau_s == 0 else 1 - np.exp(-DT / tau_s)
    for i, c in enumerate(target * gain):
        v = v + a * (c - v)
        vel[i] = v
    return t, cmd, vel


def _passes(segs):
    return all(s["passed"] for s in segs if s["scored"])


@pytest.mark.parametrize("suite", ["joystick-4dir", "joystick-8dir"])
def test_a_trace_that_follows_passes_and_one_that_lags_fails(suite):
    t, cmd, vel = _trace(suite, tau_s=0.2)  # a quick first-order response
    segs = segment_results(t, cmd, vel)
    assert len(segs) == len(load_scenario(suite).joystick) and all(s["scored"] for s in segs)
    assert _passes(segs)
    # the expert's own under-tracking: 80 % of planar speed forward, 50 % sideways, 85 % of the yaw rate
    t, cmd, vel = _trace(suite, gain=np.array([0.8, 0.5, 0.85]), tau_s=0.3)
    assert _passes(segment_results(t, cmd, vel))
    t, cmd, vel = _trace(suite, lag_s=1.5)
    segs = segment_results(t, cmd, vel)
    assert not _passes(segs)
    assert not segs[1]["passed"]  # forward -> backward: still walking forward for the first second


def test_wrong_direction_standing_and_drift_fail():
    t = np.arange(1, 151) * DT
    cmd = np.tile([0.5, 0.0, 0.0], (150, 1))
    ok = segment_results(t, cmd, np.tile([0.4, 0.0, 0.0], (150, 1)))[0]
    assert ok["passed"] and ok["planar_tracking_error"] == pytest.approx(0.2) and ok["yaw_tracking_error"] is None
    assert not segment_results(t, cmd, np.tile([-0.4, 0.0, 0.0], (150, 1)))[0]["passed"]  # backwards
    assert not segment_results(t, cmd, np.zeros((150, 3)))[0]["passed"]  # stands still
    assert not segment_results(t, cmd, np.tile([0.4, 0.0, 0.5], (150, 1)))[0]["passed"]  # turns when not asked
    hold = np.zeros((150, 3))
    assert segment_results(t, hold, np.tile([0.1, 0.0, 0.1], (150, 1)))[0]["passed"]  # small drift while standing
    assert not segment_results(t, hold, np.tile([0.3, 0.0, 0.0], (150, 1)))[0]["passed"]  # walks off


def test_pushes_and_short_segments_are_not_scored_and_shapes_are_checked():
    t = np.arange(1, 151) * DT
    cmd = np.tile([0.5, 0.0, 0.0], (150, 1))
    vel = np.tile([0.45, 0.0, 0.0], (150, 1))
    vel[75:100] = [-1.0, 0.8, 0.0]  # knocked about by a push at t = 1.5 s
    assert not segment_results(t, cmd, vel)[0]["passed"]
    assert segment_results(t, cmd, vel, push_t=[1.5])[0]["passed"]  # the second after a push is not scored
    short = segment_results(t[:40], cmd[:40], vel[:40])[0]  # 0.8 s: 0.3 s left after settling
    assert not short["scored"] and not short["passed"]
    assert tracking_errors([short]) == (None, None)
    with pytest.raises(ValueError, match="segment_results needs"):
        segment_results(t, cmd[:, :2], vel)


def test_env_reports_segments_and_scenario_criteria():
    env = G1JoystickEnv(
        scenario={
            "name": "s",
            "env": "BM-G1-Joystick-v0",
            "time_limit_s": 1.2,
            "joystick": [{"t": 0.0, "vx": 0.0}],
            "success": {"criterion": "segments"},
        }
    )
    from bm_envs.experts.locomotion import ExpertPolicy

    expert = ExpertPolicy("fastsac")
    obs, _ = env.reset(seed=0)
    for _ in range(60):
        obs, _, term, trunc, info = env.step(expert.predict(obs)[0])
    assert trunc and not term and len(info["segments"]) == 1
    seg = info["segments"][0]
    assert seg["scored"] and seg["command"] == [0.0, 0.0, 0.0] and info["success"] == seg["passed"]
    assert seg["passed"]  # the expert stands when asked to
    obs, _ = env.reset(seed=0)
    for _ in range(60):  # holding the default pose without a controller: the robot tips over, drifting forward
        obs, _, term, trunc, info = env.step(np.zeros(29))
        if term:
            break
    assert not info["success"] and not info["segments"][0]["passed"]
    env.close()
