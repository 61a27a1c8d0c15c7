"""bm_planner: Stage-2 data, the state–action diffusion planner, training, guidance, the agent and evaluation."""

from pathlib import Path

#: The planner checkpoint shipped in this repository (``assets/``; card and training curve in its README).
SHIPPED_PLANNER = Path(__file__).resolve().parents[1] / "assets" / "planner-small-v2"
