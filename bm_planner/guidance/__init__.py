"""Classifier guidance: task costs, signed distance fields, ClassifierGuidance and rolling (warm-start) inference."""

from bm_planner.guidance.classifier import ClassifierGuidance, GuidanceConfig
from bm_planner.guidance.costs import (
    Cost,
    JoystickCost,
    MovingObstacleCost,
    ObstacleAvoidanceCost,
    WaypointCost,
    relaxed_log_barrier,
)
from bm_planner.guidance.rolling import RollingGuidanceInference
from bm_planner.guidance.sdf import MovingSpheres, SignedDistanceField

__all__ = ["ClassifierGuidance", "Cost", "GuidanceConfig", "JoystickCost", "MovingObstacleCost", "MovingSpheres",
           "ObstacleAvoidanceCost", "RollingGuidanceInference", "SignedDistanceField", "WaypointCost",
           "relaxed_log_barrier"]  # fmt: skip
