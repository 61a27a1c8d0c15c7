"""DDPMTrainer: trains a :class:`StateActionDiffusionModel` on any dataset of normalized windows.

The dataset yields ``{"states": (T, D), "actions": (T_act >= Ta, A)}`` float32 tensors (already normalized); the
normalizer (an ``nn.Module`` with buffers) is only stored in checkpoints. One step = one AdamW update on a batch of
``batch_size`` windows per process. Exact resume: model, EMA, optimizer, LR schedule, grad scaler, tracker, step and
every rank's RNG state are restored, and the data order is a pure function of (seed, epoch), so an interrupted and
resumed run reproduces the uninterrupted one bit for bit (with ``num_workers = 0``; with workers, random data
augmentation inside a resumed epoch may differ).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset

from bm_planner.model import StateActionDiffusionModel
from bm_planner.training.checkpoint import (
    CheckpointError,
    atomic_write_text,
    describe,
    load_checkpoint,
    load_resumable_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from bm_planner.training.config import RunConfig
from bm_planner.training.distributed import (
    DistInfo,
    ResumableSampler,
    all_gather_object,
    barrier,
    broadcast_flag,
    init_distributed,
)
from bm_planner.training.ema import EMA
from bm_planner.training.metrics import DiffusionMetrics, MetricTracker, batch_command
from bm_planner.training.optim import build_optimizer, warmup_cosine
from bm_planner.training.rng import get_rng_state, seed_everything, set_rng_state
from bm_planner.training.run_logger import RunLogger

log = logging.getLogger(__name__)


class _LossModule(nn.Module):
    """Makes the training loss the ``forward`` that DistributedDataParallel wraps; returns plain tensors."""

    def __init__(self, model: StateActionDiffusionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, states: torch.Tensor, actions: torch.Tensor, command: torch.Tensor | None = None):
        out = self.model.compute_loss(states, actions, command=command)
        return out.loss, out.state_mse, out.action_mse


def _dataset_layout(ds) -> dict | None:
    """The state layout of a dataset (``ds.state_rep.layout()``), also through ``Subset``-like wrappers."""
    for obj in (ds, getattr(ds, "dataset", None)):
        rep = getattr(obj, "state_rep", None)
        if rep is not None and hasattr(rep, "layout"):
            return rep.layout()
    return None


class DDPMTrainer:
    """Trains, evaluates (rank 0, EMA weights) and checkpoints (rank 0) a diffusion model.

    Args:
        config: model + train configuration; ``config.model.state_dim`` / ``action_dim`` must match the data.
        train_dataset, val_dataset: map-style datasets of normalized windows (see module docstring).
        normalizer: the data normalizer module, saved with every checkpoint.
        run_dir: output directory (``checkpoints/``, ``tb/``, ``metrics.jsonl``, ``run_config.json``).
        device: "cpu", "cuda", "cuda:0", ... (default: CUDA if available); under torchrun, per local rank.
        resume: continue from ``run_dir``'s latest checkpoint; without it an existing checkpoint is an error.
        use_wandb: also log to Weights & Biases (must be installed).
        progress: show a tqdm bar on rank 0.
    """

    def __init__(
        self,
        config: RunConfig,
        train_dataset: Dataset,
        val_dataset: Dataset | None,
        normalizer: nn.Module,
        run_dir: str | Path,
        device: str | torch.device | None = None,
        resume: bool = False,
        use_wandb: bool = False,
        progress: bool = True,
        init_from: str | Path | None = None,
        state_layout: dict | None = None,
    ) -> None:
        self.config = config
        #: written into every checkpoint's config.json (with the window geometry): the checkpoint describes itself
        self.state_layout = state_layout if state_layout is not None else _dataset_layout(train_dataset)
        tc = config.train
        self.device = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.info: DistInfo = init_distributed(self.device)
        self.run_dir = Path(run_dir)
        self.ckpt_root = self.run_dir / "checkpoints"
        self.normalizer = normalizer
        self.progress = progress and self.info.is_main
        _check_dataset(train_dataset, config, "train")
        if val_dataset is not None:
            _check_dataset(val_dataset, config, "val")
        ckpt = None
        if resume:  # raises CheckpointError before anything is written; falls back to the newest intact checkpoint
            ckpt = load_resumable_checkpoint(self.run_dir)
            log.info("resuming %s from step %s (%s)", self.run_dir, ckpt.config.get("step", "?"), ckpt.path.name)
        elif (self.ckpt_root / "latest").exists():
            raise FileExistsError(
                f"{self.run_dir} already holds checkpoints; pass resume=True (--resume) or use a new output directory"
            )

        seed_everything(tc.seed + self.info.rank)
        self.model = StateActionDiffusionModel(config.model).to(self.device)
        if init_from is not None and ckpt is None:
            self._init_weights(Path(init_from))
        self.optimizer = build_optimizer(self.model, tc)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, tc.warmup_steps, tc.total_steps, tc.min_lr_ratio)
        )
        self.amp_dtype = _amp_dtype(tc.mixed_precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        loss_module = _LossModule(self.model)
        self.loss_module: nn.Module = loss_module
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.loss_module = DistributedDataParallel(loss_module, device_ids=ids)
        # after the DDP wrap, which broadcasts rank 0's initial weights to every rank
        self.ema = EMA(self.model, tc.ema_power, tc.ema_inv_gamma, tc.ema_min_decay, tc.ema_max_decay)

        self.sampler = ResumableSampler(train_dataset, self.info, seed=tc.seed)
        self.batches_per_epoch = self.sampler.num_samples // tc.batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"train split has {len(train_dataset)} windows: fewer than one batch per process "
                f"(batch_size={tc.batch_size}, world size {self.info.world_size})"
            )
        self.loader_gen = torch.Generator()
        self.loader = DataLoader(
            train_dataset,
            batch_size=tc.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=tc.num_workers,
            generator=self.loader_gen,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        self.val_loader = None if val_dataset is None else _fixed_val_loader(val_dataset, tc)
        self.metrics = DiffusionMetrics(config.model, tc.val_batches, tc.sample_batches, tc.sample_steps)
        self.tracker = MetricTracker("val/loss", "min", tc.early_stop_patience, tc.early_stop_min_delta)
        self.step = 0
        self.stopped = False
        self.nonfinite_streak = 0
        self.last_metrics: dict[str, float] = {}
        if ckpt is not None:
            self._restore(ckpt)
        self.logger = RunLogger(
            self.run_dir, self.step, enabled=self.info.is_main, use_wandb=use_wandb, config=config.to_dict()
        )
        if self.info.is_main:
            atomic_write_text(self.run_dir / "run_config.json", json.dumps(config.to_dict(), indent=2))

    # ------------------------------------------------------------------ training
    def train(self, until_step: int | None = None, max_wall_s: float | None = None) -> dict[str, Any]:
        """Train until ``until_step`` (default ``total_steps``), early stopping, or ``max_wall_s`` seconds of wall time
        (a time budget: the run stops at the next step, with a checkpoint, and ``--resume`` continues it); saves a
        checkpoint at the end. Returns a summary (steps, wall time, samples/s, last metrics, ``out_of_time``)."""
        tc = self.config.train
        if max_wall_s is not None and not max_wall_s > 0:
            raise ValueError(f"max_wall_s must be > 0, got {max_wall_s!r}")
        out_of_time = False
        target = min(tc.total_steps, until_step if until_step is not None else tc.total_steps)
        start_step, t0 = self.step, time.perf_counter()
        bar = _progress_bar(self.progress, target, self.step)
        window_t, window_n, last_saved = time.perf_counter(), 0, -1
        while self.step < target and not self.stopped:
            epoch, offset = divmod(self.step, self.batches_per_epoch)
            self.sampler.set_epoch(epoch)
            self.sampler.set_start(offset * tc.batch_size)
            self.loader_gen.manual_seed(tc.seed * 100_003 + epoch)
            for batch in self.loader:
                stats = self._train_step(batch)
                self.step += 1
                window_n += tc.batch_size * self.info.world_size
                if bar is not None:
                    bar.update(1)
                if self.step % tc.log_every == 0 or self.step == target:
                    now = time.perf_counter()
                    stats["train/samples_per_s"] = window_n / max(now - window_t, 1e-9)
                    window_t, window_n = now, 0
                    self.logger.log(self.step, stats)
                    if bar is not None:
                        bar.set_postfix(loss=f"{stats['train/loss']:.4f}", sps=f"{stats['train/samples_per_s']:.0f}")
                if self.val_loader is not None and self.step % tc.eval_every == 0:
                    self.evaluate()
                    window_t = time.perf_counter()  # throughput excludes evaluation ...
                if self.step % tc.ckpt_every == 0 or self.stopped:
                    self.save_checkpoint()
                    last_saved = self.step
                    window_t = time.perf_counter()  # ... and checkpointing
                if max_wall_s is not None:  # rank 0's clock decides, so every rank stops at the same step
                    out_of_time = broadcast_flag(self.info, time.perf_counter() - t0 > max_wall_s, self.device)
                if self.step >= target or self.stopped or out_of_time:
                    break
            if out_of_time:
                log.info("step %d: time budget of %.0f s used; stopping (resume with --resume)", self.step, max_wall_s)
                break
        if self.step != start_step and last_saved != self.step:
            self.save_checkpoint()
        if bar is not None:
            bar.close()
        wall = time.perf_counter() - t0
        steps = self.step - start_step
        return {
            "step": self.step,
            "steps": steps,
            "wall_s": wall,
            "stopped_early": self.stopped,
            "out_of_time": out_of_time,
            "samples_per_s": steps * tc.batch_size * self.info.world_size / max(wall, 1e-9),
            "metrics": dict(self.last_metrics),
        }

    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        tc = self.config.train
        self.model.train()
        states = batch["states"].to(self.device, non_blocking=True)
        actions = batch["actions"].to(self.device, non_blocking=True)
        command = batch_command(batch, self.model.config, self.device)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            loss, state_mse, action_mse = self.loss_module(states, actions, command)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = tc.grad_clip_norm if tc.grad_clip_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        finite = math.isfinite(grad_norm) and math.isfinite(float(loss.detach()))
        if finite or self.scaler.is_enabled():
            self.scaler.step(self.optimizer)  # the scaler itself skips non-finite fp16 steps
            self.nonfinite_streak = 0
        else:
            self.nonfinite_streak += 1
            log.warning(
                "step %d: non-finite loss/gradient (loss=%s, grad_norm=%s); update skipped",
                self.step,
                float(loss),
                grad_norm,
            )
            if self.nonfinite_streak >= 20:
                raise FloatingPointError(f"20 consecutive non-finite steps up to step {self.step}; lower the LR")
        self.scaler.update()
        self.lr_schedule.step()
        self.ema.update(self.model)
        return {
            "train/loss": float(loss.detach()),
            "train/state_mse": float(state_mse),
            "train/action_mse": float(action_mse),
            "train/grad_norm": grad_norm,
            "train/lr": self.optimizer.param_groups[0]["lr"],
            "train/ema_decay": self.ema.decay,
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Validation metrics of the EMA model on rank 0 (plus the live model's loss); updates the tracker and
        early stopping on every rank."""
        metrics: dict[str, float] = {}
        if self.info.is_main and self.val_loader is not None:
            metrics = self.metrics.evaluate(self.ema.model_ema, self.val_loader, self.device)
            live = DiffusionMetrics(self.config.model, self.config.train.val_batches, 0)
            metrics["val_live/loss"] = live.evaluate(self.model, self.val_loader, self.device)["val/loss"]
            self.tracker.update(self.step, metrics)
            metrics["val/best_loss"] = float(self.tracker.best) if self.tracker.best is not None else math.nan
            self.logger.log(self.step, metrics)
            self.last_metrics = metrics
        self.stopped = broadcast_flag(self.info, self.tracker.should_stop, self.device)
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path | None:
        """Rank 0 writes ``checkpoints/step_XXXXXXXX`` (all ranks must call: RNG states are gathered)."""
        rng_states = all_gather_object(self.info, get_rng_state())
        path = None
        if self.info.is_main:
            train_state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "lr_schedule": self.lr_schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "ema": self.ema.state(),
                "tracker": self.tracker.state(),
                "rng": rng_states,
                "world_size": self.info.world_size,
            }
            cls = type(self.normalizer)
            path = save_checkpoint(
                self.ckpt_root,
                self.step,
                self.model.state_dict(),
                self.ema.model_ema.state_dict(),
                self.normalizer.state_dict(),
                self.config.to_dict(),
                train_state,
                f"{cls.__module__}:{cls.__qualname__}",
                self.last_metrics,
                describe(self.state_layout, self.config.to_dict()["model"]) if self.state_layout else None,
            )
            best = f"step_{self.tracker.best_step:08d}" if self.tracker.best_step >= 0 else ""
            prune_checkpoints(self.ckpt_root, self.config.train.keep_last, keep=(best,))
        barrier(self.info)
        return path

    def _init_weights(self, path: Path) -> None:
        """Start from another run's EMA weights (fine-tuning, e.g. on new data); the optimizer, schedule, step count
        and normalizer start fresh. The architecture must match exactly, except that a command embedding may be
        added to an unconditional model (``command_dim`` 0 → C): it starts at zero output, so the fine-tuned model
        starts as the source model."""
        src = load_checkpoint(path, load_train_state=False)
        src_model = {"command_dim": 0, **src.config.get("run_config", {}).get("model", {})}
        mine = self.config.model.to_dict()
        free = (
            "state_loss_weight",
            "action_loss_weight",
            "history_actions",
            "history_action_noise",
            "history_state_noise",
            "uniform_level_prob",
            "dropout",
            "attn_dropout",
            "action_state_lookahead",
            "command_dropout",
        )  # these change no weight shapes
        adds_command = src_model["command_dim"] == 0 and mine["command_dim"] > 0
        arch = [k for k in mine if k not in free and src_model.get(k, mine[k]) != mine[k]
                and not (k == "command_dim" and adds_command)]  # fmt: skip
        if arch:
            raise ValueError(f"--init-from {path}: model config differs in {arch}; fine-tuning needs the same "
                             f"architecture")  # fmt: skip
        res = self.model.load_state_dict(src.ema, strict=not adds_command)
        if adds_command and (
            res.unexpected_keys or any(".command_embedding." not in "." + k for k in res.missing_keys)
        ):
            raise ValueError(f"--init-from {path}: unexpected {res.unexpected_keys}, missing {res.missing_keys}")
        log.info("initialized weights from %s (EMA)%s", src.path, " + a new command embedding" if adds_command else "")

    def _restore(self, ckpt) -> None:
        saved = ckpt.config["run_config"]["model"]
        if saved != self.config.model.to_dict():
            raise CheckpointError(f"{ckpt.path}: model config differs from the requested one; saved: {saved}")
        _check_same_normalizer(self.normalizer.state_dict(), ckpt.normalizer, ckpt.path)
        ts = ckpt.train_state
        if ts is None:
            raise CheckpointError(f"{ckpt.path} has no train_state.pt: cannot resume training from it")
        self.model.load_state_dict(ckpt.model)
        self.ema.model_ema.load_state_dict(ckpt.ema)
        self.optimizer.load_state_dict(ts["optimizer"])
        self.lr_schedule.load_state_dict(ts["lr_schedule"])
        if ts["scaler"] and self.scaler.is_enabled():  # empty when saved without fp16 (e.g. on CPU)
            self.scaler.load_state_dict(ts["scaler"])
        self.ema.load_state(ts["ema"])
        self.tracker.load_state(ts["tracker"])
        self.step = int(ts["step"])
        self.last_metrics = dict(ckpt.config.get("metrics", {}))
        rng = ts["rng"]
        if len(rng) == self.info.world_size:
            set_rng_state(rng[self.info.rank])
        else:
            log.warning(
                "checkpoint was written by %d processes, now %d: RNG streams are re-seeded",
                len(rng),
                self.info.world_size,
            )
            seed_everything(self.config.train.seed + 7919 * self.step + self.info.rank)

    def close(self) -> None:
        self.logger.close()


def _amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: only on CUDA; "auto" = bf16 where supported, else fp16."""
    if device.type != "cuda" or mode == "no":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def _fixed_val_loader(dataset: Dataset, tc) -> DataLoader:
    """The same random subset of validation windows, in the same order, at every evaluation (consecutive windows
    overlap by 20 of 21 steps, so the first N windows would cover only a few seconds of one episode)."""
    needed = min(len(dataset), max(tc.val_batches, tc.sample_batches, 1) * tc.batch_size)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(tc.seed + 12_345))[:needed]
    return DataLoader(Subset(dataset, order.tolist()), batch_size=tc.batch_size, shuffle=False, num_workers=0)


def _check_dataset(dataset: Dataset, config: RunConfig, split: str) -> None:
    c = config.model
    if len(dataset) == 0:
        raise ValueError(f"the {split} dataset is empty")
    item = dataset[0]
    if not isinstance(item, dict) or "states" not in item or "actions" not in item:
        raise ValueError(f"{split} dataset items must be dicts with 'states' and 'actions'; got {type(item).__name__}")
    s, a = item["states"], item["actions"]
    if (
        tuple(s.shape) != (c.window, c.state_dim)
        or a.ndim != 2
        or a.shape[0] < c.action_window
        or a.shape[1] != c.action_dim
    ):
        raise ValueError(
            f"{split} windows must be states ({c.window}, {c.state_dim}) and actions (>= "
            f"{c.action_window}, {c.action_dim}) per the model config; got {tuple(s.shape)} and "
            f"{tuple(a.shape)}"
        )


def _check_same_normalizer(current: dict[str, torch.Tensor], saved: dict[str, torch.Tensor], where: Path) -> None:
    if set(current) != set(saved) or any(not torch.equal(current[k].cpu(), saved[k]) for k in current):
        raise CheckpointError(f"{where}: the data normalizer differs from the one the checkpoint was trained with")


def _progress_bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, dynamic_ncols=True, desc="train")
