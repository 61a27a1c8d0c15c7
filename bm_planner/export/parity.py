"""Numerical parity of a fast backend against the torch denoiser: one step and a full guided DDIM plan.

Tolerances (max abs error in normalized units): one denoising step ``STEP_ATOL``, a full plan ``PLAN_ATOL``
(float32 backends); ``FP16_STEP_ATOL`` / ``FP16_PLAN_ATOL`` for half-precision engines.
"""

from __future__ import annotations

from pathlib import Path

import torch

STEP_ATOL = 1e-4
PLAN_ATOL = 1e-3
FP16_STEP_ATOL = 5e-2
FP16_PLAN_ATOL = 2e-1


def joystick_guidance(normalizer, state_rep, batch: int = 1, scale: float = 1.0, velocity=(0.5, 0.0), yaw_rate=0.0,
                      analytic: bool = True):  # fmt: skip
    """The agent's joystick guidance (``JoystickCost`` through ``ClassifierGuidance``), reference frame at the
    origin with yaw 0; ``velocity`` m/s in the heading frame, ``yaw_rate`` rad/s; ``analytic``: closed-form
    gradient (the agent's default) or autograd through the decoder (the reference)."""
    from bm_planner.guidance.classifier import ClassifierGuidance, GuidanceConfig
    from bm_planner.guidance.costs import JoystickCost

    cost = JoystickCost(list(velocity), yaw_rate=float(yaw_rate))
    return ClassifierGuidance(cost, state_rep, normalizer, torch.zeros(batch, 3), torch.zeros(batch),
                              GuidanceConfig(scale=scale, analytic=analytic))  # fmt: skip


def random_step_inputs(config, batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random denoiser inputs: states (B, T, D), actions (B, Ta, A) ~ N(0, 1), levels ~ U{0..K}, history at 0."""
    c = config
    g = torch.Generator().manual_seed(seed)
    k_s = torch.randint(0, c.num_levels + 1, (batch, c.window), generator=g)
    k_a = torch.randint(0, c.num_levels + 1, (batch, c.action_window), generator=g)
    k_s[:, : c.n_known_states] = 0
    k_a[:, : c.n_known_actions] = 0
    out = (torch.randn(batch, c.window, c.state_dim, generator=g),
           torch.randn(batch, c.action_window, c.action_dim, generator=g), k_s, k_a)  # fmt: skip
    if getattr(c, "command_dim", 0):  # a command-conditioned model's fifth input, (vx, vy, yaw rate)-sized values
        out = (*out, 0.5 * torch.randn(batch, c.command_dim, generator=g))
    return out


def step_error(model, fast_denoiser, batch: int = 4, seed: int = 0) -> float:
    """Max abs difference of one denoising step (random inputs and levels) between torch and ``fast_denoiser``."""
    x = random_step_inputs(model.config, batch, seed)
    with torch.no_grad():
        ref = model.denoiser(*x)
        out = fast_denoiser(*x)
    return max(float((o.float().cpu() - r.float().cpu()).abs().max()) for o, r in zip(out, ref))


def plan_error(model, fast_model, guidance=None, num_steps: int = 10, batch: int = 2, seed: int = 0,
               fast_sampler="fast") -> float:  # fmt: skip
    """Max abs difference of a full cold-start DDIM plan (same history and generator seed; optional guidance):
    ``model`` with the reference :class:`~bm_planner.model.samplers.DDIMSampler` vs ``fast_model`` with
    ``fast_sampler`` ("fast" = a :class:`~bm_planner.model.samplers.FastDDIMSampler`, as the agent runs an export)."""
    from bm_planner.model.samplers import DDIMSampler, FastDDIMSampler

    fast_sampler = FastDDIMSampler() if fast_sampler == "fast" else fast_sampler
    c = model.config
    g = torch.Generator().manual_seed(seed + 1)
    hs = torch.randn(batch, c.n_known_states, c.state_dim, generator=g) * 0.5
    ha = torch.randn(batch, c.n_known_actions, c.action_dim, generator=g) * 0.5
    cmd = {"command": torch.randn(batch, c.command_dim, generator=g) * 0.5} if getattr(c, "command_dim", 0) else {}
    plans = [m.sample(hs, ha, num_steps=num_steps, sampler=smp, guidance=guidance,
                      generator=torch.Generator().manual_seed(seed), **cmd)
             for m, smp in ((model, DDIMSampler()), (fast_model, fast_sampler))]  # fmt: skip
    return max(float((plans[0].states - plans[1].states).abs().max()),
               float((plans[0].actions - plans[1].actions).abs().max()))  # fmt: skip


def parity_report(model, onnx_path: str | Path, normalizer=None, state_rep=None, threads: int = 1) -> dict:
    """Step and plan errors of ONNX Runtime vs torch for ``model`` and its export at ``onnx_path``."""
    from bm_planner.backends import with_backend

    fast = with_backend(model, "onnx", onnx_path=onnx_path, threads=threads)
    guidance = joystick_guidance(normalizer, state_rep, batch=2) if normalizer is not None and state_rep else None
    step = step_error(model, fast.denoiser)
    plan = plan_error(model, fast, guidance)
    return {"step_max_abs_err": step, "plan_max_abs_err": plan, "step_atol": STEP_ATOL, "plan_atol": PLAN_ATOL,
            "guided": guidance is not None, "ok": step <= STEP_ATOL and plan <= PLAN_ATOL}  # fmt: skip
