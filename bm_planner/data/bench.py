"""``bm-bench-collect``: collection throughput per worker and 1 → 2 worker scaling, in one run.

For ``w`` in (1, 2): a pool of ``w`` worker processes is started and warmed up (env + expert built), then the
same ``2·shards_per_worker`` one-episode shards (the real :func:`~bm_planner.data.workers.collect_shard`, with domain
randomization, latency, OU noise, recording and window statistics; no disk writes) are timed end to end.

Reported: ``realtime_per_worker`` = simulated seconds / (wall seconds · w), ``scaling`` = throughput(2) /
throughput(1), ``realtime_per_cpu_s`` = simulated seconds per CPU second of the workers (what one worker reaches
on a core of its own, insensitive to other load), and the load average before/after (the machine may be shared; a load above the worker count means
the numbers are contaminated by other processes). Example::

    bm-bench-collect --episode-s 10 --shards-per-worker 3 --json outputs/bench_collect.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bm_envs import g1_constants as g1
from bm_planner.data.rollout import CollectConfig
from bm_planner.data.workers import collect_shard, warm_worker


def timed_shard(config: dict, index: int) -> tuple[float, float, float]:
    """(simulated s, wall s, CPU s of this worker process) of one shard."""
    c0 = time.process_time()
    _, arrays, wall = collect_shard(config, index)
    return int(arrays["offsets"][-1]) * g1.CONTROL_DT, wall, time.process_time() - c0


def bench(workers: int, config: CollectConfig, shards: int) -> dict:
    """Time ``shards`` one-episode shards (indices 0..shards-1) on ``workers`` warmed-up processes."""
    cfg = config.to_dict()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as the collector does
        os.environ.setdefault(var, "1")
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
        pids = set(ex.map(warm_worker, [cfg] * workers))
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        futs = [ex.submit(timed_shard, cfg, i) for i in range(shards)]
        res = [f.result() for f in futs]
        wall = time.perf_counter() - t0
    sim = sum(r[0] for r in res)
    task_wall, task_cpu = sum(r[1] for r in res), sum(r[2] for r in res)
    return {"workers": workers, "processes_warmed": len(pids), "sim_s": sim, "wall_s": wall,
            "throughput_sim_s_per_s": sim / wall, "realtime_per_worker": sim / (wall * workers),
            "realtime_in_task": sim / task_wall, "realtime_per_cpu_s": sim / task_cpu, "load_before": load0, "load_after": os.getloadavg()[0]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episode-s", type=float, default=10.0, help="episode length (s)")
    p.add_argument("--shards-per-worker", type=int, default=3, help="one-episode shards per worker at 2 workers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the result here")
    a = p.parse_args(argv)
    if a.shards_per_worker < 1:
        p.error(f"--shards-per-worker must be >= 1, got {a.shards_per_worker}")
    cfg = CollectConfig(seed=a.seed, episode_s=a.episode_s, episodes_per_shard=1)
    runs = [bench(w, cfg, 2 * a.shards_per_worker) for w in (1, 2)]
    out = {"cpu_count": os.cpu_count(), "episode_s": a.episode_s, "runs": runs,
           "realtime_per_worker_1": runs[0]["realtime_per_worker"],
           "scaling_1_to_2": runs[1]["throughput_sim_s_per_s"] / runs[0]["throughput_sim_s_per_s"],
           "contaminated": any(r["load_before"] > r["workers"] + 0.5 or r["load_after"] > r["workers"] + 0.5
                               for r in runs)}  # fmt: skip
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
