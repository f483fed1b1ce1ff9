"""The house plan, read from the code's own imports (parsed with `ast`, nothing imported).

Packages stand in layers; a module may import modules of its own package and of the packages
below it, never above (see each package's `__init__` docstring and the README's Architecture
section). Imports inside functions count: a loop hidden in a function is still a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"

# Bottom to top. Packages on one layer do not import each other.
LAYERS = [
    {"core"},
    {"normalise"},
    {"io", "nlp"},
    {"extract"},
    {"analyst"},
    {"run"},
    {"evaluate"},
    {"cli"},
]
# Modules of the package root: the version (imported from anywhere) and `python -m pipeline`.
ROOT_MODULES = {"pipeline": -1, "pipeline.__main__": len(LAYERS)}
# The longest function allowed in the run package (the run loop must stay readable).
MAX_RUN_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    mod = ".".join(base[: len(base) - node.level + 1] + ([mod] if mod else []))
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def _layer(module: str) -> int:
    if module in ROOT_MODULES:
        return ROOT_MODULES[module]
    package = module.split(".")[1]
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"{module}: package {package!r} is on no layer (add it to LAYERS)")


def test_every_package_has_a_layer_and_a_docstring() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set().union(*LAYERS)
    for package in packages:
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
        assert doc and "import" in doc, f"{package}/__init__.py must say what may import what"


def test_no_import_loops() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not loops, f"import loops: {loops}"


def test_no_upward_imports() -> None:
    upward = [
        f"{a} -> {b}"
        for a, deps in _graph().items()
        for b in deps
        if _layer(b) > _layer(a)
        or (_layer(b) == _layer(a) and a.split(".")[:2] != b.split(".")[:2] and a != "pipeline")
    ]
    assert not upward, "imports that point upward or sideways:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize("path", sorted((PACKAGE / "run").glob("*.py")), ids=lambda p: p.name)
def test_run_functions_stay_short(path: Path) -> None:
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_RUN_FUNCTION_LINES
    ]
    assert not long, long


BENCH = PACKAGE.parent / "bench"


def test_no_bench_shadows_the_package() -> None:
    """`python bench/X.py` puts bench/ first on sys.path: a bench/pipeline.py would hide the
    package from every other bench."""
    assert not (BENCH / "pipeline.py").exists() and not (BENCH / "pipeline").exists()


@pytest.mark.parametrize("bench", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_every_bench_runs_as_documented(bench: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(bench), "--help"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-600:]
