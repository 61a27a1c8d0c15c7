"""The behaviour-cloning baseline on a tiny real data set, with and without history-action conditioning."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import bm_envs  # noqa: F401
from bm_planner.agent import AgentConfig, DiffusionAgent
from bm_planner.baselines.bc import BCModel, train_bc
from bm_planner.data.collector import main as collect
from bm_planner.data.state import StateRepresentation


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bc") / "data"
    argv = ["--out", str(root), "--episodes", "2", "--episode-s", "2", "--episodes-per-shard", "1", "--workers", "1",
            "--no-progress"]  # fmt: skip
    assert collect(argv) == 0
    return root


@pytest.mark.parametrize("history_actions", [True, False])
def test_bc_trains_loads_and_acts(data, tmp_path, history_actions):
    out = tmp_path / "bc"
    result = train_bc(str(data), str(out), steps=30, batch=16, history_actions=history_actions)
    assert np.isfinite(result["val_first_action_mse"])
    model, norm, layout = BCModel.load(out)
    assert model.config.history_actions is history_actions
    hs = torch.randn(2, model.config.n_history + 1, model.config.state_dim)
    ha = torch.randn(2, model.config.n_history, model.config.action_dim)
    changed = (model(hs, ha) - model(hs, ha + 1.0)).abs().max().item()
    assert (changed > 1e-4) if history_actions else (changed == 0.0)
    agent = DiffusionAgent(model, norm, StateRepresentation(layout["bodies"]), AgentConfig(replan_every=1))
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        a, _ = agent.predict(obs)
        assert a.shape == (29,) and np.all(np.isfinite(a))
        obs, *_ = env.step(a)
    env.close()
