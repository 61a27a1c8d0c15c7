"""Worker for the 2-process DDP test: ``torchrun --standalone --nproc_per_node 2 ddp_worker.py OUT_DIR``.

Trains a tiny model for a few steps with gloo on CPU and writes each rank's final parameters to
``OUT_DIR/params_rank{R}.safetensors``; rank 0 also writes the run's checkpoints under ``OUT_DIR/run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from _synthetic_data import SyntheticWindows
from safetensors.torch import save_file

from bm_planner.model import ModelConfig
from bm_planner.training import DDPMTrainer, RunConfig, TrainConfig
from bm_planner.training.distributed import cleanup_distributed


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    model = ModelConfig(state_dim=12, width=32, depth=1, heads=2, attn_dropout=0.1)
    train = TrainConfig(
        total_steps=3,
        batch_size=4,
        lr=1e-3,
        warmup_steps=1,
        eval_every=2,
        ckpt_every=100,
        log_every=1,
        val_batches=1,
        sample_batches=1,
        sample_steps=2,
    )
    data = SyntheticWindows(32)
    trainer = DDPMTrainer(
        RunConfig(model, train),
        data,
        SyntheticWindows(8, seed=1),
        data.normalizer,
        out / "run",
        device="cpu",
        progress=False,
    )
    summary = trainer.train()
    trainer.close()
    rank = trainer.info.rank
    assert trainer.info.world_size == 2, trainer.info
    save_file(
        {k: v.contiguous() for k, v in trainer.model.state_dict().items()}, str(out / f"params_rank{rank}.safetensors")
    )
    (out / f"done_rank{rank}").write_text(str(summary["step"]))
    cleanup_distributed()


if __name__ == "__main__":
    main()
