"""``bm-train``: train the state–action diffusion model on collected windows.

Examples::

    bm-train --config small --data data/stage2 --out runs/small
    bm-train --config small --data data/stage2 --out runs/small --resume --steps 80000
    torchrun --nproc_per_node 4 -m bm_planner.training.cli --config base --data data/stage2 --out runs/base

``--config`` is a preset (small / base / large) or a YAML file (see ``bm_planner.training.config``). The state and
action dimensions are taken from the data. With ``--resume`` the run's saved configuration is used; ``--steps``,
``--batch-size`` and ``--lr`` still override it (changing the last two breaks bit-exact continuation).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from bm_planner.model.config import ConfigError
from bm_planner.training.checkpoint import CheckpointError, load_checkpoint
from bm_planner.training.config import RunConfig, load_run_config
from bm_planner.training.distributed import cleanup_distributed, process_device

#: a run folder holding this file trains with another checkpoint's normalizer (``--init-normalizer``)
NORMALIZER_MARKER = "normalizer_from.json"
#: train fields a resumed run may change from the command line (``--steps``, ``--batch-size``, ``--lr``, ...)
RESUME_OVERRIDABLE = ("total_steps", "batch_size", "lr", "num_workers")


def _config_diff(a: RunConfig, b: RunConfig) -> list[str]:
    """``section.field: a → b`` for every field that differs (model dims that come from the data excluded)."""
    da, db = a.to_dict(), b.to_dict()
    out = []
    for sec in ("model", "train"):
        for k in sorted(set(da[sec]) | set(db[sec])):
            if sec == "model" and k in ("state_dim", "action_dim"):
                continue
            if da[sec].get(k) != db[sec].get(k):
                out.append(f"{sec}.{k}: {da[sec].get(k)!r} (given) vs {db[sec].get(k)!r} (saved)")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bm-train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=None,
                   help="preset name (small/base/large) or YAML file (default small; with --resume: the run's own, "
                        "and a different one given here is an error)")  # fmt: skip
    p.add_argument("--data", required=True, nargs="+",
                   help="data set folder(s) (bm-collect output); several are trained on together (e.g. expert "
                        "rollouts + expert take-overs from planner states), normalized like the first")  # fmt: skip
    p.add_argument("--out", required=True, help="run directory (checkpoints, TensorBoard, metrics.jsonl)")
    p.add_argument("--steps", type=int, help="total optimizer steps (overrides train.total_steps)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.add_argument("--batch-size", type=int, help="per-process batch size")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument(
        "--init-from",
        help="checkpoint or run directory whose EMA weights initialize the model "
        "(fine-tuning; same architecture; fresh optimizer, schedule and normalizer)",
    )
    p.add_argument("--init-normalizer", action="store_true",
                   help="with --init-from: keep that checkpoint's data normalizer (the weights were trained "
                        "with it) instead of the new data's (a --resume of such a run keeps it)")  # fmt: skip
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--num-workers", type=int, help="DataLoader workers")
    p.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    p.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (must be installed)")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    p.add_argument("--max-minutes", type=float, help="wall-time budget: stop (with a checkpoint) after this many "
                   "minutes even if --steps are not done; --resume continues")  # fmt: skip
    return p


def resolve_config(args: argparse.Namespace) -> RunConfig:
    if args.resume:
        import warnings

        from bm_planner.training.checkpoint import load_resumable_checkpoint

        with warnings.catch_warnings():  # the trainer says which checkpoint it resumes from
            warnings.simplefilter("ignore")
            saved = load_resumable_checkpoint(Path(args.out)).config["run_config"]
        config = RunConfig.from_dict(saved, require_complete=False)
        if args.config is not None:  # the same file again is fine; a different one would be silently ignored
            asked = load_run_config(args.config)
            diff = _config_diff(asked.replace(train={k: getattr(config.train, k) for k in RESUME_OVERRIDABLE}),
                                config)  # fmt: skip
            if diff:
                raise ConfigError(f"--resume: {args.config} differs from the run's saved config in {diff}; resume "
                                  f"without --config, or start a new --out")  # fmt: skip
    else:
        config = load_run_config(args.config or "small")
    overrides = {
        k: v
        for k, v in (
            ("total_steps", args.steps),
            ("batch_size", args.batch_size),
            ("lr", args.lr),
            ("num_workers", args.num_workers),
        )
        if v is not None
    }
    return config.replace(train=overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = resolve_config(args)
        from bm_planner.data.dataset import ConcatTrajectoryDataset
        from bm_planner.training.trainer import DDPMTrainer

        hist = config.train.history_actions
        norm = None
        marker = Path(args.out) / NORMALIZER_MARKER
        if args.init_normalizer or (args.resume and marker.is_file()):
            from bm_planner.training.checkpoint import load_normalizer

            if args.resume:  # the normalizer this run has trained with (it came from another checkpoint)
                import warnings

                from bm_planner.training.checkpoint import load_resumable_checkpoint

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    norm = load_normalizer(load_resumable_checkpoint(Path(args.out)))
            elif not args.init_from:
                raise ValueError("--init-normalizer needs --init-from")
            else:
                norm = load_normalizer(load_checkpoint(Path(args.init_from), load_train_state=False))
        train_ds = ConcatTrajectoryDataset(args.data, split="train", normalize=True, normalizer=norm,
                                           mirror_prob=config.train.mirror_prob, history_actions=hist)  # fmt: skip
        val_ds = ConcatTrajectoryDataset(args.data, split="val", normalize=True, mirror_prob=0.0, history_actions=hist,
                                         normalizer=train_ds.normalizer)  # fmt: skip
        item = train_ds[0]
        dims = {"state_dim": int(item["states"].shape[-1]), "action_dim": int(item["actions"].shape[-1])}
        config = config.replace(model=dims)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        if args.init_normalizer and not args.resume:  # --resume then keeps this normalizer by itself
            (out / NORMALIZER_MARKER).write_text(json.dumps({"normalizer_from": str(args.init_from)}) + "\n")
        # the agent needs the state layout (tracked bodies) to encode observations like the data did
        (out / "state_layout.json").write_text(json.dumps(train_ds.state_rep.layout(), indent=2))
        trainer = DDPMTrainer(
            config,
            train_ds,
            val_ds,
            train_ds.normalizer,
            args.out,
            device=process_device(args.device),
            resume=args.resume,
            use_wandb=args.wandb,
            progress=not args.no_progress,
            init_from=args.init_from,
        )
        try:
            summary = trainer.train(max_wall_s=None if args.max_minutes is None else 60.0 * args.max_minutes)
        finally:
            trainer.close()
        if trainer.info.is_main:
            print(json.dumps(summary, indent=2))
        return 0
    except (ConfigError, CheckpointError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"bm-train: error: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    sys.exit(main())
