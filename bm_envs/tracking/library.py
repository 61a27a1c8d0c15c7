"""The motion library: every motion a tracking env or expert accepts, by name or path —
``"fastsac"``/``"ppo"`` (the dance baked into holosoma's tracking experts, :mod:`bm_envs.tracking.expert`), one of
:data:`~bm_envs.tracking.motion.HOLOSOMA_MOTIONS` (shipped in the pinned holosoma wheel), a ``.npz`` path in the
format of :mod:`bm_envs.tracking.motion`, or a :class:`~bm_envs.tracking.motion.Motion`."""

from __future__ import annotations

import os

from bm_envs.tracking.motion import HOLOSOMA_MOTIONS, Motion, MotionError, holosoma_motion_path, resolve_motion_file

#: names of the motions baked into holosoma's tracking experts
EXPERT_MOTIONS = ("fastsac", "ppo")


def resolve_motion(motion: str | os.PathLike | Motion) -> Motion:
    """A :class:`Motion` from a name (:data:`EXPERT_MOTIONS`, :data:`HOLOSOMA_MOTIONS`), a ``.npz`` path, or a
    :class:`Motion` (returned as is); anything else raises :class:`MotionError` naming what is accepted."""
    if isinstance(motion, str) and motion in EXPERT_MOTIONS:
        from bm_envs.tracking.expert import TrackingExpert

        return TrackingExpert(motion).motion
    try:
        return resolve_motion_file(motion)
    except MotionError:
        raise MotionError(
            f"unknown motion {motion!r}: use one of {EXPERT_MOTIONS + HOLOSOMA_MOTIONS}, or a .npz path"
        ) from None


__all__ = ["EXPERT_MOTIONS", "HOLOSOMA_MOTIONS", "holosoma_motion_path", "resolve_motion"]
