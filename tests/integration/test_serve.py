"""``router.serve.serve_on``: the router's server (uvicorn, on the caller's socket) as a
process runs it: a real listening socket, real signals, a real HTTP client.

The app under test is a few lines of ASGI, so each test shows one promise of the server:
a request in flight when SIGTERM arrives is answered before the lifespan shuts down, and
a lifespan that fails to start is an exit status, not a server without a lifespan.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.support.procs import free_port, wait_for

APP = """
import asyncio
import os
import socket
import sys

from router.serve import serve_on

events = open(sys.argv[2], "a", buffering=1)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.environ.get("FAIL_STARTUP"):
                    raise RuntimeError("no store to read")
                events.write("lifespan startup\\n")
                await asyncio.sleep(float(os.environ.get("STARTUP_SECONDS", "0")))
                await send({"type": "lifespan.startup.complete"})
            else:
                events.write("lifespan shutdown\\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    delay = 2.0 if scope["path"] == "/slow" else 0.0
    events.write(f"started {scope['path']}\\n")
    await asyncio.sleep(delay)
    body = scope["path"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    events.write(f"answered {scope['path']}\\n")


sock = socket.create_server(("127.0.0.1", int(sys.argv[1])))
sys.exit(serve_on(app, sock))
"""


def start(
    tmp_path: Path, fail_startup: bool = False, startup_seconds: float = 0.0
) -> tuple[subprocess.Popen[str], int, Path]:
    script, events = tmp_path / "app.py", tmp_path / "events.log"
    script.write_text(APP)
    events.touch()
    port = free_port()
    env = {
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "STARTUP_SECONDS": str(startup_seconds),
    }
    if fail_startup:
        env["FAIL_STARTUP"] = "1"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), str(events)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port, events


def test_a_request_in_flight_at_sigterm_is_answered_then_the_lifespan_ends(
    tmp_path: Path,
) -> None:
    proc, port, events = start(tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/ready", timeout=2).text == "/ready", what="serving")
        answers: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: answers.append(httpx.get(f"{url}/slow")))
        slow.start()
        wait_for(lambda: "started /slow" in events.read_text(), what="the slow request")
        proc.send_signal(signal.SIGTERM)
        slow.join(timeout=10)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert [(a.status_code, a.text) for a in answers] == [(200, "/slow")]
    lines = events.read_text().splitlines()
    assert lines.index("answered /slow") < lines.index("lifespan shutdown")


def test_a_lifespan_that_fails_to_start_is_exit_status_3_with_the_error(tmp_path: Path) -> None:
    proc, _, events = start(tmp_path, fail_startup=True)
    try:
        output, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 3
    assert "RuntimeError: no store to read" in output
    assert "the router cannot start" in output
    assert "started" not in events.read_text()


def test_sigint_stops_it_too_while_a_client_holds_an_idle_connection(tmp_path: Path) -> None:
    """An idle keep-alive connection (an ingress keeps them open) does not hold up the stop;
    the answer carries no Server header."""
    proc, port, events = start(tmp_path)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            answer = wait_for(lambda: client.get("/ready", timeout=2), what="serving")
            assert answer.text == "/ready"
            assert "server" not in answer.headers
            assert "date" in answer.headers
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert events.read_text().splitlines()[-1] == "lifespan shutdown"


def test_sigterm_during_the_lifespan_startup_stops_it_once_started(tmp_path: Path) -> None:
    """A stop asked for while the app starts is not lost: it starts, then stops at once."""
    proc, _, events = start(tmp_path, startup_seconds=1.0)
    try:
        wait_for(lambda: "lifespan startup" in events.read_text(), what="the lifespan startup")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert events.read_text().splitlines() == ["lifespan startup", "lifespan shutdown"]


STUCK = """
import os
import signal
import sys
import time

from router.serve import Supervisor


def stuck_worker():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a worker whose stop hangs
    print(os.getpid(), flush=True)
    while True:
        time.sleep(1)


sys.exit(Supervisor(stuck_worker, 2, stop_grace=1.0).run())
"""


def test_a_worker_that_does_not_stop_is_killed_after_the_grace(tmp_path: Path) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(STUCK)
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    workers = [int(proc.stdout.readline()) for _ in range(2)]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    for pid in workers:  # reaped by the supervisor: gone, not orphaned
        wait_for(lambda p=pid: not Path(f"/proc/{p}").exists(), 10, f"worker {pid} gone")
