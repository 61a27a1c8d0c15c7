"""Composable, seeded wrappers for any bm env: action latency, domain randomization, observation noise."""

from bm_envs.wrappers.latency import ActionLatency
from bm_envs.wrappers.noise import ObservationNoise
from bm_envs.wrappers.profiles import DEFAULT_PROFILE, PROFILES, Profile, resolve_profile
from bm_envs.wrappers.randomization import DomainRandomization, RandomizationConfig

__all__ = [
    "ActionLatency",
    "DomainRandomization",
    "RandomizationConfig",
    "ObservationNoise",
    "Profile",
    "PROFILES",
    "DEFAULT_PROFILE",
    "resolve_profile",
]
