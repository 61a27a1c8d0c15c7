"""StateActionDiffusionModel: x0-predicting co-diffusion of states and actions with independent per-token levels.

Training (:meth:`compute_loss`): for a normalized window (states (B, T, D), actions (B, >= Ta, A)) every future state
timestep gets its own level k_s ~ U{0..K} and every future action timestep its own k_a ~ U{0..K}; the history (states
s_0..s_N, actions a_0..a_{N-1}) stays at level 0 (clean). The loss is
``state_loss_weight * MSE(future states) + action_loss_weight * MSE(first action_loss_steps future actions)``,
each MSE a mean over its elements.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from bm_planner.model.config import ModelConfig
from bm_planner.model.samplers import make_sampler
from bm_planner.model.sampling import Guidance, Plan, Sampler
from bm_planner.model.scheduler import NoiseScheduler
from bm_planner.model.transformer import DifferentiatedTransformer


@dataclass
class LossOutput:
    """``loss`` (scalar, weighted); ``state_mse`` / ``action_mse`` (scalars, detached); per-token squared errors
    ``state_err`` (B, H) and ``action_err`` (B, action_loss_steps) with their levels ``k_states`` / ``k_actions``
    (same shapes), for bucketing by noise level."""

    loss: torch.Tensor
    state_mse: torch.Tensor
    action_mse: torch.Tensor
    state_err: torch.Tensor
    action_err: torch.Tensor
    k_states: torch.Tensor
    k_actions: torch.Tensor


class StateActionDiffusionModel(nn.Module):
    """Denoiser (:class:`DifferentiatedTransformer`) + noise scheduler + loss + sampler, all in normalized units."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.denoiser = DifferentiatedTransformer(config)
        self.scheduler = NoiseScheduler(
            config.num_levels, config.schedule, config.linear_beta_start, config.linear_beta_end
        )

    def forward(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        k_states: torch.Tensor,
        k_actions: torch.Tensor,
        command: torch.Tensor | None = None,
        command_drop: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy states (B, T, D), actions (B, Ta, A), levels (B, T) / (B, Ta) (+ command (B, C)) -> x0 predictions,
        same shapes."""
        return self.denoiser(states, actions, k_states, k_actions, command, command_drop)

    def with_denoiser(self, denoiser: nn.Module) -> StateActionDiffusionModel:
        """A shallow copy that runs ``denoiser`` (an ONNX/TensorRT backend, a classifier-free wrapper, ...) in place of
        this model's; scheduler and config are shared and this model keeps its own denoiser."""
        other = copy.copy(self)
        other._modules = dict(self._modules)  # own module dict: assigning the denoiser leaves ``self`` untouched
        other.denoiser = denoiser
        return other

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ training
    def sample_levels(
        self,
        batch: int,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training levels: (B, T) and (B, Ta) int64, U{0..K} for future tokens, 0 for history. With
        ``uniform_level_prob`` > 0, that share of the rows has one level for all its future states and one for all
        its future actions (the sampler's schedule), drawn after the per-token levels (the same generator stream
        as without it up to there)."""
        c = self.config
        gen_dev = generator.device if generator is not None else device
        k_s = torch.randint(0, c.num_levels + 1, (batch, c.window), generator=generator, device=gen_dev).to(device)
        k_a = torch.randint(0, c.num_levels + 1, (batch, c.action_window), generator=generator, device=gen_dev).to(
            device
        )
        if c.uniform_level_prob > 0:
            rows = (torch.rand(batch, generator=generator, device=gen_dev) < c.uniform_level_prob).to(device)
            one = torch.randint(0, c.num_levels + 1, (batch, 2), generator=generator, device=gen_dev).to(device)
            k_s = torch.where(rows[:, None], one[:, :1].expand_as(k_s), k_s)
            k_a = torch.where(rows[:, None], one[:, 1:].expand_as(k_a), k_a)
        k_s[:, : c.n_known_states] = 0
        k_a[:, : c.n_known_actions] = 0
        return k_s, k_a

    def compute_loss(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        levels: tuple[torch.Tensor, torch.Tensor] | None = None,
        command: torch.Tensor | None = None,
    ) -> LossOutput:
        """Denoising loss on a normalized batch: states (B, T, D), actions (B, T_act >= Ta, A) (extra trailing
        actions, e.g. the dataset's 21, are ignored). ``levels`` overrides the random (k_states, k_actions).
        ``command`` (B, C): the window's task command (models with ``command_dim`` > 0; in training each row is
        replaced by "no command" with probability ``command_dropout``)."""
        c = self.config
        if states.ndim != 3 or actions.ndim != 3 or actions.shape[1] < c.action_window:
            raise ValueError(
                f"expected states (B, {c.window}, {c.state_dim}) and actions (B, >= {c.action_window}, "
                f"{c.action_dim}); got {tuple(states.shape)} and {tuple(actions.shape)}"
            )
        actions = actions[:, : c.action_window]
        b = states.shape[0]
        k_s, k_a = self.sample_levels(b, states.device, generator) if levels is None else levels
        x_s = self.scheduler.add_noise(states, _randn(states, generator), k_s)
        x_a = self.scheduler.add_noise(actions, _randn(actions, generator), k_a)
        if c.history_action_noise > 0 and self.training:  # corrupt the (level-0) history actions, training only
            n = c.n_known_actions
            x_a = torch.cat([x_a[:, :n] + c.history_action_noise * _randn(x_a[:, :n], generator), x_a[:, n:]], 1)
        if c.history_state_noise > 0 and self.training:  # corrupt the (level-0) history states, training only
            n = c.n_known_states
            x_s = torch.cat([x_s[:, :n] + c.history_state_noise * _randn(x_s[:, :n], generator), x_s[:, n:]], 1)
        drop = None
        if command is not None and self.training and c.command_dropout > 0:
            u = torch.rand(b, generator=generator, device=generator.device if generator is not None else states.device)
            drop = u.to(states.device) < c.command_dropout
        p_s, p_a = self(x_s, x_a, k_s, k_a, command, drop)
        fs = slice(c.n_known_states, c.window)
        fa = slice(c.n_known_actions, c.n_known_actions + c.action_loss_steps)
        state_err = (p_s[:, fs].float() - states[:, fs].float()).pow(2).mean(-1)
        action_err = (p_a[:, fa].float() - actions[:, fa].float()).pow(2).mean(-1)
        state_mse, action_mse = state_err.mean(), action_err.mean()
        loss = c.state_loss_weight * state_mse + c.action_loss_weight * action_mse
        return LossOutput(
            loss,
            state_mse.detach(),
            action_mse.detach(),
            state_err.detach(),
            action_err.detach(),
            k_s[:, fs],
            k_a[:, fa],
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def sample(
        self,
        history_states: torch.Tensor,
        history_actions: torch.Tensor,
        num_steps: int | None = None,
        sampler: str | Sampler = "ddpm",
        guidance: Guidance | None = None,
        generator: torch.Generator | None = None,
        init: Plan | tuple[torch.Tensor, torch.Tensor] | None = None,
        k_start_states: int | Sequence[int] | torch.Tensor | None = None,
        k_start_actions: int | Sequence[int] | torch.Tensor | None = None,
        eta: float | None = None,
        command: torch.Tensor | None = None,
        noise_scale: float = 1.0,
    ) -> Plan:
        """Sample a plan (see :func:`bm_planner.model.sampling.sample_plan`); runs in eval mode and restores the
        previous mode. Inputs/outputs are normalized: history states (B, N+1, D), actions (B, N, A) (+ ``command``
        (B, C) for a command-conditioned model; ``noise_scale``: start-noise temperature in [0, 1]) -> :class:`Plan`
        with states (B, T, D), actions (B, Ta, A). ``sampler``: a sampler object
        (:mod:`bm_planner.model.samplers`, e.g. ``FastDDIMSampler()``) or the name of a reference one, "ddpm" |
        "ddim" (``eta`` only with a name)."""
        smp = make_sampler(sampler, eta)
        was_training = self.training
        self.eval()
        try:
            return smp(self, history_states, history_actions, num_steps, guidance, generator, init, k_start_states,
                       k_start_actions, command, noise_scale)  # fmt: skip
        finally:
            self.train(was_training)


def _randn(ref: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(ref)
    return torch.randn(ref.shape, generator=generator, device=generator.device, dtype=ref.dtype).to(ref.device)
