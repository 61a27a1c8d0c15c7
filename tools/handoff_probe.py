"""Hand-off probe: the Stage-1 expert walks first, then the planner takes over; does the planner keep walking?

Separates "can the planner sustain and steer a gait" from "can it start one from a standstill" (the env resets
standing). For each seed: ``BM-G1-Joystick-v0`` with a constant command, the expert drives for ``--warmup-s`` while
the agent only watches (its history holds the real observations and the executed actions), then the agent drives
for the rest of ``--duration-s``. Reports per seed whether it fell, when, the mean heading-frame velocity (vx, vy)
and the mean yaw rate (rad/s) while the planner drove, as JSON. Seed ``i`` seeds the env reset (start pose noise, randomization) and the agent's sampler.
Example::

    python tools/handoff_probe.py --checkpoint assets/planner-small-v2 --agent '{"guidance_scale": 0}' --seeds 5
"""

from __future__ import annotations

import argparse
import json
import math

import gymnasium as gym
import numpy as np
import torch

import bm_envs  # noqa: F401
from bm_envs import g1_constants as g1
from bm_envs.experts.locomotion import LocomotionExpert
from bm_envs.rotations import yaw_from_quat
from bm_planner.agent import DiffusionAgent


def probe(checkpoint: str, agent: dict, seed: int, command=(0.5, 0.0, 0.0), warmup_s: float = 1.0,
          duration_s: float = 10.0, profile: str = "off", backend: str = "torch") -> dict:  # fmt: skip
    scenario = {"name": "handoff", "env": "BM-G1-Joystick-v0", "time_limit_s": duration_s,
                "start": {"xy": [0.0, 0.0], "yaw": 0.0, "xy_noise": 0.1, "yaw_noise": 0.5},
                "joystick": [{"t": 0.0, "vx": command[0], "vy": command[1], "yaw_rate": command[2]}]}  # fmt: skip
    env = gym.make("BM-G1-Joystick-v0", scenario=scenario, randomize=profile)
    pol = DiffusionAgent.from_pretrained(checkpoint, {"seed": seed, **agent}, backend=backend)
    expert = LocomotionExpert("fastsac")
    expert.reset()
    obs, _ = env.reset(seed=seed)
    warm = round(warmup_s / g1.CONTROL_DT)
    vel, yaws, fell, t = [], [], False, 0
    for t in range(round(duration_s / g1.CONTROL_DT)):
        a_plan, _ = pol.predict(obs)
        if t < warm:  # the expert drives; the agent's history must hold what was executed
            a = expert.act(obs, obs["command"])
            pol._acts[-1] = a.astype(np.float64)
        else:
            a = a_plan
        obs, _, term, trunc, info = env.step(a)
        if t >= warm:
            vel.append(info["root_vel_b"])
            yaws.append(yaw_from_quat(np.asarray(obs["root_quat_w"], dtype=np.float64)))
        if term or trunc:
            fell = bool(info["fell"])
            break
    env.close()
    v = np.mean(vel, axis=0) if vel else np.full(2, math.nan)
    turn = np.unwrap(np.asarray(yaws)) if len(yaws) > 1 else np.zeros(2)
    yaw_rate = float((turn[-1] - turn[0]) / ((len(turn) - 1) * g1.CONTROL_DT)) if len(yaws) > 1 else math.nan
    return {
        "seed": seed,
        "fell": fell,
        "time_s": (t + 1) * g1.CONTROL_DT,
        "planner_vx": float(v[0]),
        "planner_vy": float(v[1]),
        "planner_yaw_rate": yaw_rate,
        "plans": pol.info["plans"],
        "ood": bool(pol.info["ood"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--agent", default="{}", help="AgentConfig overrides as JSON")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--command", type=float, nargs=3, default=(0.5, 0.0, 0.0), metavar=("VX", "VY", "YAW_RATE"))
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--profile", default="off", help="randomization + latency profile (expert, paper, off)")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [probe(a.checkpoint, json.loads(a.agent), s, tuple(a.command), a.warmup_s, a.duration_s, a.profile,
                  a.backend)
            for s in range(a.seeds)]  # fmt: skip
    summary = {"fell": sum(r["fell"] for r in rows), "seeds": len(rows),
               "mean_planner_vx": float(np.nanmean([r["planner_vx"] for r in rows])),
               "mean_time_s": float(np.mean([r["time_s"] for r in rows]))}  # fmt: skip
    print(json.dumps({"config": vars(a), "summary": summary, "trials": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
