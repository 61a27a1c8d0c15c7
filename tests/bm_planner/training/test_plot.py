"""bm-plot-run on the shipped run's real metrics log; torn and malformed logs."""

import shutil

import pytest

from bm_planner import SHIPPED_PLANNER
from bm_planner.training.plot import main, plot_run, read_metrics

SHIPPED = SHIPPED_PLANNER


def test_plot_shipped_run(tmp_path):
    rows = read_metrics(SHIPPED)
    assert rows[0]["step"] < rows[-1]["step"] and any("val/loss" in r for r in rows)
    out = plot_run(SHIPPED, tmp_path / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert not list(tmp_path.glob("*.tmp.png"))


def test_torn_last_line_is_skipped_and_malformed_lines_rejected(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(SHIPPED / "metrics.jsonl", run / "metrics.jsonl")
    n = len(read_metrics(run))
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 99999, "train/lo')  # a run killed mid-write
    assert len(read_metrics(run)) == n
    (run / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match="malformed"):
        read_metrics(run)
    assert main([str(tmp_path / "missing")]) == 2
    assert "not a bm-train run directory" in capsys.readouterr().err
