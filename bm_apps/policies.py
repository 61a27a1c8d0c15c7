"""Policy strings: ``kind`` or ``kind:path``, parsed in one place for every application."""

from __future__ import annotations

#: kind -> whether it takes a path
POLICY_KINDS = {"expert": False, "expert-blind": False, "diffusion": True, "bc": True, "sb3": True}


def parse_policy(spec: str, kinds=("expert", "diffusion", "bc", "sb3")) -> tuple[str, str]:
    """``"diffusion:assets/planner-small-v2"`` → ``("diffusion", "assets/planner-small-v2")``; ``"expert"`` →
    ``("expert", "")``. Raises ``ValueError`` naming the accepted forms when ``spec`` is not one of ``kinds``."""
    kind, _, path = str(spec).partition(":")
    forms = " | ".join(f"{k}:PATH" if POLICY_KINDS[k] else k for k in kinds)
    if kind not in kinds or POLICY_KINDS[kind] != bool(path):
        raise ValueError(f"policy must be one of {forms}, got {spec!r}")
    return kind, path
