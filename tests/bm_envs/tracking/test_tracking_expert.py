"""The exported holosoma dancing experts: reference extraction, observation layout and action scale (by behaviour),
and the loader for BeyondMimic-layout exports (built here from the real PPO expert's graph)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from bm_envs import g1_constants as g1
from bm_envs.tracking.expert import HOLOSOMA_TERMS, TrackingExpert, baked_tables
from bm_envs.tracking.motion import quat_angle, quat_conj, quat_mul, save_motion


@pytest.fixture(scope="module")
def ppo() -> TrackingExpert:
    return TrackingExpert("ppo")


@pytest.fixture(scope="module")
def ppo_env(ppo):
    env = gym.make("BM-G1-Tracking-v0", motion=ppo.motion, start="zero")
    yield env
    env.close()


def _rollout(env, expert, seconds: float, start: int = 0) -> tuple[int, str | None, float]:
    """Steps survived (≤ seconds), termination reason and mean MPJPE (mm) from ``start``."""
    obs, _ = env.reset(seed=0, options={"start_frame": start})
    expert.reset()
    errs = []
    for n in range(1, int(seconds / g1.CONTROL_DT) + 1):
        obs, _, term, trunc, info = env.step(expert.act(obs))
        errs.append(info["mpjpe_mm"])
        if term or trunc:
            return n, info["termination"] or "fell", float(np.mean(errs))
    return n, None, float(np.mean(errs))


@pytest.mark.parametrize("name, frames", [("ppo", 6574), ("fastsac", 6774)])
def test_extracted_motion_reproduces_the_baked_reference(name, frames):
    e = TrackingExpert(name)
    m = e.motion
    assert m.num_frames == frames and m.fps == 50.0 and m.body_names == g1.BODY_NAMES
    torso = m.body_index(["torso_link"])[0]
    for t in (0, 1234, frames - 1, frames + 50):  # the ONNX clips time steps past the end
        out = dict(
            zip(
                [o.name for o in e.session.get_outputs()],
                e.session.run(None, {"obs": np.zeros((1, 154), np.float32), "time_step": np.array([[t]], np.float32)}),
            )
        )
        k = min(t, frames - 1)
        np.testing.assert_allclose(m.dof_pos[k], out["joint_pos"][0], atol=1e-6)
        np.testing.assert_allclose(m.dof_vel[k], out["joint_vel"][0], atol=1e-5)
        # the pelvis we solved for puts our torso_link exactly at the exported anchor pose
        np.testing.assert_allclose(m.body_pos_w[k, torso], out["ref_pos_xyz"][0], atol=1e-5)
        assert quat_angle(quat_mul(quat_conj(m.body_quat_w[k, torso]), out["ref_quat_xyzw"][0][[3, 0, 1, 2]])) < 1e-5
    feet = m.body_index(["left_foot_contact_point", "right_foot_contact_point"])
    assert np.percentile(m.body_pos_w[:, feet, 2].min(axis=1), 5) > -0.01  # feet on (not through) the floor


def test_sorted_observation_layout_dances_and_the_listed_order_falls(ppo, ppo_env):
    """The 154-D layout is the terms sorted by name: with it the expert dances; with the order its config lists
    the terms in, it loses the motion within seconds."""
    _, reason, mpjpe = _rollout(ppo_env, ppo, 4.0)
    assert reason is None and mpjpe < 40.0 and ppo.reference_error == 0.0
    listed = TrackingExpert("ppo")
    listed.terms = ("motion_command", "motion_ref_ori_b", "base_ang_vel", "dof_pos", "dof_vel", "actions")
    n_bad, reason_bad, _ = _rollout(ppo_env, listed, 4.0)
    assert reason_bad is not None and n_bad < 100


def test_fastsac_expert_acts_in_radians():
    """FastSAC's actions are joint offsets in rad (tanh bounded by the joint limits); with BeyondMimic's per-joint
    scale (the PPO expert's) it falls within 2 s, with its own it dances."""
    e = TrackingExpert("fastsac")
    env = gym.make("BM-G1-Tracking-v0", motion=e.motion, start="zero")
    np.testing.assert_allclose(e.action_scale, 1.0)
    assert _rollout(env, e, 3.0, start=150)[1] is None
    wrong = TrackingExpert("fastsac", action_scale="beyondmimic")
    n, reason, _ = _rollout(env, wrong, 3.0, start=150)
    assert reason is not None and n < 100


def _beyondmimic_export(tmp_path, ppo: TrackingExpert) -> tuple:
    """The PPO expert re-exported in BeyondMimic's layout: its joints in another order, observation terms in
    BeyondMimic's order with its names, CSV metadata, anchor/pelvis body tables instead of ref_pos/quat."""
    p = np.random.default_rng(1).permutation(29)  # policy joint k = our joint p[k]
    inv = np.argsort(p)
    bm_terms = ["command", "motion_anchor_ori_b", "base_ang_vel", "joint_pos", "joint_vel", "actions"]
    dims = {"command": 58, "motion_anchor_ori_b": 6, "base_ang_vel": 3, "joint_pos": 29, "joint_vel": 29, "actions": 29}
    start = dict(zip(bm_terms, np.cumsum([0] + [dims[t] for t in bm_terms])))
    # holosoma slot <- BeyondMimic slot (joint-space terms re-permuted into our order)
    idx = np.concatenate([start["actions"] + inv, start["base_ang_vel"] + np.arange(3), start["joint_pos"] + inv,
                          start["joint_vel"] + inv, start["command"] + inv, start["command"] + 29 + inv,
                          start["motion_anchor_ori_b"] + np.arange(6)])  # fmt: skip
    model = onnx.load(str(ppo.path))
    g = model.graph
    tables = {"joint_pos", "joint_vel", "ref_pos_xyz", "ref_quat_xyzw"}
    drop = [nd for nd in g.node if nd.op_type == "Gather" and nd.output[0] in tables]
    clip = drop[0].input[1]
    dropped = {nd.input[0] for nd in drop}
    keep = [nd for nd in g.node if nd not in drop and not (nd.op_type == "Constant" and nd.output[0] in dropped)]
    for nd in keep:
        nd.input[:] = ["obs_h" if i == "obs" else i for i in nd.input]
        nd.output[:] = ["actions_h" if o == "actions" else o for o in nd.output]
    m = ppo.motion
    bodies = m.body_index(["pelvis", "torso_link"])
    tabs = {"joint_pos": m.dof_pos[:, p], "joint_vel": m.dof_vel[:, p], "body_pos_w": m.body_pos_w[:, bodies],
            "body_quat_w": m.body_quat_w[:, bodies]}  # fmt: skip
    const = lambda name, arr: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))
    nodes = [
        const("idx", idx.astype(np.int64)),
        helper.make_node("Gather", ["obs", "idx"], ["obs_h"], axis=1),
        *keep,
        const("perm", p.astype(np.int64)),
        helper.make_node("Gather", ["actions_h", "perm"], ["actions"], axis=1),
    ]
    for k, v in tabs.items():
        nodes += [const(f"tab_{k}", v.astype(np.float32)), helper.make_node("Gather", [f"tab_{k}", clip], [k], axis=0)]
    outs = [helper.make_tensor_value_info("actions", onnx.TensorProto.FLOAT, [1, 29])] + [
        helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT, [1, *v.shape[1:]]) for k, v in tabs.items()
    ]
    graph = helper.make_graph(nodes, "bm", list(g.input), outs, initializer=list(g.initializer))
    new = helper.make_model(graph, opset_imports=model.opset_import)
    csv = lambda v: ",".join(str(x) for x in v)
    names = [g1.JOINT_NAMES[k] for k in p]
    for k, v in {"joint_names": csv(names), "default_joint_pos": csv(g1.DEFAULT_JOINT_POS[p]),
                 "action_scale": csv(g1.BEYONDMIMIC_ACTION_SCALE[p]), "joint_stiffness": csv(g1.KP[p]),
                 "joint_damping": csv(g1.KD[p]), "observation_names": csv(bm_terms), "anchor_body_name": "torso_link",
                 "body_names": "pelvis,torso_link"}.items():  # fmt: skip
        new.metadata_props.add(key=k, value=v)
    path = tmp_path / "beyondmimic_policy.onnx"
    onnx.save(new, str(path))
    return path, p


def test_beyondmimic_layout_export_acts_like_the_original(tmp_path, ppo, ppo_env):
    path, p = _beyondmimic_export(tmp_path, ppo)
    bm = TrackingExpert(path)
    assert bm.format == "beyondmimic" and bm.terms[0] == "motion_command"
    np.testing.assert_array_equal(bm.perm, p)
    assert set(baked_tables(path)) == {"joint_pos", "joint_vel", "body_pos_w", "body_quat_w"}
    np.testing.assert_allclose(bm.motion.joint_pos, ppo.motion.joint_pos, atol=2e-5)
    obs, _ = ppo_env.reset(seed=0, options={"start_frame": 500})
    ppo.reset()
    for _ in range(25):  # in lockstep on the same observations
        a_ref, a_bm = ppo.act(obs), bm.act(obs)
        np.testing.assert_allclose(a_bm, a_ref, rtol=1e-5, atol=1e-5)
        obs, *_ = ppo_env.step(a_ref)
    assert bm.reference_error < 1e-5


def test_policy_without_baked_motion_plus_npz(tmp_path, ppo, ppo_env):
    """A policy exported without its motion (input ``obs`` only, output ``actions``) runs with a motion file."""
    model = onnx.load(str(ppo.path))
    g = model.graph
    actor = [nd for nd in g.node if "_wrapped_actor" in nd.name or nd.output[0] == "actions"]
    ins, outs = [i for i in g.input if i.name == "obs"], [o for o in g.output if o.name == "actions"]
    graph = helper.make_graph(actor, "policy", ins, outs, initializer=list(g.initializer))
    new = helper.make_model(graph, opset_imports=model.opset_import)
    for m in model.metadata_props:
        new.metadata_props.add(key=m.key, value=m.value)
    path = tmp_path / "policy_only.onnx"
    onnx.save(new, str(path))
    with pytest.raises(ValueError, match="no motion baked in"):
        TrackingExpert(path)
    motion_file = tmp_path / "dance.npz"
    save_motion(ppo.motion, motion_file)
    bare = TrackingExpert(path, motion=motion_file)
    np.testing.assert_array_equal(bare.motion.joint_pos, ppo.motion.joint_pos)
    obs, _ = ppo_env.reset(seed=0, options={"start_frame": 2000})
    ppo.reset()
    for _ in range(10):
        a = ppo.act(obs)
        np.testing.assert_allclose(bare.act(obs), a, rtol=1e-6, atol=1e-6)
        obs, *_ = ppo_env.step(a)


def test_loader_rejects_what_it_cannot_run(tmp_path, ppo):
    with pytest.raises(FileNotFoundError, match="known names"):
        TrackingExpert(tmp_path / "nope.onnx")
    with pytest.raises(ValueError, match="action_scale"):
        TrackingExpert("ppo", action_scale="huge")
    model = onnx.load(str(ppo.path))
    model.metadata_props.add(key="joint_stiffness", value=",".join(["1.0"] * 29))
    del model.metadata_props[[m.key for m in model.metadata_props].index("kp")]
    onnx.save(model, str(tmp_path / "gains.onnx"))
    with pytest.raises(ValueError, match="PD gains"):
        TrackingExpert(tmp_path / "gains.onnx")
    assert TrackingExpert(tmp_path / "gains.onnx", check_gains=False).terms == HOLOSOMA_TERMS
    with pytest.raises(ValueError, match="obs, info"):
        ppo.predict((np.zeros(3), {}))
