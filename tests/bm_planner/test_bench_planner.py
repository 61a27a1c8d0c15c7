"""bm-bench planner: the --quick run writes a complete JSON and the markdown table; configs are validated."""

from __future__ import annotations

import json

import pytest

from bm_planner.bench_planner import PlannerBenchConfig, main, to_markdown


def test_quick_bench_writes_json_and_markdown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BM_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["planner", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    rows = result["rows"]
    assert {r["backend"] for r in rows} >= {"torch", "onnx", "onnx+fast"}
    assert {r["start"] for r in rows} == {"cold", "warm"}
    for r in rows:
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["realtime_factor"] > 0
    warm = next(r for r in rows if r["start"] == "warm")
    assert warm["steps"] < next(r for r in rows if r["start"] == "cold")["steps"]
    m = result["models"]["small"]
    assert m["flops_per_step"] > 0 and m["matmul_flops_per_s"]["1"] > 0
    md = (tmp_path / "bench.md").read_text()
    assert md == to_markdown(result) and "| small | onnx |" in md
    # the agent's whole replan with the shipped agent_config.json (two-stage: twice the denoiser calls)
    from bm_planner.bench_planner import shipped_agent_config

    sc = shipped_agent_config(result["config"]["checkpoint"])
    shipped = [r for r in rows if r["guidance"].startswith("as shipped")]
    steps = sc.num_steps * (2 if sc.two_stage else 1)
    assert {r["backend"] for r in shipped} == {"torch", "onnx+fast"} and all(r["steps"] == steps for r in shipped)
    assert all(r["replan_period_s"] == sc.replan_every * 0.02 for r in shipped)
    for r in (r for r in rows if r["guidance"] in ("autograd", "analytic") and r["start"] == "cold"):
        assert r["speedup_vs_torch"] > 0


def test_config_validation():
    with pytest.raises(ValueError, match="presets"):
        PlannerBenchConfig(configs=("huge",))
    with pytest.raises(ValueError, match="repeats"):
        PlannerBenchConfig(repeats=1)
