"""DomainRandomization: per-reset draws stay within the configured ranges, always start from the nominal model
(no drift across resets), and random pushes happen at the configured interval."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.envs.joystick import G1JoystickEnv
from bm_envs.wrappers import DomainRandomization, RandomizationConfig
from bm_envs.wrappers.randomization import nominal_params

N_RESETS = 12


@pytest.fixture(scope="module")
def nominal():
    """Model fields of a never-randomized env (independent of the wrapper's own copy)."""
    return nominal_params(G1JoystickEnv().model)


@pytest.fixture(scope="module")
def dr_env():
    env = DomainRandomization(G1JoystickEnv())
    yield env
    env.close()


def _in(x, lo, hi, tol=1e-12):
    x = np.asarray(x)
    return bool(np.all(x >= lo - tol) and np.all(x <= hi + tol))


def test_draws_within_ranges(dr_env, nominal):
    m, base, c = dr_env.unwrapped.model, dr_env.unwrapped, dr_env.config
    idx = base.idx
    dofs, bodies = idx.qvel_joint, idx.body
    other_bodies = np.setdiff1d(np.arange(m.nbody), bodies)
    frictions = []
    for seed in range(N_RESETS):
        _, info = dr_env.reset(seed=seed)
        drawn = info["randomization"]
        mu = m.geom_friction[idx.floor_geom, 0]
        frictions.append(mu)
        assert _in(mu, *c.friction) and mu == drawn["friction"]
        np.testing.assert_array_equal(m.pair_friction[:, :2], mu)
        others = np.arange(m.ngeom) != idx.floor_geom
        np.testing.assert_array_equal(m.geom_friction[others], nominal["geom_friction"][others])

        heavy = nominal["body_mass"][bodies] > 0
        ratio = m.body_mass[bodies][heavy] / nominal["body_mass"][bodies][heavy]
        assert _in(ratio, *c.mass_scale)
        np.testing.assert_allclose(m.body_inertia[bodies][heavy] / nominal["body_inertia"][bodies][heavy],
                                   np.repeat(ratio[:, None], 3, axis=1), rtol=1e-12)  # fmt: skip
        np.testing.assert_array_equal(m.body_mass[other_bodies], nominal["body_mass"][other_bodies])

        com = m.body_ipos[idx.torso] - nominal["body_ipos"][idx.torso]
        assert _in(com[0], *c.torso_com_x) and _in(com[1:], *c.torso_com_yz)
        np.testing.assert_allclose(com, drawn["torso_com_offset"], atol=1e-15)

        kp, kd = m.actuator_gainprm[:, 0], -m.actuator_biasprm[:, 2]
        assert _in(kp / g1.KP, *c.kp_scale) and _in(kd / g1.KD, *c.kd_scale)
        np.testing.assert_array_equal(m.actuator_biasprm[:, 1], -kp)
        assert _in(m.dof_armature[dofs] / nominal["dof_armature"][dofs], *c.armature_scale)
        assert _in(m.dof_damping[dofs] - nominal["dof_damping"][dofs], *c.joint_damping)
        np.testing.assert_array_equal(m.dof_armature[:6], nominal["dof_armature"][:6])  # free joint untouched

        assert _in(base.joint_offset, *c.default_pos_offset)
        np.testing.assert_array_equal(base.data.ctrl, g1.DEFAULT_JOINT_POS + base.joint_offset)
    assert len(set(frictions)) == N_RESETS, "a new draw at every reset"
    assert np.ptp(frictions) > 0.3


def test_no_drift_across_resets(dr_env, nominal):
    m = dr_env.unwrapped.model
    dr_env.reset(seed=123)
    first = nominal_params(m)
    for seed in range(N_RESETS):
        dr_env.reset(seed=seed)
    dr_env.reset(seed=123)
    for k, v in nominal_params(m).items():
        np.testing.assert_array_equal(v, first[k], err_msg=k)

    # with every term off, a reset puts back exactly the nominal model
    cfg = dr_env.config
    try:
        dr_env.config = RandomizationConfig(**{f.name: None for f in fields(RandomizationConfig)})
        dr_env.reset(seed=5)
        for k, v in nominal_params(m).items():
            np.testing.assert_array_equal(v, nominal[k], err_msg=k)
        np.testing.assert_array_equal(dr_env.unwrapped.joint_offset, 0.0)
    finally:
        dr_env.config = cfg


def _root_vel_trace(push_interval_s, steps: int) -> tuple[np.ndarray, list[int]]:
    env = DomainRandomization(G1JoystickEnv(), {"push_interval_s": push_interval_s})
    env.reset(seed=3)
    vel, pushes = [], []
    for _ in range(steps):
        obs, _, _, _, info = env.step(np.zeros(29, dtype=np.float32))
        vel.append(obs["root_lin_vel_w"])
        pushes.append(info["pushes"])
    env.close()
    return np.array(vel), pushes


def test_pushes_at_configured_interval():
    vel, pushes = _root_vel_trace((0.5, 0.5), steps=60)
    t = 0.02 * np.arange(1, 61)
    assert pushes == [int(np.floor(ti / 0.5 + 1e-9)) for ti in t]  # one push every 0.5 s
    vel_off, pushes_off = _root_vel_trace(None, steps=60)
    assert pushes_off == [0] * 60
    # identical physics draws, so the runs agree until the first push at t = 0.5 s (step 25) and then diverge
    np.testing.assert_array_equal(vel[:25], vel_off[:25])
    assert np.abs(vel[26] - vel_off[26]).max() > 0.05


def test_scenario_pushes():
    """Scenario ``pushes`` (no wrapper): interval [1, 1] s → one push per second, counted in ``info``."""

    def run(pushes: dict | None):
        sc = {"name": "p", "env": "BM-G1-Joystick-v0", "time_limit_s": 5.0}
        env = G1JoystickEnv(scenario={**sc, "pushes": pushes} if pushes else sc)
        env.reset(seed=0)
        out = [env.step(np.zeros(29, dtype=np.float32)) for _ in range(55)]
        env.close()
        return np.array([o[0]["root_lin_vel_w"] for o in out]), [o[4]["pushes"] for o in out]

    vel, counts = run({"interval_s": [1.0, 1.0], "lin_vel_mps": [0.3, 0.3]})
    vel_off, counts_off = run(None)
    assert counts.index(1) == 49 and counts[-1] == 1 and counts_off == [0] * 55  # pushed at t = 1.0 s (step 50)
    np.testing.assert_array_equal(vel[:49], vel_off[:49])
    assert np.linalg.norm(vel[49, :2] - vel_off[49, :2]) == pytest.approx(0.3, abs=1e-6)  # |Δv| = 0.3 m/s
