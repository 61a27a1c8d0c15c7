"""False-alarm rate and warning time of the safety supervisor's fall-risk signal, from recorded rollouts.

Reads ``bm-collect`` data sets (per-step ``root_quat_w``, ``root_ang_vel_w``, ``root_pos_w``; per-episode ``fell``)
and, for each threshold setting, reports on the episodes that did not fall the share in which the signal fired
at least once (a false alarm: the expert would have been handed control for nothing) and the share of steps it
fired on, and on the episodes that ended in a fall how long before the fall it first fired.

    python tools/supervisor_calibration.py data/v3-dart --out outputs/supervisor-calibration.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bm_envs import g1_constants as g1
from bm_planner.supervisor import SupervisorConfig, tilt_angle


def episodes(folder: Path):
    """(tilt (T,), tilt rate (T,), height (T,), fell) per episode of a data set."""
    for shard in sorted(folder.glob("shard-*.npz")):
        with np.load(shard) as z:
            off, fell = z["offsets"], z["fell"]
            tilt = tilt_angle(z["root_quat_w"])
            rate = np.linalg.norm(z["root_ang_vel_w"][:, :2], axis=1)
            h = z["root_pos_w"][:, 2]
            for i in range(len(fell)):
                s = slice(off[i], off[i + 1])
                yield tilt[s], rate[s], h[s], bool(fell[i])


def evaluate(eps, cfg: SupervisorConfig) -> dict:
    alarms, steps_fired, steps, leads, missed = 0, 0, 0, [], 0
    n_ok = n_fell = 0
    for tilt, rate, h, fell in eps:
        fire = (tilt > cfg.max_tilt_rad) | (rate > cfg.max_tilt_rate) | (h < cfg.min_height_m)
        if fell:
            n_fell += 1
            # the fall is flagged at the end of the episode; warn time = end - first firing
            idx = np.nonzero(fire)[0]
            if len(idx):
                leads.append((len(fire) - idx[0]) * g1.CONTROL_DT)
            else:
                missed += 1
        else:
            n_ok += 1
            alarms += bool(fire.any())
            steps_fired += int(fire.sum())
            steps += len(fire)
    return {"max_tilt_rad": cfg.max_tilt_rad, "max_tilt_rate": cfg.max_tilt_rate, "min_height_m": cfg.min_height_m,
            "episodes_ok": n_ok, "false_alarm_episodes": alarms / max(n_ok, 1),
            "false_alarm_steps": steps_fired / max(steps, 1), "episodes_fell": n_fell,
            "warned_before_fall": (n_fell - missed) / max(n_fell, 1),
            "median_warning_s": float(np.median(leads)) if leads else None}  # fmt: skip


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", help="data set folders")
    ap.add_argument("--out", default="outputs/supervisor-calibration.json")
    args = ap.parse_args(argv)
    eps = [e for d in args.data for e in episodes(Path(d))]
    rows = []
    for tilt in (0.25, 0.3, 0.35, 0.45):
        for rate in (1.5, 2.0, 2.5, 3.5):
            rows.append(evaluate(eps, SupervisorConfig(max_tilt_rad=tilt, max_tilt_rate=rate)))
    print(
        "| max tilt (rad) | max tilt rate (rad/s) | false alarms (episodes) | steps fired | falls warned | median warning (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        w = "–" if r["median_warning_s"] is None else f"{r['median_warning_s']:.2f}"
        print(f"| {r['max_tilt_rad']} | {r['max_tilt_rate']} | {100 * r['false_alarm_episodes']:.1f} % | "
              f"{100 * r['false_alarm_steps']:.2f} % | {100 * r['warned_before_fall']:.0f} % | {w} |")  # fmt: skip
    print(
        f"({rows[0]['episodes_ok']} episodes without a fall, {rows[0]['episodes_fell']} with one; {', '.join(args.data)})"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"data": args.data, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
