"""ModelConfig validation, presets and parameter counts."""

import pytest

from bm_planner.model import MODEL_PRESETS, ConfigError, ModelConfig, StateActionDiffusionModel


def test_base_preset_is_the_paper_size():
    n = StateActionDiffusionModel(MODEL_PRESETS["base"]).num_parameters()
    assert 19_000_000 < n < 21_000_000  # paper: 19.95 M; measured 19.84 M
    c = MODEL_PRESETS["base"]
    assert (c.depth, c.width, c.heads, c.attn_dropout, c.num_levels) == (6, 512, 4, 0.3, 20)
    assert (c.window, c.action_window) == (21, 12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"width": 100, "heads": 3}, "divisible"),
        ({"depth": 0}, "depth"),
        ({"attn_dropout": 1.0}, "attn_dropout"),
        ({"schedule": "sigmoid"}, "schedule"),
        ({"action_horizon": 18}, "action_horizon"),
        ({"action_loss_steps": 9}, "action_loss_steps"),
        ({"warm_start_state_level": 21}, "warm_start_state_level"),
        ({"action_loss_weight": float("nan")}, "finite"),
        ({"state_dim": 87.0}, "int"),
        ({"state_loss_weight": 0.0, "action_loss_weight": 0.0}, "nothing would be trained"),
    ],
)
def test_invalid_values_are_rejected_with_the_value(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**kwargs)


def test_from_dict_overrides_and_rejects_unknown_keys():
    c = ModelConfig.from_dict({"width": 128, "heads": 2, "action_loss_weight": "3e0"}, base=MODEL_PRESETS["small"])
    assert (c.width, c.heads, c.depth, c.action_loss_weight) == (128, 2, 4, 3.0)
    with pytest.raises(ConfigError, match="unknown model field"):
        ModelConfig.from_dict({"widht": 128})
    with pytest.raises(ConfigError, match="unknown model preset"):
        ModelConfig.preset("huge")
