"""The exported denoiser's file format: graph input/output names, the metadata it carries (read and checked here)
and :class:`ExportError`. Shared by the exporter (:mod:`bm_planner.export.onnx_export`) and the runtimes
(:mod:`bm_planner.backends`); imports neither."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

FORMAT = "bm-denoiser-onnx"
VERSION = 1
INPUT_NAMES = ("states", "actions", "k_states", "k_actions")
OUTPUT_NAMES = ("x0_states", "x0_actions")


def input_names(config) -> tuple[str, ...]:
    """The graph's input names for a model config: :data:`INPUT_NAMES` (+ ``"command", "command_drop"`` if
    ``command_dim`` > 0)."""
    return INPUT_NAMES + (("command", "command_drop") if getattr(config, "command_dim", 0) else ())


class ExportError(RuntimeError):
    """An export or an exported file is invalid; the message names the file or the mismatching field."""


def weights_sha256(module: torch.nn.Module) -> str:
    """SHA-256 over the module's parameters and persistent buffers (names, dtypes, shapes, bytes) in sorted order."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Decoded metadata of an exported file (raises :class:`ExportError` if it is not a bm denoiser export)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no ONNX file at {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ExportError(f"cannot read {path}: {exc}") from exc
    try:
        meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: metadata is not JSON: {exc}") from exc
    if meta.get("bm_format") != FORMAT or meta.get("bm_version") != VERSION:
        raise ExportError(f"{path} is not a {FORMAT} v{VERSION} file (bm_format={meta.get('bm_format')!r})")
    return meta


def check_metadata(meta: dict[str, Any], model, path: str | Path = "", check_weights: bool = True) -> None:
    """Raise :class:`ExportError` naming the differing fields if ``meta`` was not exported from ``model``."""
    want = model.config.to_dict()
    got = meta.get("model_config", {})
    diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    if diff:
        detail = ", ".join(f"{k}: file {got.get(k)!r} vs model {want.get(k)!r}" for k in diff[:6])
        raise ExportError(f"{path}: model config mismatch ({detail}); re-export with bm-export")
    if check_weights and meta.get("weights_sha256") != weights_sha256(model.denoiser):
        raise ExportError(
            f"{path}: weights differ from the model's (weights_sha256 mismatch); re-export with bm-export"
        )


__all__ = ["FORMAT", "INPUT_NAMES", "OUTPUT_NAMES", "VERSION", "ExportError", "check_metadata", "input_names",
           "read_metadata", "weights_sha256"]  # fmt: skip
