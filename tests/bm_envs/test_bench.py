"""``bm-bench-env``: the CLI writes a JSON/markdown result with positive ratios, and its raw loop replays the
env's own physics (so the comparison is like for like)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bm_envs.bench import VARIANTS, BenchConfig, _Runner, main


def test_cli_writes_json_and_table(tmp_path):
    assert main(["--out", str(tmp_path), "--steps", "15", "--blocks", "2", "--warmup-steps", "3"]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert set(result["variants"]) == set(VARIANTS)
    for name, v in result["variants"].items():
        assert len(v["samples"]["env"]) == len(v["samples"]["raw"]) == 2, name
        for key in ("env_steps_per_s", "raw_steps_per_s", "loop_steps_per_s", "ratio", "real_time_factor"):
            assert np.isfinite(v[key]) and v[key] > 0, (name, key, v[key])
        assert v["ratio"] == pytest.approx(v["env_steps_per_s"] / v["raw_steps_per_s"])
        assert v["loop_steps_per_s"] <= v["env_steps_per_s"]  # the loop times env.step plus the policy
    table = (tmp_path / "bench.md").read_text()
    assert table.count("\n| ") == 1 + len(VARIANTS)  # header + one row per variant
    assert "nstep=10" in result["raw_loop"]


@pytest.mark.parametrize("variant", ["env-zero", "env-expert"])
def test_raw_replay_reproduces_env_physics(variant):
    """Without latency or pushes the raw mj_step replay ends in exactly the env's state, episode resets included
    (zero actions fall over within ~1.5 s, so 120 steps span two episodes)."""
    runner = _Runner(BenchConfig(steps=120, blocks=1), *VARIANTS[variant])
    _, _, segments = runner.env_block(120)
    runner.raw_block(segments)
    assert sum(len(s.ctrl) for s in segments) == 120
    np.testing.assert_array_equal(runner.raw_data.qpos, runner.base.data.qpos)
    np.testing.assert_array_equal(runner.raw_data.qvel, runner.base.data.qvel)
    runner.close()


@pytest.mark.parametrize(
    "kwargs", [{"steps": 0}, {"blocks": 0}, {"warmup_steps": -1}, {"variants": ("nope",)}, {"variants": ()}]
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        BenchConfig(**kwargs)
