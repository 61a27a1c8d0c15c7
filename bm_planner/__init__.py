"""bm_planner: Stage-2 data, the state–action diffusion planner, guidance and evaluation (in progress)."""
