"""The package's folders are its layers, and imports go one way (docs/architecture.md):

    app -> run -> webex | store -> records -> config -> obs -> model -> errors

A module may import its own layer and the layers below it, never one above; ``webex`` and ``store``
sit side by side and never import each other.  The simulator is a tool beside the exporter: it may
use records and below, and only ``app`` may import it.  Every import counts, wherever it is written
(inside a function or under ``TYPE_CHECKING`` too): a lazy import does not make a cycle go away.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "exporter"

#: Layer of each top-level part of the package (higher imports lower).  Equal ranks may not import
#: each other unless they are the same part.
RANK = {
    "errors": 0,
    "model": 1,
    "obs": 2,
    "config": 3,
    "records": 4,
    "webex": 5,
    "store": 5,
    "simulator": 5,
    "run": 6,
    "app": 7,
    "__main__": 8,
    "__init__": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _part(module: str) -> str:
    """``exporter.webex.rest.client`` -> ``webex``; ``exporter`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of our own package in ``path``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target in ("exporter",):  # `from . import x`: each name is a module
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "exporter" or name.startswith("exporter.")]


def _violation(source: str, target: str) -> str | None:
    here, there = _part(source), _part(target)
    if here == there:
        return None
    if here not in RANK or there not in RANK:
        return f"{there!r} or {here!r} has no layer in RANK"
    if there == "simulator" and here != "app":
        return "only app/ may import the simulator"
    if RANK[there] >= RANK[here]:
        return f"{here}/ (layer {RANK[here]}) may not import {there}/ (layer {RANK[there]})"
    return None


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts.discard("__pycache__")
    assert sorted(parts - set(RANK)) == []


def test_imports_go_one_way():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        for line, target in _imports(path):
            why = _violation(source, target)
            if why:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {target}: {why}")
    assert violations == [], "imports against the layering:\n" + "\n".join(violations)


def test_the_rule_catches_what_it_should():
    assert _violation("exporter.store.lake", "exporter.webex.client")
    assert _violation("exporter.webex.client", "exporter.store.lake")
    assert _violation("exporter.webex.site_check", "exporter.run.pipeline")
    assert _violation("exporter.model.datasets", "exporter.config")
    assert _violation("exporter.run.pipeline", "exporter.simulator")
    assert _violation("exporter.app.demo", "exporter.simulator") is None
    assert _violation("exporter.run.pipeline", "exporter.webex.client") is None
    assert _violation("exporter.config", "exporter.model.datasets") is None
