"""Worker entry points of data collection (local processes and Ray tasks alike): one runner per process —
:class:`~bm_planner.data.rollout.EpisodeRunner` (expert episodes) or
:class:`~bm_planner.data.takeover.TakeoverRunner` (expert take-overs from a planner's states) — built once from the
collection config, and :func:`collect_shard`, which rolls out one shard."""

from __future__ import annotations

import json
import time

import numpy as np

from bm_envs import g1_constants as g1
from bm_planner.data.rollout import CollectConfig, EpisodeRunner
from bm_planner.data.takeover import TakeoverRunner
from bm_planner.data.windows import RunningStats, episode_window_stats

_RUNNER: EpisodeRunner | None = None
_RUNNER_KEY: str | None = None


def _runner(config: dict) -> EpisodeRunner:
    global _RUNNER, _RUNNER_KEY
    key = json.dumps(config, sort_keys=True)
    if _RUNNER is None or _RUNNER_KEY != key:
        cfg = CollectConfig.from_dict(config)
        if cfg.takeover is not None:
            _RUNNER = TakeoverRunner(cfg)
        else:
            _RUNNER = EpisodeRunner(cfg)
        _RUNNER_KEY = key
    return _RUNNER


def warm_worker(config: dict, hold_s: float = 0.5) -> int:
    """Build this process's env and expert for ``config`` (then hold briefly so a pool spreads the calls);
    returns the process id."""
    import os

    _runner(config)
    time.sleep(hold_s)
    return os.getpid()


def collect_shard(config: dict, shard_index: int) -> tuple[int, dict[str, np.ndarray], float]:
    """Worker entry point (local processes and Ray tasks alike): roll out the episodes of one shard.

    Shard ``j`` holds episodes ``j·E .. (j+1)·E − 1`` (E = ``episodes_per_shard``). Returns
    ``(shard_index, arrays, wall_s)`` where ``arrays`` is the shard content (see :mod:`bm_planner.data.storage`)
    without its checksum, and ``wall_s`` the rollout's wall time. The env is built once per process.
    """
    from bm_planner.data.storage import pack_shard

    runner = _runner(config)
    t0 = time.perf_counter()
    E = runner.cfg.episodes_per_shard
    episodes = []
    for i in range(E):  # an expert episode, or the take-over branches of one planner episode
        ep = runner.run(shard_index * E + i)
        episodes.extend(ep if isinstance(ep, list) else [ep])
    s_stats, a_stats = RunningStats.empty(runner.rep.dim), RunningStats.empty(g1.NUM_JOINTS)
    for ep in episodes:
        s, a = episode_window_stats(runner.rep, ep)
        s_stats, a_stats = s_stats.merge(s), a_stats.merge(a)
    arrays = pack_shard(shard_index, episodes, s_stats, a_stats, runner.cfg.to_dict())
    return shard_index, arrays, time.perf_counter() - t0
