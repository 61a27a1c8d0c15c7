"""Run one episode of a policy in a bm env and summarize it (shared by the demo, evaluation and benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bm_envs import g1_constants as g1

OUTCOME_KEYS = ("success", "fell", "collided", "time_to_goal_s", "min_clearance_m", "vel_error_mean", "goals_reached",
                "segments", "tracking_error_planar", "tracking_error_yaw")  # fmt: skip
#: A fall is labelled by the episode phase it came in (:func:`fall_phase`): within ``START_S`` of the reset,
#: within ``AFTER_PUSH_S`` of a push, within ``AFTER_CHANGE_S`` of a command change (joystick) or a new goal.
FALL_PHASES = ("start", "after push", "after command change", "steady")
START_S, AFTER_PUSH_S, AFTER_CHANGE_S = 2.0, 1.0, 1.5


def fall_phase(t_fall: float, t_push: float | None, t_change: float | None) -> str:
    """The phase of an episode a fall at ``t_fall`` s happened in, given the time of the last push and of the last
    command change / goal switch before it (``None``: none yet). The first matching label of :data:`FALL_PHASES`."""
    if t_fall < START_S:
        return "start"
    if t_push is not None and t_fall - t_push <= AFTER_PUSH_S:
        return "after push"
    if t_change is not None and t_fall - t_change <= AFTER_CHANGE_S:
        return "after command change"
    return "steady"


def run_episode(
    env,
    policy,
    seed: int,
    render_every: int = 0,
    on_step: Callable[[dict, dict], None] | None = None,
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Roll ``policy`` (SB3-style ``predict``) in ``env`` from ``reset(seed=seed)`` until the episode ends.

    Returns (outcome dict, frames). ``render_every = k > 0`` renders every k-th step (needs
    ``render_mode="rgb_array"``).
    """
    obs, info = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    if "obstacles" in info and hasattr(policy, "set_obstacles"):
        policy.set_obstacles(info["obstacles"])  # the exact shapes of mesh obstacles (rows hold their boxes)
    frames: list[np.ndarray] = []
    steps, ret = 0, 0.0
    path = [info["root_xy"].copy()]
    pushes, t_push, t_change = info.get("pushes", 0), None, None
    task = _task_signal(obs)
    while True:
        action, _ = policy.predict(obs, deterministic=True)
        obs, r, terminated, truncated, info = env.step(action)
        ret += r
        steps += 1
        path.append(info["root_xy"].copy())
        t = steps * g1.CONTROL_DT
        if info.get("pushes", 0) != pushes:
            pushes, t_push = info.get("pushes", 0), t
        new_task = _task_signal(obs)
        if not np.array_equal(new_task, task):
            task, t_change = new_task, t
        if on_step is not None:
            on_step(obs, info)
        if render_every and steps % render_every == 0:
            frames.append(env.render())
        if terminated or truncated:
            break
    out = {k: info.get(k) for k in OUTCOME_KEYS if k in info}
    out.update(
        seed=seed,
        steps=steps,
        duration_s=steps * g1.CONTROL_DT,
        ret=float(ret),
        fell=bool(info["fell"]),
        success=bool(info.get("success", False)),
        action_delay_ms=info.get("action_delay_ms", 0.0),
        distance_walked_m=float(np.sum(np.linalg.norm(np.diff(np.array(path), axis=0), axis=1))),
        fall_time_s=steps * g1.CONTROL_DT if info["fell"] else None,
        fall_phase=fall_phase(steps * g1.CONTROL_DT, t_push, t_change) if info["fell"] else None,
    )
    return out, frames


def _task_signal(obs: dict) -> np.ndarray:
    """What a command change / goal switch changes: the joystick command, else the goal index (empty if none)."""
    if "command" in obs:
        return np.asarray(obs["command"])
    return np.asarray(obs.get("goal_index", ()))


def to_jsonable(x: Any) -> Any:
    """Numpy scalars/arrays → Python types for ``json.dump``."""
    if isinstance(x, dict):
        return {k: to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x
