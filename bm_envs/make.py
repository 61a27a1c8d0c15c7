"""Factory behind ``gym.make("BM-G1-*-v0", ...)``: builds a task env and stacks the requested wrappers.

Wrapper kwargs (all off by default):

* ``randomize``: a profile name (``"expert"``, ``"paper"``, ``"off"``; :mod:`bm_envs.wrappers.profiles`), which sets
  the randomization *and* the action latency of that profile (an explicit ``latency_ms`` replaces the latter);
  ``True`` for :class:`~bm_envs.wrappers.RandomizationConfig` defaults (the ``paper`` ranges, no latency), or a
  dict / config of ranges.
* ``latency_ms``: ``(lo, hi)`` in ms (e.g. ``(0, 100)``) or a single value; drawn per episode.
* ``obs_noise``: ``True`` for default scales or a dict of per-term scales.

Any other kwarg goes to the env class (``scenario``, ``time_limit_s``, ``render_mode``, ...).
"""

from __future__ import annotations

import gymnasium as gym

from bm_envs.wrappers import ActionLatency, DomainRandomization, ObservationNoise


def _env_class(task: str):
    if task == "joystick":
        from bm_envs.envs.joystick import G1JoystickEnv as cls
    elif task == "waypoint":
        from bm_envs.envs.waypoint import G1WaypointEnv as cls
    elif task == "obstacle":
        from bm_envs.envs.obstacle import G1ObstacleEnv as cls
    elif task == "tracking":
        from bm_envs.tracking.env import G1TrackingEnv as cls
    else:
        raise ValueError(f"unknown task {task!r}")
    return cls


def make_g1_env(task: str, randomize=False, latency_ms=None, obs_noise=False, **kwargs) -> gym.Env:
    if isinstance(randomize, str):
        from bm_envs.wrappers.profiles import resolve_profile

        profile = resolve_profile(randomize)
        randomize = profile.randomization if profile.randomization is not None else False
        latency_ms = profile.latency_ms if latency_ms is None else latency_ms
    env = _env_class(task)(**kwargs)
    if randomize is not False and randomize is not None:  # {} = defaults, not "off"
        env = DomainRandomization(env, None if randomize is True else randomize)
    if latency_ms is not None:
        env = ActionLatency(env, latency_ms)
    if obs_noise:
        env = ObservationNoise(env, None if obs_noise is True else obs_noise)
    return env
