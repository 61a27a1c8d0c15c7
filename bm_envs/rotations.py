"""Small numpy rotation helpers. Quaternions are ``wxyz`` (MuJoCo's convention) everywhere."""

from __future__ import annotations

import numpy as np


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` from unit quaternions ``(..., 4)`` wxyz."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.empty(q.shape[:-1] + (3, 3))
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - w * z)
    m[..., 0, 2] = 2 * (x * z + w * y)
    m[..., 1, 0] = 2 * (x * y + w * z)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - w * x)
    m[..., 2, 0] = 2 * (x * z - w * y)
    m[..., 2, 1] = 2 * (y * z + w * x)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def yaw_from_quat(q: np.ndarray) -> np.ndarray:
    """Heading angle (rad) of the body x-axis projected on the ground, from wxyz quaternions ``(..., 4)``."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def quat_from_yaw(yaw: float) -> np.ndarray:
    """wxyz quaternion of a rotation by ``yaw`` rad about world z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def projected_gravity(q: np.ndarray) -> np.ndarray:
    """Unit gravity direction ``(..., 3)`` expressed in the body frame of wxyz quaternion ``q``."""
    return np.einsum("...ji,j->...i", quat_to_mat(q), np.array([0.0, 0.0, -1.0]))


def world_to_yaw_frame(v_xy: np.ndarray, yaw: float | np.ndarray) -> np.ndarray:
    """Rotate planar world vectors ``(..., 2)`` into the heading frame of angle ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    v = np.asarray(v_xy)
    return np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], axis=-1)


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi
