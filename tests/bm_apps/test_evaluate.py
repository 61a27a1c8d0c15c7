"""``bm-eval-expert``: per-trial outcomes with the required keys, summaries, seeded reproducibility across runs
and worker counts, and clear errors for bad inputs."""

from __future__ import annotations

import json

import pytest

from bm_apps.evaluate import TRIAL_KEYS, EvalConfig, evaluate, main
from bm_envs.eval_report import summarize
from bm_planner import SHIPPED_PLANNER

SHORT_OBSTACLE = {
    "name": "short-obstacle", "env": "BM-G1-Obstacle-v0", "time_limit_s": 2.0,
    "start": {"xy": [0.0, 0.0], "yaw": 0.0, "xy_noise": 0.1, "yaw_noise": 0.2},
    "waypoints": [[3.0, 0.0]], "goal_radius_m": 0.3,
    "obstacles": [{"type": "cylinder", "pos": [1.5, 0.1], "radius": 0.2, "height": 1.5}],
}  # fmt: skip


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "short-obstacle.json"
    path.write_text(json.dumps(SHORT_OBSTACLE))
    return str(path)


def _outcomes(result: dict) -> list[dict]:
    return [{k: v for k, v in t.items() if k != "wall_s"} for t in result["trials"]]


def test_scenario_trials_are_recorded_and_reproducible(scenario_file, tmp_path):
    cfg = EvalConfig(scenario=scenario_file, trials=2, seed=3, workers=1, out=str(tmp_path / "a"))
    first = evaluate(cfg, progress=False)
    saved = json.loads((tmp_path / "a" / "eval.json").read_text())
    assert saved["suite"] == "short-obstacle" and saved["env"] == "BM-G1-Obstacle-v0"
    assert [t["seed"] for t in saved["trials"]] == [3, 4]
    for t in saved["trials"]:
        assert set(TRIAL_KEYS) <= set(t)
        assert isinstance(t["success"], bool) and isinstance(t["fell"], bool) and isinstance(t["collided"], bool)
        assert 0.0 <= t["min_clearance_m"] <= 1.5  # obstacle env: clearance is measured
        assert t["vel_error_mean"] is None  # only the joystick env tracks a velocity
        assert 0 < t["duration_s"] <= 2.0 + 1e-9
        assert 0.0 <= t["action_delay_ms"] <= 100.0
    assert saved["summary"]["trials"] == 2
    assert "| short-obstacle | 2 |" in (tmp_path / "a" / "summary.md").read_text()
    assert _outcomes(saved) == _outcomes(first)

    # same seeds, two worker processes: identical outcomes
    again = evaluate(EvalConfig(**{**cfg.__dict__, "workers": 2, "out": str(tmp_path / "b")}), progress=False)
    assert _outcomes(again) == _outcomes(first)


def test_joystick_suite_cli_reports_velocity_error(tmp_path):
    argv = ["--suite", "joystick-random", "--trials", "1", "--workers", "1", "--time-limit-s", "1.0",
            "--no-randomize", "--latency-ms", "0", "0", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    (trial,) = result["trials"]
    assert trial["vel_error_mean"] is not None and trial["vel_error_mean"] >= 0.0
    assert trial["min_clearance_m"] is None and trial["collided"] is False
    assert trial["steps"] == 50 and trial["action_delay_ms"] == 0.0 and trial["pushes"] == 0
    assert result["config"]["randomize"] is False
    assert result["summary"]["vel_error_mean"] == pytest.approx(trial["vel_error_mean"])


def test_summary_rates_and_intervals():
    base = {k: None for k in TRIAL_KEYS} | {"duration_s": 1.0, "wall_s": 0.1, "collided": False}
    trials = [base | {"success": True, "fell": False, "time_to_goal_s": 4.0, "min_clearance_m": 0.3},
              base | {"success": False, "fell": True, "time_to_goal_s": None, "min_clearance_m": 0.1},
              base | {"success": True, "fell": False, "time_to_goal_s": 6.0, "min_clearance_m": 0.2},
              base | {"success": False, "fell": False, "collided": True, "min_clearance_m": 0.0}]  # fmt: skip
    s = summarize(trials)
    assert s["trials"] == 4 and s["success_rate"] == 0.5 and s["fall_rate"] == 0.25 and s["collision_rate"] == 0.25
    assert s["time_to_goal_s_mean"] == 5.0 and s["min_clearance_m_min"] == 0.0
    lo, hi = s["success_rate_ci95"]
    assert 0.0 < lo < 0.5 < hi < 1.0
    assert s["vel_error_mean"] is None and s["vel_error_mean_not_fallen"] is None
    joy = [base | {"success": False, "fell": fell, "vel_error_mean": err}
           for fell, err in ((False, 0.2), (True, 1.0), (False, 0.4))]  # fmt: skip
    s = summarize(joy)
    assert s["vel_error_mean"] == pytest.approx(1.6 / 3) and s["vel_error_mean_not_fallen"] == pytest.approx(0.3)
    assert s["fall_rate_by_latency_ms"] == {}  # no latency recorded
    planned = [base | {"success": False, "fell": True, "fall_time_s": 3.0, "plan_time_ms": 5.0, "ood": True,
                       "ood_time_s": 2.5, "ood_reason": "history"},
               base | {"success": False, "fell": True, "fall_time_s": 4.0, "plan_time_ms": 5.0, "ood": True,
                       "ood_time_s": 3.0, "ood_reason": "history"},
               base | {"success": False, "fell": True, "fall_time_s": 2.0, "plan_time_ms": 5.0, "ood": False},
               base | {"success": True, "fell": False, "plan_time_ms": 5.0, "ood": True, "ood_time_s": 8.0,
                       "ood_reason": "quaternion"}]  # fmt: skip
    s = summarize(planned)
    assert s["ood_rate"] == 0.75 and s["falls_after_ood"] == 2 and s["ood_lead_s_median"] == pytest.approx(0.75)
    assert s["ood_reasons"] == {"history": 2, "quaternion": 1}


def test_out_of_distribution_fallbacks_are_timed_and_explained(tmp_path):
    """A threshold no history meets: the fallback takes over at the first plan (after the settle steps)."""
    agent = json.dumps({"ood_threshold": 1e-3, "num_steps": 2})
    assert main(["--suite", "walk-perturb", "--policy", f"diffusion:{SHIPPED_PLANNER}", "--agent", agent, "--trials",
                 "1", "--workers", "1", "--time-limit-s", "1.0", "--no-progress", "--out", str(tmp_path)]) == 0  # fmt: skip
    result = json.loads((tmp_path / "eval.json").read_text())
    (t,) = result["trials"]
    settle = result["config"]["agent_effective"]["settle_steps"]
    assert t["ood"] and t["ood_reason"] == "history" and t["ood_dim"][0] in "sa"
    assert t["ood_time_s"] == pytest.approx(settle * 0.02) and t["ood_plans"] >= 1
    assert t["history_max_z"] > 1e-3 and t["history_max_z_dim"][0] in "sa"
    assert "first trigger: history 1" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--scenario", "/nonexistent/scenario.json"], "not found"),
        (["--latency-ms", "50", "10"], "latency_ms"),
        (["--trials", "0"], "trials"),
        (["--time-limit-s", "nan"], "time_limit_s"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--out", str(tmp_path), "--no-progress"])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_malformed_scenario_file_is_rejected(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "env": "BM-G1-Waypoint-v0", "time_limit_s": 2.0, "waypoints": [[1, 0]],')
    with pytest.raises(SystemExit):
        main(["--scenario", str(bad), "--out", str(tmp_path)])
    assert "malformed JSON" in capsys.readouterr().err


def test_diffusion_policy_on_walk_perturb_suite_and_combined_table(tmp_path, capsys):
    """The shipped planner through the CLI on a paper suite (1 s), then one table over it and an expert run."""

    from bm_envs.eval_report import table_main

    ckpt = SHIPPED_PLANNER
    common = ["--trials", "1", "--workers", "1", "--time-limit-s", "1.0", "--no-progress"]
    agent = json.dumps({"guidance_scale": 1.0, "warm_start": True})
    assert main(["--suite", "walk-perturb", "--policy", f"diffusion:{ckpt}", "--agent", agent,
                 "--out", str(tmp_path / "dm"), *common]) == 0  # fmt: skip
    dm = json.loads((tmp_path / "dm" / "eval.json").read_text())
    assert dm["suite"] == "walk-perturb" and dm["env"] == "BM-G1-Joystick-v0"
    assert dm["trials"][0]["plan_time_ms"] > 0 and dm["trials"][0]["pushes"] >= 0
    eff = dm["config"]["agent_effective"]  # the shipped agent_config.json under the --agent overrides
    assert eff["two_stage"] is True and eff["guidance_scale"] == dm["config"]["agent"]["guidance_scale"]
    assert main(["--suite", "walk-perturb", "--out", str(tmp_path / "ex"), *common]) == 0
    capsys.readouterr()
    assert table_main([str(tmp_path / "dm"), str(tmp_path / "ex" / "eval.json"), "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert (
        "diffusion `planner-small-v2` guided (scale 1), warm start" in table and "expert fastsac + command law" in table
    )
    assert table.count("| walk-perturb |") == 2
    (tmp_path / "bad.json").write_text("{}")
    assert table_main([str(tmp_path / "bad.json")]) == 2


def test_table_names_overridden_randomization_ranges(tmp_path, capsys):
    from bm_envs.eval_report import table_main

    argv = ["--suite", "walk-perturb", "--trials", "1", "--workers", "1", "--time-limit-s", "0.5", "--no-progress",
            "--profile", "paper", "--randomization", '{"friction": [0.5, 1.25]}', "--latency-ms", "0", "20",
            "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert table_main([str(tmp_path / "m")]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert "| paper + friction 0.5–1.25, latency 0–20 ms | 0–20 |" in row


@pytest.mark.parametrize("argv, msg", [
    (["--policy", "diffusion:/nope", "--workers", "2"], "no checkpoint found at /nope"),
    (["--policy", "diffusion:SHIPPED", "--agent", '{"bogus": 1}', "--workers", "1"], "unknown AgentConfig field"),
])  # fmt: skip
def test_bad_policies_fail_fast_with_one_line_and_no_output(tmp_path, capsys, argv, msg):
    import time

    from bm_planner import SHIPPED_PLANNER

    argv = [a.replace("SHIPPED", str(SHIPPED_PLANNER)) for a in argv]
    t0 = time.perf_counter()
    assert main(["--suite", "walk-perturb", "--trials", "2", "--no-progress", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists() and time.perf_counter() - t0 < 60


def test_demo_bad_checkpoint_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    from bm_apps.demo import main as demo_main

    assert demo_main(["--checkpoint", "/nope", "--out", str(tmp_path / "d"), "--no-video", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bm-demo: error: no checkpoint found at /nope") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()
