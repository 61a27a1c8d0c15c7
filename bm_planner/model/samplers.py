"""Samplers: objects that turn a denoiser into a plan, chosen by the caller and passed into sampling.

``sampler(model, history_states, history_actions, num_steps=None, guidance=None, generator=None, init=None,
k_start_states=None, k_start_actions=None, command=None, noise_scale=1.0) -> Plan`` — ``model`` a
:class:`~bm_planner.model.diffusion.StateActionDiffusionModel` (or a copy running an exported denoiser,
:func:`bm_planner.backends.with_backend`), inputs and outputs normalized: history states (B, N+1, D), actions
(B, N, A); plan states (B, T, D), actions (B, Ta, A). Pass one as ``sampler=`` to
:meth:`~bm_planner.model.diffusion.StateActionDiffusionModel.sample` or to the planner/agent, like a diffusers
scheduler; the strings ``"ddpm"`` / ``"ddim"`` name the reference samplers (:func:`make_sampler`).

* :class:`DDPMSampler` — ancestral (eta = 1 by default), the reference loop :func:`~bm_planner.model.sampling.sample_plan`.
* :class:`DDIMSampler` — deterministic (eta = 0 by default), the same loop.
* :class:`FastDDIMSampler` — DDIM with precomputed coefficients, for exported denoisers:

  With a fast denoiser (ONNX Runtime: ~1 ms per step for ``small``) the reference loop's per-step Python work
  (level schedules, two scheduler steps with range checks, four history concatenations) costs about as much as the
  network. Here each plan's per-token DDIM coefficients are computed once (and cached per start levels and step
  count), so a step is ``x ← A_i · x̂0 + B_i · x`` per tensor: with ``ab``/``ab'`` the alpha-bar of a token's current
  and next level, ``A = √ab' − √(1 − ab') √ab / √(1 − ab)``, ``B = √(1 − ab') / √(1 − ab)``, and ``A = 0, B = 1``
  where the level does not change (history tokens at level 0 therefore keep their known values exactly, which is the
  reference's inpainting). The initial noise is drawn exactly as the reference draws it, so plans agree to float
  rounding (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bm_planner.model.sampling import SAMPLERS, Plan, check_noise_scale, sample_plan, start_levels
from bm_planner.model.scheduler import randn_like_gen
from bm_planner.model.schedules import level_schedule


@dataclass(frozen=True)
class _ReferenceSampler:
    """The reference loop :func:`~bm_planner.model.sampling.sample_plan` with a fixed ``eta``."""

    eta: float
    name = "ddim"

    def __post_init__(self):
        if not (math.isfinite(self.eta) and 0.0 <= self.eta <= 1.0):
            raise ValueError(f"{type(self).__name__}.eta must be in [0, 1], got {self.eta!r}")

    def __call__(self, model, history_states: torch.Tensor, history_actions: torch.Tensor,
                 num_steps: int | None = None, guidance=None, generator: torch.Generator | None = None,
                 init: Plan | tuple[torch.Tensor, torch.Tensor] | None = None,
                 k_start_states: int | Sequence[int] | torch.Tensor | None = None,
                 k_start_actions: int | Sequence[int] | torch.Tensor | None = None,
                 command: torch.Tensor | None = None, noise_scale: float = 1.0) -> Plan:  # fmt: skip
        return sample_plan(model, model.scheduler, model.config, history_states, history_actions, num_steps,
                           self.name, guidance, generator, init, k_start_states, k_start_actions, self.eta, command,
                           noise_scale)  # fmt: skip


@dataclass(frozen=True)
class DDPMSampler(_ReferenceSampler):
    """Ancestral sampling: ``eta`` = 1 (DDPM) by default; any eta in [0, 1] interpolates towards DDIM."""

    eta: float = 1.0
    name = "ddpm"


@dataclass(frozen=True)
class DDIMSampler(_ReferenceSampler):
    """Deterministic DDIM (``eta`` = 0) by default: the same noise gives the same plan."""

    eta: float = 0.0
    name = "ddim"


class FastDDIMSampler:
    """DDIM (eta = 0) with per-plan coefficient tables (see the module docstring): numerically
    :class:`DDIMSampler` to float rounding, with less Python work per step. Made for exported denoisers (ONNX
    Runtime, TensorRT), where that work costs as much as the network. One object serves any number of models; its
    tables are cached per scheduler, start levels, step count, device and dtype."""

    name = "ddim"
    eta = 0.0

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple] = {}

    def __repr__(self) -> str:
        return "FastDDIMSampler()"

    def _tables(self, scheduler, ks0: torch.Tensor, ka0: torch.Tensor, n: int, device, dtype) -> tuple:
        key = (id(scheduler), tuple(ks0.tolist()), tuple(ka0.tolist()), n, str(device), dtype)
        if key not in self._cache:
            ab = scheduler.alphas_cumprod.to(torch.float64)

            def coeffs(k0: torch.Tensor):
                levels = torch.stack([level_schedule(k0, i, n) for i in range(n + 1)])  # (n + 1, L)
                a, a_next = ab[levels[:-1]], ab[levels[1:]]
                inv = 1.0 / (1.0 - a).clamp(min=1e-20).sqrt()
                coef_x0 = a_next.sqrt() - (1.0 - a_next).clamp(min=0.0).sqrt() * a.sqrt() * inv
                coef_x = (1.0 - a_next).clamp(min=0.0).sqrt() * inv
                keep = a_next == a
                coef_x0, coef_x = coef_x0.masked_fill(keep, 0.0), coef_x.masked_fill(keep, 1.0)
                cast = dict(device=device, dtype=dtype)  # noqa: C408
                return levels[:-1].to(device), coef_x0[..., None].to(**cast), coef_x[..., None].to(**cast)

            ls, s0, s1 = coeffs(ks0)
            la, a0, a1 = coeffs(ka0)
            tops = [int(max(ls[i].max(), la[i].max())) for i in range(n)]
            # the scheduler is kept with its tables, so its id cannot be reused by another one while cached
            self._cache[key] = (ls, s0, s1, la, a0, a1, tops, scheduler)
        return self._cache[key][:7]

    @torch.no_grad()
    def __call__(self, model, history_states: torch.Tensor, history_actions: torch.Tensor,
                 num_steps: int | None = None, guidance=None, generator: torch.Generator | None = None,
                 init: Plan | tuple[torch.Tensor, torch.Tensor] | None = None,
                 k_start_states: int | Sequence[int] | torch.Tensor | None = None,
                 k_start_actions: int | Sequence[int] | torch.Tensor | None = None,
                 command: torch.Tensor | None = None, noise_scale: float = 1.0) -> Plan:  # fmt: skip
        m, c = model, model.config
        noise_scale = check_noise_scale(noise_scale)
        reference = (m, history_states, history_actions, num_steps, guidance, generator, init, k_start_states,
                     k_start_actions, command, noise_scale)  # fmt: skip
        if not isinstance(history_states, torch.Tensor):  # the reference loop reports the error
            return DDIMSampler()(*reference)
        b = history_states.shape[0]
        if tuple(history_states.shape[1:]) != (c.n_known_states, c.state_dim) or tuple(history_actions.shape) != (
            b,
            c.n_known_actions,
            c.action_dim,
        ):
            raise ValueError(f"history must be (B, {c.n_known_states}, {c.state_dim}) / (B, {c.n_known_actions}, "
                             f"{c.action_dim}); got {tuple(history_states.shape)} / {tuple(history_actions.shape)}")  # fmt: skip
        extra = ()
        if command is not None:
            if tuple(command.shape) != (b, c.command_dim) or not bool(torch.isfinite(command).all()):
                raise ValueError(f"command must be a finite ({b}, {c.command_dim}) tensor; got {tuple(command.shape)}")
            extra = (command,)
        device, dtype = history_states.device, history_states.dtype
        ds, da = (c.num_levels, c.num_levels) if init is None else (c.warm_start_state_level, c.warm_start_action_level)
        ks0 = start_levels(k_start_states, ds, c.n_known_states, c.horizon, c.num_levels, "k_start_states")
        ka0 = start_levels(k_start_actions, da, c.n_known_actions, c.action_horizon, c.num_levels, "k_start_actions")
        top = int(max(ks0.max(), ka0.max()))
        n = top if num_steps is None else int(num_steps)
        if init is None:
            if (
                int(ks0[c.n_known_states :].min()) != c.num_levels
                or int(ka0[c.n_known_actions :].min()) != c.num_levels
            ):
                raise ValueError("without init every future token must start at level K; pass init= for a warm start")
            x_s = torch.zeros(b, c.window, c.state_dim, device=device, dtype=dtype)
            x_a = torch.zeros(b, c.action_window, c.action_dim, device=device, dtype=dtype)
        else:
            x_s, x_a = (init.states, init.actions) if isinstance(init, Plan) else init
            if tuple(x_s.shape) != (b, c.window, c.state_dim) or tuple(x_a.shape) != (b, c.action_window, c.action_dim):
                raise ValueError(
                    f"init must be (B, {c.window}, {c.state_dim}) / (B, {c.action_window}, {c.action_dim})"
                )
        if top == 0 or not 1 <= n <= c.num_levels:  # edge cases: the reference handles and reports them
            return DDIMSampler()(*reference)
        x_s = m.scheduler.add_noise(x_s, noise_scale * randn_like_gen(x_s, generator), ks0.to(device).expand(b, -1))
        x_a = m.scheduler.add_noise(x_a, noise_scale * randn_like_gen(x_a, generator), ka0.to(device).expand(b, -1))
        x_s = torch.cat([history_states, x_s[:, c.n_known_states :]], dim=1)
        x_a = torch.cat([history_actions, x_a[:, c.n_known_actions :]], dim=1)
        ls, s0, s1, la, a0, a1, tops = self._tables(m.scheduler, ks0, ka0, n, device, dtype)
        for i in range(n):
            p_s, p_a = m.denoiser(x_s, x_a, ls[i].expand(b, -1), la[i].expand(b, -1), *extra)
            if guidance is not None:
                g_s, g_a = guidance(p_s, p_a, tops[i])
                if g_s is not None:
                    p_s = p_s - g_s
                if g_a is not None:
                    p_a = p_a - g_a
            x_s = torch.addcmul(s1[i] * x_s, s0[i], p_s)
            x_a = torch.addcmul(a1[i] * x_a, a0[i], p_a)
        return Plan(states=x_s, actions=x_a)


def make_sampler(sampler="ddpm", eta: float | None = None, fast: bool = False):
    """A sampler object: ``sampler`` itself when it is one (then ``eta`` must be ``None``), else the reference
    sampler it names ("ddpm" | "ddim", with ``eta``); ``fast``: DDIM at eta = 0 runs as :class:`FastDDIMSampler`."""
    if not isinstance(sampler, str):
        if not callable(sampler):
            raise TypeError(f"sampler must be one of {SAMPLERS} or a sampler object; got {type(sampler).__name__}")
        if eta is not None:
            raise ValueError("eta is a setting of the sampler object; pass it to its constructor")
        return sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
    if sampler == "ddpm":
        return DDPMSampler(1.0 if eta is None else float(eta))
    if fast and (eta is None or float(eta) == 0.0):
        return FastDDIMSampler()
    return DDIMSampler(0.0 if eta is None else float(eta))


__all__ = ["DDIMSampler", "DDPMSampler", "FastDDIMSampler", "make_sampler"]
