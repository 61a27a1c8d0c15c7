"""Stable-Baselines3 baselines on the bm task envs: PPO/SAC from scratch on joints, or commanding the Stage-1 expert.

Variants (``SB3Config.variant``):

* ``joints`` — the SB3 policy outputs the 29 joint offsets directly: action ``a ∈ [-1, 1]^29`` becomes the env
  action ``joint_action_scale · a`` (env units; q* = q_default + 0.25·that, clipped to the joint limits).
* ``hierarchical`` — the SB3 policy outputs a velocity command ``a ∈ [-1, 1]^3`` mapped linearly onto
  ``[command_low, command_high]`` = (vx m/s, vy m/s, yaw rate rad/s); the Stage-1 locomotion expert
  (:class:`~bm_envs.experts.locomotion.LocomotionExpert`) turns it into joint actions at 50 Hz. One SB3 step holds the
  command for ``decision_every`` env steps (default 5: a 10 Hz commander).

Observation (flat ``float32``; ``_b`` = robot heading frame), built by :class:`ObservationFeatures` from the raw
env observation so that the training wrapper and the evaluation adapter share one code path:

==============  ===  ==============================================================================
term            dim  content
==============  ===  ==============================================================================
base            9    ang. velocity_b × 0.25 (3), projected gravity (3), root xy velocity_b (2, m/s),
                     pelvis height − 0.75 m (1)
joints          87   ``joints`` only: q − q_default (29, rad), q̇ × 0.05 (29), last env action (29)
command         3    ``hierarchical`` only: the command in force, normalized back to [-1, 1]
task            …    joystick: ``command`` (3); waypoint: current goal_b and the goal after it (each clipped to
                     5 m, 4) + "a next goal exists" flag (1); obstacle: waypoint's 5 + the 4 nearest obstacles
                     (centre_b clipped to 5 m (2), footprint radius (1)) = 17
==============  ===  ==============================================================================

Reward = the env's own weighted reward (see each env's docstring: waypoint progress/reached/alive/action rate,
joystick velocity tracking, obstacle collision) summed over the held steps, minus ``fall_penalty`` on a fall.
``info["is_success"]`` carries the env's success at episode end (SB3 logs it as ``rollout/success_rate``).

CLI (``bm-train-sb3``; settings: defaults < ``--config`` YAML (default: the preset ``sb3_configs/<variant>_<algo>.yaml``)
< CLI flags). The runs and results reported in ``sb3_configs/README.md``::

    OMP_NUM_THREADS=1 nice -n 10 bm-train-sb3 --task waypoint --variant hierarchical --algo ppo \\
        --timesteps 60000 --out runs/sb3/waypoint-hier-ppo
    bm-train-sb3 --out runs/sb3/waypoint-hier-ppo --resume --timesteps 110000   # continue to 110 k steps

Writes ``config.yaml``, ``checkpoints/ckpt_<steps>.zip`` (temp file + rename), ``model.zip``,
``train_summary.json`` (steps, wall/CPU seconds summed over resumed segments) and TensorBoard logs under ``tb/``.
SIGTERM/SIGINT stop training at the next step and still save a checkpoint and the summary. :func:`load_sb3_policy`
wraps a run for ``bm-eval`` (``--policy sb3:RUN_DIR``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import yaml

from bm_envs import g1_constants as g1
from bm_envs.config_dict import from_dict
from bm_envs.observation import proprio_part
from bm_envs.rotations import world_to_yaw_frame, yaw_from_quat
from bm_envs.scene.scenario import OBSTACLE_TYPE_IDS

TASKS = {"joystick": "BM-G1-Joystick-v0", "waypoint": "BM-G1-Waypoint-v0", "obstacle": "BM-G1-Obstacle-v0"}
CONFIG_DIR = Path(__file__).parent / "sb3_configs"
MAX_DIST_M = 5.0
N_NEAREST_OBSTACLES = 4
_NOMINAL_PELVIS_Z = 0.75


@dataclass
class SB3Config:
    """One SB3 baseline run. ``timesteps`` counts SB3 steps (hierarchical: × ``decision_every`` env steps).
    ``algo_kwargs`` go to the SB3 algorithm's constructor (``n_steps``, ``learning_rate``, ...)."""

    task: str = "waypoint"
    variant: str = "hierarchical"
    algo: str = "ppo"
    timesteps: int = 60_000
    n_envs: int = 2
    vec_env: str = "dummy"
    seed: int = 0
    scenario: str | None = None
    time_limit_s: float | None = None
    randomize: bool = False
    latency_ms: list[float] | None = None
    expert: str = "fastsac"
    decision_every: int = 5
    command_low: list[float] = field(default_factory=lambda: [-0.5, -0.4, -1.0])
    command_high: list[float] = field(default_factory=lambda: [1.0, 0.4, 1.0])
    joint_action_scale: float = 1.0
    fall_penalty: float = 10.0
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    checkpoint_every: int = 10_000
    device: str = "cpu"
    algo_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        def bad(msg):
            raise ValueError(f"SB3Config: {msg}")

        if self.task not in TASKS:
            bad(f"task must be one of {sorted(TASKS)}, got {self.task=}")
        if self.variant not in ("hierarchical", "joints"):
            bad(f"variant must be 'hierarchical' or 'joints', got {self.variant=}")
        if self.algo not in ("ppo", "sac"):
            bad(f"algo must be 'ppo' or 'sac', got {self.algo=}")
        if self.vec_env not in ("dummy", "subproc"):
            bad(f"vec_env must be 'dummy' or 'subproc', got {self.vec_env=}")
        for name in ("timesteps", "n_envs", "decision_every", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        lo, hi = np.asarray(self.command_low, float), np.asarray(self.command_high, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            bad(f"command_low/high must be 3 numbers each with low < high, got {self.command_low=}, "
                f"{self.command_high=}")  # fmt: skip
        if not (0 < self.joint_action_scale <= 4):
            bad(f"joint_action_scale must be in (0, 4], got {self.joint_action_scale=}")
        if not self.fall_penalty >= 0:
            bad(f"fall_penalty must be >= 0, got {self.fall_penalty=}")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            bad(f"time_limit_s must be > 0, got {self.time_limit_s=}")
        if not (self.net_arch and all(isinstance(n, int) and n > 0 for n in self.net_arch)):
            bad(f"net_arch must be a list of positive layer widths, got {self.net_arch=}")
        if not isinstance(self.algo_kwargs, dict):
            bad(f"algo_kwargs must be a mapping, got {self.algo_kwargs!r}")
        import inspect

        allowed = set(inspect.signature(_algo_class(self.algo).__init__).parameters)
        allowed -= {"self", "policy", "env", "seed", "device", "tensorboard_log", "policy_kwargs", "_init_setup_model"}
        unknown = sorted(set(self.algo_kwargs) - allowed)
        if unknown:
            bad(f"unknown {self.algo.upper()} algo_kwargs {unknown}; allowed: {sorted(allowed)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SB3Config:
        return from_dict(cls, d)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> SB3Config:
        """Load ``path`` (a YAML file, or the name of a preset in ``sb3_configs/``) and apply ``overrides``."""
        p = Path(path)
        if not p.is_file() and (CONFIG_DIR / f"{path}.yaml").is_file():
            p = CONFIG_DIR / f"{path}.yaml"
        if not p.is_file():
            presets = sorted(q.stem for q in CONFIG_DIR.glob("*.yaml"))
            raise ValueError(f"config {str(path)!r} is neither a file nor a preset {presets}")
        d = yaml.safe_load(p.read_text()) or {}
        if not isinstance(d, dict):
            raise ValueError(f"{p}: expected a mapping of SB3Config fields, got {type(d).__name__}")  # noqa: TRY004
        return cls.from_dict({**d, **overrides})

    def to_yaml(self) -> str:
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)

    @property
    def env_steps_per_step(self) -> int:
        return self.decision_every if self.variant == "hierarchical" else 1


def _algo_class(algo: str):
    from stable_baselines3 import PPO, SAC

    return {"ppo": PPO, "sac": SAC}[algo]


# ---------------------------------------------------------------------- observation and action maps
def _clip_norm(v: np.ndarray, r: float = MAX_DIST_M) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v * (r / n) if n > r else v


class ObservationFeatures:
    """Raw bm env observation (dict) → the flat SB3 observation of this module's docstring."""

    TASK_DIM: ClassVar[dict[str, int]] = {"joystick": 3, "waypoint": 5, "obstacle": 5 + 3 * N_NEAREST_OBSTACLES}

    def __init__(self, task: str, variant: str):
        self.task, self.variant = task, variant
        self.dim = 9 + (87 if variant == "joints" else 3) + self.TASK_DIM[task]

    def __call__(self, obs: dict[str, np.ndarray], command_norm: np.ndarray | None = None) -> np.ndarray:
        p = np.asarray(obs["proprio"], dtype=np.float64)
        yaw = float(yaw_from_quat(obs["root_quat_w"]))
        pos = np.asarray(obs["root_pos_w"], dtype=np.float64)
        v_b = world_to_yaw_frame(np.asarray(obs["root_lin_vel_w"][:2], dtype=np.float64), yaw)
        part = lambda name: proprio_part(p, name)  # noqa: E731
        parts = [part("ang_vel_b") * 0.25, part("gravity_b"), v_b, [pos[2] - _NOMINAL_PELVIS_Z]]
        if self.variant == "joints":
            parts += [part("joint_pos") - g1.DEFAULT_JOINT_POS, part("joint_vel") * 0.05, part("last_action")]
        else:
            parts.append(np.zeros(3) if command_norm is None else command_norm)
        if self.task == "joystick":
            parts.append(obs["command"])
        else:
            wp = np.asarray(obs["waypoints_w"], dtype=np.float64)
            rest = np.flatnonzero(wp[:, 2] > 0)
            nxt = world_to_yaw_frame(wp[rest[1], :2] - pos[:2], yaw) if len(rest) > 1 else np.zeros(2)
            parts += [_clip_norm(np.asarray(obs["goal_b"], dtype=np.float64)), _clip_norm(nxt), [float(len(rest) > 1)]]
        if self.task == "obstacle":
            parts.append(self._nearest_obstacles(np.asarray(obs["obstacles"], dtype=np.float64), pos[:2], yaw))
        return np.concatenate([np.ravel(x) for x in parts]).astype(np.float32)

    @staticmethod
    def _nearest_obstacles(rows: np.ndarray, xy: np.ndarray, yaw: float) -> np.ndarray:
        """(K·3,): centre_b (clipped to 5 m) and footprint radius of the K obstacles nearest by surface distance;
        missing ones are (5, 0, 0). Boxes and meshes (whose rows are their bounding boxes) count with the radius of
        their footprint's corner, spheres and cylinders with theirs."""
        rows = rows[rows[:, 0] > 0]
        boxlike = np.isin(rows[:, 0], [OBSTACLE_TYPE_IDS["box"], OBSTACLE_TYPE_IDS["mesh"]])
        radius = np.where(boxlike, np.hypot(rows[:, 4], rows[:, 5]), rows[:, 4])
        rel = rows[:, 1:3] - xy
        order = np.argsort(np.linalg.norm(rel, axis=1) - radius)[:N_NEAREST_OBSTACLES]
        out = np.tile([MAX_DIST_M, 0.0, 0.0], (N_NEAREST_OBSTACLES, 1))
        for i, j in enumerate(order):
            out[i, :2] = _clip_norm(world_to_yaw_frame(rel[j], yaw))
            out[i, 2] = radius[j]
        return out.ravel()


def command_from_action(a: np.ndarray, low, high) -> np.ndarray:
    """SB3 action in [-1, 1]^3 → (vx, vy, yaw_rate) in [low, high] (linear; out-of-range actions clipped)."""
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return lo + (np.clip(np.asarray(a, dtype=np.float64), -1, 1) + 1) * 0.5 * (hi - lo)


def normalize_command(cmd: np.ndarray, low, high) -> np.ndarray:
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return 2 * (np.asarray(cmd) - lo) / (hi - lo) - 1


# ---------------------------------------------------------------------- training env
class SB3TaskEnv(gym.Wrapper):
    """A bm task env (raw Dict observations) as a flat-Box env for SB3; see the module docstring."""

    def __init__(self, env: gym.Env, cfg: SB3Config):
        super().__init__(env)
        self.cfg = cfg
        self.features = ObservationFeatures(cfg.task, cfg.variant)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.features.dim,), dtype=np.float32)
        n = 3 if cfg.variant == "hierarchical" else g1.NUM_JOINTS
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        self.expert = None
        if cfg.variant == "hierarchical":
            from bm_envs.experts.locomotion import LocomotionExpert

            self.expert = LocomotionExpert(cfg.expert)
        self.command = np.zeros(3)
        self._obs: dict[str, np.ndarray] = {}

    def _features(self) -> np.ndarray:
        cmd = normalize_command(self.command, self.cfg.command_low, self.cfg.command_high)
        return self.features(self._obs, cmd if self.expert is not None else None)

    def reset(self, *, seed=None, options=None):
        self._obs, info = self.env.reset(seed=seed, options=options)
        self.command = np.zeros(3)
        if self.expert is not None:
            self.expert.reset()
        return self._features(), info

    def step(self, action):
        total, terminated, truncated, info = 0.0, False, False, {}
        if self.expert is None:
            joint = self.cfg.joint_action_scale * np.clip(np.asarray(action, dtype=np.float64), -1, 1)
            self._obs, total, terminated, truncated, info = self.env.step(joint)
        else:
            self.command = command_from_action(action, self.cfg.command_low, self.cfg.command_high)
            for _ in range(self.cfg.decision_every):
                self._obs, r, terminated, truncated, info = self.env.step(self.expert.act(self._obs, self.command))
                total += r
                if terminated or truncated:
                    break
        if info.get("fell"):
            total -= self.cfg.fall_penalty
        if terminated or truncated:
            info["is_success"] = bool(info.get("success", False))
        return self._features(), float(total), terminated, truncated, info


def make_env(cfg: SB3Config, rank: int = 0) -> gym.Env:
    """One monitored training env of ``cfg`` (``rank`` only names it)."""
    from stable_baselines3.common.monitor import Monitor

    import bm_envs  # noqa: F401  (registers the envs)

    kwargs: dict[str, Any] = {"randomize": cfg.randomize}
    if cfg.latency_ms is not None:
        kwargs["latency_ms"] = tuple(cfg.latency_ms)
    if cfg.scenario is not None:
        kwargs["scenario"] = cfg.scenario
    if cfg.time_limit_s is not None:
        kwargs["time_limit_s"] = cfg.time_limit_s
    return Monitor(SB3TaskEnv(gym.make(TASKS[cfg.task], **kwargs), cfg), info_keywords=("is_success",))


def make_vec_env(cfg: SB3Config):
    from functools import partial

    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns = [partial(make_env, cfg, i) for i in range(cfg.n_envs)]
    return SubprocVecEnv(fns, start_method="spawn") if cfg.vec_env == "subproc" else DummyVecEnv(fns)


# ---------------------------------------------------------------------- training
def latest_checkpoint(out: str | Path) -> Path | None:
    ckpts = sorted((Path(out) / "checkpoints").glob("ckpt_*.zip"))
    return ckpts[-1] if ckpts else None


def _save_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def _checkpoint_callback(cfg: SB3Config, out: Path):
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        """Every ``checkpoint_every`` SB3 steps: ``checkpoints/ckpt_<steps>.zip`` via a temp file + rename."""

        stopped = False

        def _on_training_start(self) -> None:
            self.last = self.num_timesteps

        def stop(self) -> None:
            self.stopped = True

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last >= cfg.checkpoint_every:
                self.save()
            return not self.stopped

        def save(self) -> None:
            self.last = self.num_timesteps
            ckpt = out / "checkpoints" / f"ckpt_{self.num_timesteps:010d}.zip"
            _save_atomic(self.model, ckpt)
            if hasattr(self.model, "replay_buffer"):  # SAC: resuming without it would restart exploration
                self.model.save_replay_buffer(out / "checkpoints" / "replay_buffer.pkl")

    return AtomicCheckpoint()


def train(cfg: SB3Config, out: str | Path, resume: bool = False, verbose: int = 0):
    """Train (or, with ``resume``, continue from the latest checkpoint up to ``cfg.timesteps``). Returns the model."""
    import torch

    torch.set_num_threads(1)
    out = Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    algo = _algo_class(cfg.algo)
    venv = make_vec_env(cfg)
    ckpt = latest_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    if ckpt is not None:
        model = algo.load(ckpt, env=venv, device=cfg.device, tensorboard_log=str(out / "tb"))
        if (out / "checkpoints" / "replay_buffer.pkl").is_file() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(out / "checkpoints" / "replay_buffer.pkl")
    else:
        model = algo("MlpPolicy", venv, seed=cfg.seed, device=cfg.device, tensorboard_log=str(out / "tb"),
                     policy_kwargs={"net_arch": list(cfg.net_arch)}, verbose=verbose, **cfg.algo_kwargs)  # fmt: skip
    (out / "config.yaml").write_text(cfg.to_yaml())
    start_steps = model.num_timesteps
    prev = json.loads((out / "train_summary.json").read_text()) if resume and (out / "train_summary.json").is_file() \
        else {}  # fmt: skip
    cb = _checkpoint_callback(cfg, out)
    t0, c0 = time.perf_counter(), _cpu_s()
    # SIGTERM/SIGINT (e.g. `timeout`, Ctrl-C): stop at the next step, then save a checkpoint and the summary
    in_main = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.signal(sig, lambda *_: cb.stop()) for sig in (signal.SIGTERM, signal.SIGINT)} if in_main \
        else {}  # fmt: skip
    try:
        model.learn(max(cfg.timesteps - start_steps, 0), callback=cb, reset_num_timesteps=ckpt is None,
                    tb_log_name="run")  # fmt: skip
        cb.save()
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
        venv.close()
    _save_atomic(model, out / "model.zip")
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    steps = int(model.num_timesteps)
    summary = {"timesteps": steps, "env_steps": steps * cfg.env_steps_per_step,
               "wall_s": prev.get("wall_s", 0.0) + wall, "cpu_s": prev.get("cpu_s", 0.0) + cpu,
               "sim_s": steps * cfg.env_steps_per_step * g1.CONTROL_DT, "segments": prev.get("segments", 0) + 1,
               "steps_per_s_last": (steps - start_steps) / max(wall, 1e-9), "resumed_from": start_steps,
               "interrupted": cb.stopped}  # fmt: skip
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return model


def _cpu_s() -> float:
    """CPU seconds of this process and its reaped children (spawned SubprocVecEnv workers count once closed)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


# ---------------------------------------------------------------------- evaluation adapter
class SB3Policy:
    """A trained SB3 baseline as an SB3-style policy on *raw* bm env observations (what ``bm-eval`` passes).

    ``predict(obs, state=None, episode_start=None, deterministic=True) -> (env action (29,), state)``; call
    ``reset()`` at episode start. Hierarchical runs query the SB3 model every ``decision_every`` steps and drive
    the expert with the held command, exactly as :class:`SB3TaskEnv` did in training.
    """

    def __init__(self, model, cfg: SB3Config):
        self.model, self.cfg = model, cfg
        self.features = ObservationFeatures(cfg.task, cfg.variant)
        self.expert = None
        if cfg.variant == "hierarchical":
            from bm_envs.experts.locomotion import LocomotionExpert

            self.expert = LocomotionExpert(cfg.expert)
        self.reset()

    def reset(self) -> None:
        self.command = np.zeros(3)
        self._k = 0
        if self.expert is not None:
            self.expert.reset()

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):
            raise ValueError("predict() got an (obs, info) tuple: pass only the observation returned by env.reset()")
        if not isinstance(obs, dict) or "proprio" not in obs:
            raise ValueError("SB3Policy.predict() expects a raw bm env observation dict (unwrapped Dict obs)")
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        if self.expert is None:
            a, _ = self.model.predict(self.features(obs), deterministic=deterministic)
            return (self.cfg.joint_action_scale * np.clip(a, -1, 1)).astype(np.float32), state
        if self._k % self.cfg.decision_every == 0:
            cmd_n = normalize_command(self.command, self.cfg.command_low, self.cfg.command_high)
            a, _ = self.model.predict(self.features(obs, cmd_n), deterministic=deterministic)
            self.command = command_from_action(a, self.cfg.command_low, self.cfg.command_high)
        self._k += 1
        return self.expert.act(obs, self.command), state


def load_sb3_policy(path: str | Path, device: str = "cpu") -> SB3Policy:
    """``path``: a run directory of ``bm-train-sb3`` (its ``model.zip``, else the latest checkpoint) or a ``.zip``
    inside one (``config.yaml`` is looked up next to it or one level up)."""
    path = Path(path)
    if path.is_dir():
        zip_path = path / "model.zip" if (path / "model.zip").is_file() else latest_checkpoint(path)
        if zip_path is None:
            raise FileNotFoundError(f"{path}: no model.zip and no checkpoints/ckpt_*.zip")
    else:
        zip_path = path
    cfg_file = next((d / "config.yaml" for d in (zip_path.parent, zip_path.parent.parent)
                     if (d / "config.yaml").is_file()), None)  # fmt: skip
    if cfg_file is None:
        raise FileNotFoundError(f"no config.yaml next to {zip_path} or one level up")
    import torch

    torch.set_num_threads(1)
    cfg = SB3Config.from_yaml(cfg_file)
    return SB3Policy(_algo_class(cfg.algo).load(zip_path, device=device), cfg)


# ---------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--config",
        default=None,
        help="YAML file or preset name in bm_planner/baselines/sb3_configs/ (default <variant>_<algo>)",
    )
    p.add_argument("--task", choices=sorted(TASKS), default=None)
    p.add_argument("--variant", choices=("hierarchical", "joints"), default=None)
    p.add_argument("--algo", choices=("ppo", "sac"), default=None)
    p.add_argument("--timesteps", type=int, default=None, help="total SB3 steps (with --resume: the new total)")
    p.add_argument("--n-envs", type=int, default=None)
    p.add_argument("--vec-env", choices=("dummy", "subproc"), default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--verbose", type=int, default=0)
    a = p.parse_args(argv)
    cli = {
        k: v
        for k, v in {
            "task": a.task,
            "variant": a.variant,
            "algo": a.algo,
            "timesteps": a.timesteps,
            "n_envs": a.n_envs,
            "vec_env": a.vec_env,
            "seed": a.seed,
        }.items()
        if v is not None
    }
    out = Path(a.out)
    try:
        if a.resume:  # the run's own config; only --timesteps / --n-envs / --vec-env may change
            if not (out / "config.yaml").is_file():
                raise ValueError(f"--resume: {out / 'config.yaml'} not found")
            changed = sorted(k for k in cli if k not in ("timesteps", "n_envs", "vec_env"))
            if changed or a.config:
                raise ValueError(f"--resume uses the run's config.yaml; cannot change {changed or ['--config']}")
            cfg = SB3Config.from_yaml(out / "config.yaml", **cli)
        else:
            # no --config: the preset of the variant and algorithm (sb3_configs/<variant>_<algo>.yaml)
            preset = f"{cli.get('variant', SB3Config.variant)}_{cli.get('algo', SB3Config.algo)}"
            cfg = SB3Config.from_yaml(a.config or preset, **cli)
    except ValueError as e:
        p.error(str(e))
    t0 = time.perf_counter()
    model = train(cfg, out, resume=a.resume, verbose=a.verbose)
    print(f"trained {cfg.task}/{cfg.variant}/{cfg.algo} to {model.num_timesteps} steps in "
          f"{time.perf_counter() - t0:.0f} s; wrote {out / 'model.zip'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
