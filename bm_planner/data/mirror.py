"""Left/right mirror symmetry of the G1: actions, observations, simulator states, and two consistency checks.

The mirror is the reflection through the robot's sagittal (x-z) plane. Positions and linear velocities flip y;
rotation vectors and angular velocities (axial vectors) flip x and z; wxyz quaternions become (w, −x, y, −z);
left and right bodies and joints swap (``g1_constants.MIRROR_PERM``/``MIRROR_SIGN`` for joints). States are
mirrored by :meth:`StateRepresentation.mirror_states`.

Checks (run by the tests, numbers in the data report):

* :func:`expert_mirror_error` — does the expert act symmetrically: ``mirror(π(o)) ≈ π(mirror(o))``?
* :func:`replay_mirror_error` — is a mirrored rollout physically consistent: start the simulator in the mirrored
  state, execute the mirrored actions, and compare with the mirror of the original rollout.
"""

from __future__ import annotations

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.experts.locomotion import LocomotionExpert

_BODY_PERM = np.array([g1.BODY_NAMES.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
                       for n in g1.BODY_NAMES])  # fmt: skip
_POS = np.array([1.0, -1.0, 1.0])
_AXIAL = np.array([-1.0, 1.0, -1.0])


def mirror_actions(a):
    """Mirror joint-space vectors ``(..., 29)`` (numpy or torch)."""
    if isinstance(a, np.ndarray):
        return g1.mirror_joints(a).astype(a.dtype, copy=False)
    import torch

    perm = torch.as_tensor(g1.MIRROR_PERM, device=a.device)
    return a[..., perm] * torch.as_tensor(g1.MIRROR_SIGN, dtype=a.dtype, device=a.device)


def mirror_proprio(p: np.ndarray) -> np.ndarray:
    """Mirror the env's ``proprio`` ``(..., 93)``: ang. velocity_b, gravity_b, q, q̇, last action."""
    n = g1.NUM_JOINTS
    return np.concatenate([p[..., 0:3] * _AXIAL, p[..., 3:6] * _POS, g1.mirror_joints(p[..., 6 : 6 + n]),
                           g1.mirror_joints(p[..., 6 + n : 6 + 2 * n]), g1.mirror_joints(p[..., 6 + 2 * n :])],
                          axis=-1).astype(p.dtype)  # fmt: skip


def mirror_quat(q: np.ndarray) -> np.ndarray:
    """Mirror wxyz quaternions ``(..., 4)``: ``R → M R M`` with ``M = diag(1, −1, 1)``."""
    return q * np.array([1.0, -1.0, 1.0, -1.0], dtype=q.dtype)


def mirror_obs(obs: dict) -> dict:
    """Mirror a bm env observation dict (single step or stacked ``(T, ...)``); unknown keys are dropped."""
    out = {}
    for k, v in obs.items():
        v = np.asarray(v)
        if k in ("root_pos_w", "root_lin_vel_w"):
            out[k] = v * _POS.astype(v.dtype)
        elif k == "root_ang_vel_w":
            out[k] = v * _AXIAL.astype(v.dtype)
        elif k == "root_quat_w":
            out[k] = mirror_quat(v)
        elif k in ("body_pos_w", "body_lin_vel_w"):
            out[k] = v[..., _BODY_PERM, :] * _POS.astype(v.dtype)
        elif k == "proprio":
            out[k] = mirror_proprio(v)
        elif k == "command":
            out[k] = v * np.array([1.0, -1.0, -1.0], dtype=v.dtype)
    return out


def mirror_mj_state(qpos: np.ndarray, qvel: np.ndarray, idx) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a MuJoCo (qpos, qvel) of the G1 scene (free joint: world position, wxyz, world lin. vel, local ang.
    vel; ``idx`` = the env's ``SceneIndex`` for the actuated joints)."""
    qp, qv = qpos.copy(), qvel.copy()
    qp[:3] *= _POS
    qp[3:7] = mirror_quat(qpos[3:7])
    qv[:3] *= _POS
    qv[3:6] *= _AXIAL
    qp[idx.qpos_joint] = g1.mirror_joints(qpos[idx.qpos_joint])
    qv[idx.qvel_joint] = g1.mirror_joints(qvel[idx.qvel_joint])
    return qp, qv


def expert_mirror_error(expert: LocomotionExpert, proprios: np.ndarray, commands: np.ndarray, rng) -> dict:
    """Symmetry of the expert on recorded states: ``|mirror(π(o)) − π(mirror(o))|`` vs ``|π(o)|`` (action units).

    ``proprios`` (n, 93), ``commands`` (n, 3). The gait phase is drawn at random per sample and swapped left↔right
    in the mirror; the previous action is taken from the recorded proprio. Returns mean/max absolute errors and
    the mean absolute action for scale.
    """
    from bm_envs.experts.locomotion import ExpertState

    errs, scale = [], []
    for p, c in zip(np.asarray(proprios, np.float64), np.asarray(commands, np.float64)):
        ph = rng.uniform(-np.pi, np.pi)
        st = ExpertState(phase=np.array([ph, ph + np.pi]), last_action=p[-g1.NUM_JOINTS :].astype(np.float32))
        st_m = ExpertState(phase=st.phase[::-1].copy(), last_action=g1.mirror_joints(st.last_action).astype(np.float32))
        run = lambda x: expert.session.run(None, {expert.input_name: x})[0][0]
        a = run(expert.build_obs(p, c, st))
        a_m = run(expert.build_obs(mirror_proprio(p), c * np.array([1.0, -1.0, -1.0]), st_m))
        errs.append(np.abs(g1.mirror_joints(a) - a_m))
        scale.append(np.abs(a))
    errs, scale = np.array(errs), np.array(scale)
    return {"mean_abs_err": float(errs.mean()), "max_abs_err": float(errs.max()), "mean_abs_action": float(scale.mean()),
            "rel_err": float(errs.mean() / scale.mean())}  # fmt: skip


def replay_mirror_error(env, qpos, qvel, actions, rep, mirror_action=g1.mirror_joints) -> dict:
    """Replay ``actions`` (n, 29) from (qpos, qvel) and ``mirror_action(actions)`` from the mirrored state in
    ``env`` (a bm env without latency/randomization); compare the mirror image of the first replay with the second.
    Returns max errors over the n steps: root position (m), tracked body positions (m), state vector."""
    base = env.unwrapped

    def replay(qp, qv, acts):
        env.reset(seed=0)
        base.data.qpos[:], base.data.qvel[:] = qp, qv
        base.data.qacc_warmstart[:] = 0
        import mujoco

        mujoco.mj_forward(base.model, base.data)
        obs = []
        for a in acts:
            obs.append(env.step(a)[0])
        return {k: np.stack([o[k] for o in obs]) for k in ("root_pos_w", "root_quat_w", "root_lin_vel_w",
                                                              "body_pos_w", "body_lin_vel_w")}  # fmt: skip

    orig = replay(qpos, qvel, actions)
    qp_m, qv_m = mirror_mj_state(np.asarray(qpos), np.asarray(qvel), base.idx)
    mirr = replay(qp_m, qv_m, mirror_action(np.asarray(actions)))
    ref = mirror_obs(orig)
    ids = rep.body_ids
    s_ref = rep.encode(ref, ref_index=0)
    s_mir = rep.encode(mirr, ref_index=0)
    return {
        "steps": len(actions),
        "root_pos_err_m": float(np.abs(ref["root_pos_w"] - mirr["root_pos_w"]).max()),
        "body_pos_err_m": float(np.abs(ref["body_pos_w"][:, ids] - mirr["body_pos_w"][:, ids]).max()),
        "state_err_max": float(np.abs(s_ref - s_mir).max()),
        "state_mirror_identity_err": float(np.abs(rep.mirror_states(rep.encode(orig, ref_index=0)) - s_ref).max()),
    }
