"""TensorRT engine: build from the ONNX export and check parity; skipped (with the reason) without TensorRT + GPU."""

from __future__ import annotations

import pytest
import torch

from bm_planner.backends.tensorrt import TensorRTDenoiser, build_engine, tensorrt_available
from bm_planner.export import export_onnx
from bm_planner.export.parity import FP16_STEP_ATOL, STEP_ATOL, step_error
from bm_planner.model import ModelConfig, StateActionDiffusionModel

OK, REASON = tensorrt_available()


def test_availability_reason_is_clear():
    ok, why = tensorrt_available()
    assert isinstance(ok, bool) and why
    if not ok:
        assert "tensorrt" in why.lower()


@pytest.mark.skipif(not OK, reason=f"TensorRT unavailable: {REASON}")
@pytest.mark.parametrize("fp16", [False, True])
def test_engine_parity(tmp_path, fp16):
    torch.manual_seed(0)
    model = StateActionDiffusionModel(ModelConfig(width=32, depth=2, heads=2, attn_dropout=0.0)).eval()
    path = export_onnx(model, tmp_path / "tiny.onnx")
    data, seconds = build_engine(path, tmp_path / "tiny.engine", fp16=fp16)
    assert seconds > 0 and (tmp_path / "tiny.engine").stat().st_size == len(data)
    assert step_error(model, TensorRTDenoiser(data), batch=3) <= (FP16_STEP_ATOL if fp16 else STEP_ATOL)
