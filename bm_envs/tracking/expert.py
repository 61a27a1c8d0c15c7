"""Stage-1 motion-tracking experts: exported BeyondMimic/holosoma tracking policies (ONNX, motion baked in).

Two export layouts are read (both: inputs ``obs`` ``(1, D)`` and ``time_step`` ``(1, 1)``; the reference of the
baked motion at ``time_step`` comes out next to the actions):

* **holosoma** (``holosoma_inference/models/wbt/*.onnx``, and what ``bm-train-tracking`` exports): outputs
  ``actions``, ``joint_pos``, ``joint_vel``, ``ref_pos_xyz``, ``ref_quat_xyzw`` (anchor = ``torso_link``);
  metadata ``dof_names``, ``kp``, ``kd`` (JSON). The observation is its terms sorted by name (checked against the
  ONNX's own observation normalizer and by behaviour, see ``tests/bm_envs/tracking``):

  ====================  ===  ======================================================================
  term                  dim  content
  ====================  ===  ======================================================================
  ``actions``           29   the policy's previous raw output
  ``base_ang_vel``      3    pelvis angular velocity, pelvis frame (rad/s)
  ``dof_pos``           29   joint positions − default pose (rad)
  ``dof_vel``           29   joint velocities (rad/s)
  ``motion_command``    58   reference joint positions and velocities at the current motion frame
  ``motion_ref_ori_b``  6    first two columns (row-major) of R(q_anchor_robot⁻¹ · q_anchor_ref)
  ====================  ===  ======================================================================

* **BeyondMimic** (``whole_body_tracking``'s exporter): outputs ``actions``, ``joint_pos``, ``joint_vel``,
  ``body_pos_w``, ``body_quat_w``, ...; metadata (CSV) ``joint_names``, ``default_joint_pos``, ``action_scale``,
  ``joint_stiffness``, ``joint_damping``, ``observation_names`` (term order), ``anchor_body_name``, ``body_names``.

Actions: ``q* = default + action_scale ⊙ a`` (per joint; holosoma: ``0.25·τ_max/kp`` =
:data:`g1_constants.BEYONDMIMIC_ACTION_SCALE`), converted here to the bm env action. The observation is built
from a ``BM-G1-Tracking-v0`` observation dict; the expert feeds the env's ``motion_time_step`` to the ONNX and
records in :attr:`TrackingExpert.reference_error` how far the baked reference is from the env's command (0 when
the env plays the expert's own motion, :attr:`TrackingExpert.motion`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.assets import asset_path, cache_dir
from bm_envs.experts.locomotion import _session
from bm_envs.observation import proprio_part
from bm_envs.rotations import quat_to_mat
from bm_envs.tracking.motion import (
    Motion,
    forward_kinematics,
    load_motion,
    motion_from_qpos,
    quat_conj,
    quat_mul,
    resolve_motion_file,
    save_motion,
)

WBT_EXPERTS = {
    "fastsac": "holosoma_inference/models/wbt/fastsac_g1_29dof_dancing.onnx",
    "ppo": "holosoma_inference/models/wbt/ppo_g1_29dof_dancing.onnx",
}
#: Action scale of each shipped expert, found by behaviour (``tests/bm_envs/tracking``): the PPO expert uses
#: BeyondMimic's per-joint scale; the FastSAC expert outputs joint offsets in rad (its tanh head is bounded by the
#: joint limits − default pose, in rad) and falls within 2 s with the per-joint scale.
EXPERT_ACTION_SCALE = {"fastsac": 1.0, "ppo": "beyondmimic"}
ANCHOR_BODY = "torso_link"
_ALIASES = {"joint_pos": "dof_pos", "joint_vel": "dof_vel", "command": "motion_command",
            "motion_anchor_ori_b": "motion_ref_ori_b", "motion_anchor_pos_b": "motion_ref_pos_b"}  # fmt: skip
_STR_META = ("joint_names", "dof_names", "body_names", "observation_names", "anchor_body_name")
HOLOSOMA_TERMS = ("actions", "base_ang_vel", "dof_pos", "dof_vel", "motion_command", "motion_ref_ori_b")


def _meta_list(raw: str | None, key: str, path) -> list | None:
    if raw is None:
        return None
    try:
        v = json.loads(raw)
    except json.JSONDecodeError:
        v = [t.strip() for t in raw.split(",") if t.strip()]
    if not isinstance(v, list):
        v = [v]
    try:
        return v if key in _STR_META else [float(x) for x in v]
    except (TypeError, ValueError):
        raise ValueError(f"{path}: metadata {key!r} is not a list of numbers: {raw[:80]!r}") from None


def baked_tables(path: str | Path) -> dict[str, np.ndarray]:
    """The motion tables baked into an exported tracking ONNX: ``{output name: (T, ...) array}``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for nd in model.graph.node:
        if nd.op_type == "Constant" and nd.attribute and nd.attribute[0].name == "value":
            consts[nd.output[0]] = numpy_helper.to_array(nd.attribute[0].t)
    outputs = {o.name for o in model.graph.output}
    return {nd.output[0]: consts[nd.input[0]] for nd in model.graph.node
            if nd.op_type == "Gather" and nd.output[0] in outputs and nd.input[0] in consts}  # fmt: skip


def pelvis_from_anchor(anchor_pos: np.ndarray, anchor_quat: np.ndarray, dof_pos: np.ndarray, anchor: str = ANCHOR_BODY):
    """Root (pelvis) position ``(T, 3)`` and wxyz quaternion ``(T, 4)`` that put body ``anchor`` at the given
    world pose, for joint angles ``dof_pos`` ``(T, 29)`` (FK of the bm G1 model)."""
    t = len(dof_pos)
    qpos = np.zeros((t, 7 + g1.NUM_JOINTS))
    qpos[:, 3] = 1.0
    qpos[:, 7:] = dof_pos
    rel = forward_kinematics(qpos, np.zeros((t, 6 + g1.NUM_JOINTS)), (anchor,))  # anchor pose in the pelvis frame
    q_rel, p_rel = rel["body_quat_w"][:, 0], rel["body_pos_w"][:, 0]
    quat = quat_mul(anchor_quat, quat_conj(q_rel))
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    pos = anchor_pos - np.einsum("tij,tj->ti", quat_to_mat(quat), p_rel)
    return pos, quat


class TrackingExpert:
    """An exported tracking policy. ``act(obs)`` → bm env action (29,); SB3-style :meth:`predict`.

    ``source``: ``"fastsac"`` / ``"ppo"`` (holosoma's dancing experts) or a path to an exported ``.onnx``.
    ``action_scale``: ``q* = default + scale ⊙ a``; ``None`` = the ONNX metadata's ``action_scale``, else
    :data:`EXPERT_ACTION_SCALE` for the shipped experts, else ``"beyondmimic"`` (0.25·τ_max/kp); or a number or
    per-joint array (policy joint order). ``motion``: the reference to track when the ONNX has none baked in (a
    policy exported without its motion, shipped with a motion ``.npz``); overrides the baked one otherwise.
    """

    def __init__(
        self,
        source: str | Path = "fastsac",
        anchor_body: str = ANCHOR_BODY,
        check_gains: bool = True,
        action_scale: str | float | np.ndarray | None = None,
        motion: str | Path | Motion | None = None,
    ):
        self.path = Path(asset_path("holosoma-inference", WBT_EXPERTS[source]) if source in WBT_EXPERTS else source)
        if not self.path.is_file():
            raise FileNotFoundError(f"no tracking policy at {self.path}; known names: {sorted(WBT_EXPERTS)}")
        self.name = str(source) if source in WBT_EXPERTS else self.path.stem
        self.session = _session(str(self.path))
        ins = {i.name: i.shape for i in self.session.get_inputs()}
        outs = [o.name for o in self.session.get_outputs()]
        if "obs" not in ins or not set(ins) <= {"obs", "time_step"} or "actions" not in outs:
            raise ValueError(f"{self.path.name}: not a tracking policy export (inputs {ins}, outputs {outs})")
        self._feeds_time = "time_step" in ins
        self._outputs = outs
        meta = self.session.get_modelmeta().custom_metadata_map
        self.format = "beyondmimic" if "observation_names" in meta and "ref_quat_xyzw" not in outs else "holosoma"
        get = lambda *keys: next((_meta_list(meta[k], k, self.path) for k in keys if k in meta), None)
        names = get("joint_names", "dof_names") or list(g1.JOINT_NAMES)
        if sorted(names) != sorted(g1.JOINT_NAMES):
            raise ValueError(f"{self.path.name}: its joints {names} are not the G1's {g1.JOINT_NAMES}")
        self.perm = np.array([g1.JOINT_NAMES.index(n) for n in names])  # policy order -> ours: ours[perm] = policy
        if self.format == "holosoma":
            self.terms = HOLOSOMA_TERMS
            self.default_pos = g1.DEFAULT_JOINT_POS[self.perm]
            self.anchor_body = anchor_body
        else:
            self.terms = tuple(_ALIASES.get(t, t) for t in get("observation_names") or ())
            self.default_pos = np.asarray(get("default_joint_pos"))
            self.anchor_body = (get("anchor_body_name") or [anchor_body])[0]
            if self.default_pos.shape != (29,):
                raise ValueError(f"{self.path.name}: metadata default_joint_pos missing or not 29 values")
        if action_scale is None:
            action_scale = get("action_scale") or EXPERT_ACTION_SCALE.get(self.name, "beyondmimic")
        if isinstance(action_scale, str):
            if action_scale != "beyondmimic":
                raise ValueError(f"action_scale must be 'beyondmimic', a number or 29 numbers, got {action_scale!r}")
            action_scale = g1.BEYONDMIMIC_ACTION_SCALE[self.perm]
        self.action_scale = np.broadcast_to(np.asarray(action_scale, dtype=np.float64), (g1.NUM_JOINTS,)).copy()
        if not np.all(np.isfinite(self.action_scale) & (self.action_scale > 0)):
            raise ValueError(f"action_scale must be positive and finite, got {self.action_scale}")
        unknown = set(self.terms) - set(_TERMS)
        if unknown or not self.terms:
            raise ValueError(
                f"{self.path.name}: unsupported observation terms {sorted(unknown)} (known {sorted(_TERMS)})"
            )
        if check_gains:
            for keys, ours in ((("kp", "joint_stiffness"), g1.KP), (("kd", "joint_damping"), g1.KD)):
                theirs = get(*keys)
                if theirs is not None and not np.allclose(np.asarray(theirs), ours[self.perm], rtol=1e-4):
                    raise ValueError(
                        f"{self.path.name}: its PD gains {keys[0]} differ from g1_constants; the bm sim "
                        "would not reproduce its training (pass check_gains=False to run it anyway)"
                    )
        dims = {"actions": 29, "base_ang_vel": 3, "base_lin_vel": 3, "projected_gravity": 3, "dof_pos": 29,
                "dof_vel": 29, "motion_command": 58, "motion_ref_ori_b": 6, "motion_ref_pos_b": 3}  # fmt: skip
        if sum(dims[t] for t in self.terms) != ins["obs"][1]:
            raise ValueError(f"{self.path.name}: terms {self.terms} do not add up to its input size {ins['obs'][1]}")
        self._motion: Motion | None = None if motion is None else resolve_motion_file(motion)
        if self._motion is None and "joint_pos" not in outs:
            raise ValueError(f"{self.path.name} has no motion baked in: pass motion=<.npz or Motion> to track")
        self.reference_error = 0.0
        self.reset()

    # ------------------------------------------------------------------ reference motion
    @property
    def motion(self) -> Motion:
        """The reference motion baked into the ONNX, as a bm :class:`Motion` (50 fps; root from the anchor pose by
        FK, velocities: joints from the ONNX, root by central differences; body fields by FK of our model)."""
        if self._motion is None and self.name in WBT_EXPERTS:  # the shipped experts' motions are cached on disk
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
            cached = cache_dir() / "motions" / f"{self.path.stem}-{digest}.npz"
            if not cached.is_file():
                save_motion(self._extract(), cached)
            self._motion = load_motion(cached)
        elif self._motion is None:
            self._motion = self._extract()
        return self._motion

    def _extract(self) -> Motion:
        tab = baked_tables(self.path)
        inv = np.argsort(self.perm)  # policy order -> ours
        dof_pos, dof_vel = tab["joint_pos"][:, inv].astype(np.float64), tab["joint_vel"][:, inv].astype(np.float64)
        if self.format == "holosoma":
            a_pos, a_quat = (
                tab["ref_pos_xyz"].astype(np.float64),
                tab["ref_quat_xyzw"][:, [3, 0, 1, 2]].astype(np.float64),
            )
        else:
            if "body_names" not in self.session.get_modelmeta().custom_metadata_map:
                raise ValueError(f"{self.path.name}: BeyondMimic export without 'body_names' metadata")
            bodies = _meta_list(
                self.session.get_modelmeta().custom_metadata_map.get("body_names"), "body_names", self.path
            )
            k = bodies.index(self.anchor_body)
            a_pos, a_quat = tab["body_pos_w"][:, k].astype(np.float64), tab["body_quat_w"][:, k].astype(np.float64)
        pos, quat = pelvis_from_anchor(a_pos, a_quat, dof_pos, self.anchor_body)
        qpos = np.concatenate([pos, quat, dof_pos], axis=1)
        return motion_from_qpos(1.0 / g1.CONTROL_DT, qpos, source=f"{self.path.name}", dof_vel=dof_vel)

    # ------------------------------------------------------------------ acting
    def reset(self) -> None:
        self.last_action = np.zeros(g1.NUM_JOINTS, dtype=np.float32)  # raw policy output, policy order

    def build_obs(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The policy's observation ``(1, D)`` from a ``BM-G1-Tracking-v0`` observation dict."""
        return build_policy_obs(obs, self.last_action, self.terms, self.perm, self.default_pos)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {"obs": self.build_obs(obs)}
        if self._feeds_time:
            feed["time_step"] = np.asarray(obs["motion_time_step"], dtype=np.float32).reshape(1, 1)
        out = dict(zip(self._outputs, self.session.run(None, feed)))
        if "joint_pos" in out:  # how far the baked reference is from what the env asks for
            self.reference_error = float(np.max(np.abs(out["joint_pos"][0] - obs["command"][:29][self.perm])))
        a = out["actions"][0].astype(np.float32)
        self.last_action = a
        q_target = self.default_pos + self.action_scale * a  # policy order
        env_a = (q_target[np.argsort(self.perm)] - g1.DEFAULT_JOINT_POS) / g1.ACTION_SCALE
        return env_a.astype(np.float32)

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        """SB3-style: ``(action, state)`` for one unbatched observation dict."""
        if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):
            raise ValueError("predict() got an (obs, info) tuple: pass only the observation returned by env.reset()")
        if not isinstance(obs, dict) or "motion_time_step" not in obs:
            raise ValueError("predict() expects a BM-G1-Tracking-v0 observation dict")
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        return self.act(obs), state


def _term(name: str, obs: dict, last_action: np.ndarray, perm: np.ndarray, default: np.ndarray) -> np.ndarray:
    p, n = obs["proprio"], g1.NUM_JOINTS
    if name == "actions":
        return last_action
    if name == "base_ang_vel":
        return proprio_part(p, "ang_vel_b")
    if name == "projected_gravity":
        return proprio_part(p, "gravity_b")
    if name == "base_lin_vel":
        return quat_to_mat(obs["root_quat_w"]).T @ obs["root_lin_vel_w"]
    if name == "dof_pos":
        return proprio_part(p, "joint_pos")[perm] - default
    if name == "dof_vel":
        return proprio_part(p, "joint_vel")[perm]
    if name == "motion_command":
        c = obs["command"]
        return np.concatenate([c[:n][perm], c[n:][perm]])
    if name == "motion_ref_ori_b":
        return obs["anchor_ori_b"]
    return obs["anchor_pos_b"]  # motion_ref_pos_b


_TERMS = ("actions", "base_ang_vel", "projected_gravity", "base_lin_vel", "dof_pos", "dof_vel", "motion_command",
          "motion_ref_ori_b", "motion_ref_pos_b")  # fmt: skip


def build_policy_obs(obs: dict, last_action: np.ndarray, terms=HOLOSOMA_TERMS, perm=None, default=None) -> np.ndarray:
    """Concatenate observation ``terms`` (policy joint order ``perm``, default pose ``default``) → ``(1, D)`` f32."""
    perm = np.arange(g1.NUM_JOINTS) if perm is None else perm
    default = g1.DEFAULT_JOINT_POS if default is None else default
    parts = [np.asarray(_term(t, obs, last_action, perm, default), dtype=np.float64) for t in terms]
    return np.concatenate(parts).astype(np.float32)[None]
