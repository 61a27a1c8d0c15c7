# ruff: noqa: B023, BLE001  (lambdas are called inside their loop iteration; the catch-all records partial results)
"""One-shot GPU check (run once on a machine with an NVIDIA GPU; this project's CPU machine has none).

Measures, for the shipped checkpoint (or ``--checkpoint``): ONNX export, TensorRT FP32 and FP16 engine build
times, their parity with torch (one step and a full guided DDIM plan, the tolerances of
``bm_planner/export/parity.py``), and per-step / per-plan latency of CUDA torch, TensorRT and, for reference,
ONNX Runtime on the CPU. Then runs ``bm-bench planner`` (which adds the CUDA rows). Everything goes to ``--out``
(default ``$OUT`` or ``outputs/gpu_check``) as ``gpu_check.json`` plus the bench files. Budget: ~3 min on an H100.

    pip install -e '.[trt]' && python tools/gpu_check.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch


def _latency(fn, repeats: int = 50) -> dict:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"p50_ms": 1e3 * float(np.median(times)), "p99_ms": 1e3 * float(np.percentile(times, 99))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="assets/planner-small-v1")
    p.add_argument("--out", default=os.environ.get("OUT", "outputs/gpu_check"))
    p.add_argument("--skip-bench", action="store_true")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from bm_planner.bench_planner import history, load_planner
    from bm_planner.export.fast_sampler import install_fast_sampler
    from bm_planner.export.onnx_export import export_onnx
    from bm_planner.export.ort import with_backend
    from bm_planner.export.parity import (
        FP16_PLAN_ATOL,
        FP16_STEP_ATOL,
        PLAN_ATOL,
        STEP_ATOL,
        joystick_guidance,
        plan_error,  # fmt: skip
        random_step_inputs,
        step_error,
    )
    from bm_planner.export.tensorrt import TensorRTDenoiser, build_engine, tensorrt_available

    report: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "tensorrt": tensorrt_available()}  # fmt: skip
    try:
        for preset in ("small", "base"):
            model, norm, rep, source = load_planner(preset, a.checkpoint)
            r: dict = {"source": source}
            t0 = time.perf_counter()
            onnx_path = export_onnx(model, out / f"{preset}.onnx", norm, rep)
            r["export_s"] = time.perf_counter() - t0
            guide = joystick_guidance(norm, rep, batch=2)
            hs, ha = history(model.config)
            xs = random_step_inputs(model.config, batch=1)
            cuda_model = install_fast_sampler(__import__("copy").deepcopy(model).to("cuda"))
            xs_cuda = [x.cuda() for x in xs]
            with torch.no_grad():
                r["torch_cuda_step"] = _latency(lambda: cuda_model.denoiser(*xs_cuda))
            guide_cuda = joystick_guidance(__import__("copy").deepcopy(norm).cuda(), rep)
            r["torch_cuda_plan"] = _latency(lambda: cuda_model.sample(hs.cuda(), ha.cuda(), num_steps=10, sampler="ddim",
                                                                      guidance=guide_cuda), 20)  # fmt: skip
            onnx_cpu = with_backend(model, "onnx", onnx_path=onnx_path)
            r["onnx_cpu_step_err"] = step_error(model, onnx_cpu.denoiser)
            for fp16 in (False, True):
                tag = "trt_fp16" if fp16 else "trt_fp32"
                if not report["tensorrt"][0]:
                    r[tag] = {"skipped": report["tensorrt"][1]}
                    continue
                data, secs = build_engine(onnx_path, out / f"{preset}.{tag}.engine", fp16=fp16)
                den = TensorRTDenoiser(data)
                fast = __import__("copy").copy(model)
                fast._modules = dict(model._modules)
                fast.denoiser = den
                install_fast_sampler(fast)
                step, plan = step_error(model, den), plan_error(model, fast, guide)
                tol = (FP16_STEP_ATOL, FP16_PLAN_ATOL) if fp16 else (STEP_ATOL, PLAN_ATOL)
                with torch.no_grad():
                    lat_step = _latency(lambda: den(*xs))
                lat_plan = _latency(lambda: fast.sample(hs, ha, num_steps=10, sampler="ddim",
                                                        guidance=joystick_guidance(norm, rep)), 20)  # fmt: skip
                r[tag] = {"build_s": secs, "step_err": step, "plan_err": plan, "ok": step <= tol[0] and plan <= tol[1],
                          "step": lat_step, "plan_guided_10": lat_plan}  # fmt: skip
            report[preset] = r
            print(json.dumps({preset: r}, indent=1), flush=True)
    except Exception:  # report what was measured, then the error
        report["error"] = traceback.format_exc()
        print(report["error"], file=sys.stderr)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    if not a.skip_bench:
        from bm_planner.bench_planner import main as bench

        bench(["planner", "--configs", "small,base", "--repeats", "30", "--threads", "1", "--out", str(out)])
    return 1 if "error" in report else 0


if __name__ == "__main__":
    raise SystemExit(main())
