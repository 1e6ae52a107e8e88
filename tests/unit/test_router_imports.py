"""What a router process loads: not httpx's command-line interface, which the test tools'
click, rich and pygments would otherwise pull into every router (router/__init__.py)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import router.app, router.serve
import granian.asgi
print(json.dumps(sorted(
    name for name, module in sys.modules.items()
    if module is not None  # None: an import kept from happening
    and (name == "httpx._main" or name.split(".")[0] in ("rich", "pygments", "click"))
)))
"""


def test_a_router_does_not_load_httpx_cli_even_where_rich_is_installed() -> None:
    import rich  # noqa: F401  the condition under which httpx would import its CLI

    loaded = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(loaded) == []


def test_httpx_still_works_without_its_cli() -> None:
    probe = "import router, httpx; print(httpx.URL('http://a/b?c=d').path, callable(httpx.main))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["/b", "True"]
