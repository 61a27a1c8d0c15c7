"""The paper's "Body-Pos" state: root motion relative to the current character frame, bodies in their own frame.

Frames. The *yaw frame* (character frame) of step t has its origin at the root (pelvis) position projected on
the ground, ``(x_t, y_t, 0)``, and its x axis along the root heading ``yaw_t`` (the pelvis x axis projected on
the ground, :func:`bm_envs.rotations.yaw_from_quat`); z stays world-up, so heights are absolute. A window's
*reference frame* is the yaw frame of its step ``t0`` (the last history step, index ``N_HISTORY``).

Per-step layout of the state vector (``D = 9 + 6·K`` for K tracked bodies; names index ``rep.slices``):

==================  =========  ===============================================================================
slice               size       content
==================  =========  ===============================================================================
``root_pos``        3          root position in the reference frame (m; z = absolute height)
``root_lin_vel``    3          root linear velocity in the reference frame (m/s)
``root_rotvec``     3          rotation vector of the root orientation relative to the reference frame (rad)
``body_pos``        3·K        positions of the tracked bodies in the yaw frame of their own step (m), body-major
``body_lin_vel``    3·K        linear velocities of the bodies' origins, same frames (m/s), body-major
==================  =========  ===============================================================================

Default body set :data:`DEFAULT_BODIES` (K = 13, D = 87): hips (roll links), knees, ankles (roll links), torso,
shoulders (roll links), elbows, wrists (yaw links). ``"all"`` tracks the 32 bodies of
``g1_constants.BODY_NAMES`` (D = 201); any tuple of body names closed under left/right mirroring works.

:meth:`StateRepresentation.encode` (numpy) maps env observations to states; :meth:`StateRepresentation.decode`
(torch, differentiable, batched) maps states back to world frame given the reference frame — guidance costs
backpropagate through it. Each step decodes independently, so a slice of a window's steps decodes too.
Quaternions are wxyz.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.rotations import yaw_from_quat
from bm_planner.data.trajectory import N_HISTORY

DEFAULT_BODIES: tuple[str, ...] = (
    "left_hip_roll_link", "right_hip_roll_link", "left_knee_link", "right_knee_link",
    "left_ankle_roll_link", "right_ankle_roll_link", "torso_link",
    "left_shoulder_roll_link", "right_shoulder_roll_link", "left_elbow_link", "right_elbow_link",
    "left_wrist_yaw_link", "right_wrist_yaw_link",
)  # fmt: skip
OBS_KEYS = ("root_pos_w", "root_quat_w", "root_lin_vel_w", "body_pos_w", "body_lin_vel_w")
_REFLECT = np.array([1.0, -1.0, 1.0])  # reflection through the x-z plane of a yaw frame
_AXIAL = np.array([-1.0, 1.0, -1.0])  # how an axial vector (rotation vector) transforms under it


def resolve_bodies(bodies: str | Sequence[str]) -> tuple[str, ...]:
    """``"default"`` → :data:`DEFAULT_BODIES`, ``"all"`` → all 32 bodies, or a validated tuple of names."""
    if isinstance(bodies, str):
        if bodies == "default":
            return DEFAULT_BODIES
        if bodies == "all":
            return g1.BODY_NAMES
        raise ValueError(f"bodies must be 'default', 'all' or a sequence of body names, got {bodies!r}")
    names = tuple(bodies)
    unknown = [b for b in names if b not in g1.BODY_NAMES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"bad body set {names!r}: unknown {unknown}, empty or duplicated; "
                         f"known bodies: {g1.BODY_NAMES}")  # fmt: skip
    return names


def mirror_body_name(name: str) -> str:
    """``left_*`` ↔ ``right_*``; other bodies map to themselves."""
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


def quat_rel_yaw_rotvec(quat: np.ndarray, ref_yaw: np.ndarray) -> np.ndarray:
    """Rotation vector ``(..., 3)`` of ``Rz(ref_yaw)ᵀ · R(quat)``; ``quat`` (..., 4) wxyz, ``ref_yaw`` (...,) rad."""
    q = np.asarray(quat, dtype=np.float64)
    c, s = np.cos(ref_yaw / 2), np.sin(ref_yaw / 2)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    # (c, 0, 0, -s) ⊗ (w, x, y, z)
    rw, rx, ry, rz = c * w + s * z, c * x + s * y, c * y - s * x, c * z - s * w
    sign = np.where(rw < 0, -1.0, 1.0)
    rw, v = rw * sign, np.stack([rx, ry, rz], axis=-1) * sign[..., None]
    n = np.linalg.norm(v, axis=-1)
    scale = np.where(n > 1e-8, 2 * np.arctan2(n, rw) / np.maximum(n, 1e-300), 2.0 / np.maximum(rw, 1e-12))
    return v * scale[..., None]


def _to_yaw_frame(v: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Rotate world vectors ``(..., 3)`` by ``Rz(yaw)ᵀ`` (c, s broadcast against ``v[..., 0]``)."""
    return np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1], v[..., 2]], axis=-1)


class StateRepresentation:
    """Body-Pos state of a set of tracked bodies; see the module docstring for frames and layout.

    Attributes: ``bodies`` (names), ``body_ids`` (indices into ``BODY_NAMES``), ``K``, ``dim`` (D),
    ``slices`` (name → slice of the D axis), ``mirror_perm`` / ``mirror_sign`` (D,) with
    ``mirror(x)[..., i] = sign[i] * x[..., perm[i]]``.
    """

    def __init__(self, bodies: str | Sequence[str] = "default"):
        self.bodies = resolve_bodies(bodies)
        missing = [mirror_body_name(b) for b in self.bodies if mirror_body_name(b) not in self.bodies]
        if missing:
            raise ValueError(f"body set must be closed under left/right mirroring; missing {missing}")
        self.body_ids = np.array([g1.BODY_NAMES.index(b) for b in self.bodies])
        self.K = K = len(self.bodies)
        self.dim = 9 + 6 * K
        self.slices = {
            "root_pos": slice(0, 3),
            "root_lin_vel": slice(3, 6),
            "root_rotvec": slice(6, 9),
            "body_pos": slice(9, 9 + 3 * K),
            "body_lin_vel": slice(9 + 3 * K, 9 + 6 * K),
        }
        partner = np.array([self.bodies.index(mirror_body_name(b)) for b in self.bodies])
        body_perm = (3 * partner[:, None] + np.arange(3)).reshape(-1)
        self.mirror_perm = np.concatenate([np.arange(9), 9 + body_perm, 9 + 3 * K + body_perm])
        self.mirror_sign = np.concatenate([_REFLECT, _REFLECT, _AXIAL, np.tile(_REFLECT, 2 * K)])

    def __repr__(self) -> str:
        return f"StateRepresentation(K={self.K}, dim={self.dim})"

    def layout(self) -> dict[str, Any]:
        """JSON-able description (stored in dataset manifests)."""
        return {"bodies": list(self.bodies), "dim": self.dim,
                "slices": {k: [v.start, v.stop] for k, v in self.slices.items()}}  # fmt: skip

    # ------------------------------------------------------------------ encoding (numpy)
    def body_features(self, root_pos_w, root_quat_w, body_pos_w, body_lin_vel_w) -> np.ndarray:
        """``(..., 6K)``: tracked bodies' positions and velocities, each step in its own yaw frame.

        Inputs ``(..., 3)``, ``(..., 4)``, ``(..., 32, 3)``, ``(..., 32, 3)`` in world frame (m, wxyz, m/s).
        """
        yaw = yaw_from_quat(root_quat_w)[..., None]
        c, s = np.cos(yaw), np.sin(yaw)
        bp = np.asarray(body_pos_w, dtype=np.float64)[..., self.body_ids, :]
        bv = np.asarray(body_lin_vel_w, dtype=np.float64)[..., self.body_ids, :]
        origin = np.asarray(root_pos_w, dtype=np.float64)[..., None, :] * np.array([1.0, 1.0, 0.0])
        pos = _to_yaw_frame(bp - origin, c, s)
        vel = _to_yaw_frame(bv, c, s)
        lead = pos.shape[:-2]
        return np.concatenate([pos.reshape(*lead, -1), vel.reshape(*lead, -1)], axis=-1)

    @staticmethod
    def root_features(root_pos_w, root_quat_w, root_lin_vel_w, ref_pos_w, ref_yaw) -> np.ndarray:
        """``(..., T, 9)``: root position, velocity and rotation vector relative to the reference frame.

        ``root_*``: ``(..., T, 3|4|3)`` world frame; ``ref_pos_w`` ``(..., 3)`` (only x, y used), ``ref_yaw`` ``(...,)``.
        """
        ref_yaw = np.asarray(ref_yaw, dtype=np.float64)[..., None]
        c, s = np.cos(ref_yaw), np.sin(ref_yaw)
        p = np.asarray(root_pos_w, dtype=np.float64)
        ref = np.asarray(ref_pos_w, dtype=np.float64)[..., None, :] * np.array([1.0, 1.0, 0.0])
        pos = _to_yaw_frame(p - ref, c, s)
        vel = _to_yaw_frame(np.asarray(root_lin_vel_w, dtype=np.float64), c, s)
        rv = quat_rel_yaw_rotvec(root_quat_w, ref_yaw)
        return np.concatenate([pos, vel, rv], axis=-1)

    def encode(self, window_obs: dict, ref_index: int = N_HISTORY):
        """States ``(..., T, D)`` (float64, or a torch tensor if the inputs are tensors) of a window of env obs.

        ``window_obs`` holds :data:`OBS_KEYS` with shapes ``(..., T, 3)``, ``(..., T, 4)``, ``(..., T, 3)``,
        ``(..., T, 32, 3)``, ``(..., T, 32, 3)``. The reference frame is the yaw frame of step ``ref_index``
        (default ``N_HISTORY``: the current step of a training window or of an inference history of N+1 steps).
        """
        is_torch = any(type(v).__module__.startswith("torch") for v in window_obs.values())
        obs = {}
        for k in OBS_KEYS:
            if k not in window_obs:
                raise KeyError(f"window_obs lacks {k!r}; it has {sorted(window_obs)}")
            v = window_obs[k]
            obs[k] = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64)
        T = obs["root_pos_w"].shape[-2] if obs["root_pos_w"].ndim >= 2 else 0
        lead = obs["root_pos_w"].shape[:-1]
        expect = {"root_pos_w": (3,), "root_quat_w": (4,), "root_lin_vel_w": (3,),
                  "body_pos_w": (g1.NUM_BODIES, 3), "body_lin_vel_w": (g1.NUM_BODIES, 3)}  # fmt: skip
        for k, tail in expect.items():
            if T == 0 or obs[k].shape != lead + tail:
                raise ValueError(f"window_obs[{k!r}] must have shape (..., T, {', '.join(map(str, tail))}) with "
                                 f"leading dims {lead}, got {obs[k].shape}")  # fmt: skip
            if not np.all(np.isfinite(obs[k])):
                raise ValueError(f"window_obs[{k!r}] contains NaN or inf")
        if not -T <= ref_index < T:
            raise ValueError(f"ref_index {ref_index} is outside a window of T={T} steps")
        ref_pos = obs["root_pos_w"][..., ref_index, :]
        ref_yaw = yaw_from_quat(obs["root_quat_w"][..., ref_index, :])
        root = self.root_features(obs["root_pos_w"], obs["root_quat_w"], obs["root_lin_vel_w"], ref_pos, ref_yaw)
        body = self.body_features(obs["root_pos_w"], obs["root_quat_w"], obs["body_pos_w"], obs["body_lin_vel_w"])
        out = np.concatenate([root, body], axis=-1)
        if is_torch:
            import torch

            return torch.from_numpy(out)
        return out

    @staticmethod
    def reference_frame(obs: dict) -> tuple[np.ndarray, float]:
        """``(ref_pos_w (3,), ref_yaw)`` of one env observation (the current step's character frame)."""
        return np.asarray(obs["root_pos_w"], dtype=np.float64).copy(), float(yaw_from_quat(obs["root_quat_w"]))

    # ------------------------------------------------------------------ decoding (torch; numpy for guidance)
    def decode(self, states, ref_pos_w, ref_yaw, keys=None) -> dict:
        """World-frame trajectory of states ``(B, T, D)`` relative to reference frames ``(B, 3)``, ``(B,)``.

        Returns a dict of tensors (numpy arrays if ``states`` is numpy): ``root_pos_w`` (B, T, 3) m,
        ``root_lin_vel_w`` (B, T, 3) m/s, ``root_rotmat_w`` (B, T, 3, 3), ``root_yaw`` (B, T) rad
        (``ref_yaw`` + heading relative to it in (-π, π], not wrapped), ``body_pos_w`` (B, T, K, 3) m,
        ``body_lin_vel_w`` (B, T, K, 3) m/s. Differentiable w.r.t. ``states`` (and the reference). ``keys``: only
        these entries are needed (the body entries and ``root_rotmat_w`` are skipped unless asked for; guidance calls
        this per step). Numpy states without ``root_rotmat_w`` are decoded in numpy (float64), else in torch.
        """
        import torch

        from bm_planner.data._torch_rot import rotvec_to_matrix, yaw_of_rotvec

        as_numpy = isinstance(states, np.ndarray)
        need_rot = keys is None or "root_rotmat_w" in keys
        if as_numpy and not need_rot:
            xp, x = np, np.asarray(states, dtype=np.float64)
            ref_p, ref_y = np.asarray(ref_pos_w, dtype=np.float64), np.asarray(ref_yaw, dtype=np.float64)
        else:
            xp, x = torch, torch.as_tensor(states, dtype=torch.float64 if as_numpy else None)
            ref_p, ref_y = torch.as_tensor(ref_pos_w).to(x), torch.as_tensor(ref_yaw).to(x)
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"states must have shape (B, T, {self.dim}), got {tuple(x.shape)}")
        B, T, _ = x.shape
        if ref_p.shape != (B, 3) or ref_y.shape != (B,):
            raise ValueError(f"ref_pos_w must be ({B}, 3) and ref_yaw ({B},), got {tuple(ref_p.shape)}, "
                             f"{tuple(ref_y.shape)}")  # fmt: skip
        c0, s0 = xp.cos(ref_y)[:, None], xp.sin(ref_y)[:, None]  # (B, 1)

        def from_ref(v):  # (B, T, 3) in the reference frame -> world orientation
            return xp.stack([c0 * v[..., 0] - s0 * v[..., 1], s0 * v[..., 0] + c0 * v[..., 1], v[..., 2]], -1)

        sl = self.slices
        rp = from_ref(x[..., sl["root_pos"]])
        root_pos = xp.stack([rp[..., 0] + ref_p[:, None, 0], rp[..., 1] + ref_p[:, None, 1], rp[..., 2]], -1)
        root_vel = from_ref(x[..., sl["root_lin_vel"]])
        out = {"root_pos_w": root_pos, "root_lin_vel_w": root_vel}
        if need_rot:
            r_rel = rotvec_to_matrix(x[..., sl["root_rotvec"]])  # (B, T, 3, 3)
            yaw = ref_y[:, None] + torch.atan2(r_rel[..., 1, 0], r_rel[..., 0, 0])
            rz = torch.zeros(B, 1, 3, 3, dtype=x.dtype, device=x.device)
            rz[..., 0, 0], rz[..., 0, 1], rz[..., 1, 0], rz[..., 1, 1], rz[..., 2, 2] = c0, -s0, s0, c0, 1.0
            out["root_rotmat_w"] = rz @ r_rel
        else:  # the heading alone (guidance calls this per denoising step)
            yaw = ref_y[:, None] + yaw_of_rotvec(x[..., sl["root_rotvec"]])
        out["root_yaw"] = yaw
        c, s = xp.cos(yaw)[..., None], xp.sin(yaw)[..., None]  # (B, T, 1)

        def from_own(v):  # (B, T, K, 3) in each step's yaw frame -> world orientation
            return xp.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], -1)

        if keys is None or "body_pos_w" in keys:
            bp = from_own(x[..., sl["body_pos"]].reshape(B, T, self.K, 3))
            out["body_pos_w"] = bp + xp.stack(
                [root_pos[..., 0], root_pos[..., 1], xp.zeros_like(root_pos[..., 2])], -1)[:, :, None]  # fmt: skip
        if keys is None or "body_lin_vel_w" in keys:
            out["body_lin_vel_w"] = from_own(x[..., sl["body_lin_vel"]].reshape(B, T, self.K, 3))
        if as_numpy and xp is torch:
            return {k: v.detach().numpy() for k, v in out.items()}
        return out

    VJP_KEYS = ("root_pos_w", "root_lin_vel_w", "root_yaw", "body_pos_w", "body_lin_vel_w")

    def decode_vjp(self, states, ref_pos_w, ref_yaw, grads: dict):
        """``∂L/∂states`` (B, T, D) from ``grads``: ``∂L/∂`` some entries of :meth:`decode`'s output (same shapes:
        ``root_pos_w`` (B, T, 3), ``root_lin_vel_w`` (B, T, 3), ``root_yaw`` (B, T), ``body_pos_w`` /
        ``body_lin_vel_w`` (B, T, K, 3)); missing entries count as zero. The closed-form transpose of
        :meth:`decode`'s Jacobian, with no autograd graph, in torch or numpy (the type of ``states``): guidance's cost
        gradient costs a few dozen array ops instead of a backward pass through the decoder (tested equal to
        autograd). ``root_rotmat_w`` is not supported (no cost reads it).
        """
        import torch

        from bm_planner.data._torch_rot import yaw_of_rotvec_grad

        unknown = set(grads) - set(self.VJP_KEYS)
        if unknown:
            raise ValueError(f"decode_vjp supports gradients of {self.VJP_KEYS}, got {sorted(unknown)}")
        if isinstance(states, np.ndarray):
            xp, x = np, states

            def cast(v):
                return np.asarray(v, dtype=x.dtype)
        else:
            xp, x = torch, torch.as_tensor(states)

            def cast(v):
                return torch.as_tensor(v).to(x)

        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"states must have shape (B, T, {self.dim}), got {tuple(x.shape)}")
        B, T, _ = x.shape
        ref_y = cast(ref_yaw).reshape(B)
        grads = {k: cast(g) for k, g in grads.items()}
        for k, g in grads.items():
            want = (B, T) + {"root_yaw": (), "body_pos_w": (self.K, 3), "body_lin_vel_w": (self.K, 3)}.get(k, (3,))
            if tuple(g.shape) != want:
                raise ValueError(f"grads[{k!r}] must have shape {want}, got {tuple(g.shape)}")
        sl, out = self.slices, xp.zeros_like(x)
        c0, s0 = xp.cos(ref_y)[:, None], xp.sin(ref_y)[:, None]

        def to_ref(g):  # transpose of decode's from_ref
            return xp.stack([c0 * g[..., 0] + s0 * g[..., 1], -s0 * g[..., 0] + c0 * g[..., 1], g[..., 2]], -1)

        g_pos, g_yaw = grads.get("root_pos_w"), grads.get("root_yaw")
        g_body = [(k, grads[k]) for k in ("body_pos_w", "body_lin_vel_w") if k in grads]
        if g_body or g_yaw is not None:
            yaw_rel, dyaw = yaw_of_rotvec_grad(x[..., sl["root_rotvec"]])
            g_yaw = xp.zeros_like(yaw_rel) if g_yaw is None else g_yaw
            yaw = ref_y[:, None] + yaw_rel
            c, s = xp.cos(yaw)[..., None], xp.sin(yaw)[..., None]  # (B, T, 1)
            for k, g in g_body:
                name = "body_pos" if k == "body_pos_w" else "body_lin_vel"
                v = x[..., sl[name]].reshape(B, T, self.K, 3)
                out[..., sl[name]] = xp.stack(
                    [c * g[..., 0] + s * g[..., 1], -s * g[..., 0] + c * g[..., 1], g[..., 2]], -1
                ).reshape(B, T, 3 * self.K)
                # d(world)/d(yaw) = (−s vx − c vy, c vx − s vy, 0)
                g_yaw = g_yaw + (g[..., 0] * (-s * v[..., 0] - c * v[..., 1])
                                 + g[..., 1] * (c * v[..., 0] - s * v[..., 1])).sum(-1)  # fmt: skip
                if k == "body_pos_w":  # bodies ride on the root's ground position
                    carry = xp.stack([g[..., 0].sum(-1), g[..., 1].sum(-1), xp.zeros_like(g[..., 0, 0])], -1)
                    g_pos = carry if g_pos is None else g_pos + carry
            out[..., sl["root_rotvec"]] = g_yaw[..., None] * dyaw
        if g_pos is not None:
            out[..., sl["root_pos"]] = to_ref(g_pos)
        if "root_lin_vel_w" in grads:
            out[..., sl["root_lin_vel"]] = to_ref(grads["root_lin_vel_w"])
        return out

    # ------------------------------------------------------------------ change of reference frame (torch)
    def rebase(self, states, old_ref_pos_w, old_ref_yaw, new_ref_pos_w, new_ref_yaw):
        """Re-express states ``(B, T, D)`` (unnormalized torch) given relative to reference frames
        ``old_ref_*`` relative to ``new_ref_*`` instead (positions ``(B, 3)`` m, yaws ``(B,)`` rad). Only the root
        features depend on the reference frame; body features (each in its own step's frame) are unchanged.
        Equals encoding the same world-frame steps with the new reference (tested), e.g. to carry a previous plan
        into the next control step's window (:class:`~bm_planner.guidance.rolling.RollingGuidanceInference`).
        """
        import torch

        x = torch.as_tensor(states)
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"states must have shape (B, T, {self.dim}), got {tuple(x.shape)}")
        B = x.shape[0]
        op, oy, np_, ny = (torch.as_tensor(v).to(x) for v in (old_ref_pos_w, old_ref_yaw, new_ref_pos_w, new_ref_yaw))
        if op.shape != (B, 3) or np_.shape != (B, 3) or oy.shape != (B,) or ny.shape != (B,):
            raise ValueError("reference positions must be (B, 3) and yaws (B,)")
        dyaw = (ny - oy)[:, None]  # (B, 1) new heading relative to the old one
        co, so = torch.cos(oy), torch.sin(oy)
        dxw, dyw = np_[:, 0] - op[:, 0], np_[:, 1] - op[:, 1]
        d = torch.stack([co * dxw + so * dyw, -so * dxw + co * dyw], -1)[:, None]  # new origin in the old frame
        c, s = torch.cos(dyaw), torch.sin(dyaw)

        def rot(vx, vy):  # Rz(dyaw)^T
            return c * vx + s * vy, -s * vx + c * vy

        sl = self.slices
        out = x.clone()
        p = x[..., sl["root_pos"]]
        out[..., 0], out[..., 1] = rot(p[..., 0] - d[..., 0], p[..., 1] - d[..., 1])
        v = x[..., sl["root_lin_vel"]]
        out[..., 3], out[..., 4] = rot(v[..., 0], v[..., 1])
        # rotation vector of Rz(-dyaw) R_old: quaternion product (cos(-dyaw/2), 0, 0, sin(-dyaw/2)) * q_old
        rv = x[..., sl["root_rotvec"]]
        theta = rv.norm(dim=-1, keepdim=True)
        half = theta / 2
        axis_scale = torch.where(theta > 1e-8, torch.sin(half) / theta.clamp(min=1e-12), 0.5 - theta**2 / 48)
        qw, qv = torch.cos(half)[..., 0], rv * axis_scale
        hw, hz = torch.cos(-dyaw / 2), torch.sin(-dyaw / 2)
        rw = hw * qw - hz * qv[..., 2]
        rx = hw * qv[..., 0] - hz * qv[..., 1]
        ry = hw * qv[..., 1] + hz * qv[..., 0]
        rz_ = hw * qv[..., 2] + hz * qw
        sign = torch.where(rw < 0, -1.0, 1.0).to(x)
        rw, vec = rw * sign, torch.stack([rx, ry, rz_], -1) * sign[..., None]
        n = vec.norm(dim=-1)
        scale = torch.where(n > 1e-8, 2 * torch.atan2(n, rw) / n.clamp(min=1e-300), 2.0 / rw.clamp(min=1e-12))
        out[..., sl["root_rotvec"]] = vec * scale[..., None]
        return out

    # ------------------------------------------------------------------ mirroring
    def mirror_states(self, states):
        """Left/right mirror of states ``(..., D)`` (numpy or torch): reflect y in every frame, swap sides."""
        if isinstance(states, np.ndarray):
            return states[..., self.mirror_perm] * self.mirror_sign.astype(states.dtype)
        import torch

        perm = torch.as_tensor(self.mirror_perm, device=states.device)
        return states[..., perm] * torch.as_tensor(self.mirror_sign, dtype=states.dtype, device=states.device)
