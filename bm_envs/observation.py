"""The layout of a bm env observation's ``proprio`` vector: one schema for the envs that build it (the task envs,
the multi-robot env, the hardware env through the base env) and everything that reads it (the Stage-1 experts,
the tracking policy, observation noise, the SB3 features).

``proprio`` (93,) float32, in this order (``_b`` = pelvis frame; joints in Unitree order, ``g1_constants``):

=================  ==========  ================================================
part               slice       content
=================  ==========  ================================================
``ang_vel_b``      0:3         base angular velocity (rad/s)
``gravity_b``      3:6         projected gravity (unit vector)
``joint_pos``      6:35        joint positions (rad)
``joint_vel``      35:64       joint velocities (rad/s)
``last_action``    64:93       the action executed last (normalized, see the env)
=================  ==========  ================================================
"""

from __future__ import annotations

import numpy as np

from bm_envs import g1_constants as g1

_N = g1.NUM_JOINTS
#: name -> slice of each part of ``proprio``, in order
PROPRIO_SLICES: dict[str, slice] = {
    "ang_vel_b": slice(0, 3),
    "gravity_b": slice(3, 6),
    "joint_pos": slice(6, 6 + _N),
    "joint_vel": slice(6 + _N, 6 + 2 * _N),
    "last_action": slice(6 + 2 * _N, 6 + 3 * _N),
}
PROPRIO_DIM = 6 + 3 * _N


def make_proprio(ang_vel_b, gravity_b, joint_pos, joint_vel, last_action) -> np.ndarray:
    """``proprio`` (93,) from its parts, (3,), (3,), (29,), (29,), (29,), in the schema's order."""
    return np.concatenate([ang_vel_b, gravity_b, joint_pos, joint_vel, last_action])


def proprio_part(proprio: np.ndarray, name: str) -> np.ndarray:
    """One part of ``proprio`` (..., 93) by name (a view): ``proprio_part(p, "joint_pos")`` is (..., 29)."""
    return np.asarray(proprio)[..., PROPRIO_SLICES[name]]


__all__ = ["PROPRIO_DIM", "PROPRIO_SLICES", "make_proprio", "proprio_part"]
