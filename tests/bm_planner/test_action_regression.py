"""The shipped planner's actions on a fixed observation sequence equal the stored reference: refactors must not
change behaviour (reference: ``tools/make_action_reference.py``; regenerate it only on purpose)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "tests" / "bm_planner" / "fixtures" / "shipped_actions.json"


def test_shipped_planner_actions_match_the_reference():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from make_action_reference import load_reference, planner_actions
    finally:
        sys.path.pop(0)
    seq, ref = load_reference(REF)
    acts = planner_actions(seq)
    assert acts.shape == ref.shape
    # bit-identical on the machine that wrote the reference; float32 kernels may round differently on another CPU
    assert np.abs(acts - ref).max() <= 1e-5, np.abs(acts - ref).max()
