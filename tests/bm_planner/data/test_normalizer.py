import numpy as np
import pytest
import torch

from bm_envs import g1_constants as g1
from bm_planner.data.normalizer import Normalizer, symmetrize
from bm_planner.data.state import StateRepresentation


def test_round_trip_and_state_dict():
    rng = np.random.default_rng(0)
    n = Normalizer(rng.normal(size=87), rng.uniform(0.1, 2, 87), rng.normal(size=29), rng.uniform(0.1, 2, 29))
    x, a = torch.randn(4, 21, 87), torch.randn(4, 21, 29)
    assert torch.allclose(n.unnormalize_states(n.normalize_states(x)), x, atol=1e-5)
    assert torch.allclose(n.unnormalize_actions(n.normalize_actions(a)), a, atol=1e-5)
    assert not torch.allclose(n.normalize_states(x), x)
    m = Normalizer.identity(87)
    m.load_state_dict(n.state_dict())
    assert torch.equal(m.normalize_states(x), n.normalize_states(x))
    assert set(n.state_dict()) == {"state_mean", "state_std", "action_mean", "action_std"}
    with pytest.raises(ValueError, match="last dimension 87"):
        n.normalize_states(torch.zeros(3, 86))
    with pytest.raises(ValueError, match="finite"):
        Normalizer([np.nan], [1.0], [0.0], [1.0])
    assert float(Normalizer([0.0], [0.0], [0.0], [1.0]).state_std[0]) == pytest.approx(1e-3)


def test_symmetrize_equals_stats_of_mirrored_mixture():
    rep = StateRepresentation()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, rep.dim)) * rng.uniform(0.1, 2, rep.dim) + rng.normal(size=rep.dim)
    mix = np.concatenate([x, rep.mirror_states(x)])
    mean, std = symmetrize(x.mean(0), x.std(0), rep.mirror_perm, rep.mirror_sign)
    assert np.allclose(mean, mix.mean(0)) and np.allclose(std, mix.std(0))
    a = rng.normal(size=(1000, 29)) + 1
    am, ast = symmetrize(a.mean(0), a.std(0), g1.MIRROR_PERM, g1.MIRROR_SIGN)
    mixa = np.concatenate([a, g1.mirror_joints(a)])
    assert np.allclose(am, mixa.mean(0)) and np.allclose(ast, mixa.std(0))
