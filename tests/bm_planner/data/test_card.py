import json

from bm_planner.data.card import main


def test_dataset_card(falls_root, tmp_path):
    out = tmp_path / "card"
    assert main([str(falls_root), "--out", str(out)]) == 0
    for name in ("commands.png", "falls.png", "state_stats.png", "action_stats.png"):
        assert (out / name).stat().st_size > 5000, name
    nums = json.loads((out / "card.json").read_text())
    assert nums["episodes"] == 2 and nums["fall_rate"] == 1.0 and abs(sum(nums["kinds"].values()) - 1) < 1e-3
    text = (out / "card.md").read_text()
    assert "episodes ending in a fall | 2 (100.0 %)" in text and "![commands](commands.png)" in text
    assert main([str(tmp_path / "nothing")]) == 2
