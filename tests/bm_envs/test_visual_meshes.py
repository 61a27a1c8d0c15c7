"""Lower-poly visual meshes for rendering (``bm_envs.scene.visual_meshes``): same physics, cached, fewer triangles."""

from __future__ import annotations

import numpy as np
import pytest

from bm_envs.scene.builder import build_model
from bm_envs.scene.visual_meshes import simplify_mesh


def test_simplified_visuals_keep_the_physics_bit_identical():
    import mujoco

    full, _ = build_model()
    low, _ = build_model(simplified_visuals=True)
    assert low.mesh_facenum.sum() < 0.2 * full.mesh_facenum.sum()
    for k in ("body_mass", "body_inertia", "body_ipos", "body_iquat", "dof_armature"):
        assert np.array_equal(getattr(full, k), getattr(low, k)), k
    coll = full.geom_contype > 0  # collision geoms: untouched (the visual meshes' bounding sizes change)
    for k in ("geom_pos", "geom_size", "geom_quat", "geom_type"):
        assert np.array_equal(getattr(full, k)[coll], getattr(low, k)[coll]), k
    d_full, d_low = mujoco.MjData(full), mujoco.MjData(low)
    rng = np.random.default_rng(0)
    for d in (d_full, d_low):
        d.qpos[2] = 0.8
    for _ in range(200):
        u = rng.normal(0, 0.3, full.nu)
        d_full.ctrl[:], d_low.ctrl[:] = u, u
        mujoco.mj_step(full, d_full)
        mujoco.mj_step(low, d_low)
    assert np.array_equal(d_full.qpos, d_low.qpos) and np.array_equal(d_full.qvel, d_low.qvel)


def test_simplified_meshes_are_cached_and_bad_files_named(tmp_path, monkeypatch):
    monkeypatch.setenv("BM_CACHE_DIR", str(tmp_path / "cache"))
    import trimesh

    src = tmp_path / "ball.stl"
    trimesh.creation.icosphere(subdivisions=5).export(src)  # 20 480 faces
    out = simplify_mesh(src, keep=0.1)
    assert out != src and out.parent == tmp_path / "cache" / "visual-meshes"
    low = trimesh.load(out)
    assert 1500 < len(low.faces) < 2600 and low.is_watertight
    mtime = out.stat().st_mtime_ns
    assert simplify_mesh(src, keep=0.1) == out and out.stat().st_mtime_ns == mtime  # cached
    assert simplify_mesh(src, keep=0.2) != out  # another setting, another file
    bad = tmp_path / "bad.stl"
    bad.write_bytes(b"solid nope\n garbage")
    with pytest.raises(ValueError, match="bad.stl: (cannot read the mesh|the mesh has no triangles)"):
        simplify_mesh(bad)
