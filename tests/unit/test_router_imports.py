"""What the product imports, read from its source: only the public modules of its
dependencies, and layers that point one way (the router and the checker never import the
command-line package, which starts them)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("shared", "checker", "router", "fedredirect")


def imports(package: str) -> Iterator[tuple[str, str]]:
    """(file:line, dotted name) of every module and name imported in ``package``'s
    source; ``from a.b import c`` yields ``a.b`` and ``a.b.c``. Relative imports are the
    package's own and are left out."""
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield where, alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                yield where, node.module
                for alias in node.names:
                    yield where, f"{node.module}.{alias.name}"


def is_private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def test_the_product_imports_no_private_module_or_name_of_another_package() -> None:
    found = [
        (where, name)
        for package in PRODUCT
        for where, name in imports(package)
        if name.split(".")[0] not in PRODUCT and is_private(name)
    ]
    assert found == []


def test_the_product_does_not_touch_sys_modules() -> None:
    """Hiding or swapping a dependency's module is relying on its internals too."""
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for package in PRODUCT
        for path in sorted((REPO / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute)
        and node.attr == "modules"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert found == []


def test_the_scan_sees_private_imports() -> None:
    assert is_private("granian._granian")
    assert is_private("granian.asgi._callback_wrapper")
    assert not is_private("prometheus_client.values")
    assert not is_private("collections.abc")
    assert not is_private("os.__file__")  # a dunder is public


@pytest.mark.parametrize("package", ["shared", "checker", "router"])
def test_router_checker_and_core_never_import_the_command_line_package(package: str) -> None:
    found = [(w, n) for w, n in imports(package) if n.split(".")[0] == "fedredirect"]
    assert found == []


def test_a_router_process_loads_neither_the_command_line_package_nor_another_server() -> None:
    """The modules a router worker runs, imported alone: what they pull in with them."""
    probe = (
        "import json, sys\n"
        "import router.serve, router.app, shared.logs, checker.service\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    loaded = set(
        json.loads(
            subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
            ).stdout
        )
    )
    assert "uvicorn" in loaded
    assert not loaded & {"fedredirect", "granian", "hypercorn", "daphne"}
