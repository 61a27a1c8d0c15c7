"""Deployment: ONNX export of the denoiser with metadata, ONNX Runtime / TensorRT backends, parity checks."""

from bm_planner.backends import BACKENDS, with_backend
from bm_planner.backends.onnxruntime import OnnxDenoiser
from bm_planner.export.onnx_export import ExportError, export_onnx, read_metadata

__all__ = ["BACKENDS", "ExportError", "OnnxDenoiser", "export_onnx", "read_metadata", "with_backend"]
