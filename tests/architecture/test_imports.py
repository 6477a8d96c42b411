"""The house's rules, read from the source with :mod:`ast`: no circle of imports between modules,
and arrows that point one way (cli -> daemon/reports -> engine -> journal; playbooks ->
connectors' models; nothing of the product imports the sandbox but the CLI's embedded mode).

Imports under ``if TYPE_CHECKING:`` count: a circle that only the type checker sees is still
a circle a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "doorfix"

#: a module of the left-hand room may import no module of the rooms on the right
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "doorfix.errors": (
        "doorfix.agent",
        "doorfix.playbooks",
        "doorfix.connectors",
        "doorfix.sandbox",
    ),
    "doorfix.clock": (
        "doorfix.agent",
        "doorfix.playbooks",
        "doorfix.connectors",
        "doorfix.sandbox",
    ),
    "doorfix.log": ("doorfix.agent", "doorfix.playbooks", "doorfix.connectors", "doorfix.sandbox"),
    "doorfix.connectors": ("doorfix.agent", "doorfix.playbooks", "doorfix.sandbox"),
    "doorfix.playbooks": (
        "doorfix.agent",
        "doorfix.sandbox",
        "doorfix.connectors.aca",
        "doorfix.connectors.cloud",
        "doorfix.connectors.clp",
        "doorfix.connectors.factory",
        "doorfix.connectors._http",
    ),
    "doorfix.sandbox": ("doorfix.agent", "doorfix.playbooks", "doorfix.connectors"),
    "doorfix.agent.config": (
        "doorfix.agent.engine",
        "doorfix.agent.journal",
        "doorfix.agent.reports",
        "doorfix.agent.daemon",
        "doorfix.agent.cli",
    ),
    # the one module that sends anything: the engine (escalate), the reports and the daemon use it
    "doorfix.agent.sinks": (
        "doorfix.agent.engine",
        "doorfix.agent.journal",
        "doorfix.agent.reports",
        "doorfix.agent.daemon",
        "doorfix.agent.cli",
        "doorfix.agent.runtime",
        "doorfix.playbooks",
        "doorfix.connectors",
        "doorfix.sandbox",
    ),
    "doorfix.agent.journal": (
        "doorfix.agent.engine",
        "doorfix.agent.reports",
        "doorfix.agent.daemon",
        "doorfix.agent.cli",
        "doorfix.agent.runtime",
        "doorfix.playbooks",
        "doorfix.connectors",
        "doorfix.sandbox",
    ),
    "doorfix.agent.engine": (
        "doorfix.agent.reports",
        "doorfix.agent.daemon",
        "doorfix.agent.cli",
        "doorfix.agent.runtime",
        "doorfix.sandbox",
    ),
    "doorfix.agent.reports": ("doorfix.agent.daemon", "doorfix.agent.cli", "doorfix.sandbox"),
    "doorfix.agent.daemon": ("doorfix.agent.cli", "doorfix.sandbox"),
    "doorfix.agent.runtime": (
        "doorfix.agent.reports",
        "doorfix.agent.daemon",
        "doorfix.agent.cli",
        "doorfix.sandbox",
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _in(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_graph_sees_the_package() -> None:
    graph = _graph()
    assert "doorfix.agent.engine.run" in graph
    assert "doorfix.agent.journal.store" in graph["doorfix.agent.engine.state"]


def test_no_module_imports_in_a_circle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_arrows_point_one_way(room: str) -> None:
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in _graph().items()
        if _in(module, room)
        for dep in deps
        for banned in FORBIDDEN[room]
        if _in(dep, banned)
    )
    assert wrong == []


def test_no_test_imports_from_a_conftest() -> None:
    """A helper lives in ``tests/support``: ``from conftest import …`` resolves to whichever
    directory's conftest pytest loaded first, so a suite passes alone and fails beside another."""
    tests = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted(tests.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "conftest":
                offenders.append(f"{path.relative_to(tests)}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name == "conftest" for a in node.names):
                offenders.append(f"{path.relative_to(tests)}:{node.lineno}")
    assert offenders == []
