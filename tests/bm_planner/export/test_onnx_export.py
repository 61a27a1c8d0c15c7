"""ONNX export, ONNX Runtime backend and fast sampler: parity with torch (per step, per plan), metadata, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bm_planner import SHIPPED_PLANNER
from bm_planner.backends import with_backend
from bm_planner.backends.onnxruntime import OnnxDenoiser
from bm_planner.data.normalizer import Normalizer
from bm_planner.data.state import StateRepresentation
from bm_planner.export import ExportError, export_onnx, read_metadata
from bm_planner.export.cli import main as export_main
from bm_planner.export.onnx_export import cached_export
from bm_planner.export.parity import PLAN_ATOL, STEP_ATOL, joystick_guidance, plan_error, step_error
from bm_planner.model import ModelConfig, StateActionDiffusionModel
from bm_planner.model.samplers import FastDDIMSampler

CHECKPOINT = SHIPPED_PLANNER
TINY = ModelConfig(width=32, depth=2, heads=2, attn_dropout=0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, normalizer, state_rep, onnx path) of a random-init tiny model."""
    torch.manual_seed(0)
    model = StateActionDiffusionModel(TINY).eval()
    rep = StateRepresentation("default")
    g = np.random.default_rng(0)
    norm = Normalizer(g.normal(size=87) * 0.1, 0.5 + g.random(87), g.normal(size=29) * 0.1, 0.5 + g.random(29))
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", norm, rep)
    return model, norm, rep, path


def test_metadata_round_trip(tiny):
    model, norm, rep, path = tiny
    meta = read_metadata(path)
    assert meta["model_config"] == model.config.to_dict()
    assert meta["state_layout"]["bodies"] == list(rep.bodies)
    assert len(meta["joint_names"]) == len(meta["kp"]) == len(meta["kd"]) == 29
    np.testing.assert_allclose(meta["normalizer"]["state_std"], norm.state_std.numpy(), rtol=1e-6)
    assert not list(path.parent.glob(".*.tmp")), "atomic write left a temporary file"


@pytest.mark.parametrize("batch", [1, 3])
def test_step_parity_dynamic_batch(tiny, batch):
    model, _, _, path = tiny
    err = step_error(model, OnnxDenoiser(path, model=model), batch=batch, seed=batch)
    assert err <= STEP_ATOL


def test_plan_parity_guided(tiny):
    model, norm, rep, path = tiny
    fast = with_backend(model, "onnx", onnx_path=path)
    assert model.denoiser is not fast.denoiser and isinstance(model.denoiser, torch.nn.Module)
    assert plan_error(model, fast, joystick_guidance(norm, rep, batch=2)) <= PLAN_ATOL


def test_perturbed_weights_break_parity(tiny, tmp_path):
    """The parity checks can fail: an export of slightly different weights misses both tolerances."""
    model, norm, rep, _ = tiny
    other = StateActionDiffusionModel(TINY).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.denoiser.state_head.bias += 0.01
    path = export_onnx(other, tmp_path / "other.onnx", norm, rep)
    den = OnnxDenoiser(path)  # no model given: no metadata check
    assert step_error(model, den) > STEP_ATOL
    with pytest.raises(ExportError, match="weights"):
        OnnxDenoiser(path, model=model)


def test_config_mismatch_is_reported(tiny):
    _, _, _, path = tiny
    other = StateActionDiffusionModel(ModelConfig(width=64, depth=2, heads=2)).eval()
    with pytest.raises(ExportError, match="width"):
        OnnxDenoiser(path, model=other)


def test_fast_sampler_matches_reference(tiny):
    model, norm, rep, _ = tiny
    smp = FastDDIMSampler()
    fast = lambda *a, **kw: model.sample(*a, sampler=smp, **kw)  # noqa: E731
    hs, ha = torch.randn(2, 5, 87), torch.randn(2, 4, 29)
    guide = joystick_guidance(norm, rep, batch=2)
    for kw in ({"num_steps": 10}, {"num_steps": 20}, {"num_steps": 5, "guidance": guide}):
        ref = model.sample(hs, ha, sampler="ddim", generator=torch.Generator().manual_seed(1), **kw)
        out = fast(hs, ha, generator=torch.Generator().manual_seed(1), **kw)
        torch.testing.assert_close(out.states, ref.states, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.actions, ref.actions, atol=1e-5, rtol=1e-5)
        assert torch.equal(out.states[:, :5], hs) and torch.equal(out.actions[:, :4], ha)  # history exact
    init = ref.shifted(2)
    ref = model.sample(hs, ha, num_steps=7, sampler="ddim", init=init, generator=torch.Generator().manual_seed(2))
    out = fast(hs, ha, num_steps=7, init=init, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out.actions, ref.actions, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and it can fail: another generator seed gives another plan
        other = fast(hs, ha, num_steps=10, generator=torch.Generator().manual_seed(3))
    assert (other.actions - ref.actions).abs().max() > 1e-2


def test_cached_export_reused(tiny, tmp_path, monkeypatch):
    model, norm, rep, _ = tiny
    monkeypatch.setenv("BM_CACHE_DIR", str(tmp_path))
    p1 = cached_export(model, norm, rep)
    mtime = p1.stat().st_mtime_ns
    assert cached_export(model, norm, rep) == p1 and p1.stat().st_mtime_ns == mtime


def test_bad_backend_and_paths(tiny, tmp_path):
    model, _, _, _ = tiny
    with pytest.raises(ValueError, match="backend"):
        with_backend(model, "tflite")
    with pytest.raises(ExportError, match="no ONNX file"):
        read_metadata(tmp_path / "missing.onnx")
    with pytest.raises(ExportError, match=".onnx"):
        export_onnx(model, tmp_path / "x.bin")


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        export_main(["--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "a.onnx")])
    assert "does not exist" in capsys.readouterr().err
    assert export_main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "a.onnx")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    from bm_planner import SHIPPED_PLANNER

    with pytest.raises(SystemExit) as e:  # a folder that does not exist: named, not a temp file's FileNotFoundError
        export_main(["--checkpoint", str(SHIPPED_PLANNER), "--out", str(tmp_path / "no" / "such" / "a.onnx")])
    assert e.value.code == 2 and f"the folder {tmp_path / 'no' / 'such'} does not exist" in capsys.readouterr().err


def test_shipped_checkpoint_cli_and_agent(tmp_path, capsys):
    """bm-export --check on the shipped checkpoint, then the agent's onnx backend gives the torch agent's actions."""
    from bm_planner.agent import AgentConfig, DiffusionAgent

    out = tmp_path / "planner.onnx"
    assert export_main(["--checkpoint", str(CHECKPOINT), "--out", str(out), "--check"]) == 0
    assert '"ok": true' in capsys.readouterr().out
    cfg = AgentConfig(guidance_scale=1.0, num_steps=5)
    agents = [DiffusionAgent.from_pretrained(CHECKPOINT, cfg),
              DiffusionAgent.from_pretrained(CHECKPOINT, cfg, backend="onnx", onnx_path=out)]  # fmt: skip
    assert agents[1].model.denoiser.__class__.__name__ == "OnnxDenoiser"
    # the sampler is the agent's choice: the fast DDIM loop with an exported denoiser, the reference one in torch
    assert (
        isinstance(agents[1].planner.sampler, FastDDIMSampler)
        and type(agents[0].planner.sampler).__name__ == "DDIMSampler"
    )
    assert agents[0].model.denoiser is not agents[1].model.denoiser
    obs = _standing_obs()
    for _ in range(3):
        a_torch, _ = agents[0].predict(obs)
        a_onnx, _ = agents[1].predict(obs)
        np.testing.assert_allclose(a_onnx, a_torch, atol=1e-3)


def _standing_obs() -> dict:
    """A bm env observation (the fields the agent reads) of the robot standing at its default pose."""
    import gymnasium as gym

    import bm_envs  # noqa: F401

    env = gym.make("BM-G1-Joystick-v0")
    obs, _ = env.reset(seed=0)
    env.close()
    return obs


def test_fast_sampler_matches_reference_at_every_noise_scale(tiny):
    model, _, _, _ = tiny
    smp = FastDDIMSampler()
    fast = lambda *a, **kw: model.sample(*a, sampler=smp, **kw)  # noqa: E731
    hs, ha = torch.randn(2, 5, 87), torch.randn(2, 4, 29)
    for scale in (0.0, 0.5):
        ref = model.sample(hs, ha, sampler="ddim", num_steps=10, generator=torch.Generator().manual_seed(1),
                           noise_scale=scale)  # fmt: skip
        out = fast(hs, ha, num_steps=10, generator=torch.Generator().manual_seed(1), noise_scale=scale)
        torch.testing.assert_close(out.actions, ref.actions, atol=1e-5, rtol=1e-5)
