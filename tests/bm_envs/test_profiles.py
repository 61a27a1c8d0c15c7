"""Named randomization profiles (``bm_envs.wrappers.profiles``): what each resolves to, overrides on top, the env
factory's ``randomize="expert"``, and that the CLIs default to the expert's own ranges."""

from __future__ import annotations

import gymnasium as gym
import pytest

import bm_envs  # noqa: F401
from bm_envs.wrappers import ActionLatency, DomainRandomization, RandomizationConfig, resolve_profile


def test_profiles_resolve_to_their_ranges():
    ex = resolve_profile("expert")
    assert ex.randomization.friction == (0.5, 1.25) and ex.latency_ms == (0.0, 20.0)
    assert ex.randomization.kp_scale == (0.9, 1.1) and ex.randomization.mass_scale == (0.9, 1.2)
    assert ex.randomization.base_mass_add == (-1.0, 3.0) and ex.randomization.push_lin_vel_xy == (-1.0, 1.0)
    assert ex.randomization.push_interval_s == (5.0, 10.0) and ex.label == "expert"
    paper = resolve_profile("paper")
    assert paper.randomization == RandomizationConfig() and paper.latency_ms == (0.0, 100.0)
    off = resolve_profile("off")
    assert (
        off.randomization is None
        and off.latency_ms is None
        and off.env_kwargs() == {"randomize": False, "latency_ms": None}
    )


def test_overrides_apply_on_top_and_are_labelled():
    p = resolve_profile("paper", {"friction": [0.5, 1.25], "push_lin_vel_z": None}, latency_ms=(0, 20))
    assert p.randomization.friction == (0.5, 1.25) and p.randomization.push_lin_vel_z is None
    assert p.randomization.mass_scale == RandomizationConfig().mass_scale  # the rest stays the profile's
    assert p.latency_ms == (0.0, 20.0)
    assert p.label == "paper + friction 0.5–1.25, push_lin_vel_z off, latency 0–20 ms"
    assert p.to_dict()["overrides"]["randomization"] == {"friction": [0.5, 1.25], "push_lin_vel_z": None}
    q = resolve_profile("expert", randomize=False)
    assert q.randomization is None and q.latency_ms == (0.0, 20.0) and q.label == "expert + no randomization"
    r = resolve_profile("off", {"friction": [0.6, 0.7]})  # off + one term randomizes only that term
    assert r.randomization.friction == (0.6, 0.7) and r.randomization.mass_scale is None
    assert resolve_profile("expert", latency_ms=(0, 20)).label == "expert"  # same as the profile: no override


@pytest.mark.parametrize("bad, match", [
    (dict(name="experts"), "unknown randomization profile 'experts'; known: \\['expert', 'off', 'paper'\\]"),
    (dict(name="expert", randomization={"frction": [0, 1]}), "unknown randomization field"),
    (dict(name="expert", randomization={"friction": [1.0, 0.5]}), "lo <= hi"),
    (dict(name="expert", latency_ms=(20, 0)), "0 <= lo <= hi"),
    (dict(name="expert", randomization={"friction": [0.5, 1]}, randomize=False), "switched off"),
])  # fmt: skip
def test_bad_profiles_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_profile(**bad)


def _wrapper(env, cls):
    while env is not None and not isinstance(env, cls):
        env = getattr(env, "env", None)
    return env


def test_gym_make_takes_a_profile_name():
    env = gym.make("BM-G1-Joystick-v0", randomize="expert")
    dr, lat = _wrapper(env, DomainRandomization), _wrapper(env, ActionLatency)
    assert dr.config == resolve_profile("expert").randomization and lat.latency_ms == (0.0, 20.0)
    base = env.unwrapped
    m0 = float(dr._nominal["body_mass"][base.idx.pelvis])
    for seed in range(6):
        _, info = env.reset(seed=seed)
        drawn = info["randomization"]
        assert 0.5 <= drawn["friction"] <= 1.25 and -1.0 <= drawn["base_mass_add"] <= 3.0
        scale = drawn["mass_scale"][list(base.idx.body).index(base.idx.pelvis)]  # link scale, then the added kg
        assert base.model.body_mass[base.idx.pelvis] == pytest.approx(m0 * scale + drawn["base_mass_add"])
        assert 0.0 <= info["action_delay_ms"] <= 20.0
    env.close()
    env = gym.make("BM-G1-Joystick-v0", randomize="expert", latency_ms=(50, 50))  # explicit latency wins
    assert _wrapper(env, ActionLatency).latency_ms == (50.0, 50.0)
    env = gym.make("BM-G1-Joystick-v0", randomize="off")
    assert _wrapper(env, DomainRandomization) is None and _wrapper(env, ActionLatency) is None
    with pytest.raises(ValueError, match="known"):
        gym.make("BM-G1-Joystick-v0", randomize="expertt")


def test_clis_default_to_the_expert_profile():
    from bm_apps.evaluate import EvalConfig
    from bm_planner.data.rollout import CollectConfig

    assert EvalConfig().resolved_profile().label == "expert"
    cfg = CollectConfig()
    assert cfg.resolved_profile().randomization == resolve_profile("expert").randomization
    assert cfg.to_dict()["profile"] == "expert"
    # a data set from before profiles (no "profile" key): the paper ranges with its friction and latency
    legacy = CollectConfig.from_dict({**{k: v for k, v in cfg.to_dict().items() if k != "profile"},
                                      "latency_ms": [0.0, 20.0], "friction": [0.5, 1.25]})  # fmt: skip
    lp = legacy.resolved_profile()
    assert lp.randomization.friction == (0.5, 1.25) and lp.randomization.mass_scale == (0.95, 1.05)
    assert lp.latency_ms == (0.0, 20.0) and "profile" not in legacy.to_dict()
