"""Write the state layout and window geometry of checkpoints written before they described themselves into their
``config.json`` (:func:`bm_planner.training.checkpoint.upgrade_checkpoint`); weights are untouched.

    python tools/upgrade_checkpoint.py assets/planner-small-v2 assets/planner-small-v3
"""

from __future__ import annotations

import sys
from pathlib import Path

from bm_planner.training.checkpoint import upgrade_checkpoint

if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"upgraded {upgrade_checkpoint(Path(p), Path(p))}")
