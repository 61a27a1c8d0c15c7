"""Fixtures shared by the bm_envs tests: one ONNX expert session per test session, env factories."""

from __future__ import annotations

import gymnasium as gym
import pytest

import bm_envs  # noqa: F401  (registers the env ids)
from bm_envs.experts.locomotion import LocomotionExpert
from bm_envs.scene.scenario import ENV_IDS


@pytest.fixture(scope="session")
def fastsac() -> LocomotionExpert:
    """The pretrained holosoma FastSAC locomotion expert (real ONNX from the pinned wheel)."""
    return LocomotionExpert("fastsac")


@pytest.fixture(scope="module")
def joystick_env():
    """A plain ``BM-G1-Joystick-v0`` reused within a module (model compilation costs ~0.2 s)."""
    env = gym.make("BM-G1-Joystick-v0")
    yield env
    env.close()


@pytest.fixture(params=ENV_IDS)
def env_id(request) -> str:
    return request.param


@pytest.fixture
def all_wrappers() -> dict:
    """``gym.make`` kwargs that switch on every wrapper (DR + pushes, 0-100 ms latency, observation noise)."""
    return {"randomize": True, "latency_ms": (0.0, 100.0), "obs_noise": True}
