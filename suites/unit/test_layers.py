"""Packages import one way: each imports only the packages below it, so the guest code never pulls
in the host, the reports never pull in the VM machinery, and nothing imports the workflows."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Bottom first: fixtures run in the guest, reports are pure data, vm boots guests, suites holds the
# rule book and the pytest plugin, workflows drive the suite over kernel trees.
LAYERS = ["fixtures", "reports", "vm", "suites", "workflows"]


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


def upward_imports() -> list[str]:
    wrong = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((REPO / package).rglob("*.py")):
            if package == "suites" and path.relative_to(REPO / "suites").parts[0] in ("unit", "harness"):
                continue  # the project's own tests may exercise any package
            above = {p for p in imported_packages(path) if LAYERS.index(p) > rank}
            wrong += [f"{path.relative_to(REPO)} imports {p}" for p in sorted(above)]
    return wrong


def test_packages_import_only_downward() -> None:
    assert upward_imports() == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from workflows import build\nimport vm.kernels\nfrom . import sibling\n")
    assert imported_packages(module) == {"workflows", "vm"}
