"""How far a planner's first planned action a_t is from the expert's label on held-out windows, and where the error
comes from: one denoiser call at a level k shared by every future token (what the sampler feeds it) vs independent
per-token levels (what training draws), and full samples (DDIM, start-noise scale 1 and 0, the mean of B samples).

    python tools/sample_probe.py --checkpoint assets/planner-small-v3 --data data/v3-dart data/v3-dagger1

Errors are mean squared errors in normalized action units (the data normalizer's z), on the ``val`` split, over
``--batches`` × ``--batch`` windows drawn with a fixed seed; the BC baseline's ``val first-action MSE`` is the same
quantity for a regression of a_t. Smoothness = mean squared second difference of the planned actions over time
(the data's for reference).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def load(checkpoint: str, data: list[str], batches: int, batch: int, seed: int):
    from torch.utils.data import DataLoader

    from bm_planner.data.dataset import ConcatTrajectoryDataset
    from bm_planner.training.checkpoint import load_diffusion_model, load_normalizer, resolve_checkpoint

    model, ckpt = load_diffusion_model(resolve_checkpoint(Path(checkpoint)))
    val = ConcatTrajectoryDataset(data, split="val", normalize=True, mirror_prob=0.0, normalizer=load_normalizer(ckpt))
    it = iter(DataLoader(val, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed)))
    return model, [next(it) for _ in range(batches)]


def smoothness(actions: torch.Tensor) -> float:
    return float((actions[:, 2:] - 2 * actions[:, 1:-1] + actions[:, :-2]).pow(2).mean())


@torch.no_grad()
def level_errors(model, batches, levels=(0, 2, 4, 8, 12, 16, 20), seed: int = 3) -> dict:
    """First-action x0 MSE of one denoiser call with every future token at level k, and with random levels."""
    c = model.config
    out = {}
    for k in ("random", *levels):
        g, errs = torch.Generator().manual_seed(seed), []
        for b in batches:
            n = b["states"].shape[0]
            if k == "random":
                lv = model.sample_levels(n, torch.device("cpu"), g)
            else:
                ks, ka = torch.full((n, c.window), int(k)), torch.full((n, c.action_window), int(k))
                ks[:, : c.n_known_states], ka[:, : c.n_known_actions] = 0, 0
                lv = (ks, ka)
            errs.append(
                model.compute_loss(b["states"], b["actions"], generator=g, levels=lv, command=b["command"])
                .action_err[:, 0]
                .mean()
            )
        out[str(k)] = float(torch.stack(errs).mean())
    return out


@torch.no_grad()
def sample_errors(model, batches, num_steps: int = 10, seed: int = 1) -> dict:
    """First-action MSE and smoothness of DDIM samples: noise scale 1, 0, and the mean of 4 samples."""
    from bm_planner.model.samplers import DDIMSampler

    c, f = model.config, model.config.n_known_actions
    out = {}
    for name, ns, reps in (("ddim", 1.0, 1), ("ddim_noise0", 0.0, 1), ("ddim_mean4", 1.0, 4)):
        g, first, smooth, data_smooth = torch.Generator().manual_seed(seed), [], [], []
        for b in batches:
            s, a, cmd = b["states"], b["actions"], b["command"]
            n = s.shape[0]
            plan = model.sample(s[:, : c.n_known_states].repeat_interleave(reps, 0),
                                a[:, : c.n_known_actions].repeat_interleave(reps, 0), num_steps=num_steps,
                                sampler=DDIMSampler(), generator=g, noise_scale=ns,
                                command=cmd.repeat_interleave(reps, 0) if c.command_dim else None)  # fmt: skip
            acts = plan.actions.reshape(n, reps, *plan.actions.shape[1:]).mean(1)
            first.append(float((acts[:, f] - a[:, f]).pow(2).mean()))
            smooth.append(smoothness(acts[:, f - 1 : f + c.action_loss_steps]))
            data_smooth.append(smoothness(a[:, f - 1 : f + c.action_loss_steps]))
        out[name] = {"first_action_mse": sum(first) / len(first), "smoothness": sum(smooth) / len(smooth)}
    out["data_smoothness"] = sum(data_smooth) / len(data_smooth)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint or run folder")
    p.add_argument("--data", nargs="+", required=True, help="data folders (their val split is used)")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="also write the result as JSON here")
    a = p.parse_args(argv)
    if a.batches < 1 or a.batch < 1:
        p.error("--batches and --batch must be >= 1")
    torch.set_num_threads(a.threads)
    model, batches = load(a.checkpoint, a.data, a.batches, a.batch, a.seed)
    result = {"checkpoint": a.checkpoint, "windows": a.batches * a.batch, "one_call_by_level": level_errors(model, batches),
              "samples": sample_errors(model, batches)}  # fmt: skip
    print(json.dumps(result, indent=1))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
