"""Every command that binds a port, run as a user runs it, with that port already taken:
one line naming the port and the flag that moves it, exit status 2, no traceback.
And ``fedredirect dev`` prints a status command that works as typed."""

from __future__ import annotations

import contextlib
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedredirect.dev import free_port
from fedredirect.simulator import MemberSimState
from tests.support.members import running_members
from tests.support.procs import run_cli, wait_for, write_config

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port somebody else listens on for the duration of the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def assert_port_message(result: subprocess.CompletedProcess[str], port: int, flag: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr, result.stderr
    assert flag in result.stderr, result.stderr


def test_router_port_taken() -> None:
    with taken_port() as port:
        result = run_cli("router", "--port", str(port), "--redis-url", "redis://127.0.0.1:1/0")
    assert_port_message(result, port, "--port")
    assert result.stderr.startswith("fedredirect router: ")


def test_member_sim_port_taken() -> None:
    with taken_port() as port:
        result = run_cli("member-sim", "--name", "x", "--port", str(port))
    assert_port_message(result, port, "--port")


def test_checker_metrics_port_taken(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    with running_members(MemberSimState("a")) as (a,), taken_port() as port:
        config = write_config(tmp_path / "f.yaml", {"a": (a, 1.0, True)})
        result = run_cli(
            "checker",
            "--config",
            str(config),
            "--redis-url",
            redis_url,
            "--key-prefix",
            key_prefix,
            "--metrics-port",
            str(port),
        )
    assert_port_message(result, port, "--metrics-port")


@pytest.mark.parametrize("offset", [0, 1, 12])
def test_dev_port_taken_names_the_port_and_the_flag(offset: int) -> None:
    base = free_dev_base()  # only the port taken here may be the one it names
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", base + offset))
        except OSError:
            pytest.fail(f"port {base + offset} was not free for the test")
        sock.listen(1)
        result = run_cli("dev", "--port", str(base))
    assert_port_message(result, base + offset, "--port N")


def test_dev_redis_port_taken() -> None:
    with taken_port() as port:
        # A base whose block is free: else dev may name one of those ports instead (seen).
        result = run_cli("dev", "--port", str(free_dev_base()), "--redis-port", str(port))
    assert_port_message(result, port, "--redis-port")


#: The ports ``fedredirect dev --port N`` binds besides Redis's: routers N and N+1,
#: members N+11 to N+13.
DEV_PORT_OFFSETS = (0, 1, 11, 12, 13)


def free_dev_base() -> int:
    """A base port N whose whole dev block is free now: a free N alone is not enough, as
    another test's connection may hold N+11 (seen in CI: the stack exited at once)."""
    for _ in range(100):
        base = free_port()
        if base + max(DEV_PORT_OFFSETS) > 65535:
            continue
        try:
            with contextlib.ExitStack() as held:
                for offset in DEV_PORT_OFFSETS:
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    raise AssertionError("no free block of ports for fedredirect dev")


@pytest.mark.parametrize("venv_on_path", [False, True], ids=["fresh-shell", "activated-venv"])
def test_dev_banner_status_command_works_as_typed(tmp_path: Path, venv_on_path: bool) -> None:
    """The banner's `status` line, typed into the shell that ran scripts/dev (in the
    checkout, with or without the virtualenv activated), answers."""
    venv_bin = str(Path(sys.executable).parent)
    path = ":".join([*([venv_bin] if venv_on_path else []), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "HOME": str(tmp_path)}
    base = free_dev_base()
    log = tmp_path / "dev.log"
    with (
        log.open("wb") as out,
        subprocess.Popen(
            [sys.executable, "-m", "fedredirect.cli", "dev", "--port", str(base)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        ) as proc,
    ):
        try:
            found = wait_for(
                lambda: (
                    proc.poll() is not None
                    or re.search(
                        r"^\s*(\S*fedredirect status --redis-url \S+)", log.read_text(), re.M
                    )
                ),
                60,
                "the dev banner",
            )
            assert not isinstance(found, bool), f"fedredirect dev exited: {log.read_text()}"
            line = found.group(1)
            typed = subprocess.run(
                ["bash", "-c", line], cwd=REPO, capture_output=True, text=True, timeout=30, env=env
            )
        finally:
            proc.terminate()
            proc.wait(20)
    assert typed.returncode == 0, (shlex.quote(line), typed.stderr)
    assert "launches go to:" in typed.stdout
    assert line.startswith("fedredirect " if venv_on_path else ".venv/bin/fedredirect ")
