"""EMA decay, LR schedule, metrics tracker, level buckets, checkpoint files."""

import math

import pytest
import torch
from torch import nn

from bm_planner.model import ModelConfig, StateActionDiffusionModel
from bm_planner.training import EMA, DiffusionMetrics, MetricTracker, ema_decay, load_checkpoint, save_checkpoint
from bm_planner.training.checkpoint import prune_checkpoints
from bm_planner.training.metrics import action_smoothness, level_buckets
from bm_planner.training.optim import warmup_cosine


def test_ema_decay_warmup_values():
    assert ema_decay(1) == 0.0  # first update copies
    assert ema_decay(2) == pytest.approx(1 - 2**-0.75)
    assert ema_decay(10_001) == pytest.approx(1 - 10_001**-0.75)
    assert ema_decay(10**9) == 0.9999  # capped
    assert ema_decay(5, min_decay=0.9) == 0.9


def test_ema_update_tracks_the_weights():
    model = nn.Linear(3, 2)
    ema = EMA(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay 0: copy
    assert torch.equal(ema.model_ema.weight, model.weight)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)
    d = ema_decay(2)
    torch.testing.assert_close(ema.model_ema.weight, torch.full((2, 3), d * 1.0 + (1 - d) * 3.0))
    assert not ema.model_ema.weight.requires_grad


def test_warmup_cosine():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine(110, 10, 110, min_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 10, 110, min_ratio=0.1) == pytest.approx(0.1)


def test_metric_tracker_early_stopping_and_state():
    t = MetricTracker(patience=2, min_delta=0.01)
    assert t.update(1, {"val/loss": 1.0})
    assert not t.update(2, {"val/loss": 0.995})  # within min_delta
    assert not t.should_stop
    assert not t.update(3, {"val/loss": math.nan})
    assert t.should_stop and t.best == 1.0 and t.best_step == 1
    t2 = MetricTracker(patience=2)
    t2.load_state(t.state())
    assert t2.should_stop and t2.history == t.history
    with pytest.raises(KeyError):
        t.update(4, {"loss": 1.0})
    assert not MetricTracker(patience=0).should_stop


def test_level_buckets_and_smoothness():
    assert level_buckets(20, 4) == [(0, 4), (5, 9), (10, 15), (16, 20)]
    assert level_buckets(3, 10) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    lin = torch.arange(10.0).reshape(1, 10, 1).repeat(2, 1, 3)
    assert action_smoothness(lin) == 0.0
    assert action_smoothness(lin**2) == pytest.approx(4.0)


def test_diffusion_metrics_keys():
    c = ModelConfig(state_dim=6, action_dim=4, width=16, depth=1, heads=2)
    torch.manual_seed(0)
    model = StateActionDiffusionModel(c)
    batches = [{"states": torch.randn(4, 21, 6), "actions": torch.randn(4, 21, 4)} for _ in range(2)]
    m = DiffusionMetrics(c, val_batches=2, sample_batches=1, sample_steps=2).evaluate(model, batches)
    assert {
        "val/loss",
        "val/state_mse_k00-04",
        "val/action_mse_k16-20",
        "val/sample_first_action_mse",
        "val/sample_action_smoothness",
        "val/data_action_smoothness",
    } <= set(m)
    assert all(math.isfinite(v) for v in m.values())
    again = DiffusionMetrics(c, val_batches=2, sample_batches=1, sample_steps=2).evaluate(model, batches)
    assert again == m  # fixed generator: evaluations are comparable across steps


def test_checkpoint_files_and_pruning(tmp_path):
    w = {"a": torch.randn(3, 2)}
    for step in (1, 2, 3, 4):
        save_checkpoint(
            tmp_path,
            step,
            w,
            w,
            {"m": torch.zeros(2)},
            {"model": {}, "train": {}},
            train_state={"step": step, "x": [1, 2.5, "s", None]},
        )
    save_checkpoint(tmp_path, 4, w, w, {"m": torch.ones(2)}, {"model": {}, "train": {}})  # same step again
    assert not list(tmp_path.glob(".*"))  # no temporaries left behind
    prune_checkpoints(tmp_path, keep_last=2, keep=("step_00000001",))
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_00000001", "step_00000003", "step_00000004"]
    ck = load_checkpoint(tmp_path)
    assert ck.step == 4 and torch.equal(ck.normalizer["m"], torch.ones(2)) and ck.train_state is None
    ck1 = load_checkpoint(tmp_path / "step_00000001")
    assert ck1.train_state == {"step": 1, "x": [1, 2.5, "s", None]}
