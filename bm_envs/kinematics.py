"""Rigid-body kinematics on MuJoCo's data: the one implementation of v + ω × r (world linear velocity of a point)."""

from __future__ import annotations

import numpy as np


def point_lin_vel_w(cvel: np.ndarray, points_w: np.ndarray, com_w: np.ndarray) -> np.ndarray:
    """World linear velocity (K, 3) m/s of points ``points_w`` (K, 3) m fixed to bodies whose MuJoCo ``cvel`` rows are
    ``cvel`` (K, 6): (angular ω rad/s, linear v m/s) about ``com_w`` ((3,) or (K, 3) m, the ``subtree_com`` of their
    tree's root; valid after ``mj_comVel``): ``v + ω × (p − com)``. The cross product is written out (``np.cross``
    costs ~4x more per call on the per-step hot path; the same floating-point operations)."""
    r = points_w - com_w
    w0, w1, w2 = cvel[:, 0], cvel[:, 1], cvel[:, 2]
    r0, r1, r2 = r[:, 0], r[:, 1], r[:, 2]
    v = cvel[:, 3:].copy()
    v[:, 0] += w1 * r2 - w2 * r1
    v[:, 1] += w2 * r0 - w0 * r2
    v[:, 2] += w0 * r1 - w1 * r0
    return v


__all__ = ["point_lin_vel_w"]
