"""x0-prediction noise scheduler with diffusers-style method names and per-token noise levels.

Levels vs diffusers timesteps: our level k in [0, K] with k = 0 the clean sample; diffusers' DDPMScheduler with
``num_train_timesteps = K`` uses t = k - 1 in [0, K - 1] and has no clean level. So, for the same betas,
``add_noise(x0, eps, k) == diffusers.add_noise(x0, eps, k - 1)`` and ``step(x0_hat, k, x) == diffusers.step(x0_hat,
k - 1, x)`` (``prediction_type="sample"``, ``clip_sample=False``, ``variance_type="fixed_small"``). Unlike diffusers,
``level`` may differ per element (shape (B,) or (B, T) for samples (B, T, D)) so that states and actions, and each
timestep, carry their own level.

``step`` is the generalized DDIM update (Song et al. 2021) from level k to a lower level k' <= k::

    eps_hat = (x_k - sqrt(ab_k) x0_hat) / sqrt(1 - ab_k)
    sigma   = eta * sqrt((1 - ab_k') / (1 - ab_k)) * sqrt(1 - ab_k / ab_k')
    x_k'    = sqrt(ab_k') x0_hat + sqrt(1 - ab_k' - sigma^2) eps_hat + sigma z

With eta = 1 and k' = k - 1 this is exactly DDPM's ancestral step with the posterior variance beta_tilde; eta = 0 is
deterministic DDIM. Tokens with k' = k are left unchanged and tokens at level 0 stay as they are.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from bm_planner.model.schedules import level_alphas_cumprod, level_schedule, make_betas


class SchedulerOutput(NamedTuple):
    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


def randn_like_gen(ref: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``ref``; drawn on the generator's device, then moved (as diffusers does)."""
    gen_device = generator.device if generator is not None else ref.device
    noise = torch.randn(ref.shape, generator=generator, device=gen_device, dtype=ref.dtype)
    return noise.to(ref.device)


class NoiseScheduler:
    """K-level noise schedule (buffers ``betas`` (K,) and ``alphas_cumprod`` (K + 1,), float32) and the operations on it.

    Args:
        num_levels: K.
        schedule: "cosine" or "linear"; beta_start / beta_end only for "linear".
    """

    def __init__(
        self,
        num_levels: int = 20,
        schedule: str = "cosine",
        beta_start: float | None = None,
        beta_end: float | None = None,
    ) -> None:
        self.num_levels = int(num_levels)
        self.betas = make_betas(schedule, self.num_levels, beta_start, beta_end)
        self.alphas_cumprod = level_alphas_cumprod(self.betas)
        self._tables: dict[torch.device, torch.Tensor] = {}
        self.timesteps = torch.arange(self.num_levels, 0, -1)

    # ------------------------------------------------------------------ helpers
    def _table(self, device: torch.device) -> torch.Tensor:
        """``alphas_cumprod`` on ``device`` (cached, so GPU sampling does not copy it every step)."""
        table = self._tables.get(device)
        if table is None:
            table = self._tables[device] = self.alphas_cumprod.to(device)
        return table

    def _ab(self, level: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
        """alpha_bar at ``level`` broadcast to ``like`` (levels index the leading dims of ``like``). Ranges are
        checked for CPU levels (a check on GPU levels would synchronize every call)."""
        if not isinstance(level, torch.Tensor):
            level = torch.as_tensor(level)
        if level.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"levels must be integers; got dtype {level.dtype}")
        if (
            level.device.type == "cpu"
            and level.numel()
            and (int(level.min()) < 0 or int(level.max()) > self.num_levels)
        ):
            raise ValueError(
                f"levels must be in [0, {self.num_levels}]; got min {int(level.min())}, max {int(level.max())}"
            )
        ab = self._table(like.device)[level.to(like.device).long()]
        if ab.ndim > like.ndim or any(a not in (1, b) for a, b in zip(ab.shape, like.shape)):
            raise ValueError(
                f"level shape {tuple(ab.shape)} must match the leading dims of the sample shape {tuple(like.shape)}"
            )
        return ab.reshape(ab.shape + (1,) * (like.ndim - ab.ndim))

    # ------------------------------------------------------------------ diffusers-style API
    def set_timesteps(self, num_inference_steps: int, k_start: int | None = None) -> torch.Tensor:
        """Descending levels visited by an ``num_inference_steps``-step sampler starting at ``k_start`` (default K);
        stored in ``self.timesteps`` and returned. For n | K these are diffusers' "trailing" DDIM timesteps + 1."""
        k0 = self.num_levels if k_start is None else int(k_start)
        if not 1 <= num_inference_steps <= self.num_levels or not 0 <= k0 <= self.num_levels:
            raise ValueError(
                f"need 1 <= num_inference_steps <= {self.num_levels} and 0 <= k_start <= "
                f"{self.num_levels}; got {num_inference_steps=}, {k_start=}"
            )
        start = torch.tensor(k0)
        self.timesteps = torch.stack(
            [level_schedule(start, i, num_inference_steps) for i in range(num_inference_steps)]
        )
        return self.timesteps

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor | int
    ) -> torch.Tensor:
        """q(x_k | x_0) = sqrt(ab_k) x0 + sqrt(1 - ab_k) eps; ``timesteps`` are levels (prefix-shaped); level 0 -> x0."""
        ab = self._ab(timesteps, original_samples)
        out = ab.sqrt() * original_samples.float() + (1.0 - ab).sqrt() * noise.float()
        return out.to(original_samples.dtype)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: torch.Tensor | int,
        sample: torch.Tensor,
        prev_timestep: torch.Tensor | int | None = None,
        eta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> SchedulerOutput:
        """One reverse step from level ``timestep`` to ``prev_timestep`` (default ``timestep - 1``) given the model's
        x0 prediction ``model_output``; returns (prev_sample, pred_original_sample). Noise is drawn (one ``randn`` of
        the sample's shape) only when ``eta > 0``."""
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1]; got {eta=}")
        k = torch.as_tensor(timestep)
        k_prev = (k - 1).clamp(min=0) if prev_timestep is None else torch.as_tensor(prev_timestep)
        if bool((k_prev > k).any()):
            raise ValueError("prev_timestep must be <= timestep for every element")
        ab = self._ab(k, sample)
        ab_prev = self._ab(k_prev, sample)
        x = sample.float()
        x0 = model_output.float()
        one_minus_ab = (1.0 - ab).clamp(min=1e-20)
        eps = (x - ab.sqrt() * x0) / one_minus_ab.sqrt()
        var = (1.0 - ab_prev) / one_minus_ab * (1.0 - ab / ab_prev)
        sigma = eta * var.clamp(min=0.0).sqrt()
        prev = ab_prev.sqrt() * x0 + (1.0 - ab_prev - sigma**2).clamp(min=0.0).sqrt() * eps
        if eta > 0.0:
            prev = prev + sigma * randn_like_gen(x, generator)
        keep = (ab_prev == ab).expand_as(x)  # same level (incl. 0 -> 0): unchanged
        prev = torch.where(keep, x, prev)
        return SchedulerOutput(prev.to(sample.dtype), model_output)
