"""bm_envs: Gymnasium/MuJoCo environments for the Unitree G1 (29 DoF).

Importing the package registers:

* ``BM-G1-Joystick-v0`` — follow a velocity command (:mod:`bm_envs.envs.joystick`)
* ``BM-G1-Waypoint-v0`` — reach planar goals in order (:mod:`bm_envs.envs.waypoint`)
* ``BM-G1-Obstacle-v0`` — reach goals among obstacles (:mod:`bm_envs.envs.obstacle`)
* ``BM-G1-Tracking-v0`` — track a reference motion, BeyondMimic Stage 1 (:mod:`bm_envs.tracking.env`)

``gym.make`` kwargs ``randomize``, ``latency_ms`` and ``obs_noise`` switch on the wrappers of
:mod:`bm_envs.wrappers` (see :func:`bm_envs.make.make_g1_env`).
"""

from gymnasium.envs.registration import register

__version__ = "0.1.0"

for _name in ("Joystick", "Waypoint", "Obstacle"):
    register(
        id=f"BM-G1-{_name}-v0",
        entry_point="bm_envs.make:make_g1_env",
        kwargs={"task": _name.lower()},
    )

register(id="BM-G1-Tracking-v0", entry_point="bm_envs.make:make_g1_env", kwargs={"task": "tracking"})
