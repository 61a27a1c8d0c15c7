"""``bm-dataset-card DIR``: a Markdown card and PNG plots describing a ``bm-collect`` data set.

Writes to ``DIR/card/`` (or ``--out``): ``card.md``, ``commands.png`` (command coverage: vx–vy and vx–yaw-rate
histograms of the usable steps, share of each command kind), ``falls.png`` (fall rate by action latency, episode
lengths), ``state_stats.png`` and ``action_stats.png`` (per-dimension mean ± std of the window statistics). Only
shards that pass verification are read; skipped ones are listed in the card.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from bm_envs import g1_constants as g1
from bm_envs.rotations import world_to_yaw_frame, yaw_from_quat
from bm_planner.data import storage
from bm_planner.data.commands import KINDS


def gather(root: Path) -> dict:
    """Per-step command/kind/velocity arrays and per-episode arrays of the manifest's shards."""
    m = storage.load_manifest(root)
    steps = {"command": [], "command_kind": [], "valid": [], "vel_b": [], "yaw_rate": []}
    eps = {k: [] for k in ("length", "fell", "action_delay_ms", "friction", "pushes")}
    takeover = {k: [] for k in storage.OPTIONAL_EPISODE_KEYS}
    transitions: dict[tuple[str, str], int] = {}
    skipped = {}
    for s in m["shards"]:
        try:
            a = storage.read_shard(root / s["name"])
        except (storage.CorruptShardError, FileNotFoundError) as e:
            skipped[s["name"]] = str(e)
            warnings.warn(f"skipping corrupt or missing shard {e}", storage.CorruptShardWarning, stacklevel=2)
            continue
        for k in ("command", "command_kind", "valid"):
            steps[k].append(a[k])
        yaw = yaw_from_quat(a["root_quat_w"])
        steps["vel_b"].append(world_to_yaw_frame(a["root_lin_vel_w"][:, :2], yaw))
        steps["yaw_rate"].append(a["root_ang_vel_w"][:, 2])
        for k, acc in eps.items():
            acc.append(a[k])
        for k, acc in takeover.items():
            if k in a:
                acc.append(a[k])
        off = a["offsets"]
        for e in range(len(off) - 1):  # command-kind changes inside each episode (e.g. stand -> turn: a start)
            kind = a["command_kind"][off[e] : off[e + 1]]
            for i in np.flatnonzero(np.diff(kind.astype(int)) != 0):
                key = (KINDS[int(kind[i])], KINDS[int(kind[i + 1])])
                transitions[key] = transitions.get(key, 0) + 1
    if m["shards"] and len(skipped) == len(m["shards"]):
        raise ValueError(f"{root}: no usable data: all {len(skipped)} shards are corrupt or missing (e.g. "
                         f"{next(iter(skipped.values()))})")  # fmt: skip
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in {**steps, **eps}.items()}
    tk = {k: np.concatenate(v) for k, v in takeover.items() if v}
    return {"manifest": m, "skipped": skipped, "transitions": transitions, "takeover": tk, **cat}


def _plot_commands(d: dict, path: Path) -> None:
    v = d["valid"].astype(bool)
    c = d["command"][v]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3))
    ax[0].hist2d(c[:, 0], c[:, 1], bins=40, range=[[-1, 1.1], [-0.6, 0.6]], cmap="viridis", norm=LogNorm())
    ax[0].set(xlabel="command vx (m/s)", ylabel="command vy (m/s)", title="coverage: vx–vy (usable steps, log)")
    ax[1].hist2d(c[:, 0], c[:, 2], bins=40, range=[[-1, 1.1], [-1.1, 1.1]], cmap="viridis", norm=LogNorm())
    ax[1].set(xlabel="command vx (m/s)", ylabel="command yaw rate (rad/s)", title="coverage: vx–yaw rate")
    frac = np.bincount(d["command_kind"][v].astype(int), minlength=len(KINDS)) / max(v.sum(), 1)
    ax[2].bar(KINDS, frac)
    ax[2].set(ylabel="share of usable steps", title="command kinds")
    ax[2].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _fall_table(d: dict) -> list[tuple[str, int, float]]:
    edges = np.arange(0, 110, 20)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        sel = (d["action_delay_ms"] >= lo) & (d["action_delay_ms"] < hi + (hi == edges[-1]))
        rows.append((f"{lo}-{hi}", int(sel.sum()), float(d["fell"][sel].mean()) if sel.any() else float("nan")))
    return rows


def _plot_falls(d: dict, rows, path: Path) -> None:
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].bar([r[0] for r in rows], [r[2] for r in rows])
    ax[0].set(xlabel="action latency (ms)", ylabel="fall rate", title="falls by latency", ylim=(0, 1))
    ax[1].hist(d["length"] * g1.CONTROL_DT, bins=40)
    ax[1].set(xlabel="episode length (s)", ylabel="episodes", title="episode lengths (short = fell)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_stats(mean, std, labels_at: dict, title: str, path: Path, xlabels=None) -> None:
    mean, std = np.asarray(mean), np.asarray(std)
    fig, ax = plt.subplots(figsize=(max(8, len(mean) * 0.14), 4))
    x = np.arange(len(mean))
    ax.errorbar(x, mean, yerr=std, fmt="o", ms=3, capsize=2)
    for j, (name, (a, b)) in enumerate(labels_at.items()):
        ax.axvspan(a - 0.5, b - 0.5, alpha=0.06 * (1 + j % 2))
        ax.text(
            (a + b) / 2 - 0.5,
            0.97 - 0.06 * (j % 3),
            name,
            ha="center",
            va="top",
            fontsize=8,
            transform=ax.get_xaxis_transform(),
        )
    if xlabels is not None:
        ax.set_xticks(x, xlabels, rotation=90, fontsize=6)
    ax.set(title=title, xlabel="dimension", ylabel="mean ± std")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _latency(cfg: dict):
    from bm_planner.data.rollout import CollectConfig

    try:
        return CollectConfig.from_dict(cfg).resolved_profile().latency_ms
    except (TypeError, ValueError):
        return cfg.get("latency_ms")


def _profile_label(cfg: dict) -> str:
    from bm_planner.data.rollout import CollectConfig

    try:
        return CollectConfig.from_dict(cfg).resolved_profile().label
    except (TypeError, ValueError) as e:
        return f"unknown ({e})"


def write_card(root: Path, out: Path) -> dict:
    """Compute the card of data set ``root`` into folder ``out``; returns its numbers."""
    d = gather(root)
    m = d["manifest"]
    out.mkdir(parents=True, exist_ok=True)
    c, v = m["counts"], d["valid"].astype(bool)
    rows = _fall_table(d)
    _plot_commands(d, out / "commands.png")
    _plot_falls(d, rows, out / "falls.png")
    if m["stats"]:
        _plot_stats(
            m["stats"]["states"]["mean"],
            m["stats"]["states"]["std"],
            m["state"]["slices"],
            f"state statistics (D={m['state']['dim']}, windows' representation)",
            out / "state_stats.png",
        )
        _plot_stats(m["stats"]["actions"]["mean"], m["stats"]["actions"]["std"], {}, "action statistics (label)",
                    out / "action_stats.png", xlabels=[n.replace("_joint", "") for n in g1.JOINT_NAMES])  # fmt: skip
    kinds = np.bincount(d["command_kind"][v].astype(int), minlength=len(KINDS)) / max(v.sum(), 1)
    cmd = d["command"][v]
    err = np.abs(np.column_stack([d["vel_b"], d["yaw_rate"]])[v] - cmd).mean(0) if v.any() else np.full(3, np.nan)
    nums = {"hours": c["hours"], "valid_hours": c["valid_hours"], "episodes": len(d["length"]),
            "falls": int(d["fell"].sum()), "fall_rate": float(d["fell"].mean()) if len(d["fell"]) else float("nan"),
            "windows": c["windows"], "kinds": dict(zip(KINDS, kinds.round(4).tolist())),
            "mean_abs_vel_error": err.round(4).tolist(), "skipped": d["skipped"],
            "transitions": {f"{a} -> {b}": n for (a, b), n in sorted(d["transitions"].items(), key=lambda x: -x[1])},
            }  # fmt: skip
    cfg = m["config"]
    profile = _profile_label(cfg)
    nums["profile"] = profile
    tk = d["takeover"]
    if tk:
        nums["takeover"] = {"takeovers": int(len(tk["takeover_step"])),
                            "expert_fall_rate_after_takeover": float(d["fell"].mean()),
                            "takeover_gap_mean": float(np.nanmean(tk["takeover_gap"])),
                            "planner_fall_rate": float(np.mean(tk["planner_fell"]))}  # fmt: skip
    start_rows = [f"| {k} | {n} |" for k, n in nums["transitions"].items() if k.startswith("stand ->")]
    other_rows = [f"| {k} | {n} |" for k, n in list(nums["transitions"].items())[:12] if not k.startswith("stand ->")]
    lines = [
        f"# Data set card: `{root.name}`", "",
        (f"Made by `bm-collect` (schema {m['schema_version']}); env `{m['env']}`; expert `{cfg['expert']}`; "
         f"robot MJCF `{m['robot_model']['mjcf']}` sha256 `{m['robot_model']['sha256'][:16]}…`."), "",
        "| quantity | value |", "|---|---|",
        f"| simulated hours (usable) | {c['hours']:.2f} ({c['valid_hours']:.2f}) |",
        f"| episodes / shards | {nums['episodes']} / {c['shards']} |",
        f"| episodes ending in a fall | {nums['falls']} ({100 * nums['fall_rate']:.1f} %) |",
        f"| training windows (T = {m['state']['window']}) | {c['windows']} |",
        f"| state dim / bodies | {m['state']['dim']} / {len(m['state']['bodies'])} |",
        (f"| episode length, latency, OU noise | {cfg['episode_s']} s, {_latency(cfg)} ms, "
         f"θ {cfg['ou_theta']} σ {cfg['ou_sigma']} |"),
        f"| randomization + latency profile | {profile} |",
        f"| mean abs. velocity error vs command (vx, vy, yaw rate) | {nums['mean_abs_vel_error']} |",
        "", "## Command coverage", "", "![commands](commands.png)", "",
        "| kind | share of usable steps |", "|---|---|", *[f"| {k} | {100 * f:.1f} % |" for k, f in zip(KINDS, kinds)],
        "", "Command changes inside episodes: starts from a standstill, and the most frequent other changes:", "",
        "| change | count |", "|---|---|", *start_rows, *other_rows,
        "", "## Falls", "", "![falls](falls.png)", "", "| latency (ms) | episodes | fall rate |", "|---|---|---|",
        *[f"| {r[0]} | {r[1]} | {r[2]:.2f} |" for r in rows],
        "", "## Per-dimension statistics", "", "![states](state_stats.png)", "", "![actions](action_stats.png)", "",
    ]  # fmt: skip
    if tk:
        t = nums["takeover"]
        lines += ["## Expert take-overs from planner states", "",
                  f"{t['takeovers']} take-overs of `{cfg['takeover']['policy']}` (every {cfg['takeover']['every_s']} s, "
                  f"the expert continuing {cfg['takeover']['continue_s']} s, phase `{cfg['takeover']['phase']}`); "
                  f"the expert fell after {100 * t['expert_fall_rate_after_takeover']:.1f} % of them (those branches "
                  f"are not trained on); mean ‖a_planner − a_expert‖ at take-over {t['takeover_gap_mean']:.3f}; "
                  f"{100 * t['planner_fall_rate']:.0f} % of the take-overs come from planner episodes that fell.", ""]  # fmt: skip
    if d["skipped"]:
        lines += ["## Skipped shards", "", *[f"- `{k}`: {v}" for k, v in d["skipped"].items()], ""]
    (out / "card.md").write_text("\n".join(lines))
    (out / "card.json").write_text(json.dumps(nums, indent=1))
    return nums


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="data set folder (with manifest.json)")
    p.add_argument("--out", default=None, help="output folder (default ROOT/card)")
    a = p.parse_args(argv)
    root = Path(a.root)
    try:
        nums = write_card(root, Path(a.out) if a.out else root / "card")
    except (FileNotFoundError, ValueError) as e:
        print(f"bm-dataset-card: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(nums, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
