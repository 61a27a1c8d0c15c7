"""``bm-eval-multi``: seeded trials of a robot team on a multi-robot scenario, and the batched-vs-separate planning
benchmark. Writes ``eval.json`` (config, summary, per-trial outcomes) to ``--out``.

Policies: ``expert`` (Stage-1 expert + pure pursuit per robot, other robots avoided as cylinders),
``expert-blind`` (the same, other robots ignored), ``diffusion:PATH`` (a :mod:`bm_planner.multi_agent` team:
``--planner batched|separate``, ``--others planned|constant_velocity|current``). Trial ``i`` resets with seed
``--seed + i``. Example::

    nice -n 10 bm-eval-multi --scenario swap-2 --trials 20 --policy expert --out outputs/eval-multi/swap-2-expert
    nice -n 10 bm-eval-multi --scenario swap-4 --trials 2 --policy diffusion:assets/planner-small-v2
    nice -n 10 bm-eval-multi --bench-planning --robots 2 4 --policy diffusion:assets/planner-small-v2

A trial succeeds for the team when every robot reaches its goal without falling and without touching another
robot or an obstacle (``info["team_success"]``, :class:`~bm_envs.multi.env.MultiG1Env`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from bm_apps.policies import parse_policy
from bm_envs import g1_constants as g1
from bm_envs.multi.env import MultiG1Env
from bm_envs.rollout import to_jsonable

POLICIES = ("expert", "expert-blind", "diffusion:PATH")
#: per-robot outcome keys kept in each trial record
ROBOT_KEYS = ("reached", "fell", "robot_collisions", "obstacle_collisions", "success", "time_to_goal_s", "dist_to_goal")


def make_team(policy: str, agents, planner: str = "batched", others: str = "planned",
              guidance_scale: float | None = None, num_steps: int | None = None, robot_weight: float = 1.0,
              seed: int = 0):  # fmt: skip
    """A team for ``policy`` (see :data:`POLICIES`) driving ``agents``. Diffusion teams use the checkpoint's shipped
    ``agent_config.json``; ``guidance_scale`` / ``num_steps`` override it when given."""
    kind, path = parse_policy(policy, kinds=("expert", "expert-blind", "diffusion"))
    if kind in ("expert", "expert-blind"):
        from bm_envs.multi.policies import ExpertTeam

        return ExpertTeam(agents, avoid_robots=kind == "expert")
    if kind == "diffusion" and path:
        from bm_planner.agent import AgentConfig, _shipped_agent_config
        from bm_planner.multi_agent import load_team

        if planner not in ("batched", "separate"):
            raise ValueError(f"planner must be 'batched' or 'separate', got {planner!r}")
        over = {k: v for k, v in (("guidance_scale", guidance_scale), ("num_steps", num_steps)) if v is not None}
        cfg = AgentConfig.from_dict({**_shipped_agent_config(path, path), **over, "seed": seed, "threads": 1})
        team = load_team(path, agents, batched=planner == "batched", config=cfg, others=others,
                         robot_weight=robot_weight)  # fmt: skip
        team.config = {"policy": policy, "planner": planner, "others": others, "guidance_scale": cfg.guidance_scale,
                       "num_steps": cfg.num_steps, "two_stage": cfg.two_stage, "replan_every": cfg.replan_every,
                       "robot_weight": robot_weight, "seed": seed}  # fmt: skip
        return team
    raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")


def run_trial(env: MultiG1Env, team, seed: int) -> dict[str, Any]:
    """One episode from ``env.reset(seed=seed)``; the team's outcome (final info of every robot)."""
    obs, infos = env.reset(seed=seed)
    team.reset()
    if hasattr(team, "set_obstacles"):
        team.set_obstacles(infos)  # exact mesh obstacles (the rows hold their bounding boxes)
    final = dict(infos)
    steps = 0
    t0 = time.perf_counter()
    while env.agents:
        actions = team.predict(obs, env.agents)
        obs, _, _, _, infos = env.step(actions)
        final.update(infos)
        steps += 1
    wall = time.perf_counter() - t0
    last = max(final.values(), key=lambda i: i["time_s"])  # team counters are freshest in the last step's infos
    out = {
        "seed": seed,
        "team_success": bool(last["team_success"]),
        "reached": sum(bool(i["reached"]) for i in final.values()),
        "falls": int(last["team_falls"]),
        "robot_collisions": int(last["team_robot_collisions"]),
        "obstacle_collisions": int(last["team_obstacle_collisions"]),
        "steps": steps,
        "duration_s": steps * g1.CONTROL_DT,
        "time_to_goal_s": max((i["time_to_goal_s"] or np.inf) for i in final.values()),
        "wall_s": wall,
        "robots": {a: {k: i[k] for k in ROBOT_KEYS} for a, i in final.items()},
    }
    if out["time_to_goal_s"] == np.inf:
        out["time_to_goal_s"] = None
    info = getattr(team, "info", None)
    if info:
        out["plan_calls"] = info["plan_calls"]
        out["plans"] = info["plans"]
        out["plan_time_total_s"] = info["plan_time_total_s"]
        out["plan_time_per_call_s"] = info["plan_time_total_s"] / max(info["plan_calls"], 1)
        out["predict_time_total_s"] = info["predict_time_total_s"]
    return out


def summarize(trials: list[dict]) -> dict[str, Any]:
    n = len(trials)
    s = {
        "trials": n,
        "team_success_rate": sum(t["team_success"] for t in trials) / n,
        "trials_with_robot_collision": sum(t["robot_collisions"] > 0 for t in trials),
        "robot_collisions_total": sum(t["robot_collisions"] for t in trials),
        "trials_with_obstacle_collision": sum(t["obstacle_collisions"] > 0 for t in trials),
        "trials_with_fall": sum(t["falls"] > 0 for t in trials),
        "robots_reached_fraction": sum(t["reached"] for t in trials) / sum(len(t["robots"]) for t in trials),
        "episode_s_mean": statistics.fmean(t["duration_s"] for t in trials),
    }
    if all("plan_calls" in t for t in trials):
        calls = sum(t["plan_calls"] for t in trials)
        s["plan_calls"] = calls
        s["plan_time_per_call_s"] = sum(t["plan_time_total_s"] for t in trials) / max(calls, 1)
        s["plans_per_call"] = sum(t["plans"] for t in trials) / max(calls, 1)
    return s


def bench_planning(path: str, n: int, rounds: int = 10, num_steps: int = 10, guidance_scale: float = 1.0,
                   seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Planning time of one round (every robot replans) for ``n`` robots: a :class:`BatchedTeam` (one
    ``model.sample`` with B = n) against a :class:`SeparateTeam` (n calls with B = 1), same observations, rounds
    interleaved so both see the same machine load. Times are of ``model.sample`` (guidance included) and of the
    whole ``team.predict``."""
    env = MultiG1Env(num_robots=n)
    obs, _ = env.reset(seed=seed)
    teams = {p: make_team(f"diffusion:{path}", env.possible_agents, planner=p, num_steps=num_steps,
                          guidance_scale=guidance_scale, seed=seed) for p in ("batched", "separate")}  # fmt: skip
    times: dict[str, dict[str, list[float]]] = {p: {"sample_s": [], "predict_s": []} for p in teams}
    for r in range(rounds + 1):  # round 0 warms up
        for p, team in teams.items():
            team.reset()
            t0 = time.perf_counter()
            team.predict(obs)
            dt = time.perf_counter() - t0
            if r:
                times[p]["sample_s"].append(team.info["plan_time_s"])
                times[p]["predict_s"].append(dt)
    env.close()
    med = {p: {k: statistics.median(v) for k, v in t.items()} for p, t in times.items()}
    return {
        "robots": n, "rounds": rounds, "num_steps": num_steps, "guidance_scale": guidance_scale,
        "batched_sample_s": med["batched"]["sample_s"], "separate_sample_s": med["separate"]["sample_s"],
        "batched_predict_s": med["batched"]["predict_s"], "separate_predict_s": med["separate"]["predict_s"],
        "speedup_sample": med["separate"]["sample_s"] / med["batched"]["sample_s"],
        "speedup_predict": med["separate"]["predict_s"] / med["batched"]["predict_s"],
    }  # fmt: skip


def _write(path: Path, result: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(to_jsonable(result), indent=2))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenario", default=None, help="multi scenario JSON or preset 'swap-N' (default swap-N for each "
                                                     "--robots)")  # fmt: skip
    ap.add_argument("--robots", type=int, nargs="+", default=[2], help="robot counts (with the swap preset)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="expert", help=f"one of {POLICIES}")
    ap.add_argument("--planner", default="batched", choices=["batched", "separate"])
    ap.add_argument("--others", default="planned", choices=["planned", "constant_velocity", "current"])
    ap.add_argument("--guidance-scale", type=float, default=None, help="default: the checkpoint's agent_config.json")
    ap.add_argument("--num-steps", type=int, default=None, help="default: the checkpoint's agent_config.json")
    ap.add_argument("--robot-weight", type=float, default=1.0)
    ap.add_argument("--time-limit", type=float, default=None, help="episode length override (s)")
    ap.add_argument("--bench-planning", action="store_true", help="time batched vs separate planning instead")
    ap.add_argument("--rounds", type=int, default=10, help="planning rounds for --bench-planning")
    ap.add_argument("--profile", default="off", choices=["off"],
                    help="randomization + latency profile; the multi-robot env has no randomization or latency "
                         "wrappers yet, so only 'off' (recorded in the results)")  # fmt: skip
    ap.add_argument("--out", default="outputs/eval-multi")
    args = ap.parse_args(argv)
    if args.trials < 1:
        ap.error(f"--trials must be >= 1, got {args.trials}")
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from bm_envs.wrappers.profiles import resolve_profile

    result: dict[str, Any] = {"config": vars(args), "profile": resolve_profile(args.profile).to_dict(), "results": []}
    if args.bench_planning:
        try:
            kind, path = parse_policy(args.policy, kinds=("diffusion",))
        except ValueError:
            ap.error("--bench-planning needs --policy diffusion:PATH")
        for n in args.robots:
            r = bench_planning(path, n, args.rounds, args.num_steps or 10,
                               1.0 if args.guidance_scale is None else args.guidance_scale, args.seed)  # fmt: skip
            print(json.dumps(r))
            result["results"].append(r)
    else:
        scenarios = [args.scenario] if args.scenario else [f"swap-{n}" for n in args.robots]
        for sc in scenarios:
            env = MultiG1Env(scenario=sc, time_limit_s=args.time_limit)
            team = make_team(args.policy, env.possible_agents, args.planner, args.others, args.guidance_scale,
                             args.num_steps, args.robot_weight, args.seed)  # fmt: skip
            trials = []
            for i in range(args.trials):
                trials.append(run_trial(env, team, args.seed + i))
                t = trials[-1]
                print(f"{env.scenario.name} trial {i}: team_success={t['team_success']} reached={t['reached']} "
                      f"falls={t['falls']} robot_collisions={t['robot_collisions']} {t['duration_s']:.1f}s "
                      f"(wall {t['wall_s']:.1f}s)", flush=True)  # fmt: skip
            summary = summarize(trials)
            print(json.dumps({"scenario": env.scenario.name, **summary}))
            result["results"].append({"scenario": env.scenario.name, "robots": env.num_robots,
                                      "team": getattr(team, "config", None), "summary": summary,
                                      "trials": trials})  # fmt: skip
            _write(out / "eval.json", result)  # after each scenario: a run cut short keeps what it finished
            env.close()
    _write(out / "eval.json", result)
    print(f"wrote {out / 'eval.json'}")
    return result


if __name__ == "__main__":
    main()
