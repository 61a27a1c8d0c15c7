"""Command conditioning (ModelConfig.command_dim): starts as the unconditional model, changes plans once trained,
"no command" = dropped rows, unconditional models reject a command, sampler/ONNX plumbing."""

import pytest
import torch

from bm_planner.model import ModelConfig, StateActionDiffusionModel
from bm_planner.model.config import ConfigError
from bm_planner.model.samplers import FastDDIMSampler

TINY = dict(width=32, depth=2, heads=2, state_dim=12, action_dim=5, attn_dropout=0.0)  # noqa: C408


def _models():
    torch.manual_seed(0)
    base = StateActionDiffusionModel(ModelConfig(**TINY)).eval()
    cond = StateActionDiffusionModel(ModelConfig(**TINY, command_dim=3, command_dropout=0.5)).eval()
    missing, unexpected = cond.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all("command_embedding" in k for k in missing) and missing
    return base, cond


def _conditioned():
    """The conditioned model with a non-zero command embedding (as after some training)."""
    _, cond = _models()
    with torch.no_grad():
        torch.nn.init.normal_(cond.denoiser.command_embedding.mlp[2].weight, std=0.2)
    return cond


def _inputs(c, b=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, c.window, c.state_dim, generator=g), torch.randn(b, c.action_window, c.action_dim, generator=g),
            torch.randint(0, c.num_levels + 1, (b, c.window), generator=g),
            torch.randint(0, c.num_levels + 1, (b, c.action_window), generator=g))  # fmt: skip


def test_new_command_embedding_leaves_the_unconditional_function_unchanged():
    base, cond = _models()
    x = _inputs(cond.config)
    ref = base(*x)
    for out in (cond(*x), cond(*x, torch.randn(3, 3))):
        for o, r in zip(out, ref):
            torch.testing.assert_close(o, r)


def test_command_changes_the_prediction_and_none_equals_dropped_rows():
    cond = _conditioned()
    with torch.no_grad():
        torch.nn.init.normal_(cond.denoiser.command_embedding.null, std=0.2)
    x = _inputs(cond.config)
    fwd = torch.tensor([[0.5, 0.0, 0.0]]).expand(3, 3)
    back = torch.tensor([[-0.5, 0.0, 0.0]]).expand(3, 3)
    assert (cond(*x, fwd)[1] - cond(*x, back)[1]).abs().max() > 1e-3
    none = cond(*x)
    dropped = cond(*x, fwd, torch.ones(3, dtype=torch.bool))
    for a, b in zip(none, dropped):
        torch.testing.assert_close(a, b)
    mixed = cond(*x, fwd, torch.tensor([True, False, True]))
    torch.testing.assert_close(mixed[1][1], cond(*x, fwd)[1][1])
    torch.testing.assert_close(mixed[1][0], none[1][0])


def test_unconditional_model_rejects_a_command_and_bad_shapes_are_errors():
    base, cond = _models()
    x = _inputs(base.config)
    with pytest.raises(ValueError, match="no command input"):
        base(*x, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="command must have shape"):
        cond(*x, torch.zeros(3, 2))
    with pytest.raises(ConfigError):
        ModelConfig(**TINY, command_dim=-1)
    with pytest.raises(ConfigError):
        ModelConfig(**TINY, command_dropout=1.5)


def test_loss_with_full_dropout_equals_no_command():
    cond = _conditioned()
    c = cond.config
    g = torch.Generator().manual_seed(3)
    s, a = (
        torch.randn(4, c.window, c.state_dim, generator=g),
        torch.randn(4, c.action_window, c.action_dim, generator=g),
    )
    cmd = torch.randn(4, 3, generator=g)
    cond.train()
    full = StateActionDiffusionModel(ModelConfig(**TINY, command_dim=3, command_dropout=1.0))
    full.load_state_dict(cond.state_dict())
    full.train()
    l_drop = full.compute_loss(s, a, generator=torch.Generator().manual_seed(0), command=cmd).loss
    l_none = full.compute_loss(s, a, generator=torch.Generator().manual_seed(0)).loss
    l_cmd = cond.compute_loss(s, a, generator=torch.Generator().manual_seed(0), command=cmd).loss
    torch.testing.assert_close(l_drop, l_none)
    assert bool(torch.isfinite(l_cmd)) and float((l_cmd - l_none).detach().abs()) > 0


def test_fast_sampler_matches_reference_with_a_command():
    cond = _conditioned()
    c = cond.config
    g = torch.Generator().manual_seed(4)
    hs, ha = (
        torch.randn(2, c.n_known_states, c.state_dim, generator=g),
        torch.randn(2, c.n_known_actions, c.action_dim, generator=g),
    )
    cmd = torch.randn(2, 3, generator=g)
    ref = cond.sample(hs, ha, num_steps=4, sampler="ddim", generator=torch.Generator().manual_seed(0), command=cmd)
    fast = FastDDIMSampler()(cond, hs, ha, num_steps=4, generator=torch.Generator().manual_seed(0), command=cmd)
    torch.testing.assert_close(fast.actions, ref.actions, atol=1e-5, rtol=0)
    other = cond.sample(hs, ha, num_steps=4, sampler="ddim", generator=torch.Generator().manual_seed(0), command=-cmd)
    assert (other.actions - ref.actions).abs().max() > 1e-4


def test_onnx_export_of_a_conditioned_model_takes_the_command(tmp_path):
    pytest.importorskip("onnxruntime")
    from bm_planner.backends.onnxruntime import OnnxDenoiser
    from bm_planner.export.onnx_export import export_onnx
    from bm_planner.export.parity import STEP_ATOL, step_error

    cond = _conditioned()
    path = export_onnx(cond, tmp_path / "cond.onnx")
    den = OnnxDenoiser(path, model=cond)
    assert den.conditioned and step_error(cond, den) <= STEP_ATOL
    x, cmd, drop = _inputs(cond.config), torch.randn(3, 3), torch.tensor([True, False, True])
    with torch.no_grad():
        for o, r in zip(den(*x, cmd, drop), cond.denoiser(*x, cmd, drop)):  # "no command" rows as in torch
            torch.testing.assert_close(o, r, atol=STEP_ATOL, rtol=0)
    with pytest.raises(ValueError, match="needs a command"):
        den(*_inputs(cond.config))
