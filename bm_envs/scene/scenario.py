"""Scenario files: one evaluation episode family (env, start, goals, obstacles, joystick schedule, pushes, success).

A scenario is a JSON object (distances m, angles rad, times s)::

    {
      "name": "forest-small",                       required, free text
      "env": "BM-G1-Obstacle-v0",                   required: BM-G1-Joystick-v0 | BM-G1-Waypoint-v0 | BM-G1-Obstacle-v0
      "time_limit_s": 30.0,                         required
      "start": {"xy": [0, 0], "yaw": 0, "xy_noise": 0.1, "yaw_noise": 0.2},   uniform noise per reset
      "waypoints": [[6.0, 0.0]],                    Waypoint/Obstacle: visited in order
      "goal_radius_m": 0.3,                         reached = root xy within this radius
      "obstacles": [                                Obstacle env; static, colliding with the robot
        {"type": "cylinder", "pos": [2.0, 0.3], "radius": 0.25, "height": 1.5},
        {"type": "box", "pos": [3.5, -0.5], "half_size": [0.3, 0.2, 0.5], "yaw": 0.4},
        {"type": "sphere", "pos": [4.5, 0.6, 0.9], "radius": 0.3},
        {"type": "mesh", "file": "chair.stl", "pos": [2, 1], "yaw": 0, "scale": 1.0},
        {"type": "mesh", "builtin": "l-wall", "params": {"arm_m": 1.2}, "pos": [4, -1]}],
                                                    mesh: a file (STL/OBJ/PLY, relative to the scenario's folder;
                                                    "hull": true for its convex hull) or a generated shape
                                                    (``BUILTIN_MESHES``): :mod:`bm_envs.scene.mesh_obstacles`
      "random_obstacles": {"count": 4, "region": [[1, -2], [5, 2]], "types": ["cylinder", "box"],
                           "radius": [0.15, 0.35]},  drawn per reset, kept clear of the start and goals
      "joystick": [{"t": 0.0, "vx": 0.5, "vy": 0.0, "yaw_rate": 0.0}],   Joystick: piecewise-constant commands
      "pushes": {"interval_s": [1.0, 1.0], "lin_vel_mps": [0.0, 0.5]},   optional: planar pushes, random direction
      "success": {"criterion": "segments"}           Joystick: "segments" (default; tolerances as keys, see
    }                                                :mod:`bm_envs.envs.joystick`), "no_fall" or "vel_error" (+ max_vel_error)

Unknown keys, wrong types and impossible values are rejected with a :class:`ScenarioError` naming the key. The
start pose and the goals are checked against each obstacle by exact distance (:meth:`Obstacle.column_distance`):
a start closer than 0.25 m to an obstacle, or a goal inside one, is refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bm_envs.scene.mesh_obstacles import MeshError, MeshGeometry, PlacedMesh, builtin_mesh_file

ENV_IDS = ("BM-G1-Joystick-v0", "BM-G1-Waypoint-v0", "BM-G1-Obstacle-v0")
#: Primitive obstacle types (also what ``random_obstacles`` draws); ``"mesh"`` obstacles are listed explicitly.
OBSTACLE_TYPES = ("sphere", "box", "cylinder")
#: Type id of each obstacle type in the (M, 8) obstacle observation rows (0 = an unused row).
OBSTACLE_TYPE_IDS = {"sphere": 1, "box": 2, "cylinder": 3, "mesh": 4}
#: Joystick success criteria (``success.criterion``; :mod:`bm_envs.envs.joystick`) and the numbers they take (upper bounds).
SUCCESS_CRITERIA = ("segments", "no_fall", "vel_error")
SUCCESS_NUMBERS = {"max_vel_error": 100.0, "settle_s": 60.0, "planar_tol": 100.0, "yaw_tol": 100.0,
                   "planar_floor": 10.0, "yaw_floor": 10.0, "min_scored_s": 60.0, "parts": 10}  # fmt: skip
#: Height (m) of the vertical column a standing G1 occupies, and its radius, for the start-pose collision check.
COLUMN_HEIGHT_M = 1.35
ROBOT_RADIUS_M = 0.25
#: Clearance kept free around the start pose and each goal when placing obstacles (m).
START_CLEARANCE_M = 0.5


class ScenarioError(ValueError):
    """A scenario file or dict is malformed; the message names the offending key."""


@dataclass(frozen=True)
class Obstacle:
    """A static obstacle. ``pos`` is the world centre (x, y, z) in m; ``size`` depends on ``type``:
    sphere (radius,), cylinder (radius, half_height), box (hx, hy, hz). ``yaw`` rotates boxes about z.
    A ``"mesh"`` obstacle carries its :class:`~bm_envs.scene.mesh_obstacles.PlacedMesh` in ``mesh``; its ``pos``,
    ``size`` and ``yaw`` are its yaw-aligned bounding box (what stands in for it where only a box fits)."""

    type: str
    pos: tuple[float, float, float]
    size: tuple[float, ...]
    yaw: float = 0.0
    mesh: PlacedMesh | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_mesh(cls, mesh: PlacedMesh) -> Obstacle:
        centre, half = mesh.box()
        return cls("mesh", tuple(float(x) for x in centre), tuple(float(x) for x in half), float(mesh.yaw), mesh)

    def row(self) -> np.ndarray:
        """This obstacle as a row of the (M, 8) obstacle observation: ``[type id, x, y, z, s0, s1, s2, yaw]``."""
        r = np.zeros(8)
        r[0] = OBSTACLE_TYPE_IDS[self.type]
        r[1:4] = self.pos
        r[4 : 4 + len(self.size)] = self.size
        r[7] = self.yaw
        return r

    @property
    def radius_xy(self) -> float:
        """Radius of a vertical cylinder bounding the obstacle's footprint (m)."""
        if self.type in ("box", "mesh"):
            return float(math.hypot(self.size[0], self.size[1]))
        return float(self.size[0])

    @property
    def z_range(self) -> tuple[float, float]:
        """(bottom, top) height of the obstacle (m)."""
        h = self.size[0] if self.type == "sphere" else self.size[-1] if self.type == "box" else self.size[1]
        return self.pos[2] - h, self.pos[2] + h

    def footprint_distance(self, xy) -> np.ndarray:
        """Exact signed distance (m) from points ``xy`` (..., 2) to the obstacle's footprint on the floor plane
        (a disk for spheres and cylinders, a yaw-rotated rectangle for boxes and for a mesh's bounding box):
        negative inside."""
        d = np.asarray(xy, dtype=np.float64) - np.asarray(self.pos[:2])
        if self.type not in ("box", "mesh"):
            return np.linalg.norm(d, axis=-1) - self.size[0]
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        q = np.abs(np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], -1)) - self.size[:2]
        return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0)

    def column_distance(self, xy, z_lo: float = 0.0, z_hi: float = COLUMN_HEIGHT_M) -> np.ndarray:
        """Exact distance (m) from vertical segments at ``xy`` (..., 2) spanning heights [z_lo, z_hi] (a standing
        robot's column) to the obstacle; negative (the footprint depth) where the column passes through it.
        Boxes and cylinders are a footprint × a height interval, so the distance separates into
        sqrt(d_xy² + d_z²); for a sphere it is the distance to the nearest point of the segment minus the radius;
        for a mesh, the minimum of its signed distance field along the segment (every 2 cm)."""
        xy = np.asarray(xy, dtype=np.float64)
        if self.mesh is not None:
            return self.mesh.column_distance(xy, z_lo, z_hi)
        if self.type == "sphere":
            z = min(max(self.pos[2], z_lo), z_hi)
            d = np.linalg.norm(xy - np.asarray(self.pos[:2]), axis=-1)
            return np.sqrt(d * d + (z - self.pos[2]) ** 2) - self.size[0]
        lo, hi = self.z_range
        gap = max(lo - z_hi, z_lo - hi, 0.0)
        dxy = self.footprint_distance(xy)
        if gap == 0.0:
            return dxy
        return np.sqrt(np.maximum(dxy, 0.0) ** 2 + gap * gap)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a mesh adds ``file`` (absolute), ``sha256``, ``scale``, ``hull`` and ``origin`` (its frame's
        world position), enough to rebuild it (:func:`obstacle_from_dict`)."""
        d: dict[str, Any] = {"type": self.type, "pos": list(self.pos), "size": list(self.size), "yaw": self.yaw}
        if self.mesh is not None:
            g = self.mesh.geometry
            d.update(file=str(g.file), sha256=g.sha256, scale=list(g.scale), hull=g.hull,
                     origin=[float(x) for x in self.mesh.origin])  # fmt: skip
        return d


def obstacle_from_dict(d: dict) -> Obstacle:
    """Inverse of :meth:`Obstacle.to_dict` (a mesh is re-read from its file and must have the recorded sha256)."""
    if d.get("type") == "mesh":
        g = MeshGeometry.from_file(d["file"], d.get("scale", 1.0), bool(d.get("hull", False)), d.get("sha256"))
        return Obstacle.from_mesh(PlacedMesh(g, np.asarray(d["origin"], dtype=np.float64), float(d.get("yaw", 0.0))))
    return Obstacle(d["type"], tuple(d["pos"]), tuple(d["size"]), float(d.get("yaw", 0.0)))


@dataclass(frozen=True)
class JoystickSegment:
    t: float
    vx: float
    vy: float
    yaw_rate: float


@dataclass(frozen=True)
class Scenario:
    name: str
    env: str
    time_limit_s: float
    start_xy: tuple[float, float] = (0.0, 0.0)
    start_yaw: float = 0.0
    start_xy_noise: float = 0.0
    start_yaw_noise: float = 0.0
    waypoints: tuple[tuple[float, float], ...] = ()
    goal_radius_m: float = 0.3
    obstacles: tuple[Obstacle, ...] = ()
    random_obstacles: dict[str, Any] | None = None
    joystick: tuple[JoystickSegment, ...] = ()
    push_interval_s: tuple[float, float] | None = None
    push_lin_vel_mps: tuple[float, float] | None = None
    success: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ sampling
    def sample_obstacles(self, rng: np.random.Generator, start_xy: np.ndarray) -> list[Obstacle]:
        """Fixed obstacles plus ``random_obstacles`` drawn with ``rng`` (kept clear of start and goals)."""
        obs = list(self.obstacles)
        spec = self.random_obstacles
        if not spec or spec.get("count", 0) == 0:
            return obs
        (x0, y0), (x1, y1) = spec["region"]
        rlo, rhi = spec.get("radius", [0.15, 0.3])
        keep_clear = [np.asarray(start_xy)] + [np.asarray(w) for w in self.waypoints]
        for _ in range(int(spec["count"])):
            for _attempt in range(100):
                kind = str(rng.choice(spec.get("types", ["cylinder"])))
                r = float(rng.uniform(rlo, rhi))
                xy = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
                if kind == "cylinder":
                    cand = Obstacle("cylinder", (xy[0], xy[1], 0.75), (r, 0.75))
                elif kind == "box":
                    h = r / math.sqrt(2)
                    cand = Obstacle("box", (xy[0], xy[1], 0.5), (h, h, 0.5), float(rng.uniform(-np.pi, np.pi)))
                else:
                    cand = Obstacle("sphere", (xy[0], xy[1], r), (r,))
                if all(np.linalg.norm(xy - p) > cand.radius_xy + START_CLEARANCE_M for p in keep_clear):
                    obs.append(cand)
                    break
        return obs

    def command_at(self, t: float) -> np.ndarray:
        """Joystick command (vx m/s, vy m/s, yaw_rate rad/s) in force at time ``t`` (s)."""
        cmd = np.zeros(3)
        for seg in self.joystick:
            if seg.t <= t + 1e-9:
                cmd = np.array([seg.vx, seg.vy, seg.yaw_rate])
        return cmd


# ---------------------------------------------------------------------- parsing
def _require(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise ScenarioError(f"{where}: missing required key {key!r}")
    return d[key]


def _check_keys(d: Any, allowed: set[str], where: str) -> None:
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: expected an object, got {type(d).__name__}")
    unknown = set(d) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _num(v: Any, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ScenarioError(f"{where}: expected a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f) or not (lo <= f <= hi):
        raise ScenarioError(f"{where}: {v!r} is out of range [{lo}, {hi}]")
    return f


def _vec(v: Any, n: int, where: str, lo: float = -math.inf) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise ScenarioError(f"{where}: expected a list of {n} numbers, got {v!r}")
    return tuple(_num(x, f"{where}[{i}]", lo) for i, x in enumerate(v))


def _range(v: Any, where: str, lo: float = 0.0) -> tuple[float, float]:
    a, b = _vec(v, 2, where, lo)
    if a > b:
        raise ScenarioError(f"{where}: lower bound {a} exceeds upper bound {b}")
    return a, b


def _parse_mesh(o: dict, where: str, base_dir: Path | None) -> Obstacle:
    _check_keys(o, {"type", "file", "builtin", "params", "pos", "yaw", "scale", "hull"}, where)
    if ("file" in o) == ("builtin" in o):
        raise ScenarioError(f"{where}: a mesh obstacle needs exactly one of 'file' and 'builtin'")
    if "builtin" in o:
        params = o.get("params", {})
        if not isinstance(params, dict):
            raise ScenarioError(f"{where}.params: expected an object of numbers, got {params!r}")
        try:
            path = builtin_mesh_file(o["builtin"], params) if isinstance(o["builtin"], str) else None
        except MeshError as e:
            raise ScenarioError(f"{where}.builtin: {e}") from None
        if path is None:
            raise ScenarioError(f"{where}.builtin: expected a name, got {o['builtin']!r}")
    else:
        if "params" in o:
            raise ScenarioError(f"{where}.params: only a 'builtin' mesh takes params")
        f = o["file"]
        if not isinstance(f, str) or not f:
            raise ScenarioError(f"{where}.file: expected a file name, got {f!r}")
        path = Path(f) if Path(f).is_absolute() or base_dir is None else Path(base_dir) / f
    scale = o.get("scale", 1.0)
    scale = (
        _num(scale, f"{where}.scale", 1e-6)
        if not isinstance(scale, (list, tuple))
        else _vec(scale, 3, f"{where}.scale", 1e-6)
    )
    hull = o.get("hull", False)
    if not isinstance(hull, bool):
        raise ScenarioError(f"{where}.hull: expected true or false, got {hull!r}")
    yaw = _num(o.get("yaw", 0.0), f"{where}.yaw")
    try:
        geom = MeshGeometry.from_file(path, scale, hull)
    except MeshError as e:
        raise ScenarioError(f"{where}.file: {e}") from None
    pos = o.get("pos")
    if isinstance(pos, (list, tuple)) and len(pos) == 3:
        placed = PlacedMesh(geom, np.array(_vec(pos, 3, f"{where}.pos")), yaw)
    else:
        placed = PlacedMesh.on_floor(geom, _vec(pos, 2, f"{where}.pos"), yaw)
    return Obstacle.from_mesh(placed)


def _parse_obstacle(o: Any, where: str, base_dir: Path | None = None) -> Obstacle:
    if isinstance(o, dict) and o.get("type") == "mesh":
        return _parse_mesh(o, where, base_dir)
    _check_keys(o, {"type", "pos", "radius", "height", "half_size", "yaw"}, where)
    kind = _require(o, "type", where)
    if kind not in OBSTACLE_TYPES:
        raise ScenarioError(f"{where}.type: {kind!r} is not one of {(*OBSTACLE_TYPES, 'mesh')}")
    pos = o.get("pos")
    yaw = _num(o.get("yaw", 0.0), f"{where}.yaw")
    if kind == "sphere":
        r = _num(_require(o, "radius", where), f"{where}.radius", 1e-3)
        xyz = isinstance(pos, (list, tuple)) and len(pos) == 3
        p = _vec(pos, 3, f"{where}.pos") if xyz else (*_vec(pos, 2, f"{where}.pos"), r)
        return Obstacle("sphere", p, (r,), yaw)
    if kind == "cylinder":
        r = _num(_require(o, "radius", where), f"{where}.radius", 1e-3)
        h = _num(o.get("height", 1.5), f"{where}.height", 1e-3)
        x, y = _vec(pos, 2, f"{where}.pos")
        return Obstacle("cylinder", (x, y, h / 2), (r, h / 2), yaw)
    hs = _vec(_require(o, "half_size", where), 3, f"{where}.half_size", 1e-3)
    x, y = _vec(pos, 2, f"{where}.pos")
    return Obstacle("box", (x, y, hs[2]), hs, yaw)


def parse_scenario(d: Any, source: str = "scenario", base_dir: str | Path | None = None) -> Scenario:
    """Validate a scenario dict (as loaded from JSON) and return a :class:`Scenario`. ``base_dir``: the folder
    relative mesh file names are read from (the scenario file's; default the working directory)."""
    allowed = {
        "name", "env", "time_limit_s", "start", "waypoints", "goal_radius_m", "obstacles",
        "random_obstacles", "joystick", "pushes", "success",
    }  # fmt: skip
    _check_keys(d, allowed, source)
    name = _require(d, "name", source)
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{source}.name: expected a non-empty string, got {name!r}")
    env = _require(d, "env", source)
    if env not in ENV_IDS:
        raise ScenarioError(f"{source}.env: {env!r} is not one of {ENV_IDS}")
    kw: dict[str, Any] = {"name": name, "env": env}
    kw["time_limit_s"] = _num(_require(d, "time_limit_s", source), f"{source}.time_limit_s", 0.02, 3600.0)

    start = d.get("start", {})
    _check_keys(start, {"xy", "yaw", "xy_noise", "yaw_noise"}, f"{source}.start")
    kw["start_xy"] = _vec(start.get("xy", [0.0, 0.0]), 2, f"{source}.start.xy")
    kw["start_yaw"] = _num(start.get("yaw", 0.0), f"{source}.start.yaw")
    kw["start_xy_noise"] = _num(start.get("xy_noise", 0.0), f"{source}.start.xy_noise", 0.0, 10.0)
    kw["start_yaw_noise"] = _num(start.get("yaw_noise", 0.0), f"{source}.start.yaw_noise", 0.0, math.pi)

    wps = d.get("waypoints", [])
    if not isinstance(wps, list):
        raise ScenarioError(f"{source}.waypoints: expected a list of [x, y]")
    kw["waypoints"] = tuple(_vec(w, 2, f"{source}.waypoints[{i}]") for i, w in enumerate(wps))
    kw["goal_radius_m"] = _num(d.get("goal_radius_m", 0.3), f"{source}.goal_radius_m", 0.01, 100.0)
    if env in ("BM-G1-Waypoint-v0", "BM-G1-Obstacle-v0") and not kw["waypoints"]:
        raise ScenarioError(f"{source}.waypoints: {env} needs at least one waypoint")

    obstacles = d.get("obstacles", [])
    if not isinstance(obstacles, list):
        raise ScenarioError(f"{source}.obstacles: expected a list")
    kw["obstacles"] = tuple(_parse_obstacle(o, f"{source}.obstacles[{i}]", base_dir) for i, o in enumerate(obstacles))

    ro = d.get("random_obstacles")
    if ro is not None:
        w = f"{source}.random_obstacles"
        _check_keys(ro, {"count", "region", "types", "radius"}, w)
        count = ro.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 64:
            raise ScenarioError(f"{w}.count: expected an integer in [0, 64], got {count!r}")
        region = ro.get("region", [[0, 0], [0, 0]])
        if not isinstance(region, list) or len(region) != 2:
            raise ScenarioError(f"{w}.region: expected [[x0, y0], [x1, y1]]")
        (x0, y0), (x1, y1) = _vec(region[0], 2, f"{w}.region[0]"), _vec(region[1], 2, f"{w}.region[1]")
        if x0 > x1 or y0 > y1:
            raise ScenarioError(f"{w}.region: first corner must be the lower-left one")
        types = ro.get("types", ["cylinder"])
        if not isinstance(types, list) or not types or any(t not in OBSTACLE_TYPES for t in types):
            raise ScenarioError(f"{w}.types: expected a non-empty list from {OBSTACLE_TYPES}, got {types!r}")
        radius = _range(ro.get("radius", [0.15, 0.3]), f"{w}.radius", 1e-3)
        kw["random_obstacles"] = {"count": count, "region": [[x0, y0], [x1, y1]], "types": types, "radius": radius}

    js = d.get("joystick", [])
    if not isinstance(js, list):
        raise ScenarioError(f"{source}.joystick: expected a list")
    segs = []
    for i, s in enumerate(js):
        w = f"{source}.joystick[{i}]"
        _check_keys(s, {"t", "vx", "vy", "yaw_rate"}, w)
        segs.append(
            JoystickSegment(
                _num(_require(s, "t", w), f"{w}.t", 0.0),
                _num(s.get("vx", 0.0), f"{w}.vx", -3.0, 3.0),
                _num(s.get("vy", 0.0), f"{w}.vy", -3.0, 3.0),
                _num(s.get("yaw_rate", 0.0), f"{w}.yaw_rate", -3.0, 3.0),
            )
        )
    if any(b.t < a.t for a, b in zip(segs, segs[1:])):
        raise ScenarioError(f"{source}.joystick: segment times must be non-decreasing")
    kw["joystick"] = tuple(segs)

    pushes = d.get("pushes")
    if pushes is not None:
        _check_keys(pushes, {"interval_s", "lin_vel_mps"}, f"{source}.pushes")
        kw["push_interval_s"] = _range(pushes.get("interval_s", [1.0, 3.0]), f"{source}.pushes.interval_s", 0.02)
        kw["push_lin_vel_mps"] = _range(pushes.get("lin_vel_mps", [0.0, 0.5]), f"{source}.pushes.lin_vel_mps")

    succ = d.get("success", {})
    _check_keys(succ, {"criterion", *SUCCESS_NUMBERS}, f"{source}.success")
    crit = succ.get("criterion", "vel_error" if "max_vel_error" in succ else "segments")
    if crit not in SUCCESS_CRITERIA:
        raise ScenarioError(f"{source}.success.criterion: {crit!r} is not one of {SUCCESS_CRITERIA}")
    kw["success"] = {k: _num(v, f"{source}.success.{k}", 0.0, SUCCESS_NUMBERS[k]) for k, v in succ.items()
                     if k != "criterion"}  # fmt: skip
    if "criterion" in succ:
        kw["success"]["criterion"] = crit

    sc = Scenario(**kw)
    start_xy = np.array(sc.start_xy)
    for i, o in enumerate(sc.obstacles):  # exact distances (not bounding circles): a start beside a wall is fine
        d = float(o.column_distance(start_xy))
        if d < ROBOT_RADIUS_M:
            raise ScenarioError(f"{source}.obstacles[{i}]: the start pose is in collision with this obstacle (the "
                                f"robot's column is {d:.2f} m from it, needs {ROBOT_RADIUS_M} m)")  # fmt: skip
        for j, wp in enumerate(sc.waypoints):
            if float(o.column_distance(np.array(wp))) < 0.0:
                raise ScenarioError(f"{source}.waypoints[{j}]: goal lies inside obstacles[{i}]")
    return sc


#: Scenario files shipped with the package (``walk-perturb``, ``joystick-4dir``, ``waypoint-square``, ...).
SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"


def builtin_scenarios() -> dict[str, Path]:
    """Name -> path of each scenario file shipped in :data:`SCENARIO_DIR`."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.json"))}


def load_scenario(path: str | Path | dict | Scenario) -> Scenario:
    """Load and validate a scenario from a JSON file path, the name of a shipped scenario (e.g. ``"walk-perturb"``,
    see :func:`builtin_scenarios`), a dict or an existing :class:`Scenario`."""
    if isinstance(path, Scenario):
        return path
    if isinstance(path, dict):
        return parse_scenario(path)
    p = Path(path)
    if not p.exists() and isinstance(path, str) and path in builtin_scenarios():
        p = builtin_scenarios()[path]
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ScenarioError(
            f"scenario file not found: {p} (built-in scenarios: {sorted(builtin_scenarios())})"
        ) from None
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{p}: malformed JSON: {e}") from None
    return parse_scenario(data, source=p.name, base_dir=p.resolve().parent)
