"""Deployment: ONNX export of the denoiser with metadata, ONNX Runtime / TensorRT backends, parity checks."""

from bm_planner.export.onnx_export import ExportError, export_onnx, read_metadata
from bm_planner.export.ort import BACKENDS, OnnxDenoiser, with_backend

__all__ = ["BACKENDS", "ExportError", "OnnxDenoiser", "export_onnx", "read_metadata", "with_backend"]
