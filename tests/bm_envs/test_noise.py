"""ObservationNoise: uniform noise U(-s, s) on the proprioceptive terms only, with the configured scales."""

from __future__ import annotations

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.envs.joystick import G1JoystickEnv
from bm_envs.wrappers import ObservationNoise
from bm_envs.wrappers.noise import DEFAULT_SCALES

N = g1.NUM_JOINTS
BLOCKS = {  # slices of the 93-D proprio vector (layout of bm_envs.envs.base)
    "ang_vel": slice(0, 3),
    "gravity": slice(3, 6),
    "joint_pos": slice(6, 6 + N),
    "joint_vel": slice(6 + N, 6 + 2 * N),
    "last_action": slice(6 + 2 * N, 6 + 3 * N),
}


@pytest.fixture(scope="module")
def base():
    env = G1JoystickEnv()
    yield env
    env.close()


def _noise_samples(env: ObservationNoise, steps: int = 20) -> list[tuple[dict, dict]]:
    """(noisy, clean) observation pairs over a short rollout; clean = the env's own observation of that state."""
    noisy, _ = env.reset(seed=0)
    pairs = [(noisy, env.unwrapped._get_obs())]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        noisy, *_ = env.step(rng.uniform(-0.2, 0.2, 29).astype(np.float32))
        pairs.append((noisy, env.unwrapped._get_obs()))
    return pairs


@pytest.mark.parametrize("scales", [None, {"joint_pos": 0.0, "gravity": 0.1, "last_action": 0.05}])
def test_noise_only_on_proprio_within_scale(base, scales):
    env = ObservationNoise(base, scales)
    expected = {**DEFAULT_SCALES, **(scales or {})}
    diffs = []
    for noisy, clean in _noise_samples(env):
        assert noisy.keys() == clean.keys()
        for k in clean:
            assert noisy[k].dtype == np.float32
            if k != "proprio":
                np.testing.assert_array_equal(noisy[k], clean[k], err_msg=k)
        diffs.append(noisy["proprio"].astype(np.float64) - clean["proprio"])
    diffs = np.array(diffs)
    for term, sl in BLOCKS.items():
        s = expected[term]
        mag = np.abs(diffs[:, sl])
        assert mag.max() <= s * (1 + 1e-6) + 1e-5, f"{term}: |noise| {mag.max()} exceeds {s}"
        if s == 0:
            assert mag.max() < 1e-6, f"{term} should be noise-free"
        else:  # uniform over [-s, s]: the largest of hundreds of draws comes close to s, the mean |noise| ≈ s/2
            assert mag.max() > 0.9 * s and 0.35 * s < mag.mean() < 0.65 * s, term


def test_noise_is_seeded(base):
    env = ObservationNoise(base)
    a = [p[0]["proprio"] for p in _noise_samples(env, steps=3)]
    b = [p[0]["proprio"] for p in _noise_samples(env, steps=3)]
    np.testing.assert_array_equal(a, b)
    obs_other, _ = env.reset(seed=1)
    assert not np.array_equal(obs_other["proprio"], a[0])
