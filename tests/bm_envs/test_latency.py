"""ActionLatency: an action reaches the PD controller exactly ``delay / 2 ms`` physics steps after it is sent.

The PD target the physics actually uses is read with MuJoCo's control callback (called inside every physics
step), so these tests observe the simulator itself rather than the env's bookkeeping.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.wrappers import ActionLatency


class CtrlRecorder:
    """Context manager recording ``data.ctrl`` at each physics step (rows: physics steps, in order)."""

    def __enter__(self):
        self.ctrl: list[np.ndarray] = []
        mujoco.set_mjcb_control(lambda m, d: self.ctrl.append(d.ctrl.copy()))
        return self

    def __exit__(self, *exc):
        mujoco.set_mjcb_control(None)


@pytest.fixture(scope="module")
def env():
    e = ActionLatency(gym.make("BM-G1-Joystick-v0").unwrapped, 0.0)
    yield e
    e.close()


def _arrivals(env, delay_ms: float, n_actions: int, seed: int = 0) -> tuple[dict, list[int]]:
    """Send ``n_actions`` distinct actions, then hold; return (reset info, physics step each target arrived at)."""
    env.latency_ms = (delay_ms, delay_ms)
    _, info = env.reset(seed=seed)
    base = env.unwrapped
    actions = [np.full(29, 0.1 * (k + 1), dtype=np.float32) for k in range(n_actions)]
    targets = [base.default_joint_pos + g1.ACTION_SCALE * a.astype(np.float64) for a in actions]
    hold_steps = int(np.ceil(delay_ms / 20)) + 1
    with CtrlRecorder() as rec:
        for k in range(n_actions + hold_steps):
            env.step(actions[min(k, n_actions - 1)])
    ctrl = np.array(rec.ctrl)
    assert len(ctrl) == (n_actions + hold_steps) * g1.DECIMATION
    n = base.action_delay_steps  # the default pose is held until the first action arrives
    np.testing.assert_array_equal(ctrl[:n], np.tile(base.default_joint_pos, (n, 1)))
    arrivals = [int(np.flatnonzero(np.all(ctrl == t, axis=1))[0]) for t in targets]
    return info, arrivals


@pytest.mark.parametrize("delay_ms", [0.0, 2.0, 30.0, 48.0, 100.0])
def test_fixed_delay_step_response(env, delay_ms):
    info, arrivals = _arrivals(env, delay_ms, n_actions=3)
    delay_steps = round(delay_ms / 2.0)
    # action k is sent at physics step 10·k and drives the PD from physics step 10·k + delay on
    assert arrivals == [g1.DECIMATION * k + delay_steps for k in range(3)]
    assert info["action_delay_ms"] == pytest.approx(delay_ms)


def test_delay_resolution_is_one_physics_step(env):
    """Delays are rounded to the 2 ms physics step: 31 ms → 16 steps (32 ms), 29 ms → 14 steps (28 ms)."""
    for asked, steps in ((31.0, 16), (29.0, 14), (0.9, 0)):
        info, arrivals = _arrivals(env, asked, n_actions=1)
        assert arrivals == [steps]
        assert info["action_delay_ms"] == pytest.approx(2.0 * steps)


def test_random_delay_matches_info():
    env = gym.make("BM-G1-Joystick-v0", latency_ms=(0.0, 100.0))
    wrapper = env.env.env
    assert isinstance(wrapper, ActionLatency)
    delays = []
    assert wrapper.latency_ms == (0.0, 100.0)
    for seed in range(6):
        _, info = env.reset(seed=seed)
        ms = info["action_delay_ms"]
        assert 0.0 <= ms <= 100.0 and ms / 2.0 == pytest.approx(round(ms / 2.0))
        with CtrlRecorder() as rec:
            for _ in range(7):
                env.step(np.full(29, 0.2, dtype=np.float32))
        target = g1.DEFAULT_JOINT_POS + g1.ACTION_SCALE * np.float32(0.2).astype(np.float64)
        first = int(np.flatnonzero(np.all(np.array(rec.ctrl) == target, axis=1))[0])
        assert first * g1.PHYSICS_DT * 1000.0 == pytest.approx(ms)
        delays.append(ms)
    assert len(set(delays)) > 3, f"delays should vary with the seed, got {delays}"
    env.close()
