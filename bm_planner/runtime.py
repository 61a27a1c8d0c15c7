"""Deployment runtime: plans that arrive late, executed with latency compensation.

On a robot the plan made from the observation of control step ``t`` is ready only ``d`` steps later (inference
latency). BeyondMimic plans in a thread of its own and keeps executing the previous plan meanwhile. The runners
here wrap a :class:`~bm_planner.agent.DiffusionAgent` behind the same SB3-style ``predict(obs)`` (one call per
50 Hz control step), so evaluation, collection and the hardware loop use them unchanged:

``"async"`` (latency-compensated)
    a new plan is requested every ``replan_every`` steps (when none is in flight); until it is ready the newest
    ready plan keeps running, and a plan made from step ``t_obs``'s observation is executed at step ``t`` from its
    action ``t − t_obs``: a plan that arrives 3 steps late starts with its 4th action. Past the plan's last action
    the last one is held (``info["starved_steps"]``). One plan is in flight at a time (the latency is compute
    time: one planner), so with a latency of ``d`` steps each plan runs from action ``d`` to ``2d − 1``; past the
    model's action horizon (8) the last action is held — at 100 ms (5 steps), 2 of every 5 steps.
    ``max_in_flight > 1`` pipelines requests (a new one every ``replan_every`` steps while others compute: several
    planners, or latency that is transport rather than compute), so each plan runs from action ``d`` for
    ``replan_every`` steps.
``"sync"``
    the control loop waits for each plan: the last action is held for the ``d`` steps of the latency (what a
    blocked loop does on the robot: the motors keep the last target), then the plan runs from its first action.

The latency comes from an :class:`ActionDelayBuffer` (the seed's name) in simulation — each request draws a latency
in ``[lo, hi]`` ms from its own seeded generator, so a run is reproducible whatever the machine's speed — or is the
real one in :class:`ThreadedRunner`, whose planner thread replans as fast as it can while the control loop runs.

Out of distribution (:meth:`DiffusionAgent.out_of_distribution`) a plan is the agent's safe action, as without a
runner; :class:`~bm_planner.supervisor.SafetySupervisor` hands over to the Stage-1 expert instead.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from bm_envs import g1_constants as g1

RUNTIME_MODES = ("sync", "async")


class ActionDelayBuffer:
    """Simulated inference latency: each plan request draws a latency uniformly in ``latency_ms = (lo, hi)`` (ms)
    from a generator seeded with ``seed`` (re-seeded by :meth:`reset`); the plan is ready ``ceil(latency /
    control_dt)`` control steps after the observation it was made from (0 ms: at once)."""

    def __init__(self, latency_ms=(0.0, 0.0), control_dt: float = g1.CONTROL_DT, seed: int = 0):
        lo, hi = (float(x) for x in np.broadcast_to(np.asarray(latency_ms, dtype=np.float64), (2,)))
        if not (math.isfinite(lo) and math.isfinite(hi)) or not 0.0 <= lo <= hi <= 1000.0:
            raise ValueError(f"latency_ms must be 0 <= lo <= hi <= 1000, got {latency_ms!r}")
        if not control_dt > 0:
            raise ValueError(f"control_dt must be > 0, got {control_dt!r}")
        self.latency_ms, self.control_dt, self.seed = (lo, hi), float(control_dt), int(seed)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)

    def delay_steps(self) -> int:
        """Control steps until the next requested plan is ready."""
        lo, hi = self.latency_ms
        ms = lo if hi == lo else float(self._rng.uniform(lo, hi))
        return int(math.ceil(ms / 1000.0 / self.control_dt - 1e-9))


@dataclass
class TimedPlan:
    """Planned actions (n, 29) for control steps ``t_obs, t_obs + 1, ...``; usable from step ``t_ready``."""

    actions: np.ndarray
    t_obs: int
    t_ready: int


def plan_index(plan: TimedPlan, t: int, compensate: bool = True) -> int:
    """Which of ``plan``'s actions step ``t`` executes: ``t − t_obs`` with latency compensation (the time elapsed
    since its observation), else ``t − t_ready`` (from its first action once it is ready)."""
    return t - plan.t_obs if compensate else t - plan.t_ready


class DelayedPlanRunner:
    """A :class:`DiffusionAgent` whose plans arrive late by an :class:`ActionDelayBuffer` (deterministic, for
    simulation); ``mode`` ``"async"`` or ``"sync"`` (module docstring). SB3-style ``predict``; ``reset`` resets the
    agent and re-seeds the delays. ``info``: the agent's, plus ``latency_steps`` (of the last request),
    ``starved_steps`` (steps past a plan's end), ``stalled_steps`` (sync: steps held waiting)."""

    def __init__(self, agent, latency_ms=(0.0, 0.0), mode: str = "async", seed: int = 0, max_in_flight: int = 1):
        if mode not in RUNTIME_MODES:
            raise ValueError(f"mode must be one of {RUNTIME_MODES}, got {mode!r}")
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or not 1 <= max_in_flight <= 16:
            raise ValueError(f"max_in_flight must be an integer in [1, 16], got {max_in_flight!r}")
        if mode == "sync" and max_in_flight != 1:
            raise ValueError("a synchronous loop has one plan in flight (max_in_flight=1)")
        self.agent, self.mode, self.max_in_flight = agent, mode, max_in_flight
        #: ``fallback(obs) -> action`` used while no plan is ready (default: hold the default pose); the safety
        #: supervisor sets it to the expert while it hands control back
        self.fallback = None
        self.delays = ActionDelayBuffer(latency_ms, seed=seed)
        self.n_actions = agent.model.config.action_horizon
        self.reset()

    @property
    def info(self) -> dict:
        return {**self.agent.info, **self._info}

    def reset(self) -> None:
        self.agent.reset()
        self.delays.reset()
        self._t = 0
        self._current: TimedPlan | None = None
        self._pending: list[TimedPlan] = []  # requested, not ready yet (oldest first)
        self._last_request: int | None = None
        self._last_action = np.zeros(g1.NUM_JOINTS, dtype=np.float32)
        self._info = {"latency_steps": 0, "starved_steps": 0, "stalled_steps": 0, "runtime": self.mode,
                      "inference_latency_ms": list(self.delays.latency_ms)}  # fmt: skip

    def set_obstacles(self, obstacles) -> None:
        self.agent.set_obstacles(obstacles)

    def set_seed(self, seed: int) -> None:
        """Seed of the simulated latencies from the next :meth:`reset` on (bm-eval: the trial's seed)."""
        self.delays.seed = int(seed)

    def _request(self, obs: dict) -> None:
        ag = self.agent
        executed = None if self._last_request is None else self._t - self._last_request
        settle = len(ag._queue)  # the agent's settle steps after a reset: hold the default pose first
        if settle:
            acts = np.stack([ag._queue.popleft() for _ in range(settle)])
            self._current = TimedPlan(acts, self._t, self._t)
            self._last_request = self._t + settle - self.agent.config.replan_every  # plan when the hold ends
            return
        acts = ag._plan(obs, n_actions=self.n_actions, executed=executed)
        d = self.delays.delay_steps()
        self._info["latency_steps"] = d
        self._last_request = self._t
        self._pending.append(TimedPlan(acts, self._t, self._t + d))

    def _collect(self, t: int) -> None:
        """The newest plan ready at step ``t`` becomes current (older ready ones are dropped)."""
        ready = [p for p in self._pending if p.t_ready <= t]
        if ready:
            self._current = max(ready, key=lambda p: p.t_obs)
            self._pending = [p for p in self._pending if p.t_ready > t]

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        from bm_planner.agent import _check_obs

        obs = _check_obs(obs)
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        ag, t = self.agent, self._t
        ag._obs.append(obs)
        self._collect(t)
        if len(self._pending) < self.max_in_flight:
            if self.mode == "async":  # every replan_every steps (a settle hold counts as a plan)
                due = self._last_request is None or t - self._last_request >= ag.config.replan_every
            else:
                due = self._current is None or plan_index(self._current, t, False) >= ag.config.replan_every
            if due:
                self._request(obs)
                self._collect(t)
        action = self._action(t, obs)
        ag._acts.append(action.astype(np.float64))
        self._last_action = action
        self._t += 1
        return action, state

    def _action(self, t: int, obs: dict) -> np.ndarray:
        cur = self._current
        if cur is None:  # the first plan is not ready yet: the fallback, else hold the default pose
            self._info["stalled_steps"] += 1
            if self.fallback is not None:
                return np.asarray(self.fallback(obs), dtype=np.float32)
            return np.zeros(g1.NUM_JOINTS, dtype=np.float32)
        if self.mode == "sync" and self._pending:
            self._info["stalled_steps"] += 1
            return self._last_action
        i = plan_index(cur, t, compensate=self.mode == "async")
        if i >= len(cur.actions):
            self._info["starved_steps"] += 1
            return cur.actions[-1]
        return cur.actions[i]


class ThreadedRunner:
    """Asynchronous planning in real time: a planner thread replans from the newest history as soon as the
    previous plan is done (at most every ``min_period_steps`` control steps), the control loop's ``predict`` never
    waits for it and executes the newest plan at the index of the control steps elapsed since its observation
    (latency compensation with the real latency). One ``predict`` call = one control step (the caller keeps the
    50 Hz clock). ``info``: the agent's, plus ``plans``, ``latency_steps`` (of the newest plan), ``starved_steps``.
    Call :meth:`close` (or use it as a context manager) to stop the thread."""

    def __init__(self, agent, min_period_steps: int | None = None):
        self.agent = agent
        self.n_actions = agent.model.config.action_horizon
        self.min_period = int(min_period_steps or agent.config.replan_every)
        self.fallback = None  # as DelayedPlanRunner.fallback
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.agent.reset()
            self._t = 0
            self._current: TimedPlan | None = None
            self._request_t: int | None = None  # step of the observation the thread is planning from
            self._last_request: int | None = None
            self._info = {"latency_steps": 0, "starved_steps": 0, "stalled_steps": 0, "runtime": "threaded",
                          "plan_latency_ms": []}  # fmt: skip
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="bm-planner", daemon=True)
            self._thread.start()

    @property
    def info(self) -> dict:
        return {**self.agent.info, **self._info}

    def set_obstacles(self, obstacles) -> None:
        with self._lock:
            self.agent.set_obstacles(obstacles)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stop and self._request_t is None:
                    self._wake.wait()
                if self._stop:
                    return
                t_obs = self._request_t
                executed = None if self._last_request is None else t_obs - self._last_request
                obs, history = self._request_hist
            t0 = time.perf_counter()
            acts = self.agent._plan(obs, n_actions=self.n_actions, executed=executed, history=history)
            ms = (time.perf_counter() - t0) * 1000
            with self._lock:
                if self._request_t == t_obs:  # not reset meanwhile
                    self._current = TimedPlan(acts, t_obs, self._t)
                    self._info["latency_steps"] = self._t - t_obs
                    self._info["plan_latency_ms"].append(ms)
                    self._last_request = t_obs
                    self._request_t = None

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        from bm_planner.agent import _check_obs

        obs = _check_obs(obs)
        if episode_start is not None and bool(np.any(episode_start)):
            self.reset()
        with self._wake:
            ag, t = self.agent, self._t
            ag._obs.append(obs)
            idle = self._request_t is None
            if idle and (self._last_request is None or t - self._last_request >= self.min_period):
                self._request_t = t
                # the history as of this step (obs up to t, actions up to t − 1): the loop appends while it plans
                self._request_hist = (obs, (list(ag._obs), list(ag._acts)))
                self._wake.notify()
            cur = self._current
            if cur is None:
                self._info["stalled_steps"] += 1
                action = np.zeros(g1.NUM_JOINTS, dtype=np.float32) if self.fallback is None else \
                    np.asarray(self.fallback(obs), dtype=np.float32)  # fmt: skip
            else:
                i = plan_index(cur, t)
                if i >= len(cur.actions):
                    self._info["starved_steps"] += 1
                    i = len(cur.actions) - 1
                action = cur.actions[i]
            ag._acts.append(action.astype(np.float64))
            self._t += 1
        return action, state

    def close(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["ActionDelayBuffer", "DelayedPlanRunner", "ThreadedRunner", "TimedPlan", "plan_index", "RUNTIME_MODES"]
