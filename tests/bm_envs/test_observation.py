"""The observation layout (the proprio schema of ``bm_envs.observation``, documented in ``bm_envs.envs.base``)
matches MuJoCo's own state and kinematics."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import bm_envs  # noqa: F401
from bm_envs import g1_constants as g1
from bm_envs.observation import PROPRIO_DIM, PROPRIO_SLICES, make_proprio, proprio_part
from bm_envs.rotations import projected_gravity, quat_to_mat, world_to_yaw_frame, yaw_from_quat

N = g1.NUM_JOINTS


@pytest.fixture(scope="module")
def stepped(joystick_env):
    """The Joystick env after a few steps with a tilted, spinning, moving root (all terms non-trivial)."""
    env = joystick_env.unwrapped
    env.reset(seed=0)
    env.data.qpos[3:7] = [0.95, 0.1, -0.2, 0.2]
    env.data.qpos[3:7] /= np.linalg.norm(env.data.qpos[3:7])
    env.data.qvel[:6] = [0.3, -0.2, 0.1, 0.5, -0.4, 0.8]
    rng = np.random.default_rng(0)
    for _ in range(2):
        action = rng.uniform(-0.5, 0.5, N).astype(np.float32)
        obs, _, _, _, info = env.step(action)
    return env, obs, info, action


def test_proprio_layout(stepped):
    env, obs, info, action = stepped
    d = env.data
    p = obs["proprio"]
    assert p.shape == (93,) and p.dtype == np.float32
    np.testing.assert_allclose(p[0:3], d.qvel[3:6], rtol=1e-6, atol=1e-6)  # body-frame angular velocity
    np.testing.assert_allclose(p[3:6], projected_gravity(d.qpos[3:7]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p[3:6], d.xmat[env.idx.pelvis].reshape(3, 3).T @ [0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(p[6 : 6 + N], [d.joint(n).qpos[0] for n in g1.JOINT_NAMES], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p[6 + N : 6 + 2 * N], [d.joint(n).qvel[0] for n in g1.JOINT_NAMES], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(p[6 + 2 * N :], action)


def test_root_and_body_terms(stepped):
    env, obs, info, _ = stepped
    m, d = env.model, env.data
    np.testing.assert_allclose(obs["root_pos_w"], d.qpos[:3], rtol=1e-6)
    np.testing.assert_allclose(obs["root_quat_w"], d.qpos[3:7], rtol=1e-6)  # wxyz
    np.testing.assert_allclose(quat_to_mat(d.qpos[3:7]), d.xmat[env.idx.pelvis].reshape(3, 3), atol=1e-9)
    np.testing.assert_allclose(obs["root_lin_vel_w"], d.qvel[:3], rtol=1e-6)
    vel6 = np.zeros(6)
    for i, name in enumerate(g1.BODY_NAMES):
        b = m.body(name).id
        np.testing.assert_allclose(obs["body_pos_w"][i], d.xpos[b], rtol=1e-6, atol=1e-6)
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, b, vel6, 0)  # body origin, world axes
        np.testing.assert_allclose(obs["body_lin_vel_w"][i], vel6[3:], rtol=1e-5, atol=1e-5, err_msg=name)
        if name == "pelvis":
            np.testing.assert_allclose(obs["root_ang_vel_w"], vel6[:3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(obs["body_pos_w"][0], obs["root_pos_w"], rtol=1e-6)
    yaw = yaw_from_quat(d.qpos[3:7])
    assert info["root_yaw"] == pytest.approx(yaw)
    np.testing.assert_allclose(info["root_vel_b"], world_to_yaw_frame(d.qvel[:2], yaw), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(info["root_xy"], d.qpos[:2])


def test_head_site(stepped):
    env, *_ = stepped
    d = env.data
    head = d.xpos[env.idx.torso] + d.xmat[env.idx.torso].reshape(3, 3) @ g1.HEAD_OFFSET_IN_TORSO
    np.testing.assert_allclose(d.site_xpos[env.idx.head_site], head, atol=1e-9)


def test_proprio_parts_tile_the_vector_in_order():
    stops = [(s.start, s.stop) for s in PROPRIO_SLICES.values()]
    assert stops[0][0] == 0 and stops[-1][1] == PROPRIO_DIM == 93
    assert all(a[1] == b[0] for a, b in zip(stops, stops[1:]))
    parts = [np.full(s.stop - s.start, i, dtype=float) for i, s in enumerate(PROPRIO_SLICES.values())]
    p = make_proprio(*parts)
    for i, name in enumerate(PROPRIO_SLICES):
        assert np.all(proprio_part(p, name) == i)
    assert proprio_part(np.stack([p, p]), "last_action").shape == (2, N)  # batched


def test_the_env_fills_the_proprio_parts_it_names():
    env = gym.make("BM-G1-Joystick-v0")
    env.reset(seed=0)
    action = np.full(N, 0.1, dtype=np.float32)
    obs, *_ = env.step(action)
    p = obs["proprio"]
    np.testing.assert_allclose(proprio_part(p, "last_action"), action)
    np.testing.assert_allclose(proprio_part(p, "joint_pos"), env.unwrapped.data.qpos[7:], atol=1e-6)
    np.testing.assert_allclose(proprio_part(p, "gravity_b")[2], -1.0, atol=0.05)  # upright: gravity along -z_b
    env.close()
