"""Stage-2 data: expert rollouts (``bm-collect``), the Body-Pos state, training windows and the torch data set.

* :mod:`~bm_planner.data.state` — :class:`StateRepresentation` (encode obs → states, decode states → world, mirror)
* :mod:`~bm_planner.data.trajectory` — window constants (N = 4, H = 16, 8 loss actions), masks, :class:`Trajectory`
* :mod:`~bm_planner.data.dataset` — :class:`TrajectoryDataset`; :mod:`~bm_planner.data.normalizer` — :class:`Normalizer`
* :mod:`~bm_planner.data.collector` — :class:`MotionDataCollector` / ``bm-collect`` (local processes or Ray)
* :mod:`~bm_planner.data.rollout`, :mod:`~bm_planner.data.commands`, :mod:`~bm_planner.data.storage` — how episodes
  are produced and stored; :mod:`~bm_planner.data.mirror` — left/right symmetry; ``bm-dataset-card``,
  ``bm-bench-collect``.

Only light modules are imported here; the collector, data set and card load on first use.
"""

from bm_planner.data.state import DEFAULT_BODIES, StateRepresentation
from bm_planner.data.trajectory import (
    ACTION_LOSS_STEPS,
    HORIZON,
    N_HISTORY,
    WINDOW,
    Trajectory,
    action_loss_mask,
    history_mask_actions,  # fmt: skip
    history_mask_states,
)

__all__ = [
                                        "ACTION_LOSS_STEPS",
                                        "DEFAULT_BODIES",
                                        "HORIZON",
                                        "N_HISTORY",
                                        "WINDOW",
                                        "StateRepresentation",
                                        "Trajectory",
                                        "action_loss_mask",
                                        "history_mask_actions",
                                        "history_mask_states",
]  # fmt: skip
