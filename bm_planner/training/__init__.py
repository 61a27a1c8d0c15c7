"""Training of the state–action diffusion model: configs, DDPMTrainer, EMA, checkpoints, metrics, CLI."""

from bm_planner.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_diffusion_model,
    load_normalizer,
    save_checkpoint,
)
from bm_planner.training.config import TRAIN_PRESETS, RunConfig, TrainConfig, load_run_config
from bm_planner.training.ema import EMA, ema_decay
from bm_planner.training.metrics import DiffusionMetrics, MetricTracker
from bm_planner.training.trainer import DDPMTrainer

__all__ = [
    "EMA",
    "TRAIN_PRESETS",
    "Checkpoint",
    "CheckpointError",
    "DDPMTrainer",
    "DiffusionMetrics",
    "MetricTracker",
    "RunConfig",
    "TrainConfig",
    "ema_decay",
    "load_checkpoint",
    "load_diffusion_model",
    "load_normalizer",
    "load_run_config",
    "save_checkpoint",
]
