"""Deployment: ONNX export of the denoiser with its metadata (:mod:`.onnx_export`, file format :mod:`.onnx_format`)
and the parity checks (:mod:`.parity`). The runtimes that run an export (ONNX Runtime, TensorRT) are
:mod:`bm_planner.backends`, which imports this package's format module and not the other way round."""

from bm_planner.export.onnx_export import ExportError, export_onnx, read_metadata

__all__ = ["ExportError", "export_onnx", "read_metadata"]
