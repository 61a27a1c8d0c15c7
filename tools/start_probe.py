"""Standing-start table: from the standing reset, does the planner start each kind of motion the expert does?

For each command (forward, backward, left, right, turn left / right in place, forward + turn), ``--seeds`` trials of
``tools/handoff_probe.py`` with no warm-up (the planner drives from the reset, no randomization by default; start
pose noise). The expert starts all of them (``joystick-8dir``). "started" = the mean heading-frame velocity over the trial (start
included) reaches 25 % of the commanded planar speed and 40 % of the commanded yaw rate, in the right direction —
the joystick success tolerances. Prints a markdown table.

    python tools/start_probe.py --checkpoint assets/planner-small-v3 --seeds 5
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from handoff_probe import probe  # noqa: E402

COMMANDS = {"forward": (0.5, 0.0, 0.0), "backward": (-0.3, 0.0, 0.0), "left": (0.0, 0.3, 0.0),
            "right": (0.0, -0.3, 0.0), "turn left": (0.0, 0.0, 0.6), "turn right": (0.0, 0.0, -0.6),
            "forward + left turn": (0.4, 0.0, 0.5)}  # fmt: skip


def started(row: dict, cmd) -> bool:
    if row["fell"] or not math.isfinite(row["planner_vx"]):
        return False
    c_xy = math.hypot(cmd[0], cmd[1])
    ok = True
    if c_xy > 0:
        along = (row["planner_vx"] * cmd[0] + row["planner_vy"] * cmd[1]) / c_xy
        ok &= along >= 0.25 * c_xy
    if abs(cmd[2]) > 0:
        ok &= row["planner_yaw_rate"] * np.sign(cmd[2]) >= 0.4 * abs(cmd[2])
    return bool(ok)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--agent", default="{}")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--duration-s", type=float, default=8.0)
    p.add_argument("--profile", default="off")
    p.add_argument("--backend", default="onnx", choices=["torch", "onnx"])
    p.add_argument("--json", default=None, help="also write every trial here")
    a = p.parse_args()
    agent = json.loads(a.agent)
    rows, out = [], {}
    for name, cmd in COMMANDS.items():
        trials = [probe(a.checkpoint, agent, s, cmd, 0.0, a.duration_s, a.profile, a.backend) for s in range(a.seeds)]
        out[name] = {"command": cmd, "planner": trials}
        n_start = sum(started(r, cmd) for r in trials)
        v = np.nanmean([[r["planner_vx"], r["planner_vy"], r["planner_yaw_rate"]] for r in trials], axis=0)
        rows.append(f"| {name} {tuple(cmd)} | {a.seeds} | {sum(r['fell'] for r in trials)} | {n_start} | "
                    f"vx {v[0]:.2f}, vy {v[1]:.2f}, ω {v[2]:.2f} |")  # fmt: skip
    print(
        f"From the standing reset, `{a.checkpoint}`, agent {json.dumps(agent)}, profile {a.profile}, "
        f"{a.duration_s:g} s per trial (start included):\n"
    )
    print("| command (vx, vy, ω) | trials | falls | started | mean velocity (planner) |\n|---|---:|---:|---:|---|")
    print("\n".join(rows))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
