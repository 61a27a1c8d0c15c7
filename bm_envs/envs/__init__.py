"""The task environments (one per file): :class:`G1BaseEnv` (MuJoCo G1, shared observation/action/termination)
and the tasks built on it — joystick, waypoint, obstacle. The tracking task lives in :mod:`bm_envs.tracking`.
All are made through ``gym.make("BM-G1-*-v0")`` (registered once, in :mod:`bm_envs`)."""

from bm_envs.envs.base import G1BaseEnv
from bm_envs.envs.joystick import G1JoystickEnv
from bm_envs.envs.obstacle import G1ObstacleEnv
from bm_envs.envs.waypoint import G1WaypointEnv

__all__ = ["G1BaseEnv", "G1JoystickEnv", "G1ObstacleEnv", "G1WaypointEnv"]
