"""Attention mask of the DifferentiatedTransformer, checked on the full model forward with random weights."""

import pytest
import torch

from bm_planner.model import ModelConfig, StateActionDiffusionModel, build_attention_mask

CFG = ModelConfig(state_dim=7, action_dim=5, width=32, depth=2, heads=2, attn_dropout=0.3, dropout=0.1)
ATOL = 1e-6


def _model(config: ModelConfig = CFG) -> StateActionDiffusionModel:
    torch.manual_seed(0)
    return StateActionDiffusionModel(config).eval()


def _inputs(c: ModelConfig, b: int = 2):
    g = torch.Generator().manual_seed(1)
    s = torch.randn(b, c.window, c.state_dim, generator=g)
    a = torch.randn(b, c.action_window, c.action_dim, generator=g)
    ks = torch.randint(0, c.num_levels + 1, (b, c.window), generator=g)
    ka = torch.randint(0, c.num_levels + 1, (b, c.action_window), generator=g)
    return s, a, ks, ka


def test_mask_matches_the_documented_diagram():
    m = build_attention_mask(4, 3).int()
    expected = torch.tensor(
        [
            [1, 1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0, 0],
            [1, 0, 0, 0, 1, 0, 0],
            [1, 1, 0, 0, 1, 1, 0],
            [1, 1, 1, 0, 1, 1, 1],
        ]
    )
    assert torch.equal(m, expected)
    assert build_attention_mask(4, 3, lookahead=1).int()[4].tolist() == [1, 1, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("j", [4, 6, 11])
def test_future_action_changes_no_state_and_no_earlier_action(j):
    model = _model()
    s, a, ks, ka = _inputs(CFG)
    with torch.no_grad():
        ps, pa = model(s, a, ks, ka)
        a2 = a.clone()
        a2[:, j] += 3.0
        ka2 = ka.clone()
        ka2[:, j] = (ka[:, j] + 7) % (CFG.num_levels + 1)  # its noise level too
        ps2, pa2 = model(s, a2, ks, ka2)
    torch.testing.assert_close(ps2, ps, rtol=0, atol=ATOL)
    torch.testing.assert_close(pa2[:, :j], pa[:, :j], rtol=0, atol=ATOL)
    assert (pa2[:, j:] - pa[:, j:]).abs().amax() > 1e-3  # the test can fail: later outputs do change


@pytest.mark.parametrize("lookahead", [0, 1])
def test_one_layer_state_j_reaches_actions_from_j_minus_lookahead(lookahead):
    """With one layer the mask alone decides: action a_i sees state inputs s_j only for j <= i + lookahead."""
    c = ModelConfig(**{**CFG.to_dict(), "action_state_lookahead": lookahead, "depth": 1})
    model = _model(c)
    s, a, ks, ka = _inputs(c)
    j = 8
    with torch.no_grad():
        ps, pa = model(s, a, ks, ka)
        s2 = s.clone()
        s2[:, j] -= 2.0
        ps2, pa2 = model(s2, a, ks, ka)
    first = j - lookahead
    torch.testing.assert_close(pa2[:, :first], pa[:, :first], rtol=0, atol=ATOL)
    assert (pa2[:, first:] - pa[:, first:]).abs().amax(-1).min() > 1e-4  # every action from j - lookahead on
    assert (ps2 - ps).abs().amax(-1).min() > 1e-4  # states attend to all states, earlier ones included


def test_deeper_layers_let_the_future_state_plan_reach_the_first_action():
    """From the second layer on, the state tokens s_j (j <= i) that a_i reads already mix in all states, so the first
    planned action depends on the planned future states: this is what lets state-space guidance steer actions."""
    model = _model()  # depth 2
    s, a, ks, ka = _inputs(CFG)
    with torch.no_grad():
        _, pa = model(s, a, ks, ka)
        s2 = s.clone()
        s2[:, -1] += 2.0  # the last planned state
        _, pa2 = model(s2, a, ks, ka)
    assert (pa2[:, CFG.n_history] - pa[:, CFG.n_history]).abs().amax() > 1e-4


def test_per_token_levels_condition_the_outputs():
    model = _model()
    s, a, ks, ka = _inputs(CFG)
    with torch.no_grad():
        ps, _ = model(s, a, ks, ka)
        ks2 = ks.clone()
        ks2[:, 10] = (ks[:, 10] + 5) % (CFG.num_levels + 1)
        ps2, _ = model(s, a, ks2, ka)
    assert (ps2 - ps).abs().amax() > 1e-4


def test_attention_dropout_is_active_in_training_only():
    model = _model()
    s, a, ks, ka = _inputs(CFG)
    model.train()
    torch.manual_seed(0)
    out1 = model(s, a, ks, ka)[0]
    out2 = model(s, a, ks, ka)[0]
    assert (out1 - out2).abs().amax() > 1e-5
    model.eval()
    torch.testing.assert_close(model(s, a, ks, ka)[0], model(s, a, ks, ka)[0], rtol=0, atol=0)


def test_forward_rejects_wrong_shapes():
    model = _model()
    s, a, ks, ka = _inputs(CFG)
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 12, 5\)"):
        model(s, a[:, :-1], ks, ka)
    with pytest.raises(ValueError, match="k_states must have shape"):
        model(s, a, ks[:, 1:], ka)


def test_hidden_history_actions_change_no_other_output():
    """history_actions=False: the executed history actions (tokens 0..N-1) reach no other output at any depth."""
    assert build_attention_mask(2, 4, hidden_actions=2).int()[2:, 2:].tolist() == [
        [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]  # fmt: skip
    c = ModelConfig(**{**CFG.to_dict(), "history_actions": False})
    model, n = _model(c), c.n_known_actions
    s, a, ks, ka = _inputs(c)
    a2 = a.clone()
    a2[:, :n] += 3.0
    with torch.no_grad():
        ps, pa = model(s, a, ks, ka)
        ps2, pa2 = model(s, a2, ks, ka)
        ref = _model(CFG)  # same weights (same seed), history actions visible: the change does propagate
        ref.load_state_dict(model.state_dict())
        pr, par = ref(s, a, ks, ka)
        pr2, par2 = ref(s, a2, ks, ka)
    torch.testing.assert_close(ps2, ps, rtol=0, atol=ATOL)
    torch.testing.assert_close(pa2[:, n:], pa[:, n:], rtol=0, atol=ATOL)
    assert (par2[:, n:] - par[:, n:]).abs().amax() > 1e-3
    with pytest.raises(ValueError, match="history_actions must be a bool"):
        ModelConfig(history_actions=1)
