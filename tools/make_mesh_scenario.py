"""Write the example mesh-obstacle scenario shipped in ``bm_envs/scenarios``: two generated meshes (an L-shaped
wall and a rock, :func:`bm_envs.scene.mesh_obstacles.make_l_wall` / :func:`~bm_envs.scene.mesh_obstacles.make_boulder`)
named as ``builtin`` meshes, so no mesh file is shipped: they are made into the cache when the scenario loads.

    python tools/make_mesh_scenario.py          # rewrites bm_envs/scenarios/mesh-obstacles.json (deterministic)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bm_envs.scene.scenario import SCENARIO_DIR, load_scenario

SCENARIO = {
    "name": "mesh-obstacles",
    "env": "BM-G1-Obstacle-v0",
    "time_limit_s": 30.0,
    "start": {"xy": [0.0, 0.0], "yaw": 0.0, "xy_noise": 0.1, "yaw_noise": 0.2},
    "waypoints": [[7.0, 0.0]],
    "goal_radius_m": 0.3,
    "obstacles": [
        {
            "type": "mesh",
            "builtin": "l-wall",
            "params": {"arm_m": 1.2, "thickness_m": 0.2, "height_m": 1.2},
            "pos": [2.2, -0.5],
            "yaw": 0.0,
        },
        {
            "type": "mesh",
            "builtin": "boulder",
            "params": {"radius_m": 0.5, "subdivisions": 4, "roughness": 0.15, "seed": 0},
            "pos": [4.8, -0.3],
            "yaw": 0.7,
        },
    ],
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(SCENARIO_DIR), help="scenario folder (default: the package's)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mesh-obstacles.json"
    path.write_text(json.dumps(SCENARIO, indent=2) + "\n")
    sc = load_scenario(path)
    print(f"wrote {path} ({len(sc.obstacles)} mesh obstacles)")


if __name__ == "__main__":
    main()
