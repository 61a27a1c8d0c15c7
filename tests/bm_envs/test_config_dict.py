"""One checked ``from_dict`` for every dataclass config: unknown keys, non-mappings, YAML/JSON value forms."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bm_envs.config_dict import ConfigError, from_dict, replace_checked

Pair = tuple[float, float] | None


@dataclass(frozen=True)
class Demo:
    lr: float = 1e-3
    ranges: Pair = (0.0, 1.0)
    name: str = "x"
    steps: int = 3


def test_values_in_their_json_yaml_forms_become_the_field_types():
    d = from_dict(Demo, {"lr": "3e-4", "ranges": [0.5, 1.25], "name": "3e-4"})
    assert d.lr == 3e-4 and d.ranges == (0.5, 1.25) and d.name == "3e-4"  # a str field keeps its string
    assert from_dict(Demo, {"ranges": None}).ranges is None
    assert replace_checked(d, {"steps": 7}) == Demo(3e-4, (0.5, 1.25), "3e-4", 7)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"lrr": 1.0}, r"unknown Demo field\(s\) \['lrr'\]; known: \['lr', 'name', 'ranges', 'steps'\]"),
        ([1, 2], "Demo must be a mapping of its fields; got list"),
        ({"lr": "fast"}, "Demo.lr must be a number; got 'fast'"),
    ],
)
def test_bad_input_is_one_line(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(Demo, data)


def test_a_config_with_a_type_alias_and_arrays():
    import numpy as np

    from bm_envs.wrappers.randomization import RandomizationConfig

    cfg = RandomizationConfig.from_dict({"friction": [0.5, 1.25], "kp_scale": np.array([0.9, 1.1])})
    assert cfg.friction == (0.5, 1.25) and cfg.kp_scale == (0.9, 1.1)
    with pytest.raises(ConfigError, match=r"unknown randomization field\(s\) \['frction'\]"):
        RandomizationConfig.from_dict({"frction": [0, 1]})
