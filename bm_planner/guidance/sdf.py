"""Signed distance field over primitive obstacles, exact per primitive, batched and differentiable (torch).

Primitives (world frame, metres): spheres; boxes rotated by a yaw angle about z; vertical cylinders (axis z).
The field is the minimum of the primitives' exact signed distances: negative inside an obstacle, zero on its
surface, positive outside. (The minimum of exact SDFs is exact outside the union and a lower bound of the
depth inside it, which is all the obstacle cost needs.)

Row layout (the obstacle env's ``obs["obstacles"]``, (M, 8)):
``[type (0 none, 1 sphere, 2 box, 3 cylinder, 4 mesh), x, y, z, s0, s1, s2, yaw]`` with sizes sphere (r, ·, ·),
box (hx, hy, hz), cylinder (r, half_height, ·), mesh: its yaw-aligned bounding box (hx, hy, hz).

Meshes: a row cannot hold a mesh, so a mesh row is its bounding box unless the field is given the mesh itself
(``meshes=``, or :meth:`SignedDistanceField.from_obstacles` on the env's ``info["obstacles"]``): then its distance
is the mesh's grid SDF (:class:`bm_envs.scene.mesh_obstacles.GridSDF`, trilinear, numpy on the host) with its analytic
gradient passed to autograd.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from bm_envs.scene.scenario import OBSTACLE_TYPE_IDS

SPHERE, BOX, CYLINDER, MESH = (OBSTACLE_TYPE_IDS[k] for k in ("sphere", "box", "cylinder", "mesh"))
_PLACED: dict[tuple, object] = {}  # meshes rebuilt from info dicts, by (sha256, scale, hull, origin, yaw)
_EPS = 1e-12


def _norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean norm with a finite gradient at 0."""
    return torch.sqrt(torch.sum(x * x, dim=dim) + _EPS)


def sdf_sphere(p: torch.Tensor, center: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Signed distance of points ``p`` (..., 3) to spheres (M, 3), (M,) → (..., M)."""
    return _norm(p[..., None, :] - center, -1) - radius


def _to_local(p: torch.Tensor, center: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    d = p[..., None, :] - center  # (..., M, 3)
    c, s = torch.cos(yaw), torch.sin(yaw)
    x = c * d[..., 0] + s * d[..., 1]
    y = -s * d[..., 0] + c * d[..., 1]
    return torch.stack([x, y, d[..., 2]], dim=-1)


def sdf_box(p: torch.Tensor, center: torch.Tensor, half: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Signed distance of points (..., 3) to yaw-rotated boxes: centres (M, 3), half sizes (M, 3), yaw (M,)."""
    q = _to_local(p, center, yaw).abs() - half
    outside = _norm(torch.clamp(q, min=0.0), -1) * (q.max(dim=-1).values > 0)
    inside = torch.clamp(q.max(dim=-1).values, max=0.0)
    return outside + inside


def sdf_cylinder(p: torch.Tensor, center: torch.Tensor, radius: torch.Tensor, half_h: torch.Tensor) -> torch.Tensor:
    """Signed distance of points (..., 3) to vertical cylinders: centres (M, 3), radii (M,), half heights (M,)."""
    loc = p[..., None, :] - center
    dr = _norm(loc[..., :2], -1) - radius
    dz = loc[..., 2].abs() - half_h
    q = torch.stack([dr, dz], dim=-1)
    outside = _norm(torch.clamp(q, min=0.0), -1) * (q.max(dim=-1).values > 0)
    inside = torch.clamp(q.max(dim=-1).values, max=0.0)
    return outside + inside


class _MeshDistance(torch.autograd.Function):
    """Distance to a :class:`bm_envs.scene.mesh_obstacles.PlacedMesh` (numpy) with its analytic gradient."""

    @staticmethod
    def forward(ctx, points, mesh):
        d, g = mesh.value_and_grad(points.detach().cpu().double().numpy())
        ctx.save_for_backward(torch.from_numpy(g).to(points))
        return torch.from_numpy(np.asarray(d)).to(points)

    @staticmethod
    def backward(ctx, grad_out):
        (g,) = ctx.saved_tensors
        return grad_out[..., None] * g, None


def placed_mesh(d: dict):
    """The :class:`~bm_envs.scene.mesh_obstacles.PlacedMesh` of a mesh obstacle dict (``Obstacle.to_dict()``), re-read
    from its file once per process (its sha256 checked) and then reused."""
    from bm_envs.scene.scenario import obstacle_from_dict

    key = (d.get("sha256"), tuple(d.get("scale", (1.0,))), bool(d.get("hull", False)), tuple(d["origin"]),
           float(d.get("yaw", 0.0)))  # fmt: skip
    if key not in _PLACED:
        _PLACED[key] = obstacle_from_dict(d).mesh
    return _PLACED[key]


class SignedDistanceField:
    """Union of primitives and meshes. ``sdf(points (..., 3)) -> (...,)`` metres; empty field → +``far``.

    ``meshes``: one :class:`~bm_envs.scene.mesh_obstacles.PlacedMesh` per mesh row (type 4), in row order; without them
    the mesh rows are their bounding boxes (a warning says so)."""

    def __init__(self, rows, far: float = 10.0, dtype=torch.float32, device=None, meshes=None):
        r = torch.as_tensor(rows, dtype=dtype, device=device)
        if r.ndim != 2 or r.shape[1] != 8:
            raise ValueError(f"obstacle rows must have shape (M, 8), got {tuple(r.shape)}")
        if not torch.isfinite(r).all():
            raise ValueError("obstacle rows contain NaN or inf")
        kinds = r[:, 0].round()
        if not torch.isin(kinds, torch.tensor([0.0, SPHERE, BOX, CYLINDER, MESH], dtype=dtype, device=r.device)).all():
            raise ValueError(f"obstacle type must be 0 (none), 1 sphere, 2 box, 3 cylinder or 4 mesh, got "
                             f"{kinds.tolist()}")  # fmt: skip
        r = r[kinds > 0]
        kinds = kinds[kinds > 0]
        n_mesh = int((kinds == MESH).sum())
        self.meshes = list(meshes) if meshes is not None else []
        if meshes is not None and len(self.meshes) != n_mesh:
            raise ValueError(f"{n_mesh} mesh rows but {len(self.meshes)} meshes given")
        if n_mesh and meshes is None:
            warnings.warn(f"{n_mesh} mesh obstacle(s) without their meshes: using their bounding boxes", stacklevel=2)
            r = r.clone()
            r[kinds == MESH, 0] = BOX
            kinds = r[:, 0].round()
        sizes = r[:, 4:7]
        need = torch.where((kinds == BOX) | (kinds == MESH), 3, torch.where(kinds == CYLINDER, 2, 1))
        for i in range(len(r)):
            if (sizes[i, : int(need[i])] <= 0).any():
                raise ValueError(f"obstacle {i}: sizes must be positive, got {sizes[i].tolist()}")
        self.far = far
        self.spheres = r[kinds == SPHERE]
        self.boxes = r[kinds == BOX]
        self.cylinders = r[kinds == CYLINDER]
        self.rows = r

    @classmethod
    def from_obstacles(cls, obstacles, **kw) -> SignedDistanceField:
        """From :class:`bm_envs.scene.scenario.Obstacle` objects or their ``to_dict()`` form (``info["obstacles"]``)."""
        ids = OBSTACLE_TYPE_IDS
        rows, meshes = [], []
        for o in obstacles:
            d = o if isinstance(o, dict) else o.to_dict()
            size = list(d["size"]) + [0.0] * (3 - len(d["size"]))
            rows.append([ids[d["type"]], *d["pos"], *size, d.get("yaw", 0.0)])
            if d["type"] == "mesh":
                meshes.append(o.mesh if not isinstance(o, dict) and o.mesh is not None else placed_mesh(d))
        return cls(rows if rows else torch.zeros(0, 8), meshes=meshes, **kw)

    def __len__(self) -> int:
        return len(self.rows)

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        if points.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3), got {tuple(points.shape)}")
        d = [torch.full(points.shape[:-1] + (1,), self.far, dtype=points.dtype, device=points.device)]
        if len(self.spheres):
            s = self.spheres.to(points)
            d.append(sdf_sphere(points, s[:, 1:4], s[:, 4]))
        if len(self.boxes):
            b = self.boxes.to(points)
            d.append(sdf_box(points, b[:, 1:4], b[:, 4:7], b[:, 7]))
        if len(self.cylinders):
            c = self.cylinders.to(points)
            d.append(sdf_cylinder(points, c[:, 1:4], c[:, 4], c[:, 5]))
        for m in self.meshes:
            d.append(_MeshDistance.apply(points, m)[..., None])
        return torch.cat(d, dim=-1).min(dim=-1).values


class MovingSpheres:
    """Signed distance to spheres that move over the planned horizon (other robots' bodies, people, ...).

    ``centers`` (B, H, M, 3) or (H, M, 3) world positions (m) of M spheres at each of the H planned steps (B = 1 or
    the batch size; H = 1 holds them still), ``radii`` (M,) m. ``field(points (B, H, K, 3)) -> (B, H, K)`` is, per
    point, the minimum over the spheres *at the same step* of ``‖p − c‖ − r``; ``+far`` without spheres. It is
    differentiable in the points (the centres are constants of the plan being guided) and plugs into
    :class:`~bm_planner.guidance.costs.ObstacleAvoidanceCost` like a :class:`SignedDistanceField`
    (see :class:`~bm_planner.guidance.costs.MovingObstacleCost`).
    """

    def __init__(self, centers, radii, far: float = 10.0, dtype=torch.float32, device=None):
        c = torch.as_tensor(centers, dtype=dtype, device=device)
        if c.ndim == 3:
            c = c[None]
        if c.ndim != 4 or c.shape[-1] != 3:
            raise ValueError(f"centers must have shape (B, H, M, 3) or (H, M, 3), got {tuple(c.shape)}")
        r = torch.as_tensor(radii, dtype=dtype, device=c.device).reshape(-1)
        if r.shape != (c.shape[2],):
            raise ValueError(f"radii must have shape ({c.shape[2]},) for {c.shape[2]} spheres, got {tuple(r.shape)}")
        if not (torch.isfinite(c).all() and torch.isfinite(r).all()) or (r < 0).any():
            raise ValueError("centers and radii must be finite and radii >= 0")
        self.centers, self.radii, self.far = c, r, far

    def __len__(self) -> int:
        return self.centers.shape[2]

    @property
    def horizon(self) -> int:
        return self.centers.shape[1]

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        if points.ndim != 4 or points.shape[-1] != 3:
            raise ValueError(f"points must have shape (B, H, K, 3), got {tuple(points.shape)}")
        B, H = points.shape[:2]
        cb, ch = self.centers.shape[:2]
        if cb not in (1, B) or ch not in (1, H):
            raise ValueError(f"sphere centers {tuple(self.centers.shape)} do not match points {tuple(points.shape)}: "
                             f"need batch 1 or {B} and horizon 1 or {H}")  # fmt: skip
        if len(self) == 0:
            return torch.full(points.shape[:-1], self.far, dtype=points.dtype, device=points.device)
        c = self.centers.to(points)
        d = _norm(points[:, :, :, None, :] - c[:, :, None, :, :], -1) - self.radii.to(points)  # (B, H, K, M)
        return torch.clamp(d.min(dim=-1).values, max=self.far)
