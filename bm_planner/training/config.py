"""Training configuration (:class:`TrainConfig`), the run configuration (model + train) and YAML loading.

A YAML run file looks like::

    preset: small          # optional: start from a named preset (small / base / large)
    model: {width: 192}    # ModelConfig overrides
    train: {lr: 3.0e-4, batch_size: 64}

Unknown keys are rejected with the valid ones listed; values are validated by the dataclasses.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bm_planner.model.config import MODEL_PRESETS, ConfigError, ModelConfig, _check_float, _check_int, replace_checked

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, EMA, evaluation and checkpointing settings of :class:`DDPMTrainer`.

    Steps count optimizer updates; ``batch_size`` is per process (global batch = batch_size * world size).
    LR: linear warm-up from 0 over ``warmup_steps``, then cosine decay to ``lr * min_lr_ratio`` at ``total_steps``.
    EMA decay at update step n: ``1 - (1 + n / ema_inv_gamma) ** -ema_power`` clipped to [ema_min_decay,
    ema_max_decay] (diffusion_policy / diffusers ``EMAModel``).

    Other fields: ``mixed_precision`` ("auto" = bf16 where supported else fp16; autocast is used on CUDA only);
    ``num_workers`` DataLoader workers; ``mirror_prob`` left/right mirror augmentation passed to the dataset;
    ``history_actions`` the data set's history actions ("label" or "executed", see ``TrajectoryDataset``);
    ``log_every`` / ``eval_every`` / ``ckpt_every`` in steps; ``keep_last`` checkpoints kept (plus the best);
    ``val_batches`` batches for the denoising-loss metrics, ``sample_batches`` batches sampled in full with
    ``sample_steps`` DDIM steps (0 = K-step DDPM); ``early_stop_patience`` evaluations without an improvement of
    ``val/loss`` (EMA weights) by more than ``early_stop_min_delta`` before stopping (0 = never).
    """

    total_steps: int = 100_000
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 1e-3
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    warmup_steps: int = 10_000
    min_lr_ratio: float = 0.0
    grad_clip_norm: float = 1.0
    ema_power: float = 0.75
    ema_inv_gamma: float = 1.0
    ema_min_decay: float = 0.0
    ema_max_decay: float = 0.9999
    mixed_precision: str = "auto"
    seed: int = 0
    num_workers: int = 0
    mirror_prob: float = 0.0
    history_actions: str = "label"  # "label" | "executed": what the data set gives as history actions
    log_every: int = 50
    eval_every: int = 2_000
    ckpt_every: int = 2_000
    keep_last: int = 3
    val_batches: int = 8
    sample_batches: int = 2
    sample_steps: int = 0
    early_stop_patience: int = 0
    early_stop_min_delta: float = 0.0

    def __post_init__(self) -> None:
        for name in ("total_steps", "batch_size", "log_every", "eval_every", "ckpt_every", "keep_last"):
            _check_int(self, name, lo=1)
        for name in (
            "warmup_steps",
            "seed",
            "num_workers",
            "val_batches",
            "sample_batches",
            "sample_steps",
            "early_stop_patience",
        ):
            _check_int(self, name, lo=0)
        _check_float(self, "lr", lo=0.0, lo_open=True)
        for name in ("weight_decay", "grad_clip_norm", "ema_inv_gamma", "early_stop_min_delta"):
            _check_float(self, name, lo=0.0)
        _check_float(self, "ema_power", lo=0.0, lo_open=True)
        for name in ("adam_beta1", "adam_beta2"):
            _check_float(self, name, lo=0.0, hi=1.0, hi_open=True)
        if self.history_actions not in ("label", "executed"):
            raise ConfigError(
                f"TrainConfig.history_actions must be 'label' or 'executed'; got {self.history_actions!r}"
            )
        for name in ("min_lr_ratio", "mirror_prob", "ema_min_decay", "ema_max_decay"):
            _check_float(self, name, lo=0.0, hi=1.0)
        if self.ema_min_decay > self.ema_max_decay:
            raise ConfigError(f"need ema_min_decay <= ema_max_decay; got {self.ema_min_decay=}, {self.ema_max_decay=}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"mixed_precision must be one of {MIXED_PRECISION}; got {self.mixed_precision=!r}")
        if self.warmup_steps >= self.total_steps and self.warmup_steps > 0:
            raise ConfigError(f"warmup_steps ({self.warmup_steps}) must be < total_steps ({self.total_steps}): the "
                              f"learning rate would never reach its peak {self.lr:g}")  # fmt: skip

    @classmethod
    def preset(cls, name: str) -> TrainConfig:
        if name not in TRAIN_PRESETS:
            raise ConfigError(f"unknown train preset {name!r}; choose one of {sorted(TRAIN_PRESETS)}")
        return TRAIN_PRESETS[name]


#: ``base``/``large`` follow the paper (AdamW 1e-4, wd 1e-3, 10 k warm-up, cosine, EMA 0.75 / 0.9999, batch 512);
#: ``small`` is the CPU recipe: small batch, higher LR, short warm-up, many steps (see feasibility.md).
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "small": TrainConfig(
        total_steps=16_000,
        batch_size=64,
        lr=1e-3,
        warmup_steps=500,
        min_lr_ratio=0.1,
        eval_every=2_000,
        ckpt_every=500,
    ),
    "base": TrainConfig(
        total_steps=300_000, batch_size=512, lr=1e-4, warmup_steps=10_000, eval_every=5_000, ckpt_every=5_000
    ),
    "large": TrainConfig(
        total_steps=300_000, batch_size=512, lr=1e-4, warmup_steps=10_000, eval_every=5_000, ckpt_every=5_000
    ),
}


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs besides the data: ``model`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"model": dataclasses.asdict(self.model), "train": dataclasses.asdict(self.train)}

    @classmethod
    def preset(cls, name: str) -> RunConfig:
        if name not in MODEL_PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(MODEL_PRESETS)} or a YAML file")
        return cls(ModelConfig.preset(name), TrainConfig.preset(name))

    @classmethod
    def from_dict(cls, data: dict[str, Any], require_complete: bool = True) -> RunConfig:
        """From ``{"preset": str, "model"?: {...}, "train"?: {...}}`` (the preset's values, overridden), or, without
        a preset, ``model`` and ``train`` sections that give every field (as a saved run's config does): a file that
        names neither would silently train the dataclass defaults (the paper-size model). ``require_complete=False``
        skips that check (a saved run's config, which may predate a field: the default fills it)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a run config must be a mapping; got {type(data).__name__}")
        unknown = sorted(set(data) - {"preset", "model", "train"})
        if unknown:
            raise ConfigError(f"unknown top-level key(s) {unknown}; valid keys: ['model', 'preset', 'train']")
        base = cls.preset(data["preset"]) if data.get("preset") is not None else cls()
        model = replace_checked(base.model, data.get("model") or {}, "model")  # unknown keys are reported first
        train = replace_checked(base.train, data.get("train") or {}, "train")
        if data.get("preset") is None and require_complete:
            for name, cfg_cls in (("model", ModelConfig), ("train", TrainConfig)):
                missing = sorted({f.name for f in dataclasses.fields(cfg_cls)} - set(data.get(name) or {}))
                if missing:
                    raise ConfigError(f"no 'preset:' (one of {sorted(MODEL_PRESETS)}) and the {name!r} section "
                                      f"lacks {missing[:6]}{' …' if len(missing) > 6 else ''}: name a preset or "
                                      f"give every field")  # fmt: skip
        return cls(model, train)

    def replace(self, model: dict[str, Any] | None = None, train: dict[str, Any] | None = None) -> RunConfig:
        return RunConfig(
            replace_checked(self.model, model or {}, "model"), replace_checked(self.train, train or {}, "train")
        )


def load_run_config(spec: str | Path) -> RunConfig:
    """A preset name ("small", "base", "large") or a path to a YAML/JSON run file."""
    if isinstance(spec, str) and spec in MODEL_PRESETS:
        return RunConfig.preset(spec)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"config {str(spec)!r} is neither a preset {sorted(MODEL_PRESETS)} nor an existing file")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from exc
    try:
        return RunConfig.from_dict(data if data is not None else {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
