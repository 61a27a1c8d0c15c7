"""Two CPU processes with gloo under torchrun: identical parameters on both ranks, checkpoint written by rank 0."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from bm_planner.training import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_process_gloo_training(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, check=False, cwd=WORKER.parent, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    p0 = load_file(str(tmp_path / "params_rank0.safetensors"))
    p1 = load_file(str(tmp_path / "params_rank1.safetensors"))
    assert p0.keys() == p1.keys()
    for name in p0:
        assert torch.equal(p0[name], p1[name]), name
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.step == 3 and ckpt.train_state["world_size"] == 2 and len(ckpt.train_state["rng"]) == 2
    for name in p0:
        assert torch.equal(ckpt.model[name], p0[name]), name
    # the ranks drew different noise (seed + rank), so their RNG streams differ
    assert not torch.equal(ckpt.train_state["rng"][0]["torch"], ckpt.train_state["rng"][1]["torch"])
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["latest", "step_00000003"]
