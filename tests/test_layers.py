"""Layering: ``bm_envs`` ← ``bm_planner`` ← ``bm_apps``. A lower package never imports an upper one, not even
lazily inside a function (read from the source with ``ast``, so every import statement counts)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPPER = {"bm_envs": ("bm_planner", "bm_apps"), "bm_planner": ("bm_apps",), "bm_apps": ()}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package", sorted(UPPER))
def test_no_import_of_an_upper_layer(package):
    bad = []
    for f in sorted((ROOT / package).rglob("*.py")):
        for mod in imported_modules(f):
            if mod.split(".")[0] in UPPER[package]:
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from bm_planner.agent import DiffusionAgent\n    import bm_apps.evaluate\n")
    assert imported_modules(f) == {"bm_planner.agent", "bm_apps.evaluate"}
