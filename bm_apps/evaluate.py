"""``bm-eval-expert``: seeded trials of the Stage-1 expert (+ a command law) on an evaluation suite.

Suites (the paper's protocols; scenario files shipped in ``bm_envs/scenarios/``):

* ``walk-perturb`` — ``BM-G1-Joystick-v0``, 15 s at 0.5 m/s forward, a push U(0, 0.5) m/s every 1 s; success = no
  fall in 15 s (the paper's definition; the velocity error is reported beside it).
* ``joystick-4dir`` — forward, backward, turn left, turn right, 3 s each; success = every segment followed
  (:mod:`bm_envs.envs.joystick`: after 1 s of settling, the segment's mean velocity within tolerance of the command).
* ``joystick-8dir`` — forward, backward, left, right, turn left and right in place, forward + left turn,
  forward + right turn, 3 s each; the same success test.
* ``waypoint`` — ``BM-G1-Waypoint-v0``, the 3 m square (``waypoint-square``).
* ``obstacle-forest`` — ``BM-G1-Obstacle-v0``, 7 m through fixed and random obstacles (``forest-small``).
* ``joystick-random`` — ``BM-G1-Joystick-v0`` with its default random command schedule (|v| ≤ 0.8 m/s,
  yaw rate ≤ 0.8 rad/s, new command every 1.5–4 s), 20 s episodes.
* ``--scenario FILE`` — any scenario JSON (format: the ``bm_envs.scene.scenario`` module) or a shipped scenario's name.

Policies (``--policy``): ``expert`` (the Stage-1 expert + command law), ``diffusion:CKPT`` (the planner; its
:class:`~bm_planner.agent.AgentConfig` from ``--agent``, e.g. ``'{"guidance_scale": 0}'`` for unguided),
``bc:DIR`` (the behaviour-cloning baseline), ``sb3:ZIP`` (a Stable-Baselines3 checkpoint trained with
``bm-train-sb3``).

The policy is :class:`~bm_envs.experts.locomotion.ExpertPolicy`; in waypoint/obstacle envs it is driven by
:class:`~bm_envs.experts.command_laws.PurePursuit` (``avoid_obstacles=True`` in ``BM-G1-Obstacle-v0``), in the joystick env
by the env's own command. Randomization and action latency come from a named profile (``--profile``, default
``expert``: the ranges the Stage-1 expert was trained with; ``paper``: BeyondMimic's Stage-1 ranges + 0–100 ms
latency, a stress test; ``off``; see :mod:`bm_envs.wrappers.profiles`); ``--randomization``, ``--latency-ms`` and
``--no-randomize`` override it.
Trial ``i`` resets with seed ``--seed + i``, so a trial's outcome does not depend on ``--workers``.
Trials run in ``--workers`` processes (one env each). Writes ``eval.json`` (config, summary, per-trial outcomes)
and ``summary.md`` to ``--out``. Example::

    nice -n 10 bm-eval-expert --suite joystick-random --trials 50 --workers 2 --out outputs/eval/joystick-random
    nice -n 10 bm-eval --scenario my-forest.json --trials 20 --profile paper
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

from bm_apps.policies import parse_policy  # noqa: E402
from bm_envs import g1_constants as g1  # noqa: E402
from bm_envs.cliargs import json_object_arg  # noqa: E402
from bm_envs.eval_report import _policy_name, fall_histogram, markdown_summary, summarize, write_atomic  # noqa: E402
from bm_envs.rollout import run_episode, to_jsonable  # noqa: E402
from bm_envs.scene.scenario import load_scenario  # noqa: E402
from bm_envs.wrappers.profiles import DEFAULT_PROFILE, PROFILES  # noqa: E402

#: suite -> shipped scenario name (``None``: the env's own default task, here the random joystick schedule)
SUITES: dict[str, str | None] = {"walk-perturb": "walk-perturb", "joystick-4dir": "joystick-4dir",
                                 "joystick-8dir": "joystick-8dir", "waypoint": "waypoint-square",
                                 "obstacle-forest": "forest-small", "joystick-random": None}  # fmt: skip
#: Keys every per-trial outcome has (``None`` where the env does not define the quantity).
TRIAL_KEYS = ("trial", "seed", "success", "fell", "collided", "time_to_goal_s", "min_clearance_m",
              "vel_error_mean", "goals_reached", "steps", "duration_s", "action_delay_ms", "pushes",
              "tracking_error_planar", "tracking_error_yaw", "segments", "fall_time_s", "fall_phase")  # fmt: skip


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate. ``scenario``: path of a scenario JSON or ``None`` for ``suite``; ``profile``: the named
    randomization + latency profile (:mod:`bm_envs.wrappers.profiles`); on top of it ``randomization``: fields of
    :class:`~bm_envs.wrappers.RandomizationConfig` that replace the profile's (``None`` switches a term off),
    ``randomize=False``: no randomization, ``latency_ms``: (lo, hi) ms replacing the profile's latency (``None``:
    the profile's); ``time_limit_s`` overrides the episode length (s); ``pursuit``:
    :class:`~bm_envs.experts.command_laws.PurePursuit` fields for waypoint/obstacle envs."""

    suite: str = "joystick-random"
    scenario: str | None = None
    trials: int = 50
    seed: int = 0
    workers: int = 2
    profile: str = "expert"
    randomize: bool = True
    randomization: dict[str, Any] | None = None
    latency_ms: tuple[float, float] | None = None
    pursuit: dict[str, Any] | None = None
    expert: str = "fastsac"
    policy: str = "expert"  # "expert" | "diffusion:CKPT_OR_RUN_DIR" | "bc:DIR" | "sb3:RUN_DIR_OR_ZIP"
    agent: dict[str, Any] | None = None  # AgentConfig overrides for the diffusion / bc policies
    backend: str = "torch"  # diffusion denoiser: "torch" | "onnx" | "tensorrt"
    time_limit_s: float | None = None
    video_trial: int | None = None
    out: str = "outputs/eval"
    runtime: str = "direct"  # diffusion: "direct" (plan inside predict) | "sync" | "async" (bm_planner.runtime)
    inference_latency_ms: tuple[float, float] | None = None  # simulated plan latency (ActionDelayBuffer)
    supervisor: dict[str, Any] | None = None  # SupervisorConfig fields: hand over to the expert on fall risk
    plans_in_flight: int = 1  # async runtime: plans computed at once (1 = one planner)

    def __post_init__(self):
        if self.scenario is None and self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; known: {sorted(SUITES)} (or give a scenario file)")
        if self.backend not in ("torch", "onnx", "tensorrt"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'tensorrt', got {self.backend!r}")
        if self.trials < 1 or self.workers < 1:
            raise ValueError(f"trials and workers must be >= 1, got {self.trials=}, {self.workers=}")
        self.resolved_profile()  # validates the profile and its overrides
        self.make_law()  # validates the pursuit overrides
        kind, path = parse_policy(self.policy)
        if self.time_limit_s is not None and not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise ValueError(f"time_limit_s must be a positive number, got {self.time_limit_s!r}")
        if self.video_trial is not None and not 0 <= self.video_trial < self.trials:
            raise ValueError(f"video_trial must be in [0, {self.trials}), got {self.video_trial!r}")
        if self.runtime not in ("direct", "sync", "async"):
            raise ValueError(f"runtime must be 'direct', 'sync' or 'async', got {self.runtime!r}")
        if (
            self.runtime != "direct" or self.inference_latency_ms or self.supervisor is not None
        ) and kind != "diffusion":
            raise ValueError("--runtime, --inference-latency-ms and --supervisor apply to diffusion policies only")
        if not (isinstance(self.plans_in_flight, int) and 1 <= self.plans_in_flight <= 16):
            raise ValueError(f"plans_in_flight must be an integer in [1, 16], got {self.plans_in_flight!r}")
        if self.inference_latency_ms is not None and self.runtime == "direct":
            raise ValueError("--inference-latency-ms needs --runtime sync or async")

    def resolved_profile(self):
        """The :class:`~bm_envs.wrappers.Profile` in force: ``profile`` with the overrides on top."""
        from bm_envs.wrappers import resolve_profile

        return resolve_profile(self.profile, self.randomization, self.latency_ms, self.randomize)

    def dr_config(self):
        """The :class:`~bm_envs.wrappers.RandomizationConfig` in force, or ``None`` when randomization is off."""
        return self.resolved_profile().randomization

    def make_law(self):
        """The command law of this suite's env: ``None`` (joystick) or a PurePursuit (avoiding in obstacle envs)."""
        from bm_envs.experts.command_laws import PurePursuit

        if self.pursuit is not None and not isinstance(self.pursuit, dict):
            raise ValueError(f"pursuit overrides must be a dict of PurePursuit fields, got {self.pursuit!r}")
        if self.env_id == "BM-G1-Joystick-v0":
            return None
        kwargs = {"avoid_obstacles": self.env_id == "BM-G1-Obstacle-v0", **(self.pursuit or {})}
        try:
            return PurePursuit(**kwargs)
        except TypeError as e:
            raise ValueError(f"bad pursuit overrides {self.pursuit!r}: {e}") from None

    @property
    def scenario_source(self) -> str | None:
        """The scenario file (or shipped name) in force: ``scenario``, else the suite's; ``None`` = env default."""
        return self.scenario if self.scenario else SUITES[self.suite]

    @property
    def env_id(self) -> str:
        src = self.scenario_source
        return load_scenario(src).env if src else "BM-G1-Joystick-v0"

    @property
    def name(self) -> str:
        return load_scenario(self.scenario).name if self.scenario else self.suite


# ---------------------------------------------------------------------- worker side
_WORKER: dict[str, Any] = {}


def _init_worker(cfg: EvalConfig, policy=None) -> None:
    """Build this process's env and policy (one of each per process; ``policy`` if already built)."""
    import gymnasium as gym

    import bm_envs  # noqa: F401

    env_id = cfg.env_id
    kwargs: dict[str, Any] = cfg.resolved_profile().env_kwargs()
    if cfg.scenario_source:
        kwargs["scenario"] = cfg.scenario_source
    if cfg.time_limit_s is not None:
        kwargs["time_limit_s"] = cfg.time_limit_s
    if cfg.video_trial is not None:
        kwargs["render_mode"] = "rgb_array"  # the renderer is created only when a frame is requested
    _WORKER.update(env=gym.make(env_id, **kwargs), policy=policy if policy is not None else make_policy(cfg), cfg=cfg)


def make_policy(cfg: EvalConfig):
    """The policy under evaluation: the expert (+ command law), the diffusion planner or the BC baseline."""
    from bm_envs.experts.locomotion import ExpertPolicy

    kind, path = parse_policy(cfg.policy)
    if kind == "expert":
        return ExpertPolicy(cfg.expert, law=cfg.make_law())
    if kind == "sb3":
        from bm_planner.baselines.sb3 import load_sb3_policy

        return load_sb3_policy(path)
    import torch

    from bm_planner.agent import AgentConfig, DiffusionAgent

    torch.set_num_threads(1)  # one core per worker process
    if kind == "diffusion":  # --agent overrides the inference settings shipped with the checkpoint
        policy = DiffusionAgent.from_pretrained(path, dict(cfg.agent or {}), backend=cfg.backend)
        if cfg.runtime != "direct":
            from bm_planner.runtime import DelayedPlanRunner

            policy = DelayedPlanRunner(
                policy, cfg.inference_latency_ms or (0.0, 0.0), mode=cfg.runtime, max_in_flight=cfg.plans_in_flight
            )
        if cfg.supervisor is not None:
            from bm_planner.supervisor import SafetySupervisor

            policy = SafetySupervisor(policy, cfg.expert, cfg.supervisor)
        return policy
    from bm_planner.baselines.bc import BCModel
    from bm_planner.data.state import StateRepresentation

    model, norm, layout = BCModel.load(Path(path))
    return DiffusionAgent(
        model,
        norm,
        StateRepresentation(layout["bodies"]),
        AgentConfig.from_dict({**(cfg.agent or {}), "replan_every": 1}),
    )


VIDEO_FPS = 25


def _run_trial(trial: int) -> dict[str, Any]:
    cfg: EvalConfig = _WORKER["cfg"]
    env, policy = _WORKER["env"], _WORKER["policy"]
    seed = cfg.seed + trial
    last: dict[str, Any] = {"steps": 0}
    writer = None
    if trial == cfg.video_trial:  # frames stream to the file (a 40 s episode in memory would be ~1 GB)
        import imageio.v2 as imageio

        video_path = Path(cfg.out) / f"trial{trial:03d}.mp4"
        writer = imageio.get_writer(video_path, fps=VIDEO_FPS, macro_block_size=1)
    every = max(1, round(env.metadata["render_fps"] / VIDEO_FPS))

    def on_step(obs, info):
        last["pushes"] = info.get("pushes", 0)
        last["steps"] += 1
        if "ood_step" not in last and getattr(policy, "info", {}).get("ood"):
            last["ood_step"] = last["steps"] - 1  # the first step that ran on the out-of-distribution fallback
        if writer is not None and last["steps"] % every == 0:
            writer.append_data(env.render())

    if hasattr(policy, "set_seed"):  # a runner's simulated latencies: drawn per trial, reproducibly
        policy.set_seed(seed)
    t0 = time.perf_counter()
    try:
        outcome, _ = run_episode(env, policy, seed=seed, on_step=on_step)
    finally:
        if writer is not None:
            writer.close()
    row = {k: outcome.get(k) for k in TRIAL_KEYS}
    row.update(trial=trial, seed=seed, pushes=last.get("pushes", 0), wall_s=time.perf_counter() - t0)
    row["collided"] = bool(outcome.get("collided", False))
    if hasattr(policy, "info"):  # planner: plan latency and out-of-distribution flag
        row["plan_time_ms"] = 1000.0 * policy.info.get("plan_time_total_s", 0.0) / max(policy.info.get("plans", 0), 1)
        row["ood"] = bool(policy.info.get("ood", False))
        if "history_max_z_episode" in policy.info:  # how far out of the training range the history went (|z|)
            row["history_max_z"] = float(policy.info["history_max_z_episode"])
            row["history_max_z_dim"] = policy.info["history_max_z_dim"]
        if "ood_step" in last:  # when the fallback first took over, how often, and why
            row["ood_time_s"] = last["ood_step"] * g1.CONTROL_DT
            row["ood_plans"] = int(policy.info.get("ood_plans", 0))
            row["ood_reason"] = policy.info.get("ood_reason")
            row["ood_dim"] = policy.info.get("ood_dim")
        for k in ("handovers", "expert_steps", "starved_steps", "stalled_steps"):  # supervisor / runtime
            if k in policy.info:
                row[k] = int(policy.info[k])
        if "handovers" in policy.info:
            row["expert_time_frac"] = policy.info["expert_steps"] / max(policy.info["steps"], 1)
    dr = cfg.dr_config()
    if dr is not None and dr.friction:  # the episode's floor friction draw
        base = env.unwrapped
        row["friction"] = float(base.model.geom_friction[base.idx.floor_geom, 0])
    if writer is not None:
        row["video"] = str(video_path)
    return to_jsonable(row)


# ---------------------------------------------------------------------- main side
def evaluate(cfg: EvalConfig, progress: bool = True) -> dict[str, Any]:
    """Run all trials of ``cfg`` (in ``cfg.workers`` processes when > 1) and write ``eval.json`` + ``summary.md``."""
    from tqdm import tqdm

    name, env_id = cfg.name, cfg.env_id  # validates the scenario file before any worker starts
    # load (and for ONNX, export) the policy once here: a bad one fails now with one error, not in every worker,
    # and before the output folder exists
    policy = make_policy(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.trials, desc=name, disable=not progress, unit="trial")
    rows = []
    if cfg.workers == 1:
        _init_worker(cfg, policy)
        try:
            for i in range(cfg.trials):
                rows.append(_run_trial(i))
                bar.update()
        finally:
            _WORKER.pop("env").close()
    else:
        with mp.get_context("spawn").Pool(min(cfg.workers, cfg.trials), _init_worker, (cfg,)) as pool:
            for row in pool.imap_unordered(_run_trial, range(cfg.trials)):
                rows.append(row)
                bar.update()
    bar.close()
    rows.sort(key=lambda r: r["trial"])
    summary = summarize(rows)
    config = asdict(cfg)
    config["profile_resolved"] = cfg.resolved_profile().to_dict()
    if cfg.policy.startswith("diffusion:"):  # the settings the agent ran with: shipped agent_config.json + --agent
        from bm_planner.agent import AgentConfig, _shipped_agent_config

        path = parse_policy(cfg.policy)[1]
        config["agent_effective"] = asdict(AgentConfig.from_dict({**_shipped_agent_config(path, path),
                                                                  **(cfg.agent or {})}))  # fmt: skip
    result = {"suite": name, "env": env_id, "config": config, "wall_s": time.perf_counter() - t0,
              "summary": summary, "trials": rows}  # fmt: skip
    write_atomic(Path(cfg.out) / "eval.json", json.dumps(to_jsonable(result), indent=2))
    write_atomic(Path(cfg.out) / "summary.md", markdown_summary(name, cfg, summary))
    if any(r.get("fell") for r in rows):
        label = config["profile_resolved"]["label"]
        fall_histogram(rows, Path(cfg.out) / "falls.png", f"{name}: {_policy_name(cfg)}, profile {label}")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--suite", default="joystick-random", choices=sorted(SUITES))
    g.add_argument("--scenario", default=None, help="scenario JSON file (overrides --suite)")
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="trial i uses seed SEED + i")
    p.add_argument("--workers", type=int, default=2, help="processes (one env each)")
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                   help="randomization + action latency profile: expert (the Stage-1 expert's training ranges; "
                        "default), paper (BeyondMimic's Stage-1 ranges + 0-100 ms latency), off")  # fmt: skip
    p.add_argument("--no-randomize", action="store_true", help="no domain randomization (the profile's latency stays)")
    p.add_argument("--latency-ms", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="action latency range per episode (ms), replacing the profile's; 0 0 for none")  # fmt: skip
    p.add_argument("--randomization", default=None, metavar="JSON",
                   help="RandomizationConfig fields replacing the profile's, as JSON or a .json file, e.g. "
                        "'{\"friction\": [0.3, 1.2]}'")  # fmt: skip
    p.add_argument(
        "--pursuit",
        default=None,
        metavar="JSON",
        help="PurePursuit overrides (waypoint/obstacle envs) as JSON or a .json file",
    )
    p.add_argument("--expert", default="fastsac", choices=["fastsac", "ppo"])
    p.add_argument(
        "--policy", default="expert", help="expert | diffusion:CKPT_OR_RUN_DIR | bc:DIR | sb3:RUN_DIR_OR_ZIP"
    )
    p.add_argument(
        "--agent", default=None, metavar="JSON", help="AgentConfig overrides, e.g. '{\"guidance_scale\": 1}'"
    )
    p.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "onnx", "tensorrt"],
        help="denoiser runtime of a diffusion policy (onnx: exported once to the cache, then ONNX Runtime)",
    )
    p.add_argument("--time-limit-s", type=float, default=None, help="override the episode length (s)")
    p.add_argument(
        "--runtime",
        default="direct",
        choices=["direct", "sync", "async"],
        help="diffusion: plan inside each step (direct), or plans arriving --inference-latency-ms late: "
        "the loop waits for each (sync) or runs the previous one, latency-compensated (async)",
    )
    p.add_argument(
        "--inference-latency-ms",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="simulated plan latency drawn per plan (ms, seeded per trial); needs --runtime sync|async",
    )
    p.add_argument(
        "--plans-in-flight",
        type=int,
        default=1,
        metavar="N",
        help="async runtime: plans being computed at once (1 = one planner; more = pipelined requests)",
    )
    p.add_argument(
        "--supervisor",
        nargs="?",
        const="{}",
        default=None,
        metavar="JSON",
        help="diffusion: hand over to the Stage-1 expert on fall risk and back when stable; optional "
        "SupervisorConfig overrides as JSON",
    )
    p.add_argument("--video", action="store_true", help="record trial 0 as an mp4 in --out")
    p.add_argument("--out", default=None, help="output folder (default outputs/eval/<suite>)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    args = p.parse_args(argv)
    try:
        overrides = json_object_arg("--randomization", args.randomization) if args.randomization else None
        pursuit = json_object_arg("--pursuit", args.pursuit) if args.pursuit else None
        cfg = EvalConfig(
            suite=args.suite, scenario=args.scenario, trials=args.trials, seed=args.seed, workers=args.workers,
            profile=args.profile, randomize=not args.no_randomize, randomization=overrides, pursuit=pursuit,
            latency_ms=tuple(args.latency_ms) if args.latency_ms else None, expert=args.expert, time_limit_s=args.time_limit_s,
            policy=args.policy, agent=json_object_arg("--agent", args.agent) if args.agent else None,
            backend=args.backend,
            video_trial=0 if args.video else None, out=args.out or "", runtime=args.runtime,
            inference_latency_ms=tuple(args.inference_latency_ms) if args.inference_latency_ms else None,
            supervisor=json_object_arg("--supervisor", args.supervisor) if args.supervisor is not None else None,
            plans_in_flight=args.plans_in_flight,
        )  # fmt: skip
        name = cfg.name
    except ValueError as e:  # includes ScenarioError (bad or missing scenario file)
        p.error(str(e))
    if not args.out:
        cfg = EvalConfig(**{**asdict(cfg), "out": str(Path("outputs/eval") / name)})
    try:
        result = evaluate(cfg, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, RuntimeError) as e:  # a bad checkpoint, agent setting, ...: one line
        if args.debug:
            raise
        print(f"bm-eval: error: {e}", file=sys.stderr)
        return 2
    print(markdown_summary(result["suite"], cfg, result["summary"]))
    print(f"wrote {Path(cfg.out) / 'eval.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
