"""BeyondMimic Stage 1, motion tracking: the motion format and library (:mod:`.motion`), the tracking env
(:mod:`.env`, ``BM-G1-Tracking-v0``), the holosoma tracking expert (:mod:`.expert`) and PPO training of a tracking
policy (:mod:`.train`, ``bm-train-tracking``). Import the submodules; this package imports nothing heavy."""
