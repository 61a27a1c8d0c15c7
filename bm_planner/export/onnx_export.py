"""Export the denoiser (one denoising step) to ONNX with deployment metadata.

The graph is exactly one call of :class:`~bm_planner.model.transformer.DifferentiatedTransformer`::

    states (B, T, D) float32, actions (B, Ta, A) float32,      ->  x0_states (B, T, D) float32,
    k_states (B, T) int64,    k_actions (B, Ta) int64               x0_actions (B, Ta, A) float32

with a dynamic batch axis ``batch``; everything is in normalized units. A command-conditioned model
(``command_dim`` C > 0) has two more inputs (:func:`input_names`): ``command`` (B, C) float32 and ``command_drop``
(B,) bool, True for rows that use the learned "no command" embedding instead (classifier-free command guidance runs
both in one batch, :class:`~bm_planner.guidance.classifier_free.CommandGuidedDenoiser`). The sampler loop, history inpainting and
guidance (analytic: the cost gradient on the predicted clean trajectory) stay outside the network, so the same
Python sampler drives torch, ONNX Runtime and TensorRT.

Metadata (``metadata_props``, every value a JSON string): ``bm_format`` ("bm-denoiser-onnx"), ``bm_version``,
``model_config`` (:class:`ModelConfig` dict), ``weights_sha256`` (hash of the exported weights), ``state_layout``
(``bodies``/``dim``/``slices`` of the state representation), ``normalizer`` (state/action mean and std),
``joint_names``, ``kp`` / ``kd`` (N·m/rad, N·m·s/rad), ``default_joint_pos`` (rad), ``action_scale``,
``control_dt`` (s), ``checkpoint`` (source path, or ""), ``torch_version``, ``opset``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bm_envs import g1_constants as g1
from bm_envs.atomic import atomic_path
from bm_planner.export.onnx_format import (  # noqa: F401  (re-exported: the format's names, as before)
    FORMAT,
    INPUT_NAMES,
    OUTPUT_NAMES,
    VERSION,
    ExportError,
    check_metadata,
    input_names,
    read_metadata,
    weights_sha256,
)

DEFAULT_OPSET = 17


def build_metadata(model, normalizer=None, state_rep=None, checkpoint: str | Path | None = None,
                   opset: int = DEFAULT_OPSET) -> dict[str, str]:  # fmt: skip
    """The ``metadata_props`` dict (str -> JSON str) for ``model`` (a :class:`StateActionDiffusionModel`)."""
    norm: dict[str, Any] = {}
    if normalizer is not None:
        norm = {
            k: normalizer.state_dict()[k].tolist() for k in ("state_mean", "state_std", "action_mean", "action_std")
        }
    layout: dict[str, Any] = {}
    if state_rep is not None:
        layout = state_rep.layout()
    meta = {
        "bm_format": FORMAT,
        "bm_version": VERSION,
        "model_config": model.config.to_dict(),
        "weights_sha256": weights_sha256(model.denoiser),
        "state_layout": layout,
        "normalizer": norm,
        "joint_names": list(g1.JOINT_NAMES),
        "kp": np.asarray(g1.KP).tolist(),
        "kd": np.asarray(g1.KD).tolist(),
        "default_joint_pos": np.asarray(g1.DEFAULT_JOINT_POS).tolist(),
        "action_scale": np.asarray(g1.ACTION_SCALE).tolist(),
        "control_dt": float(g1.CONTROL_DT),
        "checkpoint": str(checkpoint or ""),
        "torch_version": torch.__version__,
        "opset": int(opset),
    }
    return {k: json.dumps(v) for k, v in meta.items()}


def _example_inputs(config, batch: int = 2) -> tuple[torch.Tensor, ...]:
    c = config
    g = torch.Generator().manual_seed(0)
    out = (
        torch.randn(batch, c.window, c.state_dim, generator=g),
        torch.randn(batch, c.action_window, c.action_dim, generator=g),
        torch.randint(0, c.num_levels + 1, (batch, c.window), generator=g),
        torch.randint(0, c.num_levels + 1, (batch, c.action_window), generator=g),
    )
    if getattr(c, "command_dim", 0):
        out = (*out, 0.5 * torch.randn(batch, c.command_dim, generator=g), torch.arange(batch) % 2 == 1)
    return out


def export_onnx(model, path: str | Path, normalizer=None, state_rep=None, checkpoint: str | Path | None = None,
                opset: int = DEFAULT_OPSET, check: bool = True) -> Path:  # fmt: skip
    """Export ``model.denoiser`` (float32, CPU, eval) to ``path`` atomically (temporary file + rename).

    ``check`` runs ``onnx.checker`` and one ONNX Runtime call against torch (max abs error <= 1e-3, else
    :class:`ExportError`). Returns the path.
    """
    import copy

    import onnx

    path = Path(path)
    if path.suffix != ".onnx":
        raise ExportError(f"output must be a .onnx file, got {str(path)!r}")
    if not 7 <= int(opset) <= 23:
        raise ExportError(f"opset must be in [7, 23] (ONNX Runtime CPU), got {opset=}")
    path.parent.mkdir(parents=True, exist_ok=True)
    den = copy.deepcopy(model.denoiser).to("cpu", torch.float32).eval()
    example = _example_inputs(model.config)
    names = input_names(model.config)
    dyn = {n: {0: "batch"} for n in (*names, *OUTPUT_NAMES)}
    with atomic_path(path) as tmp:  # a failed check leaves no file behind (and an old export in place)
        tmp = str(tmp)
        with warnings.catch_warnings():  # the forward's shape checks become trace-time constants: intended
            warnings.simplefilter("ignore")
            torch.onnx.export(den, example, tmp, dynamo=False, opset_version=int(opset), input_names=list(names),
                              output_names=list(OUTPUT_NAMES), dynamic_axes=dyn, do_constant_folding=True)  # fmt: skip
        proto = onnx.load(tmp)
        meta = build_metadata(model, normalizer, state_rep, checkpoint, opset)
        del proto.metadata_props[:]
        for k, v in meta.items():
            proto.metadata_props.add(key=k, value=v)
        proto.doc_string = "bm planner denoiser: one denoising step (see bm_planner/export/onnx_export.py)"
        if check:
            onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        if check:
            _check_against_torch(tmp, den, example)
    return path


def _check_against_torch(path: str | Path, den: torch.nn.Module, example: tuple[torch.Tensor, ...], atol: float = 1e-3):
    """The written file, run by a plain ONNX Runtime session (the tuned runtime is :mod:`bm_planner.backends`, which
    imports this package, not the other way round), agrees with torch on ``example`` to ``atol``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out = sess.run(list(OUTPUT_NAMES), {n: x.numpy() for n, x in zip(input_names(den.config), example)})
    with torch.no_grad():
        ref = den(*example)
    for name, o, r in zip(OUTPUT_NAMES, out, ref):
        err = float(np.abs(o - r.numpy()).max())
        if not err <= atol:
            raise ExportError(f"{path}: ONNX Runtime output {name} differs from torch by {err:.3g} (> {atol})")


def cache_dir() -> Path:
    """Where automatic exports go: ``$BM_CACHE_DIR/onnx`` or ``~/.cache/bm/onnx``."""
    root = os.environ.get("BM_CACHE_DIR") or Path.home() / ".cache" / "bm"
    return Path(root) / "onnx"


def cached_export(model, normalizer=None, state_rep=None, checkpoint=None, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` to the cache (keyed by weights, config, torch version and opset) unless already there."""
    cfg = json.dumps(model.config.to_dict(), sort_keys=True)
    key = hashlib.sha256(
        f"{weights_sha256(model.denoiser)}|{cfg}|{torch.__version__}|{opset}|{input_names(model.config)}".encode()
    ).hexdigest()
    path = cache_dir() / f"denoiser-{key[:24]}.onnx"
    if not path.is_file():
        export_onnx(model, path, normalizer, state_rep, checkpoint, opset)
    return path
