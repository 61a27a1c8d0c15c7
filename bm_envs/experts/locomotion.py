"""Stage-1 locomotion experts: holosoma's pretrained G1 velocity-tracking ONNX policies, run with onnxruntime.

The ONNX files come from the pinned ``holosoma-inference`` wheel (:mod:`bm_envs.assets`). Their 100-D input is the
concatenation of these terms in alphabetical order (the exporter sorts them):

=====================  ====  =============================================================
term                   dim   content
=====================  ====  =============================================================
``actions``            29    the policy's previous raw output
``base_ang_vel``       3     pelvis angular velocity (body frame, rad/s) × 0.25
``command_ang_vel``    1     yaw-rate command (rad/s)
``command_lin_vel``    2     (vx, vy) command (m/s, heading frame)
``cos_phase``          2     cos of the left/right gait phase
``dof_pos``            29    joint positions − default pose (rad)
``dof_vel``            29    joint velocities × 0.05
``projected_gravity``  3     gravity direction in the pelvis frame
``sin_phase``          2     sin of the gait phase
=====================  ====  =============================================================

The gait phase of each foot advances 2π·0.02 per step (1 s gait period; right foot offset by π); when the
command is ~0 both phases are held at π (standing). Output: 29 actions with ``q* = default + 0.25·a`` — exactly the
bm env action convention, so the expert's output is passed to ``env.step`` unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.assets import asset_path
from bm_envs.observation import PROPRIO_DIM, proprio_part

EXPERTS = {
    "fastsac": "holosoma_inference/models/loco/g1_29dof/fastsac_g1_29dof.onnx",
    "ppo": "holosoma_inference/models/loco/g1_29dof/ppo_g1_29dof.onnx",
}
GAIT_PERIOD_S = 1.0
STAND_THRESHOLD = 0.01


def _session(path: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


@dataclass
class ExpertState:
    """Recurrent state of an expert between steps: gait phase (2,) and last raw action (29,)."""

    phase: np.ndarray = field(default_factory=lambda: np.array([0.0, np.pi]))
    last_action: np.ndarray = field(default_factory=lambda: np.zeros(g1.NUM_JOINTS, dtype=np.float32))


class LocomotionExpert:
    """A pretrained G1 velocity-tracking policy. ``act(obs, command)`` → env action (29,).

    ``obs`` is a bm env observation dict (only ``proprio`` is read). ``command`` = (vx, vy, yaw_rate).
    """

    def __init__(self, name: str = "fastsac"):
        if name not in EXPERTS:
            raise ValueError(f"unknown expert {name!r}; known: {sorted(EXPERTS)}")
        self.name = name
        self.path = asset_path("holosoma-inference", EXPERTS[name])
        self.session = _session(str(self.path))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k: json.loads(v) for k, v in meta.items() if k in ("dof_names", "kp", "kd", "command_ranges")}
        if tuple(self.metadata.get("dof_names", ())) != g1.JOINT_NAMES:
            raise ValueError(f"{self.path.name}: joint names in the ONNX metadata differ from g1_constants.JOINT_NAMES")
        for key, ours in (("kp", g1.KP), ("kd", g1.KD)):
            theirs = np.asarray(self.metadata[key])
            if not np.allclose(theirs, ours, rtol=1e-6):
                raise ValueError(f"{self.path.name}: {key} in the ONNX metadata differ from g1_constants.{key.upper()}")
        self.input_name = self.session.get_inputs()[0].name
        self.state = ExpertState()

    def reset(self) -> None:
        self.state = ExpertState()

    @staticmethod
    def build_obs(proprio: np.ndarray, command: np.ndarray, st: ExpertState) -> np.ndarray:
        """The expert's 100-D observation from the env's ``proprio`` (93,), a command (3,) and its state."""
        part = lambda name: proprio_part(proprio, name)  # noqa: E731
        ang_vel, grav, q, qd = part("ang_vel_b"), part("gravity_b"), part("joint_pos"), part("joint_vel")
        return np.concatenate(
            [st.last_action, ang_vel * 0.25, command[2:3], command[0:2], np.cos(st.phase), q - g1.DEFAULT_JOINT_POS,
             qd * 0.05, grav, np.sin(st.phase)]
        ).astype(np.float32)[None]  # fmt: skip

    def take_over(self, obs: dict[str, np.ndarray], command: np.ndarray, reference_action: np.ndarray | None = None,
                  candidates: int = 24) -> float:  # fmt: skip
        """Prepare to take control mid-gait from another controller (a planner, a human): the previous action is
        the one executed last (``obs["proprio"]``'s last 29 entries), and the gait phase — a clock the expert
        keeps, not something it observes — is set to the one of ``candidates`` evenly spaced phases whose
        action for ``obs`` is closest to ``reference_action`` (29,), e.g. what the other controller would do next.
        Without a reference the phase clock is kept. Returns the distance ‖a_expert − reference‖ at the chosen
        phase (0 without a reference). The next :meth:`act` then continues from that phase."""
        command = np.asarray(command, dtype=np.float64).reshape(3)
        self.state.last_action = np.asarray(proprio_part(obs["proprio"], "last_action"), dtype=np.float32).copy()
        if reference_action is None:
            return 0.0
        ref = np.asarray(reference_action, dtype=np.float64).reshape(g1.NUM_JOINTS)
        step = 2 * np.pi * g1.CONTROL_DT / GAIT_PERIOD_S
        best, best_err = None, np.inf
        for phi in np.linspace(-np.pi, np.pi, candidates, endpoint=False):
            st = ExpertState(phase=np.array([phi, phi + np.pi]) - step, last_action=self.state.last_action.copy())
            saved, self.state = self.state, st
            a = self.act(obs, command)
            self.state = saved
            err = float(np.linalg.norm(a - ref))
            if err < best_err:
                best, best_err = phi, err
        phase = np.array([best, best + np.pi]) - step
        self.state.phase = np.fmod(phase + 3 * np.pi, 2 * np.pi) - np.pi
        return best_err

    def act(self, obs: dict[str, np.ndarray], command: np.ndarray) -> np.ndarray:
        command = np.asarray(command, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(command)):
            raise ValueError(f"command must be finite, got {command}")
        st = self.state
        st.phase = np.fmod(st.phase + 2 * np.pi * g1.CONTROL_DT / GAIT_PERIOD_S + np.pi, 2 * np.pi) - np.pi
        if np.linalg.norm(command[:2]) < STAND_THRESHOLD and abs(command[2]) < STAND_THRESHOLD:
            st.phase[:] = np.pi
        x = self.build_obs(np.asarray(obs["proprio"], dtype=np.float64), command, st)
        a = self.session.run(None, {self.input_name: x})[0][0]
        st.last_action = a.astype(np.float32)
        return a.astype(np.float32)


def _check_obs(obs: Any) -> dict[str, np.ndarray]:
    if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):
        raise ValueError("predict() got an (obs, info) tuple: pass only the observation returned by env.reset()")
    if not isinstance(obs, dict) or "proprio" not in obs:
        raise ValueError("predict() expects a bm env observation dict with a 'proprio' key")
    if np.asarray(obs["proprio"]).shape != (PROPRIO_DIM,):
        raise ValueError(f"obs['proprio'] must have shape ({PROPRIO_DIM},) (one env, unbatched), got "
                         f"{np.shape(obs['proprio'])}")  # fmt: skip
    if not np.all(np.isfinite(obs["proprio"])):
        raise ValueError("obs['proprio'] contains NaN or inf")
    return obs


class ExpertPolicy:
    """SB3-style policy: a locomotion expert driven by the env's command or by a command law.

    ``predict(obs, state=None, episode_start=None, deterministic=True) -> (action, state)``. Without a law it
    follows ``obs["command"]`` (Joystick env); with one (e.g. :class:`bm_envs.experts.command_laws.PurePursuit`) it
    computes the command from the task observation. Call ``reset()`` at episode start (or pass
    ``episode_start=True``).
    """

    def __init__(self, expert: str | LocomotionExpert = "fastsac", law=None):
        self.expert = LocomotionExpert(expert) if isinstance(expert, str) else expert
        self.law = law
        self.last_command = np.zeros(3)

    def reset(self) -> None:
        self.expert.reset()
        if self.law is not None and hasattr(self.law, "reset"):
            self.law.reset()

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        obs = _check_obs(obs)
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        if self.law is not None:
            cmd = self.law(obs)
        elif "command" in obs:
            cmd = np.asarray(obs["command"], dtype=np.float64)
        else:
            raise ValueError("this observation has no 'command'; give ExpertPolicy a command law")
        self.last_command = cmd
        return self.expert.act(obs, cmd), state
