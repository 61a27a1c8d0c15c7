"""bm-train end to end on a tiny real data set (bm-collect: real MuJoCo rollouts of the real ONNX expert)."""

import json

import pytest
import torch

from bm_planner.data.collector import main as collect
from bm_planner.data.dataset import TrajectoryDataset
from bm_planner.training import load_diffusion_model, load_normalizer
from bm_planner.training.cli import main as train


def test_bm_train_on_collected_data_then_resume(tmp_path, capsys):
    data = tmp_path / "data"
    assert (
        collect(
            [
                "--out",
                str(data),
                "--episodes",
                "2",
                "--episode-s",
                "2",
                "--episodes-per-shard",
                "1",
                "--workers",
                "1",
                "--seed",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "preset: small\nmodel: {width: 32, depth: 1, heads: 2}\n"
        "train: {batch_size: 8, warmup_steps: 0, eval_every: 2, val_batches: 1, sample_batches: 1,\n"
        "        sample_steps: 2, log_every: 1}\n"
    )
    run = tmp_path / "run"
    args = ["--config", str(cfg), "--data", str(data), "--out", str(run), "--no-progress", "--device", "cpu"]
    assert train([*args, "--steps", "2"]) == 0
    assert train([*args, "--steps", "3", "--resume"]) == 0
    model, ckpt = load_diffusion_model(run)
    assert ckpt.step == 3 and ckpt.config["run_config"]["train"]["total_steps"] == 3
    # the checkpoint describes itself: state layout and window geometry in its config.json
    assert ckpt.config["state_layout"] == TrajectoryDataset(data, split="val").state_rep.layout()
    assert ckpt.config["window"] == {"n_history": model.config.n_history, "horizon": model.config.horizon}
    # --resume with a different config is an error that names the difference (not a silent ignore)
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace("width: 32", "width: 48"))
    assert train(["--config", str(other), *args[2:], "--steps", "4", "--resume"]) == 2
    assert "model.width: 48 (given) vs 32 (saved)" in capsys.readouterr().err
    # a corrupt latest checkpoint: --resume falls back to the newest intact one and says so
    latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    (latest / "model.safetensors").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="resuming from step_00000002, the newest intact one"):
        assert train([*args, "--steps", "4", "--resume"]) == 0
    assert load_diffusion_model(run)[1].step == 4
    ds = TrajectoryDataset(data, split="val")
    assert model.config.state_dim == ds.state_dim
    normalizer = load_normalizer(ckpt)
    assert type(normalizer) is type(ds.normalizer)
    for name, value in ds.normalizer.state_dict().items():
        assert torch.equal(normalizer.state_dict()[name], value), name
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val/sample_first_action_mse" in e for e in evals)
    item = ds[0]
    plan = model.sample(item["states"][None, :5], item["actions"][None, :4], num_steps=2, sampler="ddim")
    assert plan.states.shape == (1, 21, ds.state_dim) and bool(torch.isfinite(plan.actions).all())

    # fine-tuning: a new run initialized from this one's EMA weights, with history actions hidden (no new weights)
    cfg2 = tmp_path / "tiny-ft.yaml"
    cfg2.write_text(cfg.read_text().replace("model: {", "model: {history_actions: false, "))
    run2 = tmp_path / "run2"
    args2 = ["--config", str(cfg2), "--data", str(data), "--out", str(run2), "--no-progress", "--device", "cpu"]
    assert train([*args2, "--steps", "1", "--init-from", str(run)]) == 0
    ft, ft_ckpt = load_diffusion_model(run2)
    assert ft.config.history_actions is False and ft_ckpt.step == 1
    # one small step away from the source weights, not a fresh initialization
    src = model.state_dict()
    drift = max((v - src[k]).abs().max().item() for k, v in ft.state_dict().items())
    assert drift < 0.05
    cfg3 = tmp_path / "tiny-wide.yaml"
    cfg3.write_text(cfg.read_text().replace("width: 32", "width: 64"))
    bad = ["--config", str(cfg3), "--data", str(data), "--out", str(tmp_path / "run3"), "--no-progress"]
    assert train([*bad, "--steps", "1", "--init-from", str(run)]) == 2

    # a command-conditioned fine-tune from the unconditional run: the new embedding starts at zero output
    cfg4 = tmp_path / "tiny-cmd.yaml"
    cfg4.write_text(cfg.read_text().replace("model: {", "model: {command_dim: 3, command_dropout: 0.2, "))
    run4 = tmp_path / "run4"
    args4 = ["--config", str(cfg4), "--data", str(data), "--out", str(run4), "--no-progress", "--device", "cpu"]
    assert train([*args4, "--steps", "1", "--init-from", str(run)]) == 0
    cm, _ = load_diffusion_model(run4)
    assert cm.config.command_dim == 3
    shared = max((cm.state_dict()[k] - v).abs().max().item() for k, v in src.items())
    assert shared < 0.05 and any("command_embedding" in k for k in cm.state_dict())
    plan = cm.sample(item["states"][None, :5], item["actions"][None, :4], num_steps=2, sampler="ddim",
                     command=item["command"][None])  # fmt: skip
    assert bool(torch.isfinite(plan.actions).all())
    # and back: a conditioned run cannot initialize an unconditional one (its embedding would be dropped)
    assert train([*args, "--out", str(tmp_path / "run5"), "--steps", "1", "--init-from", str(run4)]) == 2
