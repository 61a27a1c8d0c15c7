"""StateActionDiffusionModel: loss masking, sampling contract (history, guidance hook, warm start), overfitting."""

import pytest
import torch

from bm_planner.model import ModelConfig, Plan, StateActionDiffusionModel

CFG = ModelConfig(state_dim=12, action_dim=29, width=32, depth=2, heads=2, attn_dropout=0.0)


def _model(config: ModelConfig = CFG) -> StateActionDiffusionModel:
    torch.manual_seed(0)
    return StateActionDiffusionModel(config)


def _batch(b: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, CFG.window, CFG.state_dim, generator=g), torch.randn(b, 21, CFG.action_dim, generator=g)


def _loss(model, s, a):
    return model.compute_loss(s, a, generator=torch.Generator().manual_seed(5))


def test_loss_only_sees_future_states_and_masked_actions():
    model = _model().eval()
    s, a = _batch()
    base = _loss(model, s, a)
    assert base.state_err.shape == (3, CFG.horizon) and base.action_err.shape == (3, CFG.action_loss_steps)
    assert bool((base.k_states >= 0).all()) and int(base.k_states.max()) <= CFG.num_levels
    a2 = a.clone()
    a2[:, CFG.n_history + CFG.action_loss_steps :] += 5.0  # actions after the loss mask (and past Ta) are ignored
    assert torch.equal(_loss(model, s, a2).loss, base.loss)
    a3 = a.clone()
    a3[:, CFG.n_history + 2] += 5.0
    assert _loss(model, s, a3).action_mse > base.action_mse
    weighted = StateActionDiffusionModel(ModelConfig(**{**CFG.to_dict(), "action_loss_weight": 3.0}))
    weighted.load_state_dict(model.state_dict())
    out = _loss(weighted.eval(), s, a)
    torch.testing.assert_close(out.loss, out.state_mse + 3.0 * out.action_mse)


def test_training_levels_keep_history_clean():
    model = _model()
    k_s, k_a = model.sample_levels(64, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert bool((k_s[:, : CFG.n_known_states] == 0).all()) and bool((k_a[:, : CFG.n_known_actions] == 0).all())
    fut = k_s[:, CFG.n_known_states :]
    assert int(fut.min()) == 0 and int(fut.max()) == CFG.num_levels  # U{0..K}, independent per token
    assert (fut != fut[:, :1]).any(dim=1).all()


def test_sample_keeps_history_and_is_deterministic_with_a_generator():
    model = _model()
    s, a = _batch()
    hs, ha = s[:, :5], a[:, :4]
    p1 = model.sample(hs, ha, generator=torch.Generator().manual_seed(1))
    p2 = model.sample(hs, ha, generator=torch.Generator().manual_seed(1))
    assert p1.states.shape == (3, CFG.window, CFG.state_dim) and p1.actions.shape == (3, CFG.action_window, 29)
    assert torch.equal(p1.states[:, :5], hs) and torch.equal(p1.actions[:, :4], ha)
    assert torch.equal(p1.states, p2.states) and torch.equal(p1.actions, p2.actions)
    assert bool(torch.isfinite(p1.states).all()) and model.training  # training mode restored
    p3 = model.sample(hs, ha, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(p1.states, p3.states)


@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 5)])
def test_zero_guidance_equals_no_guidance_and_guidance_steers(sampler, steps):
    model = _model()
    s, a = _batch()
    calls = []

    def zero(ps, pa, k):
        calls.append(k)
        return torch.zeros_like(ps), torch.zeros_like(pa)

    def push(ps, pa, k):
        g = torch.zeros_like(ps)
        g[..., 0] = -0.5  # gradient of a cost that wants state feature 0 larger
        return g, None

    def run(guidance):
        return model.sample(
            s[:, :5],
            a[:, :4],
            num_steps=steps,
            sampler=sampler,
            guidance=guidance,
            generator=torch.Generator().manual_seed(3),
        )

    plain, zeroed, pushed = run(None), run(zero), run(push)
    assert torch.equal(plain.states, zeroed.states) and torch.equal(plain.actions, zeroed.actions)
    assert calls == sorted(calls, reverse=True) and calls[0] == CFG.num_levels and len(calls) == (steps or 20)
    fut = slice(CFG.n_known_states, None)
    assert (pushed.states[:, fut, 0] - plain.states[:, fut, 0]).mean() > 0.3
    assert torch.equal(pushed.states[:, :5], s[:, :5])  # history is re-imposed


def test_warm_start_levels_and_validation():
    model = _model()
    s, a = _batch()
    prev = Plan(s, a[:, : CFG.action_window])
    seen = []

    def spy(ps, pa, k):
        seen.append(k)
        return None, None

    plan = model.sample(s[:, :5], a[:, :4], init=prev, guidance=spy, generator=torch.Generator().manual_seed(0))
    assert seen == list(range(CFG.warm_start_state_level, 0, -1))  # states from 14, actions from 4, 14 steps
    assert plan.states.shape == s.shape
    plan = model.sample(s[:, :5], a[:, :4], init=prev, k_start_states=0, k_start_actions=0)
    torch.testing.assert_close(plan.states, s, rtol=0, atol=0)  # level 0 everywhere: the init is kept as is
    with pytest.raises(ValueError, match="level K"):
        model.sample(s[:, :5], a[:, :4], k_start_states=10)
    with pytest.raises(ValueError, match="history_states must have shape"):
        model.sample(s[:, :4], a[:, :4])
    bad = s[:, :5].clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        model.sample(bad, a[:, :4])
    with pytest.raises(ValueError, match="sampler"):
        model.sample(s[:, :5], a[:, :4], sampler="euler")
    with pytest.raises(ValueError, match="guidance grad_states"):
        model.sample(s[:, :5], a[:, :4], guidance=lambda ps, pa, k: (ps[:, :3], None))


def test_overfits_a_single_batch():
    torch.manual_seed(0)
    c = ModelConfig(state_dim=12, action_dim=29, width=64, depth=2, heads=2, attn_dropout=0.0)
    model = StateActionDiffusionModel(c)
    g = torch.Generator().manual_seed(0)
    s, a = torch.randn(4, 21, 12, generator=g), torch.randn(4, 21, 29, generator=g)

    def fixed_loss() -> float:
        model.eval()
        with torch.no_grad():
            value = model.compute_loss(s, a, generator=torch.Generator().manual_seed(9)).loss.item()
        model.train()
        return value

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    before = fixed_loss()
    for _ in range(200):
        loss = model.compute_loss(s, a).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    assert after < before / 20, (before, after)  # measured 2.13 -> 0.023


def test_plan_shift_for_warm_start():
    s, a = _batch(2)
    plan = Plan(s, a[:, :12])
    shifted = plan.shifted(3)
    assert torch.equal(shifted.states[:, :-3], s[:, 3:]) and torch.equal(shifted.actions[:, :-3], a[:, 3:12])
    assert torch.equal(shifted.states[:, -1], s[:, -1]) and shifted.actions.shape == (2, 12, CFG.action_dim)
    assert plan.shifted(0) is not None and torch.equal(plan.shifted(0).states, s)
    with pytest.raises(ValueError, match="steps"):
        plan.shifted(12)


def _losses_and_denoiser_inputs(**noise):
    """Train-mode and eval-mode ``compute_loss`` on one batch with the same levels and noise draws: the two losses and
    the (states, actions) the denoiser saw in each, plus the clean batch."""
    from bm_planner.model import ModelConfig, StateActionDiffusionModel

    c = ModelConfig(state_dim=7, action_dim=5, width=32, depth=1, heads=2, attn_dropout=0.0, **noise)
    torch.manual_seed(0)
    model = StateActionDiffusionModel(c)
    g = torch.Generator().manual_seed(0)
    s, a = torch.randn(3, c.window, 7, generator=g), torch.randn(3, c.action_window, 5, generator=g)
    levels = model.sample_levels(3, torch.device("cpu"), torch.Generator().manual_seed(1))
    seen, losses = [], []
    model.denoiser.register_forward_pre_hook(lambda m, args: seen.append((args[0].clone(), args[1].clone())))
    for train in (True, False):
        model.train(train)
        losses.append(model.compute_loss(s, a, generator=torch.Generator().manual_seed(2), levels=levels).loss)
    return c, s, a, losses, seen


def test_history_action_noise_applies_in_training_only():
    from bm_planner.model import ModelConfig

    c, _, a, _, ((_, noisy), (_, clean)) = _losses_and_denoiser_inputs(history_action_noise=0.5)
    n = c.n_known_actions
    assert torch.equal(clean[:, :n], a[:, :n])  # eval: history actions untouched (level 0 = exact)
    assert 0.3 < (noisy[:, :n] - a[:, :n]).std() < 0.7
    with pytest.raises(ValueError, match="history_action_noise"):
        ModelConfig(history_action_noise=-1.0)


def test_history_state_noise_applies_in_training_only_and_keeps_the_target_clean():
    from bm_planner.model import ModelConfig

    c, s, _, losses, ((noisy, _), (clean, _)) = _losses_and_denoiser_inputs(history_state_noise=0.5)
    n = c.n_known_states
    assert torch.equal(clean[:, :n], s[:, :n])  # eval: history states untouched (level 0 = exact)
    assert 0.3 < (noisy[:, :n] - s[:, :n]).std() < 0.7
    assert torch.equal(noisy[:, n:], clean[:, n:])  # the noised future is the same draw: only the history changed
    assert losses[0] != losses[1]
    with pytest.raises(ValueError, match="history_state_noise"):
        ModelConfig(history_state_noise=float("nan"))


def test_noise_scale_is_the_start_noise_temperature():
    model = _model()
    s, a = _batch()
    hs, ha = s[:, :5], a[:, :4]
    kw = {"sampler": "ddim", "num_steps": 5}
    cold = [model.sample(hs, ha, generator=torch.Generator().manual_seed(k), noise_scale=0.0, **kw) for k in (1, 2)]
    assert torch.equal(cold[0].actions, cold[1].actions)  # x_K = 0 and DDIM: the seed no longer matters
    warm = [model.sample(hs, ha, generator=torch.Generator().manual_seed(k), noise_scale=1.0, **kw) for k in (1, 2)]
    assert not torch.equal(warm[0].actions, warm[1].actions)
    default = model.sample(hs, ha, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(default.actions, warm[0].actions)  # 1 is the default: plans as before
    half = model.sample(hs, ha, generator=torch.Generator().manual_seed(1), noise_scale=0.5, **kw)
    assert not torch.equal(half.actions, warm[0].actions) and not torch.equal(half.actions, cold[0].actions)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="noise_scale"):
            model.sample(hs, ha, noise_scale=bad, **kw)


def test_uniform_level_rows_share_one_level_per_kind_and_history_stays_clean():
    n_s, n_a = CFG.n_known_states, CFG.n_known_actions
    base = _model().sample_levels(400, torch.device("cpu"), torch.Generator().manual_seed(0))
    off = _model(ModelConfig(**{**CFG.__dict__, "uniform_level_prob": 0.0}))
    assert all(
        torch.equal(x, y)
        for x, y in zip(off.sample_levels(400, torch.device("cpu"), torch.Generator().manual_seed(0)), base)
    )
    every = _model(ModelConfig(**{**CFG.__dict__, "uniform_level_prob": 1.0}))
    k_s, k_a = every.sample_levels(400, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert bool((k_s[:, :n_s] == 0).all()) and bool((k_a[:, :n_a] == 0).all())
    assert bool((k_s[:, n_s:] == k_s[:, n_s : n_s + 1]).all()) and bool((k_a[:, n_a:] == k_a[:, n_a : n_a + 1]).all())
    assert len(set(k_s[:, n_s].tolist())) == CFG.num_levels + 1  # every level, 0..K, is drawn
    assert bool((k_s[:, n_s] != k_a[:, n_a]).any())  # states and actions get their own level
    half = _model(ModelConfig(**{**CFG.__dict__, "uniform_level_prob": 0.5}))
    k_s, _ = half.sample_levels(400, torch.device("cpu"), torch.Generator().manual_seed(0))
    shared = (k_s[:, n_s:] == k_s[:, n_s : n_s + 1]).all(1).float().mean()
    assert 0.4 < float(shared) < 0.6  # about half the rows (a per-token row is practically never constant)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="uniform_level_prob"):
            ModelConfig(uniform_level_prob=bad)
