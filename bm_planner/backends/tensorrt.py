"""TensorRT backend (optional extra ``bm[trt]``): build an FP32/FP16 engine from the exported ONNX denoiser.

Needs the ``tensorrt`` Python package (>= 10) and a CUDA GPU visible to torch; :func:`tensorrt_available` says
why not otherwise. Engines are built with one optimization profile (batch 1 .. ``max_batch``, optimized for
batch 1) and run on torch's current CUDA stream with torch tensors as I/O buffers, so no extra CUDA bindings are
needed. :class:`TensorRTDenoiser` has the torch denoiser's call signature, like
:class:`~bm_planner.backends.onnxruntime.OnnxDenoiser`.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from bm_planner.export.onnx_format import INPUT_NAMES, OUTPUT_NAMES, ExportError, check_metadata, read_metadata


def tensorrt_available() -> tuple[bool, str]:
    """(True, version) when TensorRT and a CUDA GPU can be used, else (False, the reason)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        return False, f"tensorrt is not installed ({exc}); pip install 'bm[trt]' on a machine with an NVIDIA GPU"
    if not torch.cuda.is_available():
        return False, f"tensorrt {trt.__version__} is installed but torch sees no CUDA GPU"
    return True, trt.__version__


def build_engine(onnx_path: str | Path, engine_path: str | Path | None = None, fp16: bool = False,
                 max_batch: int = 8, workspace_mb: int = 1024) -> tuple[bytes, float]:  # fmt: skip
    """Build a serialized engine from ``onnx_path``; returns (engine bytes, build seconds) and writes it to
    ``engine_path`` when given. Raises :class:`ExportError` with the parser's messages if parsing fails."""
    ok, why = tensorrt_available()
    if not ok:
        raise RuntimeError(why)
    import tensorrt as trt

    meta = read_metadata(onnx_path)
    c = meta["model_config"]
    t_tok, a_tok = c["n_history"] + 1 + c["horizon"], c["n_history"] + c["action_horizon"]
    dims = {"states": (t_tok, c["state_dim"]), "actions": (a_tok, c["action_dim"]), "k_states": (t_tok,),
            "k_actions": (a_tok,), "command": (c.get("command_dim", 0),), "command_drop": ()}  # fmt: skip
    names = INPUT_NAMES + (("command", "command_drop") if c.get("command_dim", 0) else ())
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    t0 = time.perf_counter()
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name in names:
        profile.set_shape(name, (1, *dims[name]), (1, *dims[name]), (int(max_batch), *dims[name]))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path}")
    data = bytes(engine)
    seconds = time.perf_counter() - t0
    if engine_path is not None:
        Path(engine_path).write_bytes(data)
    return data, seconds


class TensorRTDenoiser(nn.Module):
    """A TensorRT engine as a denoiser: torch tensors in (any device), CUDA torch tensors out on the inputs' device."""

    def __init__(self, engine: bytes, metadata: dict | None = None):
        super().__init__()
        import tensorrt as trt

        self.metadata = metadata or {}
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(engine)
        if self.engine is None:
            raise ExportError("cannot deserialize the TensorRT engine")
        self.context = self.engine.create_execution_context()
        self._torch_dtype = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                             trt.int64: torch.int64}  # fmt: skip
        cfg = self.metadata.get("model_config", {})
        self.input_names = INPUT_NAMES + (("command", "command_drop") if cfg.get("command_dim", 0) else ())
        self.dtypes = {
            n: self._torch_dtype[self.engine.get_tensor_dtype(n)] for n in (*self.input_names, *OUTPUT_NAMES)
        }

    @classmethod
    def from_onnx(cls, onnx_path: str | Path, model=None, fp16: bool = False, max_batch: int = 8):
        meta = read_metadata(onnx_path)
        if model is not None:
            check_metadata(meta, model, onnx_path)
        data, _ = build_engine(onnx_path, fp16=fp16, max_batch=max_batch)
        return cls(data, meta)

    def forward(self, states: torch.Tensor, actions: torch.Tensor, k_states: torch.Tensor, k_actions: torch.Tensor,
                command: torch.Tensor | None = None, command_drop: torch.Tensor | None = None):  # fmt: skip
        if ("command" in self.input_names) != (command is not None):
            raise ValueError("a command-conditioned engine needs a command; an unconditional one takes none")
        if command is not None and command_drop is None:
            command_drop = torch.zeros(len(command), dtype=torch.bool)
        dev = torch.device("cuda")
        ins = dict(zip(self.input_names, (states, actions, k_states, k_actions, command, command_drop)))
        bufs = {n: x.detach().to(dev, self.dtypes[n]).contiguous() for n, x in ins.items()}
        b = states.shape[0]
        outs = {"x0_states": torch.empty(b, *states.shape[1:], device=dev, dtype=self.dtypes["x0_states"]),
                "x0_actions": torch.empty(b, *actions.shape[1:], device=dev, dtype=self.dtypes["x0_actions"])}  # fmt: skip
        for n, x in bufs.items():
            self.context.set_input_shape(n, tuple(x.shape))
            self.context.set_tensor_address(n, x.data_ptr())
        for n, x in outs.items():
            self.context.set_tensor_address(n, x.data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return (outs["x0_states"].to(states.device, states.dtype),
                outs["x0_actions"].to(actions.device, actions.dtype))  # fmt: skip
