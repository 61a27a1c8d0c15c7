"""Rotation helpers for :meth:`StateRepresentation.decode` (differentiable torch) and its closed-form
Jacobian-transpose :meth:`StateRepresentation.decode_vjp` (torch or numpy)."""

from __future__ import annotations

import torch

_SMALL = 1e-4  # below this angle (rad) the Rodrigues coefficients use their Taylor series


def rotvec_to_matrix(rv: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` of rotation vectors ``(..., 3)`` (rad), by Rodrigues' formula.

    ``R = I + a·[r]× + b·[r]×²`` with ``a = sin θ/θ``, ``b = (1 − cos θ)/θ²``, ``θ = |r|``; finite gradients at θ = 0.
    """
    theta2 = (rv * rv).sum(-1)
    small = theta2 < _SMALL**2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24 + theta2 * theta2 / 720, (1 - torch.cos(theta)) / (theta * theta))
    x, y, z = rv[..., 0], rv[..., 1], rv[..., 2]
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*rv.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rv.dtype, device=rv.device).expand_as(k)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


_SERIES = 0.05  # below this angle (rad) the heading helpers use Taylor series (the closed forms cancel in float32)


def array_namespace(x):
    """``numpy`` for numpy arrays, else ``torch``: the heading helpers below, :meth:`StateRepresentation.decode`'s
    root/body path, :meth:`~StateRepresentation.decode_vjp` and the closed-form cost gradients run on either (numpy
    costs ~4x less per small-array op on the CPU, which is what a guidance call per denoising step is made of)."""
    import numpy as np

    return np if isinstance(x, np.ndarray) else torch


def yaw_of_rotvec(rv):
    """Heading ``atan2(R[1, 0], R[0, 0])`` (rad) of rotation vectors ``(..., 3)`` → ``(...)`` (torch or numpy)."""
    return _yaw_parts(rv)[0]


def _yaw_parts(rv):
    xp = array_namespace(rv)
    x, y, z = rv[..., 0], rv[..., 1], rv[..., 2]
    theta2 = x * x + y * y + z * z
    small = theta2 < _SERIES**2
    any_small = bool(small.any())  # the series branch costs ~10 ops; skip it when no angle needs it
    theta = xp.sqrt(xp.where(small, xp.ones_like(theta2), theta2) if any_small else theta2)
    sin, cos = xp.sin(theta), xp.cos(theta)
    a, b = sin / theta, (1 - cos) / (theta * theta)
    if any_small:
        t4 = theta2 * theta2
        a = xp.where(small, 1 - theta2 / 6 + t4 / 120, a)
        b = xp.where(small, 0.5 - theta2 / 24 + t4 / 720, b)
    u = a * z + b * x * y  # R[1, 0]
    w = 1 - b * (y * y + z * z)  # R[0, 0]
    return xp.arctan2(u, w), (x, y, z, theta, theta2, small, any_small, sin, cos, a, b, u, w)


def yaw_of_rotvec_grad(rv):
    """``(yaw (...), ∂yaw/∂rv (..., 3))`` in closed form (Rodrigues' coefficients and their derivatives
    ``a'(θ)/θ``, ``b'(θ)/θ``; series below 0.05 rad), the analytic counterpart of autograd through
    :func:`rotvec_to_matrix` for guidance (torch or numpy)."""
    xp = array_namespace(rv)
    yaw, (x, y, z, theta, theta2, small, any_small, sin, cos, a, b, u, w) = _yaw_parts(rv)
    t3 = theta2 * theta
    da = (theta * cos - sin) / t3  # a'(θ)/θ
    db = (theta * sin - 2 * (1 - cos)) / (t3 * theta)  # b'(θ)/θ
    if any_small:
        t4 = theta2 * theta2
        da = xp.where(small, -1 / 3 + theta2 / 30 - t4 / 840, da)
        db = xp.where(small, -1 / 12 + theta2 / 180 - t4 / 6720, db)
    yz = y * y + z * z
    # du/dr = (z·da + x·y·db)·r + a·e_z + b·(y e_x + x e_y);  dw/dr = −yz·db·r − 2b·(0, y, z)
    cu, cw = z * da + x * y * db, -yz * db
    du = xp.stack([cu * x + b * y, cu * y + b * x, cu * z + a], -1)
    dw = xp.stack([cw * x, cw * y - 2 * b * y, cw * z - 2 * b * z], -1)
    inv = 1.0 / (u * u + w * w)
    return yaw, (w[..., None] * du - u[..., None] * dw) * inv[..., None]
