"""Write the shipped planner's action-regression reference (``tests/bm_planner/fixtures/shipped_actions.json``, JSON text): a fixed
observation sequence (the joystick env from seed 0, driven open loop by the Stage-1 expert) and the actions the
shipped planner (torch backend, shipped settings, one thread) returns for it. Regenerate only when the planner's
behaviour is meant to change; ``tests/bm_planner/test_action_regression.py`` compares against it.

    python tools/make_action_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import bm_envs  # noqa: F401
from bm_envs.experts.locomotion import ExpertPolicy
from bm_planner import SHIPPED_PLANNER
from bm_planner.agent import DiffusionAgent
from bm_planner.data.state import OBS_KEYS

OUT = Path(__file__).resolve().parents[1] / "tests" / "bm_planner" / "fixtures" / "shipped_actions.json"
STEPS = 24


def observations(steps: int = STEPS) -> dict[str, np.ndarray]:
    env = gym.make("BM-G1-Joystick-v0", scenario="joystick-4dir")
    expert = ExpertPolicy("fastsac")
    obs, _ = env.reset(seed=0)
    expert.reset()
    seq = []
    for _ in range(steps):
        seq.append(obs)
        a, _ = expert.predict(obs)
        obs, *_ = env.step(a)
    env.close()
    keys = [*OBS_KEYS, "command"]
    return {k: np.stack([np.asarray(o[k]) for o in seq]) for k in keys}


def planner_actions(obs_seq: dict[str, np.ndarray]) -> np.ndarray:
    torch.set_num_threads(1)
    agent = DiffusionAgent.from_pretrained(SHIPPED_PLANNER, {"threads": 1})
    agent.reset()
    n = len(next(iter(obs_seq.values())))
    return np.stack([agent.predict({k: v[i] for k, v in obs_seq.items()})[0] for i in range(n)])


def to_json(obs_seq: dict[str, np.ndarray], actions: np.ndarray) -> dict:
    """The reference as JSON: float32 values written as the shortest decimal that reads back to the same float32."""
    f64 = lambda a: np.asarray(a, np.float32).astype(np.float64).tolist()  # noqa: E731
    return {"format": "bm-action-reference", "dtype": "float32", "actions": f64(actions),
            "observations": {k: f64(v) for k, v in obs_seq.items()}}  # fmt: skip


def load_reference(path: Path = OUT) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(observations {key: (T, ...)}, actions (T, 29))`` as float32 from :func:`to_json`'s file."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != "bm-action-reference":
        raise ValueError(f"{path}: not an action reference (format {doc.get('format')!r})")
    obs = {k: np.asarray(v, np.float32) for k, v in doc["observations"].items()}
    return obs, np.asarray(doc["actions"], np.float32)


def main() -> None:
    seq = observations()
    acts = planner_actions(seq)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(to_json(seq, acts)) + "\n")
    print(f"wrote {OUT} ({len(acts)} steps)")


if __name__ == "__main__":
    main()
