"""ONNX Runtime backend: :class:`OnnxDenoiser`, a drop-in for the torch denoiser (:func:`bm_planner.backends.with_backend`).

``OnnxDenoiser(path)(states, actions, k_states, k_actions) -> (x0_states, x0_actions)`` has the torch denoiser's
call signature and shapes (states (B, T, D), actions (B, Ta, A) float; levels (B, T) / (B, Ta) int), so
:func:`~bm_planner.backends.with_backend` can swap it into a :class:`StateActionDiffusionModel` and the unchanged sampler and guidance
code drive it. Inputs are copied to CPU float32 / int64 numpy arrays; outputs come back as torch tensors on the
inputs' device and dtype.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from bm_planner.export.onnx_format import OUTPUT_NAMES, ExportError, check_metadata, input_names, read_metadata


class _Config:
    """The one config field the ONNX denoiser's callers read (``command_dim``)."""

    def __init__(self, command_dim: int):
        self.command_dim = command_dim


def make_session(path: str | Path, threads: int | None = 1, providers: list[str] | None = None):
    """An ``onnxruntime.InferenceSession`` with all graph optimizations, ``threads`` intra-op threads (None: ORT's
    default, one per core), one inter-op thread and sequential execution (best for batch-1 control)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads=}")
        so.intra_op_num_threads = int(threads)
        if int(threads) == 1:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=providers or ["CPUExecutionProvider"])


class OnnxDenoiser(nn.Module):
    """The exported denoiser run by ONNX Runtime (no parameters; ``metadata`` holds the file's metadata).

    ``model``: when given, the file's config and weight hash must match it (:class:`ExportError` otherwise).
    """

    def __init__(self, path: str | Path, model=None, threads: int | None = 1, providers: list[str] | None = None):
        super().__init__()
        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        if model is not None:
            check_metadata(self.metadata, model, self.path)
        self.session = make_session(self.path, threads, providers)
        names = [i.name for i in self.session.get_inputs()]
        self.conditioned = "command" in names
        self.config = _Config(int(self.metadata.get("model_config", {}).get("command_dim", 0)))
        expect = list(input_names(self.config))
        if names != expect:
            raise ExportError(f"{self.path}: inputs {names}, expected {expect}; re-export with bm-export")

    def forward(self, states: torch.Tensor, actions: torch.Tensor, k_states: torch.Tensor, k_actions: torch.Tensor,
                command: torch.Tensor | None = None, command_drop: torch.Tensor | None = None):  # fmt: skip
        if self.conditioned != (command is not None):
            raise ValueError(f"{self.path}: " + ("this command-conditioned export needs a command" if self.conditioned
                             else "this export takes no command (unconditional model)"))  # fmt: skip
        feed = {
            "states": np.ascontiguousarray(states.detach().to("cpu", torch.float32).numpy()),
            "actions": np.ascontiguousarray(actions.detach().to("cpu", torch.float32).numpy()),
            "k_states": np.ascontiguousarray(k_states.detach().to("cpu", torch.int64).numpy()),
            "k_actions": np.ascontiguousarray(k_actions.detach().to("cpu", torch.int64).numpy()),
        }
        if command is not None:
            feed["command"] = np.ascontiguousarray(command.detach().to("cpu", torch.float32).numpy())
            drop = torch.zeros(len(command), dtype=torch.bool) if command_drop is None else command_drop
            feed["command_drop"] = np.ascontiguousarray(drop.detach().to("cpu", torch.bool).numpy())
        p_s, p_a = self.session.run(list(OUTPUT_NAMES), feed)
        return (torch.from_numpy(p_s).to(states.device, states.dtype),
                torch.from_numpy(p_a).to(actions.device, actions.dtype))  # fmt: skip
