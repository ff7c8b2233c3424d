"""The README's Python examples, as written.

Every block compiles; every name it imports from the package exists; every call of a package function in it
binds to that function's signature (the keyword names it uses exist). The blocks that need only the bundled
data (the point fit, the posterior, a user-declared law) are executed as they stand, in one namespace, in a
temporary folder (they write post.nc).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _package_names(tree) -> dict[str, object]:
    """Names a block binds from the package: ``from bayes_scaling[.mod] import x`` and ``import bayes_scaling as bs``."""
    out: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bayes_scaling":
            mod = importlib.import_module(node.module)
            for a in node.names:
                assert hasattr(mod, a.name) or importlib.util.find_spec(f"{node.module}.{a.name}"), \
                    f"README imports {a.name} from {node.module}, which has no such name"
                out[a.asname or a.name] = getattr(mod, a.name, None) or importlib.import_module(f"{node.module}.{a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "bayes_scaling":
                    out[a.asname or a.name] = importlib.import_module(a.name)
    return out


def test_blocks_compile_import_and_bind():
    blocks = _blocks()
    assert len(blocks) >= 6
    names: dict[str, object] = {}
    for i, code in enumerate(blocks):
        tree = ast.parse(code)  # a syntax error fails here
        names.update(_package_names(tree))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            target = None
            if isinstance(f, ast.Name) and f.id in names:
                target = names[f.id]
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in names:
                owner = names[f.value.id]
                if inspect.ismodule(owner):
                    assert hasattr(owner, f.attr), f"block {i + 1}: {f.value.id}.{f.attr} does not exist"
                    target = getattr(owner, f.attr)
            if target is None or not callable(target) or inspect.isclass(target) and target.__module__.startswith("numpyro"):
                continue
            args = [None] * len(node.args)
            kwargs = {k.arg: None for k in node.keywords if k.arg}
            try:
                inspect.signature(target).bind_partial(*args, **kwargs)
            except TypeError as err:
                pytest.fail(f"README block {i + 1}: {ast.unparse(node)[:80]} does not fit {target.__name__}: {err}")


def test_bundled_data_blocks_run_as_written(tmp_path, monkeypatch):
    # the point fit, the posterior and a user-declared law: they need nothing beyond the package
    blocks = _blocks()
    markers = ('fit = fit_point("chinchilla", runs)', 'post.save("post.nc")', "my_law = Law(")
    runnable = [next(b for b in blocks if m in b) for m in markers]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for code in runnable:
        exec(compile(code, str(README), "exec"), namespace)
    assert namespace["fit"].converged and (tmp_path / "post.nc").is_file()
    assert namespace["post"].num_chains == 4
