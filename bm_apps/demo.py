"""``bm-demo``: a policy steering the G1 through ``BM-G1-Waypoint-v0``; writes a video and a metrics JSON.

The default policy is the shipped diffusion planner (``bm_planner.SHIPPED_PLANNER`` with its ``agent_config.json``:
the pure-pursuit velocity command it is conditioned on plus waypoint-cost guidance, ONNX Runtime backend);
``--policy expert`` drives the Stage-1 locomotion expert with the same pure-pursuit law (the baseline the planner
must beat). Example::

    MUJOCO_GL=egl bm-demo --out outputs/demo --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import imageio.v2 as imageio  # noqa: E402
from tqdm import tqdm  # noqa: E402

import bm_envs  # noqa: E402,F401
from bm_envs.experts.command_laws import PurePursuit  # noqa: E402
from bm_envs.experts.locomotion import ExpertPolicy  # noqa: E402
from bm_envs.rollout import run_episode, to_jsonable  # noqa: E402
from bm_envs.wrappers.profiles import DEFAULT_PROFILE, PROFILES, resolve_profile  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs/demo", help="output folder (video + metrics.json)")
    p.add_argument("--scenario", default=None, help="scenario JSON (default: the built-in waypoint square)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--policy",
        default="planner",
        choices=["planner", "expert"],
        help="the shipped diffusion planner (default) or the Stage-1 expert + pure pursuit",
    )
    p.add_argument("--checkpoint", default=None, help="planner checkpoint or run directory (default: the shipped one)")
    p.add_argument("--backend", default="onnx", choices=["torch", "onnx"], help="planner denoiser backend")
    p.add_argument("--expert", default="fastsac", choices=["fastsac", "ppo"])
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                   help="randomization + action latency profile (default expert: the Stage-1 expert's training "
                        "ranges; paper: BeyondMimic's Stage-1 ranges + 0-100 ms; off)")  # fmt: skip
    p.add_argument(
        "--latency-ms",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="action latency range (ms), replacing the profile's",
    )
    p.add_argument("--fps", type=int, default=25, help="video frame rate (sim time is real time)")
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:  # bad checkpoint, scenario, setting: one line, rc 2
        if args.debug:
            raise
        print(f"bm-demo: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    out = Path(args.out)
    profile = resolve_profile(args.profile, latency_ms=tuple(args.latency_ms) if args.latency_ms else None)
    env = gym.make(
        "BM-G1-Waypoint-v0",
        scenario=args.scenario,
        render_mode=None if args.no_video else "rgb_array",
        **profile.env_kwargs(),
    )
    if args.policy == "planner":
        import torch

        from bm_planner import SHIPPED_PLANNER
        from bm_planner.agent import DiffusionAgent

        torch.set_num_threads(1)
        ckpt = args.checkpoint or str(SHIPPED_PLANNER)
        policy = DiffusionAgent.from_pretrained(ckpt, {"seed": args.seed}, backend=args.backend)
        name = f"diffusion:{ckpt} ({args.backend})"
    else:
        policy = ExpertPolicy(args.expert, law=PurePursuit())
        name = f"expert:{args.expert}+pure_pursuit"
    out.mkdir(parents=True, exist_ok=True)  # only once the policy and scenario loaded
    t0 = time.perf_counter()
    every = 0 if args.no_video else max(1, round(env.metadata["render_fps"] / args.fps))
    bar = tqdm(total=env.unwrapped.max_steps, desc="bm-demo", unit="step", disable=args.no_progress, mininterval=1.0,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}{postfix}]")  # fmt: skip
    n_goals = len(env.unwrapped.scenario.waypoints)

    def on_step(obs, info):
        bar.update()
        if bar.n % 25 == 0:  # twice per simulated second
            post = {"sim": f"{info['time_s']:.1f}s", "goals": f"{info.get('goals_reached', 0)}/{n_goals}"}
            if getattr(policy, "info", None) and policy.info.get("plans"):
                post["plan"] = f"{1000 * policy.info['plan_time_total_s'] / policy.info['plans']:.0f}ms"
            bar.set_postfix(post, refresh=False)

    try:
        outcome, frames = run_episode(env, policy, seed=args.seed, render_every=every, on_step=on_step)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    env.close()
    metrics = {
        "env": "BM-G1-Waypoint-v0",
        "scenario": env.unwrapped.scenario.name,
        "policy": name,
        "profile": profile.to_dict(),
        "wall_time_s": wall,
        **outcome,
    }
    if frames:
        video = out / "demo.mp4"
        imageio.mimsave(video, frames, fps=args.fps, macro_block_size=1)
        metrics["video"] = str(video)
    (out / "metrics.json").write_text(json.dumps(to_jsonable(metrics), indent=2))
    print(json.dumps(to_jsonable(metrics), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
