"""Checkpoints: a directory of safetensors weights + JSON config + plain-tensor training state, written atomically.

Layout of ``RUN_DIR/checkpoints/step_00012000/``::

    model.safetensors       live model weights
    ema.safetensors         EMA weights (use these for inference)
    normalizer.safetensors  the data normalizer's buffers (``normalizer.state_dict()``)
    config.json             {"format", "version", "step", "run_config", "normalizer_class", "files": {name: sha256,
                             bytes}, "metrics", "state_layout", "window"}: the checkpoint describes itself —
                             ``state_layout`` (tracked bodies, state slices: how observations become states),
                             ``window`` (N history steps, H planned steps), ``agent_config`` (inference settings,
                             when shipped); checkpoints written before carry a sidecar ``state_layout.json``
                             instead, read by the one converter :func:`legacy_description`
    train_state.pt          optimizer / LR scheduler / grad scaler / EMA / tracker / RNG states (optional; only
                            tensors, numbers, strings, lists and dicts, so it loads with ``weights_only=True``)

A checkpoint is first written to a hidden temporary directory and then renamed into place; ``checkpoints/latest``
(a one-line file naming the newest checkpoint) is replaced atomically afterwards. Loading verifies each file's size
and SHA-256 against ``config.json`` and raises :class:`CheckpointError` naming the bad file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from bm_envs.assets import sha256_file
from bm_envs.atomic import write_text

FORMAT = "bm-ddpm-checkpoint"
VERSION = 1
WEIGHT_FILES = ("model.safetensors", "ema.safetensors", "normalizer.safetensors")
TRAIN_STATE = "train_state.pt"
LATEST = "latest"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or of an unknown format; the message names the file."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``config`` is the parsed config.json; state dicts are CPU tensors."""

    path: Path
    config: dict[str, Any]
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    normalizer: dict[str, torch.Tensor]
    train_state: dict[str, Any] | None

    @property
    def step(self) -> int:
        return int(self.config["step"])


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically and flushed to disk (:func:`bm_envs.atomic.write_text`)."""
    write_text(path, text, fsync=True)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    ema_state: dict[str, torch.Tensor],
    normalizer_state: dict[str, torch.Tensor],
    run_config: dict[str, Any],
    train_state: dict[str, Any] | None = None,
    normalizer_class: str = "",
    metrics: dict[str, float] | None = None,
    description: dict[str, Any] | None = None,
) -> Path:
    """Write ``ckpt_root/step_{step:08d}`` atomically and point ``ckpt_root/latest`` at it; returns the directory."""
    ckpt_root = Path(ckpt_root)
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = ckpt_root / name
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".{name}.", suffix=".tmp"))
    try:
        states = {
            "model.safetensors": model_state,
            "ema.safetensors": ema_state,
            "normalizer.safetensors": normalizer_state,
        }
        for fname, state in states.items():
            save_file(_contiguous(state), str(tmp / fname))
        if train_state is not None:
            torch.save(train_state, tmp / TRAIN_STATE)
        files = {}
        for fname in [*states, *([TRAIN_STATE] if train_state is not None else [])]:
            _fsync_file(tmp / fname)
            files[fname] = {"sha256": sha256_file(tmp / fname), "bytes": (tmp / fname).stat().st_size}
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "step": int(step),
            "run_config": run_config,
            "normalizer_class": normalizer_class,
            "files": files,
            "metrics": metrics or {},
            **(description or {}),
        }
        (tmp / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        _fsync_file(tmp / "config.json")
        if final.exists():  # re-saving the same step (e.g. after a resume): swap, then drop the old copy
            old = ckpt_root / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(ckpt_root / LATEST, name + "\n")
    return final


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint directory from a run dir, its ``checkpoints`` dir (via ``latest``) or the checkpoint dir itself."""
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").exists():
        return path
    for root in (path / "checkpoints", path):
        latest = root / LATEST
        if latest.is_file():
            name = latest.read_text().strip()
            if not name or "/" in name or name.startswith("."):
                raise CheckpointError(f"{latest} is malformed: {name!r}")
            return root / name
    raise CheckpointError(f"no checkpoint found at {path} (expected config.json or checkpoints/{LATEST})")


def load_checkpoint(path: Path, load_train_state: bool = True, verify: bool = True) -> Checkpoint:
    """Load and verify a checkpoint (see :func:`resolve_checkpoint` for ``path``)."""
    ckpt = resolve_checkpoint(path)
    cfg_path = ckpt / "config.json"
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {cfg_path}: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT or config.get("version") != VERSION:
        raise CheckpointError(f"{cfg_path} is not a {FORMAT} v{VERSION} config")
    files = config.get("files", {})
    for fname in WEIGHT_FILES:
        if fname not in files:
            raise CheckpointError(f"{cfg_path} lists no {fname}")
    for fname, info in files.items():
        fpath = ckpt / fname
        if fname == TRAIN_STATE and not load_train_state and not fpath.exists():
            continue  # a weights-only copy (optimizer state left behind) still loads for inference / fine-tuning
        if not fpath.is_file():
            raise CheckpointError(f"{fpath} is missing")
        size = fpath.stat().st_size
        if size != info["bytes"]:
            raise CheckpointError(f"{fpath} has {size} bytes, expected {info['bytes']}: truncated or corrupt")
        if verify and sha256_file(fpath) != info["sha256"]:
            raise CheckpointError(f"{fpath} fails its SHA-256 check: corrupt")
    states = {}
    for fname in WEIGHT_FILES:
        try:
            states[fname] = load_file(str(ckpt / fname))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"cannot load {ckpt / fname}: {exc}") from exc
    train_state = None
    if load_train_state and TRAIN_STATE in files:
        try:
            train_state = torch.load(ckpt / TRAIN_STATE, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot load {ckpt / TRAIN_STATE}: {exc}") from exc
    return Checkpoint(
        ckpt,
        config,
        states["model.safetensors"],
        states["ema.safetensors"],
        states["normalizer.safetensors"],
        train_state,
    )


def load_resumable_checkpoint(run_dir: Path) -> Checkpoint:
    """The newest intact checkpoint of a run to resume from: ``latest``, or — when it is corrupt or missing — the
    newest ``step_*`` checkpoint that verifies, with a warning naming both (nothing already saved is lost)."""
    import warnings

    run_dir = Path(run_dir)
    try:
        return load_checkpoint(run_dir)
    except CheckpointError as first:
        root = run_dir / "checkpoints"
        steps = sorted((p for p in root.glob("step_*") if p.is_dir()), key=lambda p: p.name, reverse=True)
        bad = []
        for cand in steps:
            try:
                ckpt = load_checkpoint(cand)
            except CheckpointError:
                bad.append(cand)
                continue
            for b in bad:  # out of the way of pruning (it would count them among the newest), but kept
                b.rename(b.with_name(f"corrupt-{b.name}"))
            warnings.warn(f"the latest checkpoint of {run_dir} is unusable ({first}); resuming from {cand.name}, "
                          f"the newest intact one (unusable ones renamed corrupt-*)", stacklevel=2)  # fmt: skip
            return ckpt
        raise


def describe(state_layout: dict, model_config: dict, agent_config: dict | None = None) -> dict[str, Any]:
    """The self-description written into a checkpoint's ``config.json``."""
    d = {"state_layout": dict(state_layout),
         "window": {"n_history": int(model_config["n_history"]), "horizon": int(model_config["horizon"])}}  # fmt: skip
    if agent_config is not None:
        d["agent_config"] = dict(agent_config)
    return d


def _sidecar(ckpt: Checkpoint, fname: str, search) -> dict | None:
    """``fname`` beside the checkpoint, in its run directory or in one of ``search`` (first found), or None."""
    for d in (Path(ckpt.path), Path(ckpt.path).parent, Path(ckpt.path).parent.parent, *map(Path, search)):
        f = d / fname
        if f.is_file():
            try:  # a user-edited settings file: ValueError, like any other bad setting
                data = json.loads(f.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"{f}: malformed JSON: {e}") from None
            if not isinstance(data, dict):
                raise ValueError(f"{f}: expected a JSON object")
            return data
    return None


def legacy_description(ckpt: Checkpoint, *search) -> dict[str, Any]:
    """The one converter for checkpoints written before they described themselves (e.g. ``planner-small-v2`` as
    first trained): their state layout came as ``state_layout.json`` beside the checkpoint, in its run directory or
    in one of ``search``. Raises :class:`CheckpointError` when there is none (the layout is never guessed)."""
    layout = _sidecar(ckpt, "state_layout.json", search)
    if layout is None:
        raise CheckpointError(f"{ckpt.path}: the checkpoint has no state layout (config.json or a state_layout.json "
                              f"beside it); it cannot encode observations")  # fmt: skip
    return describe(layout, ckpt.config["run_config"]["model"])


def checkpoint_description(ckpt: Checkpoint, *search) -> dict[str, Any]:
    """``{"state_layout", "window", ["agent_config"]}`` of a checkpoint: its own state layout and window, else
    :func:`legacy_description`'s; the inference settings from its config.json, else from an ``agent_config.json``
    beside it (the user-editable file the shipped settings live in)."""
    if "state_layout" in ckpt.config:
        d = {k: ckpt.config[k] for k in ("state_layout", "window") if k in ckpt.config}
    else:
        d = legacy_description(ckpt, *search)
    agent = ckpt.config.get("agent_config") or _sidecar(ckpt, "agent_config.json", search)
    if agent is not None:
        d["agent_config"] = dict(agent)
    return d


def upgrade_checkpoint(path: Path, *search) -> Path:
    """Write a legacy checkpoint's description (:func:`legacy_description`) into its ``config.json`` (atomically;
    the weights are untouched and re-verified). Returns the checkpoint directory."""
    ckpt = load_checkpoint(Path(path), load_train_state=False)
    if "state_layout" in ckpt.config:
        return ckpt.path
    meta = {**ckpt.config, **legacy_description(ckpt, *search)}
    write_text(ckpt.path / "config.json", json.dumps(meta, indent=2, sort_keys=True), fsync=True)
    return ckpt.path


def prune_checkpoints(ckpt_root: Path, keep_last: int, keep: tuple[str, ...] = ()) -> None:
    """Delete all but the newest ``keep_last`` ``step_*`` directories (never those named in ``keep`` or ``latest``)."""
    ckpt_root = Path(ckpt_root)
    latest = (ckpt_root / LATEST).read_text().strip() if (ckpt_root / LATEST).is_file() else ""
    dirs = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    for p in dirs[:-keep_last] if keep_last > 0 else dirs:
        if p.name not in keep and p.name != latest:
            shutil.rmtree(p, ignore_errors=True)


def load_diffusion_model(path: Path, use_ema: bool = True, device: str | torch.device = "cpu"):
    """Build a :class:`StateActionDiffusionModel` from a checkpoint (EMA weights by default), in eval mode.

    Returns (model, checkpoint); ``checkpoint.normalizer`` holds the normalizer's tensors and
    ``checkpoint.config["normalizer_class"]`` its class ("module:QualName")."""
    from bm_planner.model import ModelConfig, StateActionDiffusionModel

    ckpt = load_checkpoint(path, load_train_state=False)
    try:
        model_cfg = ModelConfig.from_dict(ckpt.config["run_config"]["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt.path / 'config.json'} has an invalid model config: {exc}") from exc
    model = StateActionDiffusionModel(model_cfg)
    try:
        model.load_state_dict(ckpt.ema if use_ema else ckpt.model)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {ckpt.path} do not match its config: {exc}") from exc
    return model.to(device).eval(), ckpt


def load_normalizer(ckpt: Checkpoint) -> torch.nn.Module:
    """Rebuild the data normalizer saved in ``ckpt`` from its recorded class ("module:QualName"), which must offer
    ``identity(state_dim, action_dim)`` (as ``bm_planner.data.normalizer.Normalizer`` does); buffers are loaded
    strictly."""
    import importlib

    spec = ckpt.config.get("normalizer_class", "")
    module_name, _, qualname = spec.partition(":")
    try:
        cls = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt.path}: cannot import normalizer class {spec!r}: {exc}") from exc
    if not hasattr(cls, "identity"):
        raise CheckpointError(f"{ckpt.path}: normalizer class {spec!r} has no identity(state_dim, action_dim)")
    model_cfg = ckpt.config["run_config"]["model"]
    normalizer = cls.identity(model_cfg["state_dim"], model_cfg["action_dim"])
    try:
        normalizer.load_state_dict(ckpt.normalizer)
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt.path}: normalizer tensors do not match {spec!r}: {exc}") from exc
    return normalizer
