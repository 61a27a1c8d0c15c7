"""Sampling loop (DDPM / DDIM) with per-token levels, history inpainting, warm start and a guidance hook.

Each iteration: the denoiser predicts clean states/actions from the current noisy ones and their levels; an optional
``guidance(x0_states, x0_actions, k) -> (grad_states, grad_actions)`` returns gradients that are subtracted from the
x0 predictions (the callable owns its weights; ``None`` entries mean no change); the known history is re-imposed on
the prediction; the scheduler steps every token to its next level; the history is re-imposed on the sample again.
Guidance sees normalized x0 predictions of shape (B, T, D) / (B, Ta, A) (detached; compute gradients with
``torch.enable_grad()`` inside the callable) and ``k``, the highest level currently present (int, K .. 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bm_planner.model.config import ModelConfig
from bm_planner.model.scheduler import NoiseScheduler, randn_like_gen
from bm_planner.model.schedules import level_schedule

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Guidance = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor | None, torch.Tensor | None]]
SAMPLERS = ("ddpm", "ddim")
#: ``sampler(model, history_states, history_actions, num_steps, guidance, generator, init, k_start_states,
#: k_start_actions, command, noise_scale) -> Plan`` (see :mod:`bm_planner.model.samplers`)
Sampler = Callable[..., "Plan"]


@dataclass
class Plan:
    """A sampled window in normalized units: states (B, T, D) and actions (B, Ta, A), history included.
    ``states[:, n_history]`` is the current state s_t0 and ``actions[:, n_history]`` the first planned action a_t0."""

    states: torch.Tensor
    actions: torch.Tensor

    def shifted(self, steps: int = 1) -> Plan:
        """The plan advanced by ``steps`` control steps, for a warm start: drops the first ``steps`` timesteps and
        repeats the last one at the end (its noise is re-added by the sampler anyway)."""
        if not 0 <= steps < min(self.states.shape[1], self.actions.shape[1]):
            raise ValueError(f"steps must be in [0, plan length); got {steps=}")

        def shift(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x[:, steps:], x[:, -1:].expand(-1, steps, -1)], dim=1) if steps else x

        return Plan(shift(self.states), shift(self.actions))


def start_levels(
    k_start: int | Sequence[int] | torch.Tensor | None,
    default: int,
    n_known: int,
    n_future: int,
    num_levels: int,
    name: str,
) -> torch.Tensor:
    """(n_known + n_future,) int64 starting levels: 0 for known tokens, ``k_start`` (int or (n_future,)) for the rest."""
    k = torch.as_tensor(default if k_start is None else k_start, dtype=torch.int64)
    if k.ndim == 0:
        k = k.expand(n_future)
    if tuple(k.shape) != (n_future,):
        raise ValueError(f"{name} must be an int or have shape ({n_future},); got shape {tuple(k.shape)}")
    if int(k.min()) < 0 or int(k.max()) > num_levels:
        raise ValueError(f"{name} must be in [0, {num_levels}]; got {k.tolist()}")
    return torch.cat([torch.zeros(n_known, dtype=torch.int64), k])


def _check(name: str, x: torch.Tensor, shape: tuple[int, ...]) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(x.shape)}")
    if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be a finite floating-point tensor (dtype {x.dtype})")


@torch.no_grad()
def check_noise_scale(noise_scale) -> float:
    """``noise_scale`` as a float in [0, 1], or a one-line ``ValueError``."""
    v = float(noise_scale)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"noise_scale must be in [0, 1], got {noise_scale!r}")
    return v


def sample_plan(
    denoiser: Denoiser,
    scheduler: NoiseScheduler,
    config: ModelConfig,
    history_states: torch.Tensor,
    history_actions: torch.Tensor,
    num_steps: int | None = None,
    sampler: str = "ddpm",
    guidance: Guidance | None = None,
    generator: torch.Generator | None = None,
    init: Plan | tuple[torch.Tensor, torch.Tensor] | None = None,
    k_start_states: int | Sequence[int] | torch.Tensor | None = None,
    k_start_actions: int | Sequence[int] | torch.Tensor | None = None,
    eta: float | None = None,
    command: torch.Tensor | None = None,
    noise_scale: float = 1.0,
) -> Plan:
    """Sample a plan given history states (B, N+1, D) and actions (B, N, A), normalized.

    Cold start (``init=None``): future tokens start from pure noise at level K (``k_start_*`` must be K).
    Warm start: ``init`` (a previous plan, already shifted to this window) is re-noised to ``k_start_states`` /
    ``k_start_actions`` (defaults: ``config.warm_start_state_level`` / ``warm_start_action_level``, 14 / 4 of 20).
    ``num_steps`` defaults to the highest start level; every token descends proportionally and reaches level 0 at the
    last iteration (:func:`level_schedule`). ``sampler`` "ddpm" is ancestral (eta = 1), "ddim" deterministic (eta = 0).
    ``command`` (B, C): task command of a command-conditioned denoiser (passed as its fifth argument; ``None`` = none).
    ``noise_scale`` in [0, 1]: the drawn start noise ε is multiplied by it (1 = the trained distribution; < 1 samples
    at a lower temperature, 0 = the deterministic DDIM path from the mean of the noise, i.e. x_K = 0).
    """
    c = config
    noise_scale = check_noise_scale(noise_scale)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
    b = history_states.shape[0] if isinstance(history_states, torch.Tensor) and history_states.ndim == 3 else -1
    _check("history_states", history_states, (b, c.n_known_states, c.state_dim))
    _check("history_actions", history_actions, (b, c.n_known_actions, c.action_dim))
    extra = ()
    if command is not None:
        _check("command", command, (b, getattr(c, "command_dim", 0)))
        extra = (command,)
    device, dtype = history_states.device, history_states.dtype
    default_s = c.num_levels if init is None else c.warm_start_state_level
    default_a = c.num_levels if init is None else c.warm_start_action_level
    ks0 = start_levels(k_start_states, default_s, c.n_known_states, c.horizon, c.num_levels, "k_start_states")
    ka0 = start_levels(k_start_actions, default_a, c.n_known_actions, c.action_horizon, c.num_levels, "k_start_actions")
    if init is None:
        if int(ks0[c.n_known_states :].min()) != c.num_levels or int(ka0[c.n_known_actions :].min()) != c.num_levels:
            raise ValueError("without init every future token must start at level K; pass init= for a warm start")
        x_s = torch.zeros(b, c.window, c.state_dim, device=device, dtype=dtype)
        x_a = torch.zeros(b, c.action_window, c.action_dim, device=device, dtype=dtype)
    else:
        x_s, x_a = (init.states, init.actions) if isinstance(init, Plan) else init
        _check("init states", x_s, (b, c.window, c.state_dim))
        _check("init actions", x_a, (b, c.action_window, c.action_dim))
    ks0_b, ka0_b = ks0.to(device).expand(b, -1), ka0.to(device).expand(b, -1)
    x_s = scheduler.add_noise(x_s, noise_scale * randn_like_gen(x_s, generator), ks0_b)
    x_a = scheduler.add_noise(x_a, noise_scale * randn_like_gen(x_a, generator), ka0_b)

    top = int(max(ks0.max(), ka0.max()))
    n = top if num_steps is None else int(num_steps)
    if top == 0:
        n = 0  # everything starts clean: the (history-imposed) init is returned as is
    elif not 1 <= n <= c.num_levels:
        raise ValueError(f"need 1 <= num_steps <= {c.num_levels}; got {num_steps=}")
    eta = (1.0 if sampler == "ddpm" else 0.0) if eta is None else float(eta)

    def impose(s: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.cat([history_states, s[:, c.n_known_states :]], dim=1)
        return s, torch.cat([history_actions, a[:, c.n_known_actions :]], dim=1)

    x_s, x_a = impose(x_s, x_a)
    for i in range(n):
        ks, ka = level_schedule(ks0_b, i, n), level_schedule(ka0_b, i, n)
        ks_next, ka_next = level_schedule(ks0_b, i + 1, n), level_schedule(ka0_b, i + 1, n)
        p_s, p_a = denoiser(x_s, x_a, ks, ka, *extra)
        p_s, p_a = p_s.to(dtype), p_a.to(dtype)
        if guidance is not None:
            g_s, g_a = guidance(p_s, p_a, int(max(ks.max(), ka.max())))
            if g_s is not None:
                _check("guidance grad_states", g_s, tuple(p_s.shape))
                p_s = p_s - g_s
            if g_a is not None:
                _check("guidance grad_actions", g_a, tuple(p_a.shape))
                p_a = p_a - g_a
        p_s, p_a = impose(p_s, p_a)
        x_s = scheduler.step(p_s, ks, x_s, prev_timestep=ks_next, eta=eta, generator=generator).prev_sample
        x_a = scheduler.step(p_a, ka, x_a, prev_timestep=ka_next, eta=eta, generator=generator).prev_sample
        x_s, x_a = impose(x_s, x_a)
    return Plan(states=x_s, actions=x_a)
