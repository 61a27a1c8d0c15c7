"""Multi-robot G1 envs (PettingZoo): N robots sharing one scene, each with its own goals.

* :func:`parallel_env` — a :class:`~bm_envs.multi.env.MultiG1Env` (``pettingzoo.ParallelEnv``);
* :func:`env` — the same as an AEC env (PettingZoo's ``parallel_to_aec`` converter);
* :func:`~bm_envs.multi.scenario.swap_scenario` — the swap scenario (robots crossing to the opposite side).

Needs the ``multi`` extra (``pip install -e .[multi]``: pettingzoo).
"""

from __future__ import annotations

from bm_envs.multi.env import MultiG1Env
from bm_envs.multi.scenario import MultiScenario, load_multi_scenario, parse_multi_scenario, swap_scenario


def parallel_env(**kwargs) -> MultiG1Env:
    """``MultiG1Env(**kwargs)``."""
    return MultiG1Env(**kwargs)


def env(**kwargs):
    """The multi-robot env as a PettingZoo AEC env (agents act in turn; physics advances once all have acted)."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(MultiG1Env(**kwargs))


__all__ = ["MultiG1Env", "MultiScenario", "env", "load_multi_scenario", "parallel_env", "parse_multi_scenario",
           "swap_scenario"]  # fmt: skip
