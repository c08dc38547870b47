"""The import graph: every arrow points down the layers, no module cycle, light imports stay light.

Layers, bottom to top (docs/architecture.md, "Layers"): the torch-free core, protocols, datamodules, metrics,
models, the run store and runner, the leaderboard/plots/sweeps, the CLI and Python API. Imports are read from
the source (``ast``), so lazy imports inside functions count as much as those at the top of a module; imports
under ``if TYPE_CHECKING:`` never run, so they must point down but may close a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folders and the import package each one is mapped to (pyproject.toml, package-dir).
FOLDERS = {
    "benchmark": "msabench",
    "models": "msabench.models",
    "datamodules": "msabench.datamodules",
    "protocols": "msabench.protocols",
}
# Module-name prefixes and their layer; the longest matching prefix wins. A new module must be placed here.
LAYERS: dict[str, int] = {
    "msabench.core": 0,
    "msabench.errors": 0,
    "msabench.protocols": 1,
    "msabench.datamodules": 2,
    "msabench.metrics": 3,
    "msabench.models": 4,
    "msabench.config": 5,  # composition, schema, checks, and preflight (a run's inputs checked torch-free)
    "msabench.store": 5,
    "msabench.runner": 5,
    "msabench.leaderboard": 6,
    "msabench.sweep": 6,
    "msabench.testing": 6,  # the generic every-method checks (msabench check): they drive the runner
    "msabench": 7,  # the package root (Python API) and the CLI
    "msabench.cli": 7,  # the parser (its __init__) and the handlers of every command
    "msabench.tools": 7,  # measurement and check scripts (python -m msabench.tools.<name>): entry points
}
# Lazy imports allowed to close a cycle, with the reason; none today, keep it that way.
ALLOWED_CYCLE_EDGES: dict[tuple[str, str], str] = {}

Kind = Literal["top", "lazy", "typing"]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: Kind
    line: int


def _modules() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


MODULES = _modules()


def _layer(module: str) -> int | None:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def _resolve(name: str) -> str:
    """The module an imported name belongs to: the longest known module that prefixes it."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _edges_of(module: str, path: Path) -> list[Edge]:
    edges: list[Edge] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, kind: Kind) -> None:
        for child in ast.iter_child_nodes(node):
            child_kind = kind
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and kind == "top":
                child_kind = "lazy"
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_statement(stmt, "typing")
                for stmt in child.orelse:
                    visit_statement(stmt, kind)
                continue
            visit_statement(child, child_kind)

    def visit_statement(node: ast.AST, kind: Kind) -> None:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
            ]
        for name in names:
            if name == "msabench" or name.startswith("msabench."):
                target = _resolve(name)
                if target and target != module:
                    edges.append(Edge(module, target, kind, getattr(node, "lineno", 0)))
        visit(node, kind)

    visit(ast.parse(path.read_text(), str(path)), "top")
    return edges


EDGES = [edge for module, path in MODULES.items() for edge in _edges_of(module, path)]


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in MODULES if _layer(m) is None)
    assert not unplaced, f"place these modules in LAYERS: {unplaced}"


def test_no_import_points_up() -> None:
    upward = [
        f"{e.source}:{e.line} ({_layer(e.source)}) imports {e.target} ({_layer(e.target)}) [{e.kind}]"
        for e in EDGES
        if (_layer(e.source) or 0) < (_layer(e.target) or 0)
    ]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_module_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in EDGES:
        if e.kind != "typing" and (e.source, e.target) not in ALLOWED_CYCLE_EDGES:
            graph[e.source].add(e.target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def cycle_from(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := cycle_from(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = cycle_from(module)
            assert found is None, "import cycle: " + " -> ".join(found)


def test_the_graph_is_read() -> None:
    # The parser sees what is there: a known top-level, a lazy and a type-only import.
    kinds = {(e.source, e.target): e.kind for e in EDGES}
    assert kinds[("msabench.protocols.masks", "msabench.core.batch")] == "top"
    assert kinds[("msabench.cli.run", "msabench.runner")] == "lazy"
    typed = {(e.source, e.target) for e in EDGES if e.kind == "typing"}
    assert ("msabench.models", "msabench.models.base") in typed
    assert _layer("msabench.leaderboard.markdown") == 6 and _layer("msabench.core.io") == 0


def test_every_package_folder_is_installed() -> None:
    # pyproject.toml lists the packages (the folders map onto msabench through package-dir): a folder missing
    # there works in an editable install and is absent from a wheel.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {m for m, path in MODULES.items() if path.name == "__init__.py"}
    assert folders == listed, {"unlisted": sorted(folders - listed), "no folder": sorted(listed - folders)}


def test_the_tools_are_scripts_nothing_in_the_package_imports() -> None:
    # Measurement and check scripts live in msabench.tools, not beside the CLI and the store.
    tools = sorted(m for m in MODULES if m.startswith("msabench.tools."))
    assert tools and all('if __name__ == "__main__":' in MODULES[m].read_text() for m in tools), tools
    root = [m for m in MODULES if m.count(".") == 1 and m.startswith("msabench.") and "bench_" in m]
    assert not root, root
    imported = [f"{e.source} imports {e.target}" for e in EDGES if e.target.startswith("msabench.tools")]
    assert not [i for i in imported if not i.startswith("msabench.tools")], imported


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("msabench.protocols", ("lightning", "msabench.datamodules")),
        ("msabench.leaderboard", ("lightning", "torch")),
        ("msabench.core.batch", ("torch",)),
        ("msabench.core.vocabulary", ("torch", "pandas")),
    ],
)
def test_light_imports_stay_light(module: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", f"import {module} loaded {out.stdout.strip()}"


def test_the_vocabulary_is_declared_once() -> None:
    # A module may import and re-export a name of the core vocabulary, never assign it anew.
    from msabench.core import vocabulary

    names = {n for n in vars(vocabulary) if n.isupper() or n in ("Modality", "MetricFamily", "PolicyName")}
    redeclared = []
    for module, path in MODULES.items():
        if module == "msabench.core.vocabulary":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            redeclared += [
                f"{module}:{node.lineno} {t.id}" for t in targets if isinstance(t, ast.Name) and t.id in names
            ]
    assert not redeclared, "import these from msabench.core.vocabulary instead: " + ", ".join(redeclared)
