"""Reporting for :mod:`bm_apps.evaluate` and :mod:`bm_envs.bench`: outcome summaries, markdown, atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bm_envs.atomic import atomic_path, write_text
from bm_envs.rollout import FALL_PHASES

write_atomic = write_text  # the one atomic writer (bm_envs.atomic)


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
    out["tracking_error_planar_mean"] = _mean([t.get("tracking_error_planar") for t in trials])
    out["tracking_error_yaw_mean"] = _mean([t.get("tracking_error_yaw") for t in trials])
    segs = [s for t in trials for s in (t.get("segments") or []) if s["scored"]]
    if segs:  # per commanded segment (same command in every trial of a scenario schedule): pass rate and errors
        by_cmd: dict[str, dict[str, Any]] = {}
        for seg in segs:
            key = "(" + ", ".join(f"{c:g}" for c in seg["command"]) + ")"
            b = by_cmd.setdefault(key, {"passed": 0, "scored": 0, "planar": [], "yaw": []})
            b["passed"] += bool(seg["passed"])
            b["scored"] += 1
            if seg["planar_tracking_error"] is not None:
                b["planar"].append(seg["planar_tracking_error"])
            if seg["yaw_tracking_error"] is not None:
                b["yaw"].append(seg["yaw_tracking_error"])
        out["segments"] = {k: {"passed": b["passed"], "scored": b["scored"], "planar_tracking_error": _mean(b["planar"]),
                               "yaw_tracking_error": _mean(b["yaw"])} for k, b in by_cmd.items()}  # fmt: skip
    falls = [t for t in trials if t["fell"]]
    out["fall_phase"] = {ph: sum(t.get("fall_phase") == ph for t in falls) for ph in FALL_PHASES} if falls else {}
    out["fall_time_s_median"] = float(np.median([t["fall_time_s"] for t in falls])) if falls and all(
        t.get("fall_time_s") is not None for t in falls) else None  # fmt: skip
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
    if plan:  # falls the fallback came before, how long before (s), and what fired it first
        fo = [t for t in falls if t.get("ood_time_s") is not None and t.get("fall_time_s") is not None]
        out["falls_after_ood"] = len(fo)
        out["ood_lead_s_median"] = float(np.median([t["fall_time_s"] - t["ood_time_s"] for t in fo])) if fo else None
        reasons = [t["ood_reason"] for t in trials if t.get("ood_reason")]
        out["ood_reasons"] = {r: reasons.count(r) for r in sorted(set(reasons))}
        for name, group in (("fallen", falls), ("not_fallen", [t for t in trials if not t["fell"]])):
            zs = [t["history_max_z"] for t in group if t.get("history_max_z") is not None]
            out[f"history_max_z_median_{name}"] = float(np.median(zs)) if zs else None
    if any("handovers" in t for t in trials):  # safety supervisor
        out["handovers_per_episode"] = _mean([t["handovers"] for t in trials])
        out["expert_time_frac"] = _mean([t["expert_time_frac"] for t in trials])
    if any("starved_steps" in t for t in trials):  # runtime: steps past a plan's end, steps held waiting
        out["starved_steps_mean"] = _mean([t["starved_steps"] for t in trials])
        out["stalled_steps_mean"] = _mean([t["stalled_steps"] for t in trials])
    out["sim_s_per_wall_s"] = sum(t["duration_s"] for t in trials) / max(sum(t["wall_s"] for t in trials), 1e-9)
    return out


def fall_histogram(trials: list[dict[str, Any]], path: str | Path, title: str, bin_s: float = 1.0) -> None:
    """PNG: histogram of the fall times (s), stacked by the episode phase each fall came in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    falls = [t for t in trials if t.get("fell") and t.get("fall_time_s") is not None]
    top = max([t["duration_s"] for t in trials] + [bin_s])
    bins = np.arange(0.0, top + bin_s, bin_s)
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    data = [[t["fall_time_s"] for t in falls if t.get("fall_phase") == ph] for ph in FALL_PHASES]
    ax.hist(data, bins=bins, stacked=True, label=[f"{ph} ({len(d)})" for ph, d in zip(FALL_PHASES, data)])
    ax.set_xlabel("fall time (s)")
    ax.set_ylabel("trials")
    ax.set_title(f"{title}\n{len(falls)} falls in {len(trials)} trials", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def markdown_summary(name: str, cfg, s: dict[str, Any]) -> str:
    """The summary ``s`` of an evaluation of ``cfg`` (an :class:`~bm_apps.evaluate.EvalConfig`) as markdown."""
    prof = cfg.resolved_profile()
    lat = "off" if prof.latency_ms is None else f"{prof.latency_ms[0]:g}–{prof.latency_ms[1]:g} ms"
    law = f"; pursuit overrides {json.dumps(cfg.pursuit)}" if cfg.pursuit else ""
    dr = f"profile `{prof.label}`"
    by_lat = ", ".join(f"{k}: {v[0]}/{v[1]}" for k, v in s["fall_rate_by_latency_ms"].items())
    by_fr = ", ".join(f"{k}: {v[0]}/{v[1]}" for k, v in s.get("fall_rate_by_friction", {}).items())
    verr = (
        ""
        if s["vel_error_mean"] is None
        else (f"Mean velocity error of the trials that did not fall: {_fmt(s['vel_error_mean_not_fallen'])}.\n")
    )
    rate = lambda k: f"{100 * s[k]:.1f} % [{100 * s[k + '_ci95'][0]:.0f}, {100 * s[k + '_ci95'][1]:.0f}]"  # noqa: E731
    return (
        f"{_policy_name(cfg)} on `{name}` ({cfg.env_id}); {dr} (action latency {lat}); "
        f"seeds {cfg.seed}–{cfg.seed + cfg.trials - 1}{law}. Rates with 95 % Wilson intervals.\n\n"
        "| suite | trials | success | fall | collision | mean vel error | mean time to goal (s) | min clearance (m) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {name} | {s['trials']} | {rate('success_rate')} | {rate('fall_rate')} | {rate('collision_rate')} | "
        f"{_fmt(s['vel_error_mean'])} | {_fmt(s['time_to_goal_s_mean'], '.1f')} | {_fmt(s['min_clearance_m_min'])} |\n"
        f"\n{verr}{_segment_lines(s)}{_fall_lines(s)}Falls by action latency (ms): {by_lat or '–'}\n"
        + (f"Falls by floor friction: {by_fr}\n" if by_fr else "")
        + (
            f"Mean plan latency: {_fmt(s['plan_time_ms_mean'], '.1f')} ms; out-of-distribution fallbacks in "
            f"{100 * s['ood_rate']:.0f} % of trials{_ood_detail(s)}.\n"
            if s.get("plan_time_ms_mean") is not None
            else ""
        )
    )


def _ood_detail(s: dict[str, Any]) -> str:
    """'' or '; N of the falls came after one (median lead x s); first trigger: …' (+ the history's largest |z|
    per episode, median over falls / the rest) for the summary line."""
    zf, zn = s.get("history_max_z_median_fallen"), s.get("history_max_z_median_not_fallen")
    z = "" if zf is None and zn is None else f"; largest history |z| per episode, median: {_fmt(zf, '.1f')} " \
        f"(falls) / {_fmt(zn, '.1f')} (no fall)"  # fmt: skip
    if not s.get("ood_reasons"):
        return z
    lead = "" if s.get("ood_lead_s_median") is None else f", median {s['ood_lead_s_median']:.2f} s before the fall"
    why = ", ".join(f"{k} {v}" for k, v in s["ood_reasons"].items())
    return f"; {s['falls_after_ood']} of the falls came after one{lead}; first trigger: {why}{z}"


def _segment_lines(s: dict[str, Any]) -> str:
    """Markdown lines: tracking errors and the per-command segment pass rates."""
    if not s.get("segments"):
        return ""
    rows = "".join(f"| {k} | {v['passed']}/{v['scored']} | {_pct(v['planar_tracking_error'])} | "
                   f"{_pct(v['yaw_tracking_error'])} |\n" for k, v in s["segments"].items())  # fmt: skip
    return (f"Tracking error (mean over segments that command it): planar {_pct(s['tracking_error_planar_mean'])}, "
            f"yaw rate {_pct(s['tracking_error_yaw_mean'])}.\n\n| command (vx, vy, yaw rate) | segments followed | "
            f"planar tracking error | yaw-rate tracking error |\n|---|---:|---:|---:|\n{rows}\n")  # fmt: skip


def _fall_lines(s: dict[str, Any]) -> str:
    if not s.get("fall_phase"):
        return ""
    parts = ", ".join(f"{k} {v}" for k, v in s["fall_phase"].items() if v)
    return f"Falls by episode phase: {parts}; median fall time {_fmt(s['fall_time_s_median'], '.1f')} s.\n"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


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
        rt = config.get("runtime", "direct")
        lat = config.get("inference_latency_ms")
        extra = ""
        if rt != "direct":
            extra += f", {rt} " + (
                f"{lat[0]:g}–{lat[1]:g} ms" if lat and lat[0] != lat[1] else f"{(lat or [0])[0]:g} ms"
            )
            if config.get("plans_in_flight", 1) > 1:
                extra += f" ({config['plans_in_flight']} plans in flight)"
        if config.get("supervisor") is not None:
            extra += ", supervised"
        return (
            f"diffusion `{Path(path).name}` "
            + (f"guided (scale {scale:g})" if scale > 0 else "unguided")
            + (", warm start" if agent.get("warm_start") else "")
            + ("" if backend == "torch" else f", {backend}")
            + extra
        )
    return f"{kind} `{Path(path).name}`"


def _dr_label(config: dict[str, Any]) -> str:
    """The profile label (``expert``, ``paper + friction 0.5–1.25``, ...); results written before profiles existed:
    "legacy: off", "legacy: on" (paper ranges) or "legacy: on (field lo–hi, ...)"."""
    if "profile_resolved" in config:
        return config["profile_resolved"]["label"]
    return "legacy: " + _legacy_dr_label(config)


def _legacy_dr_label(config: dict[str, Any]) -> str:
    if not config.get("randomize"):
        return "off"
    over = config.get("randomization") or {}
    parts = [f"{k} {v[0]:g}–{v[1]:g}" if isinstance(v, (list, tuple)) else f"{k} off" for k, v in over.items()]
    return "on" + (f" ({', '.join(parts)})" if parts else "")


def combined_table(results: list[dict[str, Any]]) -> str:
    """One markdown table over several ``eval.json`` results (rows: suite × policy)."""
    if not results:
        raise ValueError("no evaluation results given")
    head = ("| suite | policy | profile | latency (ms) | trials | success | fall | collision | vel error | "
            "tracking error planar / yaw | time to goal (s) | min clearance (m) | plan (ms) |\n"
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")  # fmt: skip
    rows = []
    for r in sorted(results, key=lambda r: (r["suite"], _policy_label(r["config"]))):
        c, s = r["config"], r["summary"]
        lat = c["profile_resolved"]["latency_ms"] if "profile_resolved" in c else c.get("latency_ms")
        trk = (f"{_pct(s.get('tracking_error_planar_mean'))} / {_pct(s.get('tracking_error_yaw_mean'))}"
               if s.get("tracking_error_planar_mean") is not None or s.get("tracking_error_yaw_mean") is not None
               else "–")  # fmt: skip
        rows.append(
            f"| {r['suite']} | {_policy_label(c)} | {_dr_label(c)} | "
            f"{'off' if lat is None else f'{lat[0]:g}–{lat[1]:g}'} | {s['trials']} | "
            f"{100 * s['success_rate']:.0f} % | {100 * s['fall_rate']:.0f} % | {100 * s['collision_rate']:.0f} % | "
            f"{_fmt(s['vel_error_mean'], '.2f')} | {trk} | {_fmt(s['time_to_goal_s_mean'], '.1f')} | "
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
