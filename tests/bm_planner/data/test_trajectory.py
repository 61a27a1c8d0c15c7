import numpy as np
import pytest
import torch

from bm_planner.data.trajectory import (
    ACTION_LOSS_STEPS,
    HORIZON,
    N_HISTORY,
    WINDOW,
    Trajectory,
    action_loss_mask,
    history_mask_actions,  # fmt: skip
    history_mask_states,
)


def test_constants_and_masks():
    assert (N_HISTORY, HORIZON, ACTION_LOSS_STEPS, WINDOW) == (4, 16, 8, 21)
    ms, ma, ml = history_mask_states(), history_mask_actions(), action_loss_mask()
    assert ms.dtype == torch.bool and ms.shape == (21,)
    assert torch.nonzero(ms).flatten().tolist() == [0, 1, 2, 3, 4]  # s_{t0-4} .. s_{t0}
    assert torch.nonzero(ma).flatten().tolist() == [0, 1, 2, 3]  # a_{t0-4} .. a_{t0-1}
    assert torch.nonzero(ml).flatten().tolist() == list(range(4, 12))  # a_{t0} .. a_{t0+7}
    assert not (ma & ml).any()
    assert history_mask_states(30).shape == (30,)
    with pytest.raises(ValueError, match="T"):
        action_loss_mask(5)


def test_trajectory_views_and_validation():
    s, a = torch.randn(2, WINDOW, 87), torch.randn(2, WINDOW, 29)
    tr = Trajectory(s, a)
    assert tr.T == 21 and tr.history_states.shape == (2, 5, 87) and tr.future_states.shape == (2, 16, 87)
    assert tr.history_actions.shape == (2, 4, 29) and tr.future_actions.shape == (2, 17, 29)
    assert torch.equal(Trajectory.from_item(tr.to_item()).states, s)
    with pytest.raises(ValueError, match="29"):
        Trajectory(np.zeros((21, 87)), np.zeros((21, 28)))
    with pytest.raises(ValueError, match="disagree"):
        Trajectory(np.zeros((21, 87)), np.zeros((20, 29)))
    bad = np.zeros((21, 87))
    bad[3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        Trajectory(bad, np.zeros((21, 29)))
