"""Reading a child process's output without blocking a test forever."""

from __future__ import annotations

import contextlib
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

#: ``fedredirect member-sim``, as a user runs it.
MEMBER_SIM = [sys.executable, "-m", "fedredirect.cli", "member-sim"]


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the child's stdout, or fail after `timeout` instead of blocking forever."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout}s")
    return proc.stdout.readline()


def member_sim_flag(flag: str, shown: str, bad: str, refused: str) -> None:
    """``fedredirect member-sim``'s ``flag`` is documented (its --help shows ``shown``) and
    a ``bad`` value is refused before anything starts: exit 2, ``refused`` on stderr."""
    help_text = subprocess.run([*MEMBER_SIM, "--help"], capture_output=True, text=True, timeout=30)
    assert help_text.returncode == 0
    assert shown in help_text.stdout
    answer = subprocess.run(
        [*MEMBER_SIM, "--name", "x", flag, bad], capture_output=True, text=True, timeout=30
    )
    assert answer.returncode == 2
    assert refused in answer.stderr


@contextlib.contextmanager
def member_sim(*args: str, timeout: float = 15.0) -> Iterator[str]:
    """``fedredirect member-sim ARGS`` running, as a user starts it: its URL (the last word
    of the line it prints once it serves); stopped with SIGTERM on leaving."""
    proc = subprocess.Popen(
        [*MEMBER_SIM, *args],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield read_line(proc, timeout).split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
