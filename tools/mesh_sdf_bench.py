"""Mesh SDF benchmark: accuracy, build cost and cost inside a guided plan (the mesh-obstacle issue's numbers).

1. A generated rock of ``--subdivisions`` (5 → 20 480 faces): grid build time and memory (fresh cache), error of the
   grid SDF against trimesh's exact signed distance on random points of the grid box (max / p99), and against
   MuJoCo's distance to the compiled convex pieces (points outside the mesh).
2. The shipped planner on the shipped ``mesh-obstacles`` scenario: replan time p50 / p99 with the mesh SDFs vs the
   same rows read as bounding boxes (same run, same seeds), against the replan period.

    python tools/mesh_sdf_bench.py --out outputs/mesh-sdf-bench
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def accuracy(args) -> dict:
    import trimesh

    from bm_envs.scene.mesh_obstacles import MeshGeometry, PlacedMesh, make_boulder
    from bm_envs.scene.scenario import Obstacle

    tmp = Path(tempfile.mkdtemp(prefix="mesh-bench-"))
    os.environ["BM_CACHE_DIR"] = str(tmp / "cache")  # a cold cache: the build is measured
    path = tmp / "rock.stl"
    make_boulder(0.5, subdivisions=args.subdivisions, roughness=0.15, seed=1).export(path)
    geom = MeshGeometry.from_file(path, resolution=args.resolution)
    tracemalloc.start()
    t0 = time.perf_counter()
    sdf = geom.sdf
    build_s = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t0 = time.perf_counter()
    pieces = geom.convex_pieces
    decomp_s = time.perf_counter() - t0
    mesh = trimesh.load(path, force="mesh")
    rng = np.random.default_rng(0)
    pts = rng.uniform(sdf.origin, sdf.upper, (args.points, 3))
    exact = -trimesh.proximity.signed_distance(mesh, pts)
    err = np.abs(sdf(pts) - exact)
    near = np.abs(exact) < 0.3
    # MuJoCo: distance from a probe to the convex pieces, outside the mesh
    import mujoco

    from bm_envs.scene.builder import add_mesh_obstacles, mesh_obstacle_geoms

    obst = Obstacle.from_mesh(PlacedMesh(geom, np.zeros(3), 0.0))
    spec = mujoco.MjSpec()
    add_mesh_obstacles(spec, [obst])
    body = spec.worldbody.add_body(name="probe", mocap=True)
    body.add_geom(name="probe", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.005, 0, 0], contype=1, conaffinity=2)
    model = spec.compile()
    data = mujoco.MjData(model)
    (geoms,) = mesh_obstacle_geoms(model)
    probe = model.geom("probe").id
    out = pts[(exact > 0.02) & (exact < 0.5)][: args.mujoco_points]
    mj = []
    for p in out:
        data.mocap_pos[0] = p
        mujoco.mj_forward(model, data)
        mj.append(min(mujoco.mj_geomDistance(model, data, probe, int(g), 2.0, None) for g in geoms) + 0.005)
    mj = np.array(mj)
    d_out = sdf(out)
    ex_out = -trimesh.proximity.signed_distance(mesh, out)
    t0 = time.perf_counter()
    q = rng.uniform(sdf.origin, sdf.upper, (208, 3))  # one cost evaluation: 16 planned steps x 13 bodies
    for _ in range(200):
        sdf.value_and_grad(q)
    query_us = (time.perf_counter() - t0) / 200 * 1e6
    return {
        "faces": int(len(mesh.faces)),
        "grid_shape": list(sdf.shape),
        "resolution_m": sdf.spacing,
        "build_s": round(build_s, 2),
        "build_peak_python_mib": round(peak / 2**20, 1),
        "grid_mib": round(sdf.nbytes / 2**20, 2),
        "convex_pieces": len(pieces),
        "decomposition_s": round(decomp_s, 2),
        "vs_trimesh": {"points": int(len(pts)), "max_m": float(err.max()), "p99_m": float(np.quantile(err, 0.99)),
                       "within_0.3m_max_m": float(err[near].max()), "within_0.3m_p99_m": float(np.quantile(err[near], 0.99))},
        "vs_mujoco_outside": {"points": int(len(out)), "grid_max_m": float(np.abs(d_out - mj).max()),
                              "grid_p99_m": float(np.quantile(np.abs(d_out - mj), 0.99)),
                              "exact_vs_mujoco_max_m": float(np.abs(ex_out - mj).max()),
                              "exact_vs_mujoco_p99_m": float(np.quantile(np.abs(ex_out - mj), 0.99))},
        "query_208_points_us": round(query_us, 1),
    }  # fmt: skip


def replan_cost(args) -> dict:
    import gymnasium as gym

    import bm_envs  # noqa: F401
    from bm_planner import SHIPPED_PLANNER
    from bm_planner.agent import DiffusionAgent

    out = {}
    for mode in ("box", "mesh", "box", "mesh"):  # interleaved: drift on a shared machine hits both
        env = gym.make("BM-G1-Obstacle-v0", scenario="mesh-obstacles")
        agent = DiffusionAgent.from_pretrained(SHIPPED_PLANNER, {"threads": 1}, backend="onnx")
        times = out.setdefault(mode, [])
        for seed in range(args.episodes):
            obs, info = env.reset(seed=seed)
            agent.reset()
            if mode == "mesh":
                agent.set_obstacles(info["obstacles"])
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(args.steps):
                    plans = agent.info["plans"]
                    action, _ = agent.predict(obs)
                    if agent.info["plans"] > plans:
                        times.append(agent.info["plan_time_s"] * 1000)
                    obs, _, term, trunc, _ = env.step(action)
                    if term or trunc:
                        break
        env.close()
        period = agent.config.replan_every * 20.0
    res = {m: {"plans": len(t), "p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99))}
           for m, t in out.items()}  # fmt: skip
    res["period_ms"] = period
    res["p99_ratio_mesh_over_box"] = res["mesh"]["p99_ms"] / res["box"]["p99_ms"]
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/mesh-sdf-bench")
    ap.add_argument("--subdivisions", type=int, default=5, help="icosphere level of the rock: 5 = 20 480 faces")
    ap.add_argument("--resolution", type=float, default=0.05, help="grid spacing (m)")
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--mujoco-points", type=int, default=300)
    ap.add_argument("--episodes", type=int, default=2, help="planner episodes per mode")
    ap.add_argument("--steps", type=int, default=150, help="control steps per planner episode")
    ap.add_argument("--skip-planner", action="store_true")
    args = ap.parse_args(argv)
    res = {"accuracy": accuracy(args)}
    print(json.dumps(res["accuracy"], indent=1))
    if not args.skip_planner:
        os.environ.pop("BM_CACHE_DIR", None)
        res["replan"] = replan_cost(args)
        print(json.dumps(res["replan"], indent=1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mesh_sdf_bench.json").write_text(json.dumps(res, indent=1))
    print(f"wrote {out / 'mesh_sdf_bench.json'}")


if __name__ == "__main__":
    main()
