"""Exact resume, checkpoint integrity and refusal to overwrite runs."""

import json
from pathlib import Path

import pytest
import torch
from _synthetic_data import SyntheticWindows

from bm_planner.model import ModelConfig
from bm_planner.training import CheckpointError, DDPMTrainer, RunConfig, TrainConfig, load_diffusion_model

MODEL = ModelConfig(state_dim=12, width=32, depth=2, heads=2, attn_dropout=0.2, dropout=0.1)
TRAIN = TrainConfig(
    total_steps=8,
    batch_size=8,
    lr=1e-3,
    warmup_steps=2,
    eval_every=3,
    ckpt_every=100,
    log_every=2,
    val_batches=2,
    sample_batches=1,
    sample_steps=4,
    keep_last=5,
)
CONFIG = RunConfig(MODEL, TRAIN)


@pytest.fixture(scope="module")
def data():
    train = SyntheticWindows(40)  # 5 batches per epoch: 8 steps cross an epoch boundary
    return train, SyntheticWindows(16, seed=1)


def _trainer(data, run_dir, **kw):
    train, val = data
    return DDPMTrainer(CONFIG, train, val, train.normalizer, run_dir, device="cpu", progress=False, **kw)


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_resume_reproduces_the_uninterrupted_run_bitwise(data, tmp_path):
    straight = _trainer(data, tmp_path / "straight")
    straight.train()
    straight.close()

    first = _trainer(data, tmp_path / "split")
    first.train(until_step=4)  # stops mid-epoch, after the eval at step 3; saves a checkpoint
    first.close()
    del first
    resumed = _trainer(data, tmp_path / "split", resume=True)  # fresh objects, state only from disk
    assert resumed.step == 4
    summary = resumed.train()
    resumed.close()
    assert summary["step"] == 8
    for name, ref in straight.model.state_dict().items():
        assert torch.equal(ref, resumed.model.state_dict()[name]), name
    for name, ref in straight.ema.model_ema.state_dict().items():
        assert torch.equal(ref, resumed.ema.model_ema.state_dict()[name]), name
    assert straight.tracker.history == resumed.tracker.history  # evals at steps 3 and 6 agree too
    opt_a, opt_b = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"]) for k in opt_a)
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == sorted(steps) and steps[-1] == 8

    model, ckpt = load_diffusion_model(tmp_path / "split")  # a checkpoint alone rebuilds the (EMA) model
    assert ckpt.step == 8 and ckpt.config["normalizer_class"].endswith(":SyntheticNormalizer")
    assert torch.equal(ckpt.normalizer["state_std"], data[0].normalizer.state_std)
    for name, ref in resumed.ema.model_ema.state_dict().items():
        assert torch.equal(ref, model.state_dict()[name]), name


def test_corrupt_checkpoint_is_reported_and_nothing_is_overwritten(data, tmp_path):
    run = tmp_path / "run"
    trainer = _trainer(data, run)
    trainer.train(until_step=2)
    trainer.close()
    weights = run / "checkpoints" / "step_00000002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated file
    before = _snapshot(run)
    with pytest.raises(CheckpointError, match=r"model\.safetensors has \d+ bytes, expected \d+: truncated"):
        _trainer(data, run, resume=True)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_diffusion_model(run)
    assert _snapshot(run) == before


def test_existing_run_needs_resume_and_a_matching_normalizer(data, tmp_path):
    run = tmp_path / "run"
    trainer = _trainer(data, run)
    trainer.train(until_step=1)
    trainer.close()
    before = _snapshot(run)
    with pytest.raises(FileExistsError, match="--resume"):
        _trainer(data, run)
    other = SyntheticWindows(40)
    other.normalizer.state_std.mul_(2.0)
    with pytest.raises(CheckpointError, match="normalizer differs"):
        DDPMTrainer(CONFIG, other, None, other.normalizer, run, device="cpu", progress=False, resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        _trainer(data, tmp_path / "empty", resume=True)
    assert _snapshot(run) == before


def test_rejects_data_that_does_not_match_the_model(tmp_path):
    wrong = SyntheticWindows(16, state_dim=10)
    with pytest.raises(ValueError, match=r"states \(21, 12\)"):
        DDPMTrainer(CONFIG, wrong, None, wrong.normalizer, tmp_path, device="cpu", progress=False)
    tiny = SyntheticWindows(4)
    with pytest.raises(ValueError, match="fewer than one batch"):
        DDPMTrainer(CONFIG, tiny, None, tiny.normalizer, tmp_path, device="cpu", progress=False)


def test_time_budget_stops_with_a_checkpoint_and_resumes(data, tmp_path):
    t = _trainer(data, tmp_path / "budget")
    summary = t.train(max_wall_s=1e-6)  # over budget after the first step
    t.close()
    assert summary["out_of_time"] and summary["step"] == 1
    _, ckpt = load_diffusion_model(tmp_path / "budget")
    assert ckpt.step == 1
    resumed = _trainer(data, tmp_path / "budget", resume=True)
    assert resumed.train()["step"] == 8 and not resumed.train()["out_of_time"]
    resumed.close()
    with pytest.raises(ValueError, match="max_wall_s"):
        _trainer(data, tmp_path / "bad").train(max_wall_s=0)


def test_weights_only_copy_loads_for_inference_but_not_for_resume(data, tmp_path):
    t = _trainer(data, tmp_path / "w")
    t.train(until_step=2)
    t.close()
    ck = next((tmp_path / "w" / "checkpoints").glob("step_*"))
    (ck / "train_state.pt").unlink()  # what a weights-only copy (e.g. a shipped checkpoint) lacks
    model, ckpt = load_diffusion_model(tmp_path / "w")
    assert ckpt.train_state is None and model.config == CONFIG.model
    with pytest.raises(CheckpointError, match="train_state"):
        _trainer(data, tmp_path / "w", resume=True)
    (ck / "ema.safetensors").unlink()  # a weight file is still required
    with pytest.raises(CheckpointError, match="ema.safetensors is missing"):
        load_diffusion_model(tmp_path / "w")
