"""Motion library: BeyondMimic/holosoma reference motions (``.npz``) — load, validate, complete by FK, write.

File format (one motion per file; ``T`` frames at ``fps``; quaternions wxyz; world frame ``_w``):

====================  ==============  =====================================================================
key                   shape           content
====================  ==============  =====================================================================
``fps``               (1,) or ()      frame rate (Hz)
``joint_pos``         (T, 7 + J)      root (pelvis) position (m), root quaternion wxyz, J joint angles (rad)
                                      — MuJoCo ``qpos`` layout
``joint_vel``         (T, 6 + J)      root linear and angular velocity (both world frame; m/s, rad/s),
                                      joint velocities (rad/s) — as holosoma writes them (MuJoCo's ``qvel``
                                      differs: its angular part is in the pelvis frame)
``body_pos_w``        (T, B, 3)       body origin positions (m)
``body_quat_w``       (T, B, 4)       body orientations, wxyz
``body_lin_vel_w``    (T, B, 3)       linear velocity of each body's centre of mass (m/s)
``body_ang_vel_w``    (T, B, 3)       angular velocity of each body (rad/s)
``joint_names``       (J,) str        joint order of ``joint_pos``/``joint_vel``
``body_names``        (B,) str        body order of the ``body_*`` arrays
====================  ==============  =====================================================================

Files that carry only ``fps`` + ``joint_pos`` (+ ``joint_vel``) — e.g. straight from a retargeting tool — are
completed on load: missing velocities by central finite differences, missing body fields by forward kinematics
of the bm G1 model (:func:`forward_kinematics`). Extra arrays (``object_*``) are kept and written back.
Everything is converted to float64 and the joints reordered to :data:`bm_envs.g1_constants.JOINT_NAMES`.

The holosoma files (:data:`HOLOSOMA_MOTIONS`) were made with a G1 model whose torso/arm links sit up to 10 mm
away from ours (body orientations agree to 1e-15), and their ``body_*_vel_w`` treat the world-frame root angular
velocity as a pelvis-frame one (the pelvis ``body_ang_vel_w`` is not the finite difference of its orientation).
They load and round-trip as they are; ``BM-G1-Tracking-v0`` recomputes body fields by FK of our model
(:meth:`Motion.with_model_bodies`). :func:`resolve_motion` maps names/paths to motions.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.atomic import atomic_path
from bm_envs.kinematics import point_lin_vel_w
from bm_envs.rotations import quat_to_mat

BODY_FIELDS = ("body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")
_NAME_KEYS = ("joint_names", "body_names")


class MotionError(ValueError):
    """A motion file or array set is malformed; the message names the file and the offending field."""


# ---------------------------------------------------------------------- quaternion helpers (wxyz)
def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions ``(..., 4)`` (broadcasting)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = aw * bw - ax * bx - ay * by - az * bz
    out[..., 1] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 2] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 3] = aw * bz + ax * by - ay * bx + az * bw
    return out


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (= inverse for unit quaternions) of wxyz quaternions ``(..., 4)``."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def quat_angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle (rad, in [0, pi]) of unit wxyz quaternions ``(..., 4)``."""
    q = np.asarray(q, dtype=np.float64)
    return 2.0 * np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), np.abs(q[..., 0]))


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` (axis·angle, rad) of unit wxyz quaternions ``(..., 4)``."""
    q = np.asarray(q, dtype=np.float64)
    q = np.where(q[..., :1] < 0, -q, q)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    ang = 2.0 * np.arctan2(s, q[..., :1])
    scale = np.where(s > 1e-12, ang / np.maximum(s, 1e-12), 2.0)
    return q[..., 1:] * scale


# ---------------------------------------------------------------------- the motion
@dataclass(frozen=True, eq=False)
class Motion:
    """One reference motion (see the module docstring for the fields). Validated on construction."""

    fps: float
    joint_pos: np.ndarray  # (T, 7 + 29)
    joint_vel: np.ndarray  # (T, 6 + 29)
    body_pos_w: np.ndarray  # (T, B, 3)
    body_quat_w: np.ndarray  # (T, B, 4)
    body_lin_vel_w: np.ndarray  # (T, B, 3)
    body_ang_vel_w: np.ndarray  # (T, B, 3)
    body_names: tuple[str, ...] = g1.BODY_NAMES
    joint_names: tuple[str, ...] = g1.JOINT_NAMES
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self):
        where = self.source
        if not (isinstance(self.fps, (int, float, np.number)) and np.isfinite(self.fps) and 1.0 <= self.fps <= 1000.0):
            raise MotionError(f"{where}: fps must be a number in [1, 1000] Hz, got {self.fps!r}")
        if tuple(self.joint_names) != g1.JOINT_NAMES:
            raise MotionError(
                f"{where}: joint_names must be g1_constants.JOINT_NAMES (reorder on load), got {self.joint_names}"
            )
        if len(set(self.body_names)) != len(self.body_names):
            raise MotionError(f"{where}: body_names has duplicates: {self.body_names}")
        t, b, j = self.joint_pos.shape[0] if self.joint_pos.ndim == 2 else -1, len(self.body_names), g1.NUM_JOINTS
        expect = {"joint_pos": (t, 7 + j), "joint_vel": (t, 6 + j), "body_pos_w": (t, b, 3), "body_quat_w": (t, b, 4),
                  "body_lin_vel_w": (t, b, 3), "body_ang_vel_w": (t, b, 3)}  # fmt: skip
        for name, shape in expect.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.shape != shape:
                raise MotionError(f"{where}: {name} must have shape {shape} (T, ...), got {np.shape(arr)}")
            bad = ~np.isfinite(arr)
            if bad.any():
                frame = int(np.argwhere(bad)[0][0])
                raise MotionError(f"{where}: {name} contains NaN or inf (first at frame {frame})")
        if t < 2:
            raise MotionError(f"{where}: a motion needs at least 2 frames, got {t}")
        for name, q in (
            ("joint_pos[:, 3:7] (root quaternion)", self.joint_pos[:, 3:7]),
            ("body_quat_w", self.body_quat_w),
        ):
            err = np.abs(np.linalg.norm(q, axis=-1) - 1.0)
            if err.max() > 1e-3:
                raise MotionError(
                    f"{where}: {name} is not unit-norm (max |norm - 1| = {err.max():.3g}); quaternions are wxyz"
                )

    # ------------------------------------------------------------------ views
    @property
    def num_frames(self) -> int:
        return int(self.joint_pos.shape[0])

    @property
    def dt(self) -> float:
        return 1.0 / float(self.fps)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame (s)."""
        return (self.num_frames - 1) * self.dt

    @property
    def dof_pos(self) -> np.ndarray:
        """Joint angles ``(T, 29)`` (rad), :data:`g1_constants.JOINT_NAMES` order."""
        return self.joint_pos[:, 7:]

    @property
    def dof_vel(self) -> np.ndarray:
        """Joint velocities ``(T, 29)`` (rad/s)."""
        return self.joint_vel[:, 6:]

    def body_index(self, names: tuple[str, ...] | list[str]) -> np.ndarray:
        """Indices of ``names`` in :attr:`body_names`; raises :class:`MotionError` naming the missing ones."""
        missing = [n for n in names if n not in self.body_names]
        if missing:
            raise MotionError(f"{self.source}: bodies {missing} are not in this motion (has {self.body_names})")
        return np.array([self.body_names.index(n) for n in names], dtype=int)

    def slice(self, start: int, stop: int | None = None) -> Motion:
        """Frames ``[start, stop)`` as a new motion."""
        s = np.s_[start:stop]
        arrays = {k: getattr(self, k)[s] for k in ("joint_pos", "joint_vel", *BODY_FIELDS)}
        extras = {k: v[s] if v.ndim >= 1 and v.shape[0] == self.num_frames else v for k, v in self.extras.items()}
        return replace(self, **arrays, extras=extras)

    def with_model_bodies(self, body_names: tuple[str, ...] = g1.BODY_NAMES) -> Motion:
        """The same root/joint trajectory with body fields recomputed by FK of the bm G1 model."""
        return replace(
            self, **forward_kinematics(self.joint_pos, self.joint_vel, body_names), body_names=tuple(body_names)
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` arrays (see the module docstring)."""
        out = {"fps": np.array([self.fps], dtype=np.float64)}
        out.update({k: getattr(self, k) for k in ("joint_pos", "joint_vel", *BODY_FIELDS)})
        out["joint_names"] = np.array(self.joint_names)
        out["body_names"] = np.array(self.body_names)
        out.update(self.extras)
        return out


# ---------------------------------------------------------------------- kinematics
@lru_cache(maxsize=1)
def _kinematic_model() -> mujoco.MjModel:
    from bm_envs.scene.builder import build_model

    return build_model()[0]


def forward_kinematics(joint_pos: np.ndarray, joint_vel: np.ndarray, body_names=g1.BODY_NAMES) -> dict[str, np.ndarray]:
    """Body fields ``(T, B, ·)`` of the bm G1 model for ``joint_pos`` ``(T, 36)`` and ``joint_vel`` ``(T, 35)``
    (motion-file layout: root angular velocity in the world frame).

    Linear velocities are those of each body's centre of mass, world frame (``mj_objectVelocity`` convention).
    """
    model = _kinematic_model()
    data = mujoco.MjData(model)
    try:
        ids = np.array([model.body(n).id for n in body_names])
    except KeyError as e:
        raise MotionError(f"body {e} is not a body of the bm G1 model") from None
    t = joint_pos.shape[0]
    out = {k: np.empty((t, len(ids), 4 if k == "body_quat_w" else 3)) for k in BODY_FIELDS}
    root = model.body_rootid[ids]
    for i in range(t):
        data.qpos[:] = joint_pos[i]
        data.qvel[:] = joint_vel[i]
        data.qvel[3:6] = quat_to_mat(joint_pos[i, 3:7]).T @ joint_vel[i, 3:6]  # world -> pelvis frame
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_comVel(model, data)
        cvel = data.cvel[ids]  # (B, 6) rot:lin about subtree_com of the root, world orientation
        out["body_pos_w"][i] = data.xpos[ids]
        out["body_quat_w"][i] = data.xquat[ids]
        out["body_ang_vel_w"][i] = cvel[:, :3]
        out["body_lin_vel_w"][i] = point_lin_vel_w(cvel, data.xipos[ids], data.subtree_com[root])  # of the COMs
    return out


def root_velocities(root_pos: np.ndarray, root_quat: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference root velocities ``(T, 3)`` each: linear (m/s) and angular (rad/s), both world frame."""
    lin = np.gradient(root_pos, axis=0) * fps
    q = root_quat / np.linalg.norm(root_quat, axis=-1, keepdims=True)
    prev = np.concatenate([q[:1], q[:-2], q[-2:-1]])  # frames t-1 (t at the ends)
    nxt = np.concatenate([q[1:2], q[2:], q[-1:]])  # frames t+1
    span = np.full(len(q), 2.0)
    span[0] = span[-1] = 1.0
    if len(q) == 2:
        prev, nxt, span = q[[0, 0]], q[[1, 1]], np.ones(2)
    ang = quat_to_rotvec(quat_mul(nxt, quat_conj(prev))) * (fps / span)[:, None]
    return lin, ang


def motion_from_qpos(fps: float, qpos: np.ndarray, qvel: np.ndarray | None = None, source: str = "<memory>",
                     body_names=g1.BODY_NAMES, dof_vel: np.ndarray | None = None) -> Motion:  # fmt: skip
    """A full :class:`Motion` from root + joint trajectories ``qpos`` ``(T, 36)`` (velocities by finite
    differences unless ``qvel`` ``(T, 35)`` is given; ``dof_vel`` ``(T, 29)`` overrides the joint part)."""
    qpos = np.asarray(qpos, dtype=np.float64).copy()
    if qpos.ndim != 2 or qpos.shape[1] != 7 + g1.NUM_JOINTS or len(qpos) < 2:
        raise MotionError(f"{source}: joint_pos must have shape (T >= 2, {7 + g1.NUM_JOINTS}), got {qpos.shape}")
    if not np.all(np.isfinite(qpos)):
        raise MotionError(
            f"{source}: joint_pos contains NaN or inf (first at frame {int(np.argwhere(~np.isfinite(qpos))[0][0])})"
        )
    norm = np.linalg.norm(qpos[:, 3:7], axis=-1, keepdims=True)
    if np.any(np.abs(norm - 1.0) > 1e-3):
        raise MotionError(f"{source}: root quaternion joint_pos[:, 3:7] is not unit-norm (wxyz expected)")
    qpos[:, 3:7] /= norm
    if qvel is None:
        lin, ang = root_velocities(qpos[:, :3], qpos[:, 3:7], fps)
        jv = np.gradient(qpos[:, 7:], axis=0) * fps if dof_vel is None else np.asarray(dof_vel, dtype=np.float64)
        qvel = np.concatenate([lin, ang, jv], axis=1)
    qvel = np.asarray(qvel, dtype=np.float64)
    if qvel.shape != (len(qpos), 6 + g1.NUM_JOINTS) or not np.all(np.isfinite(qvel)):
        raise MotionError(
            f"{source}: joint_vel must be finite with shape {(len(qpos), 6 + g1.NUM_JOINTS)}, got {qvel.shape}"
        )
    bodies = forward_kinematics(qpos, qvel, body_names)
    return Motion(float(fps), qpos, qvel, **bodies, body_names=tuple(body_names), source=source)


def resample(motion: Motion, fps: float) -> Motion:
    """The motion at a new frame rate: root position and joints interpolated linearly, the root quaternion by
    normalized lerp, velocities by finite differences, body fields by FK of the bm G1 model (extras dropped)."""
    if not (np.isfinite(fps) and fps > 0):
        raise MotionError(f"resample: fps must be positive, got {fps!r}")
    t_old = np.arange(motion.num_frames) * motion.dt
    t_new = np.arange(int(np.floor(motion.duration_s * fps + 1e-9)) + 1) / fps
    qp = motion.joint_pos.copy()
    flip = np.cumprod(np.where(np.sum(qp[1:, 3:7] * qp[:-1, 3:7], axis=-1) < 0, -1.0, 1.0))
    qp[1:, 3:7] *= flip[:, None]  # consecutive root quaternions in the same hemisphere
    new = np.stack([np.interp(t_new, t_old, qp[:, c]) for c in range(qp.shape[1])], axis=1)
    new[:, 3:7] /= np.linalg.norm(new[:, 3:7], axis=-1, keepdims=True)
    return motion_from_qpos(fps, new, source=f"{motion.source}@{fps:g}Hz")


# ---------------------------------------------------------------------- files
def _names(data, key: str, source: str) -> tuple[str, ...] | None:
    if key not in data:
        return None
    arr = data[key]
    if arr.dtype.kind not in "US" or arr.ndim != 1:
        raise MotionError(f"{source}: {key} must be a 1-D string array, got dtype {arr.dtype} shape {arr.shape}")
    return tuple(str(x) for x in arr.tolist())


def _float(data, key: str, source: str) -> np.ndarray:
    arr = data[key]
    if arr.dtype.kind not in "fiu":
        raise MotionError(f"{source}: {key} must be numeric, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def load_motion(path: str | os.PathLike, joint_names: tuple[str, ...] | None = None) -> Motion:
    """Load and validate a motion ``.npz`` (holosoma/BeyondMimic layout, see the module docstring).

    Also accepts BeyondMimic's original layout (``joint_pos`` of shape ``(T, 29)`` without the root, body 0 =
    pelvis): the root then comes from ``body_pos_w[:, 0]``/``body_quat_w[:, 0]``; its joint order must be given by
    a ``joint_names`` array in the file or the ``joint_names`` argument. Raises :class:`MotionError`.
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise MotionError(f"{src}: no such motion file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}  # read everything now: errors surface here
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise MotionError(f"{src}: not a readable .npz motion file ({type(e).__name__}: {e})") from None
    files = set(data)
    for key in ("fps", "joint_pos"):
        if key not in files:
            raise MotionError(f"{src}: missing required array {key!r} (has {sorted(files)})")
    fps_arr = _float(data, "fps", src).ravel()
    if fps_arr.size != 1:
        raise MotionError(f"{src}: fps must be a single number, got shape {data['fps'].shape}")
    fps = float(fps_arr[0])
    if not (np.isfinite(fps) and 1.0 <= fps <= 1000.0):
        raise MotionError(f"{src}: fps must be a number in [1, 1000] Hz, got {fps!r}")
    names = joint_names or _names(data, "joint_names", src)
    jp = _float(data, "joint_pos", src)
    if jp.ndim != 2:
        raise MotionError(f"{src}: joint_pos must be 2-D (T, 7 + J), got shape {jp.shape}")
    raw = names is not None and jp.shape[1] == len(names) or names is None and jp.shape[1] == g1.NUM_JOINTS
    if names is None:
        if raw:
            raise MotionError(f"{src}: joint_pos has no root columns and the file has no joint_names: the joint "
                              "order is unknown — pass joint_names=(...) in the file's order")  # fmt: skip
        names = g1.JOINT_NAMES
    unknown, missing = set(names) - set(g1.JOINT_NAMES), set(g1.JOINT_NAMES) - set(names)
    if unknown or missing or len(names) != g1.NUM_JOINTS:
        raise MotionError(f"{src}: joint_names do not match the G1 model: unknown {sorted(unknown)}, "
                          f"missing {sorted(missing)}, count {len(names)}")  # fmt: skip
    perm = np.array([names.index(n) for n in g1.JOINT_NAMES])
    j0 = 0 if raw else 7
    if jp.shape[1] != j0 + len(names):
        raise MotionError(f"{src}: joint_pos must have {7 + len(names)} columns (root + joints), got {jp.shape[1]}")
    body_names = _names(data, "body_names", src)
    bodies = {k: _float(data, k, src) for k in BODY_FIELDS if k in files}
    if raw:
        if "body_pos_w" not in bodies or "body_quat_w" not in bodies:
            raise MotionError(
                f"{src}: joint_pos has no root columns, so body_pos_w/body_quat_w (body 0 = root) are required"
            )
        if body_names is not None and body_names[0] != "pelvis":
            raise MotionError(f"{src}: body 0 must be the root 'pelvis', got {body_names[0]!r}")
        root = np.concatenate([bodies["body_pos_w"][:, 0], bodies["body_quat_w"][:, 0]], axis=1)
        jp = np.concatenate([root, jp], axis=1)
    qpos = np.concatenate([jp[:, :7], jp[:, 7:][:, perm]], axis=1)
    qvel = None
    if "joint_vel" in files:
        jv = _float(data, "joint_vel", src)
        if jv.shape != (len(jp), (0 if raw else 6) + len(names)):
            raise MotionError(
                f"{src}: joint_vel must have shape {(len(jp), (0 if raw else 6) + len(names))}, got {jv.shape}"
            )
        if raw:
            lin, ang = root_velocities(qpos[:, :3], qpos[:, 3:7], fps)
            jv = np.concatenate([lin, ang, jv], axis=1)
        qvel = np.concatenate([jv[:, :6], jv[:, 6:][:, perm]], axis=1)
    extras = {k: np.asarray(data[k]) for k in files - {"fps", "joint_pos", "joint_vel", *BODY_FIELDS, *_NAME_KEYS}}
    complete = len(bodies) == len(BODY_FIELDS) and body_names is not None and qvel is not None
    if not complete:  # compute what is missing by FK of our model
        m = motion_from_qpos(fps, qpos, qvel, source=src)
        return replace(m, extras=extras)
    return Motion(fps, qpos, qvel, **bodies, body_names=body_names, extras=extras, source=src)


def save_motion(motion: Motion, path: str | os.PathLike) -> Path:
    """Write ``motion`` to ``path`` (``.npz``) atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise MotionError(f"{path}: motion files must end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **motion.to_arrays())
    return path


#: Motions shipped in the pinned holosoma wheel (50 fps), by name.
HOLOSOMA_MOTIONS = ("sub3_largebox_003_mj", "sub3_largebox_003_mj_w_obj", "motion_crawl_slope")


def holosoma_motion_path(name: str) -> Path:
    """Cached path of one of :data:`HOLOSOMA_MOTIONS`."""
    from bm_envs.assets import asset_path

    if name not in HOLOSOMA_MOTIONS:
        raise KeyError(f"unknown holosoma motion {name!r}; known: {HOLOSOMA_MOTIONS}")
    return asset_path("holosoma", f"holosoma/data/motions/g1_29dof/whole_body_tracking/{name}.npz")


def resolve_motion_file(motion: str | os.PathLike | Motion) -> Motion:
    """A :class:`Motion` from one of :data:`HOLOSOMA_MOTIONS`, a ``.npz`` path, or a :class:`Motion` (returned as
    is). The motions baked into the tracking experts (``"fastsac"``/``"ppo"``) are resolved by
    :func:`bm_envs.tracking.library.resolve_motion`, which also takes these."""
    if isinstance(motion, Motion):
        return motion
    if isinstance(motion, str) and motion in HOLOSOMA_MOTIONS:
        return load_motion(holosoma_motion_path(motion))
    if isinstance(motion, (str, os.PathLike)) and str(motion).endswith(".npz"):
        return load_motion(motion)
    raise MotionError(f"unknown motion {motion!r}: use one of {HOLOSOMA_MOTIONS}, or a .npz path")
