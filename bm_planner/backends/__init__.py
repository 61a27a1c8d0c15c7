"""Denoiser runtimes: the same sampler and guidance drive the torch denoiser or an exported one —
ONNX Runtime on the CPU (:mod:`.onnxruntime`) or a TensorRT engine on a CUDA GPU (:mod:`.tensorrt`).
:func:`with_backend` swaps one into a model. Export itself is :mod:`bm_planner.export`. With an exported denoiser,
sample with :class:`~bm_planner.model.samplers.FastDDIMSampler` (``model.sample(..., sampler=FastDDIMSampler())``):
the reference loop's Python work per step costs about as much as the network there."""

from __future__ import annotations

from pathlib import Path

from torch import nn

BACKENDS = ("torch", "onnx", "tensorrt")


def with_backend(model, backend: str = "torch", onnx_path: str | Path | None = None, threads: int | None = 1,
                 normalizer=None, state_rep=None, checkpoint=None):  # fmt: skip
    """``model`` (returned as is for "torch") or a shallow copy whose ``denoiser`` runs on ``backend``.

    "onnx": ONNX Runtime on the CPU from ``onnx_path`` (checked against the model's config and weights), or from an
    automatic export in :func:`~bm_planner.export.onnx_export.cache_dir` when ``onnx_path`` is None.
    "tensorrt": a TensorRT engine built from that ONNX file (needs ``tensorrt`` and a CUDA GPU).
    The copy shares the scheduler and config; the original model is left unchanged. The sampler is the caller's
    choice (see the module docstring).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        if onnx_path is not None:
            raise ValueError("onnx_path is only used with backend='onnx' or 'tensorrt'")
        return model
    from bm_planner.export.onnx_export import cached_export

    if onnx_path is None:
        onnx_path = cached_export(model, normalizer, state_rep, checkpoint)
    if backend == "onnx":
        from bm_planner.backends.onnxruntime import OnnxDenoiser

        den: nn.Module = OnnxDenoiser(onnx_path, model=model, threads=threads)
    else:
        from bm_planner.backends.tensorrt import TensorRTDenoiser

        den = TensorRTDenoiser.from_onnx(onnx_path, model=model)
    return model.with_denoiser(den)


__all__ = ["BACKENDS", "with_backend"]
