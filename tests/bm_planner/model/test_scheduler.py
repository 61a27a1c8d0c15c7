"""Noise schedules, the scheduler and the sampling loop, with diffusers' schedulers as the oracle."""

import pytest
import torch

from bm_planner.model import ModelConfig, NoiseScheduler, Plan, level_schedule, sample_plan
from bm_planner.model.schedules import cosine_betas, level_alphas_cumprod, linear_betas

K = 20


@pytest.fixture
def diffusers():
    return pytest.importorskip("diffusers", reason="diffusers is the oracle for these tests (dev extra)")


def _diffusers_kwargs(schedule: str) -> dict:
    if schedule == "cosine":
        return {"beta_schedule": "squaredcos_cap_v2"}
    return {"beta_schedule": "linear", "beta_start": 0.1 / K, "beta_end": min(20 / K, 0.999)}


def _ddpm(diffusers, schedule: str):
    return diffusers.DDPMScheduler(
        num_train_timesteps=K,
        prediction_type="sample",
        clip_sample=False,
        variance_type="fixed_small",
        **_diffusers_kwargs(schedule),
    )


def _x0_fn(x: torch.Tensor) -> torch.Tensor:
    """A fixed nonlinear 'model' so that the loops below are not trivial."""
    return torch.tanh(x) * 0.7 + 0.1


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_betas_and_add_noise_match_diffusers(diffusers, schedule):
    ours, ref = NoiseScheduler(K, schedule), _ddpm(diffusers, schedule)
    torch.testing.assert_close(ours.betas, ref.betas, rtol=0, atol=0)
    torch.testing.assert_close(ours.alphas_cumprod[1:], ref.alphas_cumprod, rtol=0, atol=1e-7)
    assert ours.alphas_cumprod[0] == 1.0 and ours.alphas_cumprod[-1] < 1e-3  # level K is (almost) pure noise
    x0, eps = torch.randn(4, 6, 5), torch.randn(4, 6, 5)
    t = torch.tensor([0, 5, 13, 19])
    torch.testing.assert_close(ours.add_noise(x0, eps, t + 1), ref.add_noise(x0, eps, t), rtol=0, atol=1e-6)
    assert torch.equal(ours.add_noise(x0, eps, torch.zeros(4, dtype=torch.long)), x0)  # level 0 is clean


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_ddpm_step_and_loop_match_diffusers(diffusers, schedule):
    ours, ref = NoiseScheduler(K, schedule), _ddpm(diffusers, schedule)
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1))
    for t in (19, 10, 1, 0):
        a = ref.step(_x0_fn(x), t, x, generator=torch.Generator().manual_seed(3)).prev_sample
        b = ours.step(_x0_fn(x), t + 1, x, generator=torch.Generator().manual_seed(3)).prev_sample
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    xa, xb = x.clone(), x.clone()
    ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    ref.set_timesteps(K)
    for t in ref.timesteps:
        xa = ref.step(_x0_fn(xa), t, xa, generator=ga).prev_sample
    for k in range(K, 0, -1):
        xb = ours.step(_x0_fn(xb), k, xb, generator=gb).prev_sample
    torch.testing.assert_close(xa, xb, rtol=0, atol=1e-5)


@pytest.mark.parametrize("n", [5, 10, 20])
def test_ddim_loop_matches_diffusers_trailing(diffusers, n):
    ours = NoiseScheduler(K, "cosine")
    ref = diffusers.DDIMScheduler(
        num_train_timesteps=K,
        prediction_type="sample",
        clip_sample=False,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
        beta_schedule="squaredcos_cap_v2",
    )
    ref.set_timesteps(n)
    levels = ours.set_timesteps(n)
    assert levels.tolist() == (ref.timesteps + 1).tolist()
    xa = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1))
    xb = xa.clone()
    for t in ref.timesteps:
        xa = ref.step(_x0_fn(xa), t, xa, eta=0.0).prev_sample
    for k, k_prev in zip(levels.tolist(), levels.tolist()[1:] + [0]):
        xb = ours.step(_x0_fn(xb), k, xb, prev_timestep=k_prev, eta=0.0).prev_sample
    torch.testing.assert_close(xa, xb, rtol=0, atol=1e-6)


def test_per_element_levels_and_identity_steps():
    s = NoiseScheduler(K)
    x = torch.randn(2, 3, 4)
    x0 = torch.randn(2, 3, 4)
    k = torch.tensor([[0, 5, 20], [7, 7, 1]])
    out = s.step(x0, k, x, prev_timestep=torch.tensor([[0, 5, 0], [3, 6, 0]]), eta=0.0).prev_sample
    assert torch.equal(out[0, 0], x[0, 0]) and torch.equal(out[0, 1], x[0, 1])  # 0->0 and 5->5 leave tokens as is
    torch.testing.assert_close(out[0, 2], x0[0, 2])  # any level -> 0 gives the x0 prediction
    torch.testing.assert_close(out[1, 2], x0[1, 2])
    with pytest.raises(ValueError, match="levels must be in"):
        s.add_noise(x, x, torch.tensor([21, 0]))
    with pytest.raises(ValueError, match="prev_timestep must be <="):
        s.step(x0, torch.tensor([3, 3]), x, prev_timestep=torch.tensor([4, 0]))
    with pytest.raises(TypeError, match="integers"):
        s.add_noise(x, x, torch.tensor([1.0, 2.0]))


def test_schedule_functions():
    assert cosine_betas(K).shape == (K,) and bool((cosine_betas(K) <= 0.999).all())
    assert linear_betas(K)[0].item() == pytest.approx(0.1 / K) and linear_betas(K)[-1].item() == pytest.approx(0.999)
    ab = level_alphas_cumprod(cosine_betas(K))
    assert ab.shape == (K + 1,) and bool((ab[1:] < ab[:-1]).all())
    k0 = torch.tensor([20, 14, 4, 0])
    steps = torch.stack([level_schedule(k0, i, 14) for i in range(15)])
    assert steps[0].tolist() == k0.tolist() and steps[-1].tolist() == [0, 0, 0, 0]
    assert bool((steps[1:] <= steps[:-1]).all())  # levels never increase
    assert steps[:, 1].tolist() == list(range(14, -1, -1))  # the top start level descends one per step
    with pytest.raises(ValueError):
        linear_betas(K, 0.5, 0.1)


class _ExactDenoiser:
    """Oracle denoiser that knows the clean window: the sampler must then return it exactly."""

    def __init__(self, states, actions):
        self.states, self.actions = states, actions

    def __call__(self, s, a, ks, ka):
        return self.states.clone(), self.actions.clone()


@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 5), ("ddim", 20), ("ddpm", 7)])
def test_sampling_with_exact_denoiser_returns_x0(sampler, steps):
    c = ModelConfig(state_dim=6, action_dim=3)
    g = torch.Generator().manual_seed(0)
    states, actions = torch.randn(2, c.window, 6, generator=g), torch.randn(2, c.action_window, 3, generator=g)
    den = _ExactDenoiser(states, actions)
    plan = sample_plan(
        den, NoiseScheduler(K), c, states[:, :5], actions[:, :4], num_steps=steps, sampler=sampler, generator=g
    )
    torch.testing.assert_close(plan.states, states, rtol=0, atol=1e-5)
    torch.testing.assert_close(plan.actions, actions, rtol=0, atol=1e-5)
    warm = sample_plan(
        den,
        NoiseScheduler(K),
        c,
        states[:, :5],
        actions[:, :4],
        sampler=sampler,
        generator=g,
        init=Plan(torch.zeros_like(states), torch.zeros_like(actions)),
    )
    torch.testing.assert_close(warm.states, states, rtol=0, atol=1e-5)
