"""``bm-collect``: roll out the Stage-1 expert in parallel and store a crash-safe, appendable Stage-2 data set.

Example (10 usable hours on two local cores)::

    bm-collect --out data/g1-loco-v1 --hours 10 --workers 2 --seed 0
    bm-collect --out data/g1-loco-v1 --hours 10 --workers 64 --backend ray --ray-address auto   # on a Ray cluster

Work is split into shards of ``episodes_per_shard`` episodes; shard ``j`` always holds episodes
``j·E .. (j+1)·E − 1`` whose seeds are a function of ``(seed, episode)`` only, so the data do not depend on the
number of workers, the backend or interruptions. Workers (local processes, or Ray tasks running the same function,
:func:`bm_planner.data.workers.collect_shard`) return shard arrays to this process, which writes each shard
atomically and then the manifest. Re-running the same command resumes: complete shards are kept (after
verification), missing and corrupt ones are collected (corrupt files are renamed ``*.corrupt`` and reported), so
``kill -9`` loses only the shards in flight.

Targets: ``--hours H`` = usable (unflagged) hours: the data set is the shortest prefix of shards 0, 1, ... whose
usable time reaches H (shards finished beyond it stay on disk, outside the manifest, and are reused when the
target grows); ``--episodes N`` = the first ceil(N/E) shards.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from bm_envs import g1_constants as g1
from bm_envs.cliargs import json_object_arg
from bm_envs.wrappers.profiles import DEFAULT_PROFILE, PROFILES
from bm_planner.data import storage
from bm_planner.data.commands import CommandConfig
from bm_planner.data.rollout import ENV_ID, CollectConfig
from bm_planner.data.state import StateRepresentation
from bm_planner.data.trajectory import HORIZON, N_HISTORY, WINDOW
from bm_planner.data.workers import collect_shard

BACKENDS = ("local", "ray")


def _exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Worker initializer: exit as soon as the collector process is gone (e.g. after ``kill -9``), instead of
    lingering as an orphan blocked on a result nobody will read."""

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="bm-collect-parent-watch").start()


def _provenance() -> dict:
    """Code version that wrote the data (informational; resuming checks the config and robot model only)."""
    import subprocess

    import bm_envs

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, check=False,
                                text=True, timeout=5).stdout.strip() or None  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"bm_version": bm_envs.__version__, "git_commit": commit}


class _LocalBackend:
    def __init__(self, workers: int):
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core per worker, no spinning
            os.environ.setdefault(var, "1")
        self.ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                      initializer=_exit_with_parent, initargs=(os.getpid(),))  # fmt: skip
        self.pending = set()

    def submit(self, config: dict, index: int) -> None:
        self.pending.add(self.ex.submit(collect_shard, config, index))

    def next_done(self):
        done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
        fut = next(iter(done))
        self.pending.remove(fut)
        return fut.result()

    def close(self, cancel: bool = False) -> None:
        self.ex.shutdown(wait=not cancel, cancel_futures=cancel)


class _InlineBackend:
    """``workers=0``: run shards one by one in this process (debugging, tests)."""

    def __init__(self):
        self.pending: list[tuple[dict, int]] = []

    def submit(self, config: dict, index: int) -> None:
        self.pending.append((config, index))

    def next_done(self):
        return collect_shard(*self.pending.pop(0))

    def close(self, cancel: bool = False) -> None:
        self.pending = []


class _RayBackend:
    def __init__(self, workers: int, address: str | None):
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.ray = ray
        self.fn = ray.remote(num_cpus=1)(collect_shard)
        self.pending = []

    def submit(self, config: dict, index: int) -> None:
        self.pending.append(self.fn.remote(config, index))

    def next_done(self):
        (ref,), self.pending = self.ray.wait(self.pending, num_returns=1)
        return self.ray.get(ref)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self.pending:
                self.ray.cancel(ref, force=True)
        self.pending = []


class MotionDataCollector:
    """Collects a data set into ``out`` (see the module docstring). ``run(hours=...)`` or ``run(episodes=...)``."""

    def __init__(self, out: str | Path, config: CollectConfig | None = None, workers: int = 2,
                 backend: str = "local", progress: bool = True, ray_address: str | None = None):  # fmt: skip
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not (isinstance(workers, int) and workers >= 0) or (workers == 0 and backend != "local"):
            raise ValueError(f"workers must be an int >= 1 (0 = in this process, local backend), got {workers!r}")
        self.out, self.config = Path(out), config or CollectConfig()
        self.workers, self.backend, self.progress, self.ray_address = workers, backend, progress, ray_address
        self.cfg_dict = self.config.to_dict()
        self.cfg_hash = storage.config_hash(self.cfg_dict).tobytes().hex()
        self.rep = StateRepresentation(self.config.bodies)
        self.E = self.config.episodes_per_shard
        self.robot_model = storage.mjcf_hash()
        self.provenance = _provenance()

    # ------------------------------------------------------------------ bookkeeping
    def _check_existing(self) -> None:
        path = self.out / "manifest.json"
        if not path.exists():
            return
        m = storage.load_manifest(self.out)
        if m["config"] != self.cfg_dict:
            diff = sorted(
                k for k in set(m["config"]) | set(self.cfg_dict) if m["config"].get(k) != self.cfg_dict.get(k)
            )
            raise ValueError(f"{self.out} was collected with a different config (differs in {diff}); use another "
                             f"--out or the same settings")  # fmt: skip
        if m["robot_model"]["sha256"] != self.robot_model["sha256"]:
            raise ValueError(f"{self.out} was collected with another robot model (MJCF sha256 differs)")

    def _scan(self) -> dict[int, dict]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", storage.CorruptShardWarning)
            good, bad = storage.scan_shards(self.out)
        for w in caught:
            print(f"bm-collect: {w.message}; it will be collected again", file=sys.stderr)
        for i in bad:
            p = self.out / storage.shard_name(i)
            p.replace(p.with_name(p.name + ".corrupt"))
        foreign = [s["name"] for s in good.values() if s["config_hash"] != self.cfg_hash]
        if foreign:
            raise ValueError(f"{self.out}: shards {foreign[:5]} were made with a different config")
        return good

    def _prefix(self, done: dict[int, dict], hours: float | None, episodes: int | None) -> tuple[int, bool]:
        """(number of leading shards in the data set, target reached)."""
        if episodes is not None:
            K = math.ceil(episodes / self.E)
            P = next((i for i in range(K) if i not in done), K)
            return P, P == K
        acc, i = 0.0, 0
        while i in done:
            acc += done[i]["valid_steps"] * g1.CONTROL_DT / 3600
            i += 1
            if acc >= hours:
                return i, True
        return i, False

    def _manifest(self, done: dict[int, dict], P: int, complete: bool, target: dict) -> dict:
        shards = [done[i] for i in range(P)]
        counts = {"shards": P, "episodes": P * self.E, "steps": sum(s["steps"] for s in shards),
                  "valid_steps": sum(s["valid_steps"] for s in shards), "falls": sum(s["falls"] for s in shards),
                  "windows": sum(s["windows"] for s in shards)}  # fmt: skip
        counts["hours"] = counts["steps"] * g1.CONTROL_DT / 3600
        counts["valid_hours"] = counts["valid_steps"] * g1.CONTROL_DT / 3600
        stats = {}
        if shards:
            for name, st in zip(("states", "actions"), storage.merged_stats(shards)):
                stats[name] = {"count": st.count, "mean": st.mean.tolist(), "std": st.std.tolist()}
        return {
            "schema_version": storage.SCHEMA_VERSION,
            "robot_model": self.robot_model,
            "provenance": self.provenance,
            "env": ENV_ID,
            "control_dt": g1.CONTROL_DT,
            "config": self.cfg_dict,
            "config_hash": self.cfg_hash,
            "target": target,
            "complete": complete,
            "state": {**self.rep.layout(), "n_history": N_HISTORY, "horizon": HORIZON, "window": WINDOW},
            "action": {
                "dim": g1.NUM_JOINTS,
                "joint_names": list(g1.JOINT_NAMES),
                "convention": "q_target = DEFAULT_JOINT_POS + 0.25 * action (rad)",
            },
            "per_step_keys": {k: list(t) for k, (t, _) in storage.STEP_KEYS.items()},
            "counts": counts,
            "stats": stats,
            "shards": [{k: v for k, v in s.items() if k != "stats"} for s in shards],
        }

    # ------------------------------------------------------------------ main loop
    def run(self, hours: float | None = None, episodes: int | None = None) -> dict:
        """Collect until the target is met (resuming what is on disk); returns the manifest."""
        if (hours is None) == (episodes is None):
            raise ValueError("give exactly one of hours= or episodes=")
        if hours is not None and not (math.isfinite(hours) and hours > 0):
            raise ValueError(f"hours must be positive, got {hours!r}")
        if episodes is not None and not (isinstance(episodes, int) and episodes > 0):
            raise ValueError(f"episodes must be a positive int, got {episodes!r}")
        target = {"hours": hours} if hours is not None else {"episodes": episodes}
        if self.out.is_dir() and not (self.out / "manifest.json").exists():
            foreign = sorted(p.name for p in self.out.iterdir() if not (storage.SHARD_RE.match(p.name)
                             or p.name.startswith(".") or p.name.endswith(".corrupt")))  # fmt: skip
            if foreign:
                raise ValueError(f"{self.out} is not empty and is not a bm data set (holds {foreign[:3]}"
                                 f"{' …' if len(foreign) > 3 else ''}): give a new or empty --out")  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        with storage.DirLock(self.out):
            for tmp in self.out.glob(".*.tmp-*"):  # leftovers of a killed run
                tmp.unlink()
            self._check_existing()
            done = self._scan()
            if done:
                hrs = sum(d["valid_steps"] for d in done.values()) * g1.CONTROL_DT / 3600
                print(f"bm-collect: resuming {self.out}: {len(done)} complete shards kept ({hrs:.2f} usable h)",
                      file=sys.stderr)  # fmt: skip
            P, reached = self._prefix(done, hours, episodes)
            storage.atomic_write_json(self.out / "manifest.json", self._manifest(done, P, reached, target))
            if not reached:
                self._collect(done, hours, episodes, target)
            P, reached = self._prefix(done, hours, episodes)
            manifest = self._manifest(done, P, reached, target)
            storage.atomic_write_json(self.out / "manifest.json", manifest)
        return manifest

    def _collect(self, done: dict[int, dict], hours, episodes, target) -> None:
        limit = math.ceil(episodes / self.E) if episodes is not None else None
        if self.backend == "ray":
            backend = _RayBackend(self.workers, self.ray_address)
        else:
            backend = _LocalBackend(self.workers) if self.workers > 0 else _InlineBackend()
        total = hours if hours is not None else limit
        P, _ = self._prefix(done, hours, episodes)
        unit = "h" if hours is not None else "shard"
        initial = (sum(done[i]["valid_steps"] for i in range(P)) * g1.CONTROL_DT / 3600) if hours else P
        bar = tqdm(total=total, initial=min(initial, total), unit=unit, disable=not self.progress,
                   desc=f"bm-collect {self.out.name}", bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} {unit} "
                   "[{elapsed}<{remaining}]")  # fmt: skip
        in_flight: set[int] = set()
        nxt = 0
        try:
            while True:
                P, reached = self._prefix(done, hours, episodes)
                while not reached and len(in_flight) < max(1, self.workers):
                    while nxt in done or nxt in in_flight:
                        nxt += 1
                    if limit is not None and nxt >= limit:
                        break
                    backend.submit(self.cfg_dict, nxt)
                    in_flight.add(nxt)
                if not in_flight:
                    break
                index, arrays, _wall = backend.next_done()
                in_flight.discard(index)
                storage.write_shard(self.out, arrays)
                done[index] = storage.shard_summary(arrays)
                P2, reached = self._prefix(done, hours, episodes)
                storage.atomic_write_json(self.out / "manifest.json", self._manifest(done, P2, reached, target))
                if hours is not None:
                    bar.update(
                        min(total, sum(done[i]["valid_steps"] for i in range(P2)) * g1.CONTROL_DT / 3600) - bar.n
                    )
                else:
                    bar.update(P2 - bar.n)
        except BaseException:
            backend.close(cancel=True)
            raise
        finally:
            bar.close()
        backend.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="data set folder (created; an existing one is resumed)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--hours", type=float, help="usable (unflagged) hours of data to reach")
    g.add_argument("--episodes", type=int, help="number of episodes (rounded up to whole shards)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="parallel rollouts: local processes / Ray tasks in flight (0 = run in this process)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=BACKENDS, default="local")
    p.add_argument("--ray-address", default=None, help="Ray cluster address ('auto' = the running cluster)")
    d = CollectConfig()
    p.add_argument("--expert", default=d.expert, choices=["fastsac", "ppo"])
    p.add_argument("--episode-s", type=float, default=d.episode_s, help="episode length (s)")
    p.add_argument("--episodes-per-shard", type=int, default=d.episodes_per_shard)
    p.add_argument("--profile", default=None, choices=sorted(PROFILES),
                   help="randomization + action latency profile (default expert: the Stage-1 expert's training "
                        "ranges; paper: BeyondMimic's Stage-1 ranges + 0-100 ms; off). Resuming a data set made "
                        "before profiles existed: leave it out")  # fmt: skip
    p.add_argument(
        "--latency-ms",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="action latency range (ms), replacing the profile's",
    )
    p.add_argument(
        "--friction",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="floor friction range, replacing the profile's",
    )
    p.add_argument(
        "--randomization",
        default=None,
        metavar="JSON",
        help="RandomizationConfig fields replacing the profile's, as JSON",
    )
    p.add_argument("--no-randomize", action="store_true", help="no domain randomization and no random pushes")
    p.add_argument(
        "--ou-sigma",
        type=float,
        default=d.ou_sigma,
        help="OU noise on the executed action (action units; the label stays clean)",
    )
    p.add_argument("--start-joint-noise", type=float, default=0.0, help="start pose joint offsets U(±x) rad")
    p.add_argument("--start-root-vel", type=float, default=0.0, help="start root velocity U(±x) m/s in x and y")
    p.add_argument(
        "--commands",
        default=None,
        metavar="JSON",
        help="CommandConfig overrides as JSON, e.g. '{\"segment_s\": [1.0, 3.0]}'",
    )
    p.add_argument("--policy", default="expert",
                   help="expert (roll out the Stage-1 expert), or diffusion:CKPT with --takeover expert: roll out "
                        "the planner and let the expert take over from its states (DAgger)")  # fmt: skip
    p.add_argument("--takeover", default=None, choices=["expert"], help="who takes over from --policy's states")
    p.add_argument("--takeover-every-s", type=float, default=0.5, help="seconds between take-overs")
    p.add_argument("--takeover-s", type=float, default=2.0, help="how long the expert continues from each")
    p.add_argument("--takeover-phase", default="match", choices=["match", "clock"],
                   help="the expert's gait phase at a take-over: the one matching the planner's next action, or a "
                        "clock since the episode start")  # fmt: skip
    p.add_argument("--agent", default=None, metavar="JSON", help="AgentConfig overrides of the --policy planner")
    p.add_argument(
        "--planner-backend", default="onnx", choices=["torch", "onnx"], help="denoiser runtime of the --policy planner"
    )
    p.add_argument("--bodies", default="default", help="'default', 'all' or comma-separated body names")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    bodies = a.bodies if a.bodies in ("default", "all") else tuple(b.strip() for b in a.bodies.split(","))
    try:
        takeover = None
        kind, _, path = a.policy.partition(":")
        if kind not in ("expert", "diffusion") or (kind == "diffusion") != bool(path):
            raise ValueError(f"--policy must be 'expert' or 'diffusion:CKPT', got {a.policy!r}")
        if (kind == "diffusion") != (a.takeover is not None):
            raise ValueError("--policy diffusion:CKPT and --takeover expert go together (DAgger collection)")
        if kind == "diffusion":
            from bm_planner.data.takeover import checkpoint_sha256

            takeover = {"policy": path, "agent": json_object_arg("--agent", a.agent) if a.agent else {},
                        "backend": a.planner_backend, "every_s": a.takeover_every_s, "continue_s": a.takeover_s,
                        "phase": a.takeover_phase, "checkpoint_sha256": checkpoint_sha256(path)}  # fmt: skip
        commands = CommandConfig.from_dict(json_object_arg("--commands", a.commands)) if a.commands else CommandConfig()
        profile = a.profile
        if profile is None:  # expert, unless this resumes a data set made before profiles (its manifest has none)
            old = Path(a.out) / "manifest.json"
            legacy = old.is_file() and "profile" not in storage.load_manifest(Path(a.out))["config"]
            profile = None if legacy else DEFAULT_PROFILE
        cfg = CollectConfig(seed=a.seed, expert=a.expert, episode_s=a.episode_s, episodes_per_shard=a.episodes_per_shard,
                            profile=profile, latency_ms=None if a.latency_ms is None else tuple(a.latency_ms),
                            randomize=not a.no_randomize, bodies=bodies,
                            friction=None if a.friction is None else tuple(a.friction),
                            randomization=json_object_arg("--randomization", a.randomization) if a.randomization else None,
                            ou_sigma=a.ou_sigma, start_joint_noise=a.start_joint_noise, start_root_vel=a.start_root_vel,
                            commands=commands, takeover=takeover)  # fmt: skip
        col = MotionDataCollector(a.out, cfg, workers=a.workers, backend=a.backend, progress=not a.no_progress,
                                  ray_address=a.ray_address)  # fmt: skip
        m = col.run(hours=a.hours, episodes=a.episodes)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"bm-collect: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bm-collect: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(json.dumps({"out": str(a.out), "complete": m["complete"], **m["counts"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
