"""``BM-G1-Tracking-v0``: track a reference motion with the whole body (BeyondMimic Stage 1).

Motion (``motion=`` kwarg): ``"fastsac"`` (default) / ``"ppo"`` — the dance baked into holosoma's exported
tracking experts (:class:`~bm_envs.tracking.expert.TrackingExpert`); a name in
:data:`~bm_envs.tracking.library.HOLOSOMA_MOTIONS`; a path to a motion ``.npz``; or a :class:`~bm_envs.tracking.motion.Motion`.
Motions are resampled to 50 fps and their body fields recomputed by FK of the bm G1 model when needed.

Reset puts the robot exactly at the reference state (root pose and velocity, joints) of a start frame
``f0`` (``config.start``: ``"adaptive"`` — BeyondMimic's failure-weighted sampling, see
:class:`AdaptiveStartSampler`; ``"zero"``; ``"uniform"``; ``reset(options={"start_frame": k})`` overrides),
plus BeyondMimic's initial-state noise scaled by ``config.init_noise`` (0 = none, 1 = their training ranges).
The PD target holds the reference pose until the first (possibly delayed) action arrives.

Timing (one step = 20 ms; ``f`` = motion frame shown in the observation)::

    obs(f) ──policy──> a ──20 ms physics──> reward/termination vs frame f ──> f += 1 ──> obs(f+1)
                                            tracking metrics (info) vs frame f+1 (time-aligned)

Reward and termination follow BeyondMimic's convention (the state reached by the action is compared with the
frame the action was chosen for); ``info`` metrics compare the robot with the reference of the same instant.

Task observation (float32; ``_b`` = robot anchor (``torso_link``) frame):

=====================  =====  =========================================================================
key                    shape  content
=====================  =====  =========================================================================
``command``            (58,)  reference joint positions (rad, 29) and velocities (rad/s, 29) at frame f
``anchor_pos_b``       (3,)   reference anchor position relative to the robot anchor (m)
``anchor_ori_b``       (6,)   first two columns (row-major) of R(q_anchor⁻¹ · q_anchor_ref)
``motion_time_step``   (1,)   frame index f (the ``time_step`` input of exported tracking policies)
=====================  =====  =========================================================================

Reward terms (unweighted, per step; weights in ``TrackingConfig.weights``; sums over the 14 tracked bodies
are means; "relative" reference bodies are moved to the robot anchor's xy and heading, keeping the
reference height, as BeyondMimic's ``body_pos_relative_w``):

========================  ======  ===========================================================================
term                      weight  value
========================  ======  ===========================================================================
``anchor_pos``            0.5     exp(−|p_anchor − p_ref|² / 0.3²), world
``anchor_ori``            0.5     exp(−angle(q_anchor, q_ref)² / 0.4²)
``body_pos``              1.0     exp(−mean_b |p_b − p_b,rel|² / 0.3²)
``body_ori``              1.0     exp(−mean_b angle(q_b, q_b,rel)² / 0.4²)
``body_lin_vel``          1.0     exp(−mean_b |v_b − v_b,ref|² / 1.0²), centre-of-mass velocities, world
``body_ang_vel``          1.0     exp(−mean_b |ω_b − ω_b,ref|² / 3.14²)
``action_rate_tracking``  0.1     −|Δa|² with a in BeyondMimic's per-joint units (a_env · 0.25 / scale_bm)
``joint_limit``           10.0    −Σ_j distance (rad) beyond the soft limits (90 % of each joint's range)
``undesired_contacts``    0.1     −(number of bodies other than ankles/wrists touching with > 1 N)
``alive``/``action_rate`` 0       base-env terms, kept in ``info["reward_terms"]`` only
========================  ======  ===========================================================================

Episode end: ``terminated`` when |z_anchor − z_ref| > 0.5 m, or the anchor's gravity z-component differs from
the reference's by > 0.8, or an end effector (ankles, wrists) is > 0.25 m above/below its reference height
(``info["termination"]`` names it), or on the base env's fall check; ``truncated`` when the last motion frame
is reached or after ``time_limit_s``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import mujoco
import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.config_dict import from_dict
from bm_envs.envs.base import G1BaseEnv, _box
from bm_envs.kinematics import point_lin_vel_w
from bm_envs.rotations import quat_from_yaw, quat_to_mat, yaw_from_quat
from bm_envs.scene.scenario import Scenario
from bm_envs.tracking.library import resolve_motion
from bm_envs.tracking.motion import Motion, quat_angle, quat_conj, quat_mul, resample

TRACKED_BODIES = (
    "pelvis", "left_hip_roll_link", "left_knee_link", "left_ankle_roll_link", "right_hip_roll_link",
    "right_knee_link", "right_ankle_roll_link", "torso_link", "left_shoulder_roll_link", "left_elbow_link",
    "left_wrist_yaw_link", "right_shoulder_roll_link", "right_elbow_link", "right_wrist_yaw_link",
)  # fmt: skip
END_EFFECTORS = ("left_ankle_roll_link", "right_ankle_roll_link", "left_wrist_yaw_link", "right_wrist_yaw_link")
DEFAULT_WEIGHTS = {"anchor_pos": 0.5, "anchor_ori": 0.5, "body_pos": 1.0, "body_ori": 1.0, "body_lin_vel": 1.0,
                   "body_ang_vel": 1.0, "action_rate_tracking": 0.1, "joint_limit": 10.0, "undesired_contacts": 0.1,
                   "alive": 0.0, "action_rate": 0.0}  # fmt: skip
# BeyondMimic's initial-state noise ranges (± uniform) at init_noise = 1.
_NOISE = {"dof_pos": 0.1, "root_pos": (0.05, 0.05, 0.01), "root_rpy": (0.1, 0.1, 0.2), "root_lin_vel": (0.1, 0.1, 0.05),
          "root_ang_vel": (0.1, 0.1, 0.1)}  # fmt: skip


@dataclass(frozen=True)
class TrackingConfig:
    """Reward scales, termination thresholds and start-frame sampling of ``BM-G1-Tracking-v0`` (BeyondMimic's)."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    sigma_anchor_pos: float = 0.3  # m
    sigma_anchor_ori: float = 0.4  # rad
    sigma_body_pos: float = 0.3  # m
    sigma_body_ori: float = 0.4  # rad
    sigma_body_lin_vel: float = 1.0  # m/s
    sigma_body_ang_vel: float = 3.14  # rad/s
    soft_joint_limit: float = 0.9  # fraction of each joint's range
    contact_force_n: float = 1.0
    max_anchor_z_error: float = 0.5  # m
    max_anchor_gravity_error: float = 0.8  # difference of the gravity z-components in the anchor frames
    max_end_effector_z_error: float = 0.25  # m
    start: str = "adaptive"  # adaptive | zero | uniform
    init_noise: float = 0.0
    adaptive_alpha: float = 0.001
    adaptive_uniform_ratio: float = 0.1
    adaptive_kernel_size: int = 1
    adaptive_lambda: float = 0.8

    def __post_init__(self):
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(
                f"TrackingConfig.weights: unknown term(s) {sorted(unknown)}; known {sorted(DEFAULT_WEIGHTS)}"
            )
        object.__setattr__(self, "weights", {**DEFAULT_WEIGHTS, **self.weights})
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not np.isfinite(v):
                raise ValueError(f"TrackingConfig.{f.name} must be finite, got {v!r}")
        for name in (
            "sigma_anchor_pos",
            "sigma_anchor_ori",
            "sigma_body_pos",
            "sigma_body_ori",
            "sigma_body_lin_vel",
            "sigma_body_ang_vel",
            "max_anchor_z_error",
            "max_anchor_gravity_error",
            "max_end_effector_z_error",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrackingConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not all(np.isfinite(w) and w >= 0 for w in self.weights.values()):
            raise ValueError(
                f"TrackingConfig.weights must be finite and >= 0 (penalty terms are <= 0), got {self.weights}"
            )
        if self.start not in ("adaptive", "zero", "uniform"):
            raise ValueError(f"TrackingConfig.start must be 'adaptive', 'zero' or 'uniform', got {self.start!r}")
        if not (0 < self.soft_joint_limit <= 1 and 0 <= self.init_noise <= 5 and 0 < self.adaptive_alpha <= 1):
            raise ValueError(
                f"bad TrackingConfig: {self.soft_joint_limit=}, {self.init_noise=}, {self.adaptive_alpha=}"
            )

    @classmethod
    def from_dict(cls, d: dict) -> TrackingConfig:
        return from_dict(cls, d)

    def to_dict(self) -> dict:
        return asdict(self)


class AdaptiveStartSampler:
    """BeyondMimic's adaptive start-frame sampling (``whole_body_tracking`` / holosoma ``AdaptiveTimestepsSampler``).

    The motion is cut into 1 s bins (``T // 50 + 1``). Failures (terminations) are counted in the bin of the frame
    where they happen; every env step folds the new counts into an exponential moving average
    ``c ← α·new + (1 − α)·c``. Start bins are drawn with probability ∝ ``conv(c + u/n_bins, kernel)`` (kernel
    ``λ^k``, k < ``kernel_size``, looking ahead so the start precedes the failure), then a frame uniformly
    inside the bin. ``u`` keeps a floor of uniform sampling. The statistics live in each env instance.
    """

    def __init__(self, num_frames: int, alpha: float = 0.001, uniform_ratio: float = 0.1, kernel_size: int = 1,
                 lam: float = 0.8, frames_per_bin: int = round(1.0 / g1.CONTROL_DT)):  # fmt: skip
        if num_frames < 2 or kernel_size < 1 or not (0 < alpha <= 1 and uniform_ratio >= 0 and lam > 0):
            raise ValueError(f"bad sampler settings: {num_frames=}, {alpha=}, {uniform_ratio=}, {kernel_size=}, {lam=}")
        self.num_frames = num_frames
        self.num_bins = num_frames // frames_per_bin + 1
        self.alpha, self.uniform_ratio = alpha, uniform_ratio
        k = lam ** np.arange(kernel_size)
        self.kernel = k / k.sum()
        self.failed = np.zeros(self.num_bins)  # EMA of failures per step, per bin
        self._new = np.zeros(self.num_bins)

    def bin_of(self, frame: int) -> int:
        return int(np.clip(frame * self.num_bins // self.num_frames, 0, self.num_bins - 1))

    def record_failure(self, frame: int) -> None:
        self._new[self.bin_of(frame)] += 1.0

    def step(self) -> None:
        self.failed = self.alpha * self._new + (1.0 - self.alpha) * self.failed
        self._new[:] = 0.0

    @property
    def probabilities(self) -> np.ndarray:
        """Start-bin probabilities ``(num_bins,)``."""
        p = self.failed + self.uniform_ratio / self.num_bins
        n = len(self.kernel)
        p = np.convolve(np.concatenate([p, np.full(n - 1, p[-1])]), self.kernel[::-1], mode="valid")
        return p / p.sum()

    def sample(self, rng: np.random.Generator) -> int:
        b = rng.choice(self.num_bins, p=self.probabilities)
        return int(min((b + rng.uniform()) / self.num_bins * self.num_frames, self.num_frames - 1))


def _yaw_quat(q: np.ndarray) -> np.ndarray:
    return quat_from_yaw(float(yaw_from_quat(q)))


class G1TrackingEnv(G1BaseEnv):
    """The G1 tracking a reference motion; see the module docstring."""

    def __init__(self, motion: str | Motion = "fastsac", config: TrackingConfig | dict | None = None,
                 time_limit_s: float | None = None, render_mode: str | None = None, width: int = 640,
                 height: int = 480, **config_overrides):  # fmt: skip
        cfg = config if isinstance(config, TrackingConfig) else TrackingConfig.from_dict(dict(config or {}))
        self.config = TrackingConfig.from_dict({**cfg.to_dict(), **config_overrides}) if config_overrides else cfg
        m = resolve_motion(motion)
        if abs(m.fps - 1.0 / g1.CONTROL_DT) > 1e-6:
            m = resample(m, 1.0 / g1.CONTROL_DT)
        if m.body_names != g1.BODY_NAMES:
            m = m.with_model_bodies()
        self.motion = m
        limit = m.duration_s if time_limit_s is None else time_limit_s
        if not (np.isfinite(limit) and limit > 0):
            raise ValueError(f"time_limit_s must be a positive number, got {time_limit_s!r}")
        sc = Scenario(name=f"tracking:{m.source}", env="BM-G1-Tracking-v0", time_limit_s=float(limit))
        super().__init__(scenario=sc, render_mode=render_mode, width=width, height=height)
        c = self.config
        ti = m.body_index(TRACKED_BODIES)
        self._ref = {k: getattr(m, k)[:, ti] for k in ("body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")}
        self._anchor = TRACKED_BODIES.index("torso_link")
        self._ee = np.array([TRACKED_BODIES.index(b) for b in END_EFFECTORS])
        self._body_ids = np.array([self.model.body(b).id for b in TRACKED_BODIES])
        allowed = {int(self.model.body(b).id) for b in END_EFFECTORS}
        self._contact_bodies = frozenset(int(b) for b in self.model.geom_bodyid[self.idx.robot_geoms]) - allowed
        jr = self.model.jnt_range[[self.model.joint(n).id for n in g1.JOINT_NAMES]]
        mid, half = jr.mean(axis=1), 0.5 * (jr[:, 1] - jr[:, 0]) * c.soft_joint_limit
        self._soft_lo, self._soft_hi = mid - half, mid + half
        self.sampler = AdaptiveStartSampler(m.num_frames, c.adaptive_alpha, c.adaptive_uniform_ratio,
                                            c.adaptive_kernel_size, c.adaptive_lambda)  # fmt: skip
        self._frame = self._start_frame = 0

    # ------------------------------------------------------------------ hooks
    def _task_spaces(self):
        return {"command": _box(2 * g1.NUM_JOINTS), "anchor_pos_b": _box(3), "anchor_ori_b": _box(6),
                "motion_time_step": _box(1)}  # fmt: skip

    def _reward_weights(self):
        return self.config.weights

    def _choose_start(self) -> int:
        opts = getattr(self, "_reset_options", None) or {}
        last = self.motion.num_frames - 2
        if "start_frame" in opts:
            f = opts["start_frame"]
            if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or not 0 <= f <= last:
                raise ValueError(f"options['start_frame'] must be an int in [0, {last}], got {f!r}")
            return int(f)
        if self.config.start == "zero":
            return 0
        if self.config.start == "uniform":
            return int(self.np_random.integers(0, last + 1))
        return min(self.sampler.sample(self.np_random), last)

    RESET_OPTIONS = ("start_frame",)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reset_options = options
        return super().reset(seed=seed, options=options)

    def _check_options(self, options):
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"reset options must be a dict, got {type(options).__name__}")
        unknown = sorted(set(options or {}) - set(self.RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: {list(self.RESET_OPTIONS)}")
        return {}

    def _task_reset(self, start_xy, start_yaw):
        m, d, rng, s = self.motion, self.data, self.np_random, self.config.init_noise
        f = self._frame = self._start_frame = self._choose_start()
        qpos, qvel = m.joint_pos[f].copy(), m.joint_vel[f].copy()
        if s > 0:
            u = lambda r: rng.uniform(-1, 1, np.shape(r)) * np.asarray(r) * s
            qpos[:3] += u(_NOISE["root_pos"])
            r, p, y = u(_NOISE["root_rpy"])
            dq = quat_mul(
                quat_mul(quat_from_yaw(y), [np.cos(p / 2), 0, np.sin(p / 2), 0]), [np.cos(r / 2), np.sin(r / 2), 0, 0]
            )
            qpos[3:7] = quat_mul(dq, qpos[3:7])
            qpos[7:] = np.clip(
                qpos[7:] + rng.uniform(-1, 1, g1.NUM_JOINTS) * _NOISE["dof_pos"] * s, self._soft_lo, self._soft_hi
            )
            qvel[:3] += u(_NOISE["root_lin_vel"])
            qvel[3:6] += u(_NOISE["root_ang_vel"])
        d.qpos[:7], d.qpos[self.idx.qpos_joint] = qpos[:7], qpos[7:]
        d.qvel[:3] = qvel[:3]
        d.qvel[3:6] = quat_to_mat(qpos[3:7]).T @ qvel[3:6]  # motion files: world frame; MuJoCo: pelvis frame
        d.qvel[self.idx.qvel_joint] = qvel[6:]
        self._target = m.dof_pos[f] + self.joint_offset
        d.ctrl[:] = self._target
        mujoco.mj_forward(self.model, d)
        self._prev_action_trk = np.zeros(g1.NUM_JOINTS)
        self._last_metrics = self._metrics(f)

    # ------------------------------------------------------------------ reference geometry
    def _robot_bodies(self) -> dict[str, np.ndarray]:
        d, ids = self.data, self._body_ids
        cvel = d.cvel[ids]
        return {
            "pos": d.xpos[ids],
            "quat": d.xquat[ids],
            "ang_vel": cvel[:, :3],
            "lin_vel": point_lin_vel_w(cvel, d.xipos[ids], d.subtree_com[self.model.body_rootid[ids]]),  # of the COMs
        }

    def _relative_ref(self, f: int, rob: dict) -> tuple[np.ndarray, np.ndarray]:
        """Reference body positions/orientations of frame f moved to the robot anchor's xy and heading."""
        a = self._anchor
        ref_pos, ref_quat = self._ref["body_pos_w"][f], self._ref["body_quat_w"][f]
        dq = _yaw_quat(quat_mul(rob["quat"][a], quat_conj(ref_quat[a])))
        origin = np.array([rob["pos"][a][0], rob["pos"][a][1], ref_pos[a][2]])
        pos = origin + (ref_pos - ref_pos[a]) @ quat_to_mat(dq).T
        return pos, quat_mul(dq[None], ref_quat)

    def _metrics(self, f: int, rob: dict | None = None) -> dict[str, float]:
        rob = self._robot_bodies() if rob is None else rob
        rel_pos, _ = self._relative_ref(f, rob)
        q = self.data.qpos[self.idx.qpos_joint]
        return {
            "mpjpe_mm": 1000.0 * float(np.mean(np.linalg.norm(rob["pos"] - rel_pos, axis=-1))),
            "body_pos_error_w_mm": 1000.0
            * float(np.mean(np.linalg.norm(rob["pos"] - self._ref["body_pos_w"][f], axis=-1))),
            "joint_pos_error_rad": float(np.mean(np.abs(q - self.motion.dof_pos[f]))),
        }

    # ------------------------------------------------------------------ step
    def _task_step(self, state):
        c, f, a = self.config, self._frame, self._anchor
        rob = self._robot_bodies()
        rel_pos, rel_quat = self._relative_ref(f, rob)
        ref = {k: v[f] for k, v in self._ref.items()}
        err_anchor_pos = float(np.sum((rob["pos"][a] - ref["body_pos_w"][a]) ** 2))
        ang_anchor = float(quat_angle(quat_mul(quat_conj(ref["body_quat_w"][a]), rob["quat"][a])))
        q = self.data.qpos[self.idx.qpos_joint]
        a_trk = self._last_action * g1.ACTION_SCALE / g1.BEYONDMIMIC_ACTION_SCALE
        terms = {
            "anchor_pos": np.exp(-err_anchor_pos / c.sigma_anchor_pos**2),
            "anchor_ori": np.exp(-(ang_anchor**2) / c.sigma_anchor_ori**2),
            "body_pos": np.exp(-np.mean(np.sum((rob["pos"] - rel_pos) ** 2, -1)) / c.sigma_body_pos**2),
            "body_ori": np.exp(
                -np.mean(quat_angle(quat_mul(quat_conj(rel_quat), rob["quat"])) ** 2) / c.sigma_body_ori**2
            ),
            "body_lin_vel": np.exp(
                -np.mean(np.sum((rob["lin_vel"] - ref["body_lin_vel_w"]) ** 2, -1)) / c.sigma_body_lin_vel**2
            ),
            "body_ang_vel": np.exp(
                -np.mean(np.sum((rob["ang_vel"] - ref["body_ang_vel_w"]) ** 2, -1)) / c.sigma_body_ang_vel**2
            ),
            "action_rate_tracking": -float(np.sum((a_trk - self._prev_action_trk) ** 2)),
            "joint_limit": -float(np.sum(np.clip(self._soft_lo - q, 0, None) + np.clip(q - self._soft_hi, 0, None))),
            "undesired_contacts": -float(self._undesired_contacts()),
        }
        terms = {k: float(v) for k, v in terms.items()}
        self._prev_action_trk = a_trk
        g_rob, g_ref = quat_to_mat(rob["quat"][a])[2, 2], quat_to_mat(ref["body_quat_w"][a])[2, 2]
        reason = None
        if abs(rob["pos"][a][2] - ref["body_pos_w"][a][2]) > c.max_anchor_z_error:
            reason = "anchor_height"
        elif abs(g_rob - g_ref) > c.max_anchor_gravity_error:
            reason = "anchor_orientation"
        elif np.any(np.abs(rob["pos"][self._ee, 2] - ref["body_pos_w"][self._ee, 2]) > c.max_end_effector_z_error):
            reason = "end_effector_height"
        fell = state["head_z"] < g1.FALL_HEAD_HEIGHT or state["pelvis_z"] < g1.FALL_PELVIS_HEIGHT
        if reason is not None or fell:
            self.sampler.record_failure(f)
        self.sampler.step()
        self._frame = f + 1
        self._last_metrics = self._metrics(self._frame, rob)
        n_total = self.motion.num_frames - 1 - self._start_frame
        info = {
            "motion_frame": self._frame,
            "start_frame": self._start_frame,
            "termination": reason,
            "motion_progress": (self._frame - self._start_frame) / max(n_total, 1),
            **self._last_metrics,
        }
        return terms, reason is not None, info

    def _undesired_contacts(self) -> int:
        d, m = self.data, self.model
        touching: set[int] = set()
        force = np.zeros(6)
        for i in range(d.ncon):
            con = d.contact[i]
            for b in (m.geom_bodyid[con.geom1], m.geom_bodyid[con.geom2]):
                if b in self._contact_bodies and b not in touching:
                    mujoco.mj_contactForce(m, d, i, force)
                    if abs(force[0]) > self.config.contact_force_n:
                        touching.add(int(b))
        return len(touching)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if not terminated and self._frame >= self.motion.num_frames - 1:
            truncated = True
        return obs, reward, terminated, truncated, info

    def _task_obs(self):
        f = self._frame
        d, a = self.data, self.idx.torso
        rot = d.xmat[a].reshape(3, 3)
        ref_pos, ref_quat = self._ref["body_pos_w"][f, self._anchor], self._ref["body_quat_w"][f, self._anchor]
        rel = quat_to_mat(quat_mul(quat_conj(d.xquat[a]), ref_quat))
        return {
            "command": np.concatenate([self.motion.dof_pos[f], self.motion.dof_vel[f]]),
            "anchor_pos_b": rot.T @ (ref_pos - d.xpos[a]),
            "anchor_ori_b": rel[:, :2].reshape(6),
            "motion_time_step": np.array([f], dtype=np.float64),
        }

    def _base_info(self, yaw: float | None = None):
        info = super()._base_info(yaw)
        info["motion_frame"] = self._frame
        return info

    # ------------------------------------------------------------------ kinematic playback
    def set_reference_state(self, frame: int) -> None:
        """Put the robot kinematically at the reference pose of ``frame`` (for playback/rendering; no physics)."""
        if not 0 <= frame < self.motion.num_frames:
            raise ValueError(f"frame must be in [0, {self.motion.num_frames - 1}], got {frame!r}")
        self.data.qpos[:7] = self.motion.joint_pos[frame, :7]
        self.data.qpos[self.idx.qpos_joint] = self.motion.dof_pos[frame]
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)
