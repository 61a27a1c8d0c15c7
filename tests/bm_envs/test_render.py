"""Off-screen rendering (``render_mode="rgb_array"``, MuJoCo's EGL backend set in ``tests/conftest.py``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def test_rgb_array_frames():
    env = gym.make("BM-G1-Obstacle-v0", render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    colours = np.unique(frame.reshape(-1, 3), axis=0)
    assert len(colours) > 50 and frame.std() > 10, "expected a lit scene, not a blank image"
    # the camera follows the robot: after moving it 2 m sideways the frame is still valid, the floor has moved
    env.unwrapped.data.qpos[1] += 2.0
    env.step(np.zeros(29, dtype=np.float32))
    moved = env.render()
    assert moved.shape == frame.shape and np.abs(moved.astype(int) - frame).mean() > 1  # background changed
    env.close()
    env.close()  # idempotent


def test_no_render_mode_renders_nothing(joystick_env):
    joystick_env.reset(seed=0)
    assert joystick_env.unwrapped.render() is None
