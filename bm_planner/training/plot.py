"""``bm-plot-run``: the training curve of a ``bm-train`` run (or a shipped checkpoint folder) as a PNG.

Reads the run's ``metrics.jsonl`` (one JSON object per logged step) and plots the training loss (per-step values and
a running mean), the EMA model's validation loss and, where logged, the first-action error of full sampling on the
held-out split. Example::

    bm-plot-run runs/small-v3 --out runs/small-v3/training_curve.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bm_envs.atomic import atomic_path


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl``; a torn last line (the run was killed while writing) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a bm-train run directory")
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                continue
            raise ValueError(f"{path}:{i + 1}: malformed JSON line") from None
        if not isinstance(row, dict) or "step" not in row:
            raise ValueError(f"{path}:{i + 1}: expected an object with a 'step'")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no metrics")
    return rows


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) if pts else (np.array([]), np.array([]))


def plot_run(run_dir: str | Path, out: str | Path, title: str | None = None) -> Path:
    """Write the training curve of ``run_dir`` to ``out`` (PNG, atomically); returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    s, v = _series(rows, "train/loss")
    if len(s):
        ax.plot(s, v, color="0.75", lw=0.8, label="train loss (logged steps)")
        k = max(1, len(v) // 30)
        ax.plot(s[k - 1 :], np.convolve(v, np.ones(k) / k, mode="valid"), color="C0", label=f"train, mean of {k}")
    s, v = _series(rows, "val/loss")
    if len(s):
        ax.plot(s, v, "o-", color="C1", label="val loss (EMA weights)")
    ax.set(xlabel="optimizer step", ylabel="weighted denoising MSE (normalized units)", yscale="log")
    ax.legend()
    ax.grid(alpha=0.3)
    for key, label, c in (("val/sample_first_action_mse", "first planned action MSE", "C2"),
                          ("val/sample_action_mse", "planned actions MSE", "C3"),
                          ("val/sample_state_mse", "planned states MSE", "C4")):  # fmt: skip
        s, v = _series(rows, key)
        if len(s):
            ax2.plot(s, v, "o-", color=c, label=label)
    ax2.set(xlabel="optimizer step", ylabel="val, full sampling (normalized units)", yscale="log")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle(title or f"training curve: {Path(run_dir).name}")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bm-plot-run", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/training_curve.png)")
    p.add_argument("--title", default=None)
    a = p.parse_args(argv)
    try:
        out = plot_run(a.run_dir, a.out or Path(a.run_dir) / "training_curve.png", a.title)
    except (FileNotFoundError, ValueError) as e:
        print(f"bm-plot-run: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
