"""Session-wide test setup: pick MuJoCo's headless GL backend before any test module imports ``mujoco``."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
