"""Differentiable torch rotation helpers for :meth:`StateRepresentation.decode`."""

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
