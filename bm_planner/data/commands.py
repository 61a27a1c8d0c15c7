"""Velocity-command schedules for data collection: which motions the Stage-2 data set covers.

An episode's schedule is piecewise constant: segments of U(``segment_s``) seconds, each of one *kind* drawn with
the probabilities below, its values drawn uniformly from the ranges (m/s, rad/s; ``±`` = random sign). Consecutive
segments give stops/starts (any kind ↔ ``stand``), speed changes (same kind, new speed) and direction changes.

===========  ===========  ==========================================================================
kind         probability  command (vx, vy, yaw_rate), heading frame
===========  ===========  ==========================================================================
``stand``    0.12         (0, 0, 0)
``forward``  0.20         vx ∈ [0.2, 1.0]
``backward`` 0.10         vx ∈ [-0.6, -0.15]
``lateral``  0.10         vy ∈ ±[0.15, 0.5], vx ∈ [-0.1, 0.1]
``turn``     0.12         yaw_rate ∈ ±[0.3, 1.0] (turning in place)
``curve``    0.18         vx ∈ [0.2, 0.8], yaw_rate ∈ ±[0.2, 0.8] (curved paths)
``omni``     0.18         vx ∈ [-0.6, 1.0], vy ∈ [-0.4, 0.4], yaw_rate ∈ [-0.8, 0.8]
===========  ===========  ==========================================================================

The expert's own command ranges are ±1 m/s and ±1 rad/s (ONNX metadata); it reaches ≈ 0.7 m/s at a 1 m/s
command, so the data set's speeds top out there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from bm_envs.config_dict import from_dict

KINDS = ("stand", "forward", "backward", "lateral", "turn", "curve", "omni")
Range = tuple[float, float]


@dataclass(frozen=True)
class CommandConfig:
    """Distribution of command schedules (see the module docstring). Probabilities are normalized."""

    segment_s: Range = (1.5, 4.0)
    probs: dict[str, float] = field(
        default_factory=lambda: {"stand": 0.12, "forward": 0.20, "backward": 0.10, "lateral": 0.10, "turn": 0.12,
                                 "curve": 0.18, "omni": 0.18}
    )  # fmt: skip
    forward_vx: Range = (0.2, 1.0)
    backward_vx: Range = (-0.6, -0.15)
    lateral_vy: Range = (0.15, 0.5)
    lateral_vx: Range = (-0.1, 0.1)
    turn_yaw_rate: Range = (0.3, 1.0)
    curve_vx: Range = (0.2, 0.8)
    curve_yaw_rate: Range = (0.2, 0.8)
    omni_vx: Range = (-0.6, 1.0)
    omni_vy: Range = (-0.4, 0.4)
    omni_yaw_rate: Range = (-0.8, 0.8)

    def __post_init__(self):
        for name, v in asdict(self).items():
            if name == "probs":
                continue
            bound = 60.0 if name == "segment_s" else 2.0
            if len(v) != 2 or not all(np.isfinite(v)) or v[0] > v[1] or max(abs(v[0]), abs(v[1])) > bound:
                raise ValueError(f"CommandConfig.{name} must be (lo, hi), lo <= hi, |.| <= {bound}, got {v!r}")
        if self.segment_s[0] <= 0:
            raise ValueError(f"CommandConfig.segment_s must be positive, got {self.segment_s!r}")
        unknown = set(self.probs) - set(KINDS)
        p = np.array([self.probs.get(k, 0.0) for k in KINDS], dtype=float)
        if unknown or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise ValueError(f"CommandConfig.probs must map kinds {KINDS} to non-negative weights, got {self.probs!r}")

    @classmethod
    def from_dict(cls, d: dict) -> CommandConfig:
        return from_dict(cls, d)

    def to_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in asdict(self).items()}

    def kind_probs(self) -> np.ndarray:
        p = np.array([self.probs.get(k, 0.0) for k in KINDS], dtype=float)
        return p / p.sum()


def sample_command(cfg: CommandConfig, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One command (vx m/s, vy m/s, yaw_rate rad/s) of the given kind."""
    u = lambda r: float(rng.uniform(*r))
    sign = lambda: float(rng.choice([-1.0, 1.0]))
    if kind == "stand":
        return np.zeros(3)
    if kind == "forward":
        return np.array([u(cfg.forward_vx), 0.0, 0.0])
    if kind == "backward":
        return np.array([u(cfg.backward_vx), 0.0, 0.0])
    if kind == "lateral":
        return np.array([u(cfg.lateral_vx), sign() * u(cfg.lateral_vy), 0.0])
    if kind == "turn":
        return np.array([0.0, 0.0, sign() * u(cfg.turn_yaw_rate)])
    if kind == "curve":
        return np.array([u(cfg.curve_vx), 0.0, sign() * u(cfg.curve_yaw_rate)])
    if kind == "omni":
        return np.array([u(cfg.omni_vx), u(cfg.omni_vy), u(cfg.omni_yaw_rate)])
    raise ValueError(f"unknown command kind {kind!r}; known: {KINDS}")


def sample_schedule(cfg: CommandConfig, duration_s: float, rng: np.random.Generator) -> list[dict]:
    """Segments ``[{"t", "vx", "vy", "yaw_rate", "kind"}, ...]`` covering ``[0, duration_s)``, in time order."""
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be positive, got {duration_s!r}")
    p = cfg.kind_probs()
    segs, t = [], 0.0
    while t < duration_s:
        kind = KINDS[int(rng.choice(len(KINDS), p=p))]
        vx, vy, wz = sample_command(cfg, kind, rng)
        segs.append({"t": round(t, 6), "vx": vx, "vy": vy, "yaw_rate": wz, "kind": kind})
        t += float(rng.uniform(*cfg.segment_s))
    return segs


def kind_at(segments: list[dict], times: np.ndarray) -> np.ndarray:
    """Index into :data:`KINDS` of the segment in force at each time ``(n,)`` (s) → ``(n,)`` uint8."""
    starts = np.array([s["t"] for s in segments])
    kinds = np.array([KINDS.index(s["kind"]) for s in segments], dtype=np.uint8)
    return kinds[np.searchsorted(starts, np.asarray(times) + 1e-9, side="right") - 1]
