"""Self-describing checkpoints: the state layout and window come from ``config.json``; a legacy checkpoint (layout in
a sidecar file) loads through the one converter and can be upgraded; without any layout loading fails (no guess)."""

from __future__ import annotations

import json
import shutil

import pytest

from bm_planner import SHIPPED_PLANNER
from bm_planner.agent import DiffusionAgent
from bm_planner.training.checkpoint import (
    CheckpointError,
    checkpoint_description,
    load_checkpoint,
    upgrade_checkpoint,
)


def _legacy_copy(tmp_path):
    """A copy of the shipped planner as it was first written: no description in config.json."""
    root = tmp_path / "planner"
    shutil.copytree(SHIPPED_PLANNER, root, ignore=shutil.ignore_patterns("*.png", "*.jsonl"))
    ckpt = load_checkpoint(root, load_train_state=False)
    cfg = {k: v for k, v in ckpt.config.items() if k not in ("state_layout", "window", "agent_config")}
    (ckpt.path / "config.json").write_text(json.dumps(cfg))
    return root, ckpt.path


def test_shipped_checkpoint_describes_itself():
    ckpt = load_checkpoint(SHIPPED_PLANNER, load_train_state=False)
    assert "state_layout" in ckpt.config and ckpt.config["window"] == {"n_history": 4, "horizon": 16}
    desc = checkpoint_description(ckpt)
    assert desc["state_layout"]["dim"] == ckpt.config["run_config"]["model"]["state_dim"]


def test_legacy_checkpoint_converts_and_upgrades(tmp_path):
    root, path = _legacy_copy(tmp_path)
    ref = DiffusionAgent.from_pretrained(SHIPPED_PLANNER)
    agent = DiffusionAgent.from_pretrained(root)  # sidecar state_layout.json beside the run: the converter
    assert agent.rep.bodies == ref.rep.bodies and agent.config == ref.config
    (root / "state_layout.json").rename(root / "layout.bak")
    with pytest.raises(CheckpointError, match="no state layout"):
        DiffusionAgent.from_pretrained(root)  # never guessed from the state dimension
    (root / "layout.bak").rename(root / "state_layout.json")
    upgrade_checkpoint(root)
    (root / "state_layout.json").unlink()
    ckpt = load_checkpoint(root, load_train_state=False)  # weights still verify
    assert ckpt.config["state_layout"]["bodies"] == list(ref.rep.bodies)
    assert DiffusionAgent.from_pretrained(root).rep.bodies == ref.rep.bodies
