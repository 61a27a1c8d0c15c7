"""Behaviour-cloning baseline: an MLP from the history window to the next action, trained on the Stage-2 data.

Input: the normalized history of a window — states s_{t-N}..s_t (N+1, D) and actions a_{t-N}..a_{t-1} (N, A),
flattened, and with ``command_dim`` 3 the window's velocity command (vx, vy m/s, yaw rate rad/s) plus a "has command"
flag (dropped to "no command" with probability ``command_dropout`` in training, like the planner's conditioning);
output: the normalized action a_t (A,). Without a command it imitates the data's behaviour distribution. It is the bar
the diffusion planner must reach on the same data.

:class:`BCModel` exposes the same ``config`` / ``sample(history_states, history_actions, ...) -> Plan`` interface
as :class:`~bm_planner.model.diffusion.StateActionDiffusionModel`, so :class:`~bm_planner.agent.DiffusionAgent`
runs it unchanged (``replan_every=1``). Train with ``python -m bm_planner.baselines.bc --data DIR [DIR ...] --out DIR``
(several folders: one training set normalized by the first folder's normalizer, like ``bm-train``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from bm_planner.model.sampling import Plan


@dataclass(frozen=True)
class BCConfig:
    state_dim: int = 87
    action_dim: int = 29
    n_history: int = 4
    hidden: int = 512
    layers: int = 3
    action_horizon: int = 1  # one planned action (a_t)
    history_actions: bool = True  # False: the input is the state history only (no copycat feedback, see agent docs)
    command_dim: int = 0  # 3: conditioned on the velocity command (+ a "has command" flag); 0: no task input

    def __post_init__(self):
        if min(self.state_dim, self.action_dim, self.hidden, self.layers) < 1 or self.n_history < 1:
            raise ValueError(f"BCConfig sizes must be positive, got {self}")
        if self.command_dim not in (0, 3):
            raise ValueError(f"BCConfig.command_dim must be 0 or 3, got {self.command_dim}")


class BCModel(nn.Module):
    def __init__(self, config: BCConfig):
        super().__init__()
        self.config = config
        c = config
        d_in = (c.n_history + 1) * c.state_dim + (c.n_history * c.action_dim if c.history_actions else 0)
        d_in += c.command_dim + 1 if c.command_dim else 0
        dims = [d_in] + [c.hidden] * c.layers
        mods: list[nn.Module] = []
        for a, b in zip(dims, dims[1:]):
            mods += [nn.Linear(a, b), nn.GELU()]
        mods.append(nn.Linear(dims[-1], c.action_dim))
        self.net = nn.Sequential(*mods)

    def forward(self, history_states: torch.Tensor, history_actions: torch.Tensor,
                command: torch.Tensor | None = None, command_drop: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """(B, N+1, D), (B, N, A) normalized, command (B, 3) or None (= no command), command_drop (B,) bool (rows
        given "no command") → a_t (B, A) normalized."""
        parts = [history_states.flatten(1)]
        if self.config.history_actions:
            parts.append(history_actions.flatten(1))
        if self.config.command_dim:
            b = history_states.shape[0]
            if command is None:
                cmd = history_states.new_zeros(b, self.config.command_dim + 1)
            else:
                if command.shape != (b, self.config.command_dim):
                    raise ValueError(f"command: expected ({b}, {self.config.command_dim}), got {tuple(command.shape)}")
                cmd = torch.cat([command.to(history_states.dtype), history_states.new_ones(b, 1)], dim=1)
                if command_drop is not None:
                    cmd = torch.where(command_drop[:, None], torch.zeros_like(cmd), cmd)
            parts.append(cmd)
        return self.net(torch.cat(parts, dim=1))

    @torch.no_grad()
    def sample(self, history_states, history_actions, command=None, **_ignored) -> Plan:
        """Planner interface: a Plan whose action at index N is the predicted a_t."""
        a = self(history_states, history_actions, command if self.config.command_dim else None)
        actions = torch.cat([history_actions, a[:, None]], dim=1)
        return Plan(history_states, actions)

    def save(self, out: Path, normalizer: nn.Module, layout: dict) -> None:
        """Weights, normalizer (safetensors) and ``bc_config.json`` in ``out``, each written atomically."""
        from bm_envs.atomic import atomic_path

        out.mkdir(parents=True, exist_ok=True)
        for name, module in (("bc", self), ("normalizer", normalizer)):
            with atomic_path(out / f"{name}.safetensors") as tmp:
                save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))
        with atomic_path(out / "bc_config.json") as tmp:
            Path(tmp).write_text(json.dumps({"model": asdict(self.config), "state_layout": layout}, indent=2))

    @classmethod
    def load(cls, path: Path):
        """Returns (model, normalizer, state_layout)."""
        from bm_planner.data.normalizer import Normalizer

        meta = json.loads((Path(path) / "bc_config.json").read_text())
        model = cls(BCConfig(**meta["model"]))
        model.load_state_dict(load_file(str(Path(path) / "bc.safetensors")))
        norm = Normalizer.identity(model.config.state_dim, model.config.action_dim)
        norm.load_state_dict(load_file(str(Path(path) / "normalizer.safetensors")))
        return model.eval(), norm, meta["state_layout"]


def train_bc(
    data,
    out: str,
    steps: int = 20000,
    batch: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    history_actions: bool = True,
    command: bool = False,
    command_dropout: float = 0.15,
    mirror_prob: float = 0.0,
) -> dict:
    """Train on ``data`` (a folder or several) and save to ``out``; progress in tqdm and ``out/metrics.jsonl`` +
    ``out/tb`` (TensorBoard). Returns ``{"steps", "wall_s", "val_first_action_mse"}``."""
    from bm_planner.data.dataset import ConcatTrajectoryDataset
    from bm_planner.training.run_logger import RunLogger

    if not 0.0 <= command_dropout <= 1.0 or not 0.0 <= mirror_prob <= 1.0:
        raise ValueError(f"command_dropout and mirror_prob must be in [0, 1], got {command_dropout}, {mirror_prob}")
    torch.manual_seed(seed)
    ds = ConcatTrajectoryDataset(data, split="train", mirror_prob=mirror_prob)
    val = ConcatTrajectoryDataset(data, normalizer=ds.normalizer, split="val")
    model = BCModel(BCConfig(state_dim=ds.rep.dim, history_actions=history_actions, command_dim=3 if command else 0))
    N = model.config.n_history
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True)
    logger = RunLogger(Path(out))
    it = iter(loader)
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc="bc")
    for step in bar:
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        s, a = b["states"], b["actions"]
        drop = torch.rand(len(s)) < command_dropout if command else None
        loss = torch.mean((model(s[:, : N + 1], a[:, :N], b["command"], drop) - a[:, N]) ** 2)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"bc: non-finite loss at step {step}; nothing saved")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % 100 == 0:
            logger.log(step, {"train/loss": loss.item(), "train/lr": sched.get_last_lr()[0]})
    model.eval()
    vl = torch.utils.data.DataLoader(val, batch_size=1024, shuffle=True, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        errs = [torch.mean((model(b["states"][:, : N + 1], b["actions"][:, :N], b["command"]) - b["actions"][:, N]) ** 2)
                for b, _ in zip(vl, range(8))]  # fmt: skip
    result = {
        "steps": steps,
        "wall_s": time.perf_counter() - t0,
        "val_first_action_mse": float(torch.stack(errs).mean()),
    }
    logger.log(steps, {"val/first_action_mse": result["val_first_action_mse"]})
    logger.close()
    model.save(Path(out), ds.normalizer, ds.rep.layout())
    (Path(out) / "train_summary.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train the behaviour-cloning baseline.")
    p.add_argument("--data", required=True, nargs="+", help="data set folder(s) (bm-collect output)")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-history-actions", action="store_true", help="condition on the state history only")
    p.add_argument("--command", action="store_true", help="condition on the velocity command (like the planner)")
    p.add_argument("--command-dropout", type=float, default=0.15, help="with --command: share trained without it")
    p.add_argument("--mirror-prob", type=float, default=0.0, help="left/right mirror augmentation probability")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or not args.lr > 0:
        p.error(f"--steps, --batch and --lr must be positive, got {args.steps}, {args.batch}, {args.lr}")
    torch.set_num_threads(args.threads)
    result = train_bc(args.data, args.out, args.steps, args.batch, args.lr, args.seed,
                      history_actions=not args.no_history_actions, command=args.command,
                      command_dropout=args.command_dropout, mirror_prob=args.mirror_prob)  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
