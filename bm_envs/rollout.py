"""Run one episode of a policy in a bm env and summarize it (shared by the demo, evaluation and benchmarks)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bm_envs import g1_constants as g1

OUTCOME_KEYS = ("success", "fell", "collided", "time_to_goal_s", "min_clearance_m", "vel_error_mean", "goals_reached")


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
    frames: list[np.ndarray] = []
    steps, ret = 0, 0.0
    path = [info["root_xy"].copy()]
    while True:
        action, _ = policy.predict(obs, deterministic=True)
        obs, r, terminated, truncated, info = env.step(action)
        ret += r
        steps += 1
        path.append(info["root_xy"].copy())
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
    )
    return out, frames


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
