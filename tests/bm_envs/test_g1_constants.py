"""``g1_constants`` agrees with the pinned G1 MJCF, the compiled scene, and the metadata of the pinned ONNX
experts (kp/kd, joint names; the tracking experts also carry holosoma's robot config and URDF)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.assets import asset_path
from bm_envs.experts.locomotion import EXPERTS
from bm_envs.scene.builder import build_model

TRACKING_EXPERT = "holosoma_inference/models/wbt/ppo_g1_29dof_dancing.onnx"  # carries the full robot config


def _onnx_meta(relpath: str) -> dict[str, str]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(asset_path("holosoma-inference", relpath)), providers=["CPUExecutionProvider"])
    return sess.get_modelmeta().custom_metadata_map


@pytest.fixture(scope="module")
def mjcf_model() -> mujoco.MjModel:
    """The pinned MJCF as shipped (only the floor its contact pairs refer to is added)."""
    spec = mujoco.MjSpec.from_file(str(asset_path(*g1.MJCF_ASSET)))
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05])
    return spec.compile()


@pytest.fixture(scope="module")
def robot_cfg() -> dict:
    return json.loads(_onnx_meta(TRACKING_EXPERT)["experiment_config"])["robot"]


def _joint_ids(model):
    return np.array([model.joint(n).id for n in g1.JOINT_NAMES])


def test_table_shapes():
    assert g1.NUM_JOINTS == 29 and len(set(g1.JOINT_NAMES)) == 29 and g1.NUM_BODIES == 32
    for arr in (g1.DEFAULT_JOINT_POS, g1.ARMATURE, g1.TORQUE_LIMIT, g1.KP, g1.KD, g1.ACTION_SCALE):
        assert arr.shape == (29,) and np.all(np.isfinite(arr))
    assert g1.CONTROL_DT == pytest.approx(0.02)


def test_mjcf_agrees(mjcf_model):
    m = mjcf_model
    jid = _joint_ids(m)
    assert [m.actuator(i).name for i in range(m.nu)] == list(g1.JOINT_NAMES)  # motor order = Unitree order
    np.testing.assert_array_equal(m.dof_armature[m.jnt_dofadr[jid]], g1.ARMATURE)
    assert np.all(m.jnt_actfrclimited[jid])
    np.testing.assert_array_equal(m.jnt_actfrcrange[jid], np.c_[-g1.TORQUE_LIMIT, g1.TORQUE_LIMIT])
    lo, hi = m.jnt_range[jid].T
    assert np.all((lo < g1.DEFAULT_JOINT_POS) & (g1.DEFAULT_JOINT_POS < hi))
    assert set(g1.BODY_NAMES) <= {m.body(i).name for i in range(m.nbody)}
    np.testing.assert_allclose(g1.KP, g1.ARMATURE * (2 * np.pi * 10) ** 2)


def test_compiled_scene_agrees(mjcf_model):
    model, idx = build_model()
    jid = _joint_ids(model)
    np.testing.assert_array_equal(model.jnt_range[jid], mjcf_model.jnt_range[_joint_ids(mjcf_model)])
    np.testing.assert_array_equal(model.dof_armature[idx.qvel_joint], g1.ARMATURE)
    np.testing.assert_array_equal(model.actuator_gainprm[:, 0], g1.KP)
    np.testing.assert_array_equal(model.actuator_biasprm[:, :3], np.c_[np.zeros(29), -g1.KP, -g1.KD])
    np.testing.assert_array_equal(model.actuator_forcerange, np.c_[-g1.TORQUE_LIMIT, g1.TORQUE_LIMIT])
    np.testing.assert_array_equal(model.actuator_trnid[:, 0], jid)
    assert model.opt.timestep == g1.PHYSICS_DT


@pytest.mark.parametrize("expert", sorted(EXPERTS))
def test_locomotion_expert_metadata(expert):
    meta = _onnx_meta(EXPERTS[expert])
    assert tuple(json.loads(meta["dof_names"])) == g1.JOINT_NAMES
    np.testing.assert_allclose(json.loads(meta["kp"]), g1.KP, rtol=1e-8)
    np.testing.assert_allclose(json.loads(meta["kd"]), g1.KD, rtol=1e-8)


def test_tracking_expert_robot_config(robot_cfg, mjcf_model):
    assert tuple(robot_cfg["dof_names"]) == g1.JOINT_NAMES
    assert tuple(robot_cfg["body_names"]) == g1.BODY_NAMES
    np.testing.assert_allclose(robot_cfg["dof_armature_list"], g1.ARMATURE, rtol=1e-8)
    np.testing.assert_array_equal(robot_cfg["dof_effort_limit_list"], g1.TORQUE_LIMIT)
    default = robot_cfg["init_state"]["default_joint_angles"]
    np.testing.assert_array_equal([default[n] for n in g1.JOINT_NAMES], g1.DEFAULT_JOINT_POS)
    control = robot_cfg["control"]
    assert control["action_scale"] == 0.25 and control["action_scales_by_effort_limit_over_p_gain"]
    np.testing.assert_allclose(g1.BEYONDMIMIC_ACTION_SCALE, 0.25 * np.array(robot_cfg["dof_effort_limit_list"]) / g1.KP)
    jr = mjcf_model.jnt_range[_joint_ids(mjcf_model)]
    # the MJCF rounds limits to 5 decimals (wrist roll: 1.97222 vs 1.972222054)
    np.testing.assert_allclose(robot_cfg["dof_pos_lower_limit_list"], jr[:, 0], atol=1e-5)
    np.testing.assert_allclose(robot_cfg["dof_pos_upper_limit_list"], jr[:, 1], atol=1e-5)
    # mirror tables: holosoma's symmetry map and sign-flip list
    pairs = robot_cfg["symmetry_joint_names"]
    assert [g1.JOINT_NAMES[i] for i in g1.MIRROR_PERM] == [pairs[n] for n in g1.JOINT_NAMES]
    flipped = {n for n, s in zip(g1.JOINT_NAMES, g1.MIRROR_SIGN) if s < 0}
    assert flipped == set(robot_cfg["flip_sign_joint_names"])


def test_urdf_in_expert_metadata_agrees(mjcf_model):
    urdf = json.loads(_onnx_meta(TRACKING_EXPERT)["robot_urdf"])
    joints = [j for j in ET.fromstring(urdf).iter("joint") if j.get("type") == "revolute"]
    limits = {j.get("name"): j.find("limit").attrib for j in joints}
    lim = np.array([[float(limits[n][k]) for k in ("lower", "upper", "effort")] for n in g1.JOINT_NAMES])
    np.testing.assert_array_equal(lim[:, 2], g1.TORQUE_LIMIT)
    np.testing.assert_allclose(lim[:, :2], mjcf_model.jnt_range[_joint_ids(mjcf_model)], atol=1e-5)


def test_mirror(mjcf_model):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(4, 29))
    np.testing.assert_array_equal(g1.mirror_joints(g1.mirror_joints(q)), q)
    np.testing.assert_array_equal(g1.mirror_joints(g1.DEFAULT_JOINT_POS), g1.DEFAULT_JOINT_POS)
    assert not np.array_equal(g1.mirror_joints(q), q)
    np.testing.assert_array_equal(g1.MIRROR_PERM[g1.MIRROR_PERM], np.arange(29))  # an involution
    for name, mirrored in zip(g1.JOINT_NAMES, np.array(g1.JOINT_NAMES)[g1.MIRROR_PERM]):
        assert mirrored == name.replace("left", "@").replace("right", "left").replace("@", "right")
    # per-joint facts are left/right symmetric; joint ranges mirror (roll/yaw ranges flip sign)
    for arr in (g1.ARMATURE, g1.TORQUE_LIMIT, g1.KP, g1.KD):
        np.testing.assert_array_equal(arr[g1.MIRROR_PERM], arr)
    lo, hi = mjcf_model.jnt_range[_joint_ids(mjcf_model)].T
    flip = g1.MIRROR_SIGN < 0
    np.testing.assert_allclose(np.where(flip, -hi[g1.MIRROR_PERM], lo[g1.MIRROR_PERM]), lo, atol=1e-6)
    np.testing.assert_allclose(np.where(flip, -lo[g1.MIRROR_PERM], hi[g1.MIRROR_PERM]), hi, atol=1e-6)


def test_tracking_action_conversion():
    a = np.linspace(-1, 1, 29)
    q_tracking = g1.DEFAULT_JOINT_POS + g1.BEYONDMIMIC_ACTION_SCALE * a
    q_env = g1.DEFAULT_JOINT_POS + g1.ACTION_SCALE * g1.tracking_to_env_action(a)
    np.testing.assert_allclose(q_env, q_tracking, atol=1e-12)
