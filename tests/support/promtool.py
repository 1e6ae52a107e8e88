"""promtool, from Debian's ``prometheus`` package: missing, the tests that need it fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.fail(
            "promtool not found: install Debian's `prometheus` package "
            "(`apt-get install -y prometheus`, which provides /usr/bin/promtool), "
            "or set PROMTOOL=/path/to/promtool",
            pytrace=False,
        )
    return found


def run_promtool(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS`` to completion, its output captured; the caller checks the return code."""
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
