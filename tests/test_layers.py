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


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (every import statement, lazy ones too). Importing ``p.q.m`` from
    outside package ``p.q`` first runs ``p/q/__init__.py``: that edge counts too (from inside, the package is
    already being imported)."""
    mods = {}
    for package in UPPER:
        for f in (ROOT / package).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph = {}
    for name, f in mods.items():
        out = set()
        for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name in mods)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.update({node.module} & set(mods))
                out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods)
        for m in list(out):  # the packages a module outside them enters through their __init__
            parts = m.split(".")
            out.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in mods
                       and not name.startswith(p + ".") and name != p)  # fmt: skip
        graph[name] = out - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (lazy imports count):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_entering_a_package_from_outside_counts_its_init():
    graph = import_graph()
    # backends/onnxruntime.py imports bm_planner.export.onnx_format, which first runs bm_planner/export/__init__.py
    assert "bm_planner.export" in graph["bm_planner.backends.onnxruntime"]
    # inside a package its own __init__ is already running: no edge
    assert "bm_planner.model" not in graph["bm_planner.model.diffusion"]
