"""Every env id is registered and passes Gymnasium's and Stable-Baselines3's env checkers, bare and wrapped.

Accepted checker warnings (by design, see ``bm_envs.envs.base``): the action space is the joint range in action
units, hence not symmetric/normalized; observation boxes are unbounded; body/obstacle/waypoint tables are 2-D.
Any other warning fails the test.
"""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from bm_envs.envs.base import G1BaseEnv
from bm_envs.scene.scenario import ENV_IDS
from bm_envs.wrappers import ObservationNoise

ACCEPTED_WARNINGS = [
    r"symmetric and normalized",  # action space = joint limits in action units (both checkers)
    r"Box observation space (minimum|maximum) value is -?infinity",  # unbounded physical quantities
    r"unconventional shape",  # (32, 3) body tables, (8, 3) waypoints, (16, 8) obstacles: SB3 wants 1-D or images
    r"is different from the unwrapped version",  # gymnasium: we check the wrapped stack on purpose
]


def _unexpected(caught: list[warnings.WarningMessage]) -> list[str]:
    msgs = [str(w.message) for w in caught]
    return [m for m in msgs if not any(re.search(p, m) for p in ACCEPTED_WARNINGS)]


def test_all_ids_registered():
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        assert spec.entry_point == "bm_envs.make:make_g1_env"


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
def test_env_checkers(env_id, wrapped, all_wrappers):
    kwargs = all_wrappers if wrapped else {}
    env = gym.make(env_id, **kwargs)
    assert env.unwrapped.scenario.env == env_id  # the default scenario belongs to this env
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # gymnasium's checker on the raw env (no PassiveEnvChecker/OrderEnforcing in between); with wrappers on,
        # on the wrapper stack built by our factory, which is what users step.
        target = env.env.env if wrapped else env.unwrapped  # strip OrderEnforcing + PassiveEnvChecker
        assert isinstance(target, ObservationNoise if wrapped else G1BaseEnv)
        gym_check_env(target, skip_render_check=True)
        sb3_check_env(env, warn=True)
    assert _unexpected(caught) == []
    env.close()


def test_observations_stay_in_space(env_id, all_wrappers):
    env = gym.make(env_id, **all_wrappers)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.uniform(-0.3, 0.3, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(a)
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward) and isinstance(terminated, bool) and isinstance(truncated, bool)
        assert set(info["reward_terms"]) >= {"alive", "action_rate"}
    env.close()
