"""Named randomization profiles: domain randomization + action latency, in one place.

Every CLI (``bm-eval``, ``bm-eval-multi``, ``bm-collect``, ``bm-demo``) takes ``--profile NAME`` (default
``expert``) and the envs take ``gym.make(..., randomize="expert")``. Individual overrides (``--randomization
JSON``, ``--latency-ms LO HI``, ``--no-randomize``) apply on top of the profile and are recorded with it.

============  =============================================================================================
profile       what
============  =============================================================================================
``expert``    the ranges the Stage-1 locomotion expert was trained with (holosoma's G1 locomotion
              randomization): floor friction 0.5–1.25, 0–20 ms action latency (its 0–1 policy steps of
              control delay), kp/kd ×0.9–1.1, link masses ×0.9–1.2, pelvis mass −1…+3 kg, torso COM ±5 cm,
              a push every 5–10 s of up to ±1 m/s in x and y. The default: a planner is judged inside its
              teacher's experience.
``paper``     BeyondMimic's Stage-1 ranges (:class:`~bm_envs.wrappers.RandomizationConfig` defaults: friction
              0.3–1.2, pushes every 1–3 s, ...) + 0–100 ms action latency: a stress test, partly outside the
              expert's experience (the expert itself falls in most ``walk-perturb`` episodes there).
``off``       no randomization, no latency (a scenario's own pushes stay on).
============  =============================================================================================

Terms of holosoma's recipe that are not physics randomization are left out: its sensor noise (use
``obs_noise``), its randomized reset joint positions and its rough terrain (our floor is flat).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from bm_envs.wrappers.randomization import RandomizationConfig

DEFAULT_PROFILE = "expert"

_EXPERT_DR = RandomizationConfig(
    friction=(0.5, 1.25),
    mass_scale=(0.9, 1.2),
    torso_com_x=(-0.05, 0.05),
    torso_com_yz=(-0.05, 0.05),
    base_mass_add=(-1.0, 3.0),
    kp_scale=(0.9, 1.1),
    kd_scale=(0.9, 1.1),
    armature_scale=None,
    joint_damping=None,
    default_pos_offset=None,
    push_interval_s=(5.0, 10.0),
    push_lin_vel_xy=(-1.0, 1.0),
    push_lin_vel_z=None,
    push_ang_vel_rp=None,
    push_ang_vel_yaw=None,
)


@dataclass(frozen=True)
class Profile:
    """Domain randomization + action latency of an env. ``randomization`` ``None``: no randomization wrapper;
    ``latency_ms`` ``None``: no latency wrapper. ``overrides`` records what was changed on top of the named
    profile (``{"randomization": {...}, "latency_ms": [lo, hi], "randomize": False}``)."""

    name: str
    randomization: RandomizationConfig | None
    latency_ms: tuple[float, float] | None
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """``"expert"``, or ``"expert + friction 0.3–1.2, latency 0–50 ms"`` when overridden."""
        parts = []
        for k, v in (self.overrides.get("randomization") or {}).items():
            parts.append(f"{k} off" if v is None else f"{k} {v[0]:g}–{v[1]:g}")
        if self.overrides.get("randomize") is False:
            parts.append("no randomization")
        if "latency_ms" in self.overrides:
            lo, hi = self.overrides["latency_ms"]
            parts.append(f"latency {lo:g}–{hi:g} ms")
        return self.name + (f" + {', '.join(parts)}" if parts else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (``eval.json``, data set manifests)."""
        return {
            "name": self.name,
            "label": self.label,
            "randomization": None if self.randomization is None else _jsonable(self.randomization.to_dict()),
            "latency_ms": None if self.latency_ms is None else list(self.latency_ms),
            "overrides": _jsonable(self.overrides),
        }

    def env_kwargs(self) -> dict[str, Any]:
        """``gym.make`` kwargs of this profile (``randomize``, ``latency_ms``)."""
        return {"randomize": self.randomization if self.randomization is not None else False,
                "latency_ms": self.latency_ms}  # fmt: skip


def _jsonable(x):
    return json.loads(json.dumps(x, default=list))


PROFILES: dict[str, Profile] = {
    "expert": Profile("expert", _EXPERT_DR, (0.0, 20.0)),
    "paper": Profile("paper", RandomizationConfig(), (0.0, 100.0)),
    "off": Profile("off", None, None),
}


def _check_latency(latency_ms) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in latency_ms)
    except (TypeError, ValueError):
        raise ValueError(f"latency_ms must be a (lo, hi) pair in ms, got {latency_ms!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError(f"latency_ms must be (lo, hi) with 0 <= lo <= hi, got {latency_ms!r}")
    return lo, hi


def resolve_profile(name: str | Profile = DEFAULT_PROFILE, randomization: dict[str, Any] | None = None,
                    latency_ms=None, randomize: bool = True) -> Profile:  # fmt: skip
    """The named profile with overrides on top.

    ``randomization``: :class:`RandomizationConfig` fields replacing the profile's (``None`` values switch a term
    off; on the ``off`` profile they apply on top of the defaults, so ``off`` + ``{"friction": [0.5, 1]}``
    randomizes friction only); ``latency_ms``: (lo, hi) ms replacing the profile's; ``randomize=False``: no
    randomization (the latency stays). Unknown names and fields raise ``ValueError`` naming the known ones.
    """
    if isinstance(name, Profile):
        base = name
    elif name not in PROFILES:
        raise ValueError(f"unknown randomization profile {name!r}; known: {sorted(PROFILES)}")
    else:
        base = PROFILES[name]
    overrides: dict[str, Any] = dict(base.overrides)
    dr = base.randomization
    if randomization:
        if not isinstance(randomization, dict):
            raise ValueError(f"randomization overrides must be a dict of field -> [lo, hi] | null, got "
                             f"{randomization!r}")  # fmt: skip
        if not randomize:
            raise ValueError("randomization overrides given but randomization is switched off")
        start = dr if dr is not None else RandomizationConfig(**{f.name: None for f in dataclasses.fields(
            RandomizationConfig)})  # fmt: skip
        dr = RandomizationConfig.from_dict({**start.to_dict(), **randomization})
        overrides["randomization"] = {**overrides.get("randomization", {}), **_jsonable(randomization)}
    if not randomize:
        dr = None
        if base.randomization is not None:
            overrides["randomize"] = False
    lat = base.latency_ms
    if latency_ms is not None:
        lat = _check_latency(latency_ms)
        if lat != base.latency_ms:
            overrides["latency_ms"] = list(lat)
    return Profile(base.name, dr, lat, overrides)
