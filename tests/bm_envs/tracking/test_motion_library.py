"""Motion library: the holosoma motion files load, validate, complete by FK, and round-trip through our format."""

from __future__ import annotations

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_envs.rotations import quat_to_mat
from bm_envs.tracking.motion import (
    BODY_FIELDS,
    HOLOSOMA_MOTIONS,
    Motion,
    MotionError,
    forward_kinematics,
    holosoma_motion_path,
    load_motion,
    motion_from_qpos,
    resample,
    root_velocities,
    save_motion,
)


@pytest.fixture(scope="module")
def largebox() -> Motion:
    return load_motion(holosoma_motion_path("sub3_largebox_003_mj"))


@pytest.mark.parametrize("name", HOLOSOMA_MOTIONS)
def test_holosoma_files_load_and_round_trip(name, tmp_path):
    m = load_motion(holosoma_motion_path(name))
    assert m.fps == 50.0 and m.num_frames > 300 and m.joint_names == g1.JOINT_NAMES
    assert m.body_pos_w.shape == (m.num_frames, len(m.body_names), 3)
    np.testing.assert_allclose(m.body_pos_w[:, m.body_index(["pelvis"])[0]], m.joint_pos[:, :3])
    back = load_motion(save_motion(m, tmp_path / "m.npz"))
    for f in ("joint_pos", "joint_vel", *BODY_FIELDS):
        np.testing.assert_array_equal(getattr(back, f), getattr(m, f))
    assert back.body_names == m.body_names and back.fps == m.fps
    assert sorted(back.extras) == sorted(m.extras)  # object_* arrays of the *_w_obj file survive
    for k in m.extras:
        np.testing.assert_array_equal(back.extras[k], m.extras[k])
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary files left behind


def test_fk_of_our_model_matches_the_file(largebox):
    """Our MJCF reproduces the file's body orientations exactly; positions differ by the torso/arm link offsets
    of the model the file was made with (≤ 11 mm, measured); root velocities are central differences."""
    m = largebox
    common = [b for b in g1.BODY_NAMES if b in m.body_names]
    fk = forward_kinematics(m.joint_pos, m.joint_vel, common)
    i = m.body_index(common)
    q_err = np.minimum(
        np.abs(fk["body_quat_w"] - m.body_quat_w[:, i]).max(-1), np.abs(fk["body_quat_w"] + m.body_quat_w[:, i]).max(-1)
    )
    assert q_err.max() < 1e-6
    p_err = np.linalg.norm(fk["body_pos_w"] - m.body_pos_w[:, i], axis=-1)
    assert p_err.max() < 0.011 and np.median(p_err) < 0.002
    lin, ang = root_velocities(m.joint_pos[:, :3], m.joint_pos[:, 3:7], m.fps)
    np.testing.assert_allclose(lin, m.joint_vel[:, :3], atol=1e-6)
    assert np.mean(np.abs(ang - m.joint_vel[:, 3:6])) < 2e-3  # holosoma writes the root angular velocity in world
    # pelvis angular velocity from FK = the file's root angular velocity (world frame convention) ...
    np.testing.assert_allclose(fk["body_ang_vel_w"][:, 0], m.joint_vel[:, 3:6], atol=1e-6)
    # ... while the file's own body_ang_vel_w rotated that world vector once more (treated it as pelvis-frame)
    pelvis = m.body_index(["pelvis"])[0]
    rotated = np.einsum("tij,tj->ti", quat_to_mat(m.joint_pos[:, 3:7]), m.joint_vel[:, 3:6])
    np.testing.assert_allclose(m.body_ang_vel_w[:, pelvis], rotated, atol=1e-5)
    assert np.abs(m.body_ang_vel_w[:, pelvis] - m.joint_vel[:, 3:6]).max() > 0.5


def test_root_and_joints_only_file_is_completed_by_fk(largebox, tmp_path):
    path = tmp_path / "retargeted.npz"
    np.savez(path, fps=np.array([50]), joint_pos=largebox.joint_pos, joint_names=np.array(g1.JOINT_NAMES))
    m = load_motion(path)
    assert m.body_names == g1.BODY_NAMES
    np.testing.assert_allclose(m.joint_vel[:, 6:], np.gradient(largebox.dof_pos, axis=0) * 50, atol=1e-9)
    np.testing.assert_allclose(m.joint_vel[:, :3], largebox.joint_vel[:, :3], atol=1e-6)
    ref = forward_kinematics(m.joint_pos, m.joint_vel)
    for f in BODY_FIELDS:
        np.testing.assert_allclose(getattr(m, f), ref[f])
    # finite differences of the FK body positions agree with the FK velocities (centre of mass vs origin aside)
    fd = np.gradient(m.body_pos_w[:, 0], axis=0) * 50
    assert np.mean(np.linalg.norm(fd - m.joint_vel[:, :3], axis=-1)) < 0.02
    back = load_motion(save_motion(m, tmp_path / "full.npz"))
    np.testing.assert_array_equal(back.body_pos_w, m.body_pos_w)


def test_beyondmimic_layout_with_shuffled_joint_order(largebox, tmp_path):
    """BeyondMimic's original files: joint_pos (T, 29) in the trainer's joint order, root = body 0."""
    order = np.random.default_rng(0).permutation(29)
    names = np.array(g1.JOINT_NAMES)[order]
    pelvis = largebox.body_index(["pelvis"])
    kw = {
        "fps": np.array(50.0),
        "joint_pos": largebox.dof_pos[:, order],
        "joint_vel": largebox.dof_vel[:, order],
        "body_pos_w": largebox.body_pos_w[:, pelvis],
        "body_quat_w": largebox.body_quat_w[:, pelvis],
    }
    np.savez(tmp_path / "bm.npz", **kw, joint_names=names)
    m = load_motion(tmp_path / "bm.npz")
    np.testing.assert_allclose(m.joint_pos, largebox.joint_pos, atol=1e-12)
    np.testing.assert_allclose(m.dof_vel, largebox.dof_vel)
    np.savez(tmp_path / "bm_nonames.npz", **kw)
    with pytest.raises(MotionError, match="joint order is unknown"):
        load_motion(tmp_path / "bm_nonames.npz")
    assert np.allclose(load_motion(tmp_path / "bm_nonames.npz", joint_names=tuple(names)).joint_pos, largebox.joint_pos)


def _write(tmp_path, **over):
    base = {"fps": np.array([50]), "joint_pos": np.tile(np.r_[0, 0, 0.8, 1, 0, 0, 0, g1.DEFAULT_JOINT_POS], (5, 1)),
            "joint_names": np.array(g1.JOINT_NAMES)}  # fmt: skip
    base.update(over)
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "over, match",
    [
        ({"fps": None}, "missing required array 'fps'"),
        ({"fps": np.array([0.0])}, "fps must be a number in"),
        ({"fps": np.array([50, 60])}, "fps must be a single number"),
        ({"joint_pos": np.zeros((5, 30))}, "36 columns"),
        ({"joint_names": np.array(["foo_joint", *g1.JOINT_NAMES[1:]])}, r"unknown \['foo_joint'\]"),
        ({"joint_pos": np.tile(np.r_[0, 0, 0.8, 2, 0, 0, 0, g1.DEFAULT_JOINT_POS], (5, 1))}, "not unit-norm"),
        ({"joint_pos": np.tile(np.r_[0, 0, 0.8, 1, 0, 0, 0, g1.DEFAULT_JOINT_POS], (1, 1))}, "T >= 2"),
        ({"joint_vel": np.zeros((5, 34))}, r"joint_vel must have shape \(5, 35\)"),
        ({"joint_pos": np.array(["a"] * 5)}, "must be numeric"),
    ],
)
def test_validation_errors_name_the_problem(tmp_path, over, match):
    with pytest.raises(MotionError, match=match):
        load_motion(_write(tmp_path, **over))


def test_nan_and_corrupt_files_are_rejected(tmp_path):
    jp = np.tile(np.r_[0, 0, 0.8, 1, 0, 0, 0, g1.DEFAULT_JOINT_POS], (5, 1))
    jp[3, 10] = np.nan
    with pytest.raises(MotionError, match="NaN or inf .first at frame 3"):
        load_motion(_write(tmp_path, joint_pos=jp))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(MotionError, match="not a readable .npz"):
        load_motion(junk)
    np.savez(tmp_path / "obj.npz", fps=np.array([50]), joint_pos=np.array([{"a": 1}] * 5, dtype=object))
    with pytest.raises(MotionError, match="not a readable"):  # pickled objects are never loaded
        load_motion(tmp_path / "obj.npz")
    with pytest.raises(MotionError, match="no such motion file"):
        load_motion(tmp_path / "missing.npz")
    with pytest.raises(MotionError, match="must end in .npz"):
        save_motion(load_motion(_write(tmp_path)), tmp_path / "m.txt")


def test_motion_validates_arrays_in_memory(largebox):
    with pytest.raises(MotionError, match="body_pos_w must have shape"):
        Motion(
            50.0,
            largebox.joint_pos,
            largebox.joint_vel,
            largebox.body_pos_w[:, :3],
            *[getattr(largebox, f) for f in BODY_FIELDS[1:]],
            body_names=largebox.body_names,
        )
    with pytest.raises(MotionError, match="bodies \\['nose'\\] are not in this motion"):
        largebox.body_index(["pelvis", "nose"])


def test_resample_keeps_the_trajectory(largebox):
    half = resample(largebox, 25.0)
    assert half.fps == 25.0 and half.num_frames == (largebox.num_frames - 1) // 2 + 1
    np.testing.assert_allclose(half.joint_pos[:, 7:], largebox.joint_pos[::2, 7:], atol=1e-9)
    np.testing.assert_allclose(half.joint_pos[:, :3], largebox.joint_pos[::2, :3], atol=1e-9)
    same = motion_from_qpos(50.0, largebox.joint_pos)
    np.testing.assert_allclose(resample(same, 50.0).joint_pos, same.joint_pos, atol=1e-12)


def test_library_resolves_names_and_paths_and_lists_what_it_accepts(largebox, tmp_path):
    from bm_envs.tracking.library import EXPERT_MOTIONS, resolve_motion

    assert resolve_motion(largebox) is largebox
    m = resolve_motion("sub3_largebox_003_mj")
    assert m.num_frames == largebox.num_frames
    with pytest.raises(MotionError, match="fastsac") as e:
        resolve_motion("no-such-motion")
    assert all(n in str(e.value) for n in EXPERT_MOTIONS + HOLOSOMA_MOTIONS)
