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


def test_command_conditioned_bc_on_two_folders_follows_the_agents_command(data, tmp_path):
    out = tmp_path / "bc-cmd"
    result = train_bc([str(data), str(data)], str(out), steps=20, batch=16, history_actions=False, command=True,
                      mirror_prob=0.5)  # fmt: skip
    assert np.isfinite(result["val_first_action_mse"])
    assert (out / "metrics.jsonl").read_text().count("train/loss") == 1 and any((out / "tb").iterdir())
    model, norm, layout = BCModel.load(out)
    assert model.config.command_dim == 3
    hs = torch.randn(2, model.config.n_history + 1, model.config.state_dim)
    ha = torch.zeros(2, model.config.n_history, model.config.action_dim)
    fwd, turn = torch.tensor([[0.5, 0.0, 0.0]] * 2), torch.tensor([[0.0, 0.0, 0.6]] * 2)
    assert (model(hs, ha, fwd) - model(hs, ha, turn)).abs().max() > 1e-4
    # "no command" is its own input (flag 0), not the stand command (0, 0, 0) with the flag set
    assert (model(hs, ha, None) - model(hs, ha, torch.zeros(2, 3))).abs().max() > 1e-6
    dropped = model(hs, ha, fwd, torch.tensor([True, False]))
    torch.testing.assert_close(dropped[0], model(hs, ha, None)[0])
    torch.testing.assert_close(dropped[1], model(hs, ha, fwd)[1])
    with pytest.raises(ValueError, match="command: expected"):
        model(hs, ha, torch.zeros(2, 2))
    agent = DiffusionAgent(model, norm, StateRepresentation(layout["bodies"]), AgentConfig(replan_every=1))
    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    a, _ = agent.predict(obs)
    assert agent.info["command"] == pytest.approx(np.asarray(obs["command"], dtype=np.float32).tolist())
    assert a.shape == (29,) and np.all(np.isfinite(a))
    env.close()


def test_bc_config_and_cli_refuse_bad_values(data, tmp_path):
    from bm_planner.baselines.bc import BCConfig, main

    with pytest.raises(ValueError, match="command_dim"):
        BCConfig(command_dim=2)
    with pytest.raises(ValueError, match="mirror_prob"):
        train_bc(str(data), str(tmp_path / "x"), steps=1, mirror_prob=1.5)
    with pytest.raises(SystemExit):
        main(["--data", str(data), "--out", str(tmp_path / "y"), "--steps", "0"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
