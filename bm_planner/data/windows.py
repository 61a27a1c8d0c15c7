"""Windows over recorded episodes, and the running statistics used for normalization.

A window of ``T`` steps starting at step ``g`` is usable when all its steps lie in one episode and none is flagged
(``valid`` False: the steps before a fall). :func:`window_states` builds the states of many windows at once from
per-step arrays, the same way the data set does; :class:`RunningStats` merges per-dimension mean/variance over
shards (Chan et al.'s parallel update), which is how the manifest's normalization statistics are computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bm_envs.rotations import yaw_from_quat
from bm_planner.data.state import StateRepresentation
from bm_planner.data.trajectory import N_HISTORY, WINDOW


def window_starts(valid: np.ndarray, T: int = WINDOW) -> np.ndarray:
    """Start indices ``(n,)`` of all windows of ``T`` steps made only of valid steps, for one episode ``(L,)``."""
    valid = np.asarray(valid, dtype=bool)
    L = len(valid)
    if L < T:
        return np.zeros(0, dtype=np.int64)
    bad = np.concatenate([[0], np.cumsum(~valid)])
    g = np.arange(L - T + 1)
    return g[bad[g + T] - bad[g] == 0].astype(np.int64)


def window_states(rep: StateRepresentation, root_pos_w, root_quat_w, root_lin_vel_w, body_feat, starts,
                  T: int = WINDOW, ref_index: int = N_HISTORY) -> np.ndarray:  # fmt: skip
    """States ``(n, T, D)`` (float64) of the windows starting at global step indices ``starts`` ``(n,)``.

    Per-step inputs (over all steps): ``root_pos_w`` (S, 3), ``root_quat_w`` (S, 4), ``root_lin_vel_w`` (S, 3),
    ``body_feat`` (S, 6K) from :meth:`StateRepresentation.body_features`. Equals ``rep.encode`` of each window.
    """
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(T)
    ref = idx[:, ref_index]
    ref_yaw = yaw_from_quat(np.asarray(root_quat_w[ref], dtype=np.float64))
    root = rep.root_features(root_pos_w[idx], root_quat_w[idx], root_lin_vel_w[idx], root_pos_w[ref], ref_yaw)
    return np.concatenate([root, np.asarray(body_feat[idx], dtype=np.float64)], axis=-1)


@dataclass
class RunningStats:
    """Per-dimension count, mean and sum of squared deviations (M2) of a stream of ``(n, D)`` samples."""

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> RunningStats:
        return cls(0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def of(cls, x: np.ndarray) -> RunningStats:
        x = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
        if len(x) == 0:
            return cls.empty(x.shape[-1])
        mean = x.mean(0)
        return cls(len(x), mean, ((x - mean) ** 2).sum(0))

    def merge(self, other: RunningStats) -> RunningStats:
        if other.count == 0:
            return RunningStats(self.count, self.mean.copy(), self.m2.copy())
        if self.count == 0:
            return RunningStats(other.count, other.mean.copy(), other.m2.copy())
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return RunningStats(n, mean, m2)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1))

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_count": np.array(self.count, dtype=np.int64), f"{prefix}_mean": self.mean,
                f"{prefix}_m2": self.m2}  # fmt: skip

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str) -> RunningStats:
        return cls(int(arrays[f"{prefix}_count"]), np.asarray(arrays[f"{prefix}_mean"], dtype=np.float64),
                   np.asarray(arrays[f"{prefix}_m2"], dtype=np.float64))  # fmt: skip


def episode_window_stats(rep: StateRepresentation, ep: dict, T: int = WINDOW) -> tuple[RunningStats, RunningStats]:
    """Statistics of the states and actions of all usable windows of one episode (dict of per-step arrays).

    Every (window, step) pair counts once, so interior steps weigh more than the episode's ends — exactly the
    distribution a model trained on uniformly sampled windows sees.
    """
    starts = window_starts(ep["valid"], T)
    if len(starts) == 0:
        return RunningStats.empty(rep.dim), RunningStats.empty(ep["action"].shape[-1])
    feat = rep.body_features(ep["root_pos_w"], ep["root_quat_w"], ep["body_pos_w"], ep["body_lin_vel_w"])
    s_stats, a_stats = RunningStats.empty(rep.dim), RunningStats.empty(ep["action"].shape[-1])
    for chunk in np.array_split(starts, max(1, len(starts) // 2048)):
        s = window_states(rep, ep["root_pos_w"], ep["root_quat_w"], ep["root_lin_vel_w"], feat, chunk, T)
        a = ep["action"][chunk[:, None] + np.arange(T)]
        s_stats, a_stats = s_stats.merge(RunningStats.of(s)), a_stats.merge(RunningStats.of(a))
    return s_stats, a_stats
