"""scripts/test-tools on a machine missing the suite's tools, run without root: it stops
before any test with one message naming each missing tool and the command installing it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASICS = ("bash", "id", "dirname", "printf", "cat")


def test_missing_tools_are_named_with_their_install_command() -> None:
    # A PATH with a shell and nothing the suite needs, readable by the unprivileged user.
    bin_dir = Path(tempfile.mkdtemp(prefix="fedredirect-test-tools-"))
    bin_dir.chmod(0o755)
    for tool in BASICS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    # A copy, so the unprivileged user can read it wherever the checkout lives.
    (bin_dir / "scripts").mkdir()
    script = bin_dir / "scripts" / "test-tools"
    shutil.copy2(REPO / "scripts" / "test-tools", script)
    command = [str(script)]
    if os.geteuid() == 0:  # as root it would install them: drop to nobody first
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("setpriv (util-linux) is needed to run this test as root")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    try:
        result = subprocess.run(
            command, env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30
        )
    finally:
        shutil.rmtree(bin_dir)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "scripts/test: these tools are missing, so the suite cannot run:"
    for tool in ("redis-server", "promtool", "chromium"):
        assert any(line.split()[:1] == [tool] for line in lines), lines
    install = lines[lines.index("Install them (as root) with:") + 1].split()
    assert install[:3] == ["apt-get", "install", "--no-install-recommends"]
    assert {"redis-server", "prometheus", "chromium"} <= set(install)
