"""``bm-bench-env``: env.step throughput of the bm G1 envs against a raw MuJoCo loop on the same model.

For each variant (which env stack, which actions) the benchmark alternates, ``--blocks`` times,

1. an **env block**: ``--steps`` calls of ``env.step`` (the env made by ``gym.make``, so Gymnasium's
   ``OrderEnforcing``/``PassiveEnvChecker`` wrappers are included; no rendering), timing ``env.step`` alone and,
   when a policy drives the env, ``policy.predict`` + ``env.step`` (the sim+expert loop);
2. a **raw block**: the same control sequence replayed with ``mujoco.mj_step(model, data, nstep=10)`` (one call
   per control step = ``g1.DECIMATION`` physics steps) on the env's own compiled model (``env.unwrapped.model``)
   and a fresh ``MjData`` started from the env block's initial integration state (``mj_getState``), setting
   ``data.ctrl`` to the PD target in force at the end of each env step. Without latency or pushes this replays
   the env's physics bit for bit, so both blocks do the same simulation work.

Reported per variant: median steps/s over blocks of the env, of the raw loop and of the full loop; the ratio
``median(env) / median(raw)`` (target ≥ 0.8) and the median of the per-block paired ratios; the real-time factor
``steps/s × CONTROL_DT`` of the sim+expert loop. Episode resets are not timed (episodes run across blocks, with a
3600 s time limit, and reset only when they end: zero actions fall over within ~1.5 s). Example::

    nice -n 10 bm-bench-env --out outputs/bench --blocks 5 --steps 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

import bm_envs  # noqa: F401  (registers the env ids)
from bm_envs import g1_constants as g1
from bm_envs.eval_report import write_atomic
from bm_envs.rollout import to_jsonable

TARGET_RATIO = 0.8
_STATE = mujoco.mjtState.mjSTATE_INTEGRATION

#: name -> (gym.make kwargs beyond the env id, policy: "zero" or "expert")
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "env-zero": ({}, "zero"),
    "env-expert": ({}, "expert"),
    "wrapped-expert": ({"randomize": True, "latency_ms": (0.0, 100.0)}, "expert"),
}


@dataclass
class BenchConfig:
    """Benchmark settings. ``steps``: control steps per block; ``blocks``: alternating env/raw trials."""

    env_id: str = "BM-G1-Joystick-v0"
    steps: int = 1000
    blocks: int = 5
    warmup_steps: int = 50
    variants: tuple[str, ...] = tuple(VARIANTS)
    expert: str = "fastsac"
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.blocks < 1 or self.warmup_steps < 0:
            raise ValueError(f"need steps >= 1, blocks >= 1, warmup_steps >= 0; got {self.steps=}, "
                             f"{self.blocks=}, {self.warmup_steps=}")  # fmt: skip
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(f"unknown or empty variants {list(self.variants)!r}; known: {list(VARIANTS)}")


@dataclass
class Segment:
    """A stretch of one episode: the integration state at its start and the PD target (29,) after each step."""

    state: np.ndarray
    ctrl: list[np.ndarray]


class _Runner:
    """One env + policy; runs timed env blocks and replays them as raw MuJoCo blocks."""

    def __init__(self, cfg: BenchConfig, make_kwargs: dict[str, Any], policy_kind: str):
        self.env = gym.make(cfg.env_id, time_limit_s=3600.0, **make_kwargs)
        self.base = self.env.unwrapped
        self.policy = None
        if policy_kind == "expert":
            from bm_envs.experts.locomotion import ExpertPolicy

            self.policy = ExpertPolicy(cfg.expert)
        self.zero = np.zeros(g1.NUM_JOINTS, dtype=np.float32)
        self.seed = cfg.seed
        self.raw_data = mujoco.MjData(self.base.model)
        self._state_buf = np.empty(mujoco.mj_stateSize(self.base.model, _STATE))
        self._reset()

    def _reset(self) -> None:
        self.obs, _ = self.env.reset(seed=self.seed)
        self.seed += 1
        if self.policy is not None:
            self.policy.reset()

    def _get_state(self) -> np.ndarray:
        mujoco.mj_getState(self.base.model, self.base.data, self._state_buf, _STATE)
        return self._state_buf.copy()

    def env_block(self, steps: int) -> tuple[float, float, list[Segment]]:
        """Run ``steps`` env steps; return (env.step seconds, policy+env.step seconds, segments to replay)."""
        t_env = t_loop = 0.0
        seg = Segment(self._get_state(), [])
        segments = [seg]
        clock = time.perf_counter
        for _ in range(steps):
            t0 = clock()
            action = self.zero if self.policy is None else self.policy.predict(self.obs)[0]
            t1 = clock()
            self.obs, _, terminated, truncated, _ = self.env.step(action)
            t2 = clock()
            t_env += t2 - t1
            t_loop += t2 - t0
            seg.ctrl.append(self.base.data.ctrl.copy())
            if terminated or truncated:
                self._reset()
                seg = Segment(self._get_state(), [])
                segments.append(seg)
        return t_env, t_loop, segments

    def raw_block(self, segments: list[Segment]) -> float:
        """Replay ``segments`` with ``mj_step(m, d, nstep=DECIMATION)``; return the seconds spent stepping."""
        m, d = self.base.model, self.raw_data
        t = 0.0
        clock = time.perf_counter
        for seg in segments:
            mujoco.mj_resetData(m, d)
            mujoco.mj_setState(m, d, seg.state, _STATE)
            t0 = clock()
            for ctrl in seg.ctrl:
                d.ctrl[:] = ctrl
                mujoco.mj_step(m, d, nstep=g1.DECIMATION)
            t += clock() - t0
        return t

    def close(self) -> None:
        self.env.close()


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """Run every variant of ``cfg`` (env and raw blocks interleaved); return the JSON-ready result."""
    load_before = os.getloadavg()[0]
    runners = {name: _Runner(cfg, *VARIANTS[name]) for name in cfg.variants}
    for r in runners.values():  # warm caches and allocations, untimed
        if cfg.warmup_steps:
            r.raw_block(r.env_block(cfg.warmup_steps)[2])
    samples = {name: {"env": [], "raw": [], "loop": []} for name in cfg.variants}
    for _ in range(cfg.blocks):
        for name, r in runners.items():
            t_env, t_loop, segments = r.env_block(cfg.steps)
            t_raw = r.raw_block(segments)
            s = samples[name]
            s["env"].append(cfg.steps / t_env)
            s["loop"].append(cfg.steps / t_loop)
            s["raw"].append(cfg.steps / t_raw)
    for r in runners.values():
        r.close()
    results = {}
    for name, s in samples.items():
        env_med, raw_med, loop_med = _median(s["env"]), _median(s["raw"]), _median(s["loop"])
        make_kwargs, policy = VARIANTS[name]
        results[name] = {
            "make_kwargs": make_kwargs,
            "policy": policy,
            "env_steps_per_s": env_med,
            "raw_steps_per_s": raw_med,
            "loop_steps_per_s": loop_med,
            "ratio": env_med / raw_med,
            "ratio_paired_median": _median([e / r for e, r in zip(s["env"], s["raw"])]),
            "real_time_factor": loop_med * g1.CONTROL_DT,
            "samples": s,
        }
    return {
        "config": asdict(cfg),
        "raw_loop": f"mujoco.mj_step(model, data, nstep={g1.DECIMATION}) per control step, same model, fresh MjData",
        "target_ratio": TARGET_RATIO,
        "meets_target": all(v["ratio"] >= TARGET_RATIO for v in results.values()),
        "machine": {
            "python": platform.python_version(),
            "mujoco": mujoco.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "nice": os.nice(0),
            "loadavg_1m_before_after": (load_before, os.getloadavg()[0]),
        },  # fmt: skip
        "variants": results,
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The benchmark result as a markdown table (one row per variant)."""
    cfg = result["config"]
    lines = [
        f"Env `{cfg['env_id']}`: {cfg['blocks']} alternating blocks × {cfg['steps']} control steps; "
        f"raw loop = {result['raw_loop']}; medians over blocks; target ratio ≥ {result['target_ratio']}.",
        "",
        "| variant | env.step steps/s | raw mj_step steps/s | ratio | paired ratio | policy+env steps/s | RTF |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in result["variants"].items():
        lines.append(
            f"| {name} | {v['env_steps_per_s']:.0f} | {v['raw_steps_per_s']:.0f} | {v['ratio']:.2f} | "
            f"{v['ratio_paired_median']:.2f} | {v['loop_steps_per_s']:.0f} | {v['real_time_factor']:.1f}× |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs/bench", help="output folder (bench.json + bench.md)")
    p.add_argument("--env", default=BenchConfig.env_id, help="env id")
    p.add_argument("--steps", type=int, default=BenchConfig.steps, help="control steps per block")
    p.add_argument("--blocks", type=int, default=BenchConfig.blocks, help="alternating env/raw blocks")
    p.add_argument("--warmup-steps", type=int, default=BenchConfig.warmup_steps)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--expert", default="fastsac", choices=["fastsac", "ppo"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        cfg = BenchConfig(args.env, args.steps, args.blocks, args.warmup_steps, tuple(args.variants), args.expert,
                          args.seed)  # fmt: skip
    except ValueError as e:
        p.error(str(e))
    result = run_benchmark(cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(result)
    write_atomic(out / "bench.json", json.dumps(to_jsonable(result), indent=2))
    write_atomic(out / "bench.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
