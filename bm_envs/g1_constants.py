"""Single source of truth for Unitree G1 (29 DoF) facts used by sim, hardware, experts and export.

Joint order is Unitree's motor order: left leg (6), right leg (6), waist (3), left arm (7), right arm (7).
Units: rad, rad/s, N·m, kg, m, s.

PD gains follow BeyondMimic's rule from the reflected rotor inertia (armature) I_j:
``kp = I·ω²`` and ``kd = 2·I·ζ·ω`` with ω = 2π·10 Hz and ζ = 2. These reproduce the kp/kd stored in the
pretrained holosoma ONNX experts' metadata (checked by ``tests/bm_envs/test_g1_constants.py``).

Action convention (all bm envs, the Stage-1 locomotion experts and the Stage-2 data):
``q_target = DEFAULT_JOINT_POS + ACTION_SCALE * action`` with ``ACTION_SCALE = 0.25`` for every joint
(the locomotion experts' convention). BeyondMimic's tracking policies use the per-joint scale
``BEYONDMIMIC_ACTION_SCALE = 0.25·τ_max/kp``; :func:`tracking_to_env_action` converts.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint",
    "left_knee_joint", "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint",
    "right_knee_joint", "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint",
    "left_wrist_roll_joint", "left_wrist_pitch_joint", "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint",
    "right_wrist_roll_joint", "right_wrist_pitch_joint", "right_wrist_yaw_joint",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)

#: Nominal standing pose (rad), the pose actions are offsets from.
DEFAULT_JOINT_POS = np.array(
    [-0.312, 0.0, 0.0, 0.669, -0.363, 0.0,
     -0.312, 0.0, 0.0, 0.669, -0.363, 0.0,
     0.0, 0.0, 0.0,
     0.2, 0.2, 0.0, 0.6, 0.0, 0.0, 0.0,
     0.2, -0.2, 0.0, 0.6, 0.0, 0.0, 0.0],
    dtype=np.float64,
)  # fmt: skip

# Motor classes: (armature kg·m², torque limit N·m). Values from the G1 MJCF.
_M_7520_14 = (0.01017752004, 88.0)  # hip pitch/yaw, waist yaw
_M_7520_22 = (0.025101925, 139.0)  # hip roll, knee
_M_5020 = (0.00721945, 50.0)  # ankles, waist roll/pitch
_M_ARM = (0.003609725, 25.0)  # shoulders, elbow, wrist roll
_M_4010 = (0.00425, 5.0)  # wrist pitch/yaw
_LEG = (_M_7520_14, _M_7520_22, _M_7520_14, _M_7520_22, _M_5020, _M_5020)
_ARM = (_M_ARM, _M_ARM, _M_ARM, _M_ARM, _M_ARM, _M_4010, _M_4010)
_MOTORS = _LEG + _LEG + (_M_7520_14, _M_5020, _M_5020) + _ARM + _ARM

ARMATURE = np.array([m[0] for m in _MOTORS])
TORQUE_LIMIT = np.array([m[1] for m in _MOTORS])

NATURAL_FREQ_HZ = 10.0
DAMPING_RATIO = 2.0
_OMEGA = 2.0 * np.pi * NATURAL_FREQ_HZ
KP = ARMATURE * _OMEGA**2
KD = 2.0 * ARMATURE * DAMPING_RATIO * _OMEGA

ACTION_SCALE = np.full(NUM_JOINTS, 0.25)
BEYONDMIMIC_ACTION_SCALE = 0.25 * TORQUE_LIMIT / KP

#: Left/right mirror: index permutation and sign flip such that mirror(q)[i] = sign[i] * q[perm[i]].
#: Roll and yaw joints change sign under reflection through the sagittal (x-z) plane; pitch joints do not.
MIRROR_PERM = np.array(
    [6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 12, 13, 14,
     22, 23, 24, 25, 26, 27, 28, 15, 16, 17, 18, 19, 20, 21]
)  # fmt: skip
MIRROR_SIGN = np.array(
    [1 if ("pitch" in n or "knee" in n or "elbow" in n) else -1 for n in JOINT_NAMES], dtype=np.float64
)

#: Robot bodies in MJCF order (pelvis first). Positions/velocities of all of them are in the observation.
BODY_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip_pitch_link", "left_hip_roll_link", "left_hip_yaw_link", "left_knee_link",
    "left_ankle_pitch_link", "left_ankle_roll_link", "left_foot_contact_point",
    "right_hip_pitch_link", "right_hip_roll_link", "right_hip_yaw_link", "right_knee_link",
    "right_ankle_pitch_link", "right_ankle_roll_link", "right_foot_contact_point",
    "waist_yaw_link", "waist_roll_link", "torso_link",
    "left_shoulder_pitch_link", "left_shoulder_roll_link", "left_shoulder_yaw_link", "left_elbow_link",
    "left_wrist_roll_link", "left_wrist_pitch_link", "left_wrist_yaw_link",
    "right_shoulder_pitch_link", "right_shoulder_roll_link", "right_shoulder_yaw_link", "right_elbow_link",
    "right_wrist_roll_link", "right_wrist_pitch_link", "right_wrist_yaw_link",
)  # fmt: skip
NUM_BODIES = len(BODY_NAMES)
FOOT_BODIES = ("left_ankle_roll_link", "right_ankle_roll_link")

#: Head point in the torso_link frame (centre of the MJCF's head collision capsule), m.
HEAD_OFFSET_IN_TORSO = np.array([0.01, 0.0, 0.415])

#: Fall thresholds (paper / scenario format): head below 0.2 m or pelvis below 0.35 m.
FALL_HEAD_HEIGHT = 0.2
FALL_PELVIS_HEIGHT = 0.35

#: Simulation timing.
PHYSICS_DT = 0.002
DECIMATION = 10
CONTROL_DT = PHYSICS_DT * DECIMATION  # 50 Hz

#: Pinned asset locations (see :mod:`bm_envs.assets`).
MJCF_ASSET = ("holosoma", "holosoma/data/robots/g1/g1_29dof.xml")


def tracking_to_env_action(a_tracking: np.ndarray) -> np.ndarray:
    """Convert a BeyondMimic per-joint-scaled action to the bm env action (same joint target)."""
    return np.asarray(a_tracking) * (BEYONDMIMIC_ACTION_SCALE / ACTION_SCALE)


def mirror_joints(q: np.ndarray) -> np.ndarray:
    """Mirror joint-space vectors ``(..., 29)`` left↔right (positions, velocities or actions)."""
    q = np.asarray(q)
    return q[..., MIRROR_PERM] * MIRROR_SIGN
