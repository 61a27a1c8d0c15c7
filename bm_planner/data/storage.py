"""On-disk format of a Stage-2 data set: self-checking ``.npz`` shards plus ``manifest.json``.

Layout of a data set folder::

    DIR/manifest.json           summary: schema, robot model hash, config, state layout, counts, statistics
    DIR/shard-00000.npz         episodes 0 .. E-1   (E = episodes_per_shard)
    DIR/shard-00001.npz         episodes E .. 2E-1  ...

A shard is an uncompressed ``.npz`` of the arrays below, written to a temporary file and moved into place with
``os.replace``, so a shard file is either complete or absent. Its ``checksum`` (sha256 over every other array's
name, dtype, shape and bytes) is verified on every read: a truncated or corrupted shard raises
:class:`CorruptShardError` naming the file, and :func:`scan_shards` reports it as a :class:`CorruptShardWarning`
and skips it — it is never read silently.

=========================  ================  ==================================================================
array                      shape / dtype     content
=========================  ================  ==================================================================
per step (S = all steps of the shard's episodes, episode-major; ``offsets`` splits them)
``root_pos_w``             (S, 3) f4         pelvis position, world (m)
``root_quat_w``            (S, 4) f4         pelvis orientation, wxyz
``root_lin_vel_w``         (S, 3) f4         pelvis linear velocity, world (m/s)
``root_ang_vel_w``         (S, 3) f4         pelvis angular velocity, world (rad/s)
``body_pos_w``             (S, 32, 3) f4     body positions, ``g1_constants.BODY_NAMES`` order (m)
``body_lin_vel_w``         (S, 32, 3) f4     body origin velocities (m/s)
``proprio``                (S, 93) f4        the env's proprioception (see ``bm_envs.envs.base``)
``action``                 (S, 29) f4        clean expert action in this state: the label
``action_exec``            (S, 29) f4        executed action (label + OU noise, clipped to the action space)
``command``                (S, 3) f4         velocity command in force (vx, vy m/s, yaw rate rad/s)
``command_kind``           (S,) u1           index into ``commands.KINDS``
``contact``                (S, 2) bool       left/right foot (ankle roll link) touching the floor
``valid``                  (S,) bool         False for the steps within ``fall_margin_s`` of a fall
per episode (E)
``episode_index``          (E,) i8           global episode number (seeds derive from it)
``episode_seed``           (E,) u8           env reset seed
``length``                 (E,) i8           steps
``fell``                   (E,) bool         the episode ended in a fall
``action_delay_ms``        (E,) f4           action latency of the episode
``friction``               (E,) f4           floor friction drawn by domain randomization
``pushes``                 (E,) i4           random pushes received
per shard
``offsets``                (E+1,) i8         episode e = steps ``offsets[e] : offsets[e+1]``
``shard_index``            () i8
``schema_version``         () i8
``config_hash``            (32,) u1          sha256 of the collection config (canonical JSON)
``stats_states_*``         count, mean, m2   window-state statistics (manifest body set), see ``windows.py``
``stats_actions_*``        count, mean, m2   window-action statistics
``checksum``               (32,) u1          sha256 of everything else
=========================  ================  ==================================================================
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np

from bm_planner.data.trajectory import WINDOW
from bm_planner.data.windows import RunningStats

SCHEMA_VERSION = 1
SHARD_RE = re.compile(r"^shard-(\d{5,})\.npz$")
STEP_KEYS = {
    "root_pos_w": ((3,), np.float32), "root_quat_w": ((4,), np.float32), "root_lin_vel_w": ((3,), np.float32),
    "root_ang_vel_w": ((3,), np.float32), "body_pos_w": ((32, 3), np.float32),
    "body_lin_vel_w": ((32, 3), np.float32), "proprio": ((93,), np.float32), "action": ((29,), np.float32),
    "action_exec": ((29,), np.float32), "command": ((3,), np.float32), "command_kind": ((), np.uint8),
    "contact": ((2,), np.bool_), "valid": ((), np.bool_),
}  # fmt: skip
EPISODE_KEYS = {
    "episode_index": np.int64, "episode_seed": np.uint64, "length": np.int64, "fell": np.bool_,
    "action_delay_ms": np.float32, "friction": np.float32, "pushes": np.int32,
}  # fmt: skip
#: Per-episode arrays present only in some data sets: expert take-over branches (``bm_planner.data.takeover``):
#: the planner step of the take-over, ‖a_planner − a_expert‖ there, whether / after how many steps the planner fell.
OPTIONAL_EPISODE_KEYS = {"takeover_step": np.int64, "takeover_gap": np.float32, "planner_fell": np.bool_,
                         "planner_length": np.int64}  # fmt: skip
SHARD_KEYS = ("offsets", "shard_index", "schema_version", "config_hash", "checksum")
STATS_KEYS = tuple(f"stats_{p}_{s}" for p in ("states", "actions") for s in ("count", "mean", "m2"))


class CorruptShardError(ValueError):
    """A shard file is truncated, corrupted or inconsistent; the message names the file."""


class CorruptShardWarning(UserWarning):
    """Emitted when a corrupt shard is skipped."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npz"


def config_hash(config: dict) -> np.ndarray:
    """sha256 ``(32,) uint8`` of a collection config dict (canonical JSON)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).digest()
    return np.frombuffer(digest, dtype=np.uint8).copy()


def pack_shard(index: int, episodes: list[dict], s_stats: RunningStats, a_stats: RunningStats, config: dict) -> dict:
    """Shard arrays (without checksum) from episodes as returned by ``EpisodeRunner.run``."""
    if not episodes:
        raise ValueError(f"shard {index}: no episodes to pack")
    out = {k: np.concatenate([ep[k] for ep in episodes]).astype(dt) for k, (_, dt) in STEP_KEYS.items()}
    for k, dt in EPISODE_KEYS.items():
        out[k] = np.array([ep["meta"][k] for ep in episodes], dtype=dt)
    for k, dt in OPTIONAL_EPISODE_KEYS.items():
        if all(k in ep["meta"] for ep in episodes):
            out[k] = np.array([ep["meta"][k] for ep in episodes], dtype=dt)
    out["offsets"] = np.concatenate([[0], np.cumsum([len(ep["valid"]) for ep in episodes])]).astype(np.int64)
    out["shard_index"] = np.array(index, dtype=np.int64)
    out["schema_version"] = np.array(SCHEMA_VERSION, dtype=np.int64)
    out["config_hash"] = config_hash(config)
    out.update(s_stats.to_arrays("stats_states"))
    out.update(a_stats.to_arrays("stats_actions"))
    return out


def checksum(arrays: dict) -> np.ndarray:
    """sha256 ``(32,) uint8`` over all arrays but ``checksum``, in key order (name, dtype, shape, bytes)."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        if k == "checksum":
            continue
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8).copy()


def write_shard(root: Path, arrays: dict) -> Path:
    """Write a shard atomically (temp file + ``os.replace``); returns its path."""
    path = Path(root) / shard_name(int(arrays["shard_index"]))
    arrays = {**arrays, "checksum": checksum(arrays)}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_shard(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Load and verify a shard (all arrays; ``keys`` limits what is returned, not what is verified)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001  (BadZipFile, EOFError, ValueError, OSError, ...: all mean corrupt)
        raise CorruptShardError(f"{path.name}: unreadable ({type(e).__name__}: {e})") from None
    need = set(STEP_KEYS) | set(EPISODE_KEYS) | set(STATS_KEYS) | set(SHARD_KEYS)
    missing = need - set(arrays)
    if missing:
        raise CorruptShardError(f"{path.name}: missing arrays {sorted(missing)}")
    if not np.array_equal(arrays["checksum"], checksum(arrays)):
        raise CorruptShardError(f"{path.name}: checksum mismatch (corrupted contents)")
    if int(arrays["schema_version"]) != SCHEMA_VERSION:
        raise CorruptShardError(f"{path.name}: schema version {int(arrays['schema_version'])} != {SCHEMA_VERSION}")
    m = SHARD_RE.match(path.name)
    if m and int(m.group(1)) != int(arrays["shard_index"]):
        raise CorruptShardError(f"{path.name}: holds shard_index {int(arrays['shard_index'])}")
    off = arrays["offsets"]
    S = int(off[-1]) if len(off) else -1
    E = len(arrays["episode_index"])
    if (
        len(off) != E + 1
        or off[0] != 0
        or np.any(np.diff(off) <= 0)
        or not np.array_equal(np.diff(off), arrays["length"])
    ):
        raise CorruptShardError(f"{path.name}: inconsistent episode offsets/lengths")
    for k, (tail, dt) in STEP_KEYS.items():
        if arrays[k].shape != (S, *tail) or arrays[k].dtype != dt:
            raise CorruptShardError(f"{path.name}: {k} has shape {arrays[k].shape} {arrays[k].dtype}, "
                                    f"expected {(S, *tail)} {np.dtype(dt)}")  # fmt: skip
    for k in ("root_pos_w", "root_quat_w", "body_pos_w", "action"):
        if not np.all(np.isfinite(arrays[k])):
            raise CorruptShardError(f"{path.name}: {k} contains NaN or inf")
    return arrays if keys is None else {k: arrays[k] for k in keys}


def split_episodes(arrays: dict) -> list[dict]:
    """Per-episode views ``{step key: (L, ...), "meta": {...}}`` of a shard's arrays."""
    off = arrays["offsets"]
    eps = []
    for e in range(len(off) - 1):
        ep = {k: arrays[k][off[e] : off[e + 1]] for k in STEP_KEYS if k in arrays}
        ep["meta"] = {k: arrays[k][e].item() for k in (*EPISODE_KEYS, *OPTIONAL_EPISODE_KEYS) if k in arrays}
        eps.append(ep)
    return eps


def list_shards(root: Path) -> dict[int, Path]:
    """Shard files of a data set folder by shard index."""
    out = {}
    for p in Path(root).iterdir():
        m = SHARD_RE.match(p.name)
        if m:
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def shard_summary(arrays: dict) -> dict:
    """What the manifest records about one shard."""
    ep = arrays["episode_index"]
    return {"index": int(arrays["shard_index"]), "name": shard_name(int(arrays["shard_index"])),
            "episodes": [int(ep[0]), int(ep[-1])], "steps": int(arrays["offsets"][-1]),
            "valid_steps": int(arrays["valid"].sum()), "falls": int(arrays["fell"].sum()),
            "windows": int(arrays["stats_actions_count"]) // WINDOW, "config_hash": bytes(arrays["config_hash"]).hex(),
            "stats": {k: np.asarray(arrays[k]).tolist() for k in STATS_KEYS}}  # fmt: skip


def scan_shards(root: Path, indices=None) -> tuple[dict[int, dict], dict[int, str]]:
    """Verify the shards of ``root`` (or only ``indices``). Returns ({index: summary}, {index: reason}).

    Each corrupt shard is reported with a :class:`CorruptShardWarning` naming it.
    """
    good, bad = {}, {}
    for i, p in list_shards(root).items():
        if indices is not None and i not in indices:
            continue
        try:
            good[i] = shard_summary(read_shard(p))
        except CorruptShardError as e:
            bad[i] = str(e)
            warnings.warn(f"skipping corrupt shard {e}", CorruptShardWarning, stacklevel=2)
    return good, bad


def atomic_write_json(path: Path, obj) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_manifest(root: Path) -> dict:
    """Read and check ``root/manifest.json``; raises ``ValueError`` with the reason on a bad file."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {root} a bm data set (made by bm-collect)?")
    try:
        m = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON: {e}") from None
    for k in ("schema_version", "robot_model", "config", "state", "counts", "stats", "shards"):
        if not isinstance(m, dict) or k not in m:
            raise ValueError(f"{path}: missing key {k!r}")
    if m["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema version {m['schema_version']!r}, this code reads {SCHEMA_VERSION}")
    return m


def merged_stats(summaries: list[dict]) -> tuple[RunningStats, RunningStats]:
    """Merge the per-shard window statistics of manifest shard summaries."""
    out = []
    for p in ("states", "actions"):
        acc = None
        for s in summaries:
            st = RunningStats.from_arrays(s["stats"], f"stats_{p}")
            acc = st if acc is None else acc.merge(st)
        out.append(acc)
    return out[0], out[1]


def mjcf_hash() -> dict:
    """sha256 of the robot MJCF's bytes (the pinned holosoma G1 model)."""
    from bm_envs import g1_constants as g1
    from bm_envs.assets import asset_path

    p = asset_path(*g1.MJCF_ASSET)
    return {"mjcf": g1.MJCF_ASSET[1], "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


class DirLock:
    """Exclusive ``flock`` on ``root/.lock`` so two collectors never write one folder (released on exit/kill)."""

    def __init__(self, root: Path):
        self.path = Path(root) / ".lock"
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise RuntimeError(f"{self.path.parent} is being written by another collector (lock {self.path})") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
