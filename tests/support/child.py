"""Reading a child process's output without blocking a test forever."""

from __future__ import annotations

import selectors
import subprocess


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the child's stdout, or fail after `timeout` instead of blocking forever."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout}s")
    return proc.stdout.readline()
