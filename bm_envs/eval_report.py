"""Reporting for :mod:`bm_envs.evaluate` and :mod:`bm_envs.bench`: outcome summaries, markdown, atomic writes."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a rate k/n."""
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def _rate_by_bin(trials: list[dict[str, Any]], key: str, flag: str, width: float) -> dict[str, list]:
    """``{"[lo, hi)": [count of flag, trials]}`` over bins of ``width`` of ``trial[key]``."""
    bins: dict[float, list[int]] = {}
    for t in trials:
        if t.get(key) is None:
            continue
        lo = math.floor(t[key] / width + 1e-9) * width
        b = bins.setdefault(round(lo, 6), [0, 0])
        b[0] += bool(t[flag])
        b[1] += 1
    return {f"[{lo:g}, {lo + width:g})": v for lo, v in sorted(bins.items())}


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate per-trial outcomes: rates (with 95 % Wilson intervals) and means."""
    n = len(trials)
    out: dict[str, Any] = {"trials": n}
    for key, name in (("success", "success_rate"), ("fell", "fall_rate"), ("collided", "collision_rate")):
        k = sum(bool(t[key]) for t in trials)
        out[name] = k / n
        out[f"{name}_ci95"] = _wilson(k, n)
    out["vel_error_mean"] = _mean([t["vel_error_mean"] for t in trials])
    out["vel_error_mean_not_fallen"] = _mean([t["vel_error_mean"] for t in trials if not t["fell"]])
    out["time_to_goal_s_mean"] = _mean([t["time_to_goal_s"] for t in trials if t["success"]])
    clear = [t["min_clearance_m"] for t in trials if t["min_clearance_m"] is not None]
    out["min_clearance_m_min"] = float(min(clear)) if clear else None
    out["min_clearance_m_mean"] = _mean(clear)
    out["fall_rate_by_latency_ms"] = _rate_by_bin(trials, "action_delay_ms", "fell", 20.0)
    if any("friction" in t for t in trials):
        out["fall_rate_by_friction"] = _rate_by_bin(trials, "friction", "fell", 0.1)
    plan = [t["plan_time_ms"] for t in trials if t.get("plan_time_ms") is not None]
    out["plan_time_ms_mean"] = _mean(plan)
    out["ood_rate"] = sum(bool(t.get("ood")) for t in trials) / n if plan else None
    out["sim_s_per_wall_s"] = sum(t["duration_s"] for t in trials) / max(sum(t["wall_s"] for t in trials), 1e-9)
    return out


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def markdown_summary(name: str, cfg, s: dict[str, Any]) -> str:
    """The summary ``s`` of an evaluation of ``cfg`` (an :class:`~bm_envs.evaluate.EvalConfig`) as markdown."""
    lat = "off" if cfg.latency_ms is None else f"{cfg.latency_ms[0]:g}–{cfg.latency_ms[1]:g} ms"
    law = f"; pursuit overrides {json.dumps(cfg.pursuit)}" if cfg.pursuit else ""
    dr = "off" if not cfg.randomize else "on" + (f" (overrides {json.dumps(cfg.randomization)})" if cfg.randomization
                                                  else "")  # fmt: skip
    by_lat = ", ".join(f"{k}: {v[0]}/{v[1]}" for k, v in s["fall_rate_by_latency_ms"].items())
    by_fr = ", ".join(f"{k}: {v[0]}/{v[1]}" for k, v in s.get("fall_rate_by_friction", {}).items())
    verr = "" if s["vel_error_mean"] is None else (
        f"Mean velocity error of the trials that did not fall: {_fmt(s['vel_error_mean_not_fallen'])}.\n")
    rate = lambda k: f"{100 * s[k]:.1f} % [{100 * s[k + '_ci95'][0]:.0f}, {100 * s[k + '_ci95'][1]:.0f}]"  # noqa: E731
    return (
        f"{_policy_name(cfg)} on `{name}` ({cfg.env_id}); randomization {dr}, latency {lat}; "
        f"seeds {cfg.seed}–{cfg.seed + cfg.trials - 1}{law}. Rates with 95 % Wilson intervals.\n\n"
        "| suite | trials | success | fall | collision | mean vel error | mean time to goal (s) | min clearance (m) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {name} | {s['trials']} | {rate('success_rate')} | {rate('fall_rate')} | {rate('collision_rate')} | "
        f"{_fmt(s['vel_error_mean'])} | {_fmt(s['time_to_goal_s_mean'], '.1f')} | {_fmt(s['min_clearance_m_min'])} |\n"
        f"\n{verr}Falls by action latency (ms): {by_lat or '–'}\n"
        + (f"Falls by floor friction: {by_fr}\n" if by_fr else "")
        + (f"Mean plan latency: {_fmt(s['plan_time_ms_mean'], '.1f')} ms; out-of-distribution fallbacks in "
           f"{100 * s['ood_rate']:.0f} % of trials.\n" if s.get("plan_time_ms_mean") is not None else "")
    )


def _policy_name(cfg) -> str:
    policy = getattr(cfg, "policy", "expert")
    if policy == "expert":
        return f"Expert `{cfg.expert}`"
    agent = f" (agent {json.dumps(cfg.agent)})" if getattr(cfg, "agent", None) else ""
    return f"Policy `{policy}`{agent}"


def _policy_label(config: dict[str, Any]) -> str:
    """Short policy label of an ``eval.json`` config: expert / diffusion (guided or unguided) / bc / sb3."""
    policy = config.get("policy", "expert")
    if policy == "expert":
        return f"expert {config.get('expert', '')} + command law".strip()
    kind, _, path = policy.partition(":")
    agent = config.get("agent_effective") or config.get("agent") or {}  # older files: the --agent overrides only
    if kind == "diffusion":
        scale = float(agent.get("guidance_scale", 0.0))
        backend = config.get("backend", "torch")
        return (f"diffusion `{Path(path).name}` " + (f"guided (scale {scale:g})" if scale > 0 else "unguided")
                + (", warm start" if agent.get("warm_start") else "") + ("" if backend == "torch" else f", {backend}"))
    return f"{kind} `{Path(path).name}`"


def _dr_label(config: dict[str, Any]) -> str:
    """"off", "on" (paper ranges) or "on (field lo–hi, ...)" for overridden ranges."""
    if not config.get("randomize"):
        return "off"
    over = config.get("randomization") or {}
    parts = [f"{k} {v[0]:g}–{v[1]:g}" if isinstance(v, (list, tuple)) else f"{k} off" for k, v in over.items()]
    return "on" + (f" ({', '.join(parts)})" if parts else "")


def combined_table(results: list[dict[str, Any]]) -> str:
    """One markdown table over several ``eval.json`` results (rows: suite × policy)."""
    if not results:
        raise ValueError("no evaluation results given")
    head = ("| suite | policy | DR | latency (ms) | trials | success | fall | collision | vel error | "
            "time to goal (s) | min clearance (m) | plan (ms) |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")  # fmt: skip
    rows = []
    for r in sorted(results, key=lambda r: (r["suite"], _policy_label(r["config"]))):
        c, s = r["config"], r["summary"]
        lat = c.get("latency_ms")
        rows.append(
            f"| {r['suite']} | {_policy_label(c)} | {_dr_label(c)} | "
            f"{'off' if lat is None else f'{lat[0]:g}–{lat[1]:g}'} | {s['trials']} | "
            f"{100 * s['success_rate']:.0f} % | {100 * s['fall_rate']:.0f} % | {100 * s['collision_rate']:.0f} % | "
            f"{_fmt(s['vel_error_mean'], '.2f')} | {_fmt(s['time_to_goal_s_mean'], '.1f')} | "
            f"{_fmt(s['min_clearance_m_min'], '.2f')} | {_fmt(s.get('plan_time_ms_mean'), '.1f')} |"
        )
    return head + "\n".join(rows) + "\n"


def table_main(argv: list[str] | None = None) -> int:
    """``bm-eval-table EVAL_JSON... [--out table.md]``: one markdown table from several ``bm-eval`` runs."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="bm-eval-table", description=table_main.__doc__)
    p.add_argument("files", nargs="+", help="eval.json files (or folders holding one)")
    p.add_argument("--out", default=None, help="write the table here too (markdown)")
    a = p.parse_args(argv)
    results = []
    for f in a.files:
        path = Path(f) / "eval.json" if Path(f).is_dir() else Path(f)
        try:
            r = json.loads(path.read_text())
            r["summary"], r["config"], r["suite"]  # noqa: B018  (shape check)
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            print(f"bm-eval-table: error: {path}: not a bm-eval result ({e})", file=sys.stderr)
            return 2
        results.append(r)
    table = combined_table(results)
    if a.out:
        write_atomic(a.out, table)
    print(table, end="")
    return 0
