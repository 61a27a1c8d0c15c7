"""Mesh obstacles: triangle meshes (STL / OBJ / PLY, read with ``trimesh``) as scenario obstacles.

A scenario obstacle ``{"type": "mesh", "file": "chair.stl", "pos": [x, y] or [x, y, z], "yaw": 0, "scale": 1}``
places the mesh's own frame at ``pos`` (m; with two numbers the mesh rests on the floor: its lowest point at
z = 0), rotated by ``yaw`` (rad) about z, after scaling its vertices by ``scale`` (a number or three). Relative
file names are read from the scenario file's folder. This module is the one place that knows mesh geometry:

* :func:`load_mesh` reads and checks a file: unreadable, empty, non-finite, degenerate (no volume), huge
  (> :data:`MAX_FACES` faces or > :data:`MAX_EXTENT_M` m) or non-watertight meshes are refused with a
  :class:`MeshError` naming the file. A non-watertight mesh has no inside, so no signed distance; a scenario
  may ask for its convex hull instead (``"hull": true``).
* :class:`GridSDF`: the signed distance field of a mesh sampled on a regular grid (m; negative inside) — the exact
  distance to the nearest triangle (:func:`unsigned_distance`: KD-tree candidates with a bound that proves the
  nearest was among them, ``trimesh.proximity.closest_point`` for the rest), the sign from the parity of the
  surface crossings along grid lines — read back by trilinear interpolation with its analytic gradient (numpy).
  Built once per mesh, file content (sha256), scale and grid settings, cached under ``<cache>/mesh-sdf/``.
* :meth:`MeshGeometry.convex_pieces`: the convex pieces MuJoCo collides with (MuJoCo collides a mesh geom as its
  convex hull): the mesh itself when it is convex, else an approximate convex decomposition (``coacd``, cached
  like the SDF).
* :class:`PlacedMesh`: a mesh at a world pose: ``distance(points)``, ``value_and_grad(points)`` in world
  coordinates, and the yaw-aligned bounding box that stands in for it where only a box fits (the (M, 8)
  obstacle observation rows, the pure-pursuit law's ray casts).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from bm_envs.atomic import atomic_path

#: Largest mesh accepted (faces) and its largest extent (m) after scaling; smallest extent (m).
MAX_FACES = 200_000
MAX_EXTENT_M = 20.0
MIN_EXTENT_M = 0.01
#: Grid SDF defaults: spacing (m) and the margin (m) the grid extends beyond the mesh's bounding box.
SDF_RESOLUTION_M = 0.05
SDF_PADDING_M = 0.5
#: At most this many grid points (a guard against a tiny spacing on a big mesh).
MAX_GRID_POINTS = 4_000_000
MESH_SUFFIXES = (".stl", ".obj", ".ply")
#: Meshes with at most this many faces get their distances by brute force (all triangles per point).
BRUTE_FORCE_FACES = 256
#: coacd concavity threshold for the convex decomposition (smaller = more pieces).
DECOMPOSITION_THRESHOLD = 0.05
_CACHE_VERSION = 1


class MeshError(ValueError):
    """A mesh file cannot be used as an obstacle; the message names the file and the reason."""


def _cache_dir(kind: str) -> Path:
    from bm_envs.assets import cache_dir

    d = cache_dir() / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


def _save_npz(path: Path, **arrays) -> None:
    """Write ``arrays`` to ``path`` atomically (:func:`bm_envs.atomic.atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict | None:
    """The arrays of a cache file, or ``None`` when it is missing or unreadable (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in keys}
    except (OSError, KeyError, ValueError, EOFError):
        return None
    if not all(np.isfinite(v).all() for v in out.values() if v.dtype.kind == "f"):
        return None
    return out


def _as_scale(scale) -> np.ndarray:
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (3,)).copy()
    if not np.isfinite(s).all() or (s <= 0).any():
        raise MeshError(f"scale must be positive and finite, got {np.asarray(scale).tolist()}")
    return s


def load_mesh(path: str | Path, scale=1.0, hull: bool = False):
    """Read a mesh file and check it (see the module docstring). Returns a ``trimesh.Trimesh`` in metres
    (vertices × ``scale``), its convex hull when ``hull``. Raises :class:`MeshError`."""
    import trimesh

    p = Path(path)
    if p.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(f"{p}: unsupported mesh format {p.suffix!r}; use one of {MESH_SUFFIXES}")
    if not p.is_file():
        raise MeshError(f"{p}: mesh file not found")
    s = _as_scale(scale)
    try:
        m = trimesh.load(p, force="mesh", process=True)
    except Exception as e:  # trimesh raises many types for corrupt files
        raise MeshError(f"{p}: cannot read the mesh ({type(e).__name__}: {e})") from None
    if not isinstance(m, trimesh.Trimesh) or len(m.faces) == 0:
        raise MeshError(f"{p}: no triangles in the file")
    if len(m.faces) > MAX_FACES:
        raise MeshError(f"{p}: {len(m.faces)} faces, more than the {MAX_FACES} accepted (simplify it first)")
    if not np.isfinite(m.vertices).all():
        raise MeshError(f"{p}: vertices contain NaN or inf")
    m = m.copy()
    m.apply_scale(s) if np.allclose(s, s[0]) else m.apply_transform(np.diag([*s, 1.0]))
    ext = m.extents
    if ext.max() > MAX_EXTENT_M:
        raise MeshError(f"{p}: {ext.max():.1f} m across after scaling, more than {MAX_EXTENT_M} m (check the units)")
    if ext.min() < MIN_EXTENT_M:
        raise MeshError(f"{p}: degenerate mesh, {ext.min() * 1000:.1f} mm thick (a mesh obstacle needs a volume)")
    if hull:
        m = m.convex_hull
    elif not m.is_watertight:
        raise MeshError(f"{p}: the mesh is not watertight (it has open edges), so it has no inside and no signed "
                        f"distance; repair it, or set \"hull\": true to use its convex hull")  # fmt: skip
    if not m.is_winding_consistent or m.volume <= 0:
        m.fix_normals()
        if m.volume <= 1e-9:
            raise MeshError(f"{p}: degenerate mesh (volume {m.volume:.3g} m³)")
    return m


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------- grid SDF
def _point_triangle_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Exact distance (m) from points ``p`` (..., 3) to triangles ``a, b, c`` (..., 3) (broadcast): to the plane
    where the projection falls inside the triangle, else to the nearest of its three edges."""
    ab, ac = b - a, c - a
    n = np.cross(ab, ac)
    nn = np.maximum(np.sum(n * n, -1), 1e-30)
    ap = p - a
    h = np.sum(ap * n, -1) / nn  # signed height / |n|²
    q = p - h[..., None] * n  # projection onto the plane
    # barycentric coordinates of q
    aq = q - a
    w_b = np.sum(np.cross(aq, ac) * n, -1) / nn
    w_c = np.sum(np.cross(ab, aq) * n, -1) / nn
    inside = (w_b >= 0) & (w_c >= 0) & (w_b + w_c <= 1)
    d_plane = np.abs(h) * np.sqrt(nn)

    def seg(u, v):
        e = v - u
        t = np.clip(np.sum((p - u) * e, -1) / np.maximum(np.sum(e * e, -1), 1e-30), 0.0, 1.0)
        return np.linalg.norm(p - (u + t[..., None] * e), axis=-1)

    d_edge = np.minimum(np.minimum(seg(a, b), seg(b, c)), seg(c, a))
    return np.where(inside, d_plane, d_edge)


def unsigned_distance(mesh, points: np.ndarray, tol: float = 0.01, k: int = 16, chunk: int = 8192,
                      progress: bool = False) -> np.ndarray:  # fmt: skip
    """Distance (m) from ``points`` (P, 3) to the surface of ``mesh``, within ``tol`` m of the exact one (proved
    per point). Candidates are the ``k`` triangles with the nearest centroids (a KD-tree; triangles are
    subdivided first to edges ≤ ``tol``, so the bound below always holds), each measured exactly. A triangle outside them has its centroid at least the k-th centroid
    distance ``d_k`` away, so it is at least ``d_k − r`` away (``r``: the largest centroid-to-corner distance): the
    best candidate is then within ``best − (d_k − r)`` of the truth. Points where that bound exceeds ``tol`` are
    asked of ``trimesh.proximity.closest_point`` (exact)."""
    import trimesh
    from scipy.spatial import cKDTree

    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if len(f) <= BRUTE_FORCE_FACES:  # few faces: every triangle for every point (exact)
        tri = v[f]
        out = np.empty(len(points))
        step = max(1, 500_000 // len(f))  # ~0.5 M point-triangle pairs per batch
        for s in range(0, len(points), step):
            p = points[s : s + step, None]
            out[s : s + step] = _point_triangle_distance(p, tri[:, 0], tri[:, 1], tri[:, 2]).min(1)
        return out
    if np.linalg.norm(v[f] - v[np.roll(f, 1, axis=1)], axis=-1).max() > tol:  # then r <= 2/3 tol: no fallback
        v, f = trimesh.remesh.subdivide_to_size(v, f, max_edge=tol, max_iter=20)
    tri = v[f]  # (F, 3, 3)
    cen = tri.mean(1)
    r = float(np.linalg.norm(tri - cen[:, None], axis=-1).max())
    tree = cKDTree(cen)
    k = min(k, len(f))
    out = np.empty(len(points))
    unsettled = []
    it = range(0, len(points), chunk)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"mesh SDF ({len(mesh.faces)} faces, {len(points)} points)", unit="chunk", leave=False)
    for s in it:
        p = points[s : s + chunk]
        dk, ik = tree.query(p, k=k)
        dk, ik = dk.reshape(len(p), k), ik.reshape(len(p), k)
        t = tri[ik]  # (n, k, 3, 3)
        d = _point_triangle_distance(p[:, None], t[:, :, 0], t[:, :, 1], t[:, :, 2]).min(1)
        out[s : s + chunk] = d
        unsettled.append(s + np.nonzero(d - (dk[:, -1] - r) > tol)[0])
    bad = np.concatenate(unsettled)
    if len(bad):
        _, d, _ = trimesh.proximity.closest_point(mesh, points[bad])
        out[bad] = d
    return out


def _inside_by_parity(mesh, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Inside test of the grid points (nx, ny, nz) of a watertight mesh: count the surface crossings of the line
    parallel to x through each (y, z) grid line left of each point (odd = inside). The lines are shifted by a tiny
    irrational offset so that they miss edges and vertices."""
    tri = mesh.triangles  # (F, 3, 3)
    eps_y, eps_z = 1.234567e-7, 2.345678e-7
    ny, nz = len(ys), len(zs)
    h_y, h_z = ys[1] - ys[0], zs[1] - zs[0]
    y0, z0 = ys[0] + eps_y, zs[0] + eps_z
    lo = np.floor((tri[:, :, 1].min(1) - y0) / h_y).astype(int) + 1
    hi = np.floor((tri[:, :, 1].max(1) - y0) / h_y).astype(int)
    lo_z = np.floor((tri[:, :, 2].min(1) - z0) / h_z).astype(int) + 1
    hi_z = np.floor((tri[:, :, 2].max(1) - z0) / h_z).astype(int)
    lo, hi = np.clip(lo, 0, ny), np.clip(hi, -1, ny - 1)
    lo_z, hi_z = np.clip(lo_z, 0, nz), np.clip(hi_z, -1, nz - 1)
    cy, cz = np.maximum(hi - lo + 1, 0), np.maximum(hi_z - lo_z + 1, 0)
    n = cy * cz
    t = np.repeat(np.arange(len(tri)), n)  # candidate (triangle, line) pairs
    start = np.repeat(np.cumsum(n) - n, n)
    r = np.arange(n.sum()) - start
    j = lo[t] + r // np.maximum(cz[t], 1)
    k = lo_z[t] + r % np.maximum(cz[t], 1)
    py, pz = y0 + j * h_y, z0 + k * h_z
    a, b, c = tri[t, 0], tri[t, 1], tri[t, 2]
    # 2-D barycentric coordinates of (py, pz) in the triangle's (y, z) projection
    d = (b[:, 1] - a[:, 1]) * (c[:, 2] - a[:, 2]) - (c[:, 1] - a[:, 1]) * (b[:, 2] - a[:, 2])
    ok = np.abs(d) > 1e-18
    d = np.where(ok, d, 1.0)
    w1 = ((py - a[:, 1]) * (c[:, 2] - a[:, 2]) - (c[:, 1] - a[:, 1]) * (pz - a[:, 2])) / d
    w2 = ((b[:, 1] - a[:, 1]) * (pz - a[:, 2]) - (py - a[:, 1]) * (b[:, 2] - a[:, 2])) / d
    hit = ok & (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)
    x_hit = (a[:, 0] + w1 * (b[:, 0] - a[:, 0]) + w2 * (c[:, 0] - a[:, 0]))[hit]
    line = (j * nz + k)[hit]
    order = np.lexsort((x_hit, line))
    line, x_hit = line[order], x_hit[order]
    inside = np.zeros((len(xs), ny, nz), dtype=bool)
    bounds = np.searchsorted(line, np.arange(ny * nz + 1))
    for li in np.nonzero(np.diff(bounds))[0]:
        crossings = x_hit[bounds[li] : bounds[li + 1]]
        inside[:, li // nz, li % nz] = np.searchsorted(crossings, xs) % 2 == 1
    return inside


@dataclass
class GridSDF:
    """A signed distance field sampled on a regular grid: ``values`` (nx, ny, nz) m at the points
    ``origin + spacing · (i, j, k)``. Between grid points it is the trilinear interpolant; outside the grid, the
    value at the nearest grid point plus the distance to it (an upper bound that grows like the true distance)."""

    origin: np.ndarray  # (3,) m
    spacing: float  # m
    values: np.ndarray  # (nx, ny, nz) m

    @classmethod
    def build(cls, mesh, resolution: float = SDF_RESOLUTION_M, padding: float = SDF_PADDING_M,
              progress: bool = False) -> GridSDF:  # fmt: skip
        """Sample ``mesh`` (a watertight ``trimesh.Trimesh``) on a grid of ``resolution`` m covering its bounding
        box grown by ``padding`` m."""
        if not (resolution > 0 and math.isfinite(resolution)) or not (padding >= 0 and math.isfinite(padding)):
            raise ValueError(f"need resolution > 0 and padding >= 0, got {resolution=}, {padding=}")
        lo = mesh.bounds[0] - padding
        n = np.ceil((mesh.bounds[1] + padding - lo) / resolution).astype(int) + 1
        if int(np.prod(n)) > MAX_GRID_POINTS:
            raise ValueError(f"a {resolution} m grid over this mesh has {int(np.prod(n))} points, more than "
                             f"{MAX_GRID_POINTS}; use a coarser resolution")  # fmt: skip
        axes = [lo[i] + resolution * np.arange(n[i]) for i in range(3)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        dist = unsigned_distance(mesh, pts, tol=resolution / 5, progress=progress)
        inside = _inside_by_parity(mesh, *axes).reshape(-1)
        values = np.where(inside, -dist, dist).reshape(tuple(n))
        return cls(np.asarray(lo, dtype=np.float64), float(resolution), values.astype(np.float32))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.values.shape)

    @property
    def upper(self) -> np.ndarray:
        return self.origin + self.spacing * (np.array(self.shape) - 1)

    def value_and_grad(self, points) -> tuple[np.ndarray, np.ndarray]:
        """``(d (...,), ∂d/∂p (..., 3))`` at ``points`` (..., 3) in the grid's frame (m): the trilinear interpolant
        and its exact gradient (piecewise; at a cell face, the gradient of the cell the point rounds into)."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError("points contain NaN or inf")
        flat = p.reshape(-1, 3)
        c = np.clip(flat, self.origin, self.upper)
        u = (c - self.origin) / self.spacing
        n = np.array(self.shape)
        i0 = np.clip(np.floor(u).astype(int), 0, n - 2)
        f = u - i0
        v = self.values
        x, y, z = i0[:, 0], i0[:, 1], i0[:, 2]
        c000, c100 = v[x, y, z], v[x + 1, y, z]
        c010, c110 = v[x, y + 1, z], v[x + 1, y + 1, z]
        c001, c101 = v[x, y, z + 1], v[x + 1, y, z + 1]
        c011, c111 = v[x, y + 1, z + 1], v[x + 1, y + 1, z + 1]
        fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
        c00 = c000 + fx * (c100 - c000)
        c10 = c010 + fx * (c110 - c010)
        c01 = c001 + fx * (c101 - c001)
        c11 = c011 + fx * (c111 - c011)
        c0 = c00 + fy * (c10 - c00)
        c1 = c01 + fy * (c11 - c01)
        d = c0 + fz * (c1 - c0)
        gx = ((1 - fy) * (1 - fz) * (c100 - c000) + fy * (1 - fz) * (c110 - c010)
              + (1 - fy) * fz * (c101 - c001) + fy * fz * (c111 - c011))  # fmt: skip
        gy = (1 - fz) * (c10 - c00) + fz * (c11 - c01)
        gz = c1 - c0
        g = np.stack([gx, gy, gz], -1) / self.spacing
        off = flat - c
        r = np.linalg.norm(off, axis=-1)
        out = r > 0
        if out.any():  # outside the grid: d(c) + |p − c|, the clamped axes' gradient replaced by the radial one
            g[out] = np.where(off[out] != 0, 0.0, g[out]) + off[out] / r[out, None]
            d = d + r
        return d.reshape(p.shape[:-1]), g.reshape(p.shape)

    def __call__(self, points) -> np.ndarray:
        return self.value_and_grad(points)[0]

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)


# ---------------------------------------------------------------------- geometry + placement
@dataclass(eq=False)
class MeshGeometry:
    """A checked mesh in its own frame (m) with its cached grid SDF and convex pieces. Build with
    :meth:`from_file`. ``key`` identifies file content, scale and hull flag."""

    file: Path
    sha256: str
    scale: tuple[float, float, float]
    hull: bool
    vertices: np.ndarray  # (V, 3) m
    faces: np.ndarray  # (F, 3) vertex indices
    resolution: float = SDF_RESOLUTION_M
    padding: float = SDF_PADDING_M
    _sdf: GridSDF | None = field(default=None, repr=False)

    @classmethod
    def from_file(cls, path: str | Path, scale=1.0, hull: bool = False, sha256: str | None = None,
                  resolution: float = SDF_RESOLUTION_M, padding: float = SDF_PADDING_M) -> MeshGeometry:  # fmt: skip
        """Load and check ``path`` (see :func:`load_mesh`). ``sha256``: the content the caller expects (a mesh
        recorded in ``info["obstacles"]``); a file that changed since is refused."""
        p = Path(path).resolve()
        m = load_mesh(p, scale, hull)
        digest = file_sha256(p)
        if sha256 is not None and sha256 != digest:
            raise MeshError(f"{p}: the file changed (sha256 {digest[:12]}…, expected {sha256[:12]}…)")
        s = tuple(float(x) for x in _as_scale(scale))
        return cls(p, digest, s, bool(hull), np.asarray(m.vertices, dtype=np.float64),
                   np.asarray(m.faces, dtype=np.int64), float(resolution), float(padding))  # fmt: skip

    @property
    def key(self) -> str:
        h = hashlib.sha256(f"{self.sha256}|{self.scale}|{self.hull}|v{_CACHE_VERSION}".encode()).hexdigest()
        return h[:24]

    def trimesh(self):
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False)

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) lower and upper corner of the bounding box in the mesh's frame (m)."""
        return np.stack([self.vertices.min(0), self.vertices.max(0)])

    @property
    def sdf(self) -> GridSDF:
        """The grid SDF (built on first use, else read from the cache)."""
        if self._sdf is None:
            path = _cache_dir("mesh-sdf") / f"{self.key}-r{self.resolution:g}-p{self.padding:g}.npz"
            z = _load_npz(path, ("origin", "spacing", "values"))
            if z is not None and z["values"].ndim == 3:
                self._sdf = GridSDF(z["origin"], float(z["spacing"]), z["values"])
            else:
                self._sdf = GridSDF.build(self.trimesh(), self.resolution, self.padding, progress=True)
                _save_npz(path, origin=self._sdf.origin, spacing=np.float64(self._sdf.spacing),
                          values=self._sdf.values)  # fmt: skip
        return self._sdf

    @cached_property
    def convex_pieces(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(vertices (V, 3), faces (F, 3)), ...]``: the convex pieces MuJoCo collides with (cached)."""
        m = self.trimesh()
        if m.is_convex:
            return [(self.vertices, self.faces)]
        path = _cache_dir("mesh-convex") / f"{self.key}-t{DECOMPOSITION_THRESHOLD:g}.npz"
        z = _load_npz(path, ("vertices", "faces", "vsplit", "fsplit"))
        if z is None:
            import coacd

            coacd.set_log_level("error")
            parts = coacd.run_coacd(coacd.Mesh(self.vertices, self.faces), threshold=DECOMPOSITION_THRESHOLD,
                                    seed=0)  # fmt: skip
            if not parts:
                raise MeshError(f"{self.file}: the convex decomposition returned no pieces")
            z = {"vertices": np.concatenate([np.asarray(v) for v, _ in parts]),
                 "faces": np.concatenate([np.asarray(f) for _, f in parts]),
                 "vsplit": np.cumsum([len(v) for v, _ in parts])[:-1],
                 "fsplit": np.cumsum([len(f) for _, f in parts])[:-1]}  # fmt: skip
            _save_npz(path, **z)
        vs = np.split(z["vertices"].astype(np.float64), z["vsplit"])
        fs = np.split(z["faces"].astype(np.int64), z["fsplit"])
        return list(zip(vs, fs))


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(eq=False)
class PlacedMesh:
    """A :class:`MeshGeometry` at a world pose: its frame's origin at ``origin`` (3,) m, rotated by ``yaw`` rad."""

    geometry: MeshGeometry
    origin: np.ndarray
    yaw: float = 0.0

    @classmethod
    def on_floor(cls, geometry: MeshGeometry, xy, yaw: float = 0.0) -> PlacedMesh:
        """Placed at ``xy`` with its lowest point on the floor (z = 0)."""
        z = -float(geometry.bounds[0, 2])
        return cls(geometry, np.array([float(xy[0]), float(xy[1]), z]), float(yaw))

    @property
    def rotation(self) -> np.ndarray:
        return _rot_z(self.yaw)

    def to_local(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return (p - self.origin) @ self.rotation  # = R(yaw)ᵀ (p − origin), row vectors

    def value_and_grad(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance (m) at world ``points`` (..., 3) and its world-frame gradient (..., 3)."""
        d, g = self.geometry.sdf.value_and_grad(self.to_local(points))
        return d, g @ self.rotation.T

    def distance(self, points) -> np.ndarray:
        return self.value_and_grad(points)[0]

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """The yaw-aligned bounding box: (centre (3,) world m, half sizes (3,) m), rotated by :attr:`yaw`."""
        lo, hi = self.geometry.bounds
        centre = self.origin + self.rotation @ ((lo + hi) / 2)
        return centre, (hi - lo) / 2

    def column_distance(self, xy, z_lo: float, z_hi: float, step: float = 0.02) -> np.ndarray:
        """Distance (m) from vertical segments at ``xy`` (..., 2) spanning [z_lo, z_hi] to the mesh: the minimum
        of the field over heights every ``step`` m (negative where the segment passes through the mesh)."""
        xy = np.asarray(xy, dtype=np.float64)
        zs = np.linspace(z_lo, z_hi, max(2, int(math.ceil((z_hi - z_lo) / step)) + 1))
        pts = np.concatenate([np.broadcast_to(xy[..., None, :], xy.shape[:-1] + (len(zs), 2)),
                              np.broadcast_to(zs[:, None], xy.shape[:-1] + (len(zs), 1))], -1)  # fmt: skip
        return self.distance(pts).min(-1)

    def world_vertices(self, vertices: np.ndarray | None = None) -> np.ndarray:
        v = self.geometry.vertices if vertices is None else vertices
        return v @ self.rotation.T + self.origin


# ---------------------------------------------------------------------- example shapes (generated, not downloaded)
def make_l_wall(arm_m: float = 1.2, thickness_m: float = 0.2, height_m: float = 1.2):
    """A watertight, non-convex L-shaped wall: two ``arm_m`` × ``thickness_m`` arms meeting at the origin corner,
    ``height_m`` tall, standing on z = 0 (a ``trimesh.Trimesh``, 12 vertices, 20 faces)."""
    import trimesh

    a, t = float(arm_m), float(thickness_m)
    poly = np.array([(0, 0), (a, 0), (a, t), (t, t), (t, a), (0, a)], dtype=np.float64)  # CCW, star-shaped from 0
    n = len(poly)
    v = np.concatenate([np.c_[poly, np.zeros(n)], np.c_[poly, np.full(n, float(height_m))]])
    f = [[0, i + 1, i] for i in range(1, n - 1)] + [[n, n + i, n + i + 1] for i in range(1, n - 1)]
    for i in range(n):
        j = (i + 1) % n
        f += [[i, j, n + j], [i, n + j, n + i]]
    return trimesh.Trimesh(v, np.array(f), process=True)


def make_boulder(radius_m: float = 0.5, subdivisions: int = 4, roughness: float = 0.15, seed: int = 0):
    """A watertight, non-convex rock: an icosphere (``subdivisions`` 4 → 5 120 faces, 5 → 20 480) whose radius
    varies smoothly by ±``roughness`` (random low-order harmonics drawn with ``seed``), centred at the origin."""
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=int(subdivisions))
    u = s.vertices / np.linalg.norm(s.vertices, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    r = np.ones(len(u))
    for _ in range(4):
        k = rng.normal(size=3) * rng.uniform(1.5, 3.5)
        r += roughness / 2 * np.sin(u @ k + rng.uniform(0, 2 * np.pi))
    return trimesh.Trimesh(u * (radius_m * r)[:, None], s.faces, process=True)


#: Generated meshes a scenario can name instead of a file (``{"type": "mesh", "builtin": "boulder", "params": {...}}``,
#: like MuJoCo's ``<mesh builtin=...>``): name -> (the function that makes it, its parameters' allowed ranges).
BUILTIN_MESHES = {
    "l-wall": (make_l_wall, {"arm_m": (0.05, 10.0), "thickness_m": (0.01, 2.0), "height_m": (0.01, 5.0)}),
    "boulder": (
        make_boulder,
        {"radius_m": (0.01, 5.0), "subdivisions": (0, 5), "roughness": (0.0, 0.9), "seed": (0, 2**31 - 1)},
    ),
}


def builtin_mesh_file(name: str, params: dict | None = None) -> Path:
    """Path of the built-in mesh ``name`` made with ``params`` (binary STL in the cache, written once, atomically, and
    keyed by name and parameters). Raises :class:`MeshError` for an unknown name or parameter, a value that is not a
    finite number, out of its range, or not an integer where the maker takes one (``subdivisions``, ``seed``)."""
    import inspect
    import json

    if name not in BUILTIN_MESHES:
        raise MeshError(f"builtin mesh {name!r} is not one of {sorted(BUILTIN_MESHES)}")
    make, ranges = BUILTIN_MESHES[name]
    params = dict(params or {})
    for k, v in params.items():
        if k not in ranges:
            raise MeshError(f"builtin mesh {name!r}: unknown parameter {k!r} (one of {sorted(ranges)})")
        lo, hi = ranges[k]
        is_int = isinstance(inspect.signature(make).parameters[k].default, int)
        ok = isinstance(v, int) if is_int else isinstance(v, (int, float)) and math.isfinite(v)
        if isinstance(v, bool) or not ok or not lo <= v <= hi:
            kind = "an integer" if is_int else "a number"
            raise MeshError(f"builtin mesh {name!r}: {k} must be {kind} in [{lo}, {hi}], got {v!r}")
    key = hashlib.sha256(json.dumps([name, params, _CACHE_VERSION], sort_keys=True).encode()).hexdigest()[:16]
    path = _cache_dir("mesh-builtin") / f"{name}-{key}.stl"
    if not path.exists():
        with atomic_path(path) as tmp:
            make(**params).export(tmp, file_type="stl")
    return path
