"""Stage-1 locomotion experts (:mod:`.locomotion`: the holosoma G1 policies behind :class:`ExpertPolicy`) and the
command laws that turn a task into a velocity command for them (:mod:`.command_laws`: pure pursuit)."""

from bm_envs.experts.command_laws import PurePursuit
from bm_envs.experts.locomotion import ExpertPolicy, ExpertState, LocomotionExpert

__all__ = ["ExpertPolicy", "ExpertState", "LocomotionExpert", "PurePursuit"]
