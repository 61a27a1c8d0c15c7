"""Scalar logging of a run: ``metrics.jsonl`` (always, rank 0), TensorBoard (default) and W&B (opt-in)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bm_planner.training.checkpoint import atomic_write_text


class RunLogger:
    """Logs ``{name: float}`` at a step to ``run_dir/metrics.jsonl``, ``run_dir/tb`` and optionally W&B.

    On resume (``start_step > 0``) lines of ``metrics.jsonl`` after ``start_step`` are dropped (they belong to the
    interrupted tail) and TensorBoard purges events after ``start_step``. Disabled loggers (ranks > 0) do nothing.
    """

    def __init__(
        self,
        run_dir: Path,
        start_step: int = 0,
        enabled: bool = True,
        use_wandb: bool = False,
        tensorboard: bool = True,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        self.wandb = None
        if not enabled:
            return
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= start_step]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=start_step if start_step > 0 else None)
        if use_wandb:
            try:
                import wandb
            except ImportError as exc:
                raise RuntimeError("W&B logging requested but the 'wandb' package is not installed") from exc
            self.wandb = wandb.init(dir=str(run_dir), config=config, resume="allow")

    def log(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in scalars.items()}
        with open(self.path, "a") as f:
            f.write(
                json.dumps({"step": int(step), **{k: (v if math.isfinite(v) else None) for k, v in clean.items()}})
                + "\n"
            )
        if self.tb is not None:
            for k, v in clean.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(clean, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def _step_of(line: str) -> float:
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf  # malformed lines are dropped
