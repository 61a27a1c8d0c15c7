"""bm-collect: tiny real runs, crash/restart, corrupt shards, Ray = local."""

import json
import re
import shutil
import warnings

import numpy as np
import pytest

from bm_envs import g1_constants as g1
from bm_planner.data import storage
from bm_planner.data.collector import MotionDataCollector, main
from bm_planner.data.dataset import TrajectoryDataset
from bm_planner.data.rollout import CollectConfig
from bm_planner.data.workers import collect_shard


def test_tiny_run_produces_shards_and_manifest(tiny_root, tiny_config):
    assert sorted(p.name for p in tiny_root.glob("shard-*.npz")) == ["shard-00000.npz", "shard-00001.npz"]
    m = storage.load_manifest(tiny_root)
    assert m["complete"] and m["counts"]["episodes"] == 2 and m["counts"]["shards"] == 2
    assert m["counts"]["steps"] == 200 and m["counts"]["valid_steps"] == 200  # 2 × 2 s at 50 Hz, no falls
    assert m["robot_model"] == storage.mjcf_hash() and len(m["robot_model"]["sha256"]) == 64
    assert (
        m["state"]["dim"] == 87 and len(m["stats"]["states"]["mean"]) == 87 and len(m["stats"]["actions"]["std"]) == 29
    )
    assert m["config"] == tiny_config.to_dict()
    a = storage.read_shard(tiny_root / "shard-00001.npz")
    assert a["episode_index"].tolist() == [1] and a["body_pos_w"].shape == (100, 32, 3)
    assert a["body_pos_w"].dtype == np.float32
    noise = a["action_exec"] - a["action"]
    assert 0.005 < np.abs(noise).mean() < 0.2  # OU noise on the executed action, clean label kept
    assert a["contact"].any(axis=0).all()  # both feet touch the floor at some point
    assert np.all(np.isfinite(a["proprio"])) and a["command"].shape == (100, 3)
    # recorded steps are consecutive env steps: root position integrates root velocity
    dp = np.diff(a["root_pos_w"][:, :2], axis=0)
    assert np.abs(dp - a["root_lin_vel_w"][1:, :2] * g1.CONTROL_DT).mean() < 2e-3


def test_resume_is_a_noop_and_other_config_is_refused(tiny_root, tiny_config, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(tiny_root, root)
    mtimes = {p.name: p.stat().st_mtime_ns for p in root.glob("shard-*.npz")}
    m = MotionDataCollector(root, tiny_config, workers=1, progress=False).run(episodes=2)
    assert m["counts"]["episodes"] == 2
    assert {p.name: p.stat().st_mtime_ns for p in root.glob("shard-*.npz")} == mtimes
    with pytest.raises(ValueError, match="different config"):
        MotionDataCollector(root, CollectConfig(seed=5, episode_s=2.0, episodes_per_shard=1), progress=False).run(
            episodes=2
        )
    assert main(["--out", str(root), "--episodes", "2", "--seed", "1", "--no-progress"]) == 2
    assert "different config" in capsys.readouterr().err


def test_restart_after_crash_reports_corrupt_shard_and_continues(tmp_path, capsys):
    cfg = CollectConfig(seed=3, episode_s=1.0, episodes_per_shard=1)
    root = tmp_path / "ds"
    # --hours target: the shortest prefix of shards with >= 2.1 s of usable data = 3 one-second shards
    m = MotionDataCollector(root, cfg, workers=0, progress=False).run(hours=2.1 / 3600)
    assert m["complete"] and m["counts"]["shards"] == 3 and m["counts"]["valid_hours"] * 3600 >= 2.1
    original = {i: (root / storage.shard_name(i)).read_bytes() for i in range(3)}
    t0 = (root / "shard-00000.npz").stat().st_mtime_ns
    # simulate a crash: shard 1 truncated, shard 2 never written, a stale temp file left behind
    (root / "shard-00001.npz").write_bytes(original[1][: len(original[1]) // 2])
    (root / "shard-00002.npz").unlink()
    (root / ".shard-00002.npz.tmp-12345").write_bytes(b"partial")
    with pytest.warns(storage.CorruptShardWarning, match="shard-00001.npz"):
        good, bad = storage.scan_shards(root)
    assert sorted(good) == [0] and list(bad) == [1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = TrajectoryDataset(root, val_fraction=0.0)
    named = sorted(re.search(r"shard-\d+\.npz", str(w.message)).group() for w in caught
                   if w.category is storage.CorruptShardWarning)  # fmt: skip
    assert named == ["shard-00001.npz", "shard-00002.npz"]  # truncated and missing: both reported by name
    assert ds.episodes == [0] and set(ds.skipped) == set(named)  # never read silently
    # a corrupted byte inside an otherwise complete file is caught by the checksum
    flipped = bytearray(original[0])
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "shard-00000.npz").write_bytes(bytes(flipped))
    with pytest.raises(storage.CorruptShardError, match="shard-00000.npz"):
        storage.read_shard(tmp_path / "shard-00000.npz")

    m = MotionDataCollector(root, cfg, workers=2, progress=False).run(episodes=4)
    assert "shard-00001.npz" in capsys.readouterr().err
    assert (root / "shard-00001.npz.corrupt").exists() and not list(root.glob(".*.tmp-*"))
    assert m["complete"] and m["counts"]["episodes"] == 4
    assert (root / "shard-00000.npz").stat().st_mtime_ns == t0  # kept, not recollected
    for i in (1, 2):  # recollected shards are byte-identical to the uninterrupted run's
        assert (root / storage.shard_name(i)).read_bytes() == original[i]
    _, direct, _ = collect_shard(cfg.to_dict(), 3)
    got = storage.read_shard(root / "shard-00003.npz")
    assert all(np.array_equal(got[k], v) for k, v in direct.items())
    assert json.loads((root / "manifest.json").read_text())["counts"]["shards"] == 4


@pytest.mark.slow
def test_ray_backend_matches_local(tiny_root, tiny_config, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        MotionDataCollector(tmp_path, tiny_config, workers=2, backend="ray", progress=False).run(episodes=2)
    finally:
        ray.shutdown()
    for i in (0, 1):
        a = storage.read_shard(tiny_root / storage.shard_name(i))
        b = storage.read_shard(tmp_path / storage.shard_name(i))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), i
    assert storage.load_manifest(tmp_path)["stats"] == storage.load_manifest(tiny_root)["stats"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        MotionDataCollector(tmp_path, backend="slurm")
    with pytest.raises(ValueError, match="exactly one"):
        MotionDataCollector(tmp_path, progress=False).run()
    with pytest.raises(ValueError, match="episode_s"):
        CollectConfig(episode_s=-1.0)
    with pytest.raises(ValueError, match="latency_ms"):
        CollectConfig(latency_ms=(50.0, 10.0))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="malformed JSON"):
        storage.load_manifest(tmp_path)


def test_out_into_an_unrelated_folder_is_refused_and_resume_says_what_it_kept(tiny_root, tmp_path, capsys):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8")
    args = ["--episodes", "1", "--episode-s", "2", "--episodes-per-shard", "1", "--workers", "0", "--no-progress"]
    assert main(["--out", str(other), *args]) == 2
    assert "is not empty and is not a bm data set (holds ['cat.jpg'])" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["cat.jpg"]  # nothing written into it
    root = tmp_path / "copy"
    shutil.copytree(tiny_root, root)
    assert main(["--out", str(root), "--episodes", "2", "--episode-s", "2", "--episodes-per-shard", "1",
                 "--workers", "1", "--seed", "0", "--no-progress"]) == 0  # fmt: skip
    assert f"bm-collect: resuming {root}: 2 complete shards kept" in capsys.readouterr().err
