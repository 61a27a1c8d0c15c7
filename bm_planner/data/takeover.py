"""Expert take-overs from a planner's own states: DAgger for a trajectory model (``bm-collect --takeover``).

A planner trained on expert rollouts sees only expert states; closed loop it drifts into states the data never
showed and falls. This runner rolls out the *planner* (a :class:`~bm_planner.agent.DiffusionAgent` checkpoint) in
the same joystick env, command schedules and randomization profile as ordinary collection, and every
``every_s`` seconds branches the simulation: a second env with the same randomization draw (reset with the same
seed) receives an exact copy of the planner env's state (:meth:`~bm_envs.envs.base.G1BaseEnv.get_sim_state`), and the
Stage-1 expert continues from there for ``continue_s`` seconds, executing its action plus the usual OU noise and
recording its *clean* action as the label. Each branch is stored as one episode::

    steps   0 .. N-1            N              N+1 ...
    states  planner's history | branch state | expert continuation
    labels  (planner's executed actions: history only, never a loss target)  | expert labels

so every window of it has the planner's real history (at its first window) or the expert's recovery from the
planner's state as history, and expert labels for every action and state it is trained on. Branches in which the
expert falls are kept but flagged (``valid`` all False, ``fell`` True): no window is drawn from them, and the
data set records how often the expert could not recover (``bm-dataset-card``).

Gait phase: the expert's 1 s gait clock is not observed. ``phase="match"`` (default) sets it, at each take-over,
to the phase whose expert action is closest to the planner's next action
(:meth:`~bm_envs.experts.locomotion.LocomotionExpert.take_over`); ``"clock"`` uses a clock run since the episode start.

The planner env runs unperturbed by the branches, so an episode depends on ``(seed, episode)`` only, like every
other episode of a data set (given the same checkpoint and agent settings; the checkpoint's sha256 is part of
the collection config).
"""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path

import numpy as np

from bm_envs import g1_constants as g1
from bm_envs.experts.locomotion import GAIT_PERIOD_S
from bm_envs.scene.scenario import parse_scenario
from bm_envs.wrappers import DomainRandomization
from bm_planner.data.commands import kind_at, sample_schedule
from bm_planner.data.rollout import CollectConfig, EpisodeRunner, OUNoise, episode_rngs, start_options
from bm_planner.data.takeover_config import TakeoverConfig
from bm_planner.data.trajectory import N_HISTORY, WINDOW

REC_KEYS = ("root_pos_w", "root_quat_w", "root_lin_vel_w", "root_ang_vel_w", "body_pos_w", "body_lin_vel_w", "proprio",
            "command")  # fmt: skip


def checkpoint_sha256(path: str | Path) -> str:
    """sha256 of a checkpoint's weights (the ``model.safetensors``/``ema.safetensors`` files it loads from)."""
    from bm_planner.training.checkpoint import resolve_checkpoint

    ckpt_dir = resolve_checkpoint(Path(path))
    h = hashlib.sha256()
    files = sorted(p for p in Path(ckpt_dir).iterdir() if p.suffix == ".safetensors")
    if not files:
        raise ValueError(f"{ckpt_dir}: no .safetensors weights to take over from")
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def find_wrapper(env, cls):
    """The first wrapper of type ``cls`` in a gym wrapper stack, or ``None``."""
    while env is not None:
        if isinstance(env, cls):
            return env
        env = getattr(env, "env", None)
    return None


class TakeoverRunner(EpisodeRunner):
    """Rolls out the planner and branches expert continuations (module docstring). ``run(episode)`` returns the
    list of branch episodes (each in :meth:`EpisodeRunner.run`'s format, with
    :data:`~bm_planner.data.storage.OPTIONAL_EPISODE_KEYS` in ``meta``)."""

    def __init__(self, cfg: CollectConfig):
        super().__init__(cfg)
        from bm_planner.agent import DiffusionAgent

        self.tk = TakeoverConfig.from_dict(cfg.takeover)
        sha = checkpoint_sha256(self.tk.policy)
        if self.tk.checkpoint_sha256 is not None and sha != self.tk.checkpoint_sha256:
            raise ValueError(f"{self.tk.policy}: the checkpoint's weights changed since this data set was started "
                             f"(sha256 {sha[:12]}… != {self.tk.checkpoint_sha256[:12]}…)")  # fmt: skip
        if self.base.max_steps // max(1, round(self.tk.every_s / g1.CONTROL_DT)) >= 1000:
            raise ValueError("takeover: at most 999 take-overs per episode (episode_s / every_s)")
        self.agent = DiffusionAgent.from_pretrained(self.tk.policy, dict(self.tk.agent), backend=self.tk.backend)
        self.branch_env = self.make_env()
        self.bbase = self.branch_env.unwrapped
        self.last_stats: dict = {}

    def _record(self, obs, base, action, action_exec) -> dict:
        rec = {k: np.asarray(obs[k], np.float32).copy() for k in REC_KEYS}
        rec["contact"] = self._contact(base)
        rec["action"], rec["action_exec"] = np.asarray(action, np.float32), np.asarray(action_exec, np.float32)
        return rec

    def _branch(self, obs, a_next, history, env_seed: int, rng: np.random.Generator, planner_step: int):
        """Copy the planner env's state into the branch env and let the expert continue from it. Returns
        (records, fell, gap)."""
        cfg, tk = self.cfg, self.tk
        self.branch_env.reset(seed=env_seed)  # the same randomization draw and latency as the planner's env
        bobs = self.bbase.set_sim_state(self.base.get_sim_state())
        pushes0 = self.bbase._push_count
        dr = find_wrapper(self.branch_env, DomainRandomization)
        if dr is not None:  # its own push draws per branch, the next push counted from the take-over
            dr.rng = np.random.default_rng([env_seed, planner_step, 7])
            dr._next_push = self.bbase.time + dr._draw_interval()
        self.expert.reset()
        if tk.phase == "match":
            gap = self.expert.take_over(bobs, bobs["command"], a_next)
        else:
            self.expert.take_over(bobs, bobs["command"])
            phi = 2 * np.pi * g1.CONTROL_DT / GAIT_PERIOD_S * planner_step
            self.expert.state.phase = np.fmod(np.array([phi, phi + np.pi]) + np.pi, 2 * np.pi) - np.pi
            gap = float("nan")
        noise = OUNoise(g1.NUM_JOINTS, cfg.ou_theta, cfg.ou_sigma, g1.CONTROL_DT, rng)
        low, high = self.branch_env.action_space.low, self.branch_env.action_space.high
        recs = list(history)
        fell = False
        for _ in range(max(1, round(tk.continue_s / g1.CONTROL_DT))):
            a = self.expert.act(bobs, bobs["command"])
            a_exec = np.clip(a + noise(), low, high)
            recs.append(self._record(bobs, self.bbase, a, a_exec))
            bobs, _, terminated, truncated, info = self.branch_env.step(a_exec)
            if info["fell"]:
                fell = True
                break
            if terminated or truncated:
                break
        info["pushes_in_branch"] = self.bbase._push_count - pushes0
        return recs, fell, gap, info

    def run(self, episode: int) -> list[dict]:
        cfg, tk = self.cfg, self.tk
        env_seed, cmd_rng, noise_rng = episode_rngs(cfg.seed, episode)
        segments = sample_schedule(cfg.commands, cfg.episode_s, cmd_rng)
        sc = parse_scenario(self._scenario(segments))
        self.base.scenario = self.bbase.scenario = sc
        obs, info = self.env.reset(seed=env_seed, options=start_options(cfg, episode))
        friction = float(info.get("randomization", {}).get("friction", np.nan))
        self.agent.config.seed = int(env_seed % (2**31))
        self.agent.reset()
        every = max(1, round(tk.every_s / g1.CONTROL_DT))
        first = max(N_HISTORY, round(tk.first_s / g1.CONTROL_DT)) + int(noise_rng.integers(every))
        history: deque[dict] = deque(maxlen=N_HISTORY)
        branches: list[tuple[int, list[dict], bool, float, dict]] = []
        low, high = self.env.action_space.low, self.env.action_space.high
        L, done = 0, False
        while not done:
            a, _ = self.agent.predict(obs)
            a = np.clip(a, low, high)
            if len(history) == N_HISTORY and L >= first and (L - first) % every == 0:
                recs, fell, gap, binfo = self._branch(obs, a, history, env_seed, noise_rng, L)
                branches.append((L, recs, fell, gap, binfo))
            history.append(self._record(obs, self.base, a, a))
            obs, _, terminated, truncated, info = self.env.step(a)
            L += 1
            done = terminated or truncated or L >= self.base.max_steps
            if done and not branches and len(history) == N_HISTORY:  # fell before the first take-over: branch here
                recs, fell, gap, binfo = self._branch(obs, a, history, env_seed, noise_rng, L)
                branches.append((L, recs, fell, gap, binfo))
        planner_fell = bool(info["fell"])
        out = []
        for k, (step, recs, fell, gap, binfo) in enumerate(branches):
            ep = {key: np.stack([r[key] for r in recs]) for key in recs[0]}
            n = len(recs)
            ep["valid"] = np.full(n, not fell and n >= WINDOW)
            t = (step - N_HISTORY + np.arange(n)) * g1.CONTROL_DT
            ep["command_kind"] = kind_at(segments, np.maximum(t, 0.0))
            ep["meta"] = {"episode_index": episode * 1000 + k, "episode_seed": env_seed, "length": n, "fell": fell,
                          "action_delay_ms": float(binfo["action_delay_ms"]), "friction": friction,
                          "pushes": int(binfo["pushes_in_branch"]), "takeover_step": step, "takeover_gap": gap,
                          "planner_fell": planner_fell, "planner_length": L}  # fmt: skip
            out.append(ep)
        self.last_stats = {"planner_steps": L, "planner_fell": planner_fell, "branches": len(out),
                           "expert_falls": sum(b[2] for b in branches)}  # fmt: skip
        return out
