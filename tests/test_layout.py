"""The layout keeps its promises: arrows only point down, and no module imports
itself back through others, counting imports inside functions and under
``TYPE_CHECKING`` too. Read from the source (AST), so nothing is imported here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO

# Lowest first. A module may import modules of its own layer and of any layer below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("digest", "digest.core")),
    ("subscribers", ("subscribers",)),
    ("transports", ("digest.transports",)),
    (
        "stages",
        ("digest.sources", "digest.editions", "digest.render", "digest.mail", "digest.delivery"),
    ),
    ("service", ("digest.delivery.service",)),
    ("entry points", ("digest.cli", "digest.web", "digest.processes", "digest.__main__")),
]


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for root in ("digest", "subscribers"):
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = project_modules()


def imported(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """The project modules ``name`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` names a module; `from mod import thing` names mod.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target, node.lineno


def layer_of(module: str) -> int:
    """The index of the layer whose most specific prefix matches ``module``."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


GRAPH = {
    name: sorted({target for target, _ in imported(name, path)}) for name, path in MODULES.items()
}


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_layout_every_module_belongs_to_a_layer() -> None:
    assert [name for name in MODULES if layer_of(name) < 0] == []


def test_layout_has_no_import_cycles_between_modules() -> None:
    assert cycles(GRAPH) == []


def test_layout_has_no_import_cycles_between_packages() -> None:
    def package(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if parts[0] == "digest" else parts[0]

    packages: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        own = package(name)
        packages.setdefault(own, set()).update(t for t in map(package, targets) if t != own)
    assert cycles({k: sorted(v) for k, v in packages.items()}) == []


def test_layout_imports_only_point_down() -> None:
    upward = [
        f"{MODULES[name].relative_to(REPO)}:{line} imports {target} "
        f"({LAYERS[layer_of(name)][0]} -> {LAYERS[layer_of(target)][0]})"
        for name, path in MODULES.items()
        for target, line in imported(name, path)
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_layout_subscribers_import_only_digest_core() -> None:
    outside = [
        f"{MODULES[name].relative_to(REPO)}:{line} imports {target}"
        for name, path in MODULES.items()
        if name.split(".")[0] == "subscribers"
        for target, line in imported(name, path)
        if target.split(".")[0] == "digest" and not target.startswith("digest.core")
    ]
    assert outside == []


@pytest.mark.parametrize(
    "graph", [{"a": ["b"], "b": ["c"], "c": ["a"]}, {"a": ["a", "b"], "b": ["a"]}]
)
def test_layout_cycle_finder_sees_a_cycle(graph: dict[str, list[str]]) -> None:
    assert cycles(graph) != []


def test_layout_import_reader_counts_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from digest.web.app import create_app\n", encoding="utf-8")
    assert ("digest.web.app", 2) in list(imported("digest.core.m", module))
