"""The package's folders are its architecture: each layer imports only from itself and the layers below.

    foundation (steer.errors, steer.io, steer.version)
      < steer.maze < steer.net < steer.analysis < steer.report < steer.run < steer.studies
      < the top: steer.batch, steer.explore, steer (the public API), cli

Every `import` and `from ... import` in the package is read from the source (module level and inside
functions alike), so an upward import fails here before it becomes a cycle. docs/layout.md explains the cut.
"""

from __future__ import annotations

import ast
from pathlib import Path

STEER = Path(__file__).resolve().parent.parent / "steer"
LAYERS = ["foundation", "maze", "net", "analysis", "report", "run", "studies", "top"]
FOUNDATION = {"steer.errors", "steer.io", "steer.version"}
TOP_MODULES = {"steer", "steer.batch"}


def module_name(path: Path) -> str:
    parts = path.relative_to(STEER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    if module in FOUNDATION:
        return "foundation"
    if module in TOP_MODULES or module.startswith(("steer.explore", "steer.batch.")):
        return "top"
    second = module.split(".")[1]
    assert second in LAYERS, f"{module} is in no layer: add its folder to tests/test_layers.py and docs/layout.md"
    return second


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "steer"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "steer":
            assert node.module is not None
            # `from steer.net import vfield` imports the module steer.net.vfield; `from steer import X` the API
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if (STEER.parent / (sub.replace(".", "/") + ".py")).exists() else node.module)
    return found


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(STEER.rglob("*.py")):
        here = module_name(path)
        for target in sorted(imports_of(path)):
            if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(here)):
                problems.append(f"{here} ({layer_of(here)}) imports {target} ({layer_of(target)})")
    return problems


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    assert upward_imports() == []


def test_no_two_modules_import_each_other_even_within_a_layer() -> None:
    # A cycle inside a layer (the runner and the Ray executor once imported each other) hides which module is
    # the lower one; module-level and in-function imports both count.
    graph = {module_name(p): imports_of(p) for p in STEER.rglob("*.py")}
    cycles = []
    for a, targets in graph.items():
        for b in targets:
            if a != b and a in graph.get(b, set()) and a < b and not (a == "steer" or b == "steer"):
                cycles.append(f"{a} <-> {b}")
    assert cycles == []


def test_every_subpackage_says_what_lives_there_and_what_it_may_import() -> None:
    for init in sorted(STEER.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "Imports" in doc or "import" in doc, f"{init} does not say what it may import"


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch) -> None:
    # a copy of the tree with one analysis module importing the runner must fail the check
    import shutil

    copy = tmp_path / "steer"
    shutil.copytree(STEER, copy, ignore=shutil.ignore_patterns("__pycache__", "templates"))
    metrics = copy / "analysis" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\nfrom steer.run.runner import run_study  # noqa\n")
    monkeypatch.setattr(__import__(__name__), "STEER", copy)
    assert upward_imports() == ["steer.analysis.metrics (analysis) imports steer.run.runner (run)"]
