"""On-policy vs off-policy action gap of a planner: does its error grow on its own states?

* off-policy: the Stage-1 expert walks (``BM-G1-Joystick-v0``, the collection command mix, a randomization
  profile); at every control step the planner is asked for its next action on the same observation history, and
  ‖a_planner − a_expert‖ (L2 over the 29 actions, action units) is recorded. The executed actions are the expert's.
* on-policy: from a take-over data set (``bm-collect --policy diffusion:CKPT --takeover expert``): at each take-over
  from the planner's own state, ‖a_planner − a_expert‖ with the expert's gait phase matched to the planner
  (``takeover_gap``; matching picks the closest phase, so this is a lower bound), split by whether the planner fell
  later in that episode and by the time left before its fall.

    python tools/policy_gap.py --checkpoint assets/planner-small-v2 --takeover-data data/v3-dagger1 --episodes 8
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def off_policy_gaps(
    checkpoint: str, episodes: int, episode_s: float, profile: str, agent: dict, seed: int
) -> np.ndarray:
    import gymnasium as gym

    import bm_envs  # noqa: F401
    from bm_envs.experts.locomotion import ExpertPolicy
    from bm_planner.agent import DiffusionAgent
    from bm_planner.data.commands import CommandConfig, sample_schedule

    agent_cfg = {**agent, "replan_every": 1}  # a fresh plan at every step: its first action is "the next action"
    planner = DiffusionAgent.from_pretrained(checkpoint, agent_cfg, backend="onnx")
    expert = ExpertPolicy("fastsac")
    gaps = []
    for ep in range(episodes):
        rng = np.random.default_rng([seed, ep])
        segs = sample_schedule(CommandConfig(), episode_s, rng)
        sc = {"name": "gap", "env": "BM-G1-Joystick-v0", "time_limit_s": episode_s,
              "joystick": [{k: s[k] for k in ("t", "vx", "vy", "yaw_rate")} for s in segs]}  # fmt: skip
        env = gym.make("BM-G1-Joystick-v0", scenario=sc, randomize=profile)
        obs, _ = env.reset(seed=seed * 1000 + ep)
        expert.reset()
        planner.reset()
        while True:
            a_exp, _ = expert.predict(obs)
            a_pl, _ = planner.predict(obs)
            planner._acts[-1] = np.asarray(a_exp, np.float64)  # the history holds what was executed
            gaps.append(float(np.linalg.norm(a_pl - a_exp)))
            obs, _, term, trunc, info = env.step(a_exp)
            if term or trunc:
                break
        env.close()
    return np.asarray(gaps)


def on_policy_gaps(root: str) -> dict:
    from bm_planner.data import storage

    rows = []
    for _, path in storage.list_shards(root).items():
        a = storage.read_shard(path)
        if "takeover_gap" not in a:
            raise SystemExit(f"{root}: not a take-over data set (no takeover_gap)")
        for k in range(len(a["episode_index"])):
            left = (int(a["planner_length"][k]) - int(a["takeover_step"][k])) * 0.02
            rows.append((float(a["takeover_gap"][k]), bool(a["planner_fell"][k]), left, bool(a["fell"][k])))
    g = np.array([r[0] for r in rows])
    fell = np.array([r[1] for r in rows])
    left = np.array([r[2] for r in rows])
    expert_fell = np.array([r[3] for r in rows])

    def stat(mask):
        x = g[mask & np.isfinite(g)]
        return {"n": int(len(x)), "mean": float(x.mean()) if len(x) else None,
                "p90": float(np.percentile(x, 90)) if len(x) else None}  # fmt: skip

    return {"episodes_not_fallen": stat(~fell), "fallen_more_than_3s_before": stat(fell & (left > 3)),
            "fallen_1_to_3s_before": stat(fell & (left > 1) & (left <= 3)), "fallen_last_1s": stat(fell & (left <= 1)),
            "expert_fall_rate_after_takeover": float(expert_fell.mean()) if len(rows) else None,
            "takeovers": len(rows)}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--takeover-data", default=None, help="a take-over data set of this checkpoint (on-policy gaps)")
    p.add_argument("--episodes", type=int, default=8, help="expert episodes for the off-policy gap")
    p.add_argument("--episode-s", type=float, default=10.0)
    p.add_argument("--profile", default="expert")
    p.add_argument("--agent", default="{}", help="AgentConfig overrides (JSON)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    off = off_policy_gaps(a.checkpoint, a.episodes, a.episode_s, a.profile, json.loads(a.agent), a.seed)
    out = {"checkpoint": a.checkpoint, "off_policy": {"n": int(len(off)), "mean": float(off.mean()),
                                                      "p90": float(np.percentile(off, 90))}}  # fmt: skip
    if a.takeover_data:
        out["on_policy"] = on_policy_gaps(a.takeover_data)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
