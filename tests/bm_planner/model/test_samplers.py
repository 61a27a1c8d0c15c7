"""Samplers as objects: the caller chooses one and passes it into sampling; names still pick the reference ones."""

import pytest
import torch

from bm_planner.model import ModelConfig, StateActionDiffusionModel
from bm_planner.model.samplers import DDIMSampler, DDPMSampler, FastDDIMSampler, make_sampler

CFG = ModelConfig(state_dim=12, action_dim=29, width=32, depth=2, heads=2, attn_dropout=0.0)


def _model(config: ModelConfig = CFG, seed: int = 0) -> StateActionDiffusionModel:
    torch.manual_seed(seed)
    return StateActionDiffusionModel(config).eval()


def _history(c: ModelConfig = CFG, b: int = 2):
    g = torch.Generator().manual_seed(7)
    return torch.randn(b, c.n_known_states, c.state_dim, generator=g), torch.randn(b, c.n_known_actions, c.action_dim,
                                                                                 generator=g)  # fmt: skip


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("name", "obj"), [("ddim", DDIMSampler()), ("ddpm", DDPMSampler())])
def test_a_sampler_object_gives_the_plan_its_name_gives(name, obj):
    model = _model()
    hs, ha = _history()
    by_name = model.sample(hs, ha, num_steps=6, sampler=name, generator=_gen())
    by_obj = model.sample(hs, ha, num_steps=6, sampler=obj, generator=_gen())
    assert torch.equal(by_name.states, by_obj.states) and torch.equal(by_name.actions, by_obj.actions)
    called = obj(model, hs, ha, num_steps=6, generator=_gen())  # callable on its own, same contract
    assert torch.equal(called.actions, by_obj.actions)


def test_eta_lives_in_the_sampler():
    model = _model()
    hs, ha = _history()
    ref = model.sample(hs, ha, num_steps=6, sampler="ddpm", eta=0.5, generator=_gen())
    obj = model.sample(hs, ha, num_steps=6, sampler=DDPMSampler(eta=0.5), generator=_gen())
    assert torch.equal(ref.actions, obj.actions)
    full = model.sample(hs, ha, num_steps=6, sampler=DDPMSampler(), generator=_gen())
    assert (full.actions - obj.actions).abs().max() > 1e-3  # eta changes the plan
    with pytest.raises(ValueError, match="eta is a setting of the sampler object"):
        model.sample(hs, ha, num_steps=6, sampler=DDIMSampler(), eta=0.5)
    with pytest.raises(ValueError, match="eta must be in"):
        DDPMSampler(eta=float("nan"))


def test_bad_samplers_are_refused_with_one_line():
    with pytest.raises(ValueError, match="sampler must be one of"):
        make_sampler("euler")
    with pytest.raises(TypeError, match="sampler must be one of"):
        make_sampler(3)
    assert isinstance(make_sampler("ddim", fast=True), FastDDIMSampler)
    assert isinstance(make_sampler("ddim", eta=0.3, fast=True), DDIMSampler)  # eta > 0 is not what the fast loop does
    assert isinstance(make_sampler("ddpm", fast=True), DDPMSampler)


def test_one_fast_sampler_serves_models_with_different_schedules():
    """Its coefficient tables are cached per scheduler: a second model with another schedule gets its own."""
    cos, lin = _model(CFG), _model(ModelConfig(**{**CFG.__dict__, "schedule": "linear"}))
    hs, ha = _history()
    fast = FastDDIMSampler()
    for m in (cos, lin, cos):
        ref = m.sample(hs, ha, num_steps=8, sampler="ddim", generator=_gen())
        out = m.sample(hs, ha, num_steps=8, sampler=fast, generator=_gen())
        torch.testing.assert_close(out.actions, ref.actions, atol=1e-5, rtol=1e-5)
    a = lin.sample(hs, ha, num_steps=8, sampler=fast, generator=_gen()).actions
    b = cos.sample(hs, ha, num_steps=8, sampler=fast, generator=_gen()).actions
    assert (a - b).abs().max() > 1e-3  # and the two schedules do differ


def test_the_model_is_not_patched_and_with_denoiser_copies_carry_nothing():
    model = _model()
    assert "sample" not in vars(model)
    copy = model.with_denoiser(model.denoiser)
    assert "sample" not in vars(copy) and copy.scheduler is model.scheduler
