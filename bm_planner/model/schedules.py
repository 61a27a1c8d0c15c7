"""Noise schedules as pure tensor functions.

Conventions: a schedule has K noise levels. ``betas`` has shape (K,) and matches diffusers' ``DDPMScheduler.betas``
for the same ``num_train_timesteps = K`` (diffusers timestep t = level k - 1). :func:`level_alphas_cumprod` prepends
level 0 (clean, alpha_bar = 1), giving shape (K + 1,) indexed directly by level k in [0, K].
"""

from __future__ import annotations

import math

import torch


def cosine_betas(num_levels: int, max_beta: float = 0.999, s: float = 0.008) -> torch.Tensor:
    """Cosine schedule (Nichol & Dhariwal 2021; diffusers ``squaredcos_cap_v2``): (K,) float32 betas with
    alpha_bar(t) = cos((t + s) / (1 + s) * pi / 2) ** 2, beta_i = min(1 - alpha_bar((i+1)/K) / alpha_bar(i/K), max_beta)."""
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1; got {num_levels=}")

    def alpha_bar(t: float) -> float:
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_levels) / alpha_bar(i / num_levels), max_beta) for i in range(num_levels)]
    return torch.tensor(betas, dtype=torch.float32)


def linear_betas(num_levels: int, beta_start: float | None = None, beta_end: float | None = None) -> torch.Tensor:
    """Linear schedule: (K,) float32 betas from ``beta_start`` to ``beta_end`` (diffusers ``linear``). The defaults
    scale DDPM's 1e-4..0.02 over 1000 steps to K levels (0.1/K .. min(20/K, 0.999)) so that level K is nearly pure
    noise even for small K."""
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1; got {num_levels=}")
    start = 0.1 / num_levels if beta_start is None else beta_start
    end = min(20.0 / num_levels, 0.999) if beta_end is None else beta_end
    if not (0.0 < start <= end < 1.0):
        raise ValueError(f"need 0 < beta_start <= beta_end < 1; got {start=}, {end=}")
    return torch.linspace(start, end, num_levels, dtype=torch.float32)


def make_betas(
    schedule: str, num_levels: int, beta_start: float | None = None, beta_end: float | None = None
) -> torch.Tensor:
    """(K,) betas of the named schedule ("cosine" or "linear")."""
    if schedule == "cosine":
        return cosine_betas(num_levels)
    if schedule == "linear":
        return linear_betas(num_levels, beta_start, beta_end)
    raise ValueError(f"unknown schedule {schedule!r}; expected 'cosine' or 'linear'")


def level_alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """(K + 1,) alpha_bar indexed by level: [1, cumprod(1 - betas)]; level 0 is clean."""
    return torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(1.0 - betas, dim=0)])


def level_schedule(k_start: torch.Tensor, step: int, num_steps: int) -> torch.Tensor:
    """Per-token level after ``step`` of ``num_steps`` sampling iterations: ceil(k_start * (n - step) / n).

    ``k_start`` (any shape, int64) is each token's starting level; step 0 returns ``k_start``, step n returns 0. Tokens
    that start lower (e.g. actions warm-started at 4 while states start at 14) descend proportionally more slowly, so
    every token reaches level 0 at the last iteration. With n = K and k_start = K this is K, K-1, ..., 0 (DDPM);
    with n | K it equals diffusers' "trailing" DDIM spacing.
    """
    if not 0 <= step <= num_steps:
        raise ValueError(f"step must be in [0, num_steps]; got {step=}, {num_steps=}")
    return torch.div(k_start * (num_steps - step) + num_steps - 1, num_steps, rounding_mode="floor")
