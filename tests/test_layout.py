"""The package reads as the pipeline: no import circle, no stage importing a later one, small modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parent.parent / "statusd"
MAX_LINES = 300

# The stages in the order data flows through them. A module may import from its own
# stage or an earlier one. `values` are the shared vocabulary (levels, events, errors)
# every stage speaks. Channels come before the outbox: they only know compose's
# Message, while the outbox drives them (it holds the contract's other side).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("values", ("statusd", "statusd.errors", "statusd.model", "statusd.events", "statusd.textfit",
                "statusd.sandbox", "statusd.metrics", "statusd.logs", "statusd.notify", "statusd.tasks")),
    ("config", ("statusd.config", "statusd.paths")),
    ("sources", ("statusd.sources",)),
    ("sensors", ("statusd.sensors", "statusd.rules", "statusd.intake")),
    ("compose", ("statusd.compose",)),
    ("channels", ("statusd.channels", "statusd.loading")),
    ("outbox", ("statusd.outbox", "statusd.announcer", "statusd.cluster")),
    ("web", ("statusd.web",)),
    # The doors people use: the command line and the desk (API and page), which runs the
    # very same commands so both say the same; the daemon's wiring stands with them.
    ("doors", ("statusd.desk", "statusd.commands", "statusd.app", "statusd.__main__", "statusd.replay")),
)
# The one deliberate step back up the pipeline: the intake writes a feed's closure
# into the status file, which the sources stage then reads like any other change.
WRITE_BACK: frozenset[tuple[str, str]] = frozenset()


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def owner(name: str) -> str:
    """The module `name` lives in (an imported attribute belongs to its module)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every statusd module `module` imports, anywhere in the file (functions, TYPE_CHECKING too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            if name == "statusd" or name.startswith("statusd."):
                target = owner(name)
                if target != module:
                    yield target, node.lineno


GRAPH: dict[str, dict[str, int]] = {m: dict(imported(m, p)) for m, p in MODULES.items()}


def stage(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def cycles() -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


class TestImports:
    """Imports only point back up the pipeline, and no module imports itself round a circle."""

    def test_every_module_has_a_stage(self) -> None:
        assert [m for m in MODULES if stage(m) < 0] == []

    def test_no_circle(self) -> None:
        assert cycles() == []

    def test_no_forward_import(self) -> None:
        forward = [
            f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} {m} ({STAGES[stage(m)][0]}) imports "
            f"{target} ({STAGES[stage(target)][0]})"
            for m, targets in GRAPH.items()
            for target, line in targets.items()
            if stage(target) > stage(m) and (m, target) not in WRITE_BACK
        ]
        assert forward == []

    def test_the_reader_sees_every_kind_of_import(self, tmp_path: Path) -> None:
        """Function-level and TYPE_CHECKING imports count as much as module-level ones."""
        source = (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from statusd.outbox import store\n"
            "def f():\n    import statusd.web.page\n    from . import reader\n"
        )
        path = tmp_path / "probe.py"  # read as if it were statusd/config/probe.py
        path.write_text(source, encoding="utf-8")
        assert set(dict(imported("statusd.config.probe", path))) == {
            "statusd.outbox.store", "statusd.web.page", "statusd.config.reader"}


class TestSize:
    """Modules stay small enough to read in one sitting."""

    def test_no_module_over_300_lines(self) -> None:
        long = {str(p.relative_to(PACKAGE.parent)): n for p in MODULES.values()
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
        assert long == {}
