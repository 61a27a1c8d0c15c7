# ruff: noqa: B023, BLE001  (lambdas are called inside their loop iteration; the catch-all records partial results)
"""One-shot GPU check (run once on a machine with an NVIDIA GPU; this project's CPU machine has none).

Measures, for the shipped checkpoint (or ``--checkpoint``): training samples/s (synthetic windows, bf16), ONNX export, TensorRT FP32 and FP16 engine build
times, their parity with torch (one step and a full guided DDIM plan, the tolerances of
``bm_planner/export/parity.py``), and per-step / per-plan latency of CUDA torch, TensorRT and, for reference,
ONNX Runtime on the CPU. Then runs ``bm-bench planner`` (which adds the CUDA rows). Everything goes to ``--out``
(default ``$OUT`` or ``outputs/gpu_check``) as ``gpu_check.json`` plus the bench files. Budget: ~3 min on an H100.

    pip install -e '.[trt]' && python tools/gpu_check.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
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


def _train_throughput(config, device: str, batch: int | None = None, seconds: float = 8.0) -> dict:
    """Training samples/s of one preset on synthetic normalized windows (model compute only, no data loading):
    AdamW steps with bf16 autocast on CUDA (the trainer's "auto" precision), float32 on the CPU."""
    from bm_planner.model import StateActionDiffusionModel

    batch = batch or (512 if device == "cuda" else 32)
    model = StateActionDiffusionModel(config).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    c = config
    s = torch.randn(batch, c.window, c.state_dim, device=device)
    act = torch.randn(batch, c.action_window, c.action_dim, device=device)
    cmd = torch.randn(batch, c.command_dim, device=device) if c.command_dim else None

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model.compute_loss(s, act, command=cmd).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return {"batch": batch, "steps": n, "samples_per_s": n * batch / (time.perf_counter() - t0),
            "precision": "bf16 autocast" if device == "cuda" else "fp32"}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="assets/planner-small-v2")
    p.add_argument("--out", default=os.environ.get("OUT", "outputs/gpu_check"))
    p.add_argument("--skip-bench", action="store_true")
    p.add_argument("--repeats", type=int, default=20, help="replans per bm-bench row")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from bm_planner.backends import with_backend
    from bm_planner.backends.tensorrt import TensorRTDenoiser, build_engine, tensorrt_available
    from bm_planner.bench_planner import command_kwargs, history, load_planner
    from bm_planner.export.onnx_export import export_onnx, read_metadata
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
    from bm_planner.model.samplers import FastDDIMSampler

    report: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "tensorrt": tensorrt_available()}  # fmt: skip
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    tmp = Path(tempfile.mkdtemp(prefix="bm-gpu-check-"))  # ONNX files and engines (base's is ~80 MB) stay out of --out
    try:
        for preset in ("small", "base"):
            model, norm, rep, source = load_planner(preset, a.checkpoint)
            r: dict = {"source": source, "parameters": model.num_parameters()}
            r["train_samples_per_s"] = _train_throughput(model.config, dev)
            print(json.dumps({preset: r}), flush=True)
            t0 = time.perf_counter()
            onnx_path = export_onnx(model, tmp / f"{preset}.onnx", norm, rep)
            r["export_s"] = time.perf_counter() - t0
            guide = joystick_guidance(norm, rep, batch=2)
            hs, ha = history(model.config)
            cmd = command_kwargs(model.config)
            xs = random_step_inputs(model.config, batch=1)
            if dev == "cuda":
                cuda_model = copy.deepcopy(model).to("cuda")
                xs_cuda = [x.cuda() for x in xs]
                with torch.no_grad():
                    r["torch_cuda_step"] = _latency(lambda: cuda_model.denoiser(*xs_cuda))
                guide_cuda = joystick_guidance(copy.deepcopy(norm).cuda(), rep)
                cmd_cuda = {k: v.cuda() for k, v in cmd.items()}
                r["torch_cuda_plan_guided_10"] = _latency(lambda: cuda_model.sample(
                    hs.cuda(), ha.cuda(), num_steps=10, sampler=FastDDIMSampler(), guidance=guide_cuda, **cmd_cuda), 20)  # fmt: skip
            onnx_cpu = with_backend(model, "onnx", onnx_path=onnx_path)
            r["onnx_cpu_step_err"] = step_error(model, onnx_cpu.denoiser)
            for fp16 in (False, True):
                tag = "trt_fp16" if fp16 else "trt_fp32"
                if not report["tensorrt"][0]:
                    r[tag] = {"skipped": report["tensorrt"][1]}
                    continue
                data, secs = build_engine(onnx_path, tmp / f"{preset}.{tag}.engine", fp16=fp16)
                den = TensorRTDenoiser(data, read_metadata(onnx_path))
                fast = model.with_denoiser(den)
                step, plan = step_error(model, den), plan_error(model, fast, guide)
                tol = (FP16_STEP_ATOL, FP16_PLAN_ATOL) if fp16 else (STEP_ATOL, PLAN_ATOL)
                with torch.no_grad():
                    lat_step = _latency(lambda: den(*xs))
                lat_plan = _latency(lambda: fast.sample(hs, ha, num_steps=10, sampler=FastDDIMSampler(),
                                                        guidance=joystick_guidance(norm, rep), **cmd), 20)  # fmt: skip
                r[tag] = {"build_s": secs, "step_err": step, "plan_err": plan, "ok": step <= tol[0] and plan <= tol[1],
                          "step": lat_step, "plan_guided_10": lat_plan}  # fmt: skip
            report[preset] = r
            print(json.dumps({preset: r}, indent=1), flush=True)
    except Exception:  # report what was measured, then the error
        report["error"] = traceback.format_exc()
        print(report["error"], file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    if not a.skip_bench:
        from bm_planner.bench_planner import main as bench

        backends = "torch,onnx+fast" + (",torch-cuda+fast" if dev == "cuda" else "")
        backends += ",tensorrt+fast" if report["tensorrt"][0] else ""
        bench(["planner", "--configs", "small,base", "--repeats", str(a.repeats), "--threads", "1", "--no-memory",
               "--backends", backends, "--out", str(out)])  # fmt: skip
    return 1 if "error" in report else 0


if __name__ == "__main__":
    raise SystemExit(main())
