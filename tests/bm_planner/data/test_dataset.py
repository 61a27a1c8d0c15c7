"""TrajectoryDataset over real collected data: windows, splits, normalization, mirroring."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bm_planner.data import storage
from bm_planner.data.dataset import TrajectoryDataset, val_episodes
from bm_planner.data.mirror import mirror_actions
from bm_planner.data.normalizer import Normalizer, symmetrize
from bm_planner.data.state import StateRepresentation
from bm_planner.data.trajectory import N_HISTORY, WINDOW


def _episodes(root):
    eps = {}
    for p in storage.list_shards(root).values():
        for ep in storage.split_episodes(storage.read_shard(p)):
            eps[ep["meta"]["episode_index"]] = ep
    return eps


def test_windows_stay_inside_episodes_and_skip_flagged_steps(falls_root):
    eps = _episodes(falls_root)
    assert all(ep["meta"]["fell"] for ep in eps.values()) and len(eps) == 2
    ds = TrajectoryDataset(falls_root, val_fraction=0.0, normalize=False)
    got = {ds.window_info(i) for i in range(len(ds))}
    expected = {(e, g) for e, ep in eps.items() for g in range(len(ep["valid"]) - WINDOW + 1)
                if ep["valid"][g : g + WINDOW].all()}  # fmt: skip
    naive = sum(len(ep["valid"]) - WINDOW + 1 for ep in eps.values())
    assert got == expected and len(ds) == len(got) and 0 < len(ds) < naive - 50
    rep = StateRepresentation()
    for i in (0, len(ds) // 2, len(ds) - 1):  # items are the encoding of the recorded observations
        e, g = ds.window_info(i)
        obs = {k: eps[e][k][g : g + WINDOW] for k in ("root_pos_w", "root_quat_w", "root_lin_vel_w", "body_pos_w",
                                                      "body_lin_vel_w")}  # fmt: skip
        item = ds[i]
        assert np.abs(item["states"].numpy() - rep.encode(obs, ref_index=N_HISTORY)).max() < 1e-5
        assert np.array_equal(item["actions"].numpy(), eps[e]["action"][g : g + WINDOW])


def test_split_is_deterministic_and_disjoint(tiny_root):
    tr, va = TrajectoryDataset(tiny_root, "train"), TrajectoryDataset(tiny_root, "val")
    assert sorted(tr.episodes + va.episodes) == [0, 1] and len(va.episodes) == 1  # val forced non-empty
    assert TrajectoryDataset(tiny_root, "val").episodes == va.episodes
    assert val_episodes(range(1000), 0.1, 0) == val_episodes(range(1000), 0.1, 0)
    assert 60 < len(val_episodes(range(1000), 0.1, 0)) < 140
    assert val_episodes(range(500), 0.1, 0) <= val_episodes(range(1000), 0.1, 0)  # stable when data grow


def test_normalization_round_trip(tiny_root):
    ds = TrajectoryDataset(tiny_root, val_fraction=0.0)
    raw = TrajectoryDataset(tiny_root, val_fraction=0.0, normalize=False)
    rep, m = ds.rep, storage.load_manifest(tiny_root)
    st = m["stats"]["states"]
    mean, std = symmetrize(np.array(st["mean"]), np.array(st["std"]), rep.mirror_perm, rep.mirror_sign)
    assert np.allclose(ds.normalizer.state_mean.numpy(), mean, atol=1e-6)
    assert np.allclose(ds.normalizer.state_std.numpy(), np.maximum(std, 1e-3), atol=1e-6)
    # the same normalizer for every split and mirror probability
    for other in (TrajectoryDataset(tiny_root, "val"), TrajectoryDataset(tiny_root, mirror_prob=0.7)):
        assert all(torch.equal(v, other.normalizer.state_dict()[k]) for k, v in ds.normalizer.state_dict().items())
    item, r = ds[7], raw[7]
    assert item["states"].dtype == torch.float32 and item["states"].shape == (WINDOW, 87)
    assert item["actions"].shape == (WINDOW, 29)
    assert torch.allclose(ds.normalizer.unnormalize_states(item["states"]), r["states"], atol=1e-4)
    assert torch.allclose(ds.normalizer.unnormalize_actions(item["actions"]), r["actions"], atol=1e-5)
    batch = next(iter(DataLoader(raw, batch_size=len(raw), shuffle=True)))
    both = torch.cat([batch["states"], rep.mirror_states(batch["states"])]).reshape(-1, 87)
    s = ds.normalizer.normalize_states(both)
    # over all windows and their mirror images, normalized states have mean 0 and std 1 where the data vary
    assert s.mean(0).abs().max() < 1e-3
    varying = ds.normalizer.state_std > 2e-3
    assert torch.allclose(s.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-2)
    with pytest.raises(ValueError, match="dims"):
        TrajectoryDataset(tiny_root, normalizer=Normalizer.identity(10))


def test_mirror_augmentation(tiny_root):
    raw = TrajectoryDataset(tiny_root, val_fraction=0.0, normalize=False)
    flip = TrajectoryDataset(tiny_root, val_fraction=0.0, normalize=False, mirror_prob=1.0)
    assert torch.allclose(flip[3]["states"], raw.rep.mirror_states(raw[3]["states"]))
    assert torch.equal(flip[3]["actions"], mirror_actions(raw[3]["actions"]))
    half = TrajectoryDataset(tiny_root, val_fraction=0.0, normalize=False, mirror_prob=0.5)
    torch.manual_seed(0)
    flipped = [not torch.equal(half[i]["actions"], raw[i]["actions"]) for i in range(60)]
    assert 15 < sum(flipped) < 45
    # the normalizer is mirror-symmetric
    n = TrajectoryDataset(tiny_root, val_fraction=0.0, mirror_prob=0.5).normalizer
    assert torch.allclose(raw.rep.mirror_states(n.state_mean[None])[0], n.state_mean, atol=1e-6)


def test_other_body_set_and_bad_arguments(tiny_root, tmp_path):
    ds = TrajectoryDataset(tiny_root, bodies="all", val_fraction=0.0)
    assert ds[0]["states"].shape == (WINDOW, 201) and ds.normalizer.state_dim == 201
    with pytest.raises(ValueError, match="split"):
        TrajectoryDataset(tiny_root, split="test")
    with pytest.raises(ValueError, match="mirror_prob"):
        TrajectoryDataset(tiny_root, mirror_prob=1.5)
    with pytest.raises(FileNotFoundError, match="manifest"):
        TrajectoryDataset(tmp_path)


def test_executed_history_actions(tiny_root):
    """history_actions="executed": the N history actions are the executed (label + OU noise) ones, the rest labels."""
    from bm_planner.data import storage
    from bm_planner.data.trajectory import N_HISTORY

    lab = TrajectoryDataset(tiny_root, "train", normalize=False)
    exe = TrajectoryDataset(tiny_root, "train", normalize=False, history_actions="executed")
    assert len(lab) == len(exe)
    i = len(lab) // 2
    a_lab, a_exe = lab[i]["actions"].numpy(), exe[i]["actions"].numpy()
    assert np.array_equal(a_lab[N_HISTORY:], a_exe[N_HISTORY:])
    assert np.abs(a_lab[:N_HISTORY] - a_exe[:N_HISTORY]).max() > 1e-3  # the OU noise is there
    ep, start = exe.window_info(i)
    arrays = next(e for s in sorted(tiny_root.glob("shard-*.npz")) for e in storage.split_episodes(storage.read_shard(s))
                  if int(e["meta"]["episode_index"]) == ep)  # fmt: skip
    assert np.allclose(a_exe[:N_HISTORY], arrays["action_exec"][start : start + N_HISTORY])
    with pytest.raises(ValueError, match="history_actions"):
        TrajectoryDataset(tiny_root, "train", history_actions="noisy")


def test_window_command_is_the_command_in_force_at_t0(tiny_root):
    """Each window carries the expert's velocity command at its current step t0 (mirrored with the window)."""
    from bm_planner.data import storage
    from bm_planner.data.trajectory import N_HISTORY

    raw = TrajectoryDataset(tiny_root, val_fraction=0.0, normalize=False)
    eps = {int(e["meta"]["episode_index"]): e for s in sorted(tiny_root.glob("shard-*.npz"))
           for e in storage.split_episodes(storage.read_shard(s))}  # fmt: skip
    seen = set()
    for i in range(0, len(raw), max(1, len(raw) // 40)):
        ep, start = raw.window_info(i)
        cmd = raw[i]["command"].numpy()
        assert cmd.shape == (3,) and np.allclose(cmd, eps[ep]["command"][start + N_HISTORY])
        seen.add(tuple(np.round(cmd, 4)))
    assert len(seen) > 1  # the schedules change command within the data
    flip = TrajectoryDataset(tiny_root, val_fraction=0.0, normalize=False, mirror_prob=1.0)
    assert torch.allclose(flip[3]["command"], raw[3]["command"] * torch.tensor([1.0, -1.0, -1.0]))


def test_every_shard_corrupt_is_one_clear_error(tiny_root, tmp_path, capsys):
    import shutil

    from bm_planner.data.card import main as card_main
    from bm_planner.training.cli import main as train_main

    bad = tmp_path / "bad"
    shutil.copytree(tiny_root, bad)
    for p in bad.glob("shard-*.npz"):
        p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ValueError, match="no usable data: all 2 shards are corrupt or missing"):
        with pytest.warns(storage.CorruptShardWarning):
            TrajectoryDataset(bad)
    with pytest.warns(storage.CorruptShardWarning):
        assert card_main([str(bad)]) == 2
    assert "no usable data" in capsys.readouterr().err
    with pytest.warns(storage.CorruptShardWarning):
        assert train_main(["--data", str(bad), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "no usable data" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_concatenated_data_sets_fetch_batches_like_their_parts(tiny_root, falls_root):
    from bm_planner.data.dataset import ConcatTrajectoryDataset

    cat = ConcatTrajectoryDataset([tiny_root, falls_root], split="train", mirror_prob=0.0)
    a, b = cat.parts
    assert len(cat) == len(a) + len(b) and cat.normalizer is a.normalizer and b.normalizer is a.normalizer
    idx = [len(a) + 3, 1, len(a), 0, len(cat) - 1]
    batch = cat.__getitems__(idx)
    for i, item in zip(idx, batch):
        ref = cat[i]
        for k in ("states", "actions", "command"):
            assert torch.equal(item[k], ref[k]), (i, k)
