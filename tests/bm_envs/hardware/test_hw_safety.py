"""Safety layer unit tests: each command rule, each state check, damping, config validation (no DDS needed)."""

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.hardware.messages import CommandFrame, StateFrame
from bm_envs.hardware.safety import Fault, SafetyConfig, SafetyLayer
from bm_envs.scene.builder import build_model

N = g1.NUM_JOINTS


@pytest.fixture(scope="module")
def limits():
    model, _ = build_model()
    jr = model.jnt_range[[model.joint(n).id for n in g1.JOINT_NAMES]]
    return jr[:, 0], jr[:, 1]


def _state(q=None, dq=None, **kw) -> StateFrame:
    base = {"tick": 1, "quat": np.array([1.0, 0, 0, 0]), "gyro": np.zeros(3), "acc": np.array([0, 0, 9.81]),
            "q": g1.DEFAULT_JOINT_POS.copy() if q is None else q, "dq": np.zeros(N) if dq is None else dq,
            "tau_est": np.zeros(N)}  # fmt: skip
    base.update(kw)
    return StateFrame(**base)


def _cmd(q, **kw) -> CommandFrame:
    return CommandFrame(
        q=np.asarray(q, dtype=float), kp=kw.pop("kp", g1.KP.copy()), kd=kw.pop("kd", g1.KD.copy()), **kw
    )


def test_nominal_command_passes_unchanged(limits):
    s = SafetyLayer(SafetyConfig(), *limits)
    q = g1.DEFAULT_JOINT_POS + 0.1
    out, fault = s.filter_command(_cmd(q), g1.DEFAULT_JOINT_POS, 0.02, _state())
    assert fault is None and np.array_equal(out.q, q) and np.array_equal(out.kp, g1.KP)
    assert sum(s.clamp_counts.values()) == 0


def test_position_limits_with_margin(limits):
    lo, hi = limits
    s = SafetyLayer(SafetyConfig(position_margin=0.05, max_target_rate=1e6, torque_limit_scale=1e6), lo, hi)
    out, _ = s.filter_command(_cmd(hi + 1.0), hi + 1.0, 0.02, None)
    assert np.allclose(out.q, hi - 0.05) and s.clamp_counts["position"] == N
    out, _ = s.filter_command(_cmd(lo - 1.0), lo - 1.0, 0.02, None)
    assert np.allclose(out.q, lo + 0.05)


def test_rate_limit_uses_at_least_one_control_period(limits):
    s = SafetyLayer(SafetyConfig(max_target_rate=5.0), *limits)
    prev = g1.DEFAULT_JOINT_POS
    out, _ = s.filter_command(_cmd(prev + 0.15), prev, 0.02, None)
    assert np.allclose(out.q, prev + 0.1)  # 5 rad/s · 20 ms
    out, _ = s.filter_command(_cmd(prev - 0.15), prev, 0.001, None)  # jitter: a 1 ms spacing counts as 20 ms
    assert np.allclose(out.q, prev - 0.1)
    out, _ = s.filter_command(_cmd(prev + 0.15), prev, 0.1, None)
    assert np.allclose(out.q, prev + 0.15) and s.clamp_counts["rate"] == 2 * N


def test_torque_limit_bounds_pd_torque(limits):
    s = SafetyLayer(SafetyConfig(max_target_rate=1e6), *limits)
    st = _state(dq=np.full(N, -30.0))  # fast joints: holding the current position would need kd·30 N·m
    out, _ = s.filter_command(_cmd(st.q), st.q, 0.02, st)
    tau = out.kp * (out.q - st.q) - out.kd * st.dq
    inside = (out.q > s.lo) & (out.q < s.hi)
    assert np.all(np.abs(tau[inside]) <= g1.TORQUE_LIMIT[inside] + 1e-9)
    over = g1.KD * 30 > g1.TORQUE_LIMIT
    assert over.any() and s.clamp_counts["torque"] == over.sum()
    assert np.all((out.q >= s.lo) & (out.q <= s.hi))  # joint limits are applied last


def test_gain_and_feedforward_bounds(limits):
    s = SafetyLayer(SafetyConfig(kp_max_scale=1.5, kd_max_scale=3.0), *limits)
    q = g1.DEFAULT_JOINT_POS
    out, _ = s.filter_command(_cmd(q, kp=10 * g1.KP, kd=-g1.KD, tau=np.full(N, 1e3)), q, 0.02, None)
    assert np.allclose(out.kp, 1.5 * g1.KP) and np.all(out.kd == 0) and np.allclose(out.tau, g1.TORQUE_LIMIT)


@pytest.mark.parametrize("field", ["q", "kp", "kd", "tau", "dq"])
def test_nonfinite_command_is_a_fault(limits, field):
    s = SafetyLayer(SafetyConfig(), *limits)
    c = _cmd(g1.DEFAULT_JOINT_POS)
    setattr(c, field, np.full(N, np.inf if field == "kp" else np.nan))
    assert s.filter_command(c, None, 0.02, None)[1] is Fault.INVALID_COMMAND
    c = _cmd(np.zeros(28))
    assert s.filter_command(c, None, 0.02, None)[1] is Fault.INVALID_COMMAND


def test_damping_command(limits):
    s = SafetyLayer(SafetyConfig(damping_kd_scale=2.0), *limits)
    d = s.damping(np.full(N, np.nan))
    assert d.damping and np.all(d.kp == 0) and np.allclose(d.kd, 2 * g1.KD) and np.all(np.isfinite(d.q))


@pytest.mark.parametrize(
    "kw, fault",
    [
        ({"quat": np.array([np.nan, 0, 0, 1.0])}, Fault.NONFINITE_STATE),
        ({"dq": np.r_[np.inf, np.zeros(N - 1)]}, Fault.NONFINITE_STATE),
        ({"quat": np.array([0.5, 0, 0, 0])}, Fault.IMU_OUT_OF_RANGE),
        ({"gyro": np.array([40.0, 0, 0])}, Fault.IMU_OUT_OF_RANGE),
        ({"acc": np.array([0, 0, 300.0])}, Fault.IMU_OUT_OF_RANGE),
        ({"quat": np.array([np.cos(0.6), np.sin(0.6), 0, 0])}, Fault.TILT),  # 1.2 rad roll
        ({"dq": np.r_[np.zeros(3), 25.0, np.zeros(N - 4)]}, Fault.JOINT_VELOCITY),
        ({}, None),
    ],
)
def test_state_checks(limits, kw, fault):
    s = SafetyLayer(SafetyConfig(), *limits)
    assert s.check_state(_state(**kw))[0] is fault


@pytest.mark.parametrize(
    "kw",
    [
        {"position_margin": -0.1},
        {"max_gyro": float("nan")},
        {"quat_norm_tol": 1.5},
        {"stale_periods": 0.5},
        {"bad_crc_limit": 0},
        {"max_target_rate": True},
    ],
)
def test_config_validation(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        SafetyConfig(**kw)


def test_limits_validation(limits):
    lo, hi = limits
    with pytest.raises(ValueError, match="joint limits"):
        SafetyLayer(SafetyConfig(), lo[:5], hi)
