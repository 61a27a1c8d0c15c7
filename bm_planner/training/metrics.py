"""Validation metrics of the diffusion model and a best-value tracker with early stopping.

All errors are in normalized units (per-dimension z-scores of the data), averaged over dimensions and timesteps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from bm_planner.model import ModelConfig, StateActionDiffusionModel


def batch_command(batch: dict, config, device) -> torch.Tensor | None:
    """The batch's task command (B, C) for a command-conditioned model (``config.command_dim`` > 0), else None."""
    if not getattr(config, "command_dim", 0):
        return None
    if "command" not in batch:
        raise ValueError("the model is command-conditioned (command_dim > 0) but the data set yields no 'command'")
    cmd = batch["command"].to(device, non_blocking=True).float()
    if cmd.shape[-1] != config.command_dim:
        raise ValueError(f"data set commands have {cmd.shape[-1]} dims, the model expects {config.command_dim}")
    return cmd


def level_buckets(num_levels: int, n_buckets: int) -> list[tuple[int, int]]:
    """Split levels 0..K into ``n_buckets`` contiguous inclusive ranges, e.g. K=20, 4 -> (0,5) (6,10) (11,15) (16,20)."""
    n = max(1, min(n_buckets, num_levels + 1))
    edges = torch.linspace(0, num_levels + 1, n + 1).round().long().tolist()
    return [(edges[i], edges[i + 1] - 1) for i in range(n)]


def action_smoothness(actions: torch.Tensor) -> torch.Tensor:
    """Mean squared second difference over time of actions (B, T, A): 0 for constant or linear sequences."""
    if actions.shape[1] < 3:
        return actions.new_zeros(())
    return (actions[:, 2:] - 2 * actions[:, 1:-1] + actions[:, :-2]).pow(2).mean()


@dataclass
class DiffusionMetrics:
    """Evaluates a model on the first ``val_batches`` batches of a (non-shuffled) validation loader.

    Metrics (keys prefixed ``val/``):
      loss, state_mse, action_mse: the training loss with random per-token levels (fixed ``seed``, so evaluations
        are comparable across steps and do not consume the global RNG);
      state_mse_k{lo}-{hi} / action_mse_k{lo}-{hi}: the same squared errors bucketed by each token's level;
      sample_state_mse, sample_action_mse, sample_first_action_mse: errors of full sampling (``sample_steps`` DDIM
        steps, or K-step DDPM when 0) from the true history on ``sample_batches`` batches, vs the recorded future;
      sample_action_smoothness and data_action_smoothness: :func:`action_smoothness` of the last known action plus
        the trained planned actions, for the samples and for the data.
    """

    config: ModelConfig
    val_batches: int = 8
    sample_batches: int = 2
    sample_steps: int = 0
    n_buckets: int = 4
    seed: int = 1234

    @torch.no_grad()
    def evaluate(
        self,
        model: StateActionDiffusionModel,
        batches: Iterable[dict[str, torch.Tensor]],
        device: torch.device | str = "cpu",
    ) -> dict[str, float]:
        c = self.config
        was_training = model.training
        model.eval()
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        buckets = level_buckets(c.num_levels, self.n_buckets)
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}

        def add(key: str, value: torch.Tensor, count: float = 1.0) -> None:
            sums[key] = sums.get(key, 0.0) + float(value) * count
            counts[key] = counts.get(key, 0.0) + count

        n_act = c.n_known_actions + c.action_loss_steps
        try:
            for i, batch in enumerate(batches):
                if i >= max(self.val_batches, self.sample_batches):
                    break
                states = batch["states"].to(device).float()
                actions = batch["actions"].to(device).float()
                command = batch_command(batch, c, device)
                b = states.shape[0]
                if i < self.val_batches:
                    out = model.compute_loss(states, actions, generator=gen, command=command)
                    for key in ("loss", "state_mse", "action_mse"):
                        add(key, getattr(out, key), b)
                    for lo, hi in buckets:
                        for name, err, k in (
                            ("state", out.state_err, out.k_states),
                            ("action", out.action_err, out.k_actions),
                        ):
                            sel = (k >= lo) & (k <= hi)
                            if bool(sel.any()):
                                add(f"{name}_mse_k{lo:02d}-{hi:02d}", err[sel].mean(), float(sel.sum()))
                if i < self.sample_batches:
                    steps = self.sample_steps or None
                    plan = model.sample(
                        states[:, : c.n_known_states],
                        actions[:, : c.n_known_actions],
                        num_steps=steps,
                        sampler="ddim" if steps else "ddpm",
                        generator=gen,
                        command=command,
                    )
                    fs, fa = slice(c.n_known_states, None), slice(c.n_known_actions, n_act)
                    add("sample_state_mse", (plan.states[:, fs] - states[:, fs]).pow(2).mean(), b)
                    add("sample_action_mse", (plan.actions[:, fa] - actions[:, fa]).pow(2).mean(), b)
                    first = c.n_known_actions
                    add("sample_first_action_mse", (plan.actions[:, first] - actions[:, first]).pow(2).mean(), b)
                    window = slice(c.n_known_actions - 1 if c.n_known_actions else 0, n_act)
                    add("sample_action_smoothness", action_smoothness(plan.actions[:, window]), b)
                    add("data_action_smoothness", action_smoothness(actions[:, window]), b)
        finally:
            model.train(was_training)
        if not sums:
            raise ValueError("the validation loader yielded no batches")
        return {f"val/{k}": sums[k] / counts[k] for k in sums}


class MetricTracker:
    """Tracks the best value of one metric (``mode`` "min" or "max") and stops after ``patience`` evaluations
    without an improvement larger than ``min_delta`` (``patience = 0`` disables early stopping)."""

    def __init__(self, metric: str = "val/loss", mode: str = "min", patience: int = 0, min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode=!r}")
        if patience < 0 or min_delta < 0:
            raise ValueError(f"patience and min_delta must be >= 0; got {patience=}, {min_delta=}")
        self.metric, self.mode, self.patience, self.min_delta = metric, mode, patience, min_delta
        self.best: float | None = None
        self.best_step = -1
        self.bad_evals = 0
        self.history: list[tuple[int, float]] = []

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Record ``metrics[self.metric]`` at ``step``; returns True when it is a new best."""
        if self.metric not in metrics:
            raise KeyError(f"metric {self.metric!r} not in {sorted(metrics)}")
        value = float(metrics[self.metric])
        self.history.append((int(step), value))
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if better and not math.isnan(value):  # NaN never counts as an improvement
            self.best, self.best_step, self.bad_evals = value, int(step), 0
            return True
        self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_evals >= self.patience

    def state(self) -> dict:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "history": [list(h) for h in self.history],
        }

    def load_state(self, state: dict) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.best_step = int(state["best_step"])
        self.bad_evals = int(state["bad_evals"])
        self.history = [(int(s), float(v)) for s, v in state["history"]]
