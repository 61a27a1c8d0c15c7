"""The bm G1 envs on the real Unitree G1 over ``unitree_sdk2py``, a safety layer, and a MuJoCo DDS bridge.

Importing this package imports neither the SDK nor DDS and opens no socket; names are resolved lazily and the
SDK is imported when a hardware env or a bridge is constructed (:mod:`bm_envs.hardware.sdk`).

=====================  ===================================================================================
module                 what
=====================  ===================================================================================
``env``                :func:`make_hardware_env`, :class:`G1HardwareEnv`, :class:`HardwareConfig`
``safety``             :class:`SafetyLayer`, :class:`SafetyConfig`, :class:`Fault`, :class:`SafetyFault`
``link``               :class:`RobotLink` (DDS in/out, watchdog), :class:`LinkConfig`
``estimator``          :class:`StateSource` and its two implementations (odometry topic, legged odometry)
``messages``, ``crc``  ``LowCmd_``/``LowState_`` packing, validation and the CRC
``bridge``             ``python -m bm_envs.hardware.bridge``: the simulated robot on DDS (test double)
``harness``            :class:`BridgeProcess`: run the bridge as a child process, inject faults
=====================  ===================================================================================

Quick use (the same agent as in the sim; see ``examples/hardware_swap.py``)::

    from bm_envs.hardware import make_hardware_env
    env = make_hardware_env("joystick", interface="eth0", domain_id=0, scenario="walk.json")
    obs, info = env.reset()          # wait for state, damping, ramp to the default pose, hand over
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "make_hardware_env": "env", "G1HardwareEnv": "env", "HardwareConfig": "env",
    "SafetyLayer": "safety", "SafetyConfig": "safety", "Fault": "safety", "SafetyFault": "safety",
    "RobotLink": "link", "LinkConfig": "link",
    "StateSource": "estimator", "RootState": "estimator", "OdometryTopicSource": "estimator",
    "KinematicOdometry": "estimator",
    "BridgeProcess": "harness", "free_domain_id": "harness",
    "SDKUnavailable": "sdk", "sdk_available": "sdk",
}  # fmt: skip
__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
