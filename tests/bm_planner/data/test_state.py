import numpy as np
import pytest
import torch

from bm_envs import g1_constants as g1
from bm_envs.rotations import quat_to_mat, yaw_from_quat
from bm_planner.data.mirror import mirror_obs
from bm_planner.data.state import DEFAULT_BODIES, StateRepresentation
from bm_planner.data.trajectory import N_HISTORY, WINDOW


def _window(obs, start):
    return {k: v[start : start + WINDOW] for k, v in obs.items()}


def test_layout_default_and_all():
    rep = StateRepresentation()
    assert rep.bodies == DEFAULT_BODIES and rep.K == 13 and rep.dim == 87
    assert [rep.slices[k] for k in ("root_pos", "root_lin_vel", "root_rotvec")] == [
        slice(0, 3),
        slice(3, 6),
        slice(6, 9),
    ]
    assert rep.slices["body_pos"] == slice(9, 48) and rep.slices["body_lin_vel"] == slice(48, 87)
    assert StateRepresentation("all").dim == 9 + 6 * 32


@pytest.mark.parametrize("bodies", ["default", "all"])
def test_encode_decode_round_trip(rollout_obs, bodies):
    rep = StateRepresentation(bodies)
    for start in (0, 30):
        w = _window(rollout_obs, start)
        s = rep.encode(w)
        assert s.shape == (WINDOW, rep.dim)
        ref_pos, ref_yaw = rep.reference_frame({k: v[N_HISTORY] for k, v in w.items()})
        d = rep.decode(s[None], ref_pos[None], np.array([ref_yaw]))
        # the reference step's own root lies at the frame origin with heading 0 relative to it
        assert np.allclose(s[N_HISTORY, :2], 0) and abs(d["root_yaw"][0, N_HISTORY] - ref_yaw) < 1e-6
        assert np.abs(d["root_pos_w"][0] - w["root_pos_w"]).max() < 1e-5
        assert np.abs(d["root_lin_vel_w"][0] - w["root_lin_vel_w"]).max() < 1e-5
        assert np.abs(d["body_pos_w"][0] - w["body_pos_w"][:, rep.body_ids]).max() < 1e-5
        assert np.abs(d["body_lin_vel_w"][0] - w["body_lin_vel_w"][:, rep.body_ids]).max() < 1e-5
        assert np.abs(d["root_rotmat_w"][0] - quat_to_mat(w["root_quat_w"])).max() < 1e-5
        dyaw = np.angle(np.exp(1j * (d["root_yaw"][0] - yaw_from_quat(w["root_quat_w"]))))
        assert np.abs(dyaw).max() < 1e-5
    # the robot moved and turned: the check is not trivial
    assert np.ptp(rollout_obs["root_pos_w"][:, 0]) > 0.1 and np.ptp(yaw_from_quat(rollout_obs["root_quat_w"])) > 0.2


def test_encode_batched_and_torch(rollout_obs):
    rep = StateRepresentation()
    wins = {k: np.stack([v[i : i + WINDOW] for i in (0, 10, 20)]) for k, v in rollout_obs.items()}
    s = rep.encode(wins)
    assert s.shape == (3, WINDOW, 87)
    assert np.allclose(s[1], rep.encode(_window(rollout_obs, 10)))
    st = rep.encode({k: torch.as_tensor(v) for k, v in _window(rollout_obs, 10).items()})
    assert isinstance(st, torch.Tensor) and torch.allclose(st, torch.as_tensor(s[1]))


def test_decode_is_differentiable_and_per_step(rollout_obs):
    rep = StateRepresentation()
    s = torch.as_tensor(rep.encode(_window(rollout_obs, 5)))[None]
    ref_pos, ref_yaw = torch.tensor([[1.0, -2.0, 0.0]], dtype=torch.float64), torch.tensor([0.7], dtype=torch.float64)
    full = rep.decode(s, ref_pos, ref_yaw)
    part = rep.decode(s[:, N_HISTORY + 1 :], ref_pos, ref_yaw)  # guidance decodes only the future steps
    assert torch.allclose(part["body_pos_w"], full["body_pos_w"][:, N_HISTORY + 1 :])

    def f(x):
        d = rep.decode(x, ref_pos, ref_yaw)
        return d["body_pos_w"].sum() + d["root_yaw"].sum() + d["root_lin_vel_w"].sum()

    x = s[:, N_HISTORY : N_HISTORY + 1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x,))
    zero = torch.zeros(1, 2, 87, dtype=torch.float64, requires_grad=True)  # rotation vector exactly 0
    f(zero).backward()
    assert torch.isfinite(zero.grad).all()
    f32 = rep.decode(s.float(), ref_pos.float(), ref_yaw.float())
    assert f32["body_pos_w"].dtype == torch.float32


def test_mirror_matches_mirrored_world(rollout_obs):
    """Mirroring the encoded states = encoding the mirrored world; mirroring twice is the identity."""
    for bodies in ("default", "all"):
        rep = StateRepresentation(bodies)
        w = _window(rollout_obs, 20)
        s = rep.encode(w)
        assert np.abs(rep.encode(mirror_obs(w)) - rep.mirror_states(s)).max() < 1e-6
        assert np.array_equal(rep.mirror_states(rep.mirror_states(s)), s)
        st = torch.as_tensor(s)
        assert torch.equal(rep.mirror_states(rep.mirror_states(st)), st)
        assert not np.allclose(rep.mirror_states(s), s)


def test_bad_inputs(rollout_obs):
    with pytest.raises(ValueError, match="unknown"):
        StateRepresentation(("pelvis", "nose"))
    with pytest.raises(ValueError, match="mirroring"):
        StateRepresentation(("left_knee_link",))
    rep = StateRepresentation()
    w = _window(rollout_obs, 0)
    with pytest.raises(KeyError, match="root_quat_w"):
        rep.encode({k: v for k, v in w.items() if k != "root_quat_w"})
    bad = dict(w, body_pos_w=w["body_pos_w"].copy())
    bad["body_pos_w"][3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rep.encode(bad)
    with pytest.raises(ValueError, match="shape"):
        rep.encode(dict(w, body_pos_w=w["body_pos_w"][:, :13]))
    with pytest.raises(ValueError, match="ref_index"):
        rep.encode(w, ref_index=WINDOW)
    with pytest.raises(ValueError, match=r"\(B, T, 87\)"):
        rep.decode(np.zeros((2, 87)), np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="ref_pos_w"):
        rep.decode(np.zeros((2, 4, 87)), np.zeros((3, 3)), np.zeros(2))
    assert g1.NUM_BODIES == 32


@pytest.mark.parametrize("shift", [1, 2, 5])
def test_rebase_equals_encoding_with_the_new_reference(rollout_obs, shift):
    rep = StateRepresentation()
    start = 20
    w = _window(rollout_obs, start)
    old = rep.encode(w, ref_index=N_HISTORY)
    new = rep.encode(w, ref_index=N_HISTORY + shift)
    o_pos, o_yaw = rep.reference_frame({k: v[N_HISTORY] for k, v in w.items()})
    n_pos, n_yaw = rep.reference_frame({k: v[N_HISTORY + shift] for k, v in w.items()})
    got = rep.rebase(torch.as_tensor(old)[None], torch.as_tensor(o_pos)[None], torch.tensor([o_yaw]),
                     torch.as_tensor(n_pos)[None], torch.tensor([n_yaw]))[0].numpy()  # fmt: skip
    # the frames differ (the robot moved and turned), so the root features must change ...
    assert np.abs(old[:, :9] - new[:, :9]).max() > 1e-3
    # ... into exactly what encoding with the new reference gives; body features are untouched
    assert np.abs(got - new).max() < 1e-6
    assert np.array_equal(got[:, 9:], old[:, 9:])


def test_rebase_rejects_bad_shapes():
    rep = StateRepresentation()
    with pytest.raises(ValueError, match="states must have shape"):
        rep.rebase(torch.zeros(2, 5, 10), torch.zeros(2, 3), torch.zeros(2), torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="reference positions"):
        rep.rebase(torch.zeros(2, 5, 87), torch.zeros(3), torch.zeros(2), torch.zeros(2, 3), torch.zeros(2))
