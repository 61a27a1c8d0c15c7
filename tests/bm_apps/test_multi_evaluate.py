"""bm-eval-multi: a short expert trial and the batched-vs-separate planning benchmark write their JSON."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pettingzoo")

from bm_apps.multi_evaluate import bench_planning, main, make_team
from bm_planner import SHIPPED_PLANNER

SHIPPED = SHIPPED_PLANNER


def test_eval_cli_writes_team_outcomes(tmp_path):
    main(["--robots", "2", "--trials", "2", "--policy", "expert", "--time-limit", "0.3", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "eval.json").read_text())["results"][0]
    assert res["scenario"] == "swap-2" and res["summary"]["trials"] == 2
    t = res["trials"][0]
    assert t["steps"] == 15 and not t["team_success"] and set(t["robots"]) == {"robot_0", "robot_1"}
    assert {"robot_collisions", "obstacle_collisions", "falls", "reached"} <= set(t)


def test_bench_planning_times_both_modes():
    r = bench_planning(str(SHIPPED), 2, rounds=1, num_steps=1)
    assert r["batched_sample_s"] > 0 and r["separate_sample_s"] > 0 and r["speedup_sample"] > 0


def test_bad_policy_is_rejected():
    with pytest.raises(ValueError, match="policy"):
        make_team("diffusion", ["robot_0", "robot_1"])


def test_diffusion_team_uses_the_shipped_agent_config_unless_overridden():
    from bm_planner.agent import _shipped_agent_config

    shipped = _shipped_agent_config(SHIPPED, SHIPPED)
    team = make_team(f"diffusion:{SHIPPED}", ["robot_0", "robot_1"])
    assert team.config["num_steps"] == shipped["num_steps"] and team.config["two_stage"] == shipped["two_stage"]
    assert make_team(f"diffusion:{SHIPPED}", ["robot_0"], num_steps=3, guidance_scale=0.0).config["num_steps"] == 3
