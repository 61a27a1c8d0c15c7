"""Classifier guidance: task costs, signed distance fields (and, next, ClassifierGuidance / rolling inference)."""

from bm_planner.guidance.costs import Cost, JoystickCost, ObstacleAvoidanceCost, WaypointCost, relaxed_log_barrier
from bm_planner.guidance.sdf import SignedDistanceField

__all__ = ["Cost", "JoystickCost", "WaypointCost", "ObstacleAvoidanceCost", "SignedDistanceField", "relaxed_log_barrier"]
