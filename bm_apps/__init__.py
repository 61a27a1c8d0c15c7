"""Applications on top of both packages: the command-line tools that put an env (``bm_envs``) and a policy
(``bm_envs`` experts, ``bm_planner`` planners and baselines) together.

Layers: ``bm_envs`` (simulation, tasks, experts) ← ``bm_planner`` (data, model, guidance, agent) ← ``bm_apps``.
A lower layer never imports an upper one (``tests/test_layers.py``).

* :mod:`bm_apps.policies` — the ``kind:path`` policy strings (``expert``, ``diffusion:CKPT``, ``bc:DIR``,
  ``sb3:ZIP``) parsed in one place.
* :mod:`bm_apps.evaluate` — ``bm-eval`` / ``bm-eval-expert``.
* :mod:`bm_apps.multi_evaluate` — ``bm-eval-multi``.
* :mod:`bm_apps.demo` — ``bm-demo``.
"""
