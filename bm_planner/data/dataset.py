"""``TrajectoryDataset``: training windows (states, actions) over a ``bm-collect`` data set, as a torch Dataset.

Items are dicts of float32 tensors ``{"states": (21, D), "actions": (21, 29)}`` (layout and timing in
:mod:`bm_planner.data.trajectory` and :mod:`bm_planner.data.state`), normalized by ``dataset.normalizer`` when
``normalize=True``. A window never crosses an episode boundary and never contains a flagged step (the steps
before a fall). Every usable window start is one item.

Split: each episode is in ``val`` with probability ``val_fraction``, decided by a hash of ``(seed, episode
index)`` — deterministic, and stable when the data set grows (if that leaves ``val`` empty while
``val_fraction > 0``, the episode with the smallest hash goes to ``val``).

Normalization statistics: the manifest's (the merge of the per-shard window statistics of the shards that pass
verification, all splits), when the data set's body set is the manifest's; otherwise computed over this split's
windows (then pass ``normalizer=train.normalizer`` to the val split). They are always symmetrized — the statistics
of the 50/50 mixture of the data and its mirror image — so the normalizer is the same for every split and every
``mirror_prob``, and a mirrored window is as well normalized as an original one. ``normalizer=`` overrides it.

Mirror augmentation: with probability ``mirror_prob`` an item is replaced by its left/right mirror image
(:meth:`StateRepresentation.mirror_states`, :func:`bm_planner.data.mirror.mirror_actions`); random draws use
``torch``'s generator, so DataLoader workers are seeded the usual torch way.

History actions (``history_actions``): ``"label"`` gives the expert's clean actions at every position;
``"executed"`` gives the actions the robot executed (label + the collection's OU noise) at the N history positions
and the clean labels for the future. Conditioned on clean labels, a planner learns to extrapolate its own history
actions and, closed loop, amplifies its own errors (copycat feedback); conditioned on executed (noisy) actions it
must read the state history to recover the clean action, the DART-style remedy.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from bm_envs import g1_constants as g1
from bm_planner.data import storage
from bm_planner.data.mirror import mirror_actions
from bm_planner.data.normalizer import Normalizer, symmetrize
from bm_planner.data.state import StateRepresentation
from bm_planner.data.trajectory import N_HISTORY, WINDOW
from bm_planner.data.windows import RunningStats, window_starts, window_states

SPLITS = ("train", "val")


def val_episodes(episodes, val_fraction: float, seed: int) -> set[int]:
    """Episode indices of the validation split (see the module docstring)."""
    eps = sorted(int(e) for e in episodes)
    u = {e: float(np.random.default_rng([int(seed), e, 0x5EED]).random()) for e in eps}
    val = {e for e in eps if u[e] < val_fraction}
    if not val and val_fraction > 0 and len(eps) >= 2:
        val = {min(eps, key=u.get)}
    return val


HISTORY_ACTIONS = ("label", "executed")


class TrajectoryDataset(Dataset):
    """Windows of a data set folder ``root`` (see the module docstring).

    Attributes: ``rep`` (:class:`StateRepresentation`), ``normalizer`` (:class:`Normalizer`), ``manifest``,
    ``episodes`` (episode indices of this split), ``state_dim``, ``action_dim``.
    """

    def __init__(self, root: str | Path, split: str = "train", normalize: bool = True, mirror_prob: float = 0.0,
                 val_fraction: float = 0.05, seed: int = 0, bodies=None, normalizer: Normalizer | None = None,
                 history_actions: str = "label"):  # fmt: skip
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not (0.0 <= mirror_prob <= 1.0):
            raise ValueError(f"mirror_prob must be in [0, 1], got {mirror_prob!r}")
        if history_actions not in HISTORY_ACTIONS:
            raise ValueError(f"history_actions must be one of {HISTORY_ACTIONS}, got {history_actions!r}")
        self.history_actions = history_actions
        if not (0.0 <= val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.root, self.split, self.normalize, self.mirror_prob = Path(root), split, normalize, float(mirror_prob)
        self.manifest = m = storage.load_manifest(self.root)
        if m["robot_model"]["sha256"] != storage.mjcf_hash()["sha256"]:
            warnings.warn(f"{self.root}: collected with a different robot MJCF than the installed one", stacklevel=2)
        self.rep = StateRepresentation(m["state"]["bodies"] if bodies is None else bodies)
        self.state_dim, self.action_dim = self.rep.dim, g1.NUM_JOINTS
        E = m["config"]["episodes_per_shard"]
        listed = [s["index"] for s in m["shards"]]
        val = val_episodes([i * E + k for i in listed for k in range(E)], val_fraction, seed)
        self._load(listed, val)
        if listed and len(self.skipped) == len(listed):
            first = next(iter(self.skipped.items()))
            raise ValueError(f"{self.root}: no usable data: all {len(listed)} shards are corrupt or missing (e.g. "
                             f"{first[1]}); collect again with the same bm-collect command")  # fmt: skip
        if normalizer is not None and (normalizer.state_dim, normalizer.action_dim) != (
            self.state_dim,
            self.action_dim,
        ):
            raise ValueError(f"normalizer is for dims {(normalizer.state_dim, normalizer.action_dim)}, this data set "
                             f"has {(self.state_dim, self.action_dim)}")  # fmt: skip
        self.normalizer = normalizer or self._build_normalizer(m["state"]["bodies"] == list(self.rep.bodies))

    # ------------------------------------------------------------------ loading
    def _load(self, listed: list[int], val: set[int]) -> None:
        keep = (lambda e: e in val) if self.split == "val" else (lambda e: e not in val)
        cols = {k: [] for k in ("root_pos_w", "root_quat_w", "root_lin_vel_w", "feat", "action", "action_exec",
                                "command")}  # fmt: skip
        starts, win_ep, win_local, episodes, shard_stats = [], [], [], [], []
        self.skipped: dict[str, str] = {}
        offset = 0
        for i in listed:
            path = self.root / storage.shard_name(i)
            try:
                arrays = storage.read_shard(path)
            except (storage.CorruptShardError, FileNotFoundError) as e:
                self.skipped[path.name] = str(e)
                warnings.warn(f"skipping corrupt or missing shard {e}", storage.CorruptShardWarning, stacklevel=3)
                continue
            shard_stats.append({k: arrays[k] for k in storage.STATS_KEYS})  # not the whole shard: memory
            takeover = "takeover_step" in arrays  # branches of planner episode e // 1000: split with their episode
            for ep in storage.split_episodes(arrays):
                e = int(ep["meta"]["episode_index"])
                if not keep(e // 1000 if takeover else e):
                    continue
                s = window_starts(ep["valid"], WINDOW)
                episodes.append(e)
                starts.append(s + offset)
                win_ep.append(np.full(len(s), e, dtype=np.int64))
                win_local.append(s)
                for k in ("root_pos_w", "root_quat_w", "root_lin_vel_w", "action", "command"):
                    cols[k].append(ep[k])
                if self.history_actions == "executed":
                    cols["action_exec"].append(ep["action_exec"])
                feat = self.rep.body_features(
                    ep["root_pos_w"], ep["root_quat_w"], ep["body_pos_w"], ep["body_lin_vel_w"]
                )
                cols["feat"].append(feat.astype(np.float32))
                offset += len(ep["valid"])
        cat = lambda xs, shape: np.concatenate(xs) if xs else np.zeros((0, *shape), np.float32)
        self._root_pos = cat(cols["root_pos_w"], (3,))
        self._root_quat = cat(cols["root_quat_w"], (4,))
        self._root_vel = cat(cols["root_lin_vel_w"], (3,))
        self._feat = cat(cols["feat"], (6 * self.rep.K,))
        self._actions = cat(cols["action"], (g1.NUM_JOINTS,))
        self._commands = cat(cols["command"], (3,)).astype(np.float32)
        self._actions_exec = cat(cols["action_exec"], (g1.NUM_JOINTS,)) if self.history_actions == "executed" else None
        self._starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self._win_episode = np.concatenate(win_ep) if win_ep else np.zeros(0, np.int64)
        self._win_local = np.concatenate(win_local) if win_local else np.zeros(0, np.int64)
        self.episodes = episodes
        self._shard_arrays_stats = shard_stats

    def _build_normalizer(self, manifest_bodies: bool) -> Normalizer:
        if manifest_bodies and self._shard_arrays_stats:
            s_st = a_st = None
            for a in self._shard_arrays_stats:
                s, ac = RunningStats.from_arrays(a, "stats_states"), RunningStats.from_arrays(a, "stats_actions")
                s_st, a_st = (s, ac) if s_st is None else (s_st.merge(s), a_st.merge(ac))
        else:
            s_st, a_st = RunningStats.empty(self.state_dim), RunningStats.empty(self.action_dim)
            for chunk in np.array_split(np.arange(len(self)), max(1, len(self) // 4096)):
                s, a = self._raw(chunk)
                s_st, a_st = s_st.merge(RunningStats.of(s)), a_st.merge(RunningStats.of(a))
        # always symmetrized (see the module docstring)
        s_mean, s_std = symmetrize(s_st.mean, s_st.std, self.rep.mirror_perm, self.rep.mirror_sign)
        a_mean, a_std = symmetrize(a_st.mean, a_st.std, g1.MIRROR_PERM, g1.MIRROR_SIGN)
        return Normalizer(s_mean, s_std, a_mean, a_std)

    @property
    def state_rep(self) -> StateRepresentation:
        """Alias of ``rep``."""
        return self.rep

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self._starts)

    def window_info(self, i: int) -> tuple[int, int]:
        """(episode index, step of the episode where the window starts) of item ``i``."""
        return int(self._win_episode[i]), int(self._win_local[i])

    def _raw(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Un-normalized, un-mirrored states ``(n, T, D)`` and actions ``(n, T, 29)`` (float64/float32)."""
        g = self._starts[np.asarray(idx, dtype=np.int64)]
        s = window_states(self.rep, self._root_pos, self._root_quat, self._root_vel, self._feat, g, WINDOW)
        a = self._actions[g[:, None] + np.arange(WINDOW)]
        if self._actions_exec is not None:  # history actions = what the robot executed (label + OU noise)
            a[:, :N_HISTORY] = self._actions_exec[g[:, None] + np.arange(N_HISTORY)]
        return s, a

    def _items(self, idx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for a data set of {len(self)} windows")
        idx = idx % max(len(self), 1)
        s, a = self._raw(idx)
        s, a = torch.from_numpy(s.astype(np.float32)), torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        cmd = torch.from_numpy(self._commands[self._starts[idx] + N_HISTORY])  # the command in force at t0
        if self.mirror_prob > 0:
            flip = torch.rand(len(idx)) < self.mirror_prob
            if flip.any():
                s[flip], a[flip] = self.rep.mirror_states(s[flip]), mirror_actions(a[flip])
                cmd[flip] = cmd[flip] * torch.tensor([1.0, -1.0, -1.0])  # (vx, vy, yaw rate) mirrored
        if self.normalize:
            s, a = self.normalizer.normalize_states(s), self.normalizer.normalize_actions(a)
        return s, a, cmd

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """``{"states": (T, D), "actions": (T, 29), "command": (3,)}``: the window (normalized unless
        ``normalize=False``) and the expert's velocity command at the current step t0 (vx, vy m/s, yaw rate rad/s)."""
        s, a, c = self._items([i])
        return {"states": s[0], "actions": a[0], "command": c[0]}

    def __getitems__(self, indices) -> list[dict[str, torch.Tensor]]:
        """Batched fetch used by ``DataLoader`` (one vectorized window computation per batch)."""
        s, a, c = self._items(indices)
        return [{"states": s[j], "actions": a[j], "command": c[j]} for j in range(len(s))]


class ConcatTrajectoryDataset(ConcatDataset):
    """Several data sets as one training set (e.g. expert rollouts + expert take-overs from planner states, the
    DAgger aggregate). Every folder must have the same state layout; all are normalized by one normalizer:
    ``normalizer`` when given, else the first folder's. Keyword arguments go to each :class:`TrajectoryDataset`."""

    def __init__(self, roots, normalizer: Normalizer | None = None, split: str = "train", **kwargs):
        kwargs["split"] = split
        roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
        if not roots:
            raise ValueError("no data set folders given")
        first = TrajectoryDataset(roots[0], normalizer=normalizer, **kwargs)
        parts = [first] + [TrajectoryDataset(r, normalizer=first.normalizer, **kwargs) for r in roots[1:]]
        for r, d in zip(roots[1:], parts[1:]):
            if list(d.rep.bodies) != list(first.rep.bodies):
                raise ValueError(f"{r}: state layout {list(d.rep.bodies)} differs from {roots[0]}'s "
                                 f"{list(first.rep.bodies)}")  # fmt: skip
        if split == "train" and sum(len(d) for d in parts) == 0:
            raise ValueError(f"no usable data: {roots} hold no training window (episodes shorter than a window, or "
                             f"every step flagged)")  # fmt: skip
        super().__init__(parts)
        self.parts, self.rep, self.normalizer = parts, first.rep, first.normalizer
        self.state_dim, self.action_dim = first.state_dim, first.action_dim

    @property
    def state_rep(self) -> StateRepresentation:
        return self.rep

    def __getitems__(self, indices) -> list[dict[str, torch.Tensor]]:
        """Batched fetch (``ConcatDataset`` has none): one vectorized call per part, results in ``indices`` order."""
        import bisect

        idx = [int(i) for i in indices]
        by_part: dict[int, list[tuple[int, int]]] = {}
        for pos, i in enumerate(idx):
            if i < 0:
                i += len(self)
            d = bisect.bisect_right(self.cumulative_sizes, i)
            local = i - (self.cumulative_sizes[d - 1] if d > 0 else 0)
            by_part.setdefault(d, []).append((pos, local))
        out: list = [None] * len(idx)
        for d, items in by_part.items():
            for (pos, _), item in zip(items, self.parts[d].__getitems__([loc for _, loc in items])):
                out[pos] = item
        return out
