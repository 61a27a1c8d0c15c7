"""Differentiable, batched task costs G(τ) for classifier guidance (BeyondMimic / Diffuse-CLoC formulas).

A cost maps a decoded planned trajectory to one value per batch element. The trajectory is a dict of
world-frame torch tensors (what ``StateRepresentation.decode`` returns), over the planned horizon T:

* ``root_pos_w`` (B, T, 3) m, ``root_lin_vel_w`` (B, T, 3) m/s, ``root_yaw`` (B, T) rad,
* ``body_pos_w`` (B, T, K, 3) m (only the obstacle cost needs it).

Costs compose: ``a + b`` and ``w * a``. Each validates its inputs and raises ``ValueError`` with the bad value.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from bm_planner.guidance.sdf import SignedDistanceField

CONTROL_DT = 0.02  # s, one planned step


def _check_traj(traj: dict, keys: Sequence[str]) -> None:
    for k in keys:
        if k not in traj:
            raise ValueError(f"trajectory lacks {k!r}; has {sorted(traj)}")
        v = traj[k]
        if not torch.isfinite(v).all():
            raise ValueError(f"trajectory[{k!r}] contains NaN or inf")
    B, T = traj[keys[0]].shape[:2]
    for k in keys:
        if traj[k].shape[:2] != (B, T):
            raise ValueError(f"trajectory[{k!r}] has shape {tuple(traj[k].shape)}, expected leading dims {(B, T)}")


def _as_goal(x, n: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32)
    if t.shape[-1] != n or t.ndim > 2:
        raise ValueError(f"{name} must have shape ({n},) or (B, {n}), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf: {t.tolist()}")
    return t


class Cost:
    """Base class: ``cost(traj) -> (B,)``. Subclasses implement :meth:`forward`."""

    keys: tuple[str, ...] = ("root_pos_w",)

    def __call__(self, traj: dict) -> torch.Tensor:
        _check_traj(traj, self.keys)
        return self.forward(traj)

    def forward(self, traj: dict) -> torch.Tensor:
        raise NotImplementedError

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return SumCost([self, other])

    def __mul__(self, w: float) -> Cost:
        w = float(w)
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"cost weight must be finite and >= 0, got {w!r}")
        return ScaledCost(self, w)

    __rmul__ = __mul__


class SumCost(Cost):
    def __init__(self, terms: list[Cost]):
        self.terms = [t for c in terms for t in (c.terms if isinstance(c, SumCost) else [c])]
        self.keys = tuple(sorted({k for t in self.terms for k in t.keys}))

    def forward(self, traj):
        return sum(t(traj) for t in self.terms)


class ScaledCost(Cost):
    def __init__(self, cost: Cost, weight: float):
        self.cost, self.weight, self.keys = cost, weight, cost.keys

    def forward(self, traj):
        return self.weight * self.cost(traj)


def heading_frame_velocity(traj: dict) -> torch.Tensor:
    """Planar root velocity (B, T, 2) in each step's heading frame (m/s)."""
    v = traj["root_lin_vel_w"][..., :2]
    c, s = torch.cos(traj["root_yaw"]), torch.sin(traj["root_yaw"])
    return torch.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], dim=-1)


def yaw_rate(traj: dict, dt: float = CONTROL_DT) -> torch.Tensor:
    """Root yaw rate (B, T-1) rad/s by finite differences of the (wrapped) planned yaw."""
    dy = torch.diff(traj["root_yaw"], dim=1)
    return torch.atan2(torch.sin(dy), torch.cos(dy)) / dt


class JoystickCost(Cost):
    """``½ Σ_t ‖V_xy,t − g_v‖² + w_yaw · ½ Σ_t (ω_t − g_ω)²``.

    ``g_v`` (2,) or (B, 2): target planar velocity in the robot's heading frame (m/s); ``yaw_rate`` (rad/s) or
    None to leave yaw free.
    """

    keys = ("root_lin_vel_w", "root_yaw")

    def __init__(self, g_v, yaw_rate: float | None = None, yaw_weight: float = 1.0):
        self.g_v = _as_goal(g_v, 2, "g_v")
        if yaw_rate is not None and not math.isfinite(yaw_rate):
            raise ValueError(f"yaw_rate must be finite, got {yaw_rate!r}")
        if not math.isfinite(yaw_weight) or yaw_weight < 0:
            raise ValueError(f"yaw_weight must be finite and >= 0, got {yaw_weight!r}")
        self.g_w, self.yaw_weight = yaw_rate, yaw_weight

    def forward(self, traj):
        v = heading_frame_velocity(traj)
        g = self.g_v.to(v).reshape(-1, 1, 2)
        c = 0.5 * ((v - g) ** 2).sum(dim=(-1, -2))
        if self.g_w is not None and traj["root_yaw"].shape[1] > 1:
            c = c + self.yaw_weight * 0.5 * ((yaw_rate(traj) - self.g_w) ** 2).sum(dim=-1)
        return c


class WaypointCost(Cost):
    """``Σ_t (1 − e^{−2d}) ‖P_t − g_p‖² + e^{−2d} ‖V_t‖²`` with ``d = ‖P_t − g_p‖`` detached (planar).

    Pulls toward the goal when far and asks the robot to stand still when near. Holds a goal sequence
    ``goals`` (G, 2): :meth:`advance` moves to the next goal once the root is within ``radius`` m.
    """

    keys = ("root_pos_w", "root_lin_vel_w")

    def __init__(self, goals, radius: float = 0.3):
        g = _as_goal(goals, 2, "goals")
        self.goals = g.reshape(-1, 2)
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(f"radius must be positive, got {radius!r}")
        self.radius, self.index = radius, 0

    @property
    def goal(self) -> torch.Tensor:
        return self.goals[min(self.index, len(self.goals) - 1)]

    @property
    def done(self) -> bool:
        return self.index >= len(self.goals)

    def advance(self, root_xy) -> bool:
        """Advance past every goal within ``radius`` of ``root_xy`` (2,); returns True if the goal changed."""
        xy = torch.as_tensor(root_xy, dtype=torch.float32)
        moved = False
        while not self.done and torch.linalg.norm(xy - self.goals[self.index]) < self.radius:
            self.index += 1
            moved = True
        return moved

    def forward(self, traj):
        p = traj["root_pos_w"][..., :2]
        v = traj["root_lin_vel_w"][..., :2]
        diff = p - self.goal.to(p)
        d = torch.linalg.norm(diff, dim=-1).detach()
        w = torch.exp(-2.0 * d)
        return ((1 - w) * (diff**2).sum(-1) + w * (v**2).sum(-1)).sum(-1)


def relaxed_log_barrier(x: torch.Tensor, delta: float) -> torch.Tensor:
    """``B(x) = −ln x`` for ``x ≥ δ``, else ``−ln δ + ½[((x − 2δ)/δ)² − 1]`` (C¹, finite for x ≤ 0)."""
    safe = torch.clamp(x, min=delta)
    quad = -math.log(delta) + 0.5 * (((x - 2 * delta) / delta) ** 2 - 1)
    return torch.where(x >= delta, -torch.log(safe), quad)


class ObstacleAvoidanceCost(Cost):
    """``Σ_t Σ_b B(SDF(P_b,t) − r_b, δ)`` over the robot's bodies, each approximated by a sphere of radius r_b.

    ``body_radii`` (K,) metres matches ``traj["body_pos_w"]``'s K bodies. Only distances below ``cutoff`` m
    contribute (the barrier is shifted to 0 at the cutoff so far-away obstacles exert no pull).
    """

    keys = ("body_pos_w",)

    def __init__(self, sdf: SignedDistanceField, body_radii, delta: float = 0.05, cutoff: float = 1.0):
        r = torch.as_tensor(body_radii, dtype=torch.float32)
        if r.ndim != 1 or not torch.isfinite(r).all() or (r < 0).any():
            raise ValueError(f"body_radii must be a 1-D array of finite radii >= 0, got {r.tolist()}")
        if not (0 < delta < cutoff):
            raise ValueError(f"need 0 < delta < cutoff, got {delta=}, {cutoff=}")
        self.sdf, self.radii, self.delta, self.cutoff = sdf, r, delta, cutoff

    def forward(self, traj):
        p = traj["body_pos_w"]
        if p.shape[-2] != len(self.radii) or p.shape[-1] != 3:
            raise ValueError(f"body_pos_w must be (B, T, {len(self.radii)}, 3), got {tuple(p.shape)}")
        x = self.sdf(p) - self.radii.to(p)
        b = relaxed_log_barrier(x, self.delta) - (-math.log(self.cutoff))
        return torch.where(x < self.cutoff, b, torch.zeros_like(b)).sum(dim=(-1, -2))


class MovingObstacleCost(ObstacleAvoidanceCost):
    """:class:`ObstacleAvoidanceCost` against time-varying spheres: ``Σ_t Σ_b B(d_t(P_b,t) − r_b, δ)`` where
    ``d_t`` is the distance to the nearest sphere *at planned step t* (:class:`~bm_planner.guidance.sdf.MovingSpheres`,
    centres (B, H, M, 3)). Step t of ``traj["body_pos_w"]`` (B, H, K, 3) meets the spheres' step t, so the centres
    must cover the same planned steps as the trajectory the cost sees (or H = 1 for spheres held still).
    """

    def __init__(self, spheres, body_radii, delta: float = 0.05, cutoff: float = 1.0):
        from bm_planner.guidance.sdf import MovingSpheres

        if not isinstance(spheres, MovingSpheres):
            raise ValueError(f"spheres must be a MovingSpheres, got {type(spheres).__name__}")
        super().__init__(spheres, body_radii, delta, cutoff)
