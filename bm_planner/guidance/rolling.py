"""RollingGuidanceInference: receding-horizon sampling that warm-starts each plan from the previous one.

Cold start samples the future from pure noise with ``num_steps`` denoising steps. A warm start (Diffuse-CLoC /
BeyondMimic rolling inference) instead takes the previous plan, drops the ``executed`` steps since it was made
(FIFO shift, :meth:`Plan.shifted`), re-expresses its root features in the new step's reference frame
(:meth:`StateRepresentation.rebase`; body features are per-step and unchanged), re-noises future states to level
``k_states`` and future actions to ``k_actions`` (paper: 14 and 4 of K = 20) and denoises from there with fewer steps
(default ``round(num_steps · max(k_states, k_actions) / K)``). Guidance is passed into each call unchanged.

Shapes: history states (1 or B, N+1, D) and actions (B, N, A), normalized; reference frames ``ref_pos_w`` (B, 3) m,
``ref_yaw`` (B,) rad of the current step. All tensors on the model's device.
"""

from __future__ import annotations

import torch

from bm_planner.model.samplers import make_sampler
from bm_planner.model.sampling import Guidance, Plan, Sampler, check_noise_scale


class RollingGuidanceInference:
    """Stateful planner around a :class:`StateActionDiffusionModel`: call :meth:`plan` once per replan.

    Args: ``model``; ``normalizer`` (the data normalizer, to rebase unnormalized states); ``state_rep``;
    ``num_steps``: cold-start denoising steps; ``warm_start``: reuse the previous plan when possible;
    ``k_states`` / ``k_actions``: warm-start levels (default: the model config's ``warm_start_*_level``);
    ``warm_steps``: warm-start denoising steps (default proportional, see the module docstring);
    ``sampler``: a sampler object (:mod:`bm_planner.model.samplers`) or "ddim" | "ddpm"; ``two_stage``: after the (guided) joint sample, re-sample the actions from level K
    with the planned states held clean (level 0) — the independent noise levels allow it — so the actions follow
    the guided states instead of being committed while the states were still noisy (doubles the denoiser calls);
    ``noise_scale``: start-noise temperature in [0, 1] of every sampling call (1 = as trained; 0 = x_K = 0).
    """

    def __init__(self, model, normalizer, state_rep, num_steps: int = 10, warm_start: bool = True,
                 k_states: int | None = None, k_actions: int | None = None, warm_steps: int | None = None,
                 sampler: str | Sampler = "ddim", two_stage: bool = False, noise_scale: float = 1.0):  # fmt: skip
        c = model.config
        self.noise_scale = check_noise_scale(noise_scale)
        self.two_stage = bool(two_stage) and hasattr(c, "num_levels")
        self.model, self.normalizer, self.rep = model, normalizer, state_rep
        self.sampler = make_sampler(sampler)
        if not hasattr(c, "num_levels"):  # not a diffusion model (e.g. the BC baseline): one plain call per plan
            self.num_steps, self.warm_steps, self.warm_start, self.k_states, self.k_actions = num_steps, 1, False, 0, 0
            self.reset()
            return
        self.k_states = c.warm_start_state_level if k_states is None else int(k_states)
        self.k_actions = c.warm_start_action_level if k_actions is None else int(k_actions)
        for name, k in (("k_states", self.k_states), ("k_actions", self.k_actions)):
            if not 0 <= k <= c.num_levels:
                raise ValueError(f"{name} must be in [0, {c.num_levels}], got {k}")
        if not 1 <= num_steps <= c.num_levels:
            raise ValueError(f"num_steps must be in [1, {c.num_levels}], got {num_steps}")
        top = max(self.k_states, self.k_actions)
        if warm_steps is None:
            warm_steps = max(1, round(num_steps * top / c.num_levels)) if top > 0 else 1
        if not 1 <= warm_steps <= max(top, 1):
            raise ValueError(
                f"warm_steps must be in [1, {max(top, 1)}] (the highest warm-start level), got {warm_steps}"
            )
        self.num_steps, self.warm_steps, self.warm_start = num_steps, warm_steps, warm_start
        self.reset()

    def reset(self) -> None:
        """Forget the previous plan (next call is a cold start)."""
        self.prev: Plan | None = None
        self.prev_ref: tuple[torch.Tensor, torch.Tensor] | None = None
        self.last_was_warm = False

    def carry_over(self, executed: int, ref_pos_w: torch.Tensor, ref_yaw: torch.Tensor) -> Plan:
        """The previous plan advanced by ``executed`` steps and expressed in the frame (ref_pos_w, ref_yaw)."""
        if self.prev is None or self.prev_ref is None:
            raise RuntimeError("no previous plan to carry over; call plan() first")
        shifted = self.prev.shifted(executed)
        raw = self.normalizer.unnormalize_states(shifted.states)
        raw = self.rep.rebase(raw, self.prev_ref[0], self.prev_ref[1], ref_pos_w, ref_yaw)
        return Plan(self.normalizer.normalize_states(raw).to(shifted.states.dtype), shifted.actions)

    def plan(self, history_states: torch.Tensor, history_actions: torch.Tensor, ref_pos_w, ref_yaw,
             executed: int | None = None, guidance: Guidance | None = None,
             generator: torch.Generator | None = None, command: torch.Tensor | None = None) -> Plan:  # fmt: skip
        """Sample the next plan. ``executed``: control steps since the previous plan (``None`` = cold start);
        ``command`` (B, C): task command of a command-conditioned model (every sampling call gets it)."""
        cmd = {} if command is None else {"command": command}
        b = history_states.shape[0]
        ref_pos_w = torch.as_tensor(ref_pos_w, dtype=torch.float64).reshape(b, 3)
        ref_yaw = torch.as_tensor(ref_yaw, dtype=torch.float64).reshape(b)
        warm = self.warm_start and self.prev is not None and executed is not None
        if warm and not 0 < executed < self.prev.actions.shape[1] - self.model.config.n_known_actions:
            warm = False  # the previous plan has no action left for this window: start cold
        if warm:
            init = self.carry_over(executed, ref_pos_w, ref_yaw)
            out = self.model.sample(history_states, history_actions, num_steps=self.warm_steps, sampler=self.sampler,
                                    guidance=guidance, generator=generator, init=init,
                                    k_start_states=self.k_states, k_start_actions=self.k_actions, noise_scale=self.noise_scale, **cmd)  # fmt: skip
        else:
            out = self.model.sample(history_states, history_actions, num_steps=self.num_steps, sampler=self.sampler,
                                    guidance=guidance, generator=generator, noise_scale=self.noise_scale, **cmd)  # fmt: skip
        if self.two_stage:
            c = self.model.config
            out = self.model.sample(history_states, history_actions, num_steps=self.num_steps, sampler=self.sampler,
                                    generator=generator, init=out, k_start_states=0,
                                    k_start_actions=c.num_levels, noise_scale=self.noise_scale, **cmd)  # fmt: skip
        self.prev, self.prev_ref, self.last_was_warm = out, (ref_pos_w, ref_yaw), warm
        return out


__all__ = ["RollingGuidanceInference"]
