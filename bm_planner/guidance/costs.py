"""Differentiable, batched task costs G(τ) for classifier guidance (BeyondMimic / Diffuse-CLoC formulas).

A cost maps a decoded planned trajectory to one value per batch element. The trajectory is a dict of
world-frame torch tensors (what ``StateRepresentation.decode`` returns), over the planned horizon T:

* ``root_pos_w`` (B, T, 3) m, ``root_lin_vel_w`` (B, T, 3) m/s, ``root_yaw`` (B, T) rad,
* ``body_pos_w`` (B, T, K, 3) m (only the obstacle cost needs it).

Costs compose: ``a + b`` and ``w * a``. Each validates its inputs and raises ``ValueError`` with the bad value.

``cost.value_and_grad(traj) -> (G (B,), {key: ∂G/∂traj[key]})`` gives the gradient guidance needs without an
autograd graph: :class:`JoystickCost` and :class:`WaypointCost` in closed form, the obstacle costs by autograd
through the SDF alone (not through the decoder); composites add up their terms. Tested equal to autograd.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from bm_planner.data._torch_rot import array_namespace
from bm_planner.guidance.sdf import SignedDistanceField

CONTROL_DT = 0.02  # s, one planned step


def _check_traj(traj: dict, keys: Sequence[str]) -> None:
    for k in keys:
        if k not in traj:
            raise ValueError(f"trajectory lacks {k!r}; has {sorted(traj)}")
        v = traj[k]
        if not array_namespace(v).isfinite(v).all():
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

    def value_and_grad(self, traj: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(G (B,), {key: ∂G/∂traj[key]})`` for every key in :attr:`keys` (same shapes as ``traj[key]``)."""
        _check_traj(traj, self.keys)
        return self._value_and_grad(traj)

    def _value_and_grad(self, traj: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Default: autograd through :meth:`forward` only (the trajectory entries are the leaves; numpy entries
        round-trip through torch)."""
        if array_namespace(traj[self.keys[0]]) is not torch:
            cost, grads = self._value_and_grad({k: torch.from_numpy(np.asarray(v)) for k, v in traj.items()})
            return cost.numpy(), {k: g.numpy() for k, g in grads.items()}
        leaves = {k: (v.detach().requires_grad_(True) if k in self.keys else v) for k, v in traj.items()}
        with torch.enable_grad():
            cost = self.forward(leaves)
            grads = torch.autograd.grad(cost.sum(), [leaves[k] for k in self.keys], allow_unused=True)
        return cost.detach(), {k: (torch.zeros_like(traj[k]) if g is None else g) for k, g in zip(self.keys, grads)}

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

    def _value_and_grad(self, traj):
        total, grads = None, {}
        for t in self.terms:
            c, g = t._value_and_grad(traj)
            total = c if total is None else total + c
            for k, v in g.items():
                grads[k] = v if k not in grads else grads[k] + v
        return total, grads


class ScaledCost(Cost):
    def __init__(self, cost: Cost, weight: float):
        self.cost, self.weight, self.keys = cost, weight, cost.keys

    def forward(self, traj):
        return self.weight * self.cost(traj)

    def _value_and_grad(self, traj):
        c, g = self.cost._value_and_grad(traj)
        return self.weight * c, {k: self.weight * v for k, v in g.items()}


def heading_frame_velocity(traj: dict):
    """Planar root velocity (B, T, 2) in each step's heading frame (m/s)."""
    xp = array_namespace(traj["root_yaw"])
    v = traj["root_lin_vel_w"][..., :2]
    c, s = xp.cos(traj["root_yaw"]), xp.sin(traj["root_yaw"])
    return xp.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], -1)


def wrap_angle(a):
    """Angles wrapped to (−π, π] (torch or numpy; derivative 1 away from the cut)."""
    xp = array_namespace(a)
    return xp.arctan2(xp.sin(a), xp.cos(a))


def yaw_rate(traj: dict, dt: float = CONTROL_DT):
    """Root yaw rate (B, T-1) rad/s by finite differences of the (wrapped) planned yaw."""
    y = traj["root_yaw"]
    return wrap_angle(y[:, 1:] - y[:, :-1]) / dt


def heading_error(traj: dict, yaw_rate_goal: float, dt: float = CONTROL_DT):
    """``wrap(ψ_t − ψ_0 − g_ω · t · dt)`` (B, T-1) rad, t = 1 … T-1: how far each planned heading is from turning
    at ``yaw_rate_goal`` rad/s since the first planned step."""
    y = traj["root_yaw"]
    xp = array_namespace(y)
    t = xp.arange(1, y.shape[1], dtype=y.dtype) if xp is not torch else torch.arange(1, y.shape[1]).to(y)
    return wrap_angle(y[:, 1:] - y[:, :1] - yaw_rate_goal * dt * t)


def _const(t: torch.Tensor, like):
    """The torch constant ``t`` as an array of ``like``'s kind, dtype (and device)."""
    return t.to(like) if isinstance(like, torch.Tensor) else t.numpy().astype(like.dtype)


class JoystickCost(Cost):
    """``½ Σ_t ‖V_xy,t − g_v‖² + w_yaw · ½ Σ_t wrap(ψ_t − ψ_0 − g_ω · t · dt)²``.

    ``g_v`` (2,) or (B, 2): target planar velocity in the robot's heading frame (m/s); ``yaw_rate`` g_ω (rad/s) or
    None to leave yaw free. The yaw term scores the planned *heading* against turning at g_ω from the first planned
    step (rad), not the finite-difference rate: a rate error (rad/s) has a 1/dt = 50 gain on each heading, and its
    gradient then swamped the velocity term under the guidance's norm clip (measured at the standing start: yaw part
    8–210 vs velocity part 0.65 at scale 8), so forward commands barely moved the plan.
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
            c = c + self.yaw_weight * 0.5 * (heading_error(traj, self.g_w) ** 2).sum(dim=-1)
        return c

    def _value_and_grad(self, traj):
        vw, yaw = traj["root_lin_vel_w"], traj["root_yaw"]
        xp = array_namespace(yaw)
        c, s = xp.cos(yaw), xp.sin(yaw)
        h0, h1 = c * vw[..., 0] + s * vw[..., 1], -s * vw[..., 0] + c * vw[..., 1]  # heading-frame velocity
        g = _const(self.g_v, vw).reshape(-1, 1, 2)
        e0, e1 = h0 - g[..., 0], h1 - g[..., 1]
        cost = 0.5 * (e0 * e0 + e1 * e1).sum(-1)
        g_v = xp.zeros_like(vw)
        g_v[..., 0], g_v[..., 1] = c * e0 - s * e1, s * e0 + c * e1
        g_yaw = e0 * h1 - e1 * h0  # ∂h/∂yaw = (h1, −h0)
        if self.g_w is not None and yaw.shape[1] > 1:
            e = heading_error(traj, self.g_w)
            cost = cost + self.yaw_weight * 0.5 * (e * e).sum(-1)
            q = self.yaw_weight * e
            g_yaw[:, 1:] = g_yaw[:, 1:] + q
            g_yaw[:, 0] = g_yaw[:, 0] - q.sum(-1)
        return cost, {"root_lin_vel_w": g_v, "root_yaw": g_yaw}


def whole_body_targets(root_pos_w, root_yaw: float, body_pos_w, g_v, yaw_rate: float, steps: int,
                       dt: float = CONTROL_DT) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Where every body should be if the robot followed the command rigidly: the command (g_v (2,) m/s in the heading
    frame, ``yaw_rate`` rad/s) integrated over ``steps`` planned steps of ``dt`` s from the current root pose
    (``root_pos_w`` (3,) m, ``root_yaw`` rad) and body positions ``body_pos_w`` (K, 3) m.

    The heading advances ψ_t = ψ_0 + ω·t·dt; the root moves with the heading-frame velocity rotated to the world,
    p_t = p_0 + Σ_{i<t} R(ψ_i)·g_v·dt; each body keeps its planar offset from the root, rotated with the heading,
    b_t = p_t + R(ψ_t − ψ_0)(b_0 − p_0) (height unchanged), and moves with v_t = R(ψ_t)·g_v + ω ẑ × (b_t − p_t).
    Returns (positions (steps, K, 3), velocities (steps, K, 3)) for t = 1 … steps, world frame.
    """
    p0 = np.asarray(root_pos_w, dtype=np.float64).reshape(3)
    b0 = np.asarray(body_pos_w, dtype=np.float64)
    g = np.asarray(g_v, dtype=np.float64).reshape(2)
    if b0.ndim != 2 or b0.shape[1] != 3 or not (np.isfinite(b0).all() and np.isfinite(p0).all()):
        raise ValueError(f"body_pos_w must be a finite (K, 3) array, got shape {b0.shape}")
    if not (np.isfinite(g).all() and math.isfinite(yaw_rate) and math.isfinite(root_yaw)) or steps < 1:
        raise ValueError(f"bad command or horizon: g_v={g.tolist()}, yaw_rate={yaw_rate!r}, steps={steps!r}")
    t = np.arange(steps + 1) * dt
    psi = root_yaw + yaw_rate * t  # heading at t = 0 … steps
    c, s = np.cos(psi), np.sin(psi)
    v_root = np.stack([c * g[0] - s * g[1], s * g[0] + c * g[1]], -1)  # (steps+1, 2) world planar velocity
    p = p0[:2] + np.concatenate([np.zeros((1, 2)), np.cumsum(v_root[:-1] * dt, axis=0)])  # (steps+1, 2)
    r0 = b0[:, :2] - p0[:2]  # (K, 2) offsets at t = 0
    dc, ds = np.cos(psi - root_yaw), np.sin(psi - root_yaw)
    r = np.stack([dc[:, None] * r0[:, 0] - ds[:, None] * r0[:, 1], ds[:, None] * r0[:, 0] + dc[:, None] * r0[:, 1]],
                 -1)  # (steps+1, K, 2)  # fmt: skip
    pos = np.empty((steps + 1, len(b0), 3))
    pos[..., :2] = p[:, None] + r
    pos[..., 2] = b0[:, 2]
    vel = np.zeros_like(pos)
    vel[..., 0] = v_root[:, None, 0] - yaw_rate * r[..., 1]
    vel[..., 1] = v_root[:, None, 1] + yaw_rate * r[..., 0]
    return pos[1:], vel[1:]


class WholeBodyJoystickCost(Cost):
    """``½ mean_k Σ_t [w_p ‖(P_k,t − P*_k,t)_xy‖² + w_v ‖(V_k,t − V*_k,t)_xy‖²]``: every tracked body on the path
    the command implies (:func:`whole_body_targets`), not only the root — so a turn or side-step asks the legs and
    arms to move, which the actions follow (root-velocity guidance alone slides the planned pelvis while the legs
    stand). ``target_pos``/``target_vel`` (T, K, 3) world frame for the planned future steps; build them from an
    observation with :meth:`from_obs`. Planar terms only (heights are the model's business)."""

    keys = ("body_pos_w", "body_lin_vel_w")

    def __init__(self, target_pos, target_vel, pos_weight: float = 1.0, vel_weight: float = 1.0):
        self.target_pos = np.asarray(target_pos, dtype=np.float64)
        self.target_vel = np.asarray(target_vel, dtype=np.float64)
        if (
            self.target_pos.ndim != 3
            or self.target_pos.shape != self.target_vel.shape
            or self.target_pos.shape[-1] != 3
        ):
            raise ValueError(f"targets must be (T, K, 3) and equal shapes, got {self.target_pos.shape}, "
                             f"{self.target_vel.shape}")  # fmt: skip
        for name, w in (("pos_weight", pos_weight), ("vel_weight", vel_weight)):
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {w!r}")
        self.pos_weight, self.vel_weight = float(pos_weight), float(vel_weight)

    @classmethod
    def from_obs(cls, obs: dict, command, body_ids, steps: int, **kw) -> WholeBodyJoystickCost:
        """Targets from an env observation (root pose, ``body_pos_w`` of the bodies ``body_ids``) and a command
        (vx, vy m/s, yaw rate rad/s) (3,), for ``steps`` planned steps after the current one."""
        from bm_envs.rotations import yaw_from_quat

        c = np.asarray(command, dtype=np.float64).reshape(3)
        yaw = float(yaw_from_quat(np.asarray(obs["root_quat_w"], dtype=np.float64)))
        body = np.asarray(obs["body_pos_w"], dtype=np.float64)[list(body_ids)]
        pos, vel = whole_body_targets(obs["root_pos_w"], yaw, body, c[:2], float(c[2]), steps)
        return cls(pos, vel, **kw)

    def _residuals(self, traj):
        p, v = traj["body_pos_w"], traj["body_lin_vel_w"]
        if tuple(p.shape[1:]) != self.target_pos.shape:
            raise ValueError(f"body_pos_w must be (B, {', '.join(map(str, self.target_pos.shape))}), "
                             f"got {tuple(p.shape)}")  # fmt: skip
        return p[..., :2] - _const(torch.from_numpy(self.target_pos[..., :2]), p), v[..., :2] - _const(
            torch.from_numpy(self.target_vel[..., :2]), v)  # fmt: skip

    def forward(self, traj):
        ep, ev = self._residuals(traj)
        K = ep.shape[-2]
        return (
            0.5
            * (self.pos_weight * (ep**2).sum(dim=(-1, -2, -3)) + self.vel_weight * (ev**2).sum(dim=(-1, -2, -3)))
            / K
        )

    def _value_and_grad(self, traj):
        ep, ev = self._residuals(traj)
        xp = array_namespace(ep)
        K = ep.shape[-2]
        cost = 0.5 * (self.pos_weight * (ep * ep).sum((-1, -2, -3)) + self.vel_weight * (ev * ev).sum((-1, -2, -3))) / K
        g_p, g_v = xp.zeros_like(traj["body_pos_w"]), xp.zeros_like(traj["body_lin_vel_w"])
        g_p[..., :2] = self.pos_weight * ep / K
        g_v[..., :2] = self.vel_weight * ev / K
        return cost, {"body_pos_w": g_p, "body_lin_vel_w": g_v}


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

    def _value_and_grad(self, traj):
        p, v = traj["root_pos_w"], traj["root_lin_vel_w"]
        xp = array_namespace(p)
        diff = p[..., :2] - _const(self.goal, p)
        w = xp.exp(-2.0 * xp.sqrt((diff * diff).sum(-1)))[..., None]
        cost = ((1 - w) * diff * diff + w * v[..., :2] * v[..., :2]).sum(-1).sum(-1)
        g_p, g_v = xp.zeros_like(p), xp.zeros_like(v)
        g_p[..., :2], g_v[..., :2] = 2 * (1 - w) * diff, 2 * w * v[..., :2]
        return cost, {"root_pos_w": g_p, "root_lin_vel_w": g_v}


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
