"""``bm-bench planner``: per-replan latency of the guided planner on each backend, against the FLOP limit, in one run.

For each model (``small``: the shipped checkpoint; ``base``: random init, since no trained base checkpoint exists)
and each thread count, every backend (eager torch, ONNX Runtime; CUDA torch and TensorRT where a GPU exists) plans
``repeats`` times from a fixed history with the joystick guidance on (``JoystickCost`` through
``ClassifierGuidance``, as :class:`~bm_planner.agent.DiffusionAgent` builds it):

* cold start: DDIM, ``num_steps`` steps from pure noise (level K);
* warm start: the previous plan shifted by ``replan_every`` (``Plan.shifted``), re-noised to the config's warm-start
  levels (states 14, actions 4 of 20) and denoised in ``ceil(num_steps · 14 / K)`` steps.

The guidance gradient is the closed-form one (``GuidanceConfig.analytic``, what the agent uses) on every backend;
eager torch is also timed with autograd through the decoder (the reference implementation, ``guidance = autograd``).

Reported per row: plan latency p50/p99 (ms), the denoiser's per-step latency (median, ms), the time spent outside
the network (sampler + guidance = p50 − steps · step), the speed-up over eager torch with autograd guidance (the
reference) and over eager torch with the same closed-form guidance (CPU p50, same model/threads/start),
and the real-time factor p99 / replan period (``replan_every · 0.02 s``; ≤ 1 means the planner keeps up at 50 Hz;
the "as shipped" rows use the shipped ``replan_every``).
Per model: FLOPs per step and per plan (``torch.utils.flop_counter``), this machine's measured float32 matmul
FLOP/s for a model-shaped matmul ((T + Ta) × W @ W × 4W, same thread count), and the ratio of the measured step
latency to that limit (FLOPs / FLOP/s). Memory (separate processes, so one backend's allocations do not hide
another's): RSS growth from loading the model to the end of planning, and the process's peak RSS. Example::

    nice -n 10 bm-bench planner --configs small,base --repeats 50 --out outputs/bench_planner
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from bm_planner import SHIPPED_PLANNER

DEFAULT_CHECKPOINT = str(SHIPPED_PLANNER)
CONTROL_DT = 0.02


@dataclass
class PlannerBenchConfig:
    """``configs``: model presets; ``checkpoint``: weights for a preset whose config matches it (else random init);
    ``repeats``: timed replans per row; ``threads``: intra-op thread counts to compare."""

    configs: tuple[str, ...] = ("small", "base")
    checkpoint: str | None = DEFAULT_CHECKPOINT
    repeats: int = 50
    warmup: int = 3
    num_steps: int = 10
    replan_every: int = 2
    guidance_scale: float = 1.0
    threads: tuple[int, ...] = (1, 2)
    memory: bool = True
    seed: int = 0
    backends: tuple[str, ...] = field(default_factory=lambda: default_backends())

    def __post_init__(self):
        from bm_planner.model.config import MODEL_PRESETS

        bad = [c for c in self.configs if c not in MODEL_PRESETS]
        if bad or not self.configs:
            raise ValueError(f"unknown model presets {bad or self.configs!r}; choose from {sorted(MODEL_PRESETS)}")
        if self.repeats < 2 or self.warmup < 0 or not 1 <= self.num_steps <= 1000 or not 1 <= self.replan_every <= 16:
            raise ValueError(f"need repeats >= 2, warmup >= 0, 1 <= num_steps, 1 <= replan_every <= 16; got "
                             f"{self.repeats=}, {self.warmup=}, {self.num_steps=}, {self.replan_every=}")  # fmt: skip
        known = ("torch", "onnx", "torch-cuda", "tensorrt")
        if not self.backends or any(b.removesuffix("+fast") not in known for b in self.backends):
            raise ValueError(f"backends must be among {known} (each optionally '+fast'), got {self.backends!r}")
        if not self.threads or min(self.threads) < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads=}")


def default_backends() -> tuple[str, ...]:
    out = ["torch", "torch+fast", "onnx", "onnx+fast"]
    if torch.cuda.is_available():
        out.append("torch-cuda+fast")
        from bm_planner.backends.tensorrt import tensorrt_available

        if tensorrt_available()[0]:
            out.append("tensorrt+fast")
    return tuple(out)


# ---------------------------------------------------------------------------------------------- setup
def load_planner(preset: str, checkpoint: str | None):
    """(model, normalizer, state_rep, source) for ``preset``: the checkpoint's EMA weights when its config is the
    preset's (modulo training-only fields), else random init with the checkpoint's normalizer (identity without
    one). ``source`` says which."""
    from bm_planner.data.normalizer import Normalizer
    from bm_planner.data.state import StateRepresentation
    from bm_planner.model import ModelConfig, StateActionDiffusionModel

    cfg = ModelConfig.preset(preset)
    norm, rep = Normalizer.identity(cfg.state_dim, cfg.action_dim), StateRepresentation("default")
    if checkpoint and Path(checkpoint).exists():
        from bm_planner.agent import DiffusionAgent

        agent = DiffusionAgent.from_pretrained(checkpoint)
        mc = agent.model.config
        arch = ("width", "depth", "heads", "mlp_ratio", "state_dim", "action_dim", "n_history", "horizon",
                "action_horizon", "num_levels")  # fmt: skip
        if all(getattr(mc, k) == getattr(cfg, k) for k in arch):
            return agent.model, agent.normalizer, agent.rep, f"checkpoint {agent.path}"
        if mc.state_dim == cfg.state_dim:
            norm, rep = agent.normalizer, agent.rep
    torch.manual_seed(0)
    return StateActionDiffusionModel(cfg).eval(), norm, rep, "random init (no trained checkpoint)"


def backend_model(model, backend: str, threads: int, onnx_path: Path | None):
    """(``model`` on ``backend``, its DDIM sampler): backend "torch", "torch-cuda", "onnx", "tensorrt", each
    optionally + "+fast" (sampler :class:`~bm_planner.model.samplers.FastDDIMSampler` instead of the reference
    loop :class:`~bm_planner.model.samplers.DDIMSampler`)."""
    from bm_planner.backends import with_backend
    from bm_planner.model.samplers import make_sampler

    name, fast = backend.removesuffix("+fast"), backend.endswith("+fast")
    sampler = make_sampler("ddim", fast=fast)
    if name in ("torch", "torch-cuda"):
        return (copy.copy(model) if name == "torch" else copy.deepcopy(model).to("cuda")), sampler
    return with_backend(model, name, onnx_path=onnx_path, threads=threads), sampler


def history(config, device: str = "cpu", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed normalized history: states (1, N+1, D), actions (1, N, A) ~ 0.5 · N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    hs = 0.5 * torch.randn(1, config.n_known_states, config.state_dim, generator=g)
    ha = 0.5 * torch.randn(1, config.n_known_actions, config.action_dim, generator=g)
    return hs.to(device), ha.to(device)


def command_kwargs(config, device: str = "cpu") -> dict:
    """``{"command": (1, C)}`` (walk forward at 0.5 m/s) for a command-conditioned model, else ``{}``."""
    if not getattr(config, "command_dim", 0):
        return {}
    cmd = torch.zeros(1, config.command_dim)
    cmd[0, 0] = 0.5
    return {"command": cmd.to(device)}


def warm_steps(config, num_steps: int) -> int:
    """Denoising steps of a warm start: the cold schedule's steps per level times the highest warm level."""
    top = max(config.warm_start_state_level, config.warm_start_action_level)
    return max(1, math.ceil(num_steps * top / config.num_levels))


# ---------------------------------------------------------------------------------------------- measurements
def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_plans(model, guidance, cfg: PlannerBenchConfig, warm: bool, device: str = "cpu", sampler="ddim") -> dict:
    """Wall-clock latencies and process CPU times (s) of ``cfg.repeats`` replans (after ``cfg.warmup`` untimed
    ones) with ``sampler`` (a DDIM one). On a shared machine wall time includes waiting for a core; CPU time
    does not."""
    c = model.config
    hs, ha = history(c, device, cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed) if device == "cpu" else None
    steps = warm_steps(c, cfg.num_steps) if warm else cfg.num_steps
    cmd = command_kwargs(c, device)
    plan = model.sample(hs, ha, num_steps=cfg.num_steps, sampler=sampler, guidance=guidance, generator=gen, **cmd)
    times, cpu = [], []
    for i in range(cfg.warmup + cfg.repeats):
        init = plan.shifted(cfg.replan_every) if warm else None
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        plan = model.sample(
            hs, ha, num_steps=steps, sampler=sampler, guidance=guidance, generator=gen, init=init, **cmd
        )
        _sync(device)
        if i >= cfg.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"steps": steps, "times": times, "cpu_times": cpu}


def shipped_agent_config(checkpoint: str | None):
    """The :class:`~bm_planner.agent.AgentConfig` shipped with ``checkpoint`` (``agent_config.json``), or None."""
    from bm_planner.agent import AgentConfig, _shipped_agent_config

    if not checkpoint:
        return None
    d = _shipped_agent_config(checkpoint, checkpoint)
    return AgentConfig.from_dict(d) if d else None


def time_shipped_plans(model, normalizer, rep, agent_cfg, cfg: PlannerBenchConfig, fast: bool = False) -> dict:
    """Latencies (s) of the agent's replan with its shipped settings (``RollingGuidanceInference``: cold start,
    two-stage if set, joystick guidance at the shipped scale, the command input of a conditioned model);
    ``fast``: DDIM as :class:`~bm_planner.model.samplers.FastDDIMSampler`, as the agent runs it on ONNX."""
    from bm_planner.export.parity import joystick_guidance
    from bm_planner.guidance.rolling import RollingGuidanceInference
    from bm_planner.model.samplers import make_sampler

    sampler = make_sampler(agent_cfg.sampler, fast=fast)
    planner = RollingGuidanceInference(model, normalizer, rep, agent_cfg.num_steps, warm_start=False,
                                       sampler=sampler, two_stage=agent_cfg.two_stage,
                                       noise_scale=agent_cfg.noise_scale)  # fmt: skip
    guidance = joystick_guidance(normalizer, rep, scale=agent_cfg.guidance_scale) if agent_cfg.guidance_scale else None
    hs, ha = history(model.config, "cpu", cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    cmd = command_kwargs(model.config)
    times, cpu = [], []
    for i in range(cfg.warmup + cfg.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        planner.plan(hs, ha, torch.zeros(1, 3), torch.zeros(1), guidance=guidance, generator=gen, **cmd)
        if i >= cfg.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    steps = agent_cfg.num_steps * (2 if agent_cfg.two_stage else 1)
    return {"steps": steps, "times": times, "cpu_times": cpu}


def latency_row(r: dict, period: float, step_s: float | None = None, step_cpu: float | None = None,
                **fields) -> dict:  # fmt: skip
    """One table row from :func:`time_plans`-style latencies ``r`` (s): ``fields`` (config, backend, ...) first, then
    wall/CPU p50/p99/mean (ms), the per-step latency and the time outside the network when ``step_*`` are given, and
    the real-time factors p99 / ``period``. Speed-ups and the FLOP-limit ratio are left to the caller (None)."""
    t, tc = np.asarray(r["times"]), np.asarray(r["cpu_times"])
    cpu_p50, cpu_p99 = float(np.percentile(tc, 50)), float(np.percentile(tc, 99))
    return {**fields, "steps": r["steps"], "p50_ms": 1e3 * float(np.percentile(t, 50)),
            "p99_ms": 1e3 * float(np.percentile(t, 99)), "mean_ms": 1e3 * float(t.mean()),
            "cpu_p50_ms": 1e3 * cpu_p50, "cpu_p99_ms": 1e3 * cpu_p99,
            "step_ms": None if step_s is None else 1e3 * step_s,
            "step_cpu_ms": None if step_cpu is None else 1e3 * step_cpu,
            "outside_network_ms": None if step_cpu is None else 1e3 * (cpu_p50 - r["steps"] * step_cpu),
            "speedup_vs_torch": None, "speedup_vs_torch_same_guidance": None,
            "realtime_factor": float(np.percentile(t, 99)) / period, "realtime_factor_cpu": cpu_p99 / period,
            "flop_limit_ratio": None}  # fmt: skip


def time_steps(denoiser, config, repeats: int, device: str = "cpu") -> tuple[float, float]:
    """Median wall-clock latency and median process CPU time (s) of one batch-1 denoiser call."""
    from bm_planner.export.parity import random_step_inputs

    x = [t.to(device) for t in random_step_inputs(config, batch=1)]
    times, cpu = [], []
    with torch.no_grad():
        for i in range(repeats + 3):
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            denoiser(*x)
            _sync(device)
            if i >= 3:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    return float(np.median(times)), float(np.median(cpu))


def step_flops(model) -> int:
    """FLOPs of one batch-1 denoiser call (matmuls and attention, as counted by ``FlopCounterMode``)."""
    from torch.utils.flop_counter import FlopCounterMode

    from bm_planner.export.parity import random_step_inputs

    x = random_step_inputs(model.config, batch=1)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.denoiser(*x)
    return int(fc.get_total_flops())


def matmul_flops_per_s(m: int, k: int, n: int, seconds: float = 0.3) -> float:
    """Best-of-5 float32 ``(m, k) @ (k, n)`` FLOP/s on the CPU at the current thread count."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(10):
        torch.mm(a, b, out=out)
    iters = max(10, int(seconds / max(1e-7, _one(a, b, out))))
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(iters // 5 + 1):
            torch.mm(a, b, out=out)
        best = max(best, 2.0 * m * k * n * (iters // 5 + 1) / (time.perf_counter() - t0))
    return best


def _one(a, b, out) -> float:
    t0 = time.perf_counter()
    torch.mm(a, b, out=out)
    return time.perf_counter() - t0


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def memory_probe(preset: str, checkpoint: str | None, backend: str, onnx_path: str | None, plans: int = 5) -> dict:
    """Run in a fresh process: RSS growth (MB) from after the imports to the end of ``plans`` guided plans, with
    only what the backend needs loaded (ONNX: the file's session; the torch weights are dropped first)."""
    import gc

    import onnxruntime  # noqa: F401  (import cost is not model memory)

    from bm_planner.export.parity import joystick_guidance

    torch.set_num_threads(1)
    rss0 = _rss_mb()
    model, norm, rep, _ = load_planner(preset, checkpoint)
    if backend.startswith("onnx"):
        from bm_planner.backends.onnxruntime import OnnxDenoiser

        model.denoiser = OnnxDenoiser(onnx_path, threads=1)
        gc.collect()
    guidance = joystick_guidance(norm, rep)
    hs, ha = history(model.config)
    peak = _rss_mb()
    for _ in range(plans):
        model.sample(hs, ha, num_steps=10, sampler="ddim", guidance=guidance, generator=torch.Generator().manual_seed(0),
                     **command_kwargs(model.config))  # fmt: skip
        peak = max(peak, _rss_mb())
    tensors = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    return {"inference_rss_growth_mb": peak - rss0, "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch_tensor_mb": tensors}  # fmt: skip


def _memory_in_subprocess(preset: str, checkpoint: str | None, backend: str, onnx_path: Path | None) -> dict:
    cmd = [sys.executable, "-m", "bm_planner.bench_planner", "_memory", "--config", preset, "--backend", backend,
           "--checkpoint", checkpoint or "", "--onnx", str(onnx_path or "")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"rc {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- the benchmark
def run(cfg: PlannerBenchConfig, log=print) -> dict:
    """Measure everything; returns the JSON-able result (``rows``, ``models``, ``machine``)."""
    from bm_planner.export.onnx_export import cached_export
    from bm_planner.export.parity import joystick_guidance

    period = cfg.replan_every * CONTROL_DT
    rows, models = [], {}
    threads_before = torch.get_num_threads()
    for preset in cfg.configs:
        model, norm, rep, source = load_planner(preset, cfg.checkpoint)
        names = {b.removesuffix("+fast") for b in cfg.backends}
        onnx_path = cached_export(model, norm, rep) if {"onnx", "tensorrt"} & names else None
        flops = step_flops(model)
        tokens, w = model.config.window + model.config.action_window, model.config.width
        info = {"source": source, "parameters": model.num_parameters(), "flops_per_step": flops,
                "flops_per_plan_cold": flops * cfg.num_steps,
                "flops_per_plan_warm": flops * warm_steps(model.config, cfg.num_steps),
                "onnx_path": str(onnx_path) if onnx_path else None,
                "onnx_bytes": onnx_path.stat().st_size if onnx_path else None, "matmul_flops_per_s": {}}  # fmt: skip
        for threads in cfg.threads:
            torch.set_num_threads(threads)
            peak = matmul_flops_per_s(tokens, w, 4 * w)
            info["matmul_flops_per_s"][str(threads)] = peak
            base_p50: dict[str, float] = {}
            for backend in cfg.backends:
                if backend.startswith(("torch-cuda", "tensorrt")) and threads != cfg.threads[0]:
                    continue
                device = (
                    "cuda" if backend.startswith("torch-cuda") else "cpu"
                )  # TensorRT: CPU sampler, engine on the GPU
                m, sampler = backend_model(model, backend, threads, onnx_path)
                step_s, step_cpu = time_steps(m.denoiser, model.config, max(20, cfg.repeats), device)
                step_cpu = step_cpu if device == "cpu" else step_s
                grads = ("autograd", "analytic") if backend == "torch" else ("analytic",)
                for grad, start in ((g, s) for g in grads for s in ("cold", "warm")):
                    guidance = joystick_guidance(copy.deepcopy(norm).to(device), rep, scale=cfg.guidance_scale,
                                                 analytic=grad == "analytic")  # fmt: skip
                    r = time_plans(m, guidance, cfg, warm=start == "warm", device=device, sampler=sampler)
                    row = latency_row(r, period, step_s, step_cpu, config=preset, backend=backend, threads=threads,
                                      start=start, guidance=grad)  # fmt: skip
                    cpu_p50 = row["cpu_p50_ms"] / 1e3
                    if backend == "torch":
                        base_p50[(grad, start)] = cpu_p50
                    ref, same = base_p50.get(("autograd", start)), base_p50.get(("analytic", start))
                    row.update(speedup_vs_torch=ref / cpu_p50 if ref else None,
                               speedup_vs_torch_same_guidance=same / cpu_p50 if same else None,
                               flop_limit_ratio=step_cpu / (flops / peak) if device == "cpu" else None)  # fmt: skip
                    rows.append(row)
                    log(f"{preset:5s} {backend:10s} {grad:8s} t={threads} {start:4s} steps={r['steps']:2d} "
                        f"p50={row['p50_ms']:7.2f} ms p99={row['p99_ms']:7.2f} ms step={row['step_ms']:6.3f} ms "
                        f"RTF={row['realtime_factor']:.2f} | CPU p50={row['cpu_p50_ms']:7.2f} p99={row['cpu_p99_ms']:7.2f} "
                        f"step={row['step_cpu_ms']:6.3f} ms")  # fmt: skip
                if threads == cfg.threads[0] and backend in ("torch", "onnx+fast"):  # what guidance costs
                    r = time_plans(m, None, cfg, warm=False, device=device, sampler=sampler)
                    rows.append(latency_row(r, period, step_s, step_cpu, config=preset, backend=backend,
                                            threads=threads, start="cold", guidance="off"))  # fmt: skip
            shipped = shipped_agent_config(cfg.checkpoint) if source.startswith("checkpoint") else None
            if shipped is not None and threads == cfg.threads[0]:  # the agent's whole replan, as shipped
                for backend in [b for b in cfg.backends if b in ("torch", "onnx+fast")]:
                    m, _ = backend_model(model, backend, threads, onnx_path)
                    r = time_shipped_plans(m, norm, rep, shipped, cfg, fast=backend.endswith("+fast"))
                    own_period = shipped.replan_every * CONTROL_DT  # RTF against the agent's own replan period
                    label = (f"as shipped: scale {shipped.guidance_scale:g}, "
                             f"{'two-stage, ' if shipped.two_stage else ''}{shipped.sampler} {shipped.num_steps}, "
                             f"replan every {shipped.replan_every}")  # fmt: skip
                    rows.append(latency_row(r, own_period, config=preset, backend=backend, threads=threads,
                                            start="cold", guidance=label, replan_period_s=own_period))  # fmt: skip
                    log(
                        f"{preset:5s} {backend:10s} {label} p50={rows[-1]['p50_ms']:.2f} p99={rows[-1]['p99_ms']:.2f} ms"
                    )
        if cfg.memory:
            info["memory"] = {b: _memory_in_subprocess(preset, cfg.checkpoint, b, onnx_path)
                              for b in ("torch", "onnx") if b in names}  # fmt: skip
        models[preset] = info
    torch.set_num_threads(threads_before)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
               "torch": torch.__version__, "onnxruntime": _ort_version(), "cuda": torch.cuda.is_available(),
               "load_avg_end": os.getloadavg()}  # fmt: skip
    return {"config": asdict(cfg), "replan_period_s": period, "machine": machine, "models": models, "rows": rows}


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def to_markdown(result: dict) -> str:
    """The README table: one row per (model, backend, threads, start, guidance), then per-model FLOPs and memory."""
    cfg = result["config"]
    lines = [(f"Guided planner, batch 1, DDIM {cfg['num_steps']} steps cold; replan period "
             f"{1e3 * result['replan_period_s']:.0f} ms ({cfg['replan_every']} control steps at 50 Hz); "
             f"{cfg['repeats']} replans per row; {result['machine']['cpu_count']} CPUs, torch "
             f"{result['machine']['torch']}, onnxruntime {result['machine']['onnxruntime']}, load average at the end "
             f"{result['machine']['load_avg_end'][0]:.1f}."), "",
             ("| model | backend | threads | start | guidance | steps | wall p50 ms | wall p99 ms | CPU p50 ms | CPU p99 ms "
             "| step CPU ms | outside net CPU ms "
             "| × torch (CPU p50) | × torch same guidance | RTF wall | RTF CPU | step / FLOP limit |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def f(x, fmt):
        return "–" if x is None else format(x, fmt)

    for r in result["rows"]:
        lines.append(f"| {r['config']} | {r['backend']} | {r['threads']} | {r['start']} | "
                     f"{r['guidance']} | {r['steps']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['cpu_p50_ms']:.2f} | {r['cpu_p99_ms']:.2f} | "
                     f"{f(r['step_cpu_ms'], '.3f')} | {f(r['outside_network_ms'], '.2f')} | {f(r['speedup_vs_torch'], '.2f')} | "
                     f"{f(r.get('speedup_vs_torch_same_guidance'), '.2f')} | "
                     f"{r['realtime_factor']:.2f} | {r['realtime_factor_cpu']:.2f} | {f(r['flop_limit_ratio'], '.2f')} |")  # fmt: skip
    lines += ["", ("| model | weights | parameters | MFLOP/step | MFLOP/plan cold / warm | matmul GFLOP/s (threads) "
              "| memory: inference RSS growth MB (torch / onnx) | ONNX MB |"), "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, m in result["models"].items():
        mm = ", ".join(f"{v / 1e9:.1f} ({k})" for k, v in m["matmul_flops_per_s"].items())
        mem = m.get("memory", {})
        memtxt = " / ".join(f(mem.get(b, {}).get("inference_rss_growth_mb"), ".0f") for b in ("torch", "onnx"))
        lines.append(f"| {name} | {m['source']} | {m['parameters'] / 1e6:.2f} M | {m['flops_per_step'] / 1e6:.1f} | "
                     f"{m['flops_per_plan_cold'] / 1e6:.0f} / {m['flops_per_plan_warm'] / 1e6:.0f} | {mm} | {memtxt} | "
                     f"{f(m['onnx_bytes'] and m['onnx_bytes'] / 2**20, '.1f')} |")  # fmt: skip
    lines += ["", ("RTF = p99 plan latency / replan period (≤ 1: real time); RTF CPU uses the p99 of the plan's "
              "process CPU time, i.e. what a core of its own would give. step / FLOP limit = per-step CPU "
              "time ÷ (FLOPs per step ÷ matmul FLOP/s of a (T+Ta)×W @ W×4W matmul at the same thread count). "
              "“outside net” = CPU p50 − steps × step CPU: sampler, inpainting and guidance, all in torch. × torch: "
              "against eager torch with autograd guidance (the reference); same guidance: against eager torch with the "
              "closed-form gradient. guidance: analytic = closed-form gradient, autograd = through the decoder. CPU = "
              "process CPU time per plan (all threads): on a shared machine wall time also counts waiting for a core. "
              "“+fast” = FastDDIMSampler loop (bm_planner/model/samplers.py) instead of the reference DDIMSampler.")]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_results(result: dict, out: Path) -> tuple[Path, Path]:
    from bm_planner.training.checkpoint import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "bench.json", json.dumps(result, indent=1))
    atomic_write_text(out / "bench.md", to_markdown(result))
    return out / "bench.json", out / "bench.md"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bm-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("planner", help="planner latency per backend (this module's docstring)")
    pl.add_argument("--configs", default="small,base", help="comma-separated model presets")
    pl.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="weights for the preset matching its config")
    pl.add_argument("--repeats", type=int, default=50)
    pl.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    pl.add_argument("--num-steps", type=int, default=10)
    pl.add_argument("--replan-every", type=int, default=2)
    pl.add_argument("--guidance-scale", type=float, default=1.0)
    pl.add_argument(
        "--backends",
        default=None,
        help="comma-separated, default: torch,torch+fast,onnx,onnx+fast (+ torch-cuda+fast, tensorrt+fast with a GPU)",
    )
    pl.add_argument("--no-memory", action="store_true", help="skip the per-backend memory subprocesses")
    pl.add_argument("--quick", action="store_true", help="small only, 1 thread, 5 repeats, no memory (CI, < 30 s)")
    pl.add_argument("--out", default="outputs/bench_planner", help="directory for bench.json and bench.md")
    mem = sub.add_parser("_memory")  # internal: one memory probe in a fresh process
    mem.add_argument("--config", required=True)
    mem.add_argument("--backend", required=True)
    mem.add_argument("--checkpoint", default="")
    mem.add_argument("--onnx", default="")
    a = p.parse_args(argv)
    if a.cmd == "_memory":
        print(json.dumps(memory_probe(a.config, a.checkpoint or None, a.backend, a.onnx or None)))
        return 0
    if a.checkpoint and not Path(a.checkpoint).exists():
        p.error(f"--checkpoint {a.checkpoint} does not exist (pass --checkpoint '' for random init)")
    try:
        if a.quick:
            cfg = PlannerBenchConfig(configs=("small",), checkpoint=a.checkpoint or None, repeats=5, warmup=1,
                                     threads=(1,), memory=False, num_steps=a.num_steps, replan_every=a.replan_every,
                                     guidance_scale=a.guidance_scale)  # fmt: skip
        else:
            cfg = PlannerBenchConfig(configs=tuple(s for s in a.configs.split(",") if s), checkpoint=a.checkpoint or None,
                                     repeats=a.repeats, threads=tuple(int(t) for t in a.threads.split(",") if t),
                                     memory=not a.no_memory, num_steps=a.num_steps, replan_every=a.replan_every,
                                     guidance_scale=a.guidance_scale,
                                     **({"backends": tuple(a.backends.split(","))} if a.backends else {}))  # fmt: skip
    except ValueError as exc:
        p.error(str(exc))
    result = run(cfg)
    js, md = write_results(result, Path(a.out))
    print(to_markdown(result))
    print(f"wrote {js} and {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
