"""Run the product as a user does: `fedredirect checker` / `router` subprocesses on real ports."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from fedredirect.dev import child, fedredirect_command, free_port
from fedredirect.simulator import MemberServer

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll until ``check`` returns something truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # not ready yet
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def write_config(
    path: Path, members: dict[str, tuple[MemberServer, float, bool]], **settings: Any
) -> Path:
    """A native YAML config for the given running members: {name: (server, weight, prime)}."""
    doc: dict[str, Any] = {
        "check": {"period": 0.3, "timeout": 1.0, "jitter": 0.0, "failed_period": 1.0},
        **settings,
        "members": {
            name: {"url": server.url, "weight": weight, "prime": prime}
            for name, (server, weight, prime) in members.items()
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextlib.contextmanager
def fedredirect(*args: str, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``fedredirect ARGS`` as a subprocess; terminate it (then kill) at the end."""
    with child(fedredirect_command(*args), quiet=True, log=log) as proc:
        yield proc


@contextlib.contextmanager
def router(redis_url: str, prefix: str, log: Path | None = None) -> Iterator[str]:
    """A router subprocess on a free port; yields its base URL once it listens."""
    port = free_port()
    args = ["router", "--redis-url", redis_url, "--key-prefix", prefix, "--port", str(port)]
    with fedredirect(*args, log=log) as proc:
        url = f"http://127.0.0.1:{port}"

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"router exited with {proc.returncode}")
            return httpx.get(f"{url}/health", timeout=1).status_code in (200, 503)

        wait_for(listening, 20, f"router on {url}")
        yield url


@contextlib.contextmanager
def router_workers(
    workers: int, redis_url: str, prefix: str, metrics_dir: Path, log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``fedredirect router --workers N`` on a free port, with ``metrics_dir`` as its
    prometheus-client multiprocess directory (set for it alone, so the test can read what
    each worker counted); yields its base URL and process at once, for the test to wait on
    what it needs of each worker."""
    port = free_port()
    command = fedredirect_command(
        "router", "--workers", str(workers), "--port", str(port),
        "--redis-url", redis_url, "--key-prefix", prefix,
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        try:
            proc = stack.enter_context(child(command, log=log))
        finally:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        yield f"http://127.0.0.1:{port}", proc


@contextlib.contextmanager
def checker(
    config: Path, redis_url: str, prefix: str, log: Path | None = None, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    args = ["checker", "--config", str(config), "--redis-url", redis_url, "--key-prefix", prefix]
    with fedredirect(*args, *extra, log=log) as proc:
        yield proc


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``fedredirect ARGS`` to completion, as an operator runs it; output captured."""
    return subprocess.run(
        [sys.executable, "-m", "fedredirect.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def status(router_url: str) -> dict[str, Any]:
    response = httpx.get(f"{router_url}/status.json", timeout=2)
    response.raise_for_status()
    doc: dict[str, Any] = response.json()
    return doc


def launch(
    client: httpx.Client, router_url: str, path: str, cookies: dict[str, str] | None = None
) -> httpx.Response:
    headers = {"cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    return client.get(
        f"{router_url}{path}", headers=headers if cookies else None, follow_redirects=False
    )
