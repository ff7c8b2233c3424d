"""The package's shape, checked over its import graph (every relative import, at module level or inside a function):

* no module imports another module's underscore names (what another module needs is its public interface);
* the modules stand on floors: the graph has no cycle, so every import points down (the floors printed on
  failure are the longest-path layering of the graph);
* the linter is clean (ruff, configured in pyproject.toml), so CI runs it with the tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bayes_scaling"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def _imports():
    """(importer, imported module, names) for every relative import in the package."""
    out = []
    for path in sorted(PKG.rglob("*.py")):
        me = _module_name(path)
        package = me.split(".")[:-1] if path.name != "__init__.py" else me.split(".")
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            if node.module:
                target = ".".join([p for p in base if p != "__init__"] + node.module.split("."))
                out.append((me, target, [a.name for a in node.names]))
            else:  # from . import a, b: each name is a module
                for a in node.names:
                    out.append((me, ".".join([p for p in base if p != "__init__"] + [a.name]), []))
    return out


def _graph():
    modules = {_module_name(p) for p in PKG.rglob("*.py")}
    g: dict[str, set[str]] = {m: set() for m in modules}
    for me, target, _ in _imports():
        # a submodule import reaches its module (bayes_scaling.x.y -> x.y, else the first part)
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != me and target != "__init__" and me != "__init__":
            g[me].add(target)
    return g


def test_no_module_imports_another_modules_private_names():
    private = [f"{me} imports {name} from {target}" for me, target, names in _imports()
               for name in names if name.startswith("_") and not name.startswith("__")]
    assert not private, "underscore names imported across modules:\n" + "\n".join(private)


def test_every_import_points_down():
    g = _graph()
    floor: dict[str, int] = {}
    visiting: list[str] = []

    def depth(m):
        if m in floor:
            return floor[m]
        if m in visiting:
            cycle = visiting[visiting.index(m):] + [m]
            raise AssertionError("import cycle (an upward import): " + " -> ".join(cycle))
        visiting.append(m)
        floor[m] = 1 + max((depth(t) for t in g[m]), default=-1)
        visiting.pop()
        return floor[m]

    for m in sorted(g):
        depth(m)
    assert max(floor.values()) >= 1


def test_ruff_is_clean():
    # ruff comes with the test extra (pip install '.[test]'); a missing linter fails here rather than skipping
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-1000:]


def test_no_module_is_hidden_by_a_function():
    # ``bayes_scaling.isoflop`` is the function a user calls; a module of that name would be reachable only by
    # import statements. Every module's name, where the package has such an attribute, must be the module.
    import importlib
    import types

    import bayes_scaling

    for path in sorted(PKG.rglob("*.py")):
        name = _module_name(path)
        if name == "__init__":
            continue
        parent_name, _, leaf = ("bayes_scaling." + name).rpartition(".")
        parent = importlib.import_module(parent_name)
        importlib.import_module("bayes_scaling." + name)
        assert isinstance(getattr(parent, leaf), types.ModuleType), f"{parent_name}.{leaf} is not the module {name}"
    assert callable(bayes_scaling.isoflop) and not isinstance(bayes_scaling.isoflop, types.ModuleType)


def test_modules_and_functions_stay_small():
    # small modules named for what they hold; no function so long that it hides several jobs
    long_modules = [f"{p.relative_to(ROOT)}: {n} lines" for p in sorted(PKG.rglob("*.py"))
                    if (n := len(p.read_text().splitlines())) > 500]
    long_functions = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long_functions.append(f"{path.relative_to(ROOT)}: {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long_modules, "modules over 500 lines: " + "; ".join(long_modules)
    assert not long_functions, "functions over 80 lines: " + "; ".join(long_functions)
