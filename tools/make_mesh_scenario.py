"""Write the example mesh-obstacle scenario shipped in ``bm_envs/scenarios``: two generated meshes (an L-shaped
wall and a rock, :func:`bm_envs.scene.mesh_obstacles.make_l_wall` / :func:`~bm_envs.scene.mesh_obstacles.make_boulder`) as
Wavefront OBJ text in ``bm_envs/scenarios/meshes/`` and ``bm_envs/scenarios/mesh-obstacles.json`` using them.

    python tools/make_mesh_scenario.py          # rewrites the three files (deterministic)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import trimesh

from bm_envs.scene.mesh_obstacles import make_boulder, make_l_wall
from bm_envs.scene.scenario import SCENARIO_DIR, load_scenario

SCENARIO = {
    "name": "mesh-obstacles",
    "env": "BM-G1-Obstacle-v0",
    "time_limit_s": 30.0,
    "start": {"xy": [0.0, 0.0], "yaw": 0.0, "xy_noise": 0.1, "yaw_noise": 0.2},
    "waypoints": [[7.0, 0.0]],
    "goal_radius_m": 0.3,
    "obstacles": [
        {"type": "mesh", "file": "meshes/l-wall.obj", "pos": [2.2, -0.5], "yaw": 0.0},
        {"type": "mesh", "file": "meshes/boulder.obj", "pos": [4.8, -0.3], "yaw": 0.7},
    ],
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(SCENARIO_DIR), help="scenario folder (default: the package's)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    meshes = {
        "l-wall": make_l_wall(arm_m=1.2, thickness_m=0.2, height_m=1.2),
        "boulder": make_boulder(radius_m=0.5, subdivisions=4, roughness=0.15, seed=0),
    }
    for name, mesh in meshes.items():  # text, 8 decimals (10 nm): a diffable file, not a binary blob in git
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_texture=False, digits=8)
        body = "".join(line + "\n" for line in text.splitlines() if line and not line.startswith("#"))
        (out / "meshes" / f"{name}.obj").write_text(f"# {name}: written by tools/make_mesh_scenario.py\n" + body)
    path = out / "mesh-obstacles.json"
    path.write_text(json.dumps(SCENARIO, indent=2) + "\n")
    sc = load_scenario(path)
    print(f"wrote {path} ({len(sc.obstacles)} mesh obstacles)")


if __name__ == "__main__":
    main()
