"""A low-overhead DDIM loop, numerically the reference :func:`~bm_planner.model.sampling.sample_plan` (eta = 0).

With a fast denoiser (ONNX Runtime: ~1 ms per step for ``small``) the reference loop's per-step Python work
(level schedules, two scheduler steps with range checks, four history concatenations) costs about as much as the
network. Here each plan's per-token DDIM coefficients are computed once (and cached per start levels and step
count), so a step is ``x ← A_i · x̂0 + B_i · x`` per tensor: with ``ab``/``ab'`` the alpha-bar of a token's current
and next level, ``A = √ab' − √(1 − ab') √ab / √(1 − ab)``, ``B = √(1 − ab') / √(1 − ab)``, and ``A = 0, B = 1``
where the level does not change (history tokens at level 0 therefore keep their known values exactly, which is the
reference's inpainting). The initial noise is drawn exactly as the reference draws it, so plans agree to float
rounding (tested). DDPM (eta > 0) falls back to the reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bm_planner.model.sampling import Plan, check_noise_scale, sample_plan, start_levels
from bm_planner.model.scheduler import randn_like_gen
from bm_planner.model.schedules import level_schedule


class FastDDIMSampler:
    """``sampler(history_states, history_actions, num_steps, sampler, guidance, generator, init, k_start_states,
    k_start_actions, eta) -> Plan``: the signature of ``StateActionDiffusionModel.sample`` (normalized units:
    history states (B, N+1, D), actions (B, N, A); plan states (B, T, D), actions (B, Ta, A))."""

    def __init__(self, model) -> None:
        self.model = model
        self._cache: dict[tuple, tuple] = {}

    def _tables(self, ks0: torch.Tensor, ka0: torch.Tensor, n: int, device, dtype) -> tuple:
        key = (tuple(ks0.tolist()), tuple(ka0.tolist()), n, str(device), dtype)
        if key not in self._cache:
            ab = self.model.scheduler.alphas_cumprod.to(torch.float64)

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
            self._cache[key] = (ls, s0, s1, la, a0, a1, tops)
        return self._cache[key]

    @torch.no_grad()
    def __call__(self, history_states: torch.Tensor, history_actions: torch.Tensor, num_steps: int | None = None,
                 sampler: str = "ddpm", guidance=None, generator: torch.Generator | None = None,
                 init: Plan | tuple[torch.Tensor, torch.Tensor] | None = None,
                 k_start_states: int | Sequence[int] | torch.Tensor | None = None,
                 k_start_actions: int | Sequence[int] | torch.Tensor | None = None, eta: float | None = None,
                 command: torch.Tensor | None = None, noise_scale: float = 1.0) -> Plan:  # fmt: skip
        m, c = self.model, self.model.config
        noise_scale = check_noise_scale(noise_scale)
        eta_v = (1.0 if sampler == "ddpm" else 0.0) if eta is None else float(eta)
        if sampler != "ddim" or eta_v != 0.0 or not isinstance(history_states, torch.Tensor):
            return sample_plan(m, m.scheduler, c, history_states, history_actions, num_steps, sampler, guidance,
                               generator, init, k_start_states, k_start_actions, eta, command, noise_scale)  # fmt: skip
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
            return sample_plan(m, m.scheduler, c, history_states, history_actions, num_steps, sampler, guidance,
                               generator, init, k_start_states, k_start_actions, eta, command, noise_scale)  # fmt: skip
        x_s = m.scheduler.add_noise(x_s, noise_scale * randn_like_gen(x_s, generator), ks0.to(device).expand(b, -1))
        x_a = m.scheduler.add_noise(x_a, noise_scale * randn_like_gen(x_a, generator), ka0.to(device).expand(b, -1))
        x_s = torch.cat([history_states, x_s[:, c.n_known_states :]], dim=1)
        x_a = torch.cat([history_actions, x_a[:, c.n_known_actions :]], dim=1)
        ls, s0, s1, la, a0, a1, tops = self._tables(ks0, ka0, n, device, dtype)
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


def install_fast_sampler(model):
    """Make ``model.sample`` (this instance only) use :class:`FastDDIMSampler`; returns the model."""
    model.sample = FastDDIMSampler(model)
    return model
