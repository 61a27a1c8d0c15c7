"""Behaviour-cloning baseline: an MLP from the history window to the next action, trained on the Stage-2 data.

Input: the normalized history of a window — states s_{t-N}..s_t (N+1, D) and actions a_{t-N}..a_{t-1} (N, A),
flattened; output: the normalized action a_t (A,). No task input (like the unguided planner), so it imitates the
data's behaviour distribution. It is the bar the diffusion planner must reach.

:class:`BCModel` exposes the same ``config`` / ``sample(history_states, history_actions, ...) -> Plan`` interface
as :class:`~bm_planner.model.diffusion.StateActionDiffusionModel`, so :class:`~bm_planner.agent.DiffusionAgent`
runs it unchanged (``replan_every=1``). Train with ``python -m bm_planner.baselines.bc --data DIR --out DIR``.
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

    def __post_init__(self):
        if min(self.state_dim, self.action_dim, self.hidden, self.layers) < 1 or self.n_history < 1:
            raise ValueError(f"BCConfig sizes must be positive, got {self}")


class BCModel(nn.Module):
    def __init__(self, config: BCConfig):
        super().__init__()
        self.config = config
        c = config
        d_in = (c.n_history + 1) * c.state_dim + (c.n_history * c.action_dim if c.history_actions else 0)
        dims = [d_in] + [c.hidden] * c.layers
        mods: list[nn.Module] = []
        for a, b in zip(dims, dims[1:]):
            mods += [nn.Linear(a, b), nn.GELU()]
        mods.append(nn.Linear(dims[-1], c.action_dim))
        self.net = nn.Sequential(*mods)

    def forward(self, history_states: torch.Tensor, history_actions: torch.Tensor) -> torch.Tensor:
        """(B, N+1, D), (B, N, A) normalized → a_t (B, A) normalized."""
        if not self.config.history_actions:
            return self.net(history_states.flatten(1))
        x = torch.cat([history_states.flatten(1), history_actions.flatten(1)], dim=1)
        return self.net(x)

    @torch.no_grad()
    def sample(self, history_states, history_actions, **_ignored) -> Plan:
        """Planner interface: a Plan whose action at index N is the predicted a_t."""
        a = self(history_states, history_actions)
        actions = torch.cat([history_actions, a[:, None]], dim=1)
        return Plan(history_states, actions)

    def save(self, out: Path, normalizer: nn.Module, layout: dict) -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(out / "bc.safetensors"))
        save_file({k: v.contiguous() for k, v in normalizer.state_dict().items()}, str(out / "normalizer.safetensors"))
        (out / "bc_config.json").write_text(
            json.dumps({"model": asdict(self.config), "state_layout": layout}, indent=2)
        )

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
    data: str,
    out: str,
    steps: int = 20000,
    batch: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    history_actions: bool = True,
) -> dict:
    from bm_planner.data.dataset import TrajectoryDataset

    torch.manual_seed(seed)
    ds = TrajectoryDataset(data, split="train")
    val = TrajectoryDataset(data, split="val")
    n = ds.rep.dim
    model = BCModel(BCConfig(state_dim=n, history_actions=history_actions))
    N = model.config.n_history
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True)
    it = iter(loader)
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc="bc")
    for _ in bar:
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        s, a = b["states"], b["actions"]
        loss = torch.mean((model(s[:, : N + 1], a[:, :N]) - a[:, N]) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    model.eval()
    vl = torch.utils.data.DataLoader(val, batch_size=1024)
    with torch.no_grad():
        errs = [torch.mean((model(b["states"][:, : N + 1], b["actions"][:, :N]) - b["actions"][:, N]) ** 2) for b, _ in
                zip(vl, range(8))]  # fmt: skip
    result = {
        "steps": steps,
        "wall_s": time.perf_counter() - t0,
        "val_first_action_mse": float(torch.stack(errs).mean()),
    }
    model.save(Path(out), ds.normalizer, ds.rep.layout())
    (Path(out) / "train_summary.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train the behaviour-cloning baseline.")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-history-actions", action="store_true", help="condition on the state history only")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = train_bc(args.data, args.out, args.steps, args.batch, history_actions=not args.no_history_actions)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
